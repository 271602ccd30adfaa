"""The thin path, end to end: ``watchkeeper up`` as a subprocess, read back over HTTP and CLI."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.serve import free_port

pytestmark = pytest.mark.slow

WATCHKEEPER = [sys.executable, "-m", "watchkeeper.cli.main"]


class Stack:
    def __init__(self, proc: subprocess.Popen[str], url: str) -> None:
        self.proc = proc
        self.url = url

    def wait_ready(self, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"watchkeeper exited early:\n{self.proc.communicate()}")
            try:
                if httpx.get(f"{self.url}/api/v1/health", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise AssertionError("watchkeeper did not become ready")

    def stop(self) -> tuple[int, str, str]:
        self.proc.send_signal(signal.SIGINT)
        out, err = self.proc.communicate(timeout=30)
        return self.proc.returncode, out, err


@pytest.fixture
def start(tmp_path: Path) -> Iterator[object]:
    procs: list[subprocess.Popen[str]] = []

    def _start(command: str, *extra: str) -> Stack:
        port = free_port()
        proc = subprocess.Popen(
            [*WATCHKEEPER, command, "--listen", f"127.0.0.1:{port}", "--data-dir",
             str(tmp_path / "var"), *extra],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        procs.append(proc)
        stack = Stack(proc, f"http://127.0.0.1:{port}")
        stack.wait_ready()
        return stack

    yield _start
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def _series(url: str) -> set[str]:
    body = httpx.get(f"{url}/api/v1/series", timeout=5).json()
    return {s["series"] for s in body["series"]}


def test_up_watches_this_machine_and_stops_cleanly(start: object) -> None:
    """Within 30 s the default collectors' series are queryable; Ctrl-C loses nothing."""
    stack = start("up")  # type: ignore[operator]
    wanted = {"localhost/system/cpu.percent", "localhost/system/memory.percent",
              "localhost/api-tcp/connect.latency", "localhost/api-http/http.latency",
              "localhost/ping/rtt.avg", "localhost/api-http/check.status"}
    deadline = time.monotonic() + 30
    while not wanted <= (found := _series(stack.url)) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert wanted <= found, f"missing {wanted - found}"

    status = httpx.get(f"{stack.url}/api/v1/query",
                       params={"series": "localhost/api-http/check.status", "since": "5m"}).json()
    assert status["points"]
    assert all(v == 0.0 for _, v in status["points"])

    cli = subprocess.run([*WATCHKEEPER, "query", "localhost/system/cpu.percent", "--since", "5m",
                          "--server", stack.url, "-o", "json"],
                         capture_output=True, text=True, timeout=30, check=True)
    points = json.loads(cli.stdout)
    assert points
    assert all(0.0 <= p["value"] <= 100.0 for p in points)
    human = subprocess.run([*WATCHKEEPER, "query", "localhost/system/cpu.percent", "--since",
                            "5m", "--server", stack.url], capture_output=True, text=True,
                           timeout=30, check=True)
    assert "localhost/system/cpu.percent" in human.stdout

    # The alarms engine runs by default; on a busy machine the CPU check may well warn.
    listed = httpx.get(f"{stack.url}/api/v1/alarms").json()
    assert all(a["component"] == "localhost" for a in listed)
    alarms = subprocess.run([*WATCHKEEPER, "alarms", "--server", stack.url], capture_output=True,
                            text=True, timeout=30, check=True)
    assert re.search(r"\b\d+ alarms\b", alarms.stdout), alarms.stdout

    metrics = httpx.get(f"{stack.url}/metrics").text
    assert "watchkeeper_points_ingested_total" in metrics
    assert 'watchkeeper_polls_total{plugin="system",status="ok"}' in metrics
    assert 'watchkeeper_engine_queue_depth{engine="alarms"}' in metrics
    assert "watchkeeper_scheduler_lateness_seconds_bucket" in metrics

    before = httpx.get(f"{stack.url}/api/v1/query",
                       params={"series": "localhost/system/cpu.percent", "since": "1h"}).json()
    code, out, err = stack.stop()
    assert code == 0, err
    assert "watchkeeper stopped" in out

    served = start("serve")  # type: ignore[operator]
    after = httpx.get(f"{served.url}/api/v1/query",
                      params={"series": "localhost/system/cpu.percent", "since": "1h"}).json()
    assert set(map(tuple, before["points"])) <= set(map(tuple, after["points"]))
    code, _, err = served.stop()
    assert code == 0, err


def test_query_against_a_stopped_server_fails_clearly() -> None:
    cli = subprocess.run([*WATCHKEEPER, "query", "a/b/c", "--server",
                          f"http://127.0.0.1:{free_port()}"], capture_output=True, text=True,
                         timeout=30, check=False)
    assert cli.returncode == 69  # EX_UNAVAILABLE
    assert "cannot reach" in cli.stderr
    assert "--server URL or $WATCHKEEPER_SERVER" in cli.stderr


def test_bad_config_is_refused_before_anything_starts(tmp_path: Path) -> None:
    config = tmp_path / "wk.yaml"
    config.write_text("collectors:\n  - name: web\n    plugin: http\n    options:\n"
                      "      url: http://x/\n      retries: many\n")
    result = subprocess.run([*WATCHKEEPER, "up", "--config", str(config), "--data-dir",
                             str(tmp_path / "var")], capture_output=True, text=True, timeout=30,
                            check=False)
    assert result.returncode == 78  # EX_CONFIG
    assert f"{config}:6: collectors[0].options.retries: unknown option" in result.stderr
    assert not (tmp_path / "var").exists()
