"""The dedup/throttle engine: drop events already seen, and damp repeats per entity.

At-least-once delivery means an event can come twice; this engine drops an event whose
id it saw among (at least) the last ``window`` ids. With ``throttle: N``, at most N events per
entity pass per ``period`` seconds of event time (Riemann's ``throttle``), except that a
change of state always passes and, with ``keep_measurements`` (the default), so does an
event carrying measurements (the archive wants every point).

With ``state: sqlite`` (one host) or ``state: postgres`` (several) the recent ids are
committed per partition with each batch, before the bus acknowledges it
(:mod:`watchkeeper.pipeline.state`): a duplicate redelivered after a worker died, or to
a worker on another host, is still recognised. The throttle windows stay in memory.
"""

from __future__ import annotations

from collections.abc import Callable

from watchkeeper.model import Event
from watchkeeper.pipeline.abc import EngineDefinition
from watchkeeper.pipeline.engine import Engine
from watchkeeper.pipeline.partition import EntityIds, partition_of
from watchkeeper.pipeline.recent import RecentIds
from watchkeeper.pipeline.state import (
    Part,
    PartitionedState,
    StateOptions,
    commit_on_beat,
    open_store,
)


class DedupOptions(StateOptions, frozen=True, forbid_unknown_fields=True, kw_only=True):
    window: int = 100_000
    throttle: int | None = None
    period: float = 60.0
    keep_measurements: bool = True
    max_entities: int = 1_000_000

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.window < 1:
            raise ValueError("window must be at least 1")
        if self.throttle is not None and self.throttle < 1:
            raise ValueError("throttle must be at least 1 (or null for no throttling)")
        if self.period <= 0:
            raise ValueError("period must be positive")


class _Window:
    __slots__ = ("count", "start", "state")

    def __init__(self, start: float, state: int) -> None:
        self.start = start
        self.count = 1
        self.state = state


class _State:
    def __init__(self, options: DedupOptions, durable: PartitionedState | None = None,
                 partitions: int = 1) -> None:
        self.options = options
        self.durable = durable
        self.partitions = partitions
        self.seen = RecentIds(options.window)
        self.windows: dict[str, _Window] = {}
        self.ids = EntityIds()
        self.duplicates = 0
        self.throttled = 0


def _state(engine: Engine) -> _State:
    found = engine.state.get("dedup")
    if isinstance(found, _State):
        return found
    options: DedupOptions = engine.options
    store = open_store(options, engine=engine.name, partitions=engine.partitions,
                       data_dir=engine.services.data_dir, window=options.window)
    durable = None
    if store is not None:
        durable = PartitionedState(store, window=options.window)
        engine.on_rollback(durable.rollback)
        engine.on_close(store.close)
    made = engine.state["dedup"] = _State(options, durable, engine.partitions)
    return made


def _remember_durably(state: _State, durable: PartitionedState) -> Callable[[Event], bool]:
    """``remember(event)`` over the partitions' stored ids: False for a duplicate.

    Each partition is fetched (its version checked against the store) once per batch,
    not per event: a round trip each in PostgreSQL. Another worker committing to it
    meanwhile is caught by the commit, which then refuses the batch."""
    ids, n = state.ids, state.partitions
    parts: dict[int, Part] = {}

    def remember(event: Event) -> bool:
        p = partition_of(ids(event), n)
        part = parts.get(p)
        if part is None:
            part = parts[p] = durable.part(p)[0]
        if not part.seen.add(event.id):
            return False
        part.new_ids.append(event.id)
        return True

    return remember


def filter_batch_sync(state: _State, batch: list[Event]) -> list[Event]:
    options = state.options
    throttle = options.throttle
    durable = state.durable
    if durable is not None:
        remember = _remember_durably(state, durable)
    elif throttle is None and state.seen.add_all([event.id for event in batch]):
        return list(batch)  # the common case: nothing seen before, nothing to throttle
    else:
        add = state.seen.add

        def remember(event: Event) -> bool:
            return add(event.id)
    out: list[Event] = []
    for event in batch:
        if not remember(event):
            state.duplicates += 1
            continue
        if throttle is None or (options.keep_measurements and event.measurements):
            out.append(event)
            continue
        if _passes(state, event, throttle, options.period):
            out.append(event)
        else:
            state.throttled += 1
    return out


def _passes(state: _State, event: Event, throttle: int, period: float) -> bool:
    entity = state.ids(event)
    current = state.windows.get(entity)
    t = event.timestamp
    if current is None:
        if len(state.windows) >= state.options.max_entities:
            state.windows.clear()
        state.windows[entity] = _Window(t, event.state)
        return True
    if event.state != current.state or t - current.start >= period:
        current.start, current.count, current.state = t, 1, event.state
        return True
    if current.count < throttle:
        current.count += 1
        return True
    return False


async def filter_batch(engine: Engine, batch: list[Event]) -> list[Event]:
    return filter_batch_sync(_state(engine), batch)


def filter_event(engine: Engine, event: Event) -> Event | None:
    """The event task: the event, or None when it is a duplicate or throttled."""
    out = filter_batch_sync(_state(engine), [event])
    return out[0] if out else None


async def commit(engine: Engine) -> None:
    """Store the ids taken since the last commit (durable state only)."""
    durable = _state(engine).durable
    if durable is not None:
        durable.commit()


def beat(engine: Engine) -> None:
    """Commit on the beat too: on the local bus (``watchkeeper up``) nothing else does."""
    commit_on_beat(_state(engine).durable, engine.name)


ENGINE = EngineDefinition(
    event_task=filter_event,
    batch_task=filter_batch,
    beat_task=beat,
    commit_task=commit,
    options=DedupOptions,
    partitioned=True,  # duplicates and windows are per entity
)
