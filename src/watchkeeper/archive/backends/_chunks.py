"""Turning runs of points into chunk rows: the flush logic every chunked backend shares.

A flush appends whole chunks of ``chunk_points`` points; it merges with the partial
last chunk of a series (the *tail*) to top it up, and with every chunk the new points
reach into when they arrive out of order, so a series' chunks never overlap. Which old
chunks a flush needs is decided by :func:`old_range`; the backend fetches them its own
way (SQLite one series at a time, PostgreSQL in one query) and hands them to
:meth:`Flush.add`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt

from watchkeeper.archive.abc import Kind
from watchkeeper.archive.backends._head import latest
from watchkeeper.archive.backends._points import decode_chunks
from watchkeeper.archive.backends._rollups import chunk_summaries
from watchkeeper.archive.codec import encode_float_chunks, encode_objects_ms

Int64Array = npt.NDArray[np.int64]
Values = npt.NDArray[Any]


class ChunkRow(NamedTuple):
    sid: int
    start_ms: int
    end_ms: int
    n: int
    blob: bytes
    summary: bytes = b""  # of a float chunk: its hourly rollup (see _rollups)


class Tail(NamedTuple):
    """The last chunk of a series: where it starts and ends, and how many points it has."""

    start_ms: int
    end_ms: int
    n: int


def old_range(tail: Tail | None, first_ms: int, last_ms: int,
              chunk_points: int) -> tuple[int, int] | None:
    """The time range of the old chunks a flush of ``[first_ms, last_ms]`` merges with."""
    if tail is None:
        return None
    if first_ms <= tail.end_ms:  # out of order: every chunk these points reach into
        return first_ms, last_ms
    if tail.n < chunk_points:  # top up the partial last chunk rather than start another
        return tail.start_ms, tail.end_ms
    return None


@dataclass
class Flush:
    """The chunk changes of one compaction: chunks deleted and inserted, and new tails."""

    kind: Kind
    chunk_points: int
    deleted: list[tuple[int, int]] = field(default_factory=list)  # (sid, start_ms)
    tails: dict[int, Tail] = field(default_factory=dict)  # series whose last chunk changes
    _builder: ChunkBuilder | None = None

    def add(  # noqa: PLR0917  (a series' points, its tail and old chunks: one each)
        self, sid: int, ts: Int64Array, values: Values, tail: Tail | None,
        old: list[ChunkRow], decoded: tuple[Int64Array, Values] | None = None,
    ) -> None:
        """Queue a series' new points (sorted, one per timestamp), merged with ``old``
        (``decoded``: their points, when the caller decoded many series' chunks at once)."""
        if self._builder is None:
            self._builder = ChunkBuilder(self.kind, self.chunk_points)
        if old:
            old_ts, old_values = decoded or decode_chunks(self.kind,
                                                          (row.blob for row in old))
            ts, values = latest(np.concatenate((old_ts, ts)), np.concatenate((old_values, values)))
            self.deleted.extend((sid, row.start_ms) for row in old)
        last = self._builder.add(sid, ts, values)
        # The last piece is the new tail unless all these points went in before the tail.
        replaced = any(row.start_ms == tail.start_ms for row in old) if tail else False
        if tail is None or ts[-1] > tail.end_ms or replaced:
            self.tails[sid] = last

    def inserted(self) -> list[ChunkRow]:
        return [] if self._builder is None else self._builder.rows()


class ChunkBuilder:
    """Cuts runs of points into chunks, and encodes them all in one call at the end."""

    def __init__(self, kind: Kind, size: int | None) -> None:
        self.kind = kind
        self.size = size  # None: one chunk per run, however long
        self._ts: list[Int64Array] = []
        self._values: list[Values] = []
        self._pieces: list[tuple[int, int, int]] = []  # sid, lo, hi in the joined arrays
        self._rows = 0

    def add(self, sid: int, ts: Int64Array, values: Values) -> Tail:
        """Queue ``ts``/``values`` (sorted, one per timestamp) as chunks of ``sid``."""
        size = self.size or len(ts)
        for lo in range(0, len(ts), size):
            self._pieces.append((sid, self._rows + lo, self._rows + min(lo + size, len(ts))))
        self._ts.append(ts)
        self._values.append(values)
        self._rows += len(ts)
        last_lo = (len(ts) - 1) // size * size
        return Tail(int(ts[last_lo]), int(ts[-1]), len(ts) - last_lo)

    def rows(self) -> list[ChunkRow]:
        if not self._pieces:
            return []
        ts = np.concatenate(self._ts)
        values = np.concatenate(self._values)
        if self.kind == "float":
            bounds = [lo for _, lo, _ in self._pieces] + [self._rows]
            blobs = encode_float_chunks(ts, values, bounds)
            summaries = chunk_summaries(ts, values, [(lo, hi) for _, lo, hi in self._pieces])
        else:
            blobs = [encode_objects_ms(ts[lo:hi], values[lo:hi].tolist())
                     for _, lo, hi in self._pieces]
            summaries = [b""] * len(blobs)
        return [
            ChunkRow(sid, int(ts[lo]), int(ts[hi - 1]), hi - lo, blob, summary)
            for (sid, lo, hi), blob, summary in zip(self._pieces, blobs, summaries, strict=True)
        ]
