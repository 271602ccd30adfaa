"""The asyncio scheduler: one heap of due times, one loop, one task per running poll.

Slots are aligned to the epoch, not to a tick counter: job ``J`` with interval ``I`` fires
at every ``t`` with ``t ≡ phase(J) (mod I)``, where ``phase`` is a stable hash of the job
id. Every interval of a job shares the phase, so a 60 s slot always coincides with a 10 s
one; a slot due for several intervals fires once and tells the poll which intervals are due
(``affecting_intervals``, the Grafolean semantics). All arithmetic is in integer
milliseconds, so slots never drift.

Idle jobs cost one small ``_Entry`` and one heap tuple; there is no task per job. The loop
pops due entries, starts each poll as a task and sleeps on the clock until the next due
time; :meth:`Scheduler.reconcile` wakes it when it adds an earlier one. A slot whose
previous poll still runs is skipped and counted, never queued. An ERRORED poll is retried
with exponential backoff, never later than the job's next regular slot.

Overload is the poller's, and said so (:mod:`.saturation`): a due poll is shed (not
started, counted per collector) when its collector already runs as many polls as it said it
has capacity for (``Collector.plan_capacity``: an http pool's size), or when every
concurrency slot is taken and its collector holds its fair share of them, so one slow
collector cannot starve the others;
polls started past their interval, skipped slots, local resource faults (ERRORED with the
resource, never retried early, never CRITICAL) and a sink that holds polls back are
counted too. With ``self_device`` the scheduler runs its own self-check job on it, and
every outcome is marked ``saturated`` while the poller is.

What it holds of each job (next run, latest poll, skipped slots) is read as
:class:`~watchkeeper.collect.abc.JobState` values (:meth:`Scheduler.job_states`, after
:meth:`Scheduler.job_keys` to choose which): the jobs listing of the API. Only the
latest poll is kept, and goes with its job.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
import math
import random
import zlib
from collections import Counter as Tally
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, NamedTuple

import msgspec
from prometheus_client import Counter

from watchkeeper.clock import Clock
from watchkeeper.collect.abc import Collector, JobKey, JobRun, JobSpec, JobState, PollResult
from watchkeeper.collect.poll import run_poll
from watchkeeper.collect.saturation import SELF_CHECK, Saturation, SaturationMonitor, SelfCheck
from watchkeeper.errors import ConfigError
from watchkeeper.model import Device, Status
from watchkeeper.telemetry import SelfMetrics

log = logging.getLogger(__name__)


class Job(NamedTuple):
    """What to schedule: a collector, the job it polls, and the per-poll timeout in seconds."""

    collector: Collector
    spec: JobSpec
    timeout: float


class PollOutcome(msgspec.Struct, frozen=True, kw_only=True):
    """One finished poll, as handed to the sink. Times are clock seconds."""

    plugin: str
    job_id: str
    device: Device
    scheduled: float
    started: float
    finished: float
    result: PollResult
    saturated: bool = False  # the poller was saturated when the poll ended (alarms say so)


class SchedulerStats(msgspec.Struct, frozen=True, kw_only=True):
    jobs: int
    running: int
    polls: int
    skipped: int
    errors: int
    shed: int = 0


Sink = Callable[[PollOutcome], Awaitable[None]]


class _Entry:
    """The scheduler's state for one job; small on purpose (100k of them must stay cheap)."""

    __slots__ = ("failures", "job", "last", "retry", "running", "seq", "skipped", "slot",
                 "state", "steps")

    def __init__(self, job: Job, steps: tuple[int, ...]) -> None:
        self.job = job
        self.steps = steps  # the intervals in ms, sorted and unique; shared between jobs
        self.slot = 0  # the next regular slot, epoch ms
        self.seq = -1  # the sequence number of this entry's live heap item
        self.retry: tuple[float, tuple[float, ...]] | None = None  # (when, intervals)
        self.running = False
        self.failures = 0
        self.state: dict[str, Any] | None = None  # ctx.state, kept once a poll uses it
        self.last: JobRun | None = None  # the latest finished poll, for the jobs listing
        self.skipped = 0


class _DeviceGate:
    """A per-device semaphore that lives only while some poll of the device wants it."""

    __slots__ = ("sem", "users")

    def __init__(self, limit: int) -> None:
        self.sem = asyncio.Semaphore(limit)
        self.users = 0


def phase_ms(job_id: str) -> int:
    """The stable phase of a job in ms: the same in every process and across restarts."""
    return zlib.crc32(job_id.encode())


def next_slot(phase: int, steps: tuple[int, ...], after: int) -> int:
    """The first slot strictly after ``after`` (epoch ms) for intervals ``steps`` (ms)."""
    return min(((after - phase) // step + 1) * step + phase for step in steps)


def due_intervals(phase: int, steps: tuple[int, ...], slot: int) -> tuple[float, ...]:
    """The intervals (seconds) whose grid contains ``slot``."""
    return tuple(step / 1000 for step in steps if (slot - phase) % step == 0)


class Scheduler:
    """Runs jobs on epoch-aligned slots with timeouts, backoff and concurrency limits.

    ``sink`` is awaited with a :class:`PollOutcome` after every poll; until it returns,
    the job counts as running (so a slow sink skips slots rather than piling up polls).
    ``max_concurrency`` bounds polls running at once, ``per_device_concurrency`` those of
    one device name across all plugins. ``jitter`` delays each start by a random
    0..jitter seconds (at most half the job's shortest interval). ``retry_backoff`` is
    (base, max) seconds for retrying ERRORED polls. On cancellation, running polls get
    ``shutdown_grace`` seconds to finish before they are cancelled.

    Call :meth:`reconcile` with the full set of wanted jobs whenever it changes (before
    or while :meth:`run` runs, from the loop's thread); cancel the task running
    :meth:`run` to stop.
    """

    def __init__(
        self,
        *,
        clock: Clock,
        metrics: SelfMetrics,
        sink: Sink,
        max_concurrency: int = 512,
        per_device_concurrency: int = 1,
        jitter: float = 0.0,
        retry_backoff: tuple[float, float] = (5.0, 300.0),
        shutdown_grace: float = 5.0,
        self_device: Device | None = None,
        self_check_interval: float = 10.0,
    ) -> None:
        if max_concurrency < 1 or per_device_concurrency < 1:
            raise ConfigError("concurrency limits must be at least 1", key="scheduler")
        self._clock = clock
        self._metrics = metrics
        self._sink = sink
        self._per_device = per_device_concurrency
        self._jitter = max(0.0, jitter)
        self._backoff = retry_backoff
        self._grace = shutdown_grace
        self._global = asyncio.Semaphore(max_concurrency)
        self._max = max_concurrency
        self._running_by: Tally[str] = Tally()  # running polls by collector
        self._collectors = 1  # collectors with jobs, for the fair share of the slots
        self._capacity: dict[str, int] = {}  # polls a collector can usefully run at once
        self._monitor = SaturationMonitor(clock=clock, metrics=metrics)
        self._self_job: Job | None = None
        if self_device is not None:
            spec = JobSpec(job_id=f"{SELF_CHECK}:{self_device.name}", device=self_device,
                           intervals=(self_check_interval,))
            self._self_job = Job(SelfCheck(self._monitor, lambda: len(self._tasks)), spec,
                                 timeout=self_check_interval)
        self._entries: dict[str, _Entry] = {}
        self._heap: list[tuple[float, int, str]] = []
        self._seq = itertools.count()
        self._steps: dict[tuple[float, ...], tuple[int, ...]] = {}
        self._gates: dict[str, _DeviceGate] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._counters: dict[tuple[str, str], Counter] = {}
        self._wakeup: asyncio.Future[None] | None = None
        self._sleeping_until = math.inf
        self._running = False
        self._polls = self._skipped = self._errors = self._shed = 0

    # ---------------------------------------------------------------- jobs

    def reconcile(self, jobs: Iterable[Job]) -> None:
        """Make the scheduled set equal ``jobs``: start new ids, stop missing ones, update changed.

        A changed job keeps its phase; a removed job's running poll may finish but its next
        slot never comes. Raises :class:`ConfigError` (before changing anything) on a job
        without valid intervals.
        """
        wanted: dict[str, Job] = {}
        if self._self_job is not None:
            jobs = itertools.chain(jobs, (self._self_job,))
        for job in jobs:
            self._steps_of(job.spec)  # validate everything before touching the schedule
            wanted[job.spec.job_id] = job
        for job_id in [j for j in self._entries if j not in wanted]:
            del self._entries[job_id]  # its heap item goes stale and is dropped when popped
        now_ms = self._clock.time() * 1000
        added: list[_Entry] = []
        for job_id, job in wanted.items():
            entry = self._entries.get(job_id)
            if entry is None:
                entry = self._entries[job_id] = _Entry(job, self._steps_of(job.spec))
                added.append(entry)
            elif entry.job != job:
                self._update(entry, job, now_ms)
        # New jobs start at their first slot from *now*: a big reconcile takes a while, and
        # slots that passed meanwhile would only show up as lateness.
        after = math.ceil(self._clock.time() * 1000) - 1
        for entry in added:
            entry.slot = next_slot(phase_ms(entry.job.spec.job_id), entry.steps, after)
            self._push(entry)
        self._metrics.scheduled_jobs.set(len(self._entries))
        self._plan_capacity(wanted.values())
        if len(self._heap) > 2 * len(self._entries) + 1024:
            self._compact()

    def _plan_capacity(self, jobs: Iterable[Job]) -> None:
        """Tell each collector instance how many jobs it now has, to size its pools."""
        counts: dict[int, tuple[Collector, int]] = {}
        for job in jobs:
            collector = job.collector
            _, n = counts.get(id(collector), (collector, 0))
            counts[id(collector)] = (collector, n + 1)
        self._capacity = {}
        for collector, n in counts.values():
            capacity = collector.plan_capacity(n)
            if capacity is not None:
                self._capacity[collector.name] = self._capacity.get(collector.name, 0) + capacity
        self._collectors = max(1, len({c.name for c, _ in counts.values()}))

    def _update(self, entry: _Entry, job: Job, now_ms: float) -> None:
        steps = self._steps_of(job.spec)
        entry.job = job
        if steps != entry.steps:
            # New intervals: same phase, first slot on the new grid after now.
            entry.steps = steps
            entry.slot = next_slot(phase_ms(job.spec.job_id), steps, math.floor(now_ms))
            entry.retry = None
            self._push(entry)

    def _steps_of(self, spec: JobSpec) -> tuple[int, ...]:
        steps = self._steps.get(spec.intervals)
        if steps is None:
            if not spec.intervals or not all(
                math.isfinite(i) and i >= 0.001 for i in spec.intervals
            ):
                raise ConfigError(
                    f"job {spec.job_id!r}: intervals must be one or more of at least 1 ms",
                    key="intervals", value=spec.intervals,
                )
            steps = tuple(sorted({round(i * 1000) for i in spec.intervals}))
            self._steps[spec.intervals] = steps  # shared by every job with these intervals
        return steps

    def _push(self, entry: _Entry) -> None:
        """(Re)place the entry's one live heap item: its retry if sooner, else its slot."""
        due = entry.slot / 1000
        if self._jitter:
            # Fresh from the aligned slot each time, so jitter never accumulates.
            due += random.random() * min(self._jitter, entry.steps[0] / 2000)
        if entry.retry is not None:
            if entry.retry[0] < due:
                due = entry.retry[0]
            else:
                entry.retry = None  # the regular slot comes first and retries anyway
        entry.seq = seq = next(self._seq)
        heapq.heappush(self._heap, (due, seq, entry.job.spec.job_id))
        if due < self._sleeping_until:
            self._wake()

    def _compact(self) -> None:
        live = {e.seq for e in self._entries.values()}
        self._heap = [item for item in self._heap if item[1] in live]
        heapq.heapify(self._heap)

    # ---------------------------------------------------------------- the loop

    async def run(self) -> None:
        """Fire due jobs until cancelled; then let running polls finish within the grace period."""
        if self._running:
            raise RuntimeError("Scheduler.run() is already running")
        self._running = True
        loop = asyncio.get_running_loop()
        try:
            while True:
                self._fire_due(self._clock.time())
                deadline = self._heap[0][0] if self._heap else math.inf
                self._wakeup = wakeup = loop.create_future()
                sleeper = None
                if deadline < math.inf:
                    sleeper = loop.create_task(self._sleep(deadline, wakeup))
                self._sleeping_until = deadline
                try:
                    await wakeup  # the deadline passed, or reconcile added something sooner
                finally:
                    self._sleeping_until = -math.inf  # awake: pushes need not wake us
                    if sleeper is not None:
                        sleeper.cancel()
        finally:
            self._running = False
            self._sleeping_until = math.inf
            await self._drain()

    async def _sleep(self, deadline: float, wakeup: asyncio.Future[None]) -> None:
        # Bound to this round's future, so a cancelled sleeper never wakes the next round.
        await self._clock.sleep_until(deadline)
        _resolve(wakeup)

    def _wake(self) -> None:
        if self._wakeup is not None:
            _resolve(self._wakeup)

    def _fire_due(self, now: float) -> None:
        heap = self._heap
        while heap and heap[0][0] <= now:
            due, seq, job_id = heapq.heappop(heap)
            entry = self._entries.get(job_id)
            if entry is None or entry.seq != seq:
                continue  # removed or rescheduled since this item was pushed
            if entry.retry is not None:
                scheduled, intervals = entry.retry
                entry.retry = None
            else:
                scheduled = entry.slot / 1000
                phase = phase_ms(job_id)
                intervals = due_intervals(phase, entry.steps, entry.slot)
                entry.slot = next_slot(phase, entry.steps, max(entry.slot, math.floor(now * 1000)))
            if entry.running:
                self._skip(entry)
            elif self._over_share(entry.job.collector.name):
                self._shed += 1
                self._monitor.shed(entry.job.collector.name)
            else:
                self._start(entry, scheduled, due, intervals)
            self._push(entry)

    def _over_share(self, plugin: str) -> bool:
        """The collector runs as many polls as it has capacity for, or every slot is taken
        and it holds its fair share of them or more."""
        running = self._running_by[plugin]
        if running >= self._capacity.get(plugin, self._max):
            return True
        return len(self._tasks) >= self._max and running * self._collectors >= self._max

    def _skip(self, entry: _Entry) -> None:
        self._skipped += 1
        entry.skipped += 1
        self._metrics.polls_skipped.labels(entry.job.collector.name).inc()
        self._monitor.skipped(entry.job.collector.name)
        log.debug("skipped %s: its previous poll still runs", entry.job.spec.job_id)

    def _start(
        self, entry: _Entry, scheduled: float, due: float, intervals: tuple[float, ...]
    ) -> None:
        entry.running = True
        self._running_by[entry.job.collector.name] += 1
        poll = self._poll(entry, scheduled, due, intervals)
        task = asyncio.get_running_loop().create_task(poll)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # ---------------------------------------------------------------- one poll

    async def _poll(
        self, entry: _Entry, scheduled: float, due: float, intervals: tuple[float, ...]
    ) -> None:
        job = entry.job
        plugin = job.collector.name
        errored_at: float | None = None
        try:
            state = entry.state if entry.state is not None else {}
            async with self._gate(job.spec.device.name), self._global:
                started = self._clock.time()
                lateness = max(0.0, started - due)
                self._metrics.scheduler_lateness.observe(lateness)
                self._monitor.late(plugin, lateness, entry.steps[0] / 1000)
                result = await run_poll(
                    job.collector, job.spec, now=scheduled, timeout=job.timeout,
                    affecting_intervals=intervals, state=state,
                )
                finished = self._clock.time()
            if state and entry.state is None:
                entry.state = state
            if self._account(entry, plugin, result):
                errored_at = finished
            entry.last = JobRun(scheduled=scheduled, started=started, finished=finished,
                                lateness=lateness, result=result)
            outcome = PollOutcome(
                plugin=plugin, job_id=job.spec.job_id, device=job.spec.device,
                scheduled=scheduled, started=started, finished=finished, result=result,
                saturated=self._monitor.saturated,
            )
            try:
                await self._sink(outcome)
            except Exception:
                log.exception("the poll sink failed for %s", job.spec.job_id)
            self._monitor.sink_held(self._clock.time() - finished)
        finally:
            entry.running = False  # held through the sink: a slow sink skips slots, not piles up
            self._running_by[plugin] -= 1
        if errored_at is not None:
            self._retry(entry, errored_at, intervals)

    def _gate(self, device: str) -> _GateLease:
        gate = self._gates.get(device)
        if gate is None:
            gate = self._gates[device] = _DeviceGate(self._per_device)
        return _GateLease(self._gates, device, gate)

    def _account(self, entry: _Entry, plugin: str, result: PollResult) -> bool:
        """Count the poll; True when it ERRORED for the device's sake and should be retried.

        A local fault is the poller's overload: retrying early would only add to it."""
        status = result.check.status
        self._polls += 1
        self._monitor.polled()
        counter = self._counters.get((plugin, status.value))
        if counter is None:
            counter = self._metrics.polls.labels(plugin, status.value)
            self._counters[plugin, status.value] = counter
        counter.inc()
        if status is not Status.ERRORED:
            entry.failures = 0
            return False
        self._errors += 1
        self._metrics.poll_errors.labels(plugin).inc()
        if result.local_fault is not None:
            self._monitor.local_fault(plugin, result.local_fault)
            return False
        entry.failures += 1
        return True

    def _retry(self, entry: _Entry, finished: float, intervals: tuple[float, ...]) -> None:
        if self._entries.get(entry.job.spec.job_id) is not entry:
            return  # removed while it polled
        base, cap = self._backoff
        delay = min(base * 2 ** min(entry.failures - 1, 62), cap)
        entry.retry = (finished + delay, intervals)
        self._push(entry)  # _push drops the retry when the regular slot comes first

    # ---------------------------------------------------------------- shutdown & stats

    async def _drain(self) -> None:
        if not self._tasks:
            return
        _, pending = await asyncio.wait(set(self._tasks), timeout=self._grace)
        for task in pending:
            task.cancel()
        if pending:
            log.warning("cancelled %d polls still running after %gs", len(pending), self._grace)
            # A plugin may swallow the cancellation: it is left behind, not waited for, so
            # the process still stops within two grace periods whatever the polls do.
            _, stuck = await asyncio.wait(pending, timeout=self._grace)
            if stuck:
                log.warning("left %d polls behind that ignored cancellation", len(stuck))

    def stats(self) -> SchedulerStats:
        """Counts since start: jobs scheduled, polls running, finished, skipped, errored, shed."""
        return SchedulerStats(
            jobs=len(self._entries), running=len(self._tasks), polls=self._polls,
            skipped=self._skipped, errors=self._errors, shed=self._shed,
        )

    def job_keys(self) -> list[JobKey]:
        """Every scheduled job's device, collector, id and latest status (the listing's
        index: ~10x cheaper per job than its state)."""
        return [(entry.job.spec.device.name, entry.job.collector.name, job_id,
                 None if entry.last is None else entry.last.result.check.status)
                for job_id, entry in self._entries.items()]

    def job_states(self, job_ids: Iterable[str]) -> list[JobState]:
        """These jobs now, with their next run and latest poll (ids not scheduled left out)."""
        states = []
        for job_id in job_ids:
            entry = self._entries.get(job_id)
            if entry is None:
                continue
            next_run = entry.slot / 1000
            if entry.retry is not None and entry.retry[0] < next_run:
                next_run = entry.retry[0]
            states.append(JobState(
                job_id=job_id, device=entry.job.spec.device.name,
                collector=entry.job.collector.name, intervals=entry.job.spec.intervals,
                next_run=next_run, running=entry.running, skipped=entry.skipped,
                failures=entry.failures, last=entry.last))
        return states

    def saturation(self) -> Saturation:
        """Is the poller saturated over the last window, and why (watchkeeper's health)."""
        return self._monitor.state()


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class _GateLease:
    """``async with`` one device's semaphore; the gate is dropped when nobody uses it."""

    __slots__ = ("device", "gate", "gates")

    def __init__(self, gates: dict[str, _DeviceGate], device: str, gate: _DeviceGate) -> None:
        self.gates = gates
        self.device = device
        self.gate = gate
        gate.users += 1

    async def __aenter__(self) -> None:
        try:
            await self.gate.sem.acquire()
        except BaseException:
            self._leave()
            raise

    async def __aexit__(self, *exc: object) -> None:
        self.gate.sem.release()
        self._leave()

    def _leave(self) -> None:
        self.gate.users -= 1
        if self.gate.users == 0:
            del self.gates[self.device]
