"""Float points of many series read at once (:meth:`Archive.read_floats`): what every
chunked backend shares.

A backend finds, in one statement, the chunks of all the keys reaching into the range
(each tagged with its key's position), and its points not yet in chunks grouped by
series. Here the chunks are decoded together (:func:`decode_floats_many`, in slices that
fit its reused work buffers), the newer points are laid over them and the runs cut to
the range: a fixed number of numpy calls however many series, where a read per series
cost a statement and a few dozen numpy calls each (PromQL's ``rate`` over 900 series
spent ~80 % of its time so).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Container, Sequence
from typing import Any, Final, NamedTuple

import numpy as np
import numpy.typing as npt

from watchkeeper.archive.abc import FloatPieces, FloatRuns
from watchkeeper.archive.backends._catalog import KIND_CODES
from watchkeeper.archive.backends._decoded import DecodedChunks
from watchkeeper.archive.backends._head import Grouped, grouped, spans
from watchkeeper.archive.backends._points import overlay
from watchkeeper.archive.chunkscan import decode_floats_many
from watchkeeper.errors import ArchiveError
from watchkeeper.model import SeriesKey

Ids = npt.NDArray[np.int32]
Int64Array = npt.NDArray[np.int64]
Float64Array = npt.NDArray[np.float64]

_NO_END: Final = np.iinfo(np.int64).max

DECODE_POINTS: Final = 32_768
"""Points per decoder call: its work arrays (a few per point) then stay in the buffers it
reuses; one call over millions of points ran 5-10x slower per point (fresh memory)."""


class Runs(NamedTuple):
    """Points of each position of a read: position ``p`` owns rows ``bounds[p]:bounds[p+1]``."""

    ts: Int64Array
    values: Float64Array
    bounds: Int64Array

    def run(self, p: int) -> tuple[Int64Array, Float64Array]:
        lo, hi = int(self.bounds[p]), int(self.bounds[p + 1])
        return self.ts[lo:hi], self.values[lo:hi]


def no_runs(positions: int) -> Runs:
    return Runs(np.empty(0, np.int64), np.empty(0), np.zeros(positions + 1, dtype=np.int64))


def decode_runs(positions: int, owners: Sequence[int], counts: Sequence[int],
                blobs: Sequence[bytes]) -> Runs:
    """Float chunks as runs: chunk ``j`` (``counts[j]`` points) belongs to position
    ``owners[j]``; chunks come by position, then time."""
    if not blobs:
        return no_runs(positions)
    ts_parts, value_parts = [], []
    start = points = 0
    for j, n in enumerate(counts):
        points += n
        if points >= DECODE_POINTS or j == len(counts) - 1:
            ts, values = decode_floats_many(blobs[start:j + 1])
            ts_parts.append(ts)
            value_parts.append(values)
            start, points = j + 1, 0
    ts = np.concatenate(ts_parts) if len(ts_parts) > 1 else ts_parts[0]
    values = np.concatenate(value_parts) if len(value_parts) > 1 else value_parts[0]
    per_position = np.bincount(np.asarray(owners, dtype=np.intp),
                               weights=np.asarray(counts, dtype=np.float64),
                               minlength=positions).astype(np.int64)
    bounds = np.zeros(positions + 1, dtype=np.int64)
    np.cumsum(per_position, out=bounds[1:])
    if int(bounds[-1]) != len(ts):
        raise ArchiveError(f"corrupt chunks: {len(ts)} points decoded, {int(bounds[-1])} "
                           "counted")
    return Runs(ts, values, bounds)


def grouped_runs(sids: Ids, grouped: Grouped) -> Runs:
    """The runs of series ``sids`` (one per position, -1 for none) in ``grouped``."""
    n = len(grouped.sids)
    if not n:
        return no_runs(len(sids))
    at = np.minimum(np.searchsorted(grouped.sids, sids), n - 1)
    has = grouped.sids[at] == sids
    lo = np.where(has, grouped.bounds[at], 0)
    hi = np.where(has, grouped.bounds[at + 1], 0)
    rows = spans(lo, hi)
    bounds = np.zeros(len(sids) + 1, dtype=np.int64)
    np.cumsum(hi - lo, out=bounds[1:])
    return Runs(grouped.ts[rows], np.asarray(grouped.values[rows], dtype=np.float64), bounds)


def _clipped(runs: Runs, lo_ms: int, hi_ms: int) -> Runs:
    inside = (runs.ts >= lo_ms) & (runs.ts <= hi_ms)
    if bool(inside.all()):
        return runs
    kept = np.zeros(len(inside) + 1, dtype=np.int64)
    np.cumsum(inside, out=kept[1:])
    return Runs(runs.ts[inside], runs.values[inside], kept[runs.bounds])


def float_sids(ids: Callable[[SeriesKey], int | None], kinds: npt.NDArray[np.int8],
               keys: Sequence[SeriesKey]) -> Ids:
    """Each key's series id in a catalog (its ``ids.get`` and ``kinds``), -1 where the key
    names no float series."""
    sids = np.array([-1 if (sid := ids(key)) is None else sid for key in keys], dtype=np.int32)
    known = np.flatnonzero(sids >= 0)
    sids[known[kinds[sids[known]] != KIND_CODES["float"]]] = -1
    return sids


def newer_points(columns: Sequence[tuple[Ids, Int64Array, npt.NDArray[Any]]],
                 wanted: Ids) -> Grouped:
    """The points of series ``wanted`` in float columns of log rows (in log order),
    grouped: sorted by time, the latest write per timestamp."""
    if not columns:
        return grouped(np.empty(0, np.int32), np.empty(0, np.int64), np.empty(0))
    sids = np.concatenate([c[0] for c in columns])
    keep = np.isin(sids, wanted)
    return grouped(sids[keep], np.concatenate([c[1] for c in columns])[keep],
                   np.concatenate([c[2] for c in columns])[keep].astype(np.float64))


Piece = tuple[int, Int64Array, Float64Array]
"""Points of one position of a read, in time order: a chunk, or a run of several."""


def cached_pieces(sids: Ids, chunks: Sequence[tuple[int, int, int, bytes]],
                  cache: DecodedChunks,
                  fetch: Callable[[list[tuple[int, int]]], list[bytes]],
                  into_runs: Container[int] = ()) -> list[Piece]:
    """The chunks ``(position, start, n, -)`` of series ``sids``, decoded: those kept
    in ``cache`` from there, the others from their blobs (``fetch`` by ``(series id,
    start)``), decoded together and then kept, but for the positions ``into_runs`` (the
    caller keeps those as runs: a copy per chunk would only be dropped again)."""
    of = sids.tolist()
    keys = [(of[row[0]], row[1]) for row in chunks]
    found = [cache.get(key) for key in keys]
    missing = [j for j, got in enumerate(found) if got is None]
    if missing:
        runs = decode_runs(len(missing), range(len(missing)), [chunks[j][2] for j in missing],
                           fetch([keys[j] for j in missing]))
        for i, j in enumerate(missing):
            ts, values = runs.run(i)
            if chunks[j][0] not in into_runs:
                cache.put(keys[j], ts, values)
            found[j] = (ts, values)
    return [(row[0], *got) for row, got in zip(chunks, found, strict=True) if got is not None]


ChunksOf = Callable[[list[int], int, int], Sequence[tuple[int, int, int, bytes]]]
"""A store's ``chunks_of`` without blobs: ``(position, start, n, b"")`` by position, time."""


def kept_pieces(sids: Ids, lo_ms: int, hi_ms: int, *, cache: DecodedChunks,
                newest: Int64Array, chunks_of: ChunksOf,
                fetch: Callable[[list[tuple[int, int]]], list[bytes]]) -> list[Piece]:
    """The chunk points of series ``sids`` (-1: none) from ``lo_ms`` (up to ``hi_ms`` at
    least), by position then time: from the runs ``cache`` keeps where it has one from
    ``lo_ms`` or earlier, the others from their chunks (:func:`cached_pieces`).

    A series read up to or near its newest point (``newest[sid]`` within the read's span
    of ``hi_ms``: a dashboard's steps end a little before it) has every chunk from
    ``lo_ms`` on read and kept as a run, one piece; the next such read needs no chunk
    list. The caller cuts pieces to the range."""
    of = sids.tolist()
    runs = cache.runs(of, lo_ms)  # -1 has none
    span = max(hi_ms - lo_ms, 0)
    todo = [p for p, (sid, run) in enumerate(zip(of, runs, strict=True))
            if sid >= 0 and run is None]
    whole = {p for p in todo if newest[of[p]] - hi_ms <= span}
    rows: list[tuple[int, int, int, bytes]] = []
    for group, until in (([p for p in todo if p in whole], _NO_END),
                         ([p for p in todo if p not in whole], hi_ms)):
        if group:
            rows.extend((group[at], start, n, blob) for at, start, n, blob in
                        chunks_of([of[p] for p in group], lo_ms, until))
    rows.sort(key=lambda row: (row[0], row[1]))
    fresh = cached_pieces(sids, rows, cache, fetch, whole)  # a piece per row, in its order
    pieces: list[Piece] = []
    j = 0
    for p, run in enumerate(runs):
        if run is not None:
            pieces.append((p, *run))
            continue
        first = j
        while j < len(fresh) and fresh[j][0] == p:
            j += 1
        if p not in whole:
            pieces.extend(fresh[first:j])
            continue
        mine = fresh[first:j]
        ts = np.concatenate([piece[1] for piece in mine]) if mine else np.empty(0, np.int64)
        values = np.concatenate([piece[2] for piece in mine]) if mine else np.empty(0)
        cache.keep_run(of[p], lo_ms, ts, values, [(of[p], row[1]) for row in rows[first:j]])
        if len(ts):
            pieces.append((p, ts, values))
    return pieces


def decoded_pieces(positions: int, chunks: Sequence[tuple[int, int, int, bytes]]
                   ) -> list[Piece]:
    """The chunk rows ``(position, start, n, blob)`` decoded together, a piece per position."""
    runs = decode_runs(positions, [row[0] for row in chunks], [row[2] for row in chunks],
                       [row[3] for row in chunks])
    bounds = runs.bounds.tolist()
    return [(p, runs.ts[lo:hi], runs.values[lo:hi])
            for p, (lo, hi) in enumerate(itertools.pairwise(bounds)) if hi > lo]


def assemble(sids: Ids, pieces: Sequence[Piece], newer: Grouped, lo_ms: int, hi_ms: int
             ) -> FloatRuns:
    """The answer of a read of series ``sids`` (-1: not found): the ``pieces`` of their
    chunks (by position, then time) cut to ``[lo_ms, hi_ms]``, the ``newer`` points
    over them, all copied once into the answer's arrays."""
    parts = _parts(sids, pieces, newer, lo_ms, hi_ms)
    bounds = np.zeros(len(sids) + 1, dtype=np.int64)
    np.cumsum(parts.counts, out=bounds[1:])
    if not parts.ts:
        return FloatRuns(np.empty(0, np.int64), np.empty(0), bounds, sids >= 0)
    return FloatRuns(np.concatenate(parts.ts), np.concatenate(parts.values).astype(
        np.float64, copy=False), bounds, sids >= 0)


def assemble_pieces(sids: Ids, pieces: Sequence[Piece], newer: Grouped, lo_ms: int,
                    hi_ms: int) -> FloatPieces:
    """As :func:`assemble`, each position's points in arrays of its own: a kept run cut
    to the range is a view of it (no copy), several parts are joined."""
    parts = _parts(sids, pieces, newer, lo_ms, hi_ms)
    no_ts, no_values = np.empty(0, np.int64), np.empty(0)
    ts_out: list[Int64Array] = []
    values_out: list[Float64Array] = []
    j = 0
    for n in parts.taken:
        if n == 1:
            ts_out.append(parts.ts[j])
            values_out.append(parts.values[j].astype(np.float64, copy=False))
        elif n == 0:
            ts_out.append(no_ts)
            values_out.append(no_values)
        else:
            ts_out.append(np.concatenate(parts.ts[j:j + n]))
            values_out.append(np.concatenate(parts.values[j:j + n]).astype(np.float64,
                                                                           copy=False))
        j += n
    return FloatPieces(ts_out, values_out, sids >= 0)


class _Parts:
    """The arrays of each position's points (views where they can be), in position
    order, with each position's count of points and of arrays."""

    def __init__(self, positions: int) -> None:
        self.ts: list[Int64Array] = []
        self.values: list[Float64Array] = []
        self.counts = [0] * positions
        self.taken = [0] * positions

    def add(self, p: int, ts: Int64Array, values: Float64Array) -> None:
        self.ts.append(ts)
        self.values.append(values)
        self.counts[p] += len(ts)
        self.taken[p] += 1


def _parts(sids: Ids, pieces: Sequence[Piece], newer: Grouped, lo_ms: int, hi_ms: int
           ) -> _Parts:
    head = _clipped(grouped_runs(sids, newer), lo_ms, hi_ms)
    edges = np.array([lo_ms, min(hi_ms, _NO_END - 1) + 1], dtype=np.int64)
    parts = _Parts(len(sids))
    owners = [piece[0] for piece in pieces]
    if not len(head.ts) and all(a < b for a, b in itertools.pairwise(owners)):
        # each position one piece at most and no newer points (as a rule: a dashboard's
        # series, kept as runs): one search for both ends each, and nothing else
        for p, ts, values in pieces:
            for run in _within(ts, values, edges):
                parts.add(p, *run)
        return parts
    head_bounds = head.bounds.tolist()
    owners.append(len(sids))
    j = 0
    for p in range(len(sids)):
        mine: list[tuple[Int64Array, Float64Array]] = []
        if owners[j] == p:
            if owners[j + 1] != p:  # a run, or one chunk: one search for both ends
                _, ts, values = pieces[j]
                j += 1
                mine = _within(ts, values, edges)
            else:
                first = j
                while owners[j] == p:
                    j += 1
                mine = _cut([(ts, values) for _, ts, values in pieces[first:j]], lo_ms, hi_ms)
        h_lo, h_hi = head_bounds[p], head_bounds[p + 1]
        if h_hi > h_lo:
            mine = _with_newer(mine, head.ts[h_lo:h_hi], head.values[h_lo:h_hi])
        for ts, values in mine:
            parts.add(p, ts, values)
    return parts


def _within(ts: Int64Array, values: Float64Array, edges: Int64Array
            ) -> list[tuple[Int64Array, Float64Array]]:
    """One piece's points from ``edges[0]`` up to ``edges[1]`` (views; none: empty)."""
    at, to = ts.searchsorted(edges).tolist()
    return [(ts[at:to], values[at:to])] if to > at else []


def _with_newer(pieces: list[tuple[Int64Array, Float64Array]], ts: Int64Array,
                values: Float64Array) -> list[tuple[Int64Array, Float64Array]]:
    """A series' chunk pieces (in time order) and its newer points after or over them."""
    if pieces and ts[0] <= pieces[-1][0][-1]:  # rewritten or late points
        return [overlay(np.concatenate([t for t, _ in pieces]),
                        np.concatenate([v for _, v in pieces]), ts, values)]
    return [*pieces, (ts, values)]


def _cut(pieces: list[tuple[Int64Array, Float64Array]], lo_ms: int, hi_ms: int
         ) -> list[tuple[Int64Array, Float64Array]]:
    """Pieces in time order cut to ``[lo_ms, hi_ms]`` (only the first and last can reach
    out: the chunks were chosen for the range), none left empty."""
    ts, values = pieces[0]
    if ts[0] < lo_ms:
        at = int(ts.searchsorted(lo_ms, "left"))
        pieces[0] = (ts[at:], values[at:])
    ts, values = pieces[-1]
    if len(ts) and ts[-1] > hi_ms:
        at = int(ts.searchsorted(hi_ms, "right"))
        pieces[-1] = (ts[:at], values[:at])
    return [piece for piece in pieces if len(piece[0])]
