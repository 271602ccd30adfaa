"""Compiled loops over windows: where numpy needs a dozen passes and temporaries over
millions of samples, one loop that reads each sample once (numba, decision D48).

Every window of every step of every series: the two-pointer walk that finds where each
window starts and ends, and Prometheus' ``extrapolatedRate`` (``rate``, ``increase``,
``delta``) computed as Prometheus computes it, counter resets added one by one in sample
order. numba is imported and the loops compiled (or loaded from numba's cache) at the
first query that needs them, not when watchkeeper starts.
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import numpy as np

from watchkeeper.archive.promql.values import Floats, Ints, Mask
from watchkeeper.errors import BadQuery


def window_bounds(ts: Ints, bounds: Ints, ref: Ints, range_ms: int) -> tuple[Ints, Ints]:
    """Where each series' window ``[ref - range, ref]`` starts and ends in ``ts`` (row
    ``series * steps + step``); ``ref`` must not decrease."""
    _forward(ref)
    count, n = len(bounds) - 1, len(ref)
    lo = np.empty(count * n, dtype=np.int64)
    hi = np.empty(count * n, dtype=np.int64)
    _compiled().bounds(ts, bounds, ref, np.int64(range_ms), lo, hi)
    return lo, hi


def extrapolated(ts: Ints, values: Floats, bounds: Ints, *, ref: Ints, range_ms: int,
                 counter: bool, per_second: bool) -> tuple[Floats, Mask]:
    """Prometheus' extrapolatedRate of each series' window ``[ref - range, ref]`` at each
    step (row ``series * steps + step``; ``ref`` must not decrease), the windows found
    as in :func:`window_bounds` in the same pass; fewer than two samples: none."""
    _forward(ref)
    count, n = len(bounds) - 1, len(ref)
    out = np.zeros(count * n)
    ok = np.empty(count * n, dtype=np.bool_)
    # where a counter falls, found by numpy (SIMD) rather than in the loop (a series' first
    # sample may be listed: no window holds the pair before it)
    falls = np.flatnonzero(values[1:] < values[:-1]) + 1 if counter \
        else np.empty(0, dtype=np.int64)
    _compiled().rate(ts, values, bounds, ref, np.int64(range_ms), counter, falls, per_second,
                     out, ok)
    return out, ok


def _forward(ref: Ints) -> None:
    """The loops walk each series once, forward: the steps must not go back in time."""
    if len(ref) > 1 and bool((ref[1:] < ref[:-1]).any()):
        raise BadQuery("steps must not go back in time")  # the engine's never do


class _Kernels(NamedTuple):
    """The compiled loops (numba dispatchers)."""

    bounds: Any
    rate: Any


@functools.cache
def _compiled() -> _Kernels:
    import numba  # half a second to import: only once a query needs it

    # error_model="numpy": a division by zero gives inf or NaN as in numpy and Go, and no
    # check before every division (twice as fast)
    def jit(loop: Any, *, cache: bool) -> Any:
        return numba.njit(loop, cache=cache, nogil=True, boundscheck=False,
                          error_model="numpy")

    try:  # compiled once, then loaded from numba's cache on disk (~0.1 s)
        return _Kernels(jit(_bounds_loop, cache=True), jit(_rate_loop, cache=True))
    except RuntimeError:  # nowhere writable to cache (a read-only install): compile each time
        return _Kernels(jit(_bounds_loop, cache=False), jit(_rate_loop, cache=False))


# numba's calls are positional, hence the noqa; the loops run compiled, out of coverage's
# sight, and are tested through the functions above against Prometheus' own answers
def _bounds_loop(  # noqa: PLR0917
    ts: Ints, bounds: Ints, ref: Ints, range_ms: np.int64, lo: Ints, hi: Ints,
) -> None:  # pragma: no cover
    n = len(ref)
    for s in range(len(bounds) - 1):
        end = bounds[s + 1]
        a = bounds[s]
        b = a
        for k in range(n):
            while a < end and ts[a] < ref[k] - range_ms:
                a += 1
            b = max(a, b)
            while b < end and ts[b] <= ref[k]:
                b += 1
            lo[s * n + k] = a
            hi[s * n + k] = b


def _rate_loop(  # noqa: PLR0917
    ts: Ints, values: Floats, bounds: Ints, ref: Ints, range_ms: np.int64, counter: bool,
    falls: Ints, per_second: bool, out: Floats, ok: Mask,
) -> None:  # pragma: no cover
    n = len(ref)
    seconds = range_ms / 1000.0
    for s in range(len(bounds) - 1):
        base, end = bounds[s], bounds[s + 1]
        a = b = base
        at = np.searchsorted(falls, base)  # the next fall after a window's first sample
        for k in range(n):
            row = s * n + k
            r = ref[k]
            while a < end and ts[a] < r - range_ms:
                a += 1
            b = max(a, b)
            while b < end and ts[b] <= r:
                b += 1
            first, last = a, b - 1
            ok[row] = last > first
            if last <= first:
                continue
            v_first = values[first]
            result = values[last] - v_first
            # Prometheus: each fall adds the value before it, in sample order
            while at < len(falls) and falls[at] <= first:
                at += 1
            j = at
            while j < len(falls) and falls[j] <= last:
                result += values[falls[j] - 1]
                j += 1
            t_first, t_last = ts[first], ts[last]
            sampled = (t_last - t_first) / 1000.0
            average = sampled / (last - first)
            to_start = (t_first - (r - range_ms)) / 1000.0
            to_end = (r - t_last) / 1000.0
            if counter and result > 0 and v_first >= 0:
                to_zero = sampled * (v_first / result)
                if to_zero < to_start:  # noqa: PLR1730  (min() is not NaN-safe the same way)
                    to_start = to_zero
            threshold = average * 1.1
            interval = sampled
            interval += to_start if to_start < threshold else average / 2
            interval += to_end if to_end < threshold else average / 2
            result = result * (interval / sampled)
            if per_second:
                result = result / seconds
            out[row] = result
