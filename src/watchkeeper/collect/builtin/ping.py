"""Round-trip time and loss to a device: ICMP echo, or TCP connect timing as a fallback.

ICMP uses an unprivileged datagram socket (Linux, when ``net.ipv4.ping_group_range``
admits our group) or else a raw socket (root / CAP_NET_RAW). In ``auto`` mode, when
neither may be opened, the TCP handshake to ``tcp_port`` is timed instead; a refused
connection counts as an answer, since the host replied. ICMP is IPv4 only: ``auto``
times TCP for IPv6 addresses.
"""

from __future__ import annotations

import asyncio
import os
import socket
import struct
import time
from typing import Literal, NamedTuple

import msgspec

from watchkeeper.collect.abc import Collector, PollContext, PollResult
from watchkeeper.model import Device, Status

ECHO_REQUEST, ECHO_REPLY = 8, 0
_HEADER = struct.Struct("!BBHHH")  # type, code, checksum, identifier, sequence


class PingOptions(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    count: int = 3
    mode: Literal["auto", "icmp", "tcp"] = "auto"
    tcp_port: int = 80
    wait: float = 1.0  # seconds to wait for each reply

    def __post_init__(self) -> None:
        if self.count < 1 or self.wait <= 0:
            raise ValueError("count must be at least 1 and wait positive")


class EchoReply(NamedTuple):
    ident: int
    seq: int
    payload: bytes


def checksum(data: bytes) -> int:
    """The Internet checksum (RFC 1071): ones' complement of the ones' complement sum."""
    if len(data) % 2:
        data += b"\0"
    total: int = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def echo_request(ident: int, seq: int, payload: bytes) -> bytes:
    """An ICMP echo request with a valid checksum."""
    unsummed = _HEADER.pack(ECHO_REQUEST, 0, 0, ident, seq) + payload
    return _HEADER.pack(ECHO_REQUEST, 0, checksum(unsummed), ident, seq) + payload


def parse_echo_reply(packet: bytes, *, ip_header: bool) -> EchoReply | None:
    """The echo reply in ``packet`` (raw sockets include the IPv4 header), else None."""
    if ip_header:
        if len(packet) < 20 or packet[0] >> 4 != 4:
            return None
        packet = packet[(packet[0] & 0x0F) * 4 :]
    if len(packet) < _HEADER.size or checksum(packet) != 0:
        return None
    kind, code, _, ident, seq = _HEADER.unpack_from(packet)
    if (kind, code) != (ECHO_REPLY, 0):
        return None
    return EchoReply(ident, seq, packet[_HEADER.size :])


def open_icmp_socket() -> tuple[socket.socket, bool]:
    """A non-blocking ICMP socket and whether it is raw; PermissionError if none is allowed."""
    for kind in (socket.SOCK_DGRAM, socket.SOCK_RAW):
        try:
            sock = socket.socket(socket.AF_INET, kind, socket.IPPROTO_ICMP)
        except PermissionError:
            continue
        sock.setblocking(False)
        return sock, kind == socket.SOCK_RAW
    raise PermissionError("ICMP sockets are not permitted (ping_group_range, CAP_NET_RAW)")


async def icmp_rtts(ip: str, count: int, wait: float) -> list[float | None]:
    """One RTT in ms (or None when lost) per echo request, sent one after the other."""
    loop = asyncio.get_running_loop()
    sock, raw = open_icmp_socket()
    # The kernel rewrites the identifier of datagram sockets, so a random token in the
    # payload tells our replies from other pingers' on a raw socket.
    ident, token = os.getpid() & 0xFFFF, os.urandom(8)
    rtts: list[float | None] = []
    with sock:
        for seq in range(1, count + 1):
            sent = time.perf_counter()
            await loop.sock_sendto(sock, echo_request(ident, seq, token), (ip, 0))
            try:
                async with asyncio.timeout(wait):
                    while True:
                        reply = parse_echo_reply(await loop.sock_recv(sock, 4096), ip_header=raw)
                        if reply and reply.seq == seq and reply.payload == token:
                            break
                rtts.append((time.perf_counter() - sent) * 1000)
            except TimeoutError:
                rtts.append(None)
    return rtts


async def tcp_rtts(host: str, port: int, count: int, wait: float) -> list[float | None]:
    """TCP handshake times in ms (None when lost); a refusal is an answer too."""
    rtts: list[float | None] = []
    for _ in range(count):
        started = time.perf_counter()
        try:
            async with asyncio.timeout(wait):
                _, writer = await asyncio.open_connection(host, port)
            writer.close()
        except ConnectionRefusedError:
            pass
        except (OSError, TimeoutError):
            rtts.append(None)
            continue
        rtts.append((time.perf_counter() - started) * 1000)
    return rtts


class PingCollector(Collector):
    """``rtt.min``/``rtt.avg``/``rtt.max`` (ms) and ``loss.percent``: OK, WARNING on partial
    loss, CRITICAL when nothing answers."""

    Options = PingOptions
    options: PingOptions

    async def poll(self, device: Device, ctx: PollContext) -> PollResult:
        opts = self.options
        host = device.address or device.name
        wait = min(opts.wait, 0.9 * ctx.timeout / opts.count)  # finish within the timeout
        family = socket.AF_INET if opts.mode == "icmp" else socket.AF_UNSPEC
        infos = await asyncio.get_running_loop().getaddrinfo(
            host, None, family=family, type=socket.SOCK_STREAM
        )
        ip = str(infos[0][4][0])
        method, rtts = "tcp", None
        if opts.mode != "tcp" and infos[0][0] == socket.AF_INET:
            try:
                rtts, method = await icmp_rtts(ip, opts.count, wait), "icmp"
            except PermissionError:
                if opts.mode == "icmp":
                    raise
        if rtts is None:
            rtts = await tcp_rtts(ip, opts.tcp_port, opts.count, wait)
        return summarise(ctx, rtts, method)


def summarise(ctx: PollContext, rtts: list[float | None], method: str) -> PollResult:
    """Loss and RTT statistics of one series of probes (None = lost)."""
    answered = [r for r in rtts if r is not None]
    loss = 100.0 * (len(rtts) - len(answered)) / len(rtts)
    out = [ctx.measure("loss.percent", loss, unit="%")]
    text = f"{len(answered)}/{len(rtts)} answered ({method})"
    if answered:
        low, avg, high = min(answered), sum(answered) / len(answered), max(answered)
        out += [ctx.measure("rtt.min", low, unit="ms"), ctx.measure("rtt.avg", avg, unit="ms"),
                ctx.measure("rtt.max", high, unit="ms")]
        text += f", rtt min/avg/max {low:.2f}/{avg:.2f}/{high:.2f} ms"
    status = Status.OK if not loss else Status.WARNING if answered else Status.CRITICAL
    return ctx.result(out, status, text)
