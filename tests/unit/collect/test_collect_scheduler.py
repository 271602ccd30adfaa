"""The scheduler, driven by a FakeClock: nothing here sleeps in real time except timeouts."""

from __future__ import annotations

import asyncio
import math
import threading
import tracemalloc
import zlib

import pytest

from tests.unit.collect.fakes import START, Echo, Gated, MakeScheduler, Recorder, job, settle
from watchkeeper.clock import FakeClock
from watchkeeper.collect.abc import Collector, PollContext
from watchkeeper.collect.scheduler import Scheduler
from watchkeeper.errors import ConfigError
from watchkeeper.model import Device, Measurement, Status
from watchkeeper.telemetry import SelfMetrics


def grid(job_id: str, interval: float, start: float, end: float) -> list[float]:
    """The expected slots of a job in [start, end]: t ≡ crc32(job_id) (mod interval), in ms."""
    phase, step = zlib.crc32(job_id.encode()), round(interval * 1000)
    first = math.ceil((start * 1000 - phase) / step) * step + phase
    return [t / 1000 for t in range(first, math.floor(end * 1000) + 1, step)]


async def step_to(clock: FakeClock, when: float, by: float = 1.0) -> None:
    """Move the clock in steps, settling in between, so retries pushed mid-way are seen."""
    while clock.time() < when:
        await clock.set(min(when, clock.time() + by))
        await settle()


def sample(metrics: SelfMetrics, name: str, **labels: str) -> float:
    return metrics.registry.get_sample_value(name, labels) or 0.0


class Boom(Collector):
    """Fails (or not) on demand and remembers when it was polled."""

    def __init__(self, name: str = "boom") -> None:
        super().__init__(None, name=name)
        self.fail = True
        self.times: list[float] = []

    async def poll(self, device: Device, ctx: PollContext) -> None:
        self.times.append(ctx.now)
        if self.fail:
            raise RuntimeError("down")


# ------------------------------------------------------------------ alignment and phase


async def test_slots_are_epoch_aligned_with_a_stable_phase(
    clock: FakeClock, sink: Recorder, make_scheduler: MakeScheduler
) -> None:
    """A job fires at every t ≡ crc32(job_id) mod its interval, on time, and nowhere else."""
    scheduler = make_scheduler()
    scheduler.reconcile([job(Echo(), "echo:a", (10.0,)), job(Echo(), "echo:b", (7.5,))])
    await clock.advance(45)
    await settle()
    for job_id, interval in (("echo:a", 10.0), ("echo:b", 7.5)):
        outcomes = sink.of(job_id)
        assert [o.scheduled for o in outcomes] == grid(job_id, interval, START, START + 45)
        assert all(o.started == o.scheduled == o.finished for o in outcomes)
        assert all(o.result.status is Status.OK for o in outcomes)


async def test_phases_spread_jobs_over_the_interval(
    clock: FakeClock, sink: Recorder, make_scheduler: MakeScheduler
) -> None:
    """Many jobs with one interval do not all fire at the same instant."""
    scheduler = make_scheduler()
    scheduler.reconcile([job(Echo(), f"echo:{i}", (60.0,), device=f"d{i}") for i in range(50)])
    await clock.advance(60)
    await settle()
    assert len(sink.outcomes) == 50
    assert len({o.scheduled for o in sink.outcomes}) >= 45


async def test_a_job_keeps_its_phase_when_its_params_change(
    clock: FakeClock, sink: Recorder, make_scheduler: MakeScheduler
) -> None:
    """Changing params (and the collector instance) updates the job in place, same slots."""
    first, second = Echo(), Echo()
    scheduler = make_scheduler()
    scheduler.reconcile([job(first, "echo:a", level=1)])
    await clock.advance(25)
    scheduler.reconcile([job(second, "echo:a", level=2)])
    await clock.advance(30)
    await settle()
    assert [o.scheduled for o in sink.outcomes] == grid("echo:a", 10, START, START + 55)
    assert {c.job.params["level"] for c in first.calls} == {1}
    assert {c.job.params["level"] for c in second.calls} == {2}
    assert len(second.calls) == len(grid("echo:a", 10, START + 25.001, START + 55))


async def test_new_intervals_keep_the_phase(
    clock: FakeClock, sink: Recorder, make_scheduler: MakeScheduler
) -> None:
    """Switching 10 s to 30 s continues on the 30 s grid of the same phase, no extra poll."""
    scheduler = make_scheduler()
    scheduler.reconcile([job(Echo(), "echo:a", (10.0,))])
    await clock.advance(20)
    before = len(sink.outcomes)
    scheduler.reconcile([job(Echo(), "echo:a", (30.0,))])
    await settle()
    assert len(sink.outcomes) == before
    await clock.advance(90)
    await settle()
    after = [o.scheduled for o in sink.outcomes[before:]]
    assert after == grid("echo:a", 30, START + 20.001, START + 110)


# ------------------------------------------------------------------ reconcile


async def test_removed_jobs_stop_and_new_ones_start(
    clock: FakeClock, sink: Recorder, metrics: SelfMetrics, make_scheduler: MakeScheduler
) -> None:
    scheduler = make_scheduler()
    echo = Echo()
    scheduler.reconcile([job(echo, "echo:a"), job(echo, "echo:b")])
    assert sample(metrics, "watchkeeper_scheduled_jobs") == 2
    await clock.advance(20)
    scheduler.reconcile([job(echo, "echo:b"), job(echo, "echo:c")])
    assert scheduler.stats().jobs == 2
    await clock.advance(40)
    await settle()
    assert max(o.scheduled for o in sink.of("echo:a")) <= START + 20
    assert [o.scheduled for o in sink.of("echo:b")] == grid("echo:b", 10, START, START + 60)
    assert [o.scheduled for o in sink.of("echo:c")] == grid("echo:c", 10, START + 20, START + 60)


async def test_an_earlier_job_wakes_the_sleeping_loop(
    clock: FakeClock, sink: Recorder, make_scheduler: MakeScheduler
) -> None:
    """The loop sleeps until the only job's far slot; adding a 1 s job must not wait for it."""
    scheduler = make_scheduler()
    echo = Echo()
    scheduler.reconcile([job(echo, "echo:slow", (3600.0,))])
    await clock.advance(0.5)
    assert clock.sleepers == 1
    scheduler.reconcile([job(echo, "echo:slow", (3600.0,)), job(echo, "echo:fast", (1.0,))])
    await clock.advance(3)
    await settle()
    expected = grid("echo:fast", 1, START + 0.5, START + 3.5)
    assert [o.scheduled for o in sink.of("echo:fast")] == expected
    assert clock.sleepers == 1


async def test_idle_jobs_cost_no_tasks(clock: FakeClock, make_scheduler: MakeScheduler) -> None:
    """A thousand scheduled jobs waiting for their slots own no asyncio task each."""
    scheduler = make_scheduler()
    echo = Echo()
    scheduler.reconcile([job(echo, f"echo:{i}", (3600.0,), device=f"d{i}") for i in range(1000)])
    await settle()
    assert len(asyncio.all_tasks()) <= 3
    assert clock.sleepers == 1


async def test_bad_intervals_are_refused_before_anything_changes(
    make_scheduler: MakeScheduler,
) -> None:
    scheduler = make_scheduler()
    scheduler.reconcile([job(Echo(), "echo:a")])
    for bad in [(), (0.0,), (10.0, -1.0), (math.nan,)]:
        with pytest.raises(ConfigError, match="echo:b"):
            scheduler.reconcile([job(Echo(), "echo:a"), job(Echo(), "echo:b", bad)])
    assert scheduler.stats().jobs == 1


# ------------------------------------------------------------------ overruns and limits


async def test_an_overrun_skips_and_counts_slots_instead_of_queueing(
    clock: FakeClock, sink: Recorder, metrics: SelfMetrics, make_scheduler: MakeScheduler
) -> None:
    gated = Gated()
    scheduler = make_scheduler()
    scheduler.reconcile([job(gated, "gated:a", timeout=60)])
    await clock.advance(45)
    slots = grid("gated:a", 10, START, START + 45)
    assert len(gated.started) == 1
    assert scheduler.stats().skipped == len(slots) - 1
    assert sample(metrics, "watchkeeper_polls_skipped_total", plugin="gated") == len(slots) - 1
    assert scheduler.stats().running == 1
    gated.release_all()
    await settle()
    assert len(sink.outcomes) == 1
    assert len(gated.started) == 1  # the skipped slots were not queued
    await clock.set(slots[-1] + 10)
    assert len(gated.started) == 2


@pytest.mark.parametrize("limit", [1, 2])
async def test_one_device_is_polled_by_at_most_n_polls_across_plugins(
    clock: FakeClock, sink: Recorder, make_scheduler: MakeScheduler, limit: int
) -> None:
    active: dict[str, int] = {}
    one, two = Gated("p1", active), Gated("p2", active)
    scheduler = make_scheduler(per_device_concurrency=limit)
    scheduler.reconcile([job(one, "p1:d1", timeout=60), job(two, "p2:d1", timeout=60)])
    await clock.advance(10)  # one slot of each job has passed
    assert len(one.started) + len(two.started) == limit
    assert active["d1"] == limit
    for _ in range(2):
        one.release_all()
        two.release_all()
        await settle()
    assert len(sink.outcomes) == 2
    assert max(one.peak["d1"], two.peak["d1"]) == limit


async def test_devices_do_not_limit_each_other(
    clock: FakeClock, make_scheduler: MakeScheduler
) -> None:
    gated = Gated()
    scheduler = make_scheduler(per_device_concurrency=1)
    scheduler.reconcile([job(gated, "g:d1", device="d1", timeout=60),
                         job(gated, "g:d2", device="d2", timeout=60)])
    await clock.advance(10)
    assert sorted(gated.started) == ["g:d1", "g:d2"]
    gated.release_all()
    await settle()
    assert scheduler._gates == {}  # per-device semaphores are dropped when unused


async def test_the_global_limit_caps_running_polls_and_sheds_the_rest(
    clock: FakeClock, sink: Recorder, metrics: SelfMetrics, make_scheduler: MakeScheduler
) -> None:
    """With every slot taken, a due poll is shed and counted, not queued behind the others."""
    gated = Gated()
    scheduler = make_scheduler(max_concurrency=2)
    scheduler.reconcile([job(gated, f"g:{i}", device=f"d{i}", timeout=60) for i in range(5)])
    await clock.advance(10)
    assert len(gated.started) == 2
    assert scheduler.stats().running == 2
    assert scheduler.stats().shed == 3
    assert sample(metrics, "watchkeeper_polls_shed_total", plugin="gated") == 3
    gated.release_all()
    await settle()
    assert len(sink.outcomes) == 2
    assert sum(gated.active.values()) == 0


# ------------------------------------------------------------------ failures and retries


async def test_errored_polls_back_off_exponentially_and_reset(
    clock: FakeClock, sink: Recorder, metrics: SelfMetrics, make_scheduler: MakeScheduler
) -> None:
    boom = Boom()
    scheduler = make_scheduler(retry_backoff=(5.0, 40.0))
    scheduler.reconcile([job(boom, "boom:a", (3600.0,))])
    t0 = grid("boom:a", 3600, START, START + 3600)[0]
    await step_to(clock, t0 + 120)
    await settle()
    assert [t - t0 for t in boom.times] == [0, 5, 15, 35, 75, 115]
    assert sample(metrics, "watchkeeper_poll_errors_total", plugin="boom") == 6
    assert all(o.result.status is Status.ERRORED for o in sink.outcomes)
    boom.fail = False
    await step_to(clock, t0 + 3000, by=10)
    await settle()
    assert [t - t0 for t in boom.times[6:]] == [155]  # success: back to regular slots
    boom.fail = True
    await step_to(clock, t0 + 3606)
    await settle()
    assert [t - t0 for t in boom.times[7:]] == [3600, 3605]  # the backoff was reset


async def test_a_retry_never_comes_later_than_the_next_slot(
    clock: FakeClock, make_scheduler: MakeScheduler
) -> None:
    boom = Boom()
    scheduler = make_scheduler(retry_backoff=(20.0, 300.0))
    scheduler.reconcile([job(boom, "boom:a", (30.0,))])
    t0 = grid("boom:a", 30, START, START + 30)[0]
    await step_to(clock, t0 + 95)
    await settle()
    assert [t - t0 for t in boom.times] == [0, 20, 30, 60, 90]


async def test_a_timeout_is_errored(
    clock: FakeClock, sink: Recorder, make_scheduler: MakeScheduler
) -> None:
    class Hang(Collector):
        async def poll(self, device: Device, ctx: PollContext) -> None:
            await asyncio.sleep(30)

    scheduler = make_scheduler()
    scheduler.reconcile([job(Hang(None, name="hang"), "hang:a", timeout=0.05)])
    await clock.advance(10)
    await sink.wait_for(1)
    result = sink.outcomes[0].result
    assert (result.status, result.check.summary) == (Status.ERRORED, "timed out after 0.05s")


async def test_a_sync_plugin_runs_in_a_thread(
    clock: FakeClock, sink: Recorder, make_scheduler: MakeScheduler
) -> None:
    class Blocking(Collector):
        def poll(self, device: Device, ctx: PollContext) -> list[Measurement]:
            return [ctx.measure("thread", threading.get_ident())]

    scheduler = make_scheduler()
    scheduler.reconcile([job(Blocking(None, name="blocking"), "blocking:a")])
    await clock.advance(10)
    await sink.wait_for(1)
    result = sink.outcomes[0].result
    assert result.status is Status.OK
    assert result.measurements[0].value != threading.get_ident()


async def test_garbage_is_errored(
    clock: FakeClock, sink: Recorder, make_scheduler: MakeScheduler
) -> None:
    class Garbage(Collector):
        async def poll(self, device: Device, ctx: PollContext) -> object:
            return 42

    scheduler = make_scheduler()
    scheduler.reconcile([job(Garbage(None, name="garbage"), "garbage:a")])
    await clock.advance(10)
    await settle()
    result = sink.outcomes[0].result
    assert result.status is Status.ERRORED
    assert "poll returned int" in result.check.summary


async def test_one_failing_job_does_not_disturb_the_others(
    clock: FakeClock, sink: Recorder, metrics: SelfMetrics, make_scheduler: MakeScheduler
) -> None:
    scheduler = make_scheduler()
    scheduler.reconcile([job(Boom(), "boom:d1"), job(Echo(), "echo:d1")])
    await clock.advance(60)
    await settle()
    assert [o.scheduled for o in sink.of("echo:d1")] == grid("echo:d1", 10, START, START + 60)
    assert {o.result.status for o in sink.of("echo:d1")} == {Status.OK}
    assert {o.result.status for o in sink.of("boom:d1")} == {Status.ERRORED}
    assert sample(metrics, "watchkeeper_polls_total", plugin="echo", status="ok") == 6
    assert sample(metrics, "watchkeeper_poll_errors_total", plugin="echo") == 0


async def test_a_failing_sink_does_not_stop_the_schedule(
    clock: FakeClock, metrics: SelfMetrics
) -> None:
    calls: list[str] = []

    async def bad_sink(outcome: object) -> None:
        calls.append("x")
        raise RuntimeError("sink down")

    scheduler = Scheduler(clock=clock, metrics=metrics, sink=bad_sink)
    scheduler.reconcile([job(Echo(), "echo:a")])
    task = asyncio.create_task(scheduler.run())
    await clock.advance(30)
    await settle()
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert len(calls) == 3


# ------------------------------------------------------------------ multiple intervals, jitter


async def test_multiple_intervals_fire_once_with_the_due_ones(
    clock: FakeClock, sink: Recorder, make_scheduler: MakeScheduler
) -> None:
    """Intervals (10, 60): one poll per 10 s slot; the 60 s slots say both are due."""
    echo = Echo()
    scheduler = make_scheduler()
    scheduler.reconcile([job(echo, "echo:a", (10.0, 60.0))])
    await clock.advance(180)
    await settle()
    slots = grid("echo:a", 10, START, START + 180)
    sixty = set(grid("echo:a", 60, START, START + 180))
    assert [c.now for c in echo.calls] == slots
    assert [c.affecting_intervals for c in echo.calls] == [
        (10.0, 60.0) if t in sixty else (10.0,) for t in slots
    ]
    assert len(sixty) == 3


async def test_coprime_intervals_coincide_at_their_product(
    clock: FakeClock, make_scheduler: MakeScheduler
) -> None:
    """Intervals (2, 3) fire at +2 [2], +3 [3], +4 [2], +6 [2, 3] relative to the phase."""
    echo = Echo()
    scheduler = make_scheduler()
    scheduler.reconcile([job(echo, "echo:a", (2.0, 3.0))])
    await clock.advance(12)
    await settle()
    phase = zlib.crc32(b"echo:a")
    for ctx in echo.calls:
        offset = round(ctx.now * 1000) - phase
        due = tuple(float(i) for i in (2, 3) if offset % (i * 1000) == 0)
        assert ctx.affecting_intervals == due
    assert sum(1 for c in echo.calls if c.affecting_intervals == (2.0, 3.0)) == 2


async def test_jitter_delays_starts_without_moving_the_slots(
    clock: FakeClock, sink: Recorder, metrics: SelfMetrics, make_scheduler: MakeScheduler
) -> None:
    scheduler = make_scheduler(jitter=3.0)
    scheduler.reconcile([job(Echo(), "echo:a", (10.0,))])
    await clock.advance(120)
    await settle()
    outcomes = sink.outcomes
    slots = grid("echo:a", 10, START, START + 120)
    assert len(outcomes) >= len(slots) - 1  # the last slot's jittered start may be pending
    assert [o.scheduled for o in outcomes] == slots[: len(outcomes)]
    delays = [o.started - o.scheduled for o in outcomes]
    assert all(0 <= d < 3.0 for d in delays)
    assert len(set(delays)) > 5
    lateness = sample(metrics, "watchkeeper_scheduler_lateness_seconds_sum")
    assert lateness == 0  # lateness is measured against the jittered due time


async def test_metrics_count_polls_and_lateness(
    clock: FakeClock, sink: Recorder, metrics: SelfMetrics, make_scheduler: MakeScheduler
) -> None:
    scheduler = make_scheduler()
    scheduler.reconcile([job(Echo(), "echo:a"), job(Boom(), "boom:a", (3600.0,))])
    await clock.advance(30)
    await settle()
    stats = scheduler.stats()
    assert stats.polls == len(sink.outcomes)
    assert stats.errors == len(sink.of("boom:a"))
    assert sample(metrics, "watchkeeper_scheduler_lateness_seconds_count") == stats.polls
    assert sample(metrics, "watchkeeper_polls_total", plugin="echo", status="ok") == 3


# ------------------------------------------------------------------ shutdown, memory


async def test_cancelling_run_lets_short_polls_finish(
    clock: FakeClock, metrics: SelfMetrics, sink: Recorder
) -> None:
    class Short(Collector):
        async def poll(self, device: Device, ctx: PollContext) -> None:
            await asyncio.sleep(0.02)

    scheduler = Scheduler(clock=clock, metrics=metrics, sink=sink, shutdown_grace=2.0)
    scheduler.reconcile([job(Short(None, name="short"), "short:a")])
    task = asyncio.create_task(scheduler.run())
    await clock.advance(10)
    assert scheduler.stats().running == 1
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert len(sink.outcomes) == 1
    assert task.cancelled()


async def test_cancelling_run_cancels_polls_after_the_grace_period(
    clock: FakeClock, metrics: SelfMetrics, sink: Recorder
) -> None:
    gated = Gated()
    scheduler = Scheduler(clock=clock, metrics=metrics, sink=sink, shutdown_grace=0.05)
    scheduler.reconcile([job(gated, "gated:a", timeout=60)])
    task = asyncio.create_task(scheduler.run())
    await clock.advance(10)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert scheduler.stats().running == 0
    assert sink.outcomes == []
    assert gated.active["d1"] == 0


async def test_run_twice_is_refused(clock: FakeClock, make_scheduler: MakeScheduler) -> None:
    scheduler = make_scheduler()
    await settle()
    with pytest.raises(RuntimeError, match="already running"):
        await scheduler.run()


def test_an_idle_job_costs_under_500_bytes(clock: FakeClock, metrics: SelfMetrics) -> None:
    """The scheduler's own memory per job (entry, heap item, index), excluding the job specs."""

    async def sink(outcome: object) -> None:
        return None

    echo = Echo()
    jobs = [job(echo, f"echo:{i:06d}", (float(10 + i % 290),), device=f"dev{i}")
            for i in range(20_000)]
    scheduler = Scheduler(clock=clock, metrics=metrics, sink=sink)
    tracemalloc.start()
    try:
        before = tracemalloc.take_snapshot()
        scheduler.reconcile(jobs)
        after = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
    grown = sum(s.size_diff for s in after.compare_to(before, "filename"))
    assert grown / len(jobs) <= 500, grown / len(jobs)
