"""Held log rows of the PostgreSQL archive read through a view: log order is seq order,
whatever order the rows were taken in (a followed row may come after a later own row)."""

from __future__ import annotations

import numpy as np

from watchkeeper.archive.backends._batch import Batch, Column
from watchkeeper.archive.backends._pgheld import HeldRow, HeldViews, series_points


def _row(sid: int, ts: list[int], values: list[float], writer: str | None = None) -> HeldRow:
    floats = Column(np.full(len(ts), sid, dtype=np.int32), np.array(ts, dtype=np.int64),
                    np.array(values))
    batch = Batch((), (floats, Column.empty("histogram"), Column.empty("object")))
    return HeldRow(batch, len(ts), writer)


def test_the_later_seq_wins_whatever_order_the_rows_were_held_in() -> None:
    held = {7: _row(1, [10, 20], [7.0, 7.0])}  # own, taken first
    held[5] = _row(1, [10, 30], [5.0, 5.0], writer="other")  # followed later, earlier seq
    held[6] = _row(2, [10], [6.0], writer="other")
    logged: list[tuple[int, bytes | None]] = [(5, None), (6, None), (7, None)]
    views = HeldViews(1)
    for view in (views.view(0, "float", held), None):
        ts, values = series_points("float", 1, logged, view, held)
        assert ts.tolist() == [10, 20, 30]
        assert values.tolist() == [7.0, 7.0, 5.0]


def test_rows_gone_from_the_log_are_left_out_of_the_view() -> None:
    held = {1: _row(1, [10], [1.0]), 2: _row(1, [10, 20], [2.0, 2.0], writer="other")}
    view = HeldViews(1).view(0, "float", held)
    ts, values = series_points("float", 1, [(1, None)], view, held)  # 2 was compacted
    assert (ts.tolist(), values.tolist()) == ([10], [1.0])


def test_rows_added_since_extend_the_view_and_read_as_a_fresh_one() -> None:
    """A write and a followed row of an earlier seq, added after the view was built: the
    extended view gives what a view built anew gives; rows let go rebuild it."""
    held = {4: _row(1, [10, 20], [4.0, 4.0]), 6: _row(2, [10], [6.0])}
    views = HeldViews(1)
    first = views.view(0, "float", held)
    held[9] = _row(1, [20, 40], [9.0, 9.0])  # own, later
    views.changed(0)
    held[5] = _row(1, [10, 30], [5.0, 5.0], writer="other")  # followed, earlier seq
    views.changed(0)
    extended = views.view(0, "float", held)
    assert len(extended.seqs) == len(first.seqs) + 4
    assert not extended.in_order
    logged: list[tuple[int, bytes | None]] = [(seq, None) for seq in sorted(held)]
    fresh = HeldViews(1).view(0, "float", held)
    for view in (extended, fresh, None):
        ts, values = series_points("float", 1, logged, view, held)
        assert ts.tolist() == [10, 20, 30, 40]
        assert values.tolist() == [5.0, 9.0, 5.0, 9.0]

    del held[4]
    views.changed(0, let_go=True)
    rebuilt = views.view(0, "float", held)
    assert rebuilt.rows == frozenset(held)
    assert rebuilt.in_order
