"""The dns collector against a small DNS responder this test starts on a free UDP port, the
system resolver, and the host's configured resolver when one answers."""

from __future__ import annotations

import asyncio
import struct
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import msgspec
import pytest

from watchkeeper.collect.builtin._dnswire import TYPES, read_name
from watchkeeper.collect.builtin.dns import DnsCollector, DnsOptions, query
from watchkeeper.collect.testing import poll_once, values
from watchkeeper.model import Device, Status

ZONE = {("router.lab", 1): [bytes([192, 0, 2, 10]), bytes([192, 0, 2, 11])],
        ("router.lab", 28): [bytes(15) + b"\x01"]}


class Responder(asyncio.DatagramProtocol):
    """Answers A/AAAA for ZONE, NXDOMAIN otherwise; ``silent`` makes it drop queries."""

    def __init__(self) -> None:
        self.transport: Any = None
        self.silent = False
        self.queries = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # a datagram transport (not a DatagramTransport subclass)

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.queries += 1
        if self.silent or self.transport is None:
            return
        ident = struct.unpack("!H", data[:2])[0]
        name, end = read_name(data, 12)
        rtype = struct.unpack("!H", data[end:end + 2])[0]
        records = ZONE.get((name, rtype))
        rcode = 0 if records is not None or any(n == name for n, _ in ZONE) else 3
        out = struct.pack("!HHHHHH", ident, 0x8180 | rcode, 1, len(records or ()), 0, 0)
        out += data[12:end + 4]
        for rdata in records or ():
            out += b"\xc0\x0c" + struct.pack("!HHIH", rtype, 1, 60, len(rdata)) + rdata
        self.transport.sendto(out, addr)


@pytest.fixture
async def responder() -> AsyncIterator[tuple[Responder, int]]:
    loop = asyncio.get_running_loop()
    transport, protocol = await loop.create_datagram_endpoint(Responder,
                                                              local_addr=("127.0.0.1", 0))
    yield protocol, transport.get_extra_info("sockname")[1]
    transport.close()


def dns(port: int, **options: Any) -> DnsCollector:
    return DnsCollector(msgspec.convert({"port": port, **options}, DnsOptions), name="dns")


SERVER = Device(name="router.lab", address="127.0.0.1")


async def test_resolution_time_and_answers(responder: tuple[Responder, int]) -> None:
    _, port = responder
    result = await poll_once(dns(port, expect=["192.0.2.10"]), SERVER)
    assert result.status is Status.OK, result.check.summary
    got = values(result)
    assert got["dns.answers"] == 2
    assert got["dns.rcode"] == 0
    assert got["dns.time"] is not None
    assert got["dns.time"] >= 0
    assert "192.0.2.10, 192.0.2.11" in result.check.summary
    aaaa = await poll_once(dns(port, record_type="AAAA"), SERVER)
    assert "::1" in aaaa.check.summary


async def test_nxdomain_missing_answers_and_slowness_are_graded(
        responder: tuple[Responder, int]) -> None:
    _, port = responder
    nx = await poll_once(dns(port, name="nope.lab"), SERVER)
    assert nx.status is Status.CRITICAL
    assert "NXDOMAIN" in nx.check.summary
    missing = await poll_once(dns(port, expect=["192.0.2.99"]), SERVER)
    assert missing.status is Status.CRITICAL
    slow = await poll_once(dns(port, thresholds={"dns.time": {"warn_above": 0}}), SERVER)
    assert slow.status is Status.WARNING


async def test_a_silent_server_is_critical(responder: tuple[Responder, int]) -> None:
    protocol, port = responder
    protocol.silent = True
    result = await poll_once(dns(port), SERVER, timeout=0.5)
    assert result.status is Status.CRITICAL
    assert "no DNS answer" in result.check.summary
    assert protocol.queries == 1


async def test_the_system_resolver() -> None:
    result = await poll_once(dns(53, server="system", name="localhost"),
                             Device(name="here", address="127.0.0.1"))
    assert result.status is Status.OK, result.check.summary
    assert "127.0.0.1" in result.check.summary
    missing = await poll_once(dns(53, server="system", name="no-such-host.invalid"),
                              Device(name="here"), timeout=5)
    assert missing.status is Status.CRITICAL


async def test_the_configured_resolver_when_one_answers() -> None:
    servers = [line.split()[1] for line in Path("/etc/resolv.conf").read_text().splitlines()
               if line.startswith("nameserver")] if Path("/etc/resolv.conf").exists() else []
    for server in servers:
        try:
            async with asyncio.timeout(1.0):
                await query(server, 53, "localhost", TYPES["A"])
        except (TimeoutError, OSError):
            continue
        result = await poll_once(dns(53, name="localhost"), Device(name="r", address=server))
        assert values(result)["dns.time"] is not None
        return
    pytest.skip("no configured resolver answers on this machine")
