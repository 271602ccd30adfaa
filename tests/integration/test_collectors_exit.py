"""A plain-``def`` poll stuck far past its timeout, or an async one stuck on ``to_thread``,
never holds up exit (issue 17 §2): ``collect --once`` and the ``collect`` daemon, as real
processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support.serve import free_port

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
WATCHKEEPER = [sys.executable, "-m", "watchkeeper.cli.main"]
STUCK_FOR = 90  # the plugin sleeps this long; exit must not wait for it
EXIT_WITHIN = 20  # generous: a stuck thread used to add the whole sleep

CONFIG = f"""\
inventory:
  devices:
    - {{name: target, address: 127.0.0.1}}
collectors:
  - name: stuck
    plugin: tests.unit.collect.plugins:SleepySync
    interval: 1
    timeout: 1
    options: {{seconds: {STUCK_FOR}}}
  - name: stuck-async
    plugin: tests.unit.collect.plugins:SleepyThread
    interval: 1
    timeout: 1
    options: {{seconds: {STUCK_FOR}}}
  - name: fine
    plugin: tests.unit.collect.plugins:Fixed
    interval: 1
engines:
  - {{name: archive_writer, engine: archive_writer}}
"""


def config(tmp_path: Path) -> Path:
    path = tmp_path / "wk.yaml"
    path.write_text(CONFIG)
    return path


def test_once_exits_right_after_reporting_the_timeout(tmp_path: Path) -> None:
    """The run reports the stuck poll ERRORED and the process ends, its thread still asleep."""
    done = subprocess.run([*WATCHKEEPER, "collect", "--once", "--config", str(config(tmp_path)),
                           "--data-dir", str(tmp_path / "var")],
                          cwd=REPO, capture_output=True, text=True, timeout=EXIT_WITHIN,
                          check=False, env={**os.environ, "COLUMNS": "200"})
    assert done.returncode == 3, done.stderr
    assert "timed out after 1s" in done.stdout


def test_once_exits_even_with_a_thread_a_plugin_left_running(tmp_path: Path) -> None:
    """A plugin's own non-daemon thread would keep the interpreter alive: after a short
    grace the process flushes its output and ends anyway, with the run's exit code."""
    path = tmp_path / "wk.yaml"
    path.write_text("inventory:\n  devices: [{name: target, address: 127.0.0.1}]\n"
                    "collectors:\n  - {name: leaves, plugin: tests.unit.collect.plugins:"
                    f"LeavesAThread, options: {{seconds: {STUCK_FOR}}}}}\n")
    done = subprocess.run([*WATCHKEEPER, "collect", "--once", "--config", str(path),
                           "--data-dir", str(tmp_path / "var")],
                          cwd=REPO, capture_output=True, text=True, timeout=EXIT_WITHIN,
                          check=False, env={**os.environ, "COLUMNS": "200"})
    assert done.returncode == 0, done.stderr
    assert "overall OK" in done.stdout  # printed and flushed before the forced exit
    assert "threads a plugin started still run: plugin-sleeper" in done.stderr


@pytest.mark.parametrize("command", [["collect"], ["up", "--listen", "127.0.0.1:PORT"]])
def test_the_daemon_stops_promptly_on_sigterm(tmp_path: Path, command: list[str]) -> None:
    """SIGTERM while polls are stuck: `collect` and `up` stop within seconds, status 0."""
    command = [word.replace("PORT", str(free_port())) for word in command]
    proc = subprocess.Popen([*WATCHKEEPER, *command, "--config", str(config(tmp_path)),
                             "--data-dir", str(tmp_path / "var")],
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        assert proc.stdout is not None
        for _ in range(20):  # the ready line ("... Ctrl-C stops"), maybe after others
            line = proc.stdout.readline()
            if "Ctrl-C stops" in line or not line:
                break
        assert "Ctrl-C stops" in line, line or proc.stderr.read()
        time.sleep(3)  # a few stuck polls (and their refusals) happen meanwhile
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=EXIT_WITHIN)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    assert "stopped" in out
