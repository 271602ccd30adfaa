"""A compaction of many series works slice by slice, so its memory does not grow with the
number of series flushed together (issue 17 §4: a fixed set of series written evenly
fills its heads together, and one flush of all of them raised RSS for good)."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from watchkeeper.archive.abc import Columns
from watchkeeper.archive.backends import _writer
from watchkeeper.archive.backends._store import Store
from watchkeeper.archive.backends._writer import Writer
from watchkeeper.model import SeriesKey

T0 = 1_700_000_000.0
SERIES = 2000
ROUNDS = 200  # points per series and phase: 2 x 200 x 2,000 = 800,000 points


def _fill(writer: Writer, first_round: int) -> None:
    texts = [f"s{i}/p/m" for i in range(SERIES)]
    for r in range(first_round, first_round + ROUNDS):
        writer.write_columns(Columns(
            series=texts, index=np.arange(SERIES, dtype=np.int32),
            ts=np.full(SERIES, T0 + 10 * r), values=np.arange(SERIES) + 1000.0 * r))
        writer.settle()


def _flush_peak(path: Path) -> tuple[float, Writer]:
    writer = Writer(Store.open(path / "a.sqlite3", writer=True), chunk_points=480,
                    max_log_points=10**9)
    writer.load()
    _fill(writer, 0)
    writer.compact()  # partial chunks of 200 points: the next flush tops them all up
    _fill(writer, ROUNDS)
    tracemalloc.start()
    try:
        writer.compact()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak / 1e6, writer


def test_flushing_many_series_at_once_stays_within_a_slice(tmp_path: Path) -> None:
    peak, writer = _flush_peak(tmp_path)
    try:
        assert peak < 40  # MB; all 2,000 series at once took ~100 MB
        for i in (0, SERIES // 2, SERIES - 1):
            points = writer.read(SeriesKey.parse(f"s{i}/p/m"), T0, T0 + 10 * 2 * ROUNDS)
            assert points.values.tolist() == [i + 1000.0 * r for r in range(2 * ROUNDS)]
    finally:
        writer.close()


@pytest.mark.parametrize("limit", [1, 50_000])
def test_slices_cover_every_series_once(limit: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """Cut by points (head + one old chunk each), in order, nothing lost or repeated."""
    monkeypatch.setattr(_writer, "FLUSH_SLICE_POINTS", limit)
    head = _writer.Head(np.float64)
    sids = np.arange(1000, dtype=np.int32)
    head.append(1, sids, np.arange(1000, dtype=np.int64), np.ones(1000))
    parts = _writer._slices(head, None, 480)
    joined = np.concatenate([p for p in parts if p is not None])
    assert joined.tolist() == sids.tolist()
    assert len(parts) == (1000 if limit == 1 else 10)
    chosen = np.array([5, 7, 2000], dtype=np.int32)  # 2000: a series this head never saw
    assert np.concatenate(_writer._slices(head, chosen, 480)).tolist() == ([5, 7] if limit == 1
                                                                         else [5, 7, 2000])
