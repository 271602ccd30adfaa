"""A real ``watchkeeper up`` with data, and Debian's chromium driven by Playwright.

The stack holds: check.status series of two devices, a latency series with an hour of
10-s points, an alarm (a Canopsis event), a static inventory, esmond packet loss for
two paths, and markup in a label, a unit, an alarm message and an inventory attribute.
Screenshots go to build/console-screenshots/ (gitignored).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from tests.e2e.test_up import Stack, free_port

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run"]
SHOTS = REPO / "build" / "console-screenshots"
VENDOR = REPO / "src" / "watchkeeper" / "api" / "console" / "static" / "vendor"
WATCHKEEPER = [sys.executable, "-m", "watchkeeper.cli.main"]

# Markup a device or a client could send: it must show as text and run nothing.
IMG = "<img src=x onerror=\"window.__xss=1\">"
SCRIPT = "<script>window.__xss=2</script>"
XSS_SERIES = f'web1/xss/m{{note="{SCRIPT}"}}'
LATENCY = "web1/http/latency"
ENTITY = "resource/web1/http-check"
HOUR_POINTS = 360


@dataclass
class Console:
    """The running stack: its URL, a write token, and what was written."""

    url: str
    token: str
    now: float
    latency: list[tuple[float, float]] = field(default_factory=list)

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Token {self.token}"}


def _seed(console: Console) -> None:
    now = console.now
    auth = console.headers()
    start = (now - 3600) // 10 * 10
    console.latency = [(start + 10 * i, float(i % 50)) for i in range(HOUR_POINTS)]
    points: list[list[object]] = [[LATENCY, ts, v] for ts, v in console.latency]
    for ts in (now - 65, now - 35, now - 5):
        points += [["web1/http/check.status", ts, 0.0], ["db1/ssh/check.status", ts, 2.0],
                   ["db1/disk/check.status", ts, 1.0], [XSS_SERIES, ts, 1.0]]
    written = httpx.post(f"{console.url}/api/v1/write", headers=auth, timeout=30, json={
        "points": points, "units": {LATENCY: "ms", XSS_SERIES: IMG}})
    assert written.status_code == 201, written.text
    event = {"connector": "nagios", "connector_name": "n1", "event_type": "check",
             "source_type": "resource", "component": "web1", "resource": "http-check",
             "state": 3, "output": f"down {IMG} {SCRIPT}", "timestamp": int(now)}
    posted = httpx.post(f"{console.url}/api/v1/events/canopsis", content=json.dumps([event]),
                        headers=auth, timeout=10)
    assert posted.status_code == 202, posted.text
    archive = f"{console.url}/esmond/perfsonar/archive"
    for destination, lost in (("10.0.0.2", 5), ("10.0.0.3", 0)):  # of 100 packets
        created = httpx.post(f"{archive}/", headers=auth, timeout=10, json={
            "subject-type": "point-to-point", "source": "10.0.0.1", "destination": destination,
            "measurement-agent": "10.0.0.1", "tool-name": "pscheduler/owping",
            "input-source": "h1", "input-destination": destination,
            "event-types": [{"event-type": "packet-loss-rate", "summaries": []}]})
        assert created.status_code == 201, created.text
        key = created.json()["metadata-key"]
        point = httpx.post(f"{archive}/{key}/packet-loss-rate/base", headers=auth, timeout=10,
                           json={"ts": int(now) - 60,
                                 "val": {"numerator": lost, "denominator": 100}})
        assert point.status_code == 201, point.text
    deadline = time.monotonic() + 30
    while not httpx.get(f"{console.url}/api/v1/alarms", timeout=5).json():
        assert time.monotonic() < deadline, "the alarm never opened"
        time.sleep(0.2)


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    if not (VENDOR / "uPlot.iife.min.js").is_file():
        pytest.fail("uPlot is not in the console's static folder: run `make console`")
    tmp = tmp_path_factory.mktemp("console")
    config = tmp / "wk.yaml"
    config.write_text(
        f"data_dir: {tmp / 'var'}\n"
        "collectors: []\n"
        "inventory:\n"
        "  devices:\n"
        "    - name: web1\n"
        "      address: 127.0.0.1\n"
        f"      groups: [{json.dumps(IMG)}, {json.dumps(SCRIPT)}]\n"
        "    - name: db1\n"
        "      address: 127.0.0.2\n")
    (tmp / "var").mkdir()
    created = subprocess.run([*WATCHKEEPER, "token", "create", "--user", "console", "--write",
                              "-c", str(config)], capture_output=True, text=True, timeout=60,
                             check=False)
    assert created.returncode == 0, created.stderr
    port = free_port()
    proc = subprocess.Popen([*WATCHKEEPER, "up", "-c", str(config), "--listen",
                             f"127.0.0.1:{port}"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    stack = Stack(proc, f"http://127.0.0.1:{port}")
    try:
        stack.wait_ready()
        console = Console(stack.url, created.stdout.split()[-1], time.time())
        _seed(console)
        yield console
    finally:
        if proc.poll() is None:
            stack.stop()


@pytest.fixture(scope="module")  # not wider: the sync API's loop would block async tests
def browser() -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: scripts/services up installs it (chromium)")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()
