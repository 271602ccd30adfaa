"""``watchkeeper collect --once`` as a subprocess: inventory file, report, exit codes."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
WATCHKEEPER = [sys.executable, "-m", "watchkeeper.cli.main"]

INVENTORY = """\
credentials:
  lab: {community: env:WK_TEST_COMMUNITY}
defaults:
  groups: [lab]
devices:
  r1: {address: 127.0.0.1, tags: [core]}
  r2:
    address: 127.0.0.1
    connections:
      snmp: {credentials: lab}
"""

CONFIG = """\
inventory:
  file: {inventory}
collectors:
  - name: health
    plugin: tests.unit.collect.plugins:Fixed
    devices: [group:lab]
    options: {{status: ok, by_device: {{r2: {status}}}}}
"""


def collect(tmp_path: Path, status: str, *extra: str) -> subprocess.CompletedProcess[str]:
    inventory = tmp_path / "inventory.yaml"
    inventory.write_text(INVENTORY)
    config = tmp_path / "wk.yaml"
    config.write_text(CONFIG.format(inventory=inventory, status=status))
    return subprocess.run(
        [*WATCHKEEPER, "collect", "--once", "--config", str(config), *extra],
        cwd=REPO, capture_output=True, text=True, timeout=60, check=False,
        env={**os.environ, "WK_TEST_COMMUNITY": "c0mmunity-sentinel", "COLUMNS": "200"},
    )


@pytest.mark.parametrize(("status", "code"),
                         [("ok", 0), ("warning", 1), ("critical", 2), ("errored", 3)])
def test_exit_code_is_the_rollup(tmp_path: Path, status: str, code: int) -> None:
    done = collect(tmp_path, status)
    assert done.returncode == code, done.stderr
    assert f"r2 is {status}" in done.stdout
    # The run ends with its summary: counts per status, then the worst results.
    lines = done.stdout.rstrip().splitlines()
    if status == "ok":
        assert lines[-1] == "2 results: 2 ok; overall OK"
    else:
        assert lines[-2] == f"2 results: 1 {status}, 1 ok; overall {status.upper()}"
        assert lines[-1] == f"  {status} r2 health: r2 is {status}"


def test_report_and_device_selection(tmp_path: Path) -> None:
    report = tmp_path / "out" / "report.json"
    done = collect(tmp_path, "critical", "--report", str(report), "--device", "tag:core")
    assert done.returncode == 0, done.stderr  # r2 (critical) was not selected
    data = yaml.safe_load(report.read_text())
    assert data["devices"] == {"r1": "ok"}
    assert (tmp_path / "out" / "report.html").exists()
    assert "c0mmunity-sentinel" not in report.read_text() + done.stdout + done.stderr


def test_a_bad_inventory_is_refused_with_its_line(tmp_path: Path) -> None:
    inventory = tmp_path / "inventory.yaml"
    config = tmp_path / "wk.yaml"
    config.write_text(CONFIG.format(inventory=inventory, status="ok"))
    inventory.write_text("devices:\n  r1:\n    connections:\n      ssh: {password: hunter2}\n")
    done = subprocess.run([*WATCHKEEPER, "collect", "--once", "--config", str(config)],
                          cwd=REPO, capture_output=True, text=True, timeout=60,
                          check=False)
    assert done.returncode == 78  # EX_CONFIG, not 2 (CRITICAL)
    assert f"{inventory}:4: devices.r1.connections.ssh.password: secrets must be references" \
        in done.stderr
    assert "hunter2" not in done.stderr


def test_the_local_daemon_writes_into_the_archive(tmp_path: Path) -> None:
    """``watchkeeper collect`` without --once or --server: polls into ``data_dir``."""
    import signal
    import time

    config = tmp_path / "wk.yaml"
    config.write_text("inventory:\n  devices: [{name: r1, address: 127.0.0.1}]\n"
                      "collectors:\n  - {name: count, plugin: tests.unit.collect.plugins:Counting,"
                      " interval: 0.5}\n")
    data = tmp_path / "var"
    proc = subprocess.Popen([*WATCHKEEPER, "collect", "--config", str(config), "--data-dir",
                             str(data)], cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    started = proc.stdout.readline()  # polling starts now (start-up is slow on a busy host)
    time.sleep(5)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "watchkeeper collect: running" in started
    assert "watchkeeper collect stopped" in out
    port = _free_port()
    server = subprocess.Popen([*WATCHKEEPER, "serve", "--listen", f"127.0.0.1:{port}", "--data-dir",
                               str(data)], cwd=REPO, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    try:
        points = _points(f"http://127.0.0.1:{port}", "r1/count/polls")
    finally:
        server.send_signal(signal.SIGINT)
        server.communicate(timeout=30)
    values = [value for _, value in points]
    assert len(values) >= 3
    assert values == [float(n) for n in range(1, len(values) + 1)]
    steps = [round(b[0] - a[0], 3) for a, b in itertools.pairwise(points)]
    assert all(step % 0.5 == 0 for step in steps)  # epoch-aligned slots, no drift


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _points(url: str, series: str) -> list[list[float]]:
    import time

    import httpx

    deadline = time.monotonic() + 90  # a loaded machine may take long to start a server
    while time.monotonic() < deadline:
        try:
            response = httpx.get(f"{url}/api/v1/query", params={"series": series,
                                                                 "since": "1h"}, timeout=2)
            if response.status_code == 200:
                points: list[list[float]] = response.json()["points"]
                return points
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise AssertionError("the server did not answer")


@pytest.mark.parametrize("selection", [["--device", "nosuch"], ["--device", "tag:nosuch"],
                                       ["--plugin", "nosuch"]])
def test_a_selection_of_nothing_is_refused(tmp_path: Path, selection: list[str]) -> None:
    """An unknown device is refused like an unknown plugin: never an empty run that exits 0."""
    done = collect(tmp_path, "critical", *selection)
    assert done.returncode == 78, done.stdout  # EX_CONFIG
    assert "nosuch" in done.stderr


def test_config_check_refuses_a_collector_name_no_series_may_carry(tmp_path: Path) -> None:
    """Every poll of a collector named `disk free` would fail: `config check` says so."""
    config = tmp_path / "wk.yaml"
    config.write_text("collectors:\n  - name: disk free\n    plugin: system\n")
    done = subprocess.run([*WATCHKEEPER, "config", "check", str(config)], cwd=REPO,
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 78, done.stdout
    assert f"{config}:2: collectors[0].name: a collector name" in done.stderr
