"""One shard of the PostgreSQL archive's ingest log moved into chunks, under its lock.

The caller opened the transaction and holds the shard's advisory lock; this takes *every*
log row of the shard (the rows the caller holds in memory from there, the others decoded
from the table) in sequence order, merges them into the chunks (a later row wins on
equal timestamps) and deletes them. The grouping and the encoding are CPU work: in the
``serve`` process they run on a thread that ``pause`` lets reads go first; in the
compaction process (:mod:`._pgcompactor`), which answers no reads, they run inline.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final, Literal, NamedTuple, TypeVar

import numpy as np

from watchkeeper.archive.abc import KINDS, Kind
from watchkeeper.archive.backends._batch import decode_batch
from watchkeeper.archive.backends._chunks import ChunkRow, Flush, Tail, old_range
from watchkeeper.archive.backends._head import Grouped, Head
from watchkeeper.archive.backends._pgheld import HeldRow
from watchkeeper.archive.backends._pgpool import Connection
from watchkeeper.archive.backends._pgstore import Held, PgStore

ENCODE_POINTS: Final = 20_000  # points encoded between two pauses
NOTHING_HELD: Held = ([], [])

Pause = Callable[[], None]
"""Called between series and between parts of the encoding (on a compaction's thread)."""
_T = TypeVar("_T")


class ShardOutcome(NamedTuple):
    """What became of one shard a background compaction was asked for."""

    status: Literal["locked", "gone", "compacted"]
    """``locked``: another transaction compacts it, left; ``gone``: no log row up to
    ``upto`` any more (compacted elsewhere), left; ``compacted``: every row moved."""
    seqs: tuple[int, ...] = ()
    """The log rows moved into chunks (``compacted``)."""
    rewritten: int = 0
    """Chunk rows replaced (``compacted``)."""


class Compacted(NamedTuple):
    """What one shard's compaction did."""

    seqs: list[int]
    """The log rows it moved into chunks (and deleted)."""
    rewritten: int
    """Chunk rows it replaced (dead tuples for the next vacuum)."""


async def compact_shard(store: PgStore, conn: Connection, shard: int, upto: int, *,
                        chunk_points: int, held: Held = NOTHING_HELD,
                        rows: Mapping[int, HeldRow] | None = None,
                        pause: Pause | None = None) -> ShardOutcome:
    """A background compaction of ``shard`` in the caller's transaction (D53): left when
    another transaction holds its lock (that one takes every row there) or when it no
    longer has a log row up to ``upto`` (compacted elsewhere since it was marked), else
    :func:`compact_locked`."""
    if not await store.try_lock_shard(conn, shard):
        return ShardOutcome("locked")
    if not await store.holds_upto(conn, shard, upto):
        return ShardOutcome("gone")
    done = await compact_locked(store, conn, shard, chunk_points=chunk_points, held=held,
                                rows=rows, pause=pause)
    return ShardOutcome("compacted", tuple(done.seqs), done.rewritten)


async def compact_locked(store: PgStore, conn: Connection, shard: int, *, chunk_points: int,
                         held: Held = NOTHING_HELD, rows: Mapping[int, HeldRow] | None = None,
                         pause: Pause | None = None) -> Compacted:
    """Move every log row of ``shard`` into chunks. ``held`` names the rows whose points
    ``rows`` gives (by seq); with ``pause`` the CPU work runs on a thread calling it."""
    rows = rows or {}
    logged = await store.log_rows(conn, [shard], held)
    if not logged:
        return Compacted([], 0)
    grouped = await _cpu(pause, _grouped, logged, rows)
    old = await _old_chunks(store, conn, [g for _, g in grouped], chunk_points)
    deleted, inserted = await _cpu(pause, flushed, grouped, old, chunk_points)
    await store.replace_chunks(conn, deleted, inserted)
    await store.widen_ranges(conn, _ranges([g for _, g in grouped]))
    await store.delete_log(conn, [seq for seq, _, _ in logged])
    return Compacted([seq for seq, _, _ in logged], len(deleted))


async def _cpu(pause: Pause | None, work: Callable[..., _T], *args: Any) -> _T:
    """``work(*args, pause)``: on a thread that ``pause`` lets reads go first, or inline
    without one (the compaction process answers no reads)."""
    if pause is None:
        return work(*args, _no_pause)
    return await asyncio.to_thread(work, *args, pause)


def _no_pause() -> None:
    pass


async def _old_chunks(
    store: PgStore, conn: Connection, grouped: list[Grouped], chunk_points: int
) -> dict[int, tuple[Tail | None, list[ChunkRow]]]:
    """Per series, its tail and the chunks its flush merges with (two queries at most)."""
    sids = np.concatenate([g.sids for g in grouped]).tolist()
    tails = await store.tails(conn, sids)
    out: dict[int, tuple[Tail | None, list[ChunkRow]]] = {}
    overlapped: list[tuple[int, int, int]] = []
    for g in grouped:
        for i in range(len(g.sids)):
            sid, ts, _ = g.series(i)
            row = tails.get(sid)
            tail = None if row is None else Tail(row.start_ms, row.end_ms, row.n)
            needed = old_range(tail, int(ts[0]), int(ts[-1]), chunk_points)
            if row is not None and needed == (row.start_ms, row.end_ms):
                out[sid] = (tail, [row])  # the partial tail, fetched already
            else:
                out[sid] = (tail, [])
                if needed:
                    overlapped.append((sid, *needed))
    if overlapped:
        found = await store.chunks_overlapping(conn, overlapped)
        for sid, rows in found.items():
            out[sid] = (out[sid][0], rows)
    return out


def _grouped(logged: Sequence[tuple[int, int, bytes | None]], rows: Mapping[int, HeldRow],
             pause: Pause) -> list[tuple[Kind, Grouped]]:
    """The log rows' points by kind and series (held rows from memory, others decoded);
    ``pause`` is called between rows."""
    heads = {kind: Head(np.float64 if kind == "float" else object) for kind in KINDS}
    for seq, _, blob in logged:
        pause()
        batch = rows[seq].batch if blob is None else decode_batch(blob)
        for kind, (sids, ts, values) in zip(KINDS, batch.columns, strict=True):
            heads[kind].append(seq, sids, ts, values)
    return [(kind, head.take()) for kind, head in heads.items() if len(head)]


def flushed(grouped: list[tuple[Kind, Grouped]],
            old: dict[int, tuple[Tail | None, list[ChunkRow]]],
            chunk_points: int, pause: Pause
            ) -> tuple[list[tuple[int, int]], list[ChunkRow]]:
    """The chunks the grouped points replace, and the chunks that replace them; ``pause``
    is called between series, and between parts of ~``ENCODE_POINTS`` points encoded."""
    deleted: list[tuple[int, int]] = []
    inserted: list[ChunkRow] = []
    for kind, g in grouped:
        flush, points = Flush(kind, chunk_points), 0
        for i in range(len(g.sids)):
            pause()
            sid, ts, values = g.series(i)
            tail, rows = old[sid]
            flush.add(sid, ts, values, tail, rows)
            points += len(ts)
            if points >= ENCODE_POINTS or i == len(g.sids) - 1:
                deleted += flush.deleted
                inserted += flush.inserted()
                flush, points = Flush(kind, chunk_points), 0
    return deleted, inserted


def _ranges(grouped: list[Grouped]) -> tuple[list[int], list[int], list[int]]:
    """``(sids, first ms, last ms)`` of grouped points."""
    sids, firsts, lasts = [], [], []
    for g in grouped:
        sids.extend(g.sids.tolist())
        firsts.extend(g.ts[g.bounds[:-1]].tolist())
        lasts.extend(g.ts[g.bounds[1:] - 1].tolist())
    return sids, firsts, lasts
