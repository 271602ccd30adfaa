"""Can a TCP port be connected to, and how long does the handshake take?"""

from __future__ import annotations

import asyncio
import socket
import time

import msgspec

from watchkeeper.collect.abc import Collector, PollContext, PollResult
from watchkeeper.collect.poll import describe
from watchkeeper.model import Device, Status


class TcpOptions(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    port: int  # required: there is no sensible default port
    host: str = ""  # default: the device's address (or its name)


class TcpCollector(Collector):
    """``connect.latency`` (ms) of a TCP connect; refused, unreachable or too slow is CRITICAL."""

    Options = TcpOptions
    options: TcpOptions

    async def poll(self, device: Device, ctx: PollContext) -> PollResult:
        host = self.options.host or device.address or device.name
        where = f"{host}:{self.options.port}"
        # Give up a little before the poll's own timeout, so a silent port reads as an
        # unreachable service (CRITICAL), not as a broken check (ERRORED).
        budget = ctx.timeout * 0.9
        try:
            latency = await connect_latency(host, self.options.port, budget)
        except TimeoutError:
            text = f"connect to {where} timed out after {budget:g}s"
            return ctx.result([], Status.CRITICAL, text)
        except OSError as exc:
            return ctx.result([], Status.CRITICAL, f"connect to {where} failed: {describe(exc)}")
        return ctx.result(
            [ctx.measure("connect.latency", latency, unit="ms")],
            Status.OK,
            f"connected to {where} in {latency:.2f} ms",
        )


async def connect_latency(host: str, port: int, timeout: float) -> float:  # noqa: ASYNC109
    """Milliseconds for the TCP handshake (name resolution excluded); OSError on failure."""
    async with asyncio.timeout(timeout):
        infos = await asyncio.get_running_loop().getaddrinfo(
            host, port, type=socket.SOCK_STREAM
        )
        ip = str(infos[0][4][0])
        started = time.perf_counter()
        _, writer = await asyncio.open_connection(ip, port)
    latency = (time.perf_counter() - started) * 1000
    writer.close()
    try:
        async with asyncio.timeout(1.0):
            await writer.wait_closed()
    except (OSError, TimeoutError):
        pass  # the connect is what we measured; a messy close is not the service's fault
    return latency
