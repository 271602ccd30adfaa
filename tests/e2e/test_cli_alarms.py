"""`watchkeeper alarms` against a real `watchkeeper up`: writes carry the token."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.test_up import Stack, free_port

pytestmark = pytest.mark.slow

WATCHKEEPER = [sys.executable, "-m", "watchkeeper.cli.main"]
ENTITY = "resource/web1.example.net/http-frontend-health-check"


@pytest.fixture
def up(tmp_path: Path) -> Iterator[tuple[Stack, Path]]:
    config = tmp_path / "wk.yaml"
    config.write_text(f"data_dir: {tmp_path / 'var'}\n"
                      "collectors: []\n")
    port = free_port()
    proc = subprocess.Popen([*WATCHKEEPER, "up", "-c", str(config), "--listen",
                             f"127.0.0.1:{port}"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True,
                            # the client's variables, exported: `up` must still start
                            env={**os.environ, "PYTHONUNBUFFERED": "1",
                                 "WATCHKEEPER_SERVER": f"http://127.0.0.1:{port}",
                                 "WATCHKEEPER_TOKEN": "not-a-key", "WATCHKEEPER_URL": "x"})
    stack = Stack(proc, f"http://127.0.0.1:{port}")
    try:
        stack.wait_ready()
        yield stack, config
    finally:
        if proc.poll() is None:
            stack.stop()


def cli(*argv: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*WATCHKEEPER, *argv], capture_output=True, text=True, timeout=60,
                          check=False, env={**os.environ, "COLUMNS": "80", **(env or {})})


def test_alarm_writes_send_the_token(up: tuple[Stack, Path]) -> None:
    """ack/snooze need a write token (--token or $WATCHKEEPER_TOKEN); without, exit 77."""
    stack, config = up
    created = cli("token", "create", "--user", "ops", "--write", "-c", str(config))
    assert created.returncode == 0, created.stderr
    key = created.stdout.split()[-1]
    event = {"connector": "nagios", "connector_name": "n1", "event_type": "check",
             "source_type": "resource", "component": "web1.example.net",
             "resource": "http-frontend-health-check", "state": 3, "output": "down",
             "timestamp": int(time.time())}
    posted = httpx.post(f"{stack.url}/api/v1/events/canopsis", content=json.dumps([event]),
                        headers={"Authorization": f"Token {key}"}, timeout=10)
    assert posted.status_code == 202, posted.text
    deadline = time.monotonic() + 30
    while not httpx.get(f"{stack.url}/api/v1/alarms", timeout=5).json():
        assert time.monotonic() < deadline, "no alarm opened"
        time.sleep(0.2)

    listed = cli("alarms", "list", "--server", stack.url)  # piped: never cut
    assert listed.returncode == 0, listed.stderr
    assert ENTITY in listed.stdout
    assert "critical" in listed.stdout

    refused = cli("alarms", "ack", ENTITY, "--server", stack.url, "-m", "looking")
    assert refused.returncode == 77, refused.stderr
    assert "--token KEY or $WATCHKEEPER_TOKEN" in refused.stderr

    acked = cli("alarms", "ack", ENTITY, "--server", stack.url, "--token", key, "-m", "looking")
    assert acked.returncode == 0, acked.stderr
    assert f"ack sent for {ENTITY}" in acked.stdout
    snoozed = cli("alarms", "snooze", ENTITY, "--server", stack.url, "--duration", "5m",
                  env={"WATCHKEEPER_TOKEN": key})
    assert snoozed.returncode == 0, snoozed.stderr

    deadline = time.monotonic() + 30
    while True:
        shown = cli("alarms", "show", ENTITY, "--server", stack.url, "-o", "json")
        assert shown.returncode == 0, shown.stderr
        steps = json.loads(shown.stdout)
        if {"ack", "snooze"} <= {s["step"] for s in steps} or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert {"ack", "snooze"} <= {s["step"] for s in steps}
    assert {"step": "stateinc", "value": "critical"}.items() <= next(
        s for s in steps if s["step"] == "stateinc").items()
