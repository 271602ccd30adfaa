"""Sync polls stuck past their timeout: they never take capacity from other jobs (issue 17 §2).

The scenario of the report, on a shorter scale: plain-``def`` polls that block far past
their timeout next to a healthy plain-``def`` neighbour, on the real scheduler and clock.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator

import pytest

from tests.unit.collect.fakes import Recorder, job, settle, spec
from watchkeeper.clock import SystemClock
from watchkeeper.collect.abc import Collector, PollContext
from watchkeeper.collect.build import close_collectors
from watchkeeper.collect.poll import run_poll
from watchkeeper.collect.scheduler import Scheduler
from watchkeeper.collect.workers import DaemonExecutor, PollWorkers, default_workers
from watchkeeper.model import Device, Measurement, Status
from watchkeeper.telemetry import SelfMetrics

INTERVAL = 0.2
TIMEOUT = 0.2
RUN_FOR = 4.0


class Stuck(Collector):
    """A plain-``def`` poll that blocks until the test lets go (a hung plugin)."""

    def __init__(self, release: threading.Event, name: str = "stuck") -> None:
        super().__init__(None, name=name)
        self.release = release
        self.entered = 0

    def poll(self, device: Device, ctx: PollContext) -> None:
        self.entered += 1
        self.release.wait(60)


class Quick(Collector):
    """A healthy plain-``def`` poll."""

    def __init__(self) -> None:
        super().__init__(None, name="quick")

    def poll(self, device: Device, ctx: PollContext) -> list[Measurement]:
        return [ctx.measure("up", 1.0)]


@pytest.fixture
def release() -> Iterator[threading.Event]:
    event = threading.Event()
    yield event
    event.set()
    deadline = time.monotonic() + 10
    while default_workers().stats()[1] and time.monotonic() < deadline:
        time.sleep(0.01)  # let the abandoned threads finish before the next test


async def test_a_stuck_sync_poll_never_starves_a_healthy_neighbour(
    release: threading.Event,
) -> None:
    """Three jobs stuck in plain-def polls for the whole run cost their neighbour nothing:
    it gets (nearly) every slot, none ERRORED; each stuck job holds at most one thread."""
    stuck = Stuck(release)
    sink = Recorder()
    scheduler = Scheduler(clock=SystemClock(), metrics=SelfMetrics(), sink=sink,
                          shutdown_grace=0.1)
    scheduler.reconcile([
        *(job(stuck, f"stuck:s{i}", (INTERVAL,), device=f"s{i}", timeout=TIMEOUT)
          for i in range(3)),
        job(Quick(), "quick:q", (INTERVAL,), device="q", timeout=TIMEOUT),
    ])
    running = asyncio.create_task(scheduler.run())
    await asyncio.sleep(RUN_FOR)
    running.cancel()
    await asyncio.gather(running, return_exceptions=True)

    quick = sink.of("quick:q")
    slots = RUN_FOR / INTERVAL
    assert len(quick) >= slots / 2, [o.result.check.summary for o in quick]
    assert [o for o in quick if o.result.status is not Status.OK] == []
    assert stuck.entered <= 3  # one thread per stuck job, never one per slot
    refused = [o.result.check.summary for o in sink.outcomes
               if o.job_id.startswith("stuck:") and "still stuck" in o.result.check.summary]
    assert refused  # the stuck jobs say why they do not poll


async def test_a_collector_has_its_own_budget_of_stuck_threads(
    release: threading.Event,
) -> None:
    """Past ``max_stuck`` stuck polls a collector is refused; other collectors are not."""
    workers = PollWorkers(size=2, max_stuck=2)
    stuck = Stuck(release)
    for i in range(2):
        result = await run_poll(stuck, spec(f"stuck:{i}", device=f"d{i}"), now=0.0,
                                timeout=0.05, affecting_intervals=(10.0,), state={},
                                workers=workers)
        assert result.check.summary == "timed out after 0.05s"
    refused = await run_poll(stuck, spec("stuck:9", device="d9"), now=0.0, timeout=0.05,
                             affecting_intervals=(10.0,), state={}, workers=workers)
    assert refused.status is Status.ERRORED
    assert "collector stuck has 2 polls stuck in worker threads" in refused.check.summary
    assert workers.stats() == (0, 2)  # both threads left the count...

    healthy = await run_poll(Quick(), spec("quick:q", device="q"), now=0.0, timeout=5.0,
                             affecting_intervals=(10.0,), state={}, workers=workers)
    assert healthy.status is Status.OK  # ...and were replaced

    release.set()
    for _ in range(500):
        if workers.stats()[1] == 0:
            break
        await asyncio.sleep(0.01)
    assert workers.stats()[1] == 0
    again = await run_poll(stuck, spec("stuck:0", device="d0"), now=0.0, timeout=5.0,
                           affecting_intervals=(10.0,), state={}, workers=workers)
    assert again.status is Status.OK  # returned: the job polls again


async def test_a_queued_poll_whose_caller_gave_up_never_runs() -> None:
    """A wait cancelled before a thread took the work drops the work."""
    workers = PollWorkers(size=1)
    gate = threading.Event()
    ran: list[str] = []

    def block() -> None:
        gate.wait(10)

    first = asyncio.create_task(workers.run("owner", "a", block))
    await settle()
    second = asyncio.create_task(workers.run("owner", "b", ran.append, "b"))
    await settle()
    second.cancel()
    await asyncio.gather(second, return_exceptions=True)
    gate.set()
    await first
    assert await workers.run("owner", "c", ran.append, "c") is None
    assert ran == ["c"]


def test_a_pool_needs_a_thread() -> None:
    with pytest.raises(ValueError, match="at least one thread"):
        PollWorkers(size=0)


async def test_the_daemon_executor_serves_to_thread_and_never_waits_at_shutdown() -> None:
    """As a loop's default executor: results and errors come back; shutdown does not wait
    for a call that is still stuck, and refuses new work."""
    executor = DaemonExecutor(max_workers=2)
    loop = asyncio.get_running_loop()
    assert await loop.run_in_executor(executor, sum, [1, 2]) == 3
    with pytest.raises(ZeroDivisionError):
        await loop.run_in_executor(executor, divmod, 1, 0)
    gate = threading.Event()
    stuck = executor.submit(gate.wait, 30)
    queued = [executor.submit(time.sleep, 0) for _ in range(3)]
    assert queued[-1].cancel() or queued[-1].done()  # cancellable while it waits its turn
    executor.shutdown(wait=True)  # were it to wait for `stuck`, the test would hang here
    with pytest.raises(RuntimeError, match="after shutdown"):
        executor.submit(sum, [])
    gate.set()
    assert stuck.result(timeout=10) is True


class HangsOnClose(Quick):
    async def aclose(self) -> None:
        await asyncio.sleep(3600)


async def test_a_collector_whose_close_hangs_is_given_up_on(
        caplog: pytest.LogCaptureFixture) -> None:
    """Shutdown closes every collector, each within its bound: a hanging ``aclose`` is
    logged and left, and the next one still closes."""
    closed: list[str] = []

    class Closes(Quick):
        async def aclose(self) -> None:
            closed.append("closed")

    await close_collectors([HangsOnClose(), Closes()], timeout=0.05)
    assert closed == ["closed"]
    assert "closing collector quick took over 0.05s; given up" in caplog.text


async def test_a_poll_that_never_got_a_thread_is_watchkeepers_fault(
    release: threading.Event,
) -> None:
    """Issue 17 §4: every worker thread busy is watchkeeper's saturation, so a sync poll
    that timed out waiting for one is ERRORED with a local fault (counted by the scheduler),
    and its device was never asked."""
    workers = PollWorkers(size=1, max_stuck=4)
    stuck = Stuck(release)
    holding = asyncio.create_task(run_poll(
        stuck, spec("stuck:0", device="d0"), now=0.0, timeout=30.0,
        affecting_intervals=(10.0,), state={}, workers=workers))
    while stuck.entered == 0:  # the only thread is taken, not abandoned
        await asyncio.sleep(0.01)
    queued = await run_poll(Quick(), spec("quick:q", device="q"), now=0.0, timeout=0.1,
                            affecting_intervals=(10.0,), state={}, workers=workers)
    assert queued.status is Status.ERRORED
    assert queued.local_fault == "poll-threads"
    assert "no worker thread free within 0.1s (all 1 busy" in queued.check.summary
    release.set()
    assert (await holding).status is Status.OK
    ran = await run_poll(Quick(), spec("quick:q", device="q"), now=0.0, timeout=5.0,
                         affecting_intervals=(10.0,), state={}, workers=workers)
    assert ran.status is Status.OK
    assert ran.local_fault is None  # a thread that ran: no fault
