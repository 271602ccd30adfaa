"""Checking posted values: esmond's coercions and error texts (reference §3.3, test_api)."""

from __future__ import annotations

from typing import Any

import pytest

from watchkeeper.archive.esmond.types import DataType
from watchkeeper.archive.esmond.values import MAX_TS, Percentage, coerce, timestamp
from watchkeeper.errors import InvalidData

W = "val of test at ts 1"


@pytest.mark.parametrize(("data_type", "posted", "stored"), [
    ("integer", 5978580000, 5978580000),
    ("integer", "8446270000", 8446270000),
    ("integer", 93923380.35881314, 93923380),  # esmond-ps-load-gridftp posts floats
    ("integer", -7.9, -7),  # int() truncates toward zero
    ("float", 0.001, 0.001),
    ("float", "0.29", 0.29),  # exact: esmond kept 4 decimals (0.2899)
    ("float", 3, 3.0),
    ("percentage", {"numerator": 4, "denominator": 100}, Percentage(4, 100)),
    ("percentage", {"numerator": "1", "denominator": "10"}, Percentage(1, 10)),
    ("histogram", {"41.00": 98, "41.10": "2"}, {"41.00": 98, "41.10": 2}),
    ("histogram", {"10": 600.0}, {"10": 600}),
    ("subinterval", [{"start": "0.0", "duration": 1, "val": None}],
     [{"start": "0.0", "duration": 1, "val": None}]),
    ("json", {"error": "error1"}, {"error": "error1"}),
    ("json", [3, 6], [3, 6]),
    ("json", "text", "text"),
])
def test_accepted_values(data_type: DataType, posted: Any, stored: Any) -> None:
    """Accepted values are coerced the way esmond's validators coerce them."""
    assert coerce(data_type, posted, where=W) == stored


@pytest.mark.parametrize(("data_type", "posted", "message"), [
    ("integer", "bad input", "Value must be an integer"),
    ("integer", "1.5", "Value must be an integer"),
    ("integer", True, "Value must be an integer"),
    ("integer", None, "Value must be an integer"),
    ("integer", 2**64, "Value must be an integer within"),
    ("float", "bad input", "Value must be a floating point number"),
    ("float", [1.0], "Value must be a floating point number"),
    ("float", "nan", "Value must be a finite floating point number"),
    ("float", 1e400, "Value must be a finite floating point number"),
    # the nine invalid percentages of esmond's test_percentage_data
    ("percentage", "bad input", "Missing required field 'numerator'"),
    ("percentage", {}, "Missing required field 'numerator'"),
    ("percentage", {"numerator": 10}, "Missing required field 'denominator'"),
    ("percentage", {"denominator": 10}, "Missing required field 'numerator'"),
    ("percentage", {"numerator": "bad", "denominator": "bad"},
     "The field 'numerator' must be an integer"),
    ("percentage", {"numerator": 10, "denominator": "bad"},
     "The field 'denominator' must be an integer"),
    ("percentage", {"numerator": 10, "denominator": 0},
     "The field 'denominator' must be greater than 0"),
    ("percentage", {"numerator": -1, "denominator": 10},
     "The field 'numerator' cannot be negative"),
    ("percentage", {"numerator": "bad", "denominator": 10},
     "The field 'numerator' must be an integer"),
    ("histogram", {"41.0": "bad", "42.2": 20}, "Value of histogram must be an integer"),
    ("histogram", {"41.0": -1}, "Value of histogram must be a count"),
    ("histogram", {}, "Invalid histogram provided: it has no buckets"),
    ("histogram", [1, 2], "Invalid histogram provided"),
    # the eight invalid subintervals of esmond's test_subinterval_data
    ("subinterval", "bad input", "Invalid subintervals provided"),
    ("subinterval", {}, "Invalid subintervals provided"),
    ("subinterval", [{}], "Interval must contain 'start' field at position 1"),
    ("subinterval", [{"duration": 1, "val": 1}], "Interval must contain 'start' field"),
    ("subinterval", [{"start": 1, "val": 1}], "Interval must contain 'duration' field"),
    ("subinterval", [{"duration": 1, "start": 1}], "Interval must contain 'val' field"),
    ("subinterval", [{"duration": "bad", "start": 1, "val": 1}],
     "Subinterval 'start' and 'duration' must be floating point numbers"),
    ("subinterval", [{"duration": 1, "start": "bad", "val": 1}],
     "Subinterval 'start' and 'duration' must be floating point numbers"),
    ("subinterval", [], "Empty subinterval provided"),
    ("json", None, "Value must be valid JSON other than null"),
])
def test_refused_values(data_type: DataType, posted: Any, message: str) -> None:
    """A refused value gets esmond's text, then where it was and what came."""
    with pytest.raises(InvalidData) as caught:
        coerce(data_type, posted, where=W)
    detail = str(caught.value)
    assert detail.startswith(message)
    assert f"({W}: got " in detail


@pytest.mark.parametrize(("posted", "stored"), [
    (1398965989, 1398965989),
    ("1398965989", 1398965989),
    (1398965989.9, 1398965989),  # fractional seconds are dropped
    (0, 0),
    (MAX_TS, MAX_TS),
])
def test_timestamps(posted: object, stored: int) -> None:
    """Timestamps are whole seconds, as esmond's ``long(ts)``."""
    assert timestamp(posted, where="ts") == stored


@pytest.mark.parametrize("posted", ["soon", None, True, -1, MAX_TS + 1, float("inf"), [1]])
def test_bad_timestamps(posted: object) -> None:
    """Non-numbers and times outside 0..9999-12-31 are refused."""
    with pytest.raises(InvalidData, match=r"^Time must be a unix timestamp"):
        timestamp(posted, where="ts of data item 1")
