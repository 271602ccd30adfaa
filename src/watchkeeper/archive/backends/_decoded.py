"""Float chunks kept decoded in the writer's memory, for queries that read them again.

A dashboard asks the same day of the same series every few seconds; decoding its chunks
cost ~70 ns a point (~0.4 s for a day of 900 series at 15 s) where copying them out of
memory costs a few. Chunks never change in place: a flush or a delete replaces them, and
the writer tells this cache which ``(series id, start)`` it replaced and which series got
new chunks, so an entry is never stale. Only the writing instance keeps one (another
process may replace chunks without it knowing). The least recently read entries go
first once the decoded points would take more than the budget.

A read that reaches a series' newest point keeps the series' chunks from its start on as
one *run*: every chunk point from that time, in one pair of arrays, until the series'
chunks change. The next such read of the series needs neither the statement that lists
its chunks nor a lookup per chunk (a day of 900 series: 10,800 chunks, ~40 ms of both).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable
from typing import Final

import numpy as np
import numpy.typing as npt

Int64Array = npt.NDArray[np.int64]
Float64Array = npt.NDArray[np.float64]
ChunkKey = tuple[int, int]  # series id, start (ms)

_ENTRY_BYTES: Final = 200  # a dict entry, its key and two array headers
_RUN: Final = -(1 << 63)  # the start in the key of a series' run (no chunk starts there)


class DecodedChunks:
    """Decoded float chunks by ``(series id, start)``, at most ``budget`` bytes of them."""

    def __init__(self, budget: int) -> None:
        self.budget = budget
        self.size = 0
        self._chunks: OrderedDict[ChunkKey, tuple[Int64Array, Float64Array]] = OrderedDict()
        self._run_from: dict[int, int] = {}  # series id: the time its run holds every point from

    def __len__(self) -> int:
        return len(self._chunks)

    def get(self, key: ChunkKey) -> tuple[Int64Array, Float64Array] | None:
        found = self._chunks.get(key)
        if found is not None:
            self._chunks.move_to_end(key)
        return found

    def put(self, key: ChunkKey, ts: Int64Array, values: Float64Array) -> None:
        """Keep a chunk's points (read-only copies, so no caller can change them)."""
        self._keep(key, ts.copy(), values.copy())

    def runs(self, sids: list[int], lo_ms: int) -> list[tuple[Int64Array, Float64Array] | None]:
        """For each series of ``sids``, every chunk point from ``lo_ms`` on (and maybe
        some before), if a run of it is kept from that time or earlier."""
        run_from, chunks = self._run_from, self._chunks
        out: list[tuple[Int64Array, Float64Array] | None] = []
        for sid in sids:
            start = run_from.get(sid)
            if start is None or start > lo_ms:
                out.append(None)
                continue
            out.append(chunks[sid, _RUN])
            chunks.move_to_end((sid, _RUN))
        return out

    def keep_run(self, sid: int, lo_ms: int, ts: Int64Array, values: Float64Array,
                 chunks: Iterable[ChunkKey]) -> None:
        """Keep ``ts``/``values`` (taken over, not copied) as every chunk point of ``sid``
        from ``lo_ms`` on, in place of its ``chunks`` kept one by one."""
        self._forget(chunks)
        if self._keep((sid, _RUN), ts, values):
            self._run_from[sid] = lo_ms

    def _keep(self, key: ChunkKey, ts: Int64Array, values: Float64Array) -> bool:
        cost = ts.nbytes + values.nbytes + _ENTRY_BYTES
        if cost > self.budget:
            return False
        self._forget([key])
        ts.flags.writeable = values.flags.writeable = False
        self._chunks[key] = (ts, values)
        self.size += cost
        while self.size > self.budget:
            (sid, start), (old_ts, old_values) = self._chunks.popitem(last=False)
            self.size -= old_ts.nbytes + old_values.nbytes + _ENTRY_BYTES
            if start == _RUN:
                del self._run_from[sid]
        return key in self._chunks

    def forget(self, keys: Iterable[ChunkKey], series: Iterable[int] = ()) -> None:
        """Drop the chunks a flush or a delete is replacing, and the runs of their series
        and of ``series`` (those that got new chunks)."""
        keys = list(keys)
        self._forget(keys)
        for sid in {*(sid for sid, _ in keys), *series}:
            if self._run_from.pop(sid, None) is not None:
                self._forget([(sid, _RUN)])

    def _forget(self, keys: Iterable[ChunkKey]) -> None:
        for key in keys:
            found = self._chunks.pop(key, None)
            if found is not None:
                self.size -= found[0].nbytes + found[1].nbytes + _ENTRY_BYTES
