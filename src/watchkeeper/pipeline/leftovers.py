"""What an in-process bus still held when a stop ran out of time, kept on disk until the
next start puts it back in the same queues.

A stop drains the chain within a budget (issue 17 §4: ``up`` ends within 15 s of Ctrl-C,
whatever the load); events still queued then were acknowledged to someone (an API client
got 202), so they are written here, fsynced, and replayed on the next start. A broker's
queues keep their own messages, so only the local bus spills.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import msgspec

from watchkeeper.errors import PipelineError
from watchkeeper.model import Event

FILE_NAME = "pipeline-leftovers.msgpack"

_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(dict[str, list[list[Event]]])


def save(path: Path, queued: Mapping[str, Sequence[Sequence[Event]]]) -> int:
    """Write ``queued`` (queue → batches) durably, merged with what ``path`` already holds;
    the number of events written."""
    merged = {name: list(map(list, batches)) for name, batches in load(path).items()}
    for name, batches in queued.items():
        merged.setdefault(name, []).extend(list(b) for b in batches if b)
    merged = {name: batches for name, batches in merged.items() if batches}
    if not merged:
        return 0
    temporary = path.with_name(path.name + ".tmp")
    with temporary.open("wb") as out:
        out.write(_encoder.encode(merged))
        out.flush()
        os.fsync(out.fileno())
    temporary.replace(path)
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)  # the rename itself survives a power cut
    finally:
        os.close(directory)
    return sum(len(b) for batches in merged.values() for b in batches)


def load(path: Path) -> dict[str, list[list[Event]]]:
    """What ``path`` holds (queue → batches); nothing when there is no file."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return {}
    try:
        return _decoder.decode(data)
    except (msgspec.DecodeError, ValueError) as exc:
        raise PipelineError(f"{path}: unreadable pipeline leftovers ({exc}); move the file "
                            "away to start without them") from None


def discard(path: Path) -> None:
    """Forget the leftovers once they are back in their queues."""
    path.unlink(missing_ok=True)
