"""esmond writes through a real ``watchkeeper serve`` process, with a token created by
``watchkeeper token create`` in a second process while the server runs."""

from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
WATCHKEEPER = [sys.executable, "-m", "watchkeeper.cli.main"]
METADATA = {
    "subject-type": "point-to-point", "source": "10.0.0.1", "destination": "10.0.0.2",
    "measurement-agent": "10.0.0.1", "tool-name": "bwctl/iperf3", "input-source": "h1",
    "input-destination": "h2", "time-duration": 20,
    "event-types": [{"event-type": "throughput",
                     "summaries": [{"summary-type": "average", "summary-window": 86400}]}],
}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, Path, subprocess.Popen[str]]]:
    port = _free_port()
    data = tmp_path / "var"
    proc = subprocess.Popen(
        [*WATCHKEEPER, "serve", "--listen", f"127.0.0.1:{port}", "--data-dir", str(data)],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"})
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(f"{url}/api/v1/health", timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline or proc.poll() is not None:
            proc.kill()
            raise AssertionError(f"server did not start: {proc.communicate()[1]}")
        time.sleep(0.1)
    try:
        yield url, data, proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.communicate(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.communicate()


def _token(data: Path, *flags: str) -> str:
    done = subprocess.run([*WATCHKEEPER, "token", "create", "--user", "ps", *flags,
                           "--data-dir", str(data)], cwd=REPO, capture_output=True, text=True,
                          timeout=60, check=True)
    return done.stdout.split()[-1]


def test_token_created_while_serving_authorizes_esmond_writes(
        server: tuple[str, Path, subprocess.Popen[str]]) -> None:
    """The key (last word printed) works at once; read-only keys get 403, none 401; the
    key is stored only as a hash and never logged."""
    url, data, proc = server
    archive = f"{url}/esmond/perfsonar/archive"
    assert httpx.post(f"{archive}/", json=METADATA).status_code == 401
    writer = _token(data, "--write")
    reader = _token(data)
    assert len(writer) == 40
    refused = httpx.post(f"{archive}/", json=METADATA,
                         headers={"Authorization": f"Token {reader}"})
    assert refused.status_code == 403
    auth = {"Authorization": f"Token {writer}"}
    created = httpx.post(f"{archive}/", json=METADATA, headers=auth)
    assert created.status_code == 201
    key = created.json()["metadata-key"]
    point = httpx.post(f"{archive}/{key}/throughput/base", json={"ts": 1398965989, "val": 23},
                       headers=auth)
    assert point.status_code == 201
    got = httpx.get(f"{archive}/{key}/throughput/base", params={"time-start": 1398965989})
    assert got.headers["content-type"] == "application/json"
    assert got.json() == [{"ts": 1398965989, "val": 23.0}]
    native = httpx.post(f"{url}/api/v1/write", json={"points": [["a/b/c", 1.0, 1.0]]})
    assert native.status_code == 401
    assert httpx.post(f"{url}/api/v1/write", json={"points": [["a/b/c", 1.0, 1.0]]},
                      headers=auth).status_code == 201
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert writer not in out + err
    with sqlite3.connect(data / "auth.sqlite3") as db:
        stored = db.execute("SELECT key_hash, username, can_write FROM api_tokens").fetchall()
    assert len(stored) == 2
    assert all(writer not in str(row) for row in stored)
