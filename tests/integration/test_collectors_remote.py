"""A remote collector against a real ``watchkeeper serve`` process that is stopped and restarted
mid-run: results are spooled while it is away and delivered in order when it is back."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import msgspec
import pytest

from tests.support.serve import free_port

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
WATCHKEEPER = [sys.executable, "-m", "watchkeeper.cli.main"]
SERIES = "target/count/polls"

SERVER_CONFIG = """\
inventory:
  devices:
    - {name: target, address: 127.0.0.1, connections: {x: {bearer: s3cret-sentinel}}}
collectors:
  - name: count
    plugin: tests.unit.collect.plugins:Counting
    interval: 1
  - name: tally
    plugin: tests.unit.collect.plugins:Tally
    interval: 1
    options: {log: LOG}
collect:
  refresh: 1
"""


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
        self.tally = tmp_path / "tally.log"
        self.config.write_text(SERVER_CONFIG.replace("LOG", str(self.tally)))
        # The results endpoint needs a write token, as any write does.
        (tmp_path / "var").mkdir()
        created = subprocess.run([*WATCHKEEPER, "token", "create", "--user", "collector",
                                  "--write", "--data-dir", str(tmp_path / "var")], cwd=REPO,
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
                          f"127.0.0.1:{self.port}", "--data-dir", str(self.tmp_path / "var"))
        wait_for(self.healthy, 30, "the server")
        return proc

    def healthy(self) -> bool:
        try:
            return httpx.get(f"{self.url}/api/v1/health", timeout=1).status_code == 200
        except httpx.TransportError:
            return False

    def points(self, series: str = SERIES) -> list[tuple[float, float]]:
        response = httpx.get(f"{self.url}/api/v1/query",
                             params={"series": series, "since": "1h"}, timeout=5)
        if response.status_code == 404:
            return []
        response.raise_for_status()
        return [(ts, value) for ts, value in response.json()["points"]]

    def values(self) -> list[float]:
        return [value for _, value in self.points()]

    def collector(self) -> subprocess.Popen[str]:
        return self.spawn("collect", "--server", self.url, "--token", "env:WK_TEST_TOKEN",
                          "--spool", str(self.tmp_path / "spool"))


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


def tallied(procs: Processes) -> set[float]:
    return {round(float(line), 3) for line in procs.tally.read_text().split()}


def delivered(procs: Processes) -> set[float]:
    return {round(ts, 3) for ts, _ in procs.points("target/tally/polls")}


def test_a_collector_killed_during_an_outage_loses_no_poll(procs: Processes) -> None:
    """kill -9 while the server is away and sending backs off: every poll that finished
    was already in the on-disk spool, and arrives once both are back."""
    server = procs.server()
    collector = procs.collector()
    wait_for(lambda: len(delivered(procs)) >= 2, 30, "the first results")
    code, _, _ = stop(server)
    assert code == 0
    time.sleep(12)  # sending backs off (1, 2, 4, 8 s) while polls go on
    collector.kill()
    collector.communicate()
    polled = tallied(procs)
    newest = max(polled)  # it may have been killed between its poll and the spool

    procs.server()
    procs.collector()
    wanted = polled - {newest}
    wait_for(lambda: wanted <= delivered(procs), 60, "every spooled result")


def test_a_batch_resent_across_a_server_kill_is_stored_once(procs: Processes) -> None:
    """The server keeps each collector's last batch seq with the results, so a batch
    re-sent after kill -9 and a restart is acknowledged as a duplicate."""
    from watchkeeper.wire import CollectBatch, CollectResult, WirePoint

    result = CollectResult(plugin="probe", job="probe:p1", device="p1", scheduled=1e9,
                           started=1e9, finished=1e9, status="ok",
                           points=[WirePoint("p1/probe/value", time.time(), 1.0)])
    body = msgspec.json.encode(CollectBatch(collector="probe/e1", seq=7, results=[result]))
    headers = {"Authorization": f"Token {procs.token}"}
    url = f"{procs.url}/api/v1/collect/results"
    server = procs.server()
    assert httpx.post(url, content=body, headers=headers, timeout=10).json() == {
        "accepted": 1, "duplicate": False}
    server.kill()
    server.communicate()
    procs.server()
    assert httpx.post(url, content=body, headers=headers, timeout=10).json() == {
        "accepted": 0, "duplicate": True}


def test_the_collect_config_is_never_public(procs: Processes) -> None:
    """Under the default public reads, the config (device connections) needs a write token."""
    procs.server()
    url = f"{procs.url}/api/v1/collect/config"
    anonymous = httpx.get(url, timeout=10)
    assert anonymous.status_code == 401
    assert "s3cret" not in anonymous.text
    allowed = httpx.get(url, headers={"Authorization": f"Token {procs.token}"}, timeout=10)
    assert allowed.status_code == 200
    assert "s3cret-sentinel" in allowed.text
