"""The alarms engine's tasks: apply batches, expire on the beat, commit before the ack."""

from __future__ import annotations

import logging
from pathlib import Path

from watchkeeper.model import Event
from watchkeeper.pipeline.abc import EngineDefinition
from watchkeeper.pipeline.engine import Engine
from watchkeeper.pipeline.engines.alarms.book import AlarmBook
from watchkeeper.pipeline.engines.alarms.model import AlarmOptions
from watchkeeper.pipeline.engines.alarms.pgstore import PostgresStore
from watchkeeper.pipeline.engines.alarms.store import (
    AlarmStore,
    MemoryStore,
    SqliteStore,
    StaleState,
)

log = logging.getLogger(__name__)


def book(engine: Engine) -> AlarmBook:
    """The engine's alarm book, made on first use (nothing is opened before that)."""
    found = engine.state.get("book")
    if isinstance(found, AlarmBook):
        return found
    options: AlarmOptions = engine.options
    store: AlarmStore
    if options.store == "sqlite":
        base = Path(options.path)
        if not base.is_absolute():
            base = (engine.services.data_dir or Path()) / base
        store = SqliteStore(base / engine.name, engine.partitions,
                            dedup_window=options.dedup_window, fsync=options.fsync)
    elif options.store == "postgres":
        assert options.dsn is not None  # checked with the options
        store = PostgresStore(options.dsn, engine.name, engine.partitions,
                              dedup_window=options.dedup_window, schema=options.schema)
    else:
        store = MemoryStore(options.keep_resolved)
    made = AlarmBook(options, store, partitions=engine.partitions,
                     durable=options.store != "memory", source=engine.name,
                     lookup=engine.services.lookup)
    engine.state["book"] = made
    engine.on_rollback(made.rollback)
    engine.on_close(store.close)
    return made


async def process_batch(engine: Engine, batch: list[Event]) -> list[Event]:
    """Apply the batch; pass it on (``emit: all``) followed by one ``alarm`` event per step."""
    changes = book(engine).apply_batch(batch)
    if engine.options.emit == "changes":
        return changes
    return [*batch, *changes] if changes else batch


def process_event(engine: Engine, event: Event) -> Event:
    """The same, one event at a time (the reference semantics of the batch task)."""
    engine.emit(book(engine).apply_batch([event]))
    return event


def beat(engine: Engine) -> None:
    """No-data, acknowledgement expiry, end of snoozes and stealth, resolution; then commit."""
    alarms = book(engine)
    changes = alarms.expire(engine.services.clock.time())
    try:
        alarms.commit()
    except StaleState:
        log.info("engine %s: another worker moved a partition on; its beat work is dropped",
                 engine.name)
        return  # whoever committed first did the same time-driven steps
    engine.emit(changes)


async def commit(engine: Engine) -> None:
    book(engine).commit()


ENGINE = EngineDefinition(
    event_task=process_event,
    batch_task=process_batch,
    beat_task=beat,
    commit_task=commit,
    options=AlarmOptions,
    beat_interval=10.0,
    partitioned=True,
)
