"""Stored rollups: a summary per float chunk, and rollup queries answered from them.

Every float chunk gets, beside it, the :class:`~watchkeeper.archive.rollup.Summary` of
its points in ``SUMMARY_STEP`` (one hour) buckets, written and deleted with the chunk
in the same transaction, so it can never disagree with the points. Chunks of a series
are disjoint, so the summaries of its chunks merge into the summary of the series; a
rollup query with a step that is a multiple of an hour reads the summaries instead of
decoding the points. Only what summaries cannot give comes from points: the partial
hours at the edges of a range that is not hour-aligned, chunks stored without a summary
(sparse ones, where the summary would outweigh the points, and chunks written before
summaries existed), and the points not yet in chunks (the writer's head, a reader's
view of the ingest log). A series whose unflushed points may replace points already in
chunks (they reach back into the chunks' time) is rolled up from its points instead.

Summary blob: one 40-byte record per bucket holding points, ascending: ``start_ms:i8 |
n:i8 | sum:f8 | min:f8 | max:f8``, little-endian, so the summaries of many chunks are
read as one numpy array; an empty blob means "no summary, read the chunk".
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final, NamedTuple

import numpy as np
import numpy.typing as npt

from watchkeeper.archive.abc import Rollup
from watchkeeper.archive.codec import decode_floats_ms
from watchkeeper.archive.rollup import (
    SUMMARY_AGGS,
    Summary,
    aggregate,
    empty_summary,
    merge_groups,
    summarize_groups,
)
from watchkeeper.model import SeriesKey

SUMMARY_STEP_MS: Final = 3_600_000
MIN_POINTS_PER_BUCKET: Final = 8  # sparser chunks get no summary: it would outweigh them
RECORD: Final = np.dtype([("start_ms", "<i8"), ("n", "<i8"), ("sum", "<f8"), ("min", "<f8"),
                          ("max", "<f8")])

Int64Array = npt.NDArray[np.int64]
Float64Array = npt.NDArray[np.float64]


def chunk_summaries(ts: Int64Array, values: Float64Array, lo: npt.NDArray[np.integer[Any]],
                    hi: npt.NDArray[np.integer[Any]]) -> list[bytes]:
    """The summary blob of each chunk ``ts[lo[i]:hi[i]]`` (ascending), computed in one
    pass."""
    if not len(lo):
        return []
    lengths = (hi - lo).astype(np.int64)
    ends = np.cumsum(lengths)
    rows = np.repeat(lo - (ends - lengths), lengths) + np.arange(int(ends[-1]))
    groups = np.repeat(np.arange(len(lo)), lengths)
    owner, s = summarize_groups(groups, ts[rows], values[rows], SUMMARY_STEP_MS)
    records = np.empty(len(owner), dtype=RECORD)
    for name in RECORD.names or ():
        records[name] = getattr(s, name)
    per_chunk = np.bincount(owner, minlength=len(lo))
    bounds = np.concatenate(([0], np.cumsum(per_chunk))) * RECORD.itemsize
    raw = records.tobytes()
    stored = (per_chunk * MIN_POINTS_PER_BUCKET <= lengths).tolist()
    return [raw[a:b] if keep else b""
            for keep, a, b in zip(stored, bounds[:-1].tolist(), bounds[1:].tolist(), strict=True)]


def decode_summaries(blobs: Sequence[bytes]) -> tuple[Int64Array, Summary]:
    """The buckets of many summary blobs, and which blob each came from."""
    counts = np.fromiter(map(len, blobs), dtype=np.int64, count=len(blobs)) // RECORD.itemsize
    records = np.frombuffer(b"".join(blobs), dtype=RECORD)
    owner = np.repeat(np.arange(len(blobs)), counts)

    def column(name: str, dtype: str) -> Any:
        return records[name].astype(dtype)  # native byte order, contiguous

    return owner, Summary(column("start_ms", "=i8"), column("n", "=i8"), column("sum", "=f8"),
                          column("min", "=f8"), column("max", "=f8"))


class SummaryRow(NamedTuple):
    sid: int
    start_ms: int
    end_ms: int
    n: int
    blob: bytes


SummaryTuple = tuple[int, int, int, int, bytes]
"""A :class:`SummaryRow` as a database row gives it: a plain tuple of the same fields
(a rollup reads ~18 rows per series and day; a named tuple each cost ~25 % of the fetch)."""


@dataclass
class RollupPlan:
    """One rollup query over stored summaries: what to fetch, and how to finish."""

    keys: Sequence[SeriesKey]
    sids: Sequence[int]
    lo: int  # the query range in ms, inclusive
    hi: int
    step_ms: int
    aggs: Sequence[str]

    @staticmethod
    def applies(step_ms: int, aggs: Sequence[str]) -> bool:
        """Whether summaries can answer: hour multiples, aggregations summaries hold."""
        return step_ms % SUMMARY_STEP_MS == 0 and all(a in SUMMARY_AGGS for a in aggs)

    @property
    def full(self) -> tuple[int, int]:
        """The whole hours inside the range: ``[full_lo, full_hi)``."""
        full_lo = -(-self.lo // SUMMARY_STEP_MS) * SUMMARY_STEP_MS
        full_hi = (self.hi + 1) // SUMMARY_STEP_MS * SUMMARY_STEP_MS
        return full_lo, max(full_lo, full_hi)

    def needs_chunk(self, row: SummaryRow) -> bool:
        """Whether :meth:`run` reads the chunk of ``row``: it has no summary, or it
        reaches into a partial hour at an edge of the range (a backend may fetch
        exactly these chunks with the summaries; see :attr:`full`)."""
        full_lo, full_hi = self.full
        return not (row.blob and full_lo <= row.start_ms and row.end_ms < full_hi)

    def run(
        self,
        rows: Sequence[SummaryTuple],
        chunk_blob: Callable[[int, int], bytes],
        pending: Callable[[int], tuple[Int64Array, Float64Array]],
        chunks_end: Callable[[int], int | None],
    ) -> list[Rollup | None]:
        """Per key, its rollup; None where its pending points reach back into its chunks
        (the caller rolls it up from its points).

        ``rows``: the summary rows of the chunks reaching into the range;
        ``chunk_blob(sid, start_ms)`` fetches a chunk; ``pending(sid)`` gives the series'
        points not yet in chunks, sorted; ``chunks_end(sid)`` the time of the last point
        in its chunks (None without chunks).
        """
        full_lo, full_hi = self.full
        position: dict[int, int] = {}  # a series asked for twice is rolled up once
        for i, sid in enumerate(self.sids):
            position.setdefault(sid, i)
        if len(position) < len(self.sids):  # and its rows may have been fetched twice
            rows = list({(row[0], row[1]): row for row in rows}.values())
        # Columns of the rows, built in C: thousands of rows per rollup.
        sids, starts, ends, _, blobs = zip(*rows, strict=True) if rows else ((), (), (), (), ())
        count = len(rows)
        row_group = np.fromiter(map(position.__getitem__, sids), dtype=np.int64, count=count)
        owner, stored = decode_summaries(blobs)
        inside = (stored.start_ms >= full_lo) & (stored.start_ms < full_hi)
        parts = [(row_group[owner][inside], stored.select(inside))]
        summarised = np.fromiter(map(len, blobs), dtype=np.int64, count=count) > 0
        whole = (summarised & (np.fromiter(starts, dtype=np.int64, count=count) >= full_lo)
                 & (np.fromiter(ends, dtype=np.int64, count=count) < full_hi))
        raw: list[tuple[int, Int64Array, Float64Array]] = []
        for i in np.flatnonzero(~whole).tolist():  # usually none: see needs_chunk
            ts, values = decode_floats_ms(chunk_blob(sids[i], starts[i]))
            keep = (ts >= self.lo) & (ts <= self.hi)
            if summarised[i]:  # the summary gave the whole hours already
                keep &= (ts < full_lo) | (ts >= full_hi)
            raw.append((int(row_group[i]), ts[keep], values[keep]))
        fallback = set()
        for g, sid in enumerate(self.sids):
            if position[sid] != g:
                continue
            ts, values = pending(sid)
            if not len(ts):
                continue
            end = chunks_end(sid)
            if end is not None and ts[0] <= end:
                fallback.add(g)
                continue
            keep = (ts >= self.lo) & (ts <= self.hi)
            raw.append((g, ts[keep], values[keep]))
        raw = [part for part in raw if len(part[1])]
        if raw:
            groups = np.concatenate([np.full(len(ts), g, np.int64) for g, ts, _ in raw])
            ts = np.concatenate([ts for _, ts, _ in raw])
            values = np.concatenate([v for _, _, v in raw])
            same = groups[1:] == groups[:-1]
            if not bool(((groups[1:] > groups[:-1]) | (same & (ts[1:] > ts[:-1]))).all()):
                # Raw parts of a series are disjoint, but may come in any order.
                order = np.lexsort((ts, groups))
                groups, ts, values = groups[order], ts[order], values[order]
            parts.append(summarize_groups(groups, ts, values, SUMMARY_STEP_MS))
        return self._finish(parts, fallback, position)

    def _finish(self, parts: list[tuple[Int64Array, Summary]], fallback: set[int],
                position: dict[int, int]) -> list[Rollup | None]:
        if parts:
            groups = np.concatenate([g for g, _ in parts])
            joined = Summary(*(np.concatenate([getattr(s, f) for _, s in parts])
                               for f in Summary._fields))
            groups, merged = merge_groups(groups, joined, self.step_ms)
        else:
            groups, merged = np.empty(0, np.int64), empty_summary()
        bounds = np.searchsorted(groups, np.arange(len(self.keys) + 1)).tolist()
        # Aggregated once for all series, then sliced: a rollup often spans thousands.
        ts = merged.start_ms / 1000.0
        columns = {agg: aggregate(merged, agg) for agg in self.aggs}
        out: list[Rollup | None] = []
        for g, (key, sid) in enumerate(zip(self.keys, self.sids, strict=True)):
            if position[sid] != g:
                out.append(out[position[sid]])
                continue
            if g in fallback:
                out.append(None)
                continue
            lo, hi = bounds[g], bounds[g + 1]
            out.append(Rollup(key=key, ts=ts[lo:hi],
                              values={agg: column[lo:hi] for agg, column in columns.items()}))
        return out


def no_pending(sid: int) -> tuple[Int64Array, Float64Array]:
    return np.empty(0, np.int64), np.empty(0, np.float64)


