"""The log rows a PostgreSQL archive instance wrote itself, as its reads see them.

An instance keeps the batches it logged until they are compacted, so reads take them
from memory. After a bulk load that outran compaction a shard may hold hundreds of them,
and picking one series out of each batch in turn cost a read ~10 µs per batch (8 ms
for 288). So reads use a *view*: per shard and kind, every kept batch's points
concatenated in log order with the seq of each point, built on the first read after the
shard's rows changed; one comparison then finds a series' points in all of them. The
view is dropped when the rows change (a write or a compaction), so it costs nothing on
the write path and its memory only while a backlog is read.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, NamedTuple

import numpy as np
import numpy.typing as npt

from watchkeeper.archive.abc import Kind
from watchkeeper.archive.backends._batch import Batch, decode_batch
from watchkeeper.archive.backends._head import latest
from watchkeeper.archive.backends._points import empty_values

Int64Array = npt.NDArray[np.int64]
Values = npt.NDArray[Any]
VIEW_FROM: Final = 16  # own rows in a shard from which a read builds the view


@dataclass(frozen=True, eq=False)
class OwnRow:
    """A log row this instance wrote, kept until it is compacted."""

    batch: Batch
    points: int


class View(NamedTuple):
    """One kind's points of a shard's own rows, in log order."""

    seqs: Int64Array
    sids: npt.NDArray[np.int32]
    ts: Int64Array
    values: Values


class OwnViews:
    """Views of the own rows of each shard, valid until :meth:`changed` is called."""

    def __init__(self, shards: int) -> None:
        self._versions = [0] * shards
        self._views: dict[tuple[int, Kind], View] = {}

    def version(self, shard: int) -> int:
        return self._versions[shard]

    def changed(self, shard: int) -> None:
        """The shard's own rows changed: its views are stale."""
        self._versions[shard] += 1
        for kind in [k for s, k in self._views if s == shard]:
            del self._views[(shard, kind)]

    def view(self, shard: int, kind: Kind, rows: Mapping[int, OwnRow]) -> View:
        """The view of ``rows`` (the shard's current own rows, in seq order)."""
        found = self._views.get((shard, kind))
        if found is None:
            found = self._views[(shard, kind)] = _build(kind, rows)
        return found


def _build(kind: Kind, rows: Mapping[int, OwnRow]) -> View:
    columns = [(seq, row.batch.column(kind)) for seq, row in rows.items()]
    columns = [(seq, c) for seq, c in columns if len(c.sids)]
    if not columns:
        return View(np.empty(0, np.int64), np.empty(0, np.int32), np.empty(0, np.int64),
                    empty_values(kind))
    return View(np.repeat(np.array([seq for seq, _ in columns], dtype=np.int64),
                          [len(c.sids) for _, c in columns]),
                np.concatenate([c.sids for _, c in columns]),
                np.concatenate([c.ts for _, c in columns]),
                np.concatenate([c.values for _, c in columns]))


def series_points(kind: Kind, sid: int, logged: Sequence[tuple[int, bytes | None]],
                  view: View | None, own: Mapping[int, OwnRow]) -> tuple[Int64Array, Values]:
    """One series' points in the log rows ``logged`` (``(seq, blob)`` in seq order, no blob
    for own rows): sorted, the latest write per timestamp.

    Own rows come from ``view`` when given (it must cover every own row in ``logged``),
    else from ``own``; other writers' rows are decoded.
    """
    seqs: list[Int64Array] = []
    ts: list[Int64Array] = []
    values: list[Values] = []
    mine = [seq for seq, blob in logged if blob is None]
    if view is not None and mine:
        pick = view.sids == sid
        if len(mine) < len(own):  # some were compacted elsewhere: they are in the chunks
            pick &= np.isin(view.seqs, mine)
        seqs.append(view.seqs[pick])
        ts.append(view.ts[pick])
        values.append(view.values[pick])
    for seq, blob in logged:
        if blob is None and view is not None:
            continue
        column = (own[seq].batch if blob is None else decode_batch(blob)).column(kind)
        pick = column.sids == sid
        if pick.any():
            seqs.append(np.full(int(pick.sum()), seq, dtype=np.int64))
            ts.append(column.ts[pick])
            values.append(column.values[pick])
    if not ts:
        return np.empty(0, dtype=np.int64), empty_values(kind)
    all_ts, all_values = np.concatenate(ts), np.concatenate(values)
    if len(ts) > 1:  # parts from the view and from decoded rows: back into log order
        order = np.argsort(np.concatenate(seqs), kind="stable")
        all_ts, all_values = all_ts[order], all_values[order]
    return latest(all_ts, all_values)
