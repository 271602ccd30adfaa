"""The poller's own overload: counted, reported as watchkeeper's health, never a device's."""

from __future__ import annotations

import asyncio
import logging
import zlib

import pytest

from tests.unit.collect.fakes import Echo, Gated, MakeScheduler, Recorder, job, settle
from watchkeeper.clock import FakeClock
from watchkeeper.collect.abc import Collector, PollContext, PollResult
from watchkeeper.collect.errorlog import ErrorLog
from watchkeeper.collect.saturation import SaturationMonitor
from watchkeeper.collect.scheduler import PollOutcome, Scheduler
from watchkeeper.errors import LocalSaturation
from watchkeeper.model import CheckResult, Device, Status
from watchkeeper.runtime.bridge import outcome_event
from watchkeeper.telemetry import SelfMetrics


class Starved(Collector):
    """Every poll fails for want of a local resource, as an exhausted pool would."""

    async def poll(self, device: Device, ctx: PollContext) -> None:
        raise LocalSaturation("no free connection (pool of 1)", resource="http_pool")


def sample(metrics: SelfMetrics, name: str, **labels: str) -> float:
    return metrics.registry.get_sample_value(name, labels) or 0.0


# ------------------------------------------------------------------ the monitor, pure


def test_a_quiet_poller_is_not_saturated(clock: FakeClock, metrics: SelfMetrics) -> None:
    """Polls on time, no skips, no faults: not saturated, no reasons."""
    monitor = SaturationMonitor(clock=clock, metrics=metrics)
    for _ in range(100):
        monitor.polled()
        monitor.late("web", 0.2, 1.0)
    assert not monitor.state().saturated
    assert monitor.state().reasons == ()


def test_each_sign_gives_its_reason(clock: FakeClock, metrics: SelfMetrics) -> None:
    """Lateness past the interval, skips, sheds, local faults and back-pressure are named."""
    monitor = SaturationMonitor(clock=clock, metrics=metrics)
    monitor.polled()
    monitor.late("web", 3.5, 1.0)
    monitor.skipped("web")
    monitor.shed("reach")
    monitor.local_fault("web", "http_pool")
    monitor.sink_held(4.0)
    state = monitor.state()
    assert state.saturated
    text = " | ".join(state.reasons)
    for words in ("2.5s past their interval", "slots skipped", "polls shed",
                  "web http_pool: 1", "back-pressure"):
        assert words in text
    assert sample(metrics, "watchkeeper_poller_saturated") == 1
    assert sample(metrics, "watchkeeper_polls_shed_total", plugin="reach") == 1


async def test_saturation_ends_when_the_window_passes(
    clock: FakeClock, metrics: SelfMetrics, caplog: pytest.LogCaptureFixture
) -> None:
    """Signs age out after the window; entering and leaving saturation are logged once."""
    monitor = SaturationMonitor(clock=clock, metrics=metrics, window=30.0)
    monitor.local_fault("web", "http_pool")
    with caplog.at_level(logging.WARNING, "watchkeeper.saturation"):
        assert monitor.state().saturated
        assert monitor.state().saturated  # no second line within log_every
        await clock.advance(31)
        assert not monitor.state().saturated
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 2
    assert "saturated (watchkeeper's own overload" in lines[0]
    assert "no longer saturated" in lines[1]
    assert sample(metrics, "watchkeeper_poller_saturated") == 0


async def test_the_warning_repeats_at_most_every_log_every(
    clock: FakeClock, metrics: SelfMetrics, caplog: pytest.LogCaptureFixture
) -> None:
    """While saturation lasts, the log line is rate-limited, not one per poll."""
    monitor = SaturationMonitor(clock=clock, metrics=metrics, window=30.0, log_every=60.0)
    with caplog.at_level(logging.WARNING, "watchkeeper.saturation"):
        for _ in range(12):  # two minutes of faults, a state every 10 s
            for _ in range(50):
                monitor.local_fault("web", "http_pool")
            monitor.state()
            await clock.advance(10)
    assert len(caplog.records) == 2


# ------------------------------------------------------------------ in the scheduler


async def test_a_local_fault_is_errored_with_its_reason_and_not_retried_early(
    clock: FakeClock, sink: Recorder, metrics: SelfMetrics, make_scheduler: MakeScheduler
) -> None:
    """Our own exhausted pool is ERRORED naming the resource, never CRITICAL, and the
    scheduler does not add retries to an overload."""
    scheduler = make_scheduler(retry_backoff=(1.0, 1.0))
    scheduler.reconcile([job(Starved(None, name="web"), "web:a", (3600.0,))])
    await clock.advance(3600)
    await settle()
    await clock.advance(5)  # a retry after 1 s would have come by now
    await settle()
    [outcome] = sink.outcomes
    assert outcome.result.status is Status.ERRORED
    assert outcome.result.local_fault == "http_pool"
    assert "no free connection" in outcome.result.check.summary
    assert sample(metrics, "watchkeeper_poll_local_faults_total", plugin="web",
                  resource="http_pool") == 1


async def test_outcomes_while_saturated_are_marked_and_the_alarm_event_says_so(
    clock: FakeClock, sink: Recorder, make_scheduler: MakeScheduler
) -> None:
    """Once the poller is saturated, every outcome (and its check event) carries the mark."""
    scheduler = make_scheduler()
    scheduler.reconcile([job(Starved(None, name="web"), "web:a", device="d1"),
                         job(Echo(), "echo:b", device="d2")])
    await clock.advance(10)
    await settle()
    assert scheduler.saturation().saturated
    await clock.advance(10)
    await settle()
    later = [o for o in sink.outcomes if o.job_id == "echo:b"][-1]
    assert later.saturated
    event = outcome_event(later)
    assert event.attrs["poller_saturated"] == "true"
    fault = outcome_event(sink.of("web:a")[0])
    assert fault.attrs["local_fault"] == "http_pool"


async def test_the_self_check_reports_the_poller_on_its_own_host(
    clock: FakeClock, sink: Recorder, make_scheduler: MakeScheduler
) -> None:
    """A self-check job on watchkeeper's host: scheduler.* series, WARNING while saturated."""
    host = Device(name="wkhost", address="127.0.0.1")
    scheduler = make_scheduler(self_device=host, self_check_interval=10.0)
    scheduler.reconcile([job(Starved(None, name="web"), "web:a")])
    await clock.advance(25)
    await settle()
    checks = [o for o in sink.outcomes if o.plugin == "watchkeeper"]
    assert checks
    last = checks[-1]
    assert last.device.name == "wkhost"
    keys = {str(m.key) for m in last.result.measurements}
    assert "wkhost/watchkeeper/scheduler.lateness" in keys
    assert "wkhost/watchkeeper/scheduler.local_faults" in keys
    assert last.result.status is Status.WARNING
    assert "poller saturated" in last.result.check.summary
    web = sink.of("web:a")
    assert all(o.device.name == "d1" for o in web)  # the fault stays off the devices' status


async def test_one_slow_collector_does_not_starve_another(
    clock: FakeClock, sink: Recorder, make_scheduler: MakeScheduler
) -> None:
    """A collector at its fair share of full slots is shed; another one's poll waits for
    the next free slot instead of queueing behind the hog's backlog."""
    hog = Gated(name="hog")
    ids = [f"hog:{i}" for i in range(10)]
    latest = max(zlib.crc32(i.encode()) % 10_000 for i in ids)
    other_id = next(f"other:{n}" for n in range(10_000)
                    if zlib.crc32(f"other:{n}".encode()) % 10_000 > latest)
    other = Echo(name="other")
    scheduler = make_scheduler(max_concurrency=4)
    scheduler.reconcile([*(job(hog, i, device=i, timeout=60) for i in ids),
                         job(other, other_id, device="o1")])
    await clock.advance(10)
    await settle()
    assert len(hog.started) == 4
    assert other.calls == []  # waiting for a slot, not shed
    hog.gates[0].set()
    await settle()
    assert len(other.calls) == 1  # the first free slot went to it
    assert scheduler.stats().shed == 6


async def test_a_collector_is_not_given_more_polls_than_its_capacity(
    clock: FakeClock, sink: Recorder, metrics: SelfMetrics, make_scheduler: MakeScheduler
) -> None:
    """Polls beyond what a collector said it can run at once are shed before they start:
    no task, no timer, no ERRORED event per poll, only a count."""

    class Small(Gated):
        def plan_capacity(self, jobs: int) -> int:
            self.planned = jobs
            return 2

    small = Small(name="small")
    scheduler = make_scheduler(max_concurrency=100)
    scheduler.reconcile([job(small, f"small:{i}", device=f"d{i}", timeout=60) for i in range(5)])
    assert small.planned == 5
    await clock.advance(10)
    await settle()
    assert len(small.started) == 2
    assert scheduler.stats().shed == 3
    assert sample(metrics, "watchkeeper_polls_shed_total", plugin="small") == 3
    small.release_all()
    await settle()


async def test_stopping_does_not_wait_for_a_poll_that_ignores_cancellation(
    clock: FakeClock, metrics: SelfMetrics, sink: Recorder
) -> None:
    """A plugin swallowing CancelledError is left behind after the grace periods."""
    release = asyncio.Event()

    class Stubborn(Collector):
        async def poll(self, device: Device, ctx: PollContext) -> None:
            while not release.is_set():
                try:
                    await release.wait()
                except asyncio.CancelledError:
                    continue

    scheduler = Scheduler(clock=clock, metrics=metrics, sink=sink, shutdown_grace=0.05)
    scheduler.reconcile([job(Stubborn(None, name="stubborn"), "stubborn:a", timeout=600)])
    task = asyncio.create_task(scheduler.run())
    await clock.advance(10)
    task.cancel()
    async with asyncio.timeout(30):
        await asyncio.gather(task, return_exceptions=True)
    assert task.done()
    release.set()
    await settle()


def test_the_error_log_leaves_local_faults_to_the_saturation_line(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    """1,500 jobs failing for want of a pool would be 1,500 lines: the monitor's one says it."""
    errors = ErrorLog(clock)
    result = PollResult(check=CheckResult.of(Status.ERRORED, "no free connection", ts=0.0),
                        local_fault="http_pool")
    with caplog.at_level(logging.INFO, "watchkeeper.collect.errors"):
        for i in range(50):
            errors.note(PollOutcome(plugin="web", job_id=f"web:{i}", device=Device(name=f"d{i}"),
                                    scheduled=0.0, started=0.0, finished=0.0, result=result))
    assert caplog.records == []


async def test_a_sink_that_holds_polls_back_is_back_pressure(
    clock: FakeClock, metrics: SelfMetrics
) -> None:
    """A pipeline that takes seconds to accept a poll's results is the poller's overload."""
    async def slow_sink(outcome: object) -> None:
        await clock.advance(3)  # the publish waited 3 s for room in the queues

    scheduler = Scheduler(clock=clock, metrics=metrics, sink=slow_sink)
    scheduler.reconcile([job(Echo(), "echo:a", (60.0,))])
    task = asyncio.create_task(scheduler.run())
    try:
        await clock.advance(60)
        await settle()
        state = scheduler.saturation()
        assert state.saturated
        assert state.backpressure >= 3
        assert any("back-pressure" in reason for reason in state.reasons)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
