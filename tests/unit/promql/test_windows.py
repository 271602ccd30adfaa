"""Window bounds of many series at once (the compiled two-pointer walk) against a search
per series, over random irregular series, steps and ranges."""

from __future__ import annotations

import numpy as np
import pytest

from watchkeeper.archive.promql import kernels


@pytest.mark.parametrize("seed", [1, 7, 64])
def test_window_bounds_are_each_series_own_search(seed: int) -> None:
    rng = np.random.default_rng(seed)
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
        lo, hi = kernels.window_bounds(ts, bounds, ref, range_ms)
        for s in range(len(lengths)):
            own = ts[bounds[s]:bounds[s + 1]]
            rows = slice(s * steps, (s + 1) * steps)
            assert lo[rows].tolist() == (own.searchsorted(ref - range_ms, "left")
                                         + bounds[s]).tolist()
            assert hi[rows].tolist() == (own.searchsorted(ref, "right") + bounds[s]).tolist()


def _prometheus_rate(ts: list[int], vs: list[float], ref: int, range_ms: int, *,
                     counter: bool, per_second: bool) -> float | None:
    """Prometheus 2.x extrapolatedRate, transcribed sample by sample."""
    window = [(t, v) for t, v in zip(ts, vs, strict=True) if ref - range_ms <= t <= ref]
    if len(window) < 2:
        return None
    result = window[-1][1] - window[0][1]
    if counter:
        last_value = 0.0
        for _, v in window:
            if v < last_value:
                result += last_value
            last_value = v
    sampled = (window[-1][0] - window[0][0]) / 1000.0
    average = sampled / (len(window) - 1)
    to_start = (window[0][0] - (ref - range_ms)) / 1000.0
    to_end = (ref - window[-1][0]) / 1000.0
    if counter and result > 0 and window[0][1] >= 0:
        to_zero = sampled * (window[0][1] / result)
        if to_zero < to_start:  # noqa: PLR1730  (as Go writes it)
            to_start = to_zero
    threshold = average * 1.1
    interval = sampled
    interval += to_start if to_start < threshold else average / 2
    interval += to_end if to_end < threshold else average / 2
    result *= interval / sampled
    return result / (range_ms / 1000.0) if per_second else result


@pytest.mark.parametrize("counter", [True, False], ids=["rate", "delta"])
def test_extrapolated_is_prometheus_sample_by_sample(counter: bool) -> None:
    rng = np.random.default_rng(3)
    for _ in range(150):
        lengths = rng.integers(0, 40, int(rng.integers(1, 8)))
        ts = np.concatenate([np.sort(rng.choice(np.arange(3000, dtype=np.int64) * 7, n,
                                                replace=False)) for n in lengths])
        steps = np.cumsum(rng.random(len(ts)) < 0.15)  # counters that fall now and then
        values = np.where(rng.random(len(ts)) < 0.05, np.nan,
                          rng.random(len(ts)) * 10 + steps * 50.0) * rng.choice([1, -1])
        bounds = np.zeros(len(lengths) + 1, dtype=np.int64)
        np.cumsum(lengths, out=bounds[1:])
        ref = np.arange(0, 21000, int(rng.integers(50, 2000)), dtype=np.int64)
        if rng.random() < 0.2:  # an @ modifier: every step at one time
            ref = np.full(len(ref), ref[len(ref) // 2])
        range_ms = int(rng.integers(1, 5000))
        got, ok = kernels.extrapolated(ts, values, bounds, ref=ref, range_ms=range_ms,
                                       counter=counter, per_second=counter)
        # the same series each in arrays of its own (as the archive keeps them)
        own = [(ts[lo:hi].copy(), values[lo:hi].copy()) for lo, hi in zip(
            bounds[:-1].tolist(), bounds[1:].tolist(), strict=True)]
        apart, apart_ok = kernels.extrapolated_pieces(
            [t for t, _ in own], [v for _, v in own], ref=ref, range_ms=range_ms,
            counter=counter, per_second=counter)
        assert apart_ok.tolist() == ok.tolist()
        assert np.array_equal(apart, got, equal_nan=True)
        for s in range(len(lengths)):
            own_ts = ts[bounds[s]:bounds[s + 1]].tolist()
            own_vs = values[bounds[s]:bounds[s + 1]].tolist()
            for k, r in enumerate(ref.tolist()):
                want = _prometheus_rate(own_ts, own_vs, r, range_ms, counter=counter,
                                        per_second=counter)
                row = s * len(ref) + k
                assert bool(ok[row]) == (want is not None)
                if want is not None:
                    assert got[row] == want or (np.isnan(got[row]) and np.isnan(want))


def test_series_apart_are_checked_and_stale_markers_counted() -> None:
    stale = np.array([0x7FF0000000000002], dtype=np.uint64).view(np.float64)[0]
    values = [np.array([1.0, stale, 2.0, stale]), np.array([np.nan]), np.zeros(0)]
    assert kernels.stale_counts(values, np.uint64(0x7FF0000000000002)).tolist() == [2, 0, 0]
    ts = [np.arange(4, dtype=np.int64), np.arange(1, dtype=np.int64), np.zeros(0, np.int64)]
    ref = np.arange(0, 4, dtype=np.int64)
    with pytest.raises(ValueError, match="contiguous"):  # a strided view is refused
        kernels.extrapolated_pieces([np.arange(8, dtype=np.int64)[::2]], [values[0]],
                                    ref=ref, range_ms=2, counter=True, per_second=True)
    with pytest.raises(ValueError, match="contiguous"):  # so is another type
        kernels.extrapolated_pieces([ts[0].astype(np.int32)], [values[0]], ref=ref,
                                    range_ms=2, counter=True, per_second=True)
    with pytest.raises(ValueError, match="one length"):
        kernels.extrapolated_pieces([ts[1]], [values[0]], ref=ref, range_ms=2,
                                    counter=True, per_second=True)
    out, ok = kernels.extrapolated_pieces(ts, [np.arange(4.0), values[1], values[2]],
                                          ref=ref, range_ms=3, counter=True, per_second=False)
    assert ok.reshape(3, 4).tolist() == [[False, True, True, True], [False] * 4, [False] * 4]
    laid, _ = kernels.extrapolated(np.concatenate(ts), np.concatenate(
        [np.arange(4.0), values[1], values[2]]), np.array([0, 4, 5, 5]), ref=ref, range_ms=3,
        counter=True, per_second=False)
    assert out.tolist() == laid.tolist()
