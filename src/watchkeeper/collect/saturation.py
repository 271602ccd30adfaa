"""Is the poller itself overloaded? Signs of watchkeeper's own saturation, counted.

The scheduler reports each sign as it happens: a poll that started later than its job's
interval, a slot skipped because the previous poll still ran, a poll shed because every
concurrency slot was taken, a poll failed by a local resource (an http pool, worker
threads), a sink that held a poll back (pipeline back-pressure). :class:`SaturationMonitor`
keeps them per collector over a sliding window of two half-windows and answers with a
:class:`Saturation`: saturated or not, and the reasons in words. That answer is
watchkeeper's health (the self-check series, ``/api/v1/health``, the rate-limited log
line, the ``watchkeeper_poller_saturated`` gauge), never a device's.

Time is the clock's; nothing here sleeps or does I/O besides the log line.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from typing import Any

import msgspec

from watchkeeper.clock import Clock
from watchkeeper.collect.abc import Collector, NoOptions, PollContext, PollResult
from watchkeeper.model import Device, Status
from watchkeeper.telemetry import SelfMetrics

log = logging.getLogger("watchkeeper.saturation")

SELF_CHECK = "watchkeeper"  # the self-check's plugin name: <host>/watchkeeper/scheduler.*

SKIPPED_SHARE = 0.01  # skipped slots above this share of polls are a sign, not noise


class Saturation(msgspec.Struct, frozen=True, kw_only=True):
    """The poller's health over the last window: ``reasons`` is empty when not saturated."""

    saturated: bool
    reasons: tuple[str, ...] = ()
    max_lateness: float = 0.0  # seconds, the worst start delay past the job's interval
    polls: int = 0
    late: int = 0
    skipped: int = 0
    shed: int = 0
    local_faults: int = 0
    backpressure: float = 0.0  # seconds, the longest a sink held a poll


class _Half:
    """Counts of one half-window."""

    __slots__ = ("backpressure", "faults", "late", "max_lateness", "polls", "shed", "skipped")

    def __init__(self) -> None:
        self.polls = 0
        self.late: Counter[str] = Counter()
        self.skipped: Counter[str] = Counter()
        self.shed: Counter[str] = Counter()
        self.faults: Counter[tuple[str, str]] = Counter()
        self.max_lateness = 0.0
        self.backpressure = 0.0


class SaturationMonitor:
    """Signs of overload per collector over ``window`` seconds; a log line when it changes.

    While saturated, the warning repeats at most every ``log_every`` seconds.
    """

    def __init__(self, *, clock: Clock, metrics: SelfMetrics, window: float = 30.0,
                 log_every: float = 60.0, backpressure_after: float = 1.0) -> None:
        self._clock = clock
        self._metrics = metrics
        self._half = window / 2
        self._log_every = log_every
        self._backpressure_after = backpressure_after
        self._current = _Half()
        self._previous = _Half()
        self._rotated = clock.time()
        self._was_saturated = False
        self._logged = -float("inf")
        self._shed_counters: dict[str, Any] = {}

    # ------------------------------------------------------------ signs

    def polled(self) -> None:
        self._now().polls += 1

    def late(self, plugin: str, lateness: float, interval: float) -> None:
        """A poll started ``lateness`` s after its slot; a sign when past its interval."""
        if lateness > interval:
            half = self._now()
            half.late[plugin] += 1
            half.max_lateness = max(half.max_lateness, lateness - interval)

    def skipped(self, plugin: str) -> None:
        self._now().skipped[plugin] += 1

    def shed(self, plugin: str) -> None:
        self._now().shed[plugin] += 1
        counter = self._shed_counters.get(plugin)  # hot under overload: one lookup, not labels()
        if counter is None:
            counter = self._shed_counters[plugin] = self._metrics.polls_shed.labels(plugin)
        counter.inc()

    def local_fault(self, plugin: str, resource: str) -> None:
        self._now().faults[plugin, resource] += 1
        self._metrics.local_faults.labels(plugin, resource).inc()

    def sink_held(self, seconds: float) -> None:
        if seconds > self._backpressure_after:
            half = self._now()
            half.backpressure = max(half.backpressure, seconds)

    # ------------------------------------------------------------ the answer

    @property
    def saturated(self) -> bool:
        """The last answer of :meth:`state` (cheap: read on every poll outcome)."""
        return self._was_saturated

    def state(self) -> Saturation:
        """Saturated or not over the window, and why; logs and sets the gauge on change."""
        self._now()
        a, b = self._previous, self._current
        late, skipped, shed = a.late + b.late, a.skipped + b.skipped, a.shed + b.shed
        faults = a.faults + b.faults
        polls = a.polls + b.polls
        lateness = max(a.max_lateness, b.max_lateness)
        backpressure = max(a.backpressure, b.backpressure)
        reasons = []
        if late:
            reasons.append(f"{late.total()} polls started up to {lateness:.1f}s past their "
                           f"interval ({_by(late)})")
        if skipped.total() > SKIPPED_SHARE * max(polls, 1):
            reasons.append(f"{skipped.total()} slots skipped, the previous poll still running "
                           f"({_by(skipped)})")
        if shed:
            reasons.append(f"{shed.total()} polls shed, their collector at capacity or every "
                           f"slot taken ({_by(shed)})")
        if faults:
            reasons.append(f"{faults.total()} polls failed for want of a local resource ("
                           + ", ".join(f"{p} {r}: {n}" for (p, r), n in faults.most_common())
                           + ")")
        if backpressure:
            reasons.append(f"the pipeline held a poll's results for {backpressure:.1f}s "
                           "(queue back-pressure)")
        result = Saturation(
            saturated=bool(reasons), reasons=tuple(reasons), max_lateness=lateness, polls=polls,
            late=late.total(), skipped=skipped.total(), shed=shed.total(),
            local_faults=faults.total(), backpressure=backpressure,
        )
        self._report(result)
        return result

    def _report(self, result: Saturation) -> None:
        now = self._clock.time()
        self._metrics.poller_saturated.set(1 if result.saturated else 0)
        if result.saturated and (not self._was_saturated or now - self._logged >= self._log_every):
            log.warning("the poller is saturated (watchkeeper's own overload, not the devices'): "
                        "%s", "; ".join(result.reasons))
            self._logged = now
        elif self._was_saturated and not result.saturated:
            log.warning("the poller is no longer saturated")
        self._was_saturated = result.saturated

    def _now(self) -> _Half:
        now = self._clock.time()
        if now - self._rotated >= self._half:
            # Two half-windows passed: nothing of the old ones is recent any more.
            self._previous = self._current if now - self._rotated < 2 * self._half else _Half()
            self._current = _Half()
            self._rotated = now
        return self._current


def _by(counts: Counter[str]) -> str:
    return ", ".join(f"{name}: {n}" for name, n in counts.most_common(5))


class SelfCheck(Collector):
    """The poller's self-check, scheduled like any job on watchkeeper's own host: series
    ``<host>/watchkeeper/scheduler.*`` and a status WARNING while saturated, with why."""

    Options = NoOptions

    def __init__(self, monitor: SaturationMonitor, running: Callable[[], int]) -> None:
        super().__init__(NoOptions(), name=SELF_CHECK)
        self._monitor = monitor
        self._running = running

    async def poll(self, device: Device, ctx: PollContext) -> PollResult:
        state = self._monitor.state()
        out = [
            ctx.measure("scheduler.lateness", state.max_lateness, unit="s"),
            ctx.measure("scheduler.late", state.late),
            ctx.measure("scheduler.skipped", state.skipped),
            ctx.measure("scheduler.shed", state.shed),
            ctx.measure("scheduler.local_faults", state.local_faults),
            ctx.measure("scheduler.backpressure", state.backpressure, unit="s"),
            ctx.measure("scheduler.running", self._running()),
        ]
        if state.saturated:
            return ctx.result(out, Status.WARNING, "poller saturated: " + "; ".join(state.reasons))
        return ctx.result(out, Status.OK, f"poller keeps up ({state.polls} polls in the window)")
