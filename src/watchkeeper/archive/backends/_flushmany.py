"""A flush of many float series in one numpy pass.

:class:`~watchkeeper.archive.backends._chunks.Flush` takes a series at a time: a few
dozen Python steps each (merge with its old chunks, cut into chunks, build a row, set its
tail), ~70 µs a series, so that the closing compaction of 1,000,000 series of 3 points
took over a minute (D35, D50). Most series of a flush continue where their last chunk
ends: their new points come after it, and the only old chunk they touch is that last
chunk when it is partial (topped up: rewritten with the new points after its own). For
those the whole flush is index arithmetic over all series at once: each series' run
(old tail points, then new points) is laid out in one pair of arrays, cut into chunks
of ``chunk_points`` by its own offsets, and handed to the codec's many-chunk encoder
and the summaries in one call each. The chunks are the ones :class:`Flush` would make,
byte for byte (tests/unit/archive/test_flush_batched.py); series whose new points reach
back into their chunks still go through :class:`Flush`.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from watchkeeper.archive.backends._chunks import ChunkColumns
from watchkeeper.archive.backends._head import Grouped, spans
from watchkeeper.archive.backends._rollups import chunk_summaries
from watchkeeper.archive.backends._tails import TailArrays
from watchkeeper.archive.codec import encode_float_chunks

Int64Array = npt.NDArray[np.int64]
Float64Array = npt.NDArray[np.float64]
Mask = npt.NDArray[np.bool_]


def in_order(grouped: Grouped, tails: TailArrays) -> Mask:
    """The series whose new points all come after their last chunk (or that have none)."""
    firsts = grouped.ts[grouped.bounds[:-1]]
    continuing: Mask = (tails.n == 0) | (firsts > tails.end_ms)
    return continuing


def to_top_up(tails: TailArrays, chunk_points: int) -> Mask:
    """The series (of those in order) whose last chunk is partial: the flush rewrites it."""
    return (tails.n > 0) & (tails.n < chunk_points)


def subset(grouped: Grouped, mask: Mask) -> Grouped:
    """The series ``mask`` picks, with their points."""
    lo, hi = grouped.bounds[:-1][mask], grouped.bounds[1:][mask]
    rows = spans(lo, hi)
    bounds = np.zeros(len(lo) + 1, dtype=np.intp)
    np.cumsum(hi - lo, out=bounds[1:])
    return Grouped(grouped.sids[mask], bounds, grouped.ts[rows], grouped.values[rows])


def flush_floats(grouped: Grouped, old_counts: Int64Array, old_ts: Int64Array,
                 old_values: Float64Array, chunk_points: int) -> tuple[ChunkColumns, TailArrays]:
    """The chunks of every series of ``grouped`` (in order: see :func:`in_order`), each
    after its ``old_counts[i]`` old points (``old_ts``/``old_values``, series after series:
    its partial last chunk, being topped up); and each series' new last chunk."""
    if not len(grouped.sids):
        empty = np.zeros(0, dtype=np.int64)
        return ChunkColumns.of_rows([]), TailArrays(empty, empty, empty)
    lengths = old_counts + np.diff(grouped.bounds)
    ends = np.cumsum(lengths)
    starts = ends - lengths
    ts = np.empty(int(ends[-1]) if len(ends) else 0, dtype=np.int64)
    values = np.empty(len(ts), dtype=np.float64)
    new_rows = spans(starts + old_counts, ends)
    ts[new_rows], values[new_rows] = grouped.ts, grouped.values
    if len(old_ts):
        old_rows = spans(starts, starts + old_counts)
        ts[old_rows], values[old_rows] = old_ts, old_values
    # Chunk j of series i: rows starts[i] + j * chunk_points on, as ChunkBuilder cuts them.
    per_series = -(-lengths // chunk_points)
    owner = np.repeat(np.arange(len(lengths)), per_series)
    first_chunk = np.cumsum(per_series) - per_series
    lo = starts[owner] + (np.arange(len(owner)) - first_chunk[owner]) * chunk_points
    hi = np.minimum(lo + chunk_points, ends[owner])
    blobs = encode_float_chunks(ts, values, np.append(lo, len(ts)))
    columns = ChunkColumns(grouped.sids[owner].astype(np.int64), ts[lo], ts[hi - 1], hi - lo,
                           blobs, chunk_summaries(ts, values, lo, hi))
    last = first_chunk + per_series - 1
    return columns, TailArrays(columns.start_ms[last], columns.end_ms[last], columns.n[last])
