"""Window bounds of many series at once (searched a block of series at a time) against a
search per series, over random irregular series, steps, ranges and block sizes."""

from __future__ import annotations

import numpy as np
import pytest

from watchkeeper.archive.promql import ranges


@pytest.mark.parametrize("block", [1, 7, 64, 1 << 14])
def test_window_bounds_are_each_series_own_search(block: int,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ranges, "_SEARCH_BLOCK", block)
    rng = np.random.default_rng(block)
    for _ in range(100):
        lengths = rng.integers(0, 60, int(rng.integers(1, 20)))
        ts = np.concatenate([np.sort(rng.choice(np.arange(2000, dtype=np.int64), n,
                                                replace=False)) for n in lengths])
        bounds = np.zeros(len(lengths) + 1, dtype=np.int64)
        np.cumsum(lengths, out=bounds[1:])
        steps = int(rng.integers(1, 30))
        ref = int(rng.integers(-100, 2000)) + np.arange(steps, dtype=np.int64) * int(
            rng.integers(1, 100))
        if rng.random() < 0.2:  # an @ modifier: every step at one time
            ref = np.full(steps, ref[0])
        range_ms = int(rng.integers(0, 500))
        lo, hi = ranges._window_bounds(ts, bounds, ref, range_ms)
        for s in range(len(lengths)):
            own = ts[bounds[s]:bounds[s + 1]]
            rows = slice(s * steps, (s + 1) * steps)
            assert lo[rows].tolist() == (own.searchsorted(ref - range_ms, "left")
                                         + bounds[s]).tolist()
            assert hi[rows].tolist() == (own.searchsorted(ref, "right") + bounds[s]).tolist()
