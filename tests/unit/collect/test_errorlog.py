"""The daemons' ERRORED log: every reason reaches the log, at a bounded rate per job."""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path

import pytest

from tests.unit.collect.fakes import START, settle
from watchkeeper.clock import FakeClock
from watchkeeper.collect.abc import PollResult
from watchkeeper.collect.errorlog import ErrorLog
from watchkeeper.collect.manager import LatestResults
from watchkeeper.collect.scheduler import PollOutcome
from watchkeeper.model import CheckResult, Device, Status
from watchkeeper.runtime.collect import keep_report, write_latest


def outcome(job: str, status: Status, text: str = "", at: float = START) -> PollOutcome:
    return PollOutcome(plugin=job.partition(":")[0], job_id=job, device=Device(name=job[-2:]),
                       scheduled=at, started=at, finished=at + 0.1,
                       result=PollResult(check=CheckResult.of(status, text, ts=at)))


async def test_first_errored_at_once_then_a_count_every_period_then_recovery(
        caplog: pytest.LogCaptureFixture) -> None:
    """A timeout and a bad return value are each logged with their reason the first time;
    repeats are counted into one line per period; the first good poll says so."""
    clock = FakeClock(START)
    errors = ErrorLog(clock, every=300)
    caplog.set_level(logging.INFO, "watchkeeper.collect.errors")
    errors.note(outcome("slow:d1", Status.ERRORED, "timed out after 1s"))
    errors.note(outcome("junk:d2", Status.ERRORED, "poll returned int; expected ..."))
    for _ in range(60):
        await clock.advance(5)
        errors.note(outcome("slow:d1", Status.ERRORED, "timed out after 1s"))
    errors.note(outcome("slow:d1", Status.OK))
    errors.note(outcome("fine:d3", Status.CRITICAL, "down"))  # the device's state: not ours
    lines = [r.getMessage() for r in caplog.records]
    assert lines == [
        "slow: slow:d1 ERRORED: timed out after 1s",
        "junk: junk:d2 ERRORED: poll returned int; expected ...",
        "slow: slow:d1 ERRORED 60 more times in 300s (61 in a row); latest: timed out after 1s",
        "slow: slow:d1 polls again (ok) after 61 ERRORED",
    ]
    assert errors.failing() == 1  # junk:d2


async def test_latest_results_keep_each_jobs_last_outcome_as_one_run() -> None:
    latest = LatestResults()
    latest.refresh()
    assert latest.report()["runs"] == {}
    await latest(outcome("a:d1", Status.ERRORED, "boom"))
    await latest(outcome("a:d1", Status.WARNING, "meh", at=START + 10))
    await latest(outcome("b:d2", Status.OK, at=START + 5))
    latest.refresh()
    report = latest.report()
    run = report["runs"]["latest"]
    assert (report["status"], run["plugins"]) == ("warning", {"a": "warning", "b": "ok"})
    assert run["results"]["a"]["d1"]["messages"][0]["text"] == "meh"


async def test_the_daemon_report_is_rewritten_periodically_and_at_the_end(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Every period and once more when cancelled; a path that cannot be written is logged,
    never fatal to the collector."""
    clock = FakeClock(START)
    latest = LatestResults()
    await latest(outcome("a:d1", Status.OK))
    report = tmp_path / "latest.json"
    task = asyncio.create_task(keep_report(latest, str(report), clock=clock, every=10))
    await settle()
    await clock.advance(10)
    for _ in range(200):
        if report.exists():
            break
        await asyncio.sleep(0.01)
    first = json.loads(report.read_text())
    assert first["runs"]["latest"]["plugins"] == {"a": "ok"}
    await latest(outcome("a:d1", Status.CRITICAL, "down", at=START + 10))
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert json.loads(report.read_text())["status"] == "critical"  # written at the end

    (tmp_path / "file").write_text("")
    await write_latest(latest, str(tmp_path / "file" / "r.yaml"))
    assert "cannot write the report" in caplog.text
