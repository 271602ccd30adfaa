"""The threshold engine: measurements against warning/critical thresholds give a check state.

Each rule matches series by glob (``subject``, ``plugin``, ``metric``) and sets
``warning`` and ``critical`` limits, ``above`` (the default) or ``below``. With
``hysteresis`` h, a level once reached is only left when the value is back beyond its
threshold by h, so a value hovering at a threshold does not flap. Canopsis/Nagios events
may carry their own limits in their perf data (``perf.<metric>.warn``/``crit``, Nagios
ranges); ``use_perf_data`` applies those to measurements no rule matched.

An event's new state is the worst of its measurements' levels and (``combine: max``,
the default) its own state; ``perf`` and ``metric`` events become ``check`` events.
Events that match nothing pass unchanged.

The held levels are the engine's state. With ``state: sqlite`` (one host) or ``state:
postgres`` (several) they are committed with each batch, before the bus acknowledges
it, partition by partition (:mod:`watchkeeper.pipeline.state`): a restarted worker, or
one on another host taking a partition over, holds the levels where they were.
"""

from __future__ import annotations

import fnmatch
import math
import re
from typing import Literal

import msgspec

from watchkeeper.model import Event, Measurement, SeriesKey, Status
from watchkeeper.pipeline.abc import EngineDefinition
from watchkeeper.pipeline.engine import Engine
from watchkeeper.pipeline.partition import EntityIds, partition_of
from watchkeeper.pipeline.state import (
    Part,
    PartitionedState,
    StateOptions,
    commit_on_beat,
    open_store,
)

WARNING = Status.WARNING.state
CRITICAL = Status.CRITICAL.state
_LEVEL_NAMES = {WARNING: "warning", CRITICAL: "critical"}
_METRIC_TYPES = frozenset({"perf", "metric"})
_RANGE = re.compile(r"^(@)?(?:(~|[-+]?[\d.]+(?:[eE][-+]?\d+)?)?:)?([-+]?[\d.]+(?:[eE][-+]?\d+)?)?$")


class Rule(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """Thresholds for the series whose names match the globs."""

    metric: str
    subject: str = "*"
    plugin: str = "*"
    warning: float | None = None
    critical: float | None = None
    direction: Literal["above", "below"] = "above"
    hysteresis: float = 0.0

    def __post_init__(self) -> None:
        if self.warning is None and self.critical is None:
            raise ValueError(f"rule for {self.metric!r} needs warning or critical")
        if self.hysteresis < 0:
            raise ValueError("hysteresis must not be negative")
        if self.warning is not None and self.critical is not None:
            ordered = (self.warning <= self.critical if self.direction == "above"
                       else self.warning >= self.critical)
            if not ordered:
                raise ValueError(f"rule for {self.metric!r}: warning must come before "
                                 f"critical ({self.direction})")

    def compiled(self) -> tuple[float, float, float, float]:
        """(sign, warning, critical, hysteresis), limits multiplied by the sign so that
        "worse" is always "greater"; a missing limit is +inf (never reached)."""
        sign = 1.0 if self.direction == "above" else -1.0
        warn = math.inf if self.warning is None else sign * self.warning
        crit = math.inf if self.critical is None else sign * self.critical
        return sign, warn, crit, self.hysteresis

    def matches(self, key: SeriesKey) -> bool:
        return (fnmatch.fnmatchcase(key.metric, self.metric)
                and fnmatch.fnmatchcase(key.plugin, self.plugin)
                and fnmatch.fnmatchcase(key.subject, self.subject))


class ThresholdOptions(StateOptions, frozen=True, forbid_unknown_fields=True, kw_only=True):
    rules: tuple[Rule, ...] = ()
    combine: Literal["max", "replace"] = "max"
    use_perf_data: bool = True
    max_series: int = 1_000_000


_Limits = tuple[float, float, float, float]


class _Series:
    """What the engine knows of one series: its rule (if any) and the level it holds."""

    __slots__ = ("level", "limits", "rule")

    def __init__(self, rule: Rule | None) -> None:
        self.rule = rule
        self.limits: _Limits | None = None if rule is None else rule.compiled()
        self.level = 0


class _State:
    """Per engine: one record per series seen (a single dict lookup per measurement)."""

    def __init__(self, options: ThresholdOptions) -> None:
        self.options = options
        self.series: dict[SeriesKey, _Series] = {}
        self.suffixes: dict[tuple[_Series, int], str] = {}  # see evaluate_batch

    def add(self, key: SeriesKey) -> _Series:
        if len(self.series) >= self.options.max_series:
            self.series.clear()  # bounded; levels restart from OK, rules are re-matched
            self.suffixes.clear()
        found = next((r for r in self.options.rules if r.matches(key)), None)
        made = self.series[key] = _Series(found)
        return made


def _state(engine: Engine) -> _State:
    found = engine.state.get("threshold")
    if isinstance(found, _State):
        return found
    made = engine.state["threshold"] = _State(engine.options)
    return made


class _Held:
    """The held levels made durable: entries ``str(series key) -> bytes([level])``."""

    def __init__(self, durable: PartitionedState, partitions: int) -> None:
        self.durable = durable
        self.partitions = partitions
        self.ids = EntityIds()
        self.keys: dict[int, set[SeriesKey]] = {}  # the series each partition holds

    def _partitions_of(self, batch: list[Event]) -> list[tuple[int, Event]]:
        ids, n = self.ids, self.partitions
        return [(partition_of(ids(e), n), e) for e in batch if e.measurements]

    def before(self, state: _State, batch: list[Event]) -> list[tuple[int, Event]]:
        """Load (or reload) the batch's partitions; take their levels into ``state``."""
        placed = self._partitions_of(batch)
        for p in sorted({p for p, _ in placed}):
            part, reloaded = self.durable.part(p)
            if reloaded:
                # back to what is committed: uncommitted levels (a batch rolled back, or
                # computed on a state another worker has since moved on) are forgotten
                for key in self.keys.get(p, ()):
                    series = state.series.get(key)
                    if series is not None:
                        series.level = 0
                for text, value in part.entries.items():
                    key = SeriesKey.parse(text)
                    (state.series.get(key) or state.add(key)).level = value[0]
        return placed

    def after(self, state: _State, placed: list[tuple[int, Event]]) -> None:
        """Note the levels the batch changed, to be committed."""
        parts: dict[int, Part] = {}  # ``before`` checked each partition for this batch
        for p, event in placed:
            part = parts.get(p)
            if part is None:
                part = parts[p] = self.durable.part(p)[0]
            keys = self.keys.setdefault(p, set())
            for m in event.measurements:
                series = state.series.get(m.key)
                if series is None or series.limits is None:
                    continue
                keys.add(m.key)
                text = str(m.key)
                stored = part.put.get(text) or part.entries.get(text)
                if (stored[0] if stored else 0) != series.level:
                    part.put[text] = bytes((series.level,))


def _held(engine: Engine) -> _Held | None:
    """The durable levels when the options ask for them (opened on first use)."""
    found = engine.state.get("threshold.held", False)
    if found is not False:
        return found  # type: ignore[no-any-return]
    options: ThresholdOptions = engine.options
    store = open_store(options, engine=engine.name, partitions=engine.partitions,
                       data_dir=engine.services.data_dir, window=1)
    made = None
    if store is not None:
        made = _Held(PartitionedState(store, window=1), engine.partitions)
        engine.on_rollback(made.durable.rollback)
        engine.on_close(store.close)
    engine.state["threshold.held"] = made
    return made


def _level(limits: _Limits, value: float, held: int) -> int:
    sign, warn, crit, hysteresis = limits
    x = sign * value
    raw = CRITICAL if x >= crit else WARNING if x >= warn else 0
    if held <= raw or not hysteresis:
        return raw
    # leaving a level needs the value back beyond its limit by the hysteresis
    if held >= CRITICAL and x > crit - hysteresis:
        return CRITICAL
    if x > warn - hysteresis:
        return WARNING
    return raw


def evaluate(engine: Engine, event: Event) -> Event:
    """The event with the state its measurements imply (the event task)."""
    if not event.measurements:
        return event
    state, held = _state(engine), _held(engine)
    if held is None:
        return _evaluate(state, event)
    placed = held.before(state, [event])
    out = _evaluate(state, event)
    held.after(state, placed)
    return out


def _evaluate(state: _State, event: Event) -> Event:
    worst = 0
    matched = False
    known = state.series
    use_perf = state.options.use_perf_data
    for m in event.measurements:
        value = m.value
        if value is None:
            continue
        series = known.get(m.key) or state.add(m.key)
        if series.limits is not None:
            matched = True
            level = series.level = _level(series.limits, value, series.level)
        elif use_perf and event.attrs:
            perf = _perf_level(event, m)
            if perf is None:
                continue
            matched, level = True, perf
        else:
            continue
        worst = max(worst, level)
    if not matched:
        return event
    new = max(worst, event.state) if state.options.combine == "max" else worst
    kind = "check" if event.event_type in _METRIC_TYPES else event.event_type
    if new == event.state and kind == event.event_type:
        return event
    output = _reasons(state, event) if worst else event.output
    return msgspec.structs.replace(event, state=new, event_type=kind, output=output)


def _reasons(state: _State, event: Event) -> str:
    """Why: written only for events whose state changes (formatting is not free)."""
    reasons = []
    for m in event.measurements:
        series = state.series.get(m.key)
        if m.value is None or series is None:
            continue
        if series.rule is not None and series.level:
            rule = series.rule
            limit = rule.critical if series.level == CRITICAL else rule.warning
            reasons.append(f"{m.key.metric}={m.value:g} ({_LEVEL_NAMES[series.level]}: "
                           f"{rule.direction} {limit:g})")
        elif series.rule is None and event.attrs:
            level = _perf_level(event, m)
            if level:
                reasons.append(f"{_name(m)}={m.value:g} ({_LEVEL_NAMES[level]})")
    return "; ".join(reasons)


def _name(m: Measurement) -> str:
    return dict(m.key.labels).get("metric", m.key.metric)


def _perf_level(event: Event, m: Measurement) -> int | None:
    """The level from Nagios ranges the event carried for this metric, if any."""
    name = _name(m)
    warn = event.attrs.get(f"perf.{name}.warn")
    crit = event.attrs.get(f"perf.{name}.crit")
    if warn is None and crit is None:
        return None
    assert m.value is not None
    if crit is not None and nagios_alert(crit, m.value):
        return CRITICAL
    if warn is not None and nagios_alert(warn, m.value):
        return WARNING
    return 0


def nagios_alert(spec: str, value: float) -> bool:
    """True when ``value`` alerts under the Nagios range ``spec`` (``10``, ``10:``, ``~:10``,
    ``10:20``, ``@10:20``); an unreadable range never alerts."""
    match = _RANGE.match(spec.strip())
    if not match or spec.strip() in ("", "@"):
        return False
    inside, low_text, high_text = match.groups()
    low = -math.inf if low_text == "~" else float(low_text) if low_text else 0.0
    high = float(high_text) if high_text else math.inf
    within = low <= value <= high
    return within if inside else not within


async def evaluate_batch(engine: Engine, batch: list[Event]) -> list[Event]:
    """:func:`evaluate` over a batch (the batch task)."""
    state, held = _state(engine), _held(engine)
    if held is None:
        return _evaluate_batch(state, batch)
    placed = held.before(state, batch)
    out = _evaluate_batch(state, batch)
    held.after(state, placed)
    return out


async def commit(engine: Engine) -> None:
    """Store the levels changed since the last commit (durable state only)."""
    held = _held(engine)
    if held is not None:
        held.durable.commit()


def beat(engine: Engine) -> None:
    """Commit on the beat too: on the local bus (``watchkeeper up``) nothing else does."""
    held = _held(engine)
    commit_on_beat(None if held is None else held.durable, engine.name)


def _evaluate_batch(state: _State, batch: list[Event]) -> list[Event]:
    """:func:`_evaluate` over a batch, with the common case inlined: an event carrying one
    measurement of a series some rule matched (its reason's suffix is made once per
    series and level)."""
    known = state.series
    combine_max = state.options.combine == "max"
    suffixes = state.suffixes
    replace = msgspec.structs.replace
    out: list[Event] = []
    append = out.append
    for event in batch:
        measurements = event.measurements
        if len(measurements) != 1:
            append(_evaluate(state, event) if measurements else event)
            continue
        m = measurements[0]
        value = m.value
        if value is None:
            append(event)  # nothing to evaluate
            continue
        series = known.get(m.key)
        if series is None or series.limits is None:
            append(_evaluate(state, event))
            continue
        limits = series.limits
        sign, warn, crit, hysteresis = limits
        x = sign * value
        raw = CRITICAL if x >= crit else WARNING if x >= warn else 0
        held = series.level
        level = series.level = (raw if held <= raw or not hysteresis
                                else _level(limits, value, held))
        new = (level if level > event.state else event.state) if combine_max else level
        kind = event.event_type
        if kind in _METRIC_TYPES:
            kind = "check"
        elif new == event.state:
            append(event)
            continue
        if level:
            suffix = suffixes.get((series, level))
            if suffix is None:
                suffix = suffixes[(series, level)] = _suffix(series, level)
            output = f"{m.key.metric}={value:g}{suffix}"
        else:
            output = event.output
        append(replace(event, state=new, event_type=kind, output=output))
    return out


def _suffix(series: _Series, level: int) -> str:
    """The end of a reason written by :func:`_reasons` for a rule's series at ``level``."""
    rule = series.rule
    assert rule is not None
    limit = rule.critical if level == CRITICAL else rule.warning
    return f" ({_LEVEL_NAMES[level]}: {rule.direction} {limit:g})"


ENGINE = EngineDefinition(
    event_task=evaluate,
    batch_task=evaluate_batch,
    beat_task=beat,
    commit_task=commit,
    options=ThresholdOptions,
    partitioned=True,  # hysteresis remembers each series' level
)
