"""The archive writer: batches the measurements carried by events into the archive.

Group commit: measurements accumulate until ``batch_size`` or until the next beat
(``flush_interval`` seconds), then go to the archive in one durable write. The
last beat at shutdown flushes what is left.
"""

from __future__ import annotations

import msgspec

from watchkeeper.errors import PipelineError
from watchkeeper.model import Event, Measurement
from watchkeeper.pipeline.abc import EngineDefinition
from watchkeeper.pipeline.engine import Engine


class ArchiveWriterOptions(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    batch_size: int = 10_000


def _buffer(engine: Engine) -> list[Measurement]:
    buffer: list[Measurement] = engine.state.setdefault("buffer", [])
    return buffer


async def write_batch(engine: Engine, batch: list[Event]) -> list[Event]:
    """Buffer the batch's measurements; write when the buffer is full. Events pass on."""
    buffer = _buffer(engine)
    for event in batch:
        buffer.extend(event.measurements)
    options: ArchiveWriterOptions = engine.options
    if len(buffer) >= options.batch_size:
        await flush(engine)
    return batch


async def flush(engine: Engine) -> None:
    """Write the buffered measurements durably; on failure keep them for the next beat."""
    buffer = _buffer(engine)
    if not buffer:
        return
    sink = engine.services.sink
    if sink is None:
        raise PipelineError(f"engine {engine.name!r} needs an archive, and none is configured")
    pending = list(buffer)
    buffer.clear()
    try:
        await sink.write(pending)
    except BaseException:
        buffer[:0] = pending  # keep order; the next beat tries again
        raise


ENGINE = EngineDefinition(
    batch_task=write_batch,
    beat_task=flush,
    commit_task=flush,  # on a durable bus a batch is acknowledged only once written
    options=ArchiveWriterOptions,
    beat_interval=1.0,
)
