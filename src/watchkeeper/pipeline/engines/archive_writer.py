"""The archive writer: batches the measurements carried by events into the archive.

Group commit: measurements accumulate until ``batch_size`` or until the next beat
(``flush_interval`` seconds), then go to the archive in one durable write. The
last beat at shutdown flushes what is left. Metric families' metadata an event carries
(a scraped exporter's ``# TYPE``/``# HELP``) goes, at the same flush, to the services'
``metadata`` store beside the archive, the one ``/prometheus/api/v1/metadata`` reads
(D46); without one it is dropped.
"""

from __future__ import annotations

import asyncio

import msgspec

from watchkeeper.errors import PipelineError
from watchkeeper.model import Event, Measurement, MetricMetadata
from watchkeeper.pipeline.abc import EngineDefinition
from watchkeeper.pipeline.engine import Engine


class ArchiveWriterOptions(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    batch_size: int = 10_000


def _buffer(engine: Engine) -> list[Measurement]:
    buffer: list[Measurement] = engine.state.setdefault("buffer", [])
    return buffer


def _families(engine: Engine) -> dict[str, MetricMetadata]:
    families: dict[str, MetricMetadata] = engine.state.setdefault("families", {})
    return families


async def write_batch(engine: Engine, batch: list[Event]) -> list[Event]:
    """Buffer the batch's measurements; write when the buffer is full. Events pass on."""
    buffer = _buffer(engine)
    for event in batch:
        buffer.extend(event.measurements)
        if event.families:
            _families(engine).update(event.families)
    options: ArchiveWriterOptions = engine.options
    if len(buffer) >= options.batch_size:
        await flush(engine)
    return batch


async def flush(engine: Engine) -> None:
    """Write the buffered measurements durably, then the families' metadata; on failure
    keep them for the next beat."""
    buffer = _buffer(engine)
    if buffer:
        sink = engine.services.sink
        if sink is None:
            raise PipelineError(f"engine {engine.name!r} needs an archive, and none is "
                                "configured")
        pending = list(buffer)
        buffer.clear()
        try:
            await sink.write(pending)
        except BaseException:
            buffer[:0] = pending  # keep order; the next beat tries again
            raise
    families = _families(engine)
    store = engine.services.metadata
    if families and store is not None:
        described = sorted(families.items())
        await asyncio.to_thread(store.update, described)  # a file, written only on change
        for name, meta in described:  # what arrived meanwhile stays for the next flush
            if families.get(name) == meta:
                del families[name]
    elif families:
        families.clear()


ENGINE = EngineDefinition(
    batch_task=write_batch,
    beat_task=flush,
    commit_task=flush,  # on a durable bus a batch is acknowledged only once written
    options=ArchiveWriterOptions,
    beat_interval=1.0,
)
