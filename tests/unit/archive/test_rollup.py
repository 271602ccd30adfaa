"""Rollup arithmetic, from tables: every aggregation, bucket edge and refusal."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from watchkeeper.archive.rollup import (
    AGGREGATIONS,
    aggregate,
    bucketize,
    bucketize_histograms,
    merge_histograms,
    merge_summaries,
    summarize,
)
from watchkeeper.errors import InvalidData

T0 = 1_700_000_000.0  # a multiple of 10 s; 20 s past a multiple of 60 s
TS = [T0, T0 + 5, T0 + 10, T0 + 15, T0 + 25, T0 + 30]
VALUES = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]


@pytest.mark.parametrize(
    ("agg", "expected"),
    [
        ("avg", [1.5, 3.5, 5.0, 6.0]),
        ("min", [1.0, 3.0, 5.0, 6.0]),
        ("max", [2.0, 4.0, 5.0, 6.0]),
        ("sum", [3.0, 7.0, 5.0, 6.0]),
        ("count", [2.0, 2.0, 1.0, 1.0]),
        ("first", [1.0, 3.0, 5.0, 6.0]),
        ("last", [2.0, 4.0, 5.0, 6.0]),
    ],
)
def test_every_aggregation(agg: str, expected: list[float]) -> None:
    """Each aggregation over 10 s buckets of the same points."""
    starts, values = bucketize(TS, VALUES, start=T0, end=T0 + 30, step=10, agg=agg)

    assert starts.tolist() == [T0, T0 + 10, T0 + 20, T0 + 30]
    assert values.tolist() == expected


def test_aggregations_are_all_tested() -> None:
    assert set(AGGREGATIONS) == {"avg", "min", "max", "sum", "count", "first", "last"}


@pytest.mark.parametrize(
    ("ts", "values", "window", "step", "expected"),
    [
        pytest.param([T0 + 5], [1.0], (T0, T0 + 60), 60, [(T0 - 20, 1.0)], id="epoch-aligned"),
        pytest.param([T0, T0 + 50], [1.0, 2.0], (T0, T0 + 50), 10, [(T0, 1.0), (T0 + 50, 2.0)],
                     id="empty-buckets-omitted"),
        pytest.param(TS, VALUES, (T0 + 5, T0 + 25), 10,
                     [(T0, 2.0), (T0 + 10, 3.5), (T0 + 20, 5.0)], id="bounds-inclusive"),
        pytest.param([T0 + 10, T0, T0 + 11], [3.0, 1.0, 5.0], (T0, T0 + 20), 10,
                     [(T0, 1.0), (T0 + 10, 4.0)], id="unsorted-input"),
        pytest.param([T0, T0 + 0.25, T0 + 0.5], [1.0, 2.0, 4.0], (T0, T0 + 1), 0.5,
                     [(T0, 1.5), (T0 + 0.5, 4.0)], id="sub-second-step"),
        pytest.param([T0, T0 + 1], [1.0, math.nan], (T0, T0 + 1), 10, [(T0, math.nan)],
                     id="nan-propagates"),
        pytest.param([T0, math.nan, math.inf], [1.0, 2.0, 3.0], (-math.inf, math.inf), 10,
                     [(T0, 1.0)], id="non-finite-times-ignored"),
        pytest.param([-15.0, -5.0, 5.0], [1.0, 2.0, 3.0], (-20, 10), 10,
                     [(-20.0, 1.0), (-10.0, 2.0), (0.0, 3.0)], id="before-the-epoch"),
        pytest.param([], [], (T0, T0 + 10), 10, [], id="no-points"),
        pytest.param(TS, VALUES, (T0 + 100, T0 + 200), 10, [], id="nothing-in-range"),
        pytest.param(TS, VALUES, (T0 + 30, T0), 10, [], id="end-before-start"),
    ],
)
def test_buckets(
    ts: list[float], values: list[float], window: tuple[float, float], step: float,
    expected: list[tuple[float, float]],
) -> None:
    """Bucket placement and point selection, with avg as the aggregation."""
    start, end = window
    starts, averages = bucketize(ts, values, start=start, end=end, step=step, agg="avg")

    assert (starts.dtype.name, averages.dtype.name) == ("float64", "float64")
    assert starts.tolist() == [s for s, _ in expected]
    np.testing.assert_array_equal(averages, [v for _, v in expected])


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        pytest.param({"step": 0}, "step", id="zero-step"),
        pytest.param({"step": -10}, "step", id="negative-step"),
        pytest.param({"step": math.nan}, "step", id="nan-step"),
        pytest.param({"step": math.inf}, "step", id="infinite-step"),
        pytest.param({"step": 0.0001}, "step", id="below-a-millisecond"),
        pytest.param({"agg": "median"}, "agg", id="unknown-aggregation"),
        pytest.param({"values": [1.0]}, "ts", id="length-mismatch"),
        pytest.param({"ts": [[T0]], "values": [[1.0]]}, "ts", id="not-one-dimensional"),
    ],
)
def test_bad_requests_are_refused(kwargs: dict[str, Any], field: str) -> None:
    """Impossible requests raise InvalidData naming the field."""
    call: dict[str, Any] = {"ts": TS, "values": VALUES, "start": T0, "end": T0 + 30,
                            "step": 10, "agg": "avg"} | kwargs
    with pytest.raises(InvalidData) as raised:
        bucketize(call.pop("ts"), call.pop("values"), **call)

    assert raised.value.field == field


@pytest.mark.parametrize(
    ("histograms", "expected"),
    [
        pytest.param([], {}, id="none"),
        pytest.param([{}], {}, id="one-empty"),
        pytest.param([{"0.5": 1, "1": 2}, {"1": 3, "2": 1}], {"0.5": 1, "1": 5, "2": 1},
                     id="bucket-wise"),
        pytest.param([{1: 2}, {"1": 3}, {1.5: 1}], {"1": 5, "1.5": 1}, id="keys-as-strings"),
    ],
)
def test_merge_histograms(histograms: list[dict[Any, int]], expected: dict[str, int]) -> None:
    """Histograms add bucket by bucket; bucket names become strings."""
    assert merge_histograms(histograms) == expected


@pytest.mark.parametrize(
    ("ts", "start", "end", "expected"),
    [
        pytest.param([T0, T0 + 5, T0 + 12], T0, T0 + 20,
                     [(T0, {"a": 3, "b": 2}), (T0 + 10, {"a": 3})], id="per-bucket"),
        pytest.param([T0 + 12, T0, T0 + 5], T0, T0 + 20,
                     [(T0, {"a": 5, "b": 1}), (T0 + 10, {"a": 1, "b": 1})], id="unsorted"),
        pytest.param([T0, T0 + 5, T0 + 12], T0 + 1, T0 + 6, [(T0, {"a": 2, "b": 1})],
                     id="bounds"),
        pytest.param([T0, T0 + 5, T0 + 12], T0 + 30, T0 + 40, [], id="nothing-in-range"),
    ],
)
def test_bucketize_histograms(
    ts: list[float], start: float, end: float, expected: list[tuple[float, dict[str, int]]]
) -> None:
    """Histograms in the same bucket merge; buckets come out in time order."""
    histograms = [{"a": 1, "b": 1}, {"a": 2, "b": 1}, {"a": 3}]

    starts, merged = bucketize_histograms(ts, histograms, start=start, end=end, step=10)

    assert list(zip(starts.tolist(), merged, strict=True)) == expected


def test_bucketize_histograms_refuses_mismatched_lengths() -> None:
    with pytest.raises(InvalidData, match="2 timestamps but 1 histograms"):
        bucketize_histograms([T0, T0 + 1], [{}], start=T0, end=T0 + 1, step=10)


def test_plus_and_minus_infinity_in_one_bucket_sum_to_nan_quietly() -> None:
    """IEEE's answer, and no RuntimeWarning (the suite turns warnings into errors)."""
    ts = np.array([T0, T0 + 1, T0 + 2], dtype=np.float64)
    values = np.array([math.inf, -math.inf, 1.0])
    _, sums = bucketize(ts, values, start=T0, end=T0 + 10, step=10, agg="sum")
    assert math.isnan(sums[0])
    summary = summarize((ts * 1000).astype(np.int64), values, 10_000)
    assert math.isnan(summary.sum[0])
    assert math.isnan(aggregate(merge_summaries([summary, summary]), "avg")[0])
