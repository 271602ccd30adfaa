"""The standalone ``watchkeeper collect`` daemon: ERRORED reasons in its log, and its latest
results readable in a report it keeps rewriting (issue 17 §2)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
WATCHKEEPER = [sys.executable, "-m", "watchkeeper.cli.main"]

CONFIG = """\
inventory:
  devices:
    - {name: target, address: 127.0.0.1}
collectors:
  - {name: slow, plugin: tests.unit.collect.plugins:SleepySync, interval: 1, timeout: 0.5,
     options: {seconds: 2}}
  - {name: junk, plugin: tests.unit.collect.plugins:Broken, interval: 1,
     options: {mode: garbage}}
  - {name: fine, plugin: tests.unit.collect.plugins:Fixed, interval: 1}
engines:
  - {name: archive_writer, engine: archive_writer}
"""


def read_report(path: Path) -> dict[str, object] | None:
    try:
        data = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        return None
    return data if isinstance(data, dict) else None


def test_the_daemon_logs_errored_reasons_and_keeps_a_report(tmp_path: Path) -> None:
    config = tmp_path / "wk.yaml"
    config.write_text(CONFIG)
    report = tmp_path / "latest.yaml"
    proc = subprocess.Popen([*WATCHKEEPER, "collect", "--config", str(config), "--data",
                             str(tmp_path / "var"), "--report", str(report)],
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        generated: set[str] = set()
        deadline = time.monotonic() + 60
        while len(generated) < 2 and time.monotonic() < deadline:  # rewritten, not written once
            data = read_report(report)
            if data is not None:
                generated.add(str(data["generated"]))
            time.sleep(0.5)
        assert len(generated) >= 2
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    assert "slow: slow:target ERRORED: timed out after 0.5s" in err
    assert "junk: junk:target ERRORED: poll returned str" in err
    assert err.count("junk:target ERRORED") == 1  # once, then counted every few minutes
    data = read_report(report)
    assert data is not None
    results = data["runs"]["latest"]["results"]  # type: ignore[index]
    assert results["fine"]["target"]["status"] == "ok"
    assert results["junk"]["target"]["status"] == "errored"
    assert "poll returned str" in results["junk"]["target"]["messages"][0]["text"]
