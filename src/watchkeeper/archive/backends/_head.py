"""The head: points that are durable in the ingest log but not yet in chunks.

Every write appends one *segment*, its points sorted by series id with write order kept
within a series (a stable sort). Segments merge size-tiered: a write's segment has level
0, and whenever the newest ``FANOUT`` segments have the same level they merge into one of
the next level. A head of N points written b at a time then holds at most
``(FANOUT - 1) * log_FANOUT(N / b)`` segments: reading a series costs that many binary
searches, and each point is copied ``log_FANOUT(N / b)`` times before its flush (a
binary counter, fanout 2, copied each point ~3 times as often for ~1/3 the searches:
10,000-point writes took 2.2 ms to append instead of 0.8, D22).

The same class holds float points (``values`` float64) and histogram points (``values``
an object array of dicts). A point written later replaces an earlier one with the same
series and timestamp.
"""

from __future__ import annotations

from typing import Any, Final, NamedTuple

import numpy as np
import numpy.typing as npt

Ids = npt.NDArray[np.int32]
Int64Array = npt.NDArray[np.int64]
Values = npt.NDArray[Any]

NO_SEQ: Final = np.iinfo(np.int64).max
FANOUT: Final = 8


class _Segment(NamedTuple):
    sids: Ids
    ts: Int64Array
    values: Values

    def select(self, mask: npt.NDArray[np.bool_]) -> _Segment:
        return _Segment(self.sids[mask], self.ts[mask], self.values[mask])


class Grouped(NamedTuple):
    """Points of several series: series ``sids[i]`` owns rows ``bounds[i]:bounds[i + 1]``.

    Within a series the rows are sorted by time, one per timestamp.
    """

    sids: Ids
    bounds: npt.NDArray[np.intp]
    ts: Int64Array
    values: Values

    def series(self, i: int) -> tuple[int, Int64Array, Values]:
        lo, hi = int(self.bounds[i]), int(self.bounds[i + 1])
        return int(self.sids[i]), self.ts[lo:hi], self.values[lo:hi]


class Head:
    """Unflushed points of many series, with per-series counts and oldest log sequence."""

    def __init__(self, dtype: npt.DTypeLike) -> None:
        self._dtype = np.dtype(dtype)
        self._segments: list[_Segment] = []
        self._levels: list[int] = []  # one per segment, non-increasing
        self.size = 0
        self.counts = np.zeros(0, dtype=np.int64)  # points appended per series
        self.oldest_seq = np.zeros(0, dtype=np.int64)  # first log row holding each series

    def __len__(self) -> int:
        return self.size

    def append(self, seq: int, sids: Ids, ts: Int64Array, values: Values) -> Ids:
        """Add the points of log row ``seq``; returns the series they touched."""
        if not len(sids):
            return np.empty(0, dtype=np.int32)
        if bool((sids[1:] >= sids[:-1]).all()):  # as a collector's series usually come
            segment = _Segment(sids, ts, values)
        else:
            order = np.argsort(sids, kind="stable")
            segment = _Segment(sids[order], ts[order], values[order])
        touched, counts = _runs(segment.sids)
        self._grow(int(touched[-1]) + 1)
        self.oldest_seq[touched] = np.minimum(self.oldest_seq[touched], seq)
        self.counts[touched] += counts
        self.size += len(sids)
        self._segments.append(segment)
        self._levels.append(0)
        while len(self._levels) >= FANOUT and self._levels[-FANOUT] == self._levels[-1]:
            level = self._levels[-1] + 1  # levels never increase, so all FANOUT are equal
            merged = _merge(self._segments[-FANOUT:])
            del self._segments[-FANOUT:], self._levels[-FANOUT:]
            self._segments.append(merged)
            self._levels.append(level)
        return touched

    def points(self, sid: int) -> tuple[Int64Array, Values]:
        """One series' points, sorted by time, the latest write per timestamp."""
        ts_parts, value_parts = [], []
        for segment in self._segments:
            lo, hi = rows_of(segment.sids, sid)
            if hi > lo:
                ts_parts.append(segment.ts[lo:hi])
                value_parts.append(segment.values[lo:hi])
        if not ts_parts:
            return np.empty(0, dtype=np.int64), np.empty(0, dtype=self._dtype)
        return latest(np.concatenate(ts_parts), np.concatenate(value_parts))

    def take(self, sids: Ids | None = None) -> Grouped:
        """The points of ``sids`` (all series when None), grouped; the head is unchanged."""
        if sids is not None:
            return self.gather(np.unique(sids))
        return _group(_merge(self._segments) if self._segments else self._empty())

    def gather(self, sids: Ids) -> Grouped:
        """The points of ``sids`` (ascending, distinct) as :meth:`take` groups them, found by
        two binary searches per segment rather than a pass over every point: a query reads
        a few series of a head that may hold millions of points, a compaction's slice a
        part of its ids (a mask over every point, slice after slice, cost more, D52)."""
        parts = []
        for segment in self._segments:
            lo = segment.sids.searchsorted(sids, "left")
            hi = segment.sids.searchsorted(sids, "right")
            rows = spans(lo, hi)
            if len(rows):
                parts.append(_Segment(segment.sids[rows], segment.ts[rows], segment.values[rows]))
        return _group(_merge(parts) if parts else self._empty())

    def drop(self, sids: Ids | None = None) -> None:
        """Forget the points of ``sids`` (all series when None), once they are in chunks."""
        if sids is None:
            self._segments, self._levels = [], []
            self.counts[:] = 0
            self.oldest_seq[:] = NO_SEQ
            self.size = 0
            return
        unwanted = self._mask(sids)
        kept = [(_without(segment, sids, unwanted), level)
                for segment, level in zip(self._segments, self._levels, strict=True)]
        self._segments = [segment for segment, _ in kept if _len(segment)]
        self._levels = [level for segment, level in kept if _len(segment)]
        self.counts[unwanted] = 0
        self.oldest_seq[unwanted] = NO_SEQ
        self.size = sum(_len(segment) for segment in self._segments)

    def min_seq(self, excluding: Ids | None = None) -> int:
        """The oldest log row holding a point of a series other than ``excluding`` (or NO_SEQ)."""
        remaining = self.oldest_seq
        if excluding is not None:
            remaining = np.where(self._mask(excluding), NO_SEQ, remaining)
        return int(remaining.min(initial=NO_SEQ))

    def _mask(self, sids: Ids) -> npt.NDArray[np.bool_]:
        mask = np.zeros(len(self.counts), dtype=np.bool_)
        mask[sids[sids < len(mask)]] = True
        return mask

    def _empty(self) -> _Segment:
        return _Segment(np.empty(0, np.int32), np.empty(0, np.int64), np.empty(0, self._dtype))

    def _grow(self, size: int) -> None:
        if size > len(self.counts):
            capacity = max(size, 2 * len(self.counts), 64)
            counts = np.zeros(capacity, dtype=np.int64)
            counts[: len(self.counts)] = self.counts
            oldest = np.full(capacity, NO_SEQ, dtype=np.int64)
            oldest[: len(self.oldest_seq)] = self.oldest_seq
            self.counts, self.oldest_seq = counts, oldest


def rows_of(sorted_sids: Ids, sid: int) -> tuple[int, int]:
    """The rows of ``sid`` in an ascending id array: ``lo:hi``."""
    # The keys in the array's own dtype: int64 keys would make numpy convert the whole
    # int32 array first, ~300 µs per search on a 10^6-point head instead of ~2.
    lo, hi = sorted_sids.searchsorted(np.array((sid, sid + 1), dtype=sorted_sids.dtype))
    return int(lo), int(hi)


def spans(lo: npt.NDArray[np.intp], hi: npt.NDArray[np.intp]) -> npt.NDArray[np.intp]:
    """The rows ``lo[i]:hi[i]`` of every ``i``, one after another, as one index array."""
    counts = hi - lo
    total = int(counts.sum())
    if not total:
        return np.empty(0, dtype=np.intp)
    ends = np.cumsum(counts)
    return np.repeat(lo - (ends - counts), counts) + np.arange(total, dtype=np.intp)


def grouped(sids: Ids, ts: Int64Array, values: Values) -> Grouped:
    """Points in write order grouped by series: sorted by time, the last write of each
    timestamp kept (as the head keeps them)."""
    order = np.argsort(sids, kind="stable")
    return _group(_Segment(sids[order], ts[order], values[order]))


def latest(ts: Int64Array, values: Values) -> tuple[Int64Array, Values]:
    """Sort points by time keeping, for equal timestamps, the one that comes last."""
    if len(ts) < 2 or bool((ts[1:] > ts[:-1]).all()):
        return ts, values
    order = np.argsort(ts, kind="stable")
    ts, values = ts[order], values[order]
    keep = np.append(ts[1:] != ts[:-1], True)
    return ts[keep], values[keep]


def _without(segment: _Segment, sids: Ids, unwanted: npt.NDArray[np.bool_]) -> _Segment:
    """``segment`` without the rows of the ``unwanted`` series (``sids``). When those are
    its first or last rows, as a compaction's slices of ascending ids take them, the rest
    is a view: a copy of the rest of every segment, at each slice, doubled the memory of
    a head of 3 million points at the closing compaction (D52)."""
    if not len(sids) or not len(segment.sids):
        return segment
    key = segment.sids.dtype.type  # keys in the array's dtype: no conversion of it (rows_of)
    lo = int(segment.sids.searchsorted(key(sids.min()), side="left"))
    hi = int(segment.sids.searchsorted(key(sids.max()), side="right"))
    if lo == hi:  # none of them here
        return segment
    if (lo == 0 or hi == len(segment.sids)) and bool(unwanted[segment.sids[lo:hi]].all()):
        rest = slice(hi, None) if lo == 0 else slice(0, lo)
        return _Segment(segment.sids[rest], segment.ts[rest], segment.values[rest])
    return segment.select(~unwanted[segment.sids])


def _len(segment: _Segment) -> int:
    return len(segment.sids)


def _merge(parts: list[_Segment]) -> _Segment:
    """One sid-sorted segment from several, older first; write order kept within a sid."""
    if len(parts) == 1:
        return parts[0]
    sids = np.concatenate([part.sids for part in parts])
    # A stable sort (timsort) finds the sorted runs, so this is a linear merge.
    order = np.argsort(sids, kind="stable")
    return _Segment(
        sids[order],
        np.concatenate([part.ts for part in parts])[order],
        np.concatenate([part.values for part in parts])[order],
    )


def _group(segment: _Segment) -> Grouped:
    sids, ts, values = segment
    new_series = sids[1:] != sids[:-1]
    if not bool((new_series | (ts[1:] > ts[:-1])).all()):
        order = np.lexsort((ts, sids))  # stable: equal (sid, ts) keep write order
        sids, ts, values = sids[order], ts[order], values[order]
        keep = np.append((sids[1:] != sids[:-1]) | (ts[1:] != ts[:-1]), True)
        sids, ts, values = sids[keep], ts[keep], values[keep]
    unique, counts = _runs(sids)
    bounds = np.zeros(len(unique) + 1, dtype=np.intp)
    np.cumsum(counts, out=bounds[1:])
    return Grouped(unique, bounds, ts, values)


def _runs(sorted_sids: Ids) -> tuple[Ids, Int64Array]:
    """The distinct ids of a sorted array and how many times each occurs."""
    if not len(sorted_sids):
        return np.empty(0, dtype=np.int32), np.empty(0, dtype=np.int64)
    starts = np.flatnonzero(np.append(True, sorted_sids[1:] != sorted_sids[:-1]))
    counts = np.diff(starts, append=len(sorted_sids))
    return sorted_sids[starts], counts
