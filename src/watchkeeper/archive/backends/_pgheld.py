"""The ingest-log rows a PostgreSQL archive instance holds in memory, as its reads see them.

An instance holds the rows it wrote until they are compacted, and *follows* the rows
other instances write: it fetches and decodes them once, in the background, so that
neither its reads nor its compactions fetch or decode them again (a shard of another
server's bulk load held hundreds of rows: decoding them at every read cost 30-140 ms).
Rows of writer ``w`` are held up to a seq ``upto[w]``: every row of ``w`` with a seq up
to that one is held, or gone from the log. That holds because an instance commits its
log rows in seq order (one write at a time, seqs taken inside the transaction), so a
statement can leave the blobs of held rows out by writer and seq alone.

After a bulk load a shard may hold hundreds of rows, and picking one series out of each
batch in turn cost a read ~10 µs per batch (8 ms for 288). So reads use a *view*: per
shard and kind, every held batch's points concatenated in log order with the seq of
each point, built on the first read after the shard's rows changed; one comparison then
finds a series' points in all of them. Rows added since (a write, followed rows) extend
the view (one concatenation of it and their points: rebuilding it from hundreds of rows
cost a read 3-5 ms, 10-50 on a busy machine, every time the follower brought a few rows,
D54); rows let go (a compaction) drop it, so it costs memory only while a backlog is read.
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
VIEW_FROM: Final = 16  # held rows in a shard from which a read builds the view


@dataclass(frozen=True, eq=False)
class HeldRow:
    """A log row held in memory until it is compacted: written here or followed."""

    batch: Batch
    points: int
    writer: str | None = None
    """Who wrote a followed row; None: this instance."""

    @property
    def own(self) -> bool:
        return self.writer is None


class View(NamedTuple):
    """One kind's points of a shard's held rows, each row's points together."""

    seqs: Int64Array
    sids: npt.NDArray[np.int32]
    ts: Int64Array
    values: Values
    rows: frozenset[int]
    """The held rows it covers (by seq), with points of its kind or none."""
    in_order: bool
    """Whether its rows are in seq order (else a read puts a series' points in order)."""


class HeldViews:
    """Views of the held rows of each shard, valid until :meth:`changed` is called."""

    def __init__(self, shards: int) -> None:
        self._versions = [0] * shards
        self._views: dict[tuple[int, Kind], tuple[int, View]] = {}  # with the version seen

    def version(self, shard: int) -> int:
        return self._versions[shard]

    def changed(self, shard: int, *, let_go: bool = False) -> None:
        """The shard's held rows changed: its views are stale. Rows added: the next read
        extends them; rows let go (``let_go``): they are dropped."""
        self._versions[shard] += 1
        if let_go:
            for kind in [k for s, k in self._views if s == shard]:
                del self._views[(shard, kind)]

    def view(self, shard: int, kind: Kind, rows: Mapping[int, HeldRow]) -> View:
        """The view of ``rows`` (the shard's current held rows)."""
        version = self._versions[shard]
        found = self._views.get((shard, kind))
        if found is not None and found[0] == version:
            return found[1]
        view = (_extended(kind, found[1], rows) if found is not None else None
                ) or _build(kind, rows)
        self._views[(shard, kind)] = (version, view)
        return view


def _build(kind: Kind, rows: Mapping[int, HeldRow]) -> View:
    # In seq order: a followed row may have come after a later own row.
    columns = [(seq, rows[seq].batch.column(kind)) for seq in sorted(rows)]
    columns = [(seq, c) for seq, c in columns if len(c.sids)]
    if not columns:
        return View(np.empty(0, np.int64), np.empty(0, np.int32), np.empty(0, np.int64),
                    empty_values(kind), frozenset(rows), in_order=True)
    return View(np.repeat(np.array([seq for seq, _ in columns], dtype=np.int64),
                          [len(c.sids) for _, c in columns]),
                np.concatenate([c.sids for _, c in columns]),
                np.concatenate([c.ts for _, c in columns]),
                np.concatenate([c.values for _, c in columns]),
                frozenset(rows), in_order=True)


def _extended(kind: Kind, old: View, rows: Mapping[int, HeldRow]) -> View | None:
    """``old`` with the points of the rows added since; None if some of its rows are no
    longer held."""
    if not old.rows <= rows.keys():
        return None
    added = _build(kind, {seq: row for seq, row in rows.items() if seq not in old.rows})
    return View(np.concatenate([old.seqs, added.seqs]), np.concatenate([old.sids, added.sids]),
                np.concatenate([old.ts, added.ts]), np.concatenate([old.values, added.values]),
                old.rows | added.rows,
                in_order=old.in_order and (not old.rows or not added.rows
                                           or min(added.rows) > max(old.rows)))


def series_points(kind: Kind, sid: int, logged: Sequence[tuple[int, bytes | None]],
                  view: View | None, held: Mapping[int, HeldRow]) -> tuple[Int64Array, Values]:
    """One series' points in the log rows ``logged`` (``(seq, blob)`` in seq order, no blob
    for held rows): sorted, the latest write per timestamp.

    Held rows come from ``view`` when given (it must cover every held row in ``logged``),
    else from ``held``; the others are decoded.
    """
    seqs: list[Int64Array] = []
    ts: list[Int64Array] = []
    values: list[Values] = []
    mine = [seq for seq, blob in logged if blob is None]
    if view is not None and mine:
        pick = view.sids == sid
        if len(mine) < len(held):  # some were compacted elsewhere: they are in the chunks
            pick &= np.isin(view.seqs, mine)
        picked = np.flatnonzero(pick)
        if not view.in_order:  # rows added out of seq order: this series' points in order
            picked = picked[np.argsort(view.seqs[picked], kind="stable")]
        seqs.append(view.seqs[picked])
        ts.append(view.ts[picked])
        values.append(view.values[picked])
    for seq, blob in logged:
        if blob is None and view is not None:
            continue
        column = (held[seq].batch if blob is None else decode_batch(blob)).column(kind)
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
