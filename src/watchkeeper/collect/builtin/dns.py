"""DNS resolution time: one query to a DNS server, or a lookup through the system resolver.

``server`` is a DNS server to ask (``{address}``, the default, is the device's own
address: the device *is* the resolver under watch), or ``system`` for the host's resolver
(``getaddrinfo``: ``/etc/hosts``, nsswitch, whatever the OS does). ``name`` may use
``{name}`` for the device's name.

Measurements: ``dns.time`` (ms), ``dns.answers`` (records, or addresses for ``system``),
``dns.rcode``. A timeout, NXDOMAIN, SERVFAIL or REFUSED is CRITICAL; answers missing an
address listed in ``expect`` are CRITICAL; ``thresholds`` may grade ``dns.time``.
"""

from __future__ import annotations

import asyncio
import random
import socket
import time
from typing import Any

import msgspec

from watchkeeper.collect.abc import Collector, PollContext, PollResult
from watchkeeper.collect.builtin._dnswire import (
    RCODES,
    TYPES,
    DnsFormatError,
    Response,
    build_query,
    encode_name,
    parse_response,
)
from watchkeeper.collect.poll import describe
from watchkeeper.collect.thresholds import Threshold, judge
from watchkeeper.model import Device, Status


class DnsOptions(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    name: str = "{name}"
    record_type: str = "A"
    server: str = "{address}"  # a DNS server, or "system" for the host's resolver
    port: int = 53
    expect: tuple[str, ...] = ()  # addresses that must be among the answers
    thresholds: dict[str, Threshold] = msgspec.field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.record_type not in TYPES:
            raise ValueError(f"record_type must be one of {', '.join(TYPES)}")
        if "{" not in self.name:
            encode_name(self.name)


class _Listener(asyncio.DatagramProtocol):
    def __init__(self, ident: int) -> None:
        self.ident = ident
        self.answer: asyncio.Future[Response] = asyncio.get_running_loop().create_future()

    def datagram_received(self, data: bytes, addr: Any) -> None:
        try:
            response = parse_response(data, ident=self.ident)
        except DnsFormatError:
            return  # not ours, or garbage: keep waiting for the real answer
        if not self.answer.done():
            self.answer.set_result(response)

    def error_received(self, exc: Exception) -> None:
        if not self.answer.done():
            self.answer.set_exception(exc)


async def query(server: str, port: int, name: str, rtype: int) -> Response:
    """Send one query over UDP and wait for its answer (the caller bounds the wait)."""
    loop = asyncio.get_running_loop()
    ident = random.getrandbits(16)
    family = socket.AF_INET6 if ":" in server else socket.AF_INET
    transport, listener = await loop.create_datagram_endpoint(
        lambda: _Listener(ident), remote_addr=(server, port), family=family)
    try:
        transport.sendto(build_query(ident, name, rtype))
        return await listener.answer
    finally:
        transport.close()


class DnsCollector(Collector):
    """Times a DNS query (or a system lookup) and checks its answer."""

    Options = DnsOptions
    options: DnsOptions

    async def poll(self, device: Device, ctx: PollContext) -> PollResult:
        opts = self.options
        name = opts.name.replace("{name}", device.name)
        server = opts.server.replace("{address}", device.address or device.name)
        budget = ctx.timeout * 0.9
        started = time.perf_counter()
        try:
            async with asyncio.timeout(budget):
                if server == "system":
                    rcode, answers = await self._system(name, opts.record_type)
                else:
                    response = await query(server, opts.port, name, TYPES[opts.record_type])
                    rcode, answers = response.rcode, [a.data for a in response.answers]
        except TimeoutError:
            return ctx.result([], Status.CRITICAL,
                              f"no DNS answer for {name} from {server} in {budget:g}s")
        except OSError as exc:
            return ctx.result([], Status.CRITICAL, f"DNS {name} via {server}: {describe(exc)}")
        elapsed = (time.perf_counter() - started) * 1000
        out = [ctx.measure("dns.time", elapsed, unit="ms"),
               ctx.measure("dns.answers", len(answers)),
               ctx.measure("dns.rcode", rcode)]
        what = f"{name} {opts.record_type} via {server}"
        if rcode != 0:
            return ctx.result(out, Status.CRITICAL, f"{what}: {RCODES.get(rcode, rcode)}")
        notes = [judge("dns.time", elapsed, opts.thresholds.get("dns.time"), "ms")]
        missing = [a for a in opts.expect if a not in answers]
        if missing:
            notes.append((Status.CRITICAL, f"missing {', '.join(missing)}"))
        status = Status.rollup(s for s, _ in notes)
        shown = ", ".join(answers[:4]) + (" ..." if len(answers) > 4 else "")
        text = f"{what}: {shown or 'no answers'} in {elapsed:.1f} ms"
        return ctx.result(out, status, "; ".join([text, *(t for _, t in notes if t)]))

    @staticmethod
    async def _system(name: str, record_type: str) -> tuple[int, list[str]]:
        family = {"A": socket.AF_INET, "AAAA": socket.AF_INET6}.get(record_type,
                                                                     socket.AF_UNSPEC)
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(name, None, family=family,
                                                                 type=socket.SOCK_STREAM)
        except socket.gaierror as exc:
            if exc.errno in (socket.EAI_NONAME, getattr(socket, "EAI_NODATA", -5)):
                return 3, []  # NXDOMAIN, as far as the system resolver can tell
            raise
        return 0, sorted({str(info[4][0]) for info in infos})
