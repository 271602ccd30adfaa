"""Rollup arithmetic: fixed-step aggregation of points, and histogram merging.

Pure functions on numpy arrays, shared by every backend so that each answers a rollup
query with the same numbers. Buckets are aligned to multiples of ``step`` counted from
the epoch, and a bucket is named by its start. Bucket arithmetic runs on integer
milliseconds (the archive's resolution), so alignment is exact for any step of 1 ms
or more. NaN values propagate as IEEE arithmetic says: a bucket holding a NaN has a
NaN sum, average, minimum and maximum.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Final, Literal, get_args

import numpy as np
import numpy.typing as npt

from watchkeeper.errors import InvalidData

Agg = Literal["avg", "min", "max", "sum", "count", "first", "last"]
AGGREGATIONS: Final[tuple[str, ...]] = get_args(Agg)

Float64Array = npt.NDArray[np.float64]
_MIN_STEP: Final = 0.001
_MAX_STEP: Final = 1e12
_Reducer = Callable[[Float64Array, npt.NDArray[np.intp]], Float64Array]


def bucketize(
    ts: npt.ArrayLike,
    values: npt.ArrayLike,
    *,
    start: float,
    end: float,
    step: float,
    agg: Agg | str,
) -> tuple[Float64Array, Float64Array]:
    """Aggregate the points with ``start <= ts <= end`` into ``step``-second buckets.

    ``agg`` is one of :data:`AGGREGATIONS` (anything else raises InvalidData). Returns
    ``(bucket_starts, aggregates)`` in ascending order; empty buckets are omitted.
    ``count`` is returned as floats like the other aggregates.
    """
    reduce, step_ms = _reducer(agg), _step_ms(step)
    ts_arr = np.asarray(ts, dtype=np.float64)
    values_arr = np.asarray(values, dtype=np.float64)
    if ts_arr.shape != values_arr.shape or ts_arr.ndim != 1:
        raise InvalidData(
            f"ts {ts_arr.shape} and values {values_arr.shape} must be equal 1-d shapes", field="ts"
        )
    index = _window(ts_arr, start, end)
    bucket_ms, firsts = _buckets(ts_arr[index], step_ms)
    if not len(firsts):
        return np.empty(0), np.empty(0)
    return bucket_ms[firsts] / 1000.0, reduce(values_arr[index], firsts)


def bucketize_histograms(
    ts: npt.ArrayLike,
    histograms: Sequence[Mapping[str, int]],
    *,
    start: float,
    end: float,
    step: float,
) -> tuple[Float64Array, list[dict[str, int]]]:
    """Merge the histograms with ``start <= ts <= end`` per ``step``-second bucket."""
    step_ms = _step_ms(step)
    ts_arr = np.asarray(ts, dtype=np.float64)
    if ts_arr.ndim != 1 or len(histograms) != len(ts_arr):
        raise InvalidData(f"{len(ts_arr)} timestamps but {len(histograms)} histograms", field="ts")
    index = _window(ts_arr, start, end)
    bucket_ms, firsts = _buckets(ts_arr[index], step_ms)
    bounds = [*firsts.tolist(), len(index)]
    merged = [
        merge_histograms(histograms[i] for i in index[lo:hi].tolist())
        for lo, hi in itertools.pairwise(bounds)
    ]
    return bucket_ms[firsts] / 1000.0, merged


def merge_histograms(histograms: Iterable[Mapping[Any, int]]) -> dict[str, int]:
    """Sum histograms bucket by bucket; bucket names become strings (``1`` and ``"1"`` merge)."""
    merged: dict[str, int] = {}
    for histogram in histograms:
        for bucket, count in histogram.items():
            name = str(bucket)
            merged[name] = merged.get(name, 0) + count
    return merged


def _reducer(agg: str) -> _Reducer:
    try:
        return _REDUCERS[agg]
    except KeyError:
        raise InvalidData(
            f"unknown aggregation (use one of {', '.join(AGGREGATIONS)})", field="agg", value=agg
        ) from None


def _step_ms(step: float) -> int:
    if not _MIN_STEP <= step <= _MAX_STEP:  # also refuses NaN
        message = f"step must be between {_MIN_STEP} and {_MAX_STEP:.0e} seconds"
        raise InvalidData(message, field="step", value=step)
    return round(step * 1000)


def _window(ts: Float64Array, start: float, end: float) -> npt.NDArray[np.intp]:
    """Indexes of the points inside ``[start, end]``, in time order (stable for ties)."""
    index = np.flatnonzero((ts >= start) & (ts <= end) & np.isfinite(ts))
    if (np.diff(ts[index]) < 0).any():
        index = index[np.argsort(ts[index], kind="stable")]
    return index


def _buckets(ts: Float64Array, step_ms: int) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.intp]]:
    """Each point's bucket start in ms, and the index of the first point of every bucket."""
    bucket_ms = np.rint(ts * 1000.0).astype(np.int64) // step_ms * step_ms
    changes = np.concatenate(([True], bucket_ms[1:] != bucket_ms[:-1]))
    # Slicing drops the leading True when there are no points at all.
    return bucket_ms, np.flatnonzero(changes)[: len(bucket_ms)]


def _counts(values: Float64Array, firsts: npt.NDArray[np.intp]) -> Float64Array:
    return np.diff(firsts, append=len(values)).astype(np.float64)


def _last(values: Float64Array, firsts: npt.NDArray[np.intp]) -> Float64Array:
    lasts: Float64Array = values[np.append(firsts[1:], len(values)) - 1]
    return lasts


_REDUCERS: Final[dict[str, _Reducer]] = {
    "avg": lambda v, f: np.add.reduceat(v, f) / _counts(v, f),
    "min": np.minimum.reduceat,
    "max": np.maximum.reduceat,
    "sum": np.add.reduceat,
    "count": _counts,
    "first": lambda v, f: v[f],
    "last": _last,
}
