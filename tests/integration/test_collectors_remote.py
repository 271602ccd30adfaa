"""A remote collector against a real ``watchkeeper serve`` process that is stopped and restarted
mid-run: results are spooled while it is away and delivered in order when it is back."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
WATCHKEEPER = [sys.executable, "-m", "watchkeeper.cli.main"]
SERIES = "target/count/polls"

SERVER_CONFIG = """\
inventory:
  devices:
    - {name: target, address: 127.0.0.1}
collectors:
  - name: count
    plugin: tests.unit.collect.plugins:Counting
    interval: 1
collect:
  refresh: 1
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


class Processes:
    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.procs: list[subprocess.Popen[str]] = []
        self.config = tmp_path / "server.yaml"
        self.config.write_text(SERVER_CONFIG)
        # The results endpoint needs a write token, as any write does.
        created = subprocess.run([*WATCHKEEPER, "token", "create", "--user", "collector",
                                  "--write", "--data", str(tmp_path / "var")], cwd=REPO,
                                 capture_output=True, text=True, timeout=60, check=True)
        self.token = created.stdout.split()[-1]

    def spawn(self, *args: str) -> subprocess.Popen[str]:
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "WK_TEST_TOKEN": self.token}
        proc = subprocess.Popen([*WATCHKEEPER, *args], cwd=REPO, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, env=env)
        self.procs.append(proc)
        return proc

    def server(self) -> subprocess.Popen[str]:
        proc = self.spawn("serve", "--config", str(self.config), "--listen",
                          f"127.0.0.1:{self.port}", "--data", str(self.tmp_path / "var"))
        wait_for(self.healthy, 30, "the server")
        return proc

    def healthy(self) -> bool:
        try:
            return httpx.get(f"{self.url}/api/v1/health", timeout=1).status_code == 200
        except httpx.TransportError:
            return False

    def values(self) -> list[float]:
        response = httpx.get(f"{self.url}/api/v1/query",
                             params={"series": SERIES, "since": "1h"}, timeout=5)
        if response.status_code == 404:
            return []
        response.raise_for_status()
        return [value for _, value in response.json()["points"]]


def stop(proc: subprocess.Popen[str]) -> tuple[int, str, str]:
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    return proc.returncode, out, err


@pytest.fixture
def procs(tmp_path: Path) -> Iterator[Processes]:
    processes = Processes(tmp_path)
    yield processes
    for proc in processes.procs:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def test_results_survive_a_server_restart_in_order(procs: Processes, tmp_path: Path) -> None:
    server = procs.server()
    collector = procs.spawn("collect", "--server", procs.url, "--token", "env:WK_TEST_TOKEN",
                            "--spool", str(tmp_path / "spool"))
    wait_for(lambda: len(procs.values()) >= 3, 30, "the first results")

    code, _, _ = stop(server)
    assert code == 0
    time.sleep(4)  # the collector keeps polling and spools meanwhile
    assert collector.poll() is None

    procs.server()  # same port, same archive
    before = len(procs.values())
    wait_for(lambda: len(procs.values()) >= before + 3, 30, "the spooled results")
    values = procs.values()
    assert values == [float(n) for n in range(1, len(values) + 1)], values  # none lost

    code, _, err = stop(collector)
    assert code == 0, err
    assert "server unreachable, spooling results" in err
    assert "server reachable again; delivering" in err
