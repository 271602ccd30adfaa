"""esmond's summary arithmetic: bins, folds, histogram statistics. Pure, no I/O.

A summary of window ``W`` gives one value per bin ``floor(ts / W) * W`` (for ``W = 0``
the bin is the point's own ``ts``). Each summary keeps a *state* per bin, folds every
base point into it, and serves a value computed from it:

==========  ==================  ===========================  ==========================
data type   summary             state                        served value
==========  ==================  ===========================  ==========================
integer     aggregation         float sum                    the sum
float       aggregation         float sum                    the sum (esmond: also)
integer     average             :class:`Mean` (sum, points)  sum / points
float       average             :class:`Mean`                sum / points
percentage  base, aggregation   :class:`Ratio` (num, den)    num / den
histogram   aggregation         merged histogram             the merged histogram
histogram   statistics          merged histogram             :func:`histogram_statistics`
==========  ==================  ===========================  ==========================

The write path (``service``) folds each new point into the stored state of its bins;
:func:`summarize` folds a whole series at once. Both use the same functions, so a
summary computed at write time equals one recomputed from the base points.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final, NamedTuple

from watchkeeper.archive.esmond.types import DataType, SummaryType
from watchkeeper.archive.esmond.values import Percentage

STATISTICS_KEYS: Final = (
    "minimum", "maximum", "mean", "median", "mode", "standard-deviation", "variance",
    "percentile-25", "percentile-75", "percentile-95",
)
_PERCENTILES: Final = ((25, "percentile-25"), (50, "median"), (75, "percentile-75"),
                       (95, "percentile-95"))


class Mean(NamedTuple):
    """The state of an average: the sum and the number of points."""

    total: float
    points: int

    @property
    def value(self) -> float:
        return self.total / self.points


class Ratio(NamedTuple):
    """The state of a percentage aggregation: summed numerators and denominators."""

    numerator: int
    denominator: int

    @property
    def value(self) -> float:
        return self.numerator / self.denominator


State = float | Mean | Ratio | dict[str, int]


def bin_start(ts: int, window: int) -> int:
    """The bin of a point at ``ts`` in a summary of ``window`` seconds."""
    return ts if window <= 0 else ts // window * window


def fold(data_type: DataType, summary_type: SummaryType, state: State | None,
         value: Any) -> State:
    """``state`` (None for an empty bin) with one more base point ``value``."""
    if data_type in ("integer", "float"):
        if summary_type == "average":
            mean = state if isinstance(state, Mean) else Mean(0.0, 0)
            return Mean(mean.total + value, mean.points + 1)
        total = state if isinstance(state, float) else 0.0
        return total + float(value)
    if data_type == "percentage":
        ratio = state if isinstance(state, Ratio) else Ratio(0, 0)
        return Ratio(ratio.numerator + value.numerator, ratio.denominator + value.denominator)
    if data_type == "histogram":
        return merge_histograms(state if isinstance(state, dict) else {}, value)
    raise ValueError(f"{data_type} values have no summaries")


def unfold_histogram(state: Mapping[str, int], value: Mapping[str, int]) -> dict[str, int]:
    """A merged histogram without one of its parts (for a replaced base histogram).

    Buckets whose count drops to zero disappear, so the result equals merging the parts
    that remain.
    """
    out = dict(state)
    for bucket, count in value.items():
        left = out.get(bucket, 0) - count
        if left > 0:
            out[bucket] = left
        else:
            out.pop(bucket, None)
    return out


def served(data_type: DataType, summary_type: SummaryType, state: State) -> Any:
    """The value a summary serves for a bin in ``state``."""
    if summary_type == "statistics":
        assert isinstance(state, dict)
        return histogram_statistics(state)
    if isinstance(state, Mean | Ratio):
        return state.value
    return state


def merge_histograms(first: Mapping[str, int], second: Mapping[str, int]) -> dict[str, int]:
    """Sum two histograms bucket by bucket (labels compared as the strings they are)."""
    out = dict(first)
    for bucket, count in second.items():
        out[bucket] = out.get(bucket, 0) + count
    return out


def histogram_statistics(histogram: Mapping[str, int]) -> dict[str, Any]:
    """esmond's statistics of a histogram ``{bucket label: count}``.

    ``{}`` when a label is not a number (as esmond) or the histogram holds no samples
    (esmond crashed). Percentiles follow esmond's rule, see :func:`percentile`.
    """
    try:
        buckets = sorted((float(label), count) for label, count in histogram.items())
    except ValueError:
        return {}
    buckets = [(x, c) for x, c in buckets if c > 0]
    size = sum(c for _, c in buckets)
    if not size:
        return {}
    # fsum: correctly rounded sums, so the result does not depend on bucket order.
    mean = math.fsum(x * c for x, c in buckets) / size
    variance = math.fsum(c * (x - mean) ** 2 for x, c in buckets) / size
    top = max(c for _, c in buckets)
    stats: dict[str, Any] = {
        "minimum": buckets[0][0],
        "maximum": buckets[-1][0],
        "mean": mean,
        "mode": [x for x, c in buckets if c == top],
        "standard-deviation": math.sqrt(variance),
        "variance": variance,
    }
    for p, key in _PERCENTILES:
        stats[key] = percentile(buckets, p)
    return stats


def percentile(buckets: Sequence[tuple[float, int]], p: float) -> float:
    """The ``p``-th percentile of the sample the sorted ``(value, count)`` buckets expand to.

    NIST's "(N+1)p" rule, as esmond computes it: ``r = p/100 * (N + 1)``, ``k = floor(r)``,
    ``d = r - k``; the result is ``x[k] + d * (x[k+1] - x[k])`` with ``x[i]`` the i-th
    smallest sample (1-based), the smallest when ``k = 0``, the largest when ``k >= N``.
    """
    size = sum(c for _, c in buckets)
    rank = p / 100.0 * (size + 1)
    k = math.floor(rank)
    if k <= 0:
        return buckets[0][0]
    if k >= size:
        return buckets[-1][0]
    low = _nth(buckets, k)
    high = _nth(buckets, k + 1)
    return low + (rank - k) * (high - low)


def _nth(buckets: Iterable[tuple[float, int]], n: int) -> float:
    """The n-th smallest sample (1-based) of the expanded buckets."""
    seen = 0
    for value, count in buckets:
        seen += count
        if seen >= n:
            return value
    raise IndexError(n)


def summarize(data_type: DataType, summary_type: SummaryType, window: int,
              points: Iterable[tuple[int, Any]]) -> list[tuple[int, Any]]:
    """A whole summary series from base points ``(ts, value)``: ``(bin, value)`` ascending.

    ``statistics`` bins merge every histogram of the bin first (for window 0, one point).
    Points with equal ``ts`` are all counted, so pass each stored point once.
    """
    states: dict[int, State] = {}
    for ts, value in points:
        key = bin_start(ts, window)
        states[key] = fold(data_type, summary_type, states.get(key), value)
    return [(key, served(data_type, summary_type, states[key])) for key in sorted(states)]


def base_value(data_type: DataType, value: Any) -> Any:
    """What the base series serves for a stored value (a percentage serves its ratio)."""
    if isinstance(value, Percentage):
        return value.ratio
    if data_type == "integer":
        return float(value)
    return value
