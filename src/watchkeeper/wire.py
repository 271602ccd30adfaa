"""The JSON shapes of the native REST API (``/api/v1``), shared by server and client.

Only msgspec and the standard library here, so ``watchkeeper.client`` installs
without server dependencies and both sides always agree.
"""

from __future__ import annotations

import msgspec

WIRE_VERSION = 1


class WirePoint(msgspec.Struct, frozen=True, array_like=True):
    """One point in a write batch, sent as ``[series, ts, value]``.

    ``value`` is a number or a histogram ``{"bucket": count}``.
    """

    series: str
    ts: float
    value: float | dict[str, int]


class WriteBatch(msgspec.Struct, frozen=True, kw_only=True):
    """``POST /api/v1/write``: points, plus optional units by series."""

    points: list[WirePoint]
    units: dict[str, str] = msgspec.field(default_factory=dict)


class WriteResult(msgspec.Struct, frozen=True, kw_only=True):
    written: int


class SeriesInfo(msgspec.Struct, frozen=True, kw_only=True):
    """What the archive knows about a series."""

    series: str
    subject: str
    plugin: str
    metric: str
    labels: dict[str, str]
    unit: str
    kind: str
    first_ts: float | None
    last_ts: float | None


class SeriesList(msgspec.Struct, frozen=True, kw_only=True):
    """``GET /api/v1/series``."""

    series: list[SeriesInfo]
    total: int


class QueryResult(msgspec.Struct, frozen=True, kw_only=True):
    """``GET /api/v1/query``: points as ``[ts, value]``; with ``step``, one per bucket."""

    series: str
    unit: str
    start: float
    end: float
    step: float | None
    agg: str | None
    points: list[tuple[float, float | dict[str, int] | None]]


class DeleteResult(msgspec.Struct, frozen=True, kw_only=True):
    deleted: int


class Health(msgspec.Struct, frozen=True, kw_only=True):
    status: str
    version: str


class ErrorBody(msgspec.Struct, frozen=True, kw_only=True):
    """Every error response, in esmond's ``{"detail": ...}`` form."""

    detail: str
