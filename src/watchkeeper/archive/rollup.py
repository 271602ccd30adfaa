"""Rollup arithmetic: fixed-step aggregation of points, and histogram merging.

Pure functions on numpy arrays, shared by every backend so that each answers a rollup
query with the same numbers. Buckets are aligned to multiples of ``step`` counted from
the epoch, and a bucket is named by its start. Bucket arithmetic runs on integer
milliseconds (the archive's resolution), so alignment is exact for any step of 1 ms
or more. NaN values propagate as IEEE arithmetic says: a bucket holding a NaN has a
NaN sum, average, minimum and maximum.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Final, Literal, NamedTuple, TypeVar, get_args

import numpy as np
import numpy.typing as npt

from watchkeeper.errors import InvalidData

Agg = Literal["avg", "min", "max", "sum", "count", "first", "last"]
AGGREGATIONS: Final[tuple[str, ...]] = get_args(Agg)

Float64Array = npt.NDArray[np.float64]
_MIN_STEP: Final = 0.001
_MAX_STEP: Final = 1e12
_Reducer = Callable[[Float64Array, npt.NDArray[np.intp]], Float64Array]
_F = TypeVar("_F", bound=Callable[..., Any])



def _ieee(fn: _F) -> _F:
    """Run ``fn`` with NumPy's invalid-value warning off: +inf and -inf in one bucket sum
    to NaN, which is the IEEE answer for that bucket, not something to warn about."""

    @functools.wraps(fn)
    def quiet(*args: Any, **kwargs: Any) -> Any:
        with np.errstate(invalid="ignore"):
            return fn(*args, **kwargs)

    return quiet  # type: ignore[return-value]


@_ieee
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


# -- mergeable summaries: what stored rollups hold ---------------------------------------

SUMMARY_AGGS: Final[tuple[str, ...]] = ("avg", "min", "max", "sum", "count")
"""The aggregations a :class:`Summary` can answer (``first``/``last`` need the points)."""


class Summary(NamedTuple):
    """Per-bucket count, sum, minimum and maximum of float points, mergeable.

    Buckets are ``step`` wide, aligned to the epoch and named by their start in
    milliseconds; only buckets holding points appear, in ascending order. Summaries of
    disjoint sets of points (a series' chunks) merge into the summary of their union:
    counts and sums add, minima and maxima combine. Sums merged from parts may differ
    from one sum over all points in the last bits (floating-point addition is not
    associative); everything else is exact.
    """

    start_ms: npt.NDArray[np.int64]
    n: npt.NDArray[np.int64]  # points per bucket
    sum: Float64Array
    min: Float64Array
    max: Float64Array

    def __len__(self) -> int:
        return int(self.start_ms.shape[0])

    def slice(self, lo: int, hi: int) -> Summary:
        return Summary(self.start_ms[lo:hi], self.n[lo:hi], self.sum[lo:hi], self.min[lo:hi],
                       self.max[lo:hi])

    def select(self, keep: npt.NDArray[np.bool_]) -> Summary:
        return Summary(self.start_ms[keep], self.n[keep], self.sum[keep], self.min[keep],
                       self.max[keep])


@_ieee
def summarize(ts_ms: npt.ArrayLike, values: npt.ArrayLike, step_ms: int) -> Summary:
    """The summary of points (``ts_ms`` ascending int64 milliseconds) in ``step_ms`` buckets."""
    ts = np.asarray(ts_ms, dtype=np.int64)
    vals = np.asarray(values, dtype=np.float64)
    bucket_ms = ts // step_ms * step_ms
    firsts = np.flatnonzero(np.concatenate(([True], bucket_ms[1:] != bucket_ms[:-1])))
    firsts = firsts[: len(ts)]  # no points, no buckets
    if not len(firsts):
        return empty_summary()
    return Summary(
        bucket_ms[firsts],
        np.diff(firsts, append=len(ts)).astype(np.int64),
        np.add.reduceat(vals, firsts),
        np.minimum.reduceat(vals, firsts),
        np.maximum.reduceat(vals, firsts),
    )


@_ieee
def merge_summaries(parts: Sequence[Summary], step_ms: int | None = None) -> Summary:
    """One summary of the union of disjoint parts; with ``step_ms`` (a multiple of the
    parts' step), regrouped into those wider buckets."""
    if not parts:
        return empty_summary()
    joined = Summary(
        np.concatenate([p.start_ms for p in parts]), np.concatenate([p.n for p in parts]),
        np.concatenate([p.sum for p in parts]), np.concatenate([p.min for p in parts]),
        np.concatenate([p.max for p in parts]),
    )
    starts = joined.start_ms if step_ms is None else joined.start_ms // step_ms * step_ms
    order = np.argsort(starts, kind="stable")
    starts = starts[order]
    firsts = np.flatnonzero(np.concatenate(([True], starts[1:] != starts[:-1])))[: len(starts)]
    if not len(firsts):
        return empty_summary()
    return Summary(
        starts[firsts],
        np.add.reduceat(joined.n[order], firsts),
        np.add.reduceat(joined.sum[order], firsts),
        np.minimum.reduceat(joined.min[order], firsts),
        np.maximum.reduceat(joined.max[order], firsts),
    )


@_ieee
def aggregate(summary: Summary, agg: str) -> Float64Array:
    """One of :data:`SUMMARY_AGGS` per bucket (InvalidData for others)."""
    if agg == "avg":
        out: Float64Array = summary.sum / summary.n
        return out
    if agg == "count":
        return summary.n.astype(np.float64)
    if agg in ("min", "max", "sum"):
        column: Float64Array = getattr(summary, agg)
        return column
    raise InvalidData(f"a summary answers {', '.join(SUMMARY_AGGS)}", field="agg", value=agg)


def step_ms(step: float) -> int:
    """A rollup step in whole milliseconds; InvalidData outside 1 ms to 1e12 s."""
    return _step_ms(step)


def empty_summary() -> Summary:
    ints, floats = np.empty(0, np.int64), np.empty(0, np.float64)
    return Summary(ints, ints, floats, floats, floats)


@_ieee
def summarize_groups(groups: npt.ArrayLike, ts_ms: npt.ArrayLike, values: npt.ArrayLike,
                     step_ms: int) -> tuple[npt.NDArray[np.int64], Summary]:
    """:func:`summarize` for many runs at once: points of run ``groups[i]`` (runs may be
    series or chunks; each run's points ascending in time, runs contiguous) into
    ``step_ms`` buckets. Returns each bucket's run and the buckets."""
    g = np.asarray(groups, dtype=np.int64)
    ts = np.asarray(ts_ms, dtype=np.int64)
    vals = np.asarray(values, dtype=np.float64)
    bucket_ms = ts // step_ms * step_ms
    change = np.concatenate(([True], (bucket_ms[1:] != bucket_ms[:-1]) | (g[1:] != g[:-1])))
    firsts = np.flatnonzero(change)[: len(ts)]
    if not len(firsts):
        return np.empty(0, np.int64), empty_summary()
    return g[firsts], Summary(
        bucket_ms[firsts],
        np.diff(firsts, append=len(ts)).astype(np.int64),
        np.add.reduceat(vals, firsts),
        np.minimum.reduceat(vals, firsts),
        np.maximum.reduceat(vals, firsts),
    )


def merge_groups(groups: npt.ArrayLike, summary: Summary,
                 step_ms: int) -> tuple[npt.NDArray[np.int64], Summary]:
    """Merge buckets of the same group into ``step_ms`` buckets (a multiple of the
    buckets' step): the grouped form of :func:`merge_summaries`. Returns groups
    ascending, and buckets ascending within each group."""
    g = np.asarray(groups, dtype=np.int64)
    starts = summary.start_ms // step_ms * step_ms
    order = np.lexsort((starts, g))
    g, starts = g[order], starts[order]
    change = np.concatenate(([True], (starts[1:] != starts[:-1]) | (g[1:] != g[:-1])))
    firsts = np.flatnonzero(change)[: len(g)]
    if not len(firsts):
        return np.empty(0, np.int64), empty_summary()
    return g[firsts], Summary(
        starts[firsts],
        np.add.reduceat(summary.n[order], firsts),
        np.add.reduceat(summary.sum[order], firsts),
        np.minimum.reduceat(summary.min[order], firsts),
        np.maximum.reduceat(summary.max[order], firsts),
    )
