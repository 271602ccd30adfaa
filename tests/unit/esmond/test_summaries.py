"""Summary math from tables, with esmond's own expected values (reference §3.4, §3.5, §7)."""

from __future__ import annotations

import math
from typing import Any

import pytest

from watchkeeper.archive.esmond.summaries import (
    STATISTICS_KEYS,
    Mean,
    Ratio,
    bin_start,
    fold,
    histogram_statistics,
    merge_histograms,
    percentile,
    served,
    summarize,
    unfold_histogram,
)
from watchkeeper.archive.esmond.types import DataType, SummaryType
from watchkeeper.archive.esmond.values import Percentage

START = 1398965989  # test_api.py's start; its day bin is 1398902400
DAY = 1398902400


@pytest.mark.parametrize(("ts", "window", "expected"), [
    (START, 86400, DAY),
    (START, 3600, 1398963600),
    (START, 300, 1398965700),
    (START, 0, START),
    (DAY, 86400, DAY),
    (DAY - 1, 86400, DAY - 86400),
])
def test_bin_start(ts: int, window: int, expected: int) -> None:
    """A point falls into the bin floor(ts / W) * W; window 0 keeps its own ts."""
    assert bin_start(ts, window) == expected


# esmond test_api.py: the points each test posts (one POST, then a bulk PUT), and the
# summaries it expects for the day bin 1398902400.
INTEGERS = [5978580000, 5413040000, 7964590000, 6946810000]  # throughput, 7200 s apart
FLOATS = [0.001, 0.003, 0.002, 0.003, 0.001]  # time-error-estimates, 60 s apart
PERCENTAGES = [Percentage(4, 100), Percentage(50, 200), Percentage(1, 10), Percentage(15, 40)]
HISTOGRAMS = [{"41.00": 98, "41.10": 2}, {"41.00": 98, "41.10": 2},
              {"41.10": 96, "41.20": 3, "50.0": 1}]  # histogram-rtt, 600 s apart


def _points(values: list[Any], interval: int) -> list[tuple[int, Any]]:
    return [(START + i * interval, v) for i, v in enumerate(values)]


@pytest.mark.parametrize(("data_type", "summary", "values", "interval", "expected"), [
    ("integer", "average", INTEGERS, 7200, 6575755000.0),
    ("integer", "aggregation", INTEGERS, 7200, 26303020000.0),
    ("float", "average", FLOATS, 60, 0.002),
    ("float", "aggregation", FLOATS, 60, 0.01),
    ("percentage", "aggregation", PERCENTAGES, 60, 70 / 350),
])
def test_esmond_expected_numeric_summaries(data_type: DataType, summary: SummaryType,
                                           values: list[Any], interval: int,
                                           expected: float) -> None:
    """Daily summaries equal test_api.py's expectations (floats within 1e-12: exact math,
    where esmond kept 4 decimals)."""
    result = summarize(data_type, summary, 86400, _points(values, interval))
    assert [ts for ts, _ in result] == [DAY]
    assert result[0][1] == pytest.approx(expected, rel=1e-12)


def test_esmond_expected_histogram_aggregation_and_statistics() -> None:
    """The daily histogram aggregation merges every point; its statistics are esmond's.

    esmond's test expects ``{41.00: 98, 41.10: 98, 41.20: 3, 50.0: 1}`` because it lost
    the middle histogram of its bulk PUT (reference §3.7); the correct merge keeps all
    three (docs/decisions_esmond.md). The statistics esmond expects are those of the
    histogram its test ended with, and they match exactly here.
    """
    merged = summarize("histogram", "aggregation", 86400, _points(HISTOGRAMS, 600))
    assert merged == [(DAY, {"41.00": 196, "41.10": 100, "41.20": 3, "50.0": 1})]
    esmond_histogram = {"41.00": 98, "41.10": 98, "41.20": 3, "50.0": 1}
    stats = histogram_statistics(esmond_histogram)
    assert set(stats) == set(STATISTICS_KEYS)
    assert {k: v for k, v in stats.items() if k != "mode"} == {
        "standard-deviation": 0.6333174559413313, "median": 41.1, "maximum": 50.0,
        "minimum": 41.0, "percentile-75": 41.1, "percentile-25": 41.0, "percentile-95": 41.1,
        "variance": 0.40109100000000003, "mean": 41.097,
    }
    assert set(stats["mode"]) == {41.1, 41.0}


@pytest.mark.parametrize(("histogram", "expected"), [
    ({"41.00": 98, "41.10": 2}, {
        "minimum": 41.0, "maximum": 41.1, "mean": 41.002, "median": 41.0, "mode": [41.0],
        "percentile-25": 41.0, "percentile-75": 41.0, "percentile-95": 41.0,
        "variance": 0.000196, "standard-deviation": 0.014}),
    ({"10": 600}, {
        "minimum": 10.0, "maximum": 10.0, "mean": 10.0, "median": 10.0, "mode": [10.0],
        "percentile-25": 10.0, "percentile-75": 10.0, "percentile-95": 10.0,
        "variance": 0.0, "standard-deviation": 0.0}),
    ({"9": 114, "10": 486}, {  # the last histogram-ttl point of esmond's test data
        "minimum": 9.0, "maximum": 10.0, "mean": 9.81, "median": 10.0, "mode": [10.0],
        "percentile-25": 10.0, "percentile-75": 10.0, "percentile-95": 10.0,
        "variance": 0.1539, "standard-deviation": math.sqrt(0.1539)}),
    ({"1": 1, "2": 1, "3": 1, "4": 1}, {
        "minimum": 1.0, "maximum": 4.0, "mean": 2.5, "median": 2.5, "mode": [1.0, 2.0, 3.0, 4.0],
        "percentile-25": 1.25, "percentile-75": 3.75, "percentile-95": 4.0,
        "variance": 1.25, "standard-deviation": math.sqrt(1.25)}),
])
def test_histogram_statistics(histogram: dict[str, int], expected: dict[str, Any]) -> None:
    """Statistics of single histograms, by hand with the (N+1)p percentile rule."""
    stats = histogram_statistics(histogram)
    assert set(stats) == set(expected)
    for key, value in expected.items():
        if key == "mode":
            assert sorted(stats[key]) == value
        else:
            assert stats[key] == pytest.approx(value, rel=1e-9, abs=1e-12), key


@pytest.mark.parametrize("histogram", [
    {"test": 100},  # esmond's test posts this and expects {}
    {"41.0": 1, "fast": 2},
    {"41.0": 0},  # no samples: esmond divided by zero
])
def test_statistics_of_unusable_histograms_are_empty(histogram: dict[str, int]) -> None:
    """A non-numeric bucket label, or no samples at all, gives ``{}``."""
    assert histogram_statistics(histogram) == {}


@pytest.mark.parametrize(("buckets", "p", "expected"), [
    # esmond's test_validator_edge_cases, as its statistics loop calls the helper
    ([(100.0, 1)], 40, 100.0),  # k = 0: the smallest
    ([(101.0, 9)], 95, 101.0),  # k >= N: the largest
    ([(100.0, 4), (101.0, 6)], 95, 101.0),  # r = 10.45 >= N = 10
    # interpolation between samples: N = 10, p = 50: r = 5.5 -> x5 + .5 (x6 - x5)
    ([(1.0, 5), (3.0, 5)], 50, 2.0),
    ([(1.0, 4), (2.0, 2), (3.0, 4)], 50, 2.0),
    ([(1.0, 1), (2.0, 1), (3.0, 1), (4.0, 1)], 25, 1.25),
    ([(1.0, 1), (2.0, 1), (3.0, 1), (4.0, 1), (5.0, 1), (6.0, 1), (7.0, 1), (8.0, 1),
      (9.0, 1), (10.0, 1)], 95, 10.0),
    ([(1.0, 19), (2.0, 1)], 95, 1.95),  # r = 19.95 -> x19 + .95 (x20 - x19)
])
def test_percentile_rule(buckets: list[tuple[float, int]], p: float, expected: float) -> None:
    """NIST's (N+1)p rule with esmond's ends (reference §3.5)."""
    assert percentile(buckets, p) == pytest.approx(expected)


@pytest.mark.parametrize(("data_type", "summary", "values", "state"), [
    ("integer", "aggregation", [3, 4], 7.0),
    ("integer", "average", [3, 4], Mean(7.0, 2)),
    ("float", "average", [0.5], Mean(0.5, 1)),
    ("percentage", "aggregation", [Percentage(1, 10), Percentage(2, 30)], Ratio(3, 40)),
    ("histogram", "aggregation", [{"1": 1}, {"1": 2, "2": 1}], {"1": 3, "2": 1}),
])
def test_fold(data_type: DataType, summary: SummaryType, values: list[Any],
              state: Any) -> None:
    """Folding points one by one gives the bin's state; ``served`` gives its value."""
    folded = None
    for value in values:
        folded = fold(data_type, summary, folded, value)
    assert folded == state
    assert folded is not None
    if isinstance(state, Mean | Ratio):
        assert served(data_type, summary, folded) == state.value


def test_fold_refuses_types_without_summaries() -> None:
    """json and subinterval values have no summaries."""
    with pytest.raises(ValueError, match="no summaries"):
        fold("json", "aggregation", None, {})


def test_unfold_removes_a_replaced_histogram() -> None:
    """Taking a part back out of a merge gives the merge of the other parts."""
    parts = [{"1": 2, "2": 1}, {"2": 3, "5": 1}, {"1": 1}]
    merged: dict[str, int] = {}
    for part in parts:
        merged = merge_histograms(merged, part)
    assert unfold_histogram(merged, parts[1]) == merge_histograms(parts[0], parts[2])
    assert unfold_histogram({"1": 1}, {"1": 1}) == {}


def test_summarize_bins_by_window() -> None:
    """Points are grouped per bin and bins come out ascending."""
    points = [(100, 1), (3599, 2), (3600, 3), (7300, 4), (10, 5)]
    assert summarize("integer", "aggregation", 3600, points) == [
        (0, 8.0), (3600, 3.0), (7200, 4.0)]
    assert summarize("histogram", "statistics", 0, [(5, {"1": 1})])[0][1]["mean"] == 1.0
