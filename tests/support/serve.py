"""Run ``watchkeeper serve`` as a subprocess on a free loopback port for a test."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[2]
WATCHKEEPER = [sys.executable, "-m", "watchkeeper.cli.main"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def write_token(data_dir: Path, user: str) -> str:
    """A new write token, made by ``watchkeeper token create`` where the servers of
    ``data_dir`` read them."""
    created = subprocess.run([*WATCHKEEPER, "token", "create", "--user", user, "--write",
                              "--data-dir", str(data_dir)], cwd=REPO, capture_output=True,
                             text=True, timeout=60, check=True)
    return created.stdout.split()[-1]


def healthy(url: str) -> bool:
    """The server answers its health route."""
    try:
        return httpx.get(f"{url}/api/v1/health", timeout=1).status_code == 200
    except httpx.TransportError:
        return False


@contextmanager
def serving(*flags: str, ready: Callable[[str], bool] = healthy,
            start_timeout: float = 60) -> Iterator[str]:
    """One ``watchkeeper serve`` process; yields its URL once ``ready(url)``; Ctrl-C at the
    end (killed if it does not stop within a minute)."""
    port = free_port()
    proc = subprocess.Popen(
        [*WATCHKEEPER, "serve", "--listen", f"127.0.0.1:{port}", "--log-level", "warning",
         *flags], cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"})
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + start_timeout
        while not ready(url):
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.kill()
                raise AssertionError(f"server did not start: {proc.communicate()[1]}")
            time.sleep(0.1)
        yield url
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
        try:
            proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
