"""The ssh collector against the real sshd from ``scripts/services`` (127.0.0.1:2222)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import msgspec
import pytest

from watchkeeper.collect.builtin.ssh import SshCollector, SshOptions
from watchkeeper.collect.testing import poll_once, values
from watchkeeper.model import Device, Status

pytestmark = pytest.mark.external_service

REPO = Path(__file__).resolve().parents[2]
SSH_DIR = REPO / ".services" / "ssh"
KEY = SSH_DIR / "id_ed25519"

Make = Callable[..., SshCollector]


def parse_meminfo(output: str, ctx: object) -> dict[str, float]:
    """A ``parser`` function: ``/proc/meminfo`` lines to metrics in kB."""
    wanted = {"MemTotal": "mem.total", "MemAvailable": "mem.available"}
    out: dict[str, float] = {}
    for line in output.splitlines():
        name, _, rest = line.partition(":")
        if name in wanted:
            out[wanted[name]] = float(rest.split()[0])
    return out


@pytest.fixture
def known_hosts(tmp_path: Path) -> Path:
    kind, key = (SSH_DIR / "ssh_host_ed25519_key.pub").read_text().split()[:2]
    path = tmp_path / "known_hosts"
    path.write_text(f"[127.0.0.1]:2222 {kind} {key}\n")
    return path


@pytest.fixture
def device(monkeypatch: pytest.MonkeyPatch) -> Device:
    monkeypatch.setenv("WK_SSH_KEY", KEY.read_text())
    return Device(name="box", address="127.0.0.1",
                  connections={"ssh": {"port": 2222, "username": "root", "key": "env:WK_SSH_KEY"}})


@pytest.fixture
async def make(known_hosts: Path) -> AsyncIterator[Make]:
    made: list[SshCollector] = []

    def _make(**options: Any) -> SshCollector:
        options.setdefault("known_hosts", str(known_hosts))
        made.append(SshCollector(msgspec.convert(options, SshOptions), name="ssh"))
        list(made[-1].jobs([], (60.0,)))  # what start-up does: loads the parser
        return made[-1]

    yield _make
    for collector in made:
        await collector.aclose()


async def test_command_output_parsed_by_regex_with_thresholds(make: Make, device: Device) -> None:
    collector = make(command="cat /proc/loadavg",
                     pattern=r"^(?P<load1>[\d.]+) (?P<load5>[\d.]+) (?P<load15>[\d.]+)",
                     thresholds={"load1": {"crit_above": 100000}})
    result = await poll_once(collector, device)
    assert result.status is Status.OK, result.check.summary
    got = values(result)
    assert got["ssh.exit_status"] == 0
    assert {"load1", "load5", "load15", "ssh.duration"} <= got.keys()
    failing = make(command="echo 3", pattern=r"(?P<n>\d+)", thresholds={"n": {"warn_above": 2}})
    assert (await poll_once(failing, device)).status is Status.WARNING


async def test_output_parsed_by_a_module_function(make: Make, device: Device) -> None:
    collector = make(command="cat /proc/meminfo",
                     parser="tests.integration.test_collectors_ssh:parse_meminfo")
    got = values(await poll_once(collector, device))
    assert got["mem.total"] is not None
    assert got["mem.total"] > 0


async def test_the_connection_is_kept_between_polls_unless_told(make: Make,
                                                                device: Device) -> None:
    # $PPID is the sshd process serving the connection: equal means one connection.
    kept = make(command="echo $PPID", pattern=r"(?P<sshd>\d+)")
    first = values(await poll_once(kept, device))["sshd"]
    assert values(await poll_once(kept, device))["sshd"] == first
    fresh = make(command="echo $PPID", pattern=r"(?P<sshd>\d+)", keep_connection=False)
    first = values(await poll_once(fresh, device))["sshd"]
    assert values(await poll_once(fresh, device))["sshd"] != first


async def test_unexpected_exit_status_and_no_match_are_critical(make: Make,
                                                                device: Device) -> None:
    result = await poll_once(make(command="echo nope >&2; exit 3"), device)
    assert result.status is Status.CRITICAL
    assert "exited 3: nope" in result.check.summary
    result = await poll_once(make(command="echo hello", pattern=r"(?P<n>\d+)"), device)
    assert result.status is Status.CRITICAL
    assert "does not match" in result.check.summary


async def test_untrusted_host_key_is_critical(make: Make, device: Device,
                                              tmp_path: Path) -> None:
    empty = tmp_path / "empty_known_hosts"
    empty.write_text("")
    result = await poll_once(make(command="true", known_hosts=str(empty)), device)
    assert result.status is Status.CRITICAL
    assert "host key not trusted" in result.check.summary


async def test_refused_login_is_errored_and_unreachable_is_critical(
        make: Make, device: Device, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    nobody = Device(name="box", address="127.0.0.1", connections={
        "ssh": {**device.connections["ssh"], "username": "nobody"}})
    result = await poll_once(make(command="true"), nobody)
    assert result.status is Status.ERRORED
    assert "authentication failed" in result.check.summary
    closed = Device(name="box", address="127.0.0.1", connections={"ssh": {"port": 1}})
    assert (await poll_once(make(command="true"), closed)).status is Status.CRITICAL
    secret = KEY.read_text().splitlines()[1]
    assert secret not in caplog.text
    assert secret not in result.check.summary
