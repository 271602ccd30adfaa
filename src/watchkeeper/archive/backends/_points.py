"""Read-side helpers shared by the backends: query bounds, decoding chunks, building Points."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any, Final

import msgspec
import numpy as np
import numpy.typing as npt

from watchkeeper.archive.abc import Kind, Points
from watchkeeper.archive.backends._head import latest
from watchkeeper.archive.chunkscan import decode_floats_many
from watchkeeper.archive.codec import HISTOGRAMS, JSON_VALUES, decode_objects_ms
from watchkeeper.errors import InvalidData

Int64Array = npt.NDArray[np.int64]
Values = npt.NDArray[Any]

_INT64_MIN: Final = int(np.iinfo(np.int64).min)
_INT64_MAX: Final = int(np.iinfo(np.int64).max)


def window_ms(start: float, end: float) -> tuple[int, int]:
    """Millisecond bounds wide enough for every stored point with ``start <= ts <= end``."""
    for name, bound in (("start", start), ("end", end)):
        if math.isnan(bound):
            raise InvalidData("must be a number", field=name, value=bound)
    return _to_ms(start, math.floor), _to_ms(end, math.ceil)


def _to_ms(seconds: float, rounding: Callable[[float], int]) -> int:
    if math.isinf(seconds):
        return _INT64_MAX if seconds > 0 else _INT64_MIN
    return min(max(rounding(seconds * 1000), _INT64_MIN), _INT64_MAX)


def decode_chunks(kind: Kind, blobs: Iterable[bytes]) -> tuple[Int64Array, Values]:
    """Concatenate chunks that are sorted and disjoint (as one series' chunks are)."""
    if kind == "float":  # all at once: per-chunk numpy calls would cost most of a read
        return decode_floats_many(list(blobs))
    ts_parts: list[Int64Array] = []
    value_parts: list[Values] = []
    values_type = HISTOGRAMS if kind == "histogram" else JSON_VALUES
    for blob in blobs:
        ts, objects = decode_objects_ms(blob, values_type)
        values = object_array(objects)
        ts_parts.append(ts)
        value_parts.append(values)
    if not ts_parts:
        return np.empty(0, dtype=np.int64), empty_values(kind)
    return np.concatenate(ts_parts), np.concatenate(value_parts)


def overlay(
    ts: Int64Array, values: Values, newer_ts: Int64Array, newer_values: Values
) -> tuple[Int64Array, Values]:
    """Sorted points of both runs; ``newer`` wins where both have a timestamp."""
    if not len(newer_ts):
        return ts, values
    if not len(ts):
        return newer_ts, newer_values
    if newer_ts[0] > ts[-1]:  # the usual case: the head continues the chunks
        return np.concatenate((ts, newer_ts)), np.concatenate((values, newer_values))
    return latest(np.concatenate((ts, newer_ts)), np.concatenate((values, newer_values)))


def to_points(kind: Kind, ts_ms: Int64Array, values: Values, start: float, end: float, *,
              unit: str) -> Points:
    """The points within ``[start, end]`` (compared in seconds, as callers see them)."""
    ts = ts_ms / 1000.0
    inside = (ts >= start) & (ts <= end)
    if not inside.all():
        ts, values = ts[inside], values[inside]
    if kind == "float":
        return Points(kind="float", ts=ts, values=values.astype(np.float64, copy=False),
                      unit=unit)
    # Copies: what the caller does with them must not reach the stored points.
    if kind == "histogram":
        return Points(kind="histogram", ts=ts, histograms=tuple(dict(h) for h in values.tolist()),
                      unit=unit)
    copies = msgspec.msgpack.decode(msgspec.msgpack.encode(values.tolist()))  # a deep copy
    return Points(kind="object", ts=ts, objects=tuple(copies), unit=unit)


def empty_values(kind: Kind) -> Values:
    return np.empty(0, dtype=np.float64 if kind == "float" else object)


def object_array(items: list[Any]) -> Values:
    """An object array of ``items`` (element-wise, so numpy never looks inside dicts)."""
    arr = np.empty(len(items), dtype=object)
    for i, item in enumerate(items):
        arr[i] = item
    return arr
