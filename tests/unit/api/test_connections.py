"""A healthy server never resets a client's connection (issue 17 §4, last item).

Two causes were found: uvicorn closed a keep-alive connection right after answering a
request whose application raised (so a client reusing it at once saw a reset), and it
closed idle connections after 5 s, exactly when httpx's pool still reuses them.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.support.server import serve_in_thread
from watchkeeper.api import create_app
from watchkeeper.archive.backends.memory import MemoryArchive
from watchkeeper.runtime.service import KEEP_ALIVE_SECONDS


def _local_port(response: httpx.Response) -> int:
    stream = response.extensions["network_stream"]
    return int(stream.get_extra_info("client_addr")[1])


async def _boom(request: Request) -> Response:
    raise ValueError("a bug nobody caught")


def test_an_unexpected_error_keeps_the_connection(archive: MemoryArchive,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    """A 500 from an uncaught exception is answered on a connection that stays open:
    200 error/write pairs over one connection, no transport error, one local port."""
    app = create_app(archive, metrics=archive.metrics, extra_routes=[Route("/boom", _boom)])
    ports = set()
    with serve_in_thread(app) as url, httpx.Client(
            base_url=url, limits=httpx.Limits(max_connections=1)) as client:
        for _ in range(200):
            failed = client.get("/boom")
            assert failed.status_code == 500
            assert failed.json()["detail"] == "internal error: ValueError"
            written = client.post("/api/v1/write", json={"points": []})
            assert written.status_code == 201
            ports |= {_local_port(failed), _local_port(written)}
    assert len(ports) == 1
    assert "a bug nobody caught" in caplog.text  # logged with its traceback


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def server(tmp_path: Path) -> Iterator[str]:
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "watchkeeper.cli.main", "serve", "--listen",
         f"127.0.0.1:{port}", "--data-dir", str(tmp_path / "var")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"})
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, proc.communicate()
            try:
                if httpx.get(f"{url}/api/v1/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "watchkeeper serve did not start"
                time.sleep(0.1)
        yield url
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()


@pytest.mark.slow
def test_idle_connections_outlive_the_clients_pool_expiry(server: str) -> None:
    """A real ``watchkeeper serve``: a connection idle past httpx's default pool expiry
    (5 s, uvicorn's old keep-alive) is still the server's to reuse, so the server is
    never the one closing under a client's reuse."""
    assert KEEP_ALIVE_SECONDS > 5.0
    with httpx.Client(base_url=server, limits=httpx.Limits(keepalive_expiry=30)) as client:
        first = client.post("/api/v1/write", json={"points": []})
        assert first.status_code in (201, 401)
        time.sleep(6.0)  # past the 5 s both httpx's pool and uvicorn's default used
        again = client.get("/api/v1/health")
        assert again.status_code == 200
        assert _local_port(again) == _local_port(first)


def test_oversized_bodies_get_413_not_a_reset(archive: MemoryArchive) -> None:
    """Over a real connection, a body past the limit, declared or chunked, is answered 413
    while the client is still sending it, and the connection then serves the next request."""
    app = create_app(archive, metrics=archive.metrics, max_body_bytes=1_000_000)
    big = b" " * 5_000_000

    def chunked() -> Iterator[bytes]:
        for start in range(0, len(big), 65536):
            yield big[start:start + 65536]

    with serve_in_thread(app) as url, httpx.Client(
            base_url=url, limits=httpx.Limits(max_connections=1), timeout=30) as client:
        for body in (big, chunked()):
            refused = client.post("/api/v1/write", content=body)
            assert refused.status_code == 413
            assert "over 1000000 bytes" in refused.json()["detail"]
            after = client.post("/api/v1/write", json={"points": []})
            assert after.status_code == 201
