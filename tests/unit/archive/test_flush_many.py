"""Compaction of many series at once: partial tails fetched and decoded together."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from watchkeeper.archive.abc import Columns
from watchkeeper.archive.backends import _writer as _writer_module
from watchkeeper.archive.backends._store import Store
from watchkeeper.archive.backends._writer import Writer
from watchkeeper.model import SeriesKey

T0 = 1_700_000_000.0
N = 300


def _writer(path: Path) -> Writer:
    writer = Writer(Store.open(path / "a.sqlite3", writer=True), chunk_points=480,
                    max_log_points=10**9)
    writer.load()
    return writer


def _round(writer: Writer, r: int) -> None:
    texts = [f'd/p/m{{if="{i}"}}' for i in range(N)]
    writer.write_columns(Columns(series=texts, index=np.arange(N, dtype=np.int32),
                                 ts=np.full(N, T0 + 10 * r), values=np.arange(N) + 1000.0 * r))
    writer.settle()


def test_topping_up_many_tails_reads_them_in_one_statement(tmp_path: Path) -> None:
    """The second compaction of 300 series tops up each one's partial chunk: one SELECT
    fetches all of them (one per series before), and every point reads back."""
    writer = _writer(tmp_path)
    for r in range(3):
        _round(writer, r)
    writer.compact()
    for r in range(3, 5):
        _round(writer, r)
    statements: list[str] = []
    writer.store._conn.set_trace_callback(statements.append)
    writer.compact()
    writer.store._conn.set_trace_callback(None)

    selects = [s for s in statements if s.lstrip().upper().startswith("SELECT")]
    assert sum("blob" in s and "chunks" in s for s in selects) == 1  # one fetch of the tails
    for i in (0, 150, N - 1):
        points = writer.read(SeriesKey.parse(f'd/p/m{{if="{i}"}}'), T0, T0 + 100)
        assert points.values.tolist() == [i + 1000.0 * r for r in range(5)]
    writer.close()


def test_chunks_at_answers_in_order_with_none_for_missing(tmp_path: Path) -> None:
    """Store.chunks_at gives the chunk starting at each (series, start), None if none."""
    writer = _writer(tmp_path)
    _round(writer, 0)
    writer.compact()
    start = int(T0 * 1000)
    rows = writer.store.chunks_at([(5, start), (7, start + 1), (2, start)])
    assert [None if row is None else (row.sid, row.n) for row in rows] == [(5, 1), None, (2, 1)]
    writer.close()


def test_short_tails_count_for_what_they_hold_when_slicing_a_flush(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch
                                                                   ) -> None:
    """A flush is sliced by head points plus each series' partial last chunk: series
    with short tails share slices (a whole chunk each made one slice per ~400 series)."""
    monkeypatch.setattr(_writer_module, "FLUSH_SLICE_POINTS", 2_000)
    writer = _writer(tmp_path)
    for r in range(2):
        _round(writer, r)
    writer.compact()
    _round(writer, 2)
    head = writer.heads["float"]
    sliced = _writer_module._slices(head, None, writer._tails.old_points(480))
    assert len(sliced) == 1  # 300 series: 300 head points and 600 tail points
    assert len(_writer_module._slices(head, None, 480)) > 50
    writer.compact()
    points = writer.read(SeriesKey.parse('d/p/m{if="7"}'), T0, T0 + 100)
    assert points.values.tolist() == [7.0, 1007.0, 2007.0]
    writer.close()


def test_listing_every_series_takes_the_total_from_the_catalog(tmp_path: Path) -> None:
    """A page of all series counts no rows in SQLite (a million took ~70 ms); a prefix
    listing still counts its range; both totals are right."""
    writer = _writer(tmp_path)
    _round(writer, 0)
    statements: list[str] = []
    writer.store._conn.set_trace_callback(statements.append)
    metas, total = writer.list_series("", 10, 0)
    assert not [s for s in statements if "count(" in s]
    assert (len(metas), total) == (10, N)
    _, total = writer.list_series('d/p/m{if="1', 5, 0)
    writer.store._conn.set_trace_callback(None)
    assert total == 111  # 1, 10-19, 100-199
    assert [s for s in statements if "count(" in s]
    writer.close()
