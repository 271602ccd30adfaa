"""1,500 http jobs at a 1 s interval against a healthy local server (issue 17 §4).

Before the fix the collector queued every poll inside httpcore's pool of 100 connections,
whose bookkeeping costs waiting requests x connections per change: the event loop starved,
almost nothing was answered, and stopping took half a minute. Now polling goes on at any
job count, an overload is ERRORED as watchkeeper's own (never CRITICAL: the server is
fine), and the scheduler stops promptly.
"""

from __future__ import annotations

import asyncio
from collections import Counter

from tests.support.httpd import local_httpd
from watchkeeper.clock import SystemClock
from watchkeeper.collect.abc import JobSpec
from watchkeeper.collect.builtin.http import HttpCollector, HttpOptions
from watchkeeper.collect.scheduler import Job, PollOutcome, Scheduler
from watchkeeper.model import Device, Status
from watchkeeper.telemetry import SelfMetrics

JOBS = 1500
RUN_SECONDS = 8.0  # how long polling runs; nothing asserts on durations


async def test_polling_goes_on_at_1500_jobs_and_overload_is_ours() -> None:
    outcomes: list[PollOutcome] = []

    async def sink(outcome: PollOutcome) -> None:
        outcomes.append(outcome)

    with local_httpd() as url:
        collector = HttpCollector(HttpOptions(url=url), name="web")
        scheduler = Scheduler(clock=SystemClock(), metrics=SelfMetrics(), sink=sink)
        scheduler.reconcile([
            Job(collector, JobSpec(job_id=f"web:d{i}", intervals=(1.0,),
                                   device=Device(name=f"d{i}", address="127.0.0.1")), 1.0)
            for i in range(JOBS)])
        polling = asyncio.create_task(scheduler.run())
        await asyncio.sleep(RUN_SECONDS / 2)
        answered_early = sum(o.result.status is Status.OK for o in outcomes)
        await asyncio.sleep(RUN_SECONDS / 2)
        polling.cancel()
        async with asyncio.timeout(15):  # `up` must stop within 15 s of Ctrl-C
            await asyncio.gather(polling, return_exceptions=True)
        await collector.aclose()

    statuses = Counter(o.result.status for o in outcomes)
    answered_late = statuses[Status.OK] - answered_early
    assert answered_early > 0
    assert answered_late > 0  # polling went on, it did not stall for good
    assert statuses[Status.CRITICAL] == 0  # the server was healthy all along
    errored = [o.result for o in outcomes if o.result.status is Status.ERRORED]
    assert all(r.local_fault == "http_pool" or "timed out" in r.check.summary for r in errored)
    if errored:
        assert scheduler.saturation().saturated or scheduler.stats().shed
