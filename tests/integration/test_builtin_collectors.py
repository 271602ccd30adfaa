"""The built-in collectors against real peers on 127.0.0.1 that the tests start themselves.

Only the last test needs a service from ``scripts/services`` (nginx with a self-signed
certificate) and is marked ``external_service``.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import psutil  # type: ignore[import-untyped]
import pytest

from tests.support.services import NGINX_HTTPS
from watchkeeper.collect.abc import Collector, JobSpec, PollResult
from watchkeeper.collect.builtin.http import HttpCollector, HttpOptions
from watchkeeper.collect.builtin.ping import PingCollector, PingOptions, open_icmp_socket
from watchkeeper.collect.builtin.system import SystemCollector, SystemOptions
from watchkeeper.collect.builtin.tcp import TcpCollector, TcpOptions
from watchkeeper.collect.poll import run_poll
from watchkeeper.model import Device, Status

REPO = Path(__file__).resolve().parents[2]


async def poll(
    collector: Collector, address: str = "127.0.0.1", state: dict[str, Any] | None = None
) -> PollResult:
    spec = JobSpec(job_id=f"{collector.name}:peer", device=Device(name="peer", address=address),
                   intervals=(30.0,))
    return await run_poll(collector, spec, now=time.time(), timeout=5.0,
                          affecting_intervals=(30.0,), state=state if state is not None else {})


def metrics(result: PollResult) -> dict[str, float | None]:
    return {str(m.key).split("/", 2)[2]: m.value for m in result.measurements}


@pytest.fixture
async def listening_port() -> AsyncIterator[int]:
    """A TCP server on an ephemeral loopback port that accepts and closes connections."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    async with server:
        yield server.sockets[0].getsockname()[1]


@pytest.fixture
def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        status = 503 if self.path == "/status/503" else 200
        body = b"watchkeeper says hello" if status == 200 else b"unavailable"
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # keep the test output clean


@pytest.fixture
def http_server() -> Iterator[str]:
    """``127.0.0.1:PORT`` of a small real HTTP server in a thread."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


# ------------------------------------------------------------------ system


async def test_system_measures_this_host() -> None:
    me = psutil.Process().name()
    collector = SystemCollector(SystemOptions(processes=(me,)), name="system")
    state: dict[str, Any] = {}
    first = await poll(collector, state=state)
    await asyncio.sleep(0.2)
    second = await poll(collector, state=state)
    assert first.status is not Status.ERRORED
    assert "cpu.percent" not in metrics(first)  # the first poll primes the CPU baseline
    got = metrics(second)
    for name in ("cpu.percent", "memory.percent", "swap.percent", 'disk.percent{mount="/"}'):
        assert 0.0 <= (got[name] or 0.0) <= 100.0, name
    assert (got["memory.available"] or 0) > 0
    assert {"load.1", "load.5", "load.15"} <= set(got)
    assert (got[f'process.count{{name="{me}"}}'] or 0) >= 1


async def test_system_is_critical_when_a_process_or_mount_is_missing() -> None:
    opts = SystemOptions(processes=("no-such-daemon-wk",), mounts=("/", "/no/such/mount"))
    result = await poll(SystemCollector(opts, name="system"))
    assert result.status is Status.CRITICAL
    assert "process no-such-daemon-wk not running" in result.check.summary
    assert "disk /no/such/mount" in result.check.summary
    assert metrics(result)['process.count{name="no-such-daemon-wk"}'] == 0


# ------------------------------------------------------------------ tcp


async def test_tcp_connects_to_a_listening_port(listening_port: int) -> None:
    result = await poll(TcpCollector(TcpOptions(port=listening_port), name="tcp"))
    assert result.status is Status.OK
    assert 0 < (metrics(result)["connect.latency"] or 0) < 1000
    assert f"127.0.0.1:{listening_port}" in result.check.summary


async def test_tcp_is_critical_on_a_closed_port(closed_port: int) -> None:
    result = await poll(TcpCollector(TcpOptions(port=closed_port), name="tcp"))
    assert result.status is Status.CRITICAL
    assert "ConnectionRefusedError" in result.check.summary
    assert result.measurements == ()


# ------------------------------------------------------------------ http


async def test_http_ok_with_body_match(http_server: str) -> None:
    collector = HttpCollector(HttpOptions(body_match=r"says \w+"), name="http")
    try:
        result = await poll(collector, address=http_server)
    finally:
        await collector.aclose()
    assert result.status is Status.OK, result.check.summary
    got = metrics(result)
    assert (got["http.status_code"], got["http.body_bytes"]) == (200, 22)
    assert 0 < (got["http.latency"] or 0) < 5000


async def test_http_status_and_body_mismatches_are_critical(http_server: str) -> None:
    wrong_status = HttpCollector(HttpOptions(url="http://{address}/status/503"), name="http")
    wrong_body = HttpCollector(HttpOptions(body_match="^goodbye"), name="http")
    try:
        status = await poll(wrong_status, address=http_server)
        body = await poll(wrong_body, address=http_server)
    finally:
        await wrong_status.aclose()
        await wrong_body.aclose()
    assert status.status is Status.CRITICAL
    assert "HTTP 503" in status.check.summary
    assert body.status is Status.CRITICAL
    assert "body does not match" in body.check.summary


async def test_http_to_a_closed_port_is_critical(closed_port: int) -> None:
    collector = HttpCollector(HttpOptions(), name="http")
    try:
        result = await poll(collector, address=f"127.0.0.1:{closed_port}")
    finally:
        await collector.aclose()
    assert result.status is Status.CRITICAL
    assert "ConnectError" in result.check.summary


# ------------------------------------------------------------------ ping


def _icmp_allowed() -> bool:
    try:
        sock, _ = open_icmp_socket()
    except PermissionError:
        return False
    sock.close()
    return True


@pytest.mark.skipif(not _icmp_allowed(), reason="no ICMP socket may be opened here")
async def test_ping_localhost_over_icmp() -> None:
    result = await poll(PingCollector(PingOptions(mode="icmp", count=3), name="ping"))
    assert result.status is Status.OK, result.check.summary
    got = metrics(result)
    assert got["loss.percent"] == 0
    assert 0 < (got["rtt.min"] or 0) <= (got["rtt.avg"] or 0) <= (got["rtt.max"] or 0) < 1000
    assert "(icmp)" in result.check.summary


async def test_ping_localhost_over_tcp(listening_port: int) -> None:
    opts = PingOptions(mode="tcp", tcp_port=listening_port, count=2)
    result = await poll(PingCollector(opts, name="ping"))
    assert result.status is Status.OK
    assert metrics(result)["loss.percent"] == 0
    assert "2/2 answered (tcp)" in result.check.summary


async def test_a_refused_tcp_ping_still_counts_as_an_answer(closed_port: int) -> None:
    opts = PingOptions(mode="tcp", tcp_port=closed_port, count=2)
    result = await poll(PingCollector(opts, name="ping"))
    assert result.status is Status.OK  # the host answered with a reset: it is up


# ------------------------------------------------------------------ nginx (scripts/services)


@pytest.mark.external_service
async def test_https_certificate_days_left_from_nginx() -> None:
    """The test nginx serves a self-signed certificate valid for 30 days from its creation."""
    x509 = pytest.importorskip("cryptography.x509")
    collector = HttpCollector(HttpOptions(url="https://{address}/", verify_tls=False), name="http")
    try:
        result = await poll(collector, address=f"127.0.0.1:{NGINX_HTTPS}")
    finally:
        await collector.aclose()
    assert result.status in (Status.OK, Status.WARNING), result.check.summary
    days = metrics(result)["tls.days_left"]
    assert days is not None
    assert 0 < days <= 30.01
    pem = REPO / ".services" / "nginx" / "cert.pem"
    if pem.exists():  # the exact figure, from the certificate nginx was given
        cert = x509.load_pem_x509_certificate(pem.read_bytes())
        expected = (cert.not_valid_after_utc.timestamp() - time.time()) / 86_400
        assert days == pytest.approx(expected, abs=0.01)
    else:
        assert days >= 29
