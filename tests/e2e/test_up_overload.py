"""``watchkeeper up`` overloaded by 1,500 http jobs at 1 s against a healthy local server
(issue 17 §4): it says it is saturated (health, metrics, self-check), never reports the
devices CRITICAL, and stops within 15 s of Ctrl-C."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.support.httpd import local_httpd
from tests.support.serve import free_port

pytestmark = pytest.mark.slow

JOBS = 1500


def config(tmp_path: Path, url: str, port: int) -> Path:
    lines = [f"data_dir: {tmp_path / 'var'}", f"server: {{listen: '127.0.0.1:{port}'}}",
             "inventory:", "  devices:"]
    lines += [f"    - {{name: d{i}, address: 127.0.0.1}}" for i in range(JOBS)]
    lines += ["collectors:",
              (f"  - {{name: web, plugin: http, interval: 1, timeout: 1, devices: ['*'],"
               f" options: {{url: '{url}'}}}}")]
    path = tmp_path / "overload.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


def health(base: str) -> dict[str, object] | None:
    try:
        answer = httpx.get(f"{base}/api/v1/health", timeout=5)
    except httpx.TransportError:
        return None
    return answer.json() if answer.status_code == 200 else None


def test_an_overloaded_up_says_so_and_stops_promptly(tmp_path: Path) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with local_httpd() as url:
        proc = subprocess.Popen(
            [sys.executable, "-m", "watchkeeper.cli.main", "up", "-c",
             str(config(tmp_path, url, port))],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"})
        try:
            state = None
            deadline = time.monotonic() + 90  # generous: start-up and one window
            while time.monotonic() < deadline and proc.poll() is None:
                state = health(base)
                if state is not None and state["status"] == "degraded":
                    break
                time.sleep(1)
            assert state is not None
            assert state["status"] == "degraded"
            assert state["reasons"]
            metrics = httpx.get(f"{base}/metrics", timeout=10).text
            assert "watchkeeper_poller_saturated 1.0" in metrics
            assert 'status="critical"' not in metrics  # the server was healthy all along
            proc.send_signal(signal.SIGINT)
            _, err = proc.communicate(timeout=15)  # `up` stops within 15 s of Ctrl-C
            assert proc.returncode == 0, err[-2000:]
            assert "the poller is saturated" in err
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
