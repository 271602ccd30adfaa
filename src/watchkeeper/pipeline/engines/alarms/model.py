"""The alarm state machine: pure functions over one entity's record, time always an argument.

An alarm is an append-only log of steps (``stateinc``, ``statusinc``, ``ack``,
``snooze``, ``cancel``, ``resolve``...) plus a current state derived from it
(reference: engines.md §A.8 and §D.4). Per entity a :class:`Track` keeps the hard
state, the soft-state counter, the TTL bookkeeping and the open alarm, if any.

Rules, with Canopsis' shipped defaults made explicit here (never only in a database):

- a non-OK *hard* state opens an alarm; OK checks without an open alarm change nothing.
  A state is hard at once when the event says ``state_type: hard`` (Canopsis/Nagios
  events), stays soft when it says ``soft``, and otherwise after ``hard_after``
  consecutive results. Recovery to OK is immediate (as in Nagios).
- status, in order: cancelled; flapping (``flap_changes`` state changes within
  ``flap_window`` s, default 10 in 3600 s); stealthy (back to OK after less than
  ``stealthy_time`` s of trouble, shown for ``stealthy_show`` s); ongoing (not OK); off.
- an alarm whose status has been off for ``resolve_after`` s is resolved and closed;
  a new failure inside that window reopens the same alarm.
- no event for ``ttl`` s (the event's, or ``default_ttl``) is its own state,
  ``NO_DATA`` (4), entered at ``last_seen + ttl``.
- acknowledgements may expire; snoozes end; both are steps. Past ``hard_limit`` steps
  only cancel/uncancel/resolve are still logged; other changes are counted.
- impact along the topology (``impact``, on by default): when an alarm logs a step while
  a device upstream of its component (the inventory's ``upstream`` attribute) has an
  open non-OK alarm, it is marked ``caused_by`` that alarm's entity id, with an
  ``impact`` step; the mark stays for the alarm's life.

Every time-driven transition is logged at the time it became due, not at the time it
was noticed, so the log does not depend on when beats ran.
"""

from __future__ import annotations

import math
from typing import Final, Literal

import msgspec

from watchkeeper.model import Event

OK: Final = 0
NO_DATA: Final = 4
STATE_NAMES: Final = ("ok", "minor", "major", "critical", "no data")

OFF: Final = 0
ONGOING: Final = 1
STEALTHY: Final = 2
FLAPPING: Final = 3
CANCELLED: Final = 4
STATUS_NAMES: Final = ("off", "ongoing", "stealthy", "flapping", "cancelled")

CHECK_TYPES: Final = frozenset({"check", "selector", "sla", "eue", "topology", "toponode",
                                "consolidation"})
ACTIONS: Final = frozenset({"ack", "ackremove", "cancel", "uncancel", "snooze", "unsnooze",
                            "changestate", "assocticket", "declareticket", "downtime"})
SYSTEM: Final = "system"
_ALWAYS_LOGGED: Final = frozenset({"cancel", "uncancel", "resolve", "hardlimit"})


class AlarmOptions(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """Options of the alarms engine (``engines[].options``)."""

    hard_after: int = 1
    flap_changes: int = 10
    flap_window: float = 3600.0
    stealthy_time: float = 300.0
    stealthy_show: float = 300.0
    resolve_after: float = 3600.0
    hard_limit: int = 100
    ack_expiry: float | None = None
    snooze_default: float = 300.0
    default_ttl: float | None = None
    dedup_window: int = 100_000
    emit: Literal["all", "changes"] = "all"
    store: Literal["memory", "sqlite", "postgres"] = "memory"
    path: str = "alarms"
    fsync: bool = False
    dsn: str | None = None
    schema: str = "watchkeeper"
    keep_resolved: int = 10_000
    impact: bool = True

    def __post_init__(self) -> None:
        if self.store == "postgres" and not self.dsn:
            raise ValueError("store: postgres needs a dsn (a libpq connection string)")
        for name in ("hard_after", "flap_changes", "hard_limit", "dedup_window"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")
        for name in ("flap_window", "stealthy_time", "stealthy_show", "resolve_after",
                     "snooze_default"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative")


class Step(msgspec.Struct, frozen=True, kw_only=True):
    """One entry of an alarm's log: what happened, when, who did it, and its value."""

    type: str
    t: float
    author: str = SYSTEM
    message: str = ""
    val: float | None = None


class Alarm(msgspec.Struct, kw_only=True):
    """An open (or resolved) alarm: its step log and the state derived from it."""

    id: str
    entity_id: str
    component: str
    resource: str = ""
    opened: float
    state: int = OK
    status: int = OFF
    status_since: float = 0.0
    nonok_since: float | None = None
    recovered_at: float | None = None
    changes: list[float] = msgspec.field(default_factory=list)
    ack: Step | None = None
    snooze_until: float | None = None
    canceled: Step | None = None
    ticket: str | None = None
    state_lock: int | None = None
    resolved: float | None = None
    events: int = 0
    unlogged: int = 0
    due: float = math.inf  # when something next changes by itself (see _next_due)
    caused_by: str | None = None  # the upstream alarm's entity id (impact)
    # A state change came while watchkeeper's poller was saturated (its own overload), as
    # Icinga marks overdue checks: the device may be fine (check attr "poller_saturated").
    poller_saturated: bool = False
    steps: list[Step] = msgspec.field(default_factory=list)


class Track(msgspec.Struct, kw_only=True):
    """Everything the engine remembers about one entity."""

    entity_id: str
    component: str
    resource: str = ""
    state: int = OK
    soft_state: int = OK
    soft_count: int = 0
    last_seen: float = 0.0
    ttl: float | None = None
    downtimes: list[tuple[float, float]] = msgspec.field(default_factory=list)
    events: int = 0
    alarm: Alarm | None = None


def new_track(event: Event, entity_id: str) -> Track:
    return Track(entity_id=entity_id, component=event.component, resource=event.resource)


def apply(track: Track, event: Event, opts: AlarmOptions, out: list[Step]) -> Alarm | None:
    """Apply one event to ``track``; new steps are appended to ``out``.

    Returns the alarm the event resolved, if it closed one (the caller archives it).
    """
    t = event.timestamp
    kind = event.event_type
    logged = len(out)
    closed = None
    if (kind in CHECK_TYPES and track.ttl is not None and track.last_seen
            and track.state != NO_DATA and t > track.last_seen + track.ttl):
        closed = _no_data(track, opts, out)  # silent for longer than its TTL before this
    if track.alarm is not None and t >= track.alarm.due:
        closed = advance(track, t, opts, out) or closed
    if kind in CHECK_TYPES:
        _check(track, event, opts, out)
    elif kind in ACTIONS:
        _action(track, event, opts, out)
    alarm = track.alarm
    if alarm is not None and (len(out) != logged or kind in ACTIONS):
        alarm.due = _next_due(alarm, opts)
    return closed


def _check(track: Track, event: Event, opts: AlarmOptions, out: list[Step]) -> None:
    t = event.timestamp
    track.events += 1
    ttl = event.ttl if event.ttl is not None else opts.default_ttl
    track.last_seen = max(track.last_seen, t)
    track.ttl = ttl
    if track.alarm is not None:
        track.alarm.events += 1
    state = event.state if 0 <= event.state <= 3 else 3
    if state == track.state:
        track.soft_count = 0
        return
    declared = event.attrs.get("state_type") if event.attrs else None
    if declared == "soft":
        _soft(track, state)
        return
    if declared != "hard" and state != OK and opts.hard_after > 1:
        _soft(track, state)
        if track.soft_count < opts.hard_after:
            return
    track.soft_count = 0
    author = f"{event.connector}.{event.connector_name}"
    _change_state(track, state, t, author=author, message=event.output, opts=opts, out=out)
    if track.alarm is not None and event.attrs.get("poller_saturated") == "true":
        track.alarm.poller_saturated = True


def _soft(track: Track, state: int) -> None:
    if state == track.soft_state and track.soft_count:
        track.soft_count += 1
    else:
        track.soft_state, track.soft_count = state, 1


def _no_data(track: Track, opts: AlarmOptions, out: list[Step]) -> Alarm | None:
    assert track.ttl is not None
    when = track.last_seen + track.ttl
    closed = advance(track, when, opts, out)
    _change_state(track, NO_DATA, when, author=SYSTEM, message=f"no data for {track.ttl:g} s",
                  opts=opts, out=out)
    return closed


def expire(track: Track, now: float, opts: AlarmOptions, out: list[Step]) -> Alarm | None:
    """The beat's work for one entity at ``now``: no-data, then whatever else is due.

    Returns the alarm resolved on the way, if any (at most one per call).
    """
    closed = None
    if (track.ttl is not None and track.last_seen and track.state != NO_DATA
            and now >= track.last_seen + track.ttl):
        closed = _no_data(track, opts, out)
    return advance(track, now, opts, out) or closed


def _change_state(track: Track, state: int, t: float, *, author: str, message: str,
                  opts: AlarmOptions, out: list[Step]) -> None:
    previous = track.state
    track.state = state
    alarm = track.alarm
    if alarm is None:
        if state == OK:
            return
        alarm = track.alarm = Alarm(id=f"{track.entity_id}@{t!r}", entity_id=track.entity_id,
                                    component=track.component, resource=track.resource,
                                    opened=t, status_since=t)
    if alarm.state_lock is None:
        alarm.state = state
    _log(alarm, Step(type="stateinc" if state > previous else "statedec", t=t,
                     author=author, message=message, val=state), opts, out)
    alarm.changes.append(t)
    if len(alarm.changes) > opts.flap_changes:
        del alarm.changes[0]
    if state == OK:
        alarm.recovered_at = t  # the trouble lasted from nonok_since to now
    elif previous == OK or alarm.nonok_since is None:
        alarm.nonok_since, alarm.recovered_at = t, None  # new trouble starts
    _update_status(alarm, t, opts, out)


def status_at(alarm: Alarm, t: float, opts: AlarmOptions) -> int:
    """The status the alarm's log implies at time ``t``."""
    if alarm.canceled is not None:
        return CANCELLED
    changes = alarm.changes
    if len(changes) >= opts.flap_changes and changes[-opts.flap_changes] > t - opts.flap_window:
        return FLAPPING
    if alarm.state == OK:
        recovered = alarm.recovered_at
        if (recovered is not None and alarm.nonok_since is not None
                and recovered - alarm.nonok_since < opts.stealthy_time
                and t < recovered + opts.stealthy_show):
            return STEALTHY
        return OFF
    return ONGOING


def _update_status(alarm: Alarm, t: float, opts: AlarmOptions, out: list[Step]) -> None:
    status = status_at(alarm, t, opts)
    if status != alarm.status:
        kind = "statusinc" if status > alarm.status else "statusdec"
        alarm.status = status
        alarm.status_since = t
        _log(alarm, Step(type=kind, t=t, val=status), opts, out)


def _next_due(alarm: Alarm, opts: AlarmOptions) -> float:
    """The earliest time at which something changes by itself (``inf``: nothing)."""
    due = math.inf
    if alarm.ack is not None and alarm.ack.val is not None:
        due = min(due, alarm.ack.val)
    if alarm.snooze_until is not None:
        due = min(due, alarm.snooze_until)
    if alarm.status == FLAPPING and len(alarm.changes) >= opts.flap_changes:
        due = min(due, alarm.changes[-opts.flap_changes] + opts.flap_window)
    if alarm.status == STEALTHY and alarm.recovered_at is not None:
        due = min(due, alarm.recovered_at + opts.stealthy_show)
    if alarm.status == OFF:
        due = min(due, alarm.status_since + opts.resolve_after)
    return due


def advance(track: Track, t: float, opts: AlarmOptions, out: list[Step]) -> Alarm | None:
    """Apply the time-driven transitions due by ``t``, each at the moment it fell due.

    Returns the alarm if it was resolved (and so closed: ``track.alarm`` is None).
    """
    alarm = track.alarm
    while alarm is not None:
        due = alarm.due = _next_due(alarm, opts)
        if due > t:
            return None
        if alarm.ack is not None and alarm.ack.val is not None and alarm.ack.val <= due:
            alarm.ack = None
            _log(alarm, Step(type="ackremove", t=due, message="acknowledgement expired"),
                 opts, out)
            continue
        if alarm.snooze_until is not None and alarm.snooze_until <= due:
            alarm.snooze_until = None
            _log(alarm, Step(type="unsnooze", t=due, message="snooze ended"), opts, out)
            continue
        if alarm.status == OFF and alarm.status_since + opts.resolve_after <= due:
            alarm.resolved = due
            _log(alarm, Step(type="resolve", t=due), opts, out)
            track.alarm = None
            return alarm
        _update_status(alarm, due, opts, out)
    return None


def _log(alarm: Alarm, step: Step, opts: AlarmOptions, out: list[Step]) -> None:
    steps = alarm.steps
    if len(steps) >= opts.hard_limit and step.type not in _ALWAYS_LOGGED:
        if not alarm.unlogged:  # the first step over the limit: say so, once
            limit = Step(type="hardlimit", t=step.t, val=float(opts.hard_limit),
                         message="step limit reached; further changes are counted")
            steps.append(limit)
            out.append(limit)
        alarm.unlogged += 1
        alarm.due = -math.inf  # unlogged changes still move deadlines: recompute next time
        return
    steps.append(step)
    out.append(step)


def mark_caused_by(alarm: Alarm, cause: str, t: float, opts: AlarmOptions,
                   out: list[Step]) -> None:
    """Mark ``alarm`` as a consequence of the alarm of entity ``cause`` (an ``impact`` step)."""
    alarm.caused_by = cause
    _log(alarm, Step(type="impact", t=t, message=cause), opts, out)


class _Act(msgspec.Struct, frozen=True):
    """An action event, decoded: who did what to which alarm, when."""

    kind: str
    t: float
    author: str
    message: str
    attrs: dict[str, str]
    state: int


def _action(track: Track, event: Event, opts: AlarmOptions, out: list[Step]) -> None:
    attrs = event.attrs
    act = _Act(kind=event.event_type, t=event.timestamp, message=event.output, attrs=attrs,
               author=attrs.get("author") or f"{event.connector}.{event.connector_name}",
               state=event.state)
    if act.kind == "downtime":
        _downtime(track, act, opts, out)
    elif track.alarm is not None:  # otherwise Canopsis' "no current alarm": nothing to do
        _ACTS[act.kind](track.alarm, act, opts, out)


def _downtime(track: Track, act: _Act, opts: AlarmOptions, out: list[Step]) -> None:
    start = _float(act.attrs.get("start"), act.t)
    end = _float(act.attrs.get("end"),
                 start + _float(act.attrs.get("duration"), opts.snooze_default))
    track.downtimes = [(s, e) for s, e in track.downtimes if e > act.t]
    track.downtimes.append((start, end))
    if track.alarm is not None:
        _log(track.alarm, Step(type="downtime", t=act.t, author=act.author,
                               message=act.message, val=end), opts, out)


def _ack(alarm: Alarm, act: _Act, opts: AlarmOptions, out: list[Step]) -> None:
    duration = _float(act.attrs.get("duration"), opts.ack_expiry or 0.0)
    alarm.ack = Step(type="ack", t=act.t, author=act.author, message=act.message,
                     val=act.t + duration if duration > 0 else None)
    _log(alarm, alarm.ack, opts, out)


def _ackremove(alarm: Alarm, act: _Act, opts: AlarmOptions, out: list[Step]) -> None:
    if alarm.ack is not None:
        alarm.ack = None
        _log(alarm, Step(type="ackremove", t=act.t, author=act.author, message=act.message),
             opts, out)


def _snooze(alarm: Alarm, act: _Act, opts: AlarmOptions, out: list[Step]) -> None:
    until = act.t + _float(act.attrs.get("duration"), opts.snooze_default)
    alarm.snooze_until = until
    _log(alarm, Step(type="snooze", t=act.t, author=act.author, message=act.message,
                     val=until), opts, out)


def _unsnooze(alarm: Alarm, act: _Act, opts: AlarmOptions, out: list[Step]) -> None:
    if alarm.snooze_until is not None:
        alarm.snooze_until = None
        _log(alarm, Step(type="unsnooze", t=act.t, author=act.author, message=act.message),
             opts, out)


def _cancel(alarm: Alarm, act: _Act, opts: AlarmOptions, out: list[Step]) -> None:
    if (act.kind == "cancel") == (alarm.canceled is None):
        step = Step(type=act.kind, t=act.t, author=act.author, message=act.message)
        alarm.canceled = step if act.kind == "cancel" else None
        _log(alarm, step, opts, out)
        _update_status(alarm, act.t, opts, out)


def _changestate(alarm: Alarm, act: _Act, opts: AlarmOptions, out: list[Step]) -> None:
    state = int(_float(act.attrs.get("state"), act.state))
    alarm.state = alarm.state_lock = max(0, min(state, NO_DATA))  # sticky until resolved
    _log(alarm, Step(type="changestate", t=act.t, author=act.author, message=act.message,
                     val=alarm.state), opts, out)
    _update_status(alarm, act.t, opts, out)


def _ticket(alarm: Alarm, act: _Act, opts: AlarmOptions, out: list[Step]) -> None:
    alarm.ticket = act.attrs.get("ticket") or act.message
    _log(alarm, Step(type=act.kind, t=act.t, author=act.author, message=alarm.ticket),
         opts, out)


_ACTS = {"ack": _ack, "ackremove": _ackremove, "snooze": _snooze, "unsnooze": _unsnooze,
         "cancel": _cancel, "uncancel": _cancel, "changestate": _changestate,
         "assocticket": _ticket, "declareticket": _ticket}


def _float(text: str | None, default: float) -> float:
    if text is None or text == "":
        return default
    try:
        return float(text)
    except ValueError:
        return default


def is_snoozed(track: Track, now: float) -> bool:
    """True while the alarm is snoozed or the entity is inside a downtime window."""
    alarm = track.alarm
    if alarm is not None and alarm.snooze_until is not None and now < alarm.snooze_until:
        return True
    return any(start <= now < end for start, end in track.downtimes)
