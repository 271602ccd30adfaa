"""Reading a series for a time range, raw or rolled up into buckets."""

from __future__ import annotations

from typing import Any

import msgspec

from watchkeeper.archive.abc import Archive, Points
from watchkeeper.archive.rollup import AGGREGATIONS, bucketize, bucketize_histograms
from watchkeeper.errors import InvalidData
from watchkeeper.model import SeriesKey

Value = float | dict[str, int] | Any | None  # a number, a histogram or an object


class QueryOutput(msgspec.Struct, frozen=True, kw_only=True):
    """Points of one series: raw, or one per ``step`` bucket aggregated by ``agg``."""

    key: SeriesKey
    start: float
    end: float
    step: float | None
    agg: str | None
    points: list[tuple[float, Value]]


async def query(
    archive: Archive,
    key: SeriesKey,
    *,
    start: float,
    end: float,
    step: float | None = None,
    agg: str | None = None,
) -> QueryOutput:
    """Read ``key`` over ``[start, end]``; with ``step``, aggregate into epoch-aligned buckets."""
    if end < start:
        raise InvalidData("end is before start", field="end", value=end)
    if step is not None and step <= 0:
        raise InvalidData("must be positive", field="step", value=step)
    if agg is not None and agg not in AGGREGATIONS:
        raise InvalidData(f"must be one of {', '.join(AGGREGATIONS)}", field="agg", value=agg)
    points = await archive.read(key, start, end)
    if step and points.kind == "object":
        raise InvalidData(f"series {key} holds objects, which have no rollups", field="step",
                          value=step)
    rows = _rollup(points, start, end, step, agg or "avg") if step else _raw(points)
    return QueryOutput(key=key, start=start, end=end, step=step,
                       agg=(agg or "avg") if step else None, points=rows)


def _raw(points: Points) -> list[tuple[float, Value]]:
    if points.kind == "histogram":
        return list(zip(points.ts.tolist(), points.histograms, strict=True))
    if points.kind == "object":
        return list(zip(points.ts.tolist(), points.objects, strict=True))
    return list(zip(points.ts.tolist(), points.values.tolist(), strict=True))


def _rollup(points: Points, start: float, end: float, step: float,
            agg: str) -> list[tuple[float, Value]]:
    if points.kind == "histogram":
        hist_ts, merged = bucketize_histograms(points.ts, points.histograms, start=start,
                                               end=end, step=step)
        return list(zip(hist_ts.tolist(), merged, strict=True))
    bucket_ts, values = bucketize(points.ts, points.values, start=start, end=end,
                                  step=step, agg=agg)
    return list(zip(bucket_ts.tolist(), values.tolist(), strict=True))
