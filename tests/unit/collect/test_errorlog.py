"""The daemons' ERRORED log: every reason reaches the log, at a bounded rate per job."""

from __future__ import annotations

import logging

import pytest

from tests.unit.collect.fakes import START
from watchkeeper.clock import FakeClock
from watchkeeper.collect.abc import PollResult
from watchkeeper.collect.errorlog import ErrorLog
from watchkeeper.collect.manager import LatestResults
from watchkeeper.collect.scheduler import PollOutcome
from watchkeeper.model import CheckResult, Device, Status


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
