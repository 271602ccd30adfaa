"""The last chunk of every series (its *tail*), as the embedded writer remembers it.

A flush tops up a series' partial last chunk, so it must know where that chunk starts,
ends and how many points it holds. The writer keeps this in arrays indexed by series id
(a million series took ~200 MB as a dict of tuples), looks up the series it does not
know yet (after a start, every series) in one statement, and sets the tails of many
series at once after a flush.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Final, NamedTuple

import numpy as np
import numpy.typing as npt

from watchkeeper.archive.backends._chunks import Tail

Int64Array = npt.NDArray[np.int64]
AnyIds = npt.NDArray[np.signedinteger[Any]]

LastChunks = Callable[[Sequence[int]], dict[int, Tail]]
"""Looks up the last chunk of each series given (those without a chunk are left out)."""


class TailArrays(NamedTuple):
    """The tails of several series, one slot each: ``n`` 0 for a series without chunks."""

    start_ms: Int64Array
    end_ms: Int64Array
    n: Int64Array

    def select(self, mask: npt.NDArray[np.bool_]) -> TailArrays:
        return TailArrays(self.start_ms[mask], self.end_ms[mask], self.n[mask])

    def tail(self, i: int) -> Tail | None:
        """Slot ``i`` as a :class:`Tail` (None: no chunk)."""
        n = int(self.n[i])
        return Tail(int(self.start_ms[i]), int(self.end_ms[i]), n) if n else None


UNKNOWN: Final = Tail(0, 0, -1)


class Tails:
    """Each series' tail in arrays indexed by id: known, known to be none, or unknown."""

    def __init__(self) -> None:
        self._start = np.zeros(0, dtype=np.int64)
        self._end = np.zeros(0, dtype=np.int64)
        self._n = np.zeros(0, dtype=np.int32)  # -1: not looked up yet, 0: no chunk

    def get(self, sid: int) -> Tail | None:
        """The series' tail, None when it has no chunk, ``UNKNOWN`` when not looked up."""
        if sid >= len(self._n) or self._n[sid] < 0:
            return UNKNOWN
        n = int(self._n[sid])
        return Tail(int(self._start[sid]), int(self._end[sid]), n) if n else None

    def set(self, sid: int, tail: Tail | None) -> None:
        self._grow(sid + 1)
        self._start[sid], self._end[sid], self._n[sid] = tail or (0, 0, 0)

    def of(self, sids: AnyIds, last_chunks: LastChunks) -> TailArrays:
        """The tails of ``sids``, those not known yet looked up with ``last_chunks`` (once,
        for all of them: a statement per series cost ~20 µs, at start-up for every one)."""
        if len(sids):
            self._grow(int(sids.max()) + 1)
        unknown = sids[self._n[sids] < 0]
        if len(unknown):
            found = last_chunks(unknown.tolist())
            self._n[unknown] = 0
            for sid, tail in found.items():
                self.set(sid, tail)
        return TailArrays(self._start[sids], self._end[sids], self._n[sids].astype(np.int64))

    def set_many(self, sids: AnyIds, tails: TailArrays) -> None:
        """Set the tails of ``sids`` (distinct) at once."""
        if len(sids):
            self._grow(int(sids.max()) + 1)
            self._start[sids], self._end[sids], self._n[sids] = tails

    def old_points(self, chunk_points: int) -> Callable[[AnyIds], Int64Array]:
        """Points a flush of each series may read back: its partial last chunk (a whole
        chunk when not looked up yet; none when the last chunk is full)."""
        def points(sids: AnyIds) -> Int64Array:
            n = np.full(len(sids), chunk_points, dtype=np.int64)
            known = sids < len(self._n)
            tail_n = self._n[sids[known]].astype(np.int64)
            n[known] = np.where(tail_n < 0, chunk_points,
                                np.where(tail_n < chunk_points, tail_n, 0))
            return n
        return points

    def set_none(self, sids: Sequence[int] | npt.NDArray[np.int64]) -> None:
        """New series: no chunk yet."""
        ids = np.asarray(sids, dtype=np.int64)
        if len(ids):
            self._grow(int(ids.max()) + 1)
            self._n[ids] = 0

    def _grow(self, size: int) -> None:
        if size > len(self._n):
            size = max(size, 2 * len(self._n), 64)
            self._start = np.resize(self._start, size)
            self._end = np.resize(self._end, size)
            n = np.full(size, -1, dtype=np.int32)
            n[: len(self._n)] = self._n
            self._n = n

    def forget(self, sid: int) -> None:
        if sid < len(self._n):
            self._n[sid] = -1
