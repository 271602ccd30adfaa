"""Series read apart (each in the arrays the archive keeps, D51) answer exactly what the
same series laid end to end answer: every query is run both ways, values compared bit
for bit. The data has counter resets, NaN, gaps, stale markers and two metric names."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from tests.unit.promql.conftest import Loader
from watchkeeper.archive.promql import Engine, ranges
from watchkeeper.archive.promql import engine as engine_module
from watchkeeper.archive.promql.values import Samples

DATA = {
    'c{i="a"}': "0+7x30 3+7x30 _x5 200+1x40",
    'c{i="b"}': "5+1x20 stale 30+2x50 NaN 100+1x40",
    'c{i="c"}': "1+0x120",
    'c{i="d"}': "stale 1 2 3 stale",
    'd{i="a"}': "10-1x60 _x10 9+3x50",
    'e{i="e"}': "1+2x100",
}
QUERIES = [
    "rate(c[5m])", "increase(c[10m])", "delta(d[3m])", "rate({i=~\"b|e\"}[5m])",
    "sum by (i) (rate(c[5m]))", "sum(increase(c[5m]))", "avg without (i) (rate(c[2m]))",
    "topk(2, rate(c[5m]))", "count_over_time(c[5m])", "irate(c[5m])",
    "max_over_time(c[4m])", "resets(c[10m])", "absent_over_time(c[1m])",
]


async def _answers(engine: Engine) -> list[list[tuple[list[tuple[str, str]], list[int],
                                                      list[bool]]]]:
    out = []
    for query in QUERIES:
        result = await engine.query(query, start=0, end=7_200_000, step=30_000)
        out.append(sorted((sorted(s.labels.items()),  # a value counts where present
                           np.where(s.present, s.values, 0.0).view(np.uint64).tolist(),
                           s.present.tolist()) for s in result.series))
    return out


async def test_series_apart_answer_as_laid_end_to_end(load: Loader,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    engine = await load(60, DATA)
    monkeypatch.setattr(engine_module, "_APART_SPAN_MS", 1 << 62)  # never apart
    laid = await _answers(engine)
    monkeypatch.setattr(engine_module, "_APART_SPAN_MS", 0)  # always apart
    assert await _answers(engine) == laid
    # and split among worker threads (each part's series apart)
    monkeypatch.setattr(engine_module, "_OFFLOAD_CELLS", 1)
    monkeypatch.setattr(engine_module, "_PARALLEL_CELLS", 1)
    assert await _answers(engine) == laid


def test_arrays_the_loops_cannot_read_in_place_are_copied_first() -> None:
    """A strided view, a big-endian or an int32 array read apart: copied once, then read."""
    ts: list[Any] = [np.arange(0, 40, 2, dtype=np.int64)[::2],
                     np.arange(10, dtype=np.int32) * 2]
    values = [np.arange(10, dtype=">f8"), np.arange(20.0)[::2]]
    samples = Samples.apart([{}, {}], ts, values)
    lengths = samples.addresses()[2]
    assert lengths.tolist() == [10, 10]
    laid = Samples.apart([{}, {}], [np.ascontiguousarray(t, np.int64) for t in ts],
                         [np.ascontiguousarray(v, np.float64) for v in values])
    ref = np.arange(0, 40, 5, dtype=np.int64)
    assert [a.tolist() for a in ranges.extrapolated(samples, ref, 10, counter=True,
                                                    per_second=True)] == \
        [a.tolist() for a in ranges.extrapolated(laid.laid(), ref, 10, counter=True,
                                                 per_second=True)]
