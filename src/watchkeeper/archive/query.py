"""Reading a series for a time range, raw or rolled up into buckets."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from watchkeeper.archive.abc import Archive, Points
from watchkeeper.archive.rollup import AGGREGATIONS, bucketize, bucketize_histograms
from watchkeeper.errors import InvalidData
from watchkeeper.model import SeriesKey

Value = float | dict[str, int] | Any | None  # a number, a histogram or an object


@dataclass(frozen=True)
class QueryOutput:
    """Points of one series: raw, or one per ``step`` bucket aggregated by ``agg``.

    Numbers stay arrays (``values`` beside ``ts``), so an API can encode them without
    a Python object per point; histograms and objects are a list, one per timestamp.
    """

    key: SeriesKey
    unit: str
    start: float
    end: float
    step: float | None
    agg: str | None
    ts: npt.NDArray[np.float64]
    values: npt.NDArray[np.float64] | list[Value]

    def rows(self) -> list[tuple[float, Value]]:
        """The points as ``(ts, value)`` pairs."""
        values = self.values.tolist() if isinstance(self.values, np.ndarray) else self.values
        return list(zip(self.ts.tolist(), values, strict=True))


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
    ts, values = _rollup(points, start, end, step, agg or "avg") if step else _raw(points)
    return QueryOutput(key=key, unit=points.unit, start=start, end=end, step=step,
                       agg=(agg or "avg") if step else None, ts=ts, values=values)


Column = tuple[npt.NDArray[np.float64], npt.NDArray[np.float64] | list[Value]]


def _raw(points: Points) -> Column:
    if points.kind == "histogram":
        return points.ts, list(points.histograms)
    if points.kind == "object":
        return points.ts, list(points.objects)
    return points.ts, points.values


def _rollup(points: Points, start: float, end: float, step: float, agg: str) -> Column:
    if points.kind == "histogram":
        hist_ts, merged = bucketize_histograms(points.ts, points.histograms, start=start,
                                               end=end, step=step)
        return hist_ts, list(merged)
    return bucketize(points.ts, points.values, start=start, end=end, step=step, agg=agg)
