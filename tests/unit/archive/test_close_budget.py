"""Closing the embedded archive compacts within a time budget (issue 17 §4: ``up`` ends
within 15 s of Ctrl-C): what the budget leaves stays in the ingest log, replayed at the
next start, so nothing written is lost."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest

from watchkeeper.archive.abc import Columns
from watchkeeper.archive.backends import _writer
from watchkeeper.archive.backends._store import Store
from watchkeeper.archive.backends._writer import Writer
from watchkeeper.model import SeriesKey

T0 = 1_700_000_000.0
SERIES = 300
ROUNDS = 20


def _open(path: Path) -> Writer:
    writer = Writer(Store.open(path / "a.sqlite3", writer=True), chunk_points=480,
                    max_log_points=10**9)
    writer.load()
    return writer


def _fill(writer: Writer) -> None:
    texts = [f"s{i}/p/m" for i in range(SERIES)]
    for r in range(ROUNDS):
        writer.write_columns(Columns(
            series=texts, index=np.arange(SERIES, dtype=np.int32),
            ts=np.full(SERIES, T0 + 10 * r), values=np.arange(SERIES) + 1000.0 * r))
    writer.settle()


def _expected(i: int) -> list[float]:
    return [i + 1000.0 * r for r in range(ROUNDS)]


@pytest.mark.parametrize("slices_allowed", [0, 1, 1000])
def test_a_budgeted_close_loses_nothing(tmp_path: Path, slices_allowed: int,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_writer, "FLUSH_SLICE_POINTS", 1000)  # 300 x 20 points: 6 slices
    writer = _open(tmp_path)
    _fill(writer)
    ticks = itertools.count()  # each look at the clock is one second later
    writer.close(now=lambda: float(next(ticks)), until=float(slices_allowed))
    store = Store.open(tmp_path / "a.sqlite3", writer=False)
    try:
        logged = sum(1 for _ in store.log())
    finally:
        store.close()
    if slices_allowed >= 6:
        assert logged == 0  # all compacted: the next start replays nothing
    else:
        assert logged > 0  # the budget left work for the next start
    reopened = _open(tmp_path)
    try:
        for i in (0, SERIES // 2, SERIES - 1):
            points = reopened.read(SeriesKey.parse(f"s{i}/p/m"), T0, T0 + 10 * ROUNDS)
            assert points.values.tolist() == _expected(i)
    finally:
        reopened.close()
