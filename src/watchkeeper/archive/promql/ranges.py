"""Functions over range vectors (``rate``, ``*_over_time``, ``deriv``...), in numpy.

Each takes one series' samples and the windows of the steps (``[ref - range, ref]``,
closed at both ends as in Prometheus 2.x) and returns a value and a presence flag per
step. Window bounds and ``rate``/``increase``/``delta`` are compiled loops (kernels);
what needs every sample of a window gathers the windows into a 2-d array (in chunks of
steps, to bound memory) and walks its columns in sample order, so sums accumulate in the
order Prometheus adds them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Final

import numpy as np

from watchkeeper.archive.promql import kernels
from watchkeeper.archive.promql.values import STALE_BITS, Floats, Ints, Mask, Samples
from watchkeeper.errors import BadQuery

_CHUNK_CELLS: Final = 1 << 21  # steps x window samples gathered at once
Result = tuple[Floats, Mask]


@dataclass(frozen=True)
class Windows:
    """The windows of every step of every series of a range argument, flattened: row
    ``k = series * steps + step`` looks at samples ``lo[k]:hi[k]`` of the concatenated
    ``ts``/``values``; ``first[i]`` marks a series' first sample (no pair ends there)."""

    ts: Ints
    values: Floats
    first: Mask
    lo: Ints
    hi: Ints
    ref: Ints
    range_ms: int
    series: int
    steps: int

    def tile(self, per_step: Floats) -> Floats:
        """A per-step argument (a scalar) repeated for each series' rows."""
        return np.tile(per_step, self.series)


def windows(samples: Samples, ref: Ints, range_ms: int) -> Windows:
    """Every window of every series at each ``ref`` (``[ref - range, ref]``)."""
    first = np.zeros(len(samples.ts), dtype=bool)
    starts = samples.bounds[:-1]
    first[starts[samples.bounds[1:] > starts]] = True
    lo, hi = kernels.window_bounds(samples.ts, samples.bounds, ref, range_ms)
    return Windows(samples.ts, samples.values, first, lo, hi, np.tile(ref, len(samples)),
                   range_ms, len(samples), len(ref))


def _windows(values: Floats, lo: Ints, hi: Ints) -> Iterator[tuple[slice, Floats, Mask]]:
    """Windows as 2-d arrays (steps x samples), masked past each window's end."""
    n = len(lo)
    width = int((hi - lo).max()) if n else 0
    if width == 0 or len(values) == 0:
        yield slice(0, n), np.zeros((n, 0)), np.zeros((n, 0), dtype=bool)
        return
    rows = max(1, _CHUNK_CELLS // width)
    cols = np.arange(width)
    for start in range(0, n, rows):
        part = slice(start, min(n, start + rows))
        idx = lo[part, None] + cols
        mask = idx < hi[part, None]
        yield part, values[np.minimum(idx, len(values) - 1)], mask


def _by_window(w: Windows, fn: Callable[[Floats, Mask], Floats]) -> Floats:
    out = np.empty(len(w.lo))
    for part, grid, mask in _windows(w.values, w.lo, w.hi):
        out[part] = fn(grid, mask) if grid.shape[1] else np.nan
    return out


def _kahan_columns(grid: Floats, mask: Mask) -> Floats:
    """Row sums added column by column with Kahan compensation (Prometheus' kahanSum)."""
    total = np.zeros(grid.shape[0])
    comp = np.zeros(grid.shape[0])
    for j in range(grid.shape[1]):
        x = np.where(mask[:, j], grid[:, j], 0.0)
        t = total + x
        big = np.abs(total) >= np.abs(x)
        comp += np.where(big, (total - t) + x, (x - t) + total)
        total = t
    return total + comp


def fresh(samples: Samples) -> Samples:
    """:meth:`Samples.fresh`, but samples read apart are looked through where they lie
    (one compiled pass) and laid end to end only when a stale marker is among them."""
    if not samples.laid_out:
        _, values_at, lengths = samples.addresses()
        if not kernels.stale_counts_at((values_at, lengths), STALE_BITS).any():
            return samples
    return samples.fresh()


def extrapolated(samples: Samples, ref: Ints, range_ms: int, *, counter: bool,
                 per_second: bool) -> Result:
    """``rate``, ``increase`` (counters) and ``delta``: Prometheus' extrapolatedRate, each
    window found and computed in one compiled pass (no :class:`Windows`), over the
    samples where they lie."""
    if not samples.laid_out:
        return kernels.extrapolated_at(samples.addresses(), samples, ref=ref,
                                       range_ms=range_ms, counter=counter,
                                       per_second=per_second)
    return kernels.extrapolated(samples.ts, samples.values, samples.bounds, ref=ref,
                                range_ms=range_ms, counter=counter, per_second=per_second)


def instant_rate(w: Windows, *, per_second: bool) -> Result:
    """``irate`` and ``idelta``: the last two samples of each window."""
    ok = (w.hi - w.lo) >= 2
    if len(w.values) < 2:
        return np.zeros(len(w.lo)), ok
    last = np.where(ok, w.hi - 1, 1)
    prev = last - 1
    v, t = w.values, w.ts
    if not per_second:
        return v[last] - v[prev], ok
    result = np.where(v[last] < v[prev], v[last], v[last] - v[prev])
    gap = t[last] - t[prev]
    ok &= gap != 0
    with np.errstate(all="ignore"):
        return result / (np.where(gap == 0, 1, gap) / 1000.0), ok


def _count_pairs(w: Windows, hit: Mask) -> Result:
    """How many consecutive pairs of each window satisfy ``hit`` (changes, resets)."""
    prefix = np.zeros(len(w.values) + 1, dtype=np.int64)
    if len(w.values) > 1:
        prefix[2:] = np.cumsum(hit & ~w.first[1:])
    start = np.minimum(w.lo + 1, w.hi)
    return (prefix[w.hi] - prefix[start]).astype(np.float64), w.hi > w.lo


def changes(w: Windows) -> Result:
    v = w.values
    differ = (v[1:] != v[:-1]) & ~(np.isnan(v[1:]) & np.isnan(v[:-1]))
    return _count_pairs(w, differ)


def resets(w: Windows) -> Result:
    v = w.values
    return _count_pairs(w, v[1:] < v[:-1])


def over_time(name: str, w: Windows) -> Result:
    """The ``*_over_time`` functions (but ``quantile_over_time``)."""
    count = w.hi - w.lo
    ok = count > 0
    if name == "count_over_time":
        return count.astype(np.float64), ok
    if name == "present_over_time":
        return np.ones(len(w.lo)), ok
    if name == "last_over_time":
        if not len(w.values):
            return np.zeros(len(w.lo)), ok
        return w.values[np.where(ok, w.hi - 1, 0)], ok
    return _by_window(w, _OVER_TIME[name]), ok


def _sum(grid: Floats, mask: Mask) -> Floats:
    return _kahan_columns(grid, mask)


def _avg(grid: Floats, mask: Mask) -> Floats:
    count: Floats = mask.sum(axis=1).astype(np.float64)
    return _kahan_columns(grid, mask) / count


def nan_losing(pick: Callable[..., Floats], fill: float, *,
               axis: int) -> Callable[[Floats, Mask], Floats]:
    """min/max along ``axis`` of the present values, where NaN loses to any number (as in
    Prometheus); NaN where nothing but NaN is present. Used over time here and across
    series by the aggregation operators."""
    def reduce(grid: Floats, mask: Mask) -> Floats:
        real = mask & ~np.isnan(grid)
        found = pick(np.where(real, grid, fill), axis=axis)
        return np.where(real.any(axis=axis), found, np.nan)
    return reduce


def _variance(grid: Floats, mask: Mask) -> Floats:
    n: Floats = mask.sum(axis=1).astype(np.float64)
    mean = _kahan_columns(grid, mask) / n
    dev = np.where(mask, grid - mean[:, None], 0.0)
    return _kahan_columns(dev * dev, mask) / n


def _stddev(grid: Floats, mask: Mask) -> Floats:
    return np.sqrt(_variance(grid, mask))


_OVER_TIME: Final[dict[str, Callable[[Floats, Mask], Floats]]] = {
    "sum_over_time": _sum,
    "avg_over_time": _avg,
    "min_over_time": nan_losing(np.min, np.inf, axis=1),
    "max_over_time": nan_losing(np.max, -np.inf, axis=1),
    "stdvar_over_time": _variance,
    "stddev_over_time": _stddev,
}
OVER_TIME: Final = frozenset({*_OVER_TIME, "count_over_time", "present_over_time",
                              "last_over_time"})


def quantiles(grid: Floats, mask: Mask, q: Floats) -> Floats:
    """Prometheus' quantile of each row's masked values (NaN sorts first), rank
    ``q * (n - 1)`` interpolated linearly; ``q`` outside [0, 1] gives -Inf/+Inf."""
    n = mask.sum(axis=1)
    nans = (np.isnan(grid) & mask).sum(axis=1)
    keyed = np.where(mask, np.where(np.isnan(grid), -np.inf, grid), np.inf)
    ordered = np.sort(keyed, axis=1)
    cols = np.arange(grid.shape[1])
    ordered = np.where(cols[None, :] < nans[:, None], np.nan, ordered)
    with np.errstate(all="ignore"):
        rank = q * (n - 1)
        lower = np.clip(np.floor(rank), 0, None)
        upper = np.minimum(n - 1, lower + 1)
        weight = rank - np.floor(rank)
        rows = np.arange(grid.shape[0])
        li = np.clip(np.nan_to_num(lower), 0, max(grid.shape[1] - 1, 0)).astype(np.int64)
        ui = np.clip(np.nan_to_num(upper), 0, max(grid.shape[1] - 1, 0)).astype(np.int64)
        if grid.shape[1] == 0:
            value = np.full(grid.shape[0], np.nan)
        else:
            value = ordered[rows, li] * (1 - weight) + ordered[rows, ui] * weight
    value = np.where(q < 0, -np.inf, np.where(q > 1, np.inf, value))
    return np.where(np.isnan(q) | (n == 0), np.nan, value)


def quantile_over_time(w: Windows, q: Floats) -> Result:
    out = np.empty(len(w.lo))
    for part, grid, mask in _windows(w.values, w.lo, w.hi):
        out[part] = quantiles(grid, mask, q[part])
    return out, w.hi > w.lo


def regression(w: Windows, intercept_at: Ints | None) -> tuple[Floats, Floats, Mask]:
    """Slope and intercept of the least-squares line through each window, as Prometheus'
    linearRegression computes them (Kahan sums; x in seconds from ``intercept_at``, or
    from the window's first sample)."""
    ok = (w.hi - w.lo) >= 2
    slope = np.full(len(w.lo), np.nan)
    icept = np.full(len(w.lo), np.nan)
    ts = w.ts
    for part, grid, mask in _windows(w.values, w.lo, w.hi):
        if grid.shape[1] == 0:
            continue
        idx = np.minimum(w.lo[part, None] + np.arange(grid.shape[1]), max(len(ts) - 1, 0))
        origin = ts[np.minimum(w.lo[part], len(ts) - 1)] if intercept_at is None \
            else intercept_at[part]
        x = np.where(mask, (ts[idx] - origin[:, None]) / 1e3, 0.0)
        y = np.where(mask, grid, 0.0)
        n = mask.sum(axis=1).astype(np.float64)
        sx, sy = _kahan_columns(x, mask), _kahan_columns(y, mask)
        sxy, sx2 = _kahan_columns(x * y, mask), _kahan_columns(x * x, mask)
        first = grid[:, 0]
        const = np.all(~mask | (grid == first[:, None]), axis=1)
        with np.errstate(all="ignore"):
            cov = sxy - sx * sy / n
            var = sx2 - sx * sx / n
            s = cov / var
            i = sy / n - s * sx / n
        inf_first = np.isinf(first)
        slope[part] = np.where(const, np.where(inf_first, np.nan, 0.0), s)
        icept[part] = np.where(const, np.where(inf_first, np.nan, first), i)
    return slope, icept, ok


def holt_winters(w: Windows, sf: float, tf: float) -> Result:
    """Double exponential smoothing, Prometheus' holt_winters."""
    if not (0 < sf < 1):
        raise BadQuery(f"invalid smoothing factor. Expected: 0 < sf < 1, got: {sf:f}")
    if not (0 < tf < 1):
        raise BadQuery(f"invalid trend factor. Expected: 0 < tf < 1, got: {tf:f}")
    out = np.full(len(w.lo), np.nan)
    for part, grid, mask in _windows(w.values, w.lo, w.hi):
        if grid.shape[1] < 2:
            continue
        s0 = np.zeros(grid.shape[0])
        s1 = grid[:, 0].copy()
        b = grid[:, 1] - grid[:, 0]
        for i in range(1, grid.shape[1]):
            live = mask[:, i]
            x = sf * grid[:, i]
            nb = b if i == 1 else tf * (s1 - s0) + (1 - tf) * b
            y = (1 - sf) * (s1 + nb)
            s0 = np.where(live, s1, s0)
            s1 = np.where(live, x + y, s1)
            b = np.where(live, nb, b)
        out[part] = s1
    return out, (w.hi - w.lo) >= 2
