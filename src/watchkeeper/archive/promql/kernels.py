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
from collections.abc import Sequence
from typing import Any, Final, NamedTuple

import numpy as np
import numpy.typing as npt

from watchkeeper.archive.promql.sharing import share
from watchkeeper.archive.promql.values import Addresses, Floats, Ints, Mask, addresses, where
from watchkeeper.errors import BadQuery

_CHUNK_WINDOWS: Final = 20_000
"""Windows of ``rate`` taken at a time by a thread that shares the work (~0.3 ms each)."""


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
    ts = np.ascontiguousarray(ts, dtype=np.int64)
    values = np.ascontiguousarray(values, dtype=np.float64)
    starts = bounds[:-1]
    return _extrapolated(_address(ts) + 8 * starts, _address(values) + 8 * starts,
                         np.diff(bounds), (ts, values), ref=ref, range_ms=range_ms,
                         counter=counter, per_second=per_second)


def extrapolated_pieces(ts: Sequence[Ints], values: Sequence[Floats], *, ref: Ints,
                        range_ms: int, counter: bool, per_second: bool
                        ) -> tuple[Floats, Mask]:
    """:func:`extrapolated` of series each in arrays of its own (``ts[i]``, ``values[i]``:
    views of what the archive keeps, read where they lie rather than copied into one)."""
    return extrapolated_at(addresses(ts, values), (ts, values), ref=ref, range_ms=range_ms,
                           counter=counter, per_second=per_second)


def extrapolated_at(at: Addresses, alive: object, *, ref: Ints, range_ms: int,
                    counter: bool, per_second: bool) -> tuple[Floats, Mask]:
    """:func:`extrapolated` of the series at ``at`` (:func:`addresses`); ``alive`` holds
    their arrays (a reference for as long as the loop reads them)."""
    return _extrapolated(*at, alive, ref=ref, range_ms=range_ms, counter=counter,
                         per_second=per_second)


def stale_counts(values: Sequence[Floats], marker: np.uint64) -> Ints:
    """How many values of each array are ``marker`` bit for bit (Prometheus' stale NaN)."""
    return stale_counts_at(where(values, np.float64), marker)


def stale_counts_at(at: tuple[Ints, Ints], marker: np.uint64) -> Ints:
    """:func:`stale_counts` of the arrays at ``at`` (addresses and lengths, from
    :func:`where`), which the caller keeps alive."""
    out = np.zeros(len(at[0]), dtype=np.int64)
    _compiled().stale(at[0], at[1], np.uint64(marker), out)
    return out


def pairs_json(encoded: bytes, times: list[bytes], steps_of: Ints, counts: Ints
               ) -> tuple[bytes, list[int]]:
    """Prometheus' ``[[t, "v"], ...]`` of each series, end to end, and where each ends:
    ``encoded`` is the JSON list of every value (msgspec's, finite values from 1e-4 to
    1e16 whose text is Go's once ``.0`` is cut from whole numbers), series after series
    (``counts`` each), value ``k`` at the step ``steps_of[k]`` whose time text is
    ``times[step]``. One pass of bytes, where Python would make a text per value."""
    time_at = np.zeros(len(times) + 1, dtype=np.int64)
    np.cumsum([len(t) for t in times], out=time_at[1:])
    times_buf = np.frombuffer(b"".join(times), dtype=np.uint8)
    source = np.frombuffer(encoded, dtype=np.uint8)
    size = len(encoded) + int((time_at[steps_of + 1] - time_at[steps_of]).sum()) \
        + 8 * len(steps_of) + 2 * len(counts)
    out = np.empty(size, dtype=np.uint8)
    ends = np.empty(len(counts), dtype=np.int64)
    _compiled().pairs(source, times_buf, time_at, steps_of, counts, out, ends)
    return out[:int(ends[-1]) if len(ends) else 0].tobytes(), ends.tolist()


def _extrapolated(ts_at: Ints, values_at: Ints, lengths: Ints, alive: object, *, ref: Ints,
                  range_ms: int, counter: bool, per_second: bool) -> tuple[Floats, Mask]:
    """The loop over the series at the addresses given; ``alive`` holds their arrays (a
    reference for as long as the loop reads them)."""
    _forward(ref)
    count, n = len(lengths), len(ref)
    out = np.zeros(count * n)
    ok = np.empty(count * n, dtype=np.bool_)
    longest = int(lengths.max()) if count else 0
    rate = _compiled().rate

    def series(lo: int, hi: int) -> None:
        # where a series' counter falls is listed in here, one series at a time
        falls = np.empty(longest, dtype=np.int64)
        rate(ts_at[lo:hi], values_at[lo:hi], lengths[lo:hi], ref, np.int64(range_ms),
             counter, falls, per_second, out[lo * n:hi * n], ok[lo * n:hi * n])

    share(series, count, _CHUNK_WINDOWS // max(n, 1))
    return out, ok


def _address(array: npt.NDArray[Any]) -> int:
    return int(array.__array_interface__["data"][0])


def _forward(ref: Ints) -> None:
    """The loops walk each series once, forward: the steps must not go back in time."""
    if len(ref) > 1 and bool((ref[1:] < ref[:-1]).any()):
        raise BadQuery("steps must not go back in time")  # the engine's never do


class _Kernels(NamedTuple):
    """The compiled loops (numba dispatchers)."""

    bounds: Any
    rate: Any
    stale: Any
    pairs: Any


@functools.cache
def _compiled() -> _Kernels:
    from watchkeeper.archive.promql import _loops  # imports numba: half a second, once

    try:  # compiled once, then loaded from numba's cache on disk (~0.1 s)
        return _Kernels(*(_loops.jit(loop, cache=True) for loop in _loops.LOOPS))
    except RuntimeError:  # nowhere writable to cache (a read-only install): compile each time
        return _Kernels(*(_loops.jit(loop, cache=False) for loop in _loops.LOOPS))
