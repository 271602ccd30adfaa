"""Typed results of the esmond (perfSONAR archive) API, with esmond-client's property names.

``Metadata``, ``EventType``, ``Summary``, ``DataPayload``, ``DataPoint`` and
``DataHistogram`` read the JSON the server sent; they expose the same properties as
``esmond_client.perfsonar.query`` (``metadata_key``, ``event_types``,
``get_event_type()``, ``get_all_event_types()``, ``get_summary(type, window)``,
``get_data()``, ``ts``, ``val``, ``ts_epoch``) so users find what they know.

Objects that came from a client are *bound* to it: ``get_data()`` fetches through the
synchronous :class:`~watchkeeper.client.ArchiveClient`, ``aget_data()`` through the
:class:`~watchkeeper.client.AsyncArchiveClient`, with the time filters of the metadata
query unless others are given.
"""

from __future__ import annotations

import calendar
import importlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

import msgspec

if TYPE_CHECKING:
    from collections.abc import Awaitable

# esmond-client clamps timestamps beyond this to it (datetime.max minus two days).
MAX_DATETIME = datetime.max - timedelta(days=2)  # noqa: DTZ901 - esmond's naive UTC
MAX_EPOCH = calendar.timegm(MAX_DATETIME.utctimetuple())

# Summary names as they appear in URLs (plural) by their JSON names.
SUMMARY_URL_NAMES = {"aggregation": "aggregations", "average": "averages",
                     "statistics": "statistics", "base": "base"}


class WirePoint(msgspec.Struct, frozen=True):
    """One ``{"ts": <int>, "val": <value>}`` of a time series response."""

    ts: int
    val: Any


def data_type_of(event_type: str | None) -> str:
    """``'histogram'`` for ``histogram-*`` event types, else ``'unspecified'`` (as esmond)."""
    if event_type is not None and event_type.startswith("histogram-"):
        return "histogram"
    return "unspecified"


def utc_naive(ts_epoch: int) -> datetime:
    """Naive UTC datetime of ``ts_epoch``, clamped like esmond-client."""
    if ts_epoch > MAX_EPOCH:
        return MAX_DATETIME
    return datetime.fromtimestamp(ts_epoch, tz=UTC).replace(tzinfo=None)


class _Fetcher(Protocol):
    """What a bound result needs from its client (sync or async)."""

    is_async: bool

    def _fetch_payload(self, uri: str, data_type: str,
                       time_filters: Mapping[str, int]) -> DataPayload | Awaitable[DataPayload]:
        ...


@dataclass(frozen=True, slots=True)
class _Binding:
    fetcher: _Fetcher | None = None
    time_filters: Mapping[str, int] = field(default_factory=dict)

    def fetch(self, uri: str | None, data_type: str,
              overrides: Mapping[str, int | None]) -> DataPayload:
        fetcher = self._require(want_async=False)
        if uri is None:
            return DataPayload([], data_type)
        result = fetcher._fetch_payload(uri, data_type, self._filters(overrides))
        assert isinstance(result, DataPayload)
        return result

    async def afetch(self, uri: str | None, data_type: str,
                     overrides: Mapping[str, int | None]) -> DataPayload:
        fetcher = self._require(want_async=True)
        if uri is None:
            return DataPayload([], data_type)
        result = fetcher._fetch_payload(uri, data_type, self._filters(overrides))
        assert not isinstance(result, DataPayload)
        return await result

    def _filters(self, overrides: Mapping[str, int | None]) -> dict[str, int]:
        merged = dict(self.time_filters)
        for key, value in overrides.items():
            if value is not None:
                merged[key] = int(value)
        return merged

    def _require(self, *, want_async: bool) -> _Fetcher:
        if self.fetcher is None:
            raise RuntimeError("this result is not bound to a client: fetch it through one")
        if self.fetcher.is_async and not want_async:
            raise RuntimeError("bound to an AsyncArchiveClient: use 'await ...aget_data()'")
        if want_async and not self.fetcher.is_async:
            raise RuntimeError("bound to a synchronous ArchiveClient: use get_data()")
        return self.fetcher


_UNBOUND = _Binding()


def _time_overrides(time_start: int | None, time_end: int | None,
                    time: int | None, time_range: int | None) -> dict[str, int | None]:
    return {"time-start": time_start, "time-end": time_end, "time": time,
            "time-range": time_range}


class DataPoint:
    """One point: ``ts`` (naive UTC datetime, as esmond), ``ts_epoch`` and ``val``."""

    __slots__ = ("ts_epoch", "val")

    def __init__(self, ts_epoch: int, val: Any) -> None:
        self.ts_epoch = int(ts_epoch)
        self.val = val

    @property
    def ts(self) -> datetime:
        return utc_naive(self.ts_epoch)

    @property
    def time(self) -> datetime:
        """The timestamp as an aware UTC datetime."""
        return datetime.fromtimestamp(self.ts_epoch, tz=UTC)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, DataPoint):
            return NotImplemented
        return (self.ts_epoch, self.val) == (other.ts_epoch, other.val)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"<DataPoint: ts:{self.ts} val:{self.val}>"


class DataHistogram(DataPoint):
    """A histogram point: ``val`` is ``{bucket: count}``."""

    __slots__ = ()

    def __repr__(self) -> str:
        size = len(self.val) if isinstance(self.val, dict) else 0
        return f"<DataHistogram: ts:{self.ts} len:{size}>"


class DataPayload:
    """The points of one series: ``data`` (list of DataPoint or DataHistogram), ``data_type``."""

    def __init__(self, points: Sequence[WirePoint] | Sequence[Mapping[str, Any]] = (),
                 data_type: str | None = None) -> None:
        self._points: list[WirePoint | Mapping[str, Any]] = list(points)
        self.data_type = data_type

    @property
    def data(self) -> list[DataPoint]:
        kind = DataHistogram if self.data_type == "histogram" else DataPoint
        return [kind(*_ts_val(p)) for p in self._points]

    def __len__(self) -> int:
        return len(self._points)

    def __iter__(self) -> Iterator[DataPoint]:
        return iter(self.data)

    def to_records(self) -> list[dict[str, Any]]:
        """The raw ``{"ts", "val"}`` objects."""
        return [{"ts": ts, "val": val} for ts, val in map(_ts_val, self._points)]

    def to_pandas(self) -> Any:
        """A ``pandas.DataFrame`` with a UTC ``ts`` index and a ``val`` column."""
        try:
            pd: Any = importlib.import_module("pandas")
        except ImportError:
            raise ImportError("to_pandas() needs pandas: pip install pandas") from None
        records = self.to_records()
        frame = pd.DataFrame({"ts": pd.to_datetime([r["ts"] for r in records], unit="s",
                                                   utc=True),
                              "val": [r["val"] for r in records]})
        return frame.set_index("ts")

    def to_arrow(self) -> Any:
        """A ``pyarrow.Table`` with columns ``ts`` (timestamp[s, UTC]) and ``val``."""
        try:
            pa: Any = importlib.import_module("pyarrow")
        except ImportError:
            raise ImportError("to_arrow() needs pyarrow: pip install pyarrow") from None
        records = self.to_records()
        ts = pa.array([r["ts"] for r in records], type=pa.timestamp("s", tz="UTC"))
        return pa.table({"ts": ts, "val": pa.array([r["val"] for r in records])})

    def __repr__(self) -> str:
        return f"<DataPayload: len:{len(self._points)} type:{self.data_type}>"


def _ts_val(point: WirePoint | Mapping[str, Any]) -> tuple[int, Any]:
    if isinstance(point, WirePoint):
        return point.ts, point.val
    return int(point.get("ts", 0)), point.get("val")


class _Node:
    """Common base: the JSON object as received, and the client binding."""

    __slots__ = ("_binding", "_data")

    def __init__(self, data: Mapping[str, Any], binding: _Binding = _UNBOUND) -> None:
        self._data = dict(data)
        self._binding = binding

    @property
    def raw(self) -> dict[str, Any]:
        """The JSON object exactly as the server sent it."""
        return self._data

    def get(self, key: str, default: Any = None) -> Any:
        """Any key of the JSON object, by its hyphenated name."""
        return self._data.get(key, default)


class Summary(_Node):
    """A summary of an event type: ``summary_type``, ``summary_window``, ``uri``."""

    __slots__ = ("_data_type",)

    def __init__(self, data: Mapping[str, Any], binding: _Binding = _UNBOUND,
                 data_type: str = "unspecified") -> None:
        super().__init__(data, binding)
        self._data_type = data_type

    @property
    def data_type(self) -> str:
        return self._data_type

    @property
    def summary_type(self) -> str | None:
        return self._data.get("summary-type")

    @property
    def summary_window(self) -> str | None:
        return self._data.get("summary-window")

    @property
    def uri(self) -> str | None:
        return self._data.get("uri")

    @property
    def query_uri(self) -> str | None:
        return self.uri

    @property
    def time_updated(self) -> int | None:
        return self._data.get("time-updated")

    def get_data(self, *, time_start: int | None = None, time_end: int | None = None,
                 time: int | None = None, time_range: int | None = None) -> DataPayload:
        """Fetch the summary series (all pages)."""
        return self._binding.fetch(self.uri, self.data_type,
                                   _time_overrides(time_start, time_end, time, time_range))

    async def aget_data(self, *, time_start: int | None = None, time_end: int | None = None,
                        time: int | None = None, time_range: int | None = None) -> DataPayload:
        """Fetch the summary series (all pages) through an async client."""
        return await self._binding.afetch(self.uri, self.data_type,
                                          _time_overrides(time_start, time_end, time, time_range))

    def __repr__(self) -> str:
        return f"<Summary/{self.summary_type}: window:{self.summary_window}>"


class EventType(_Node):
    """One event type of a metadata: ``event_type``, ``base_uri``, ``summaries``."""

    __slots__ = ()

    @property
    def event_type(self) -> str | None:
        return self._data.get("event-type")

    @property
    def base_uri(self) -> str | None:
        return self._data.get("base-uri")

    @property
    def query_uri(self) -> str | None:
        return self.base_uri

    @property
    def time_updated(self) -> int | None:
        return self._data.get("time-updated")

    @property
    def data_type(self) -> str:
        return data_type_of(self.event_type)

    @property
    def summaries(self) -> list[tuple[str, str]]:
        """``(summary-type, summary-window)`` pairs as received."""
        return [(s.get("summary-type"), s.get("summary-window"))
                for s in self._data.get("summaries") or []]

    def get_all_summaries(self) -> Iterator[Summary]:
        for summary in self._data.get("summaries") or []:
            yield Summary(summary, self._binding, self.data_type)

    def get_summary(self, s_type: str, s_window: int | str) -> Summary | None:
        """The summary of that type and window (compared as text, as esmond), or None."""
        for summary in self._data.get("summaries") or []:
            if (summary.get("summary-type") == s_type
                    and str(summary.get("summary-window")) == str(s_window)):
                return Summary(summary, self._binding, self.data_type)
        return None

    def get_data(self, *, time_start: int | None = None, time_end: int | None = None,
                 time: int | None = None, time_range: int | None = None) -> DataPayload:
        """Fetch the base series (all pages)."""
        return self._binding.fetch(self.base_uri, self.data_type,
                                   _time_overrides(time_start, time_end, time, time_range))

    async def aget_data(self, *, time_start: int | None = None, time_end: int | None = None,
                        time: int | None = None, time_range: int | None = None) -> DataPayload:
        """Fetch the base series (all pages) through an async client."""
        return await self._binding.afetch(self.base_uri, self.data_type,
                                          _time_overrides(time_start, time_end, time, time_range))

    def __repr__(self) -> str:
        return f"<EventType/{self.event_type}: uri:{self.base_uri}>"


def _prop(key: str) -> property:
    def getter(self: _Node) -> Any:
        return self._data.get(key)

    getter.__doc__ = f"The metadata's ``{key}``."
    return property(getter)


class Metadata(_Node):
    """One metadata (a measurement: subject, tool, parameters, event types)."""

    __slots__ = ()

    destination = _prop("destination")
    input_destination = _prop("input-destination")
    input_source = _prop("input-source")
    ip_packet_interval = _prop("ip-packet-interval")
    ip_transport_protocol = _prop("ip-transport-protocol")
    measurement_agent = _prop("measurement-agent")
    metadata_count_total = _prop("metadata-count-total")
    metadata_key = _prop("metadata-key")
    sample_bucket_width = _prop("sample-bucket-width")
    source = _prop("source")
    subject_type = _prop("subject-type")
    time_duration = _prop("time-duration")
    time_interval = _prop("time-interval")
    time_interval_randomization = _prop("time-interval-randomization")
    tool_name = _prop("tool-name")
    uri = _prop("uri")
    url = _prop("url")

    @property
    def event_types(self) -> list[str]:
        """Names of the event types of this metadata."""
        return [e.get("event-type") for e in self._data.get("event-types") or []]

    def get_freeform_key_value(self, key: str) -> Any:
        """A free-form parameter (hyphenated name), or None."""
        return self._data.get(key)

    def get_all_event_types(self) -> Iterator[EventType]:
        for event_type in self._data.get("event-types") or []:
            yield EventType(event_type, self._binding)

    def get_event_type(self, event_type: str) -> EventType | None:
        for candidate in self._data.get("event-types") or []:
            if candidate.get("event-type") == event_type:
                return EventType(candidate, self._binding)
        return None

    def __repr__(self) -> str:
        return f"<Metadata/{self.metadata_key}: uri:{self.uri}>"


SUBJECT_FIELDS = ("source", "destination", "measurement-agent", "tool-name",
                  "input-source", "input-destination")


@dataclass(slots=True)
class NewMetadata:
    """A metadata to register (``POST`` to the archive root).

    ``event_types`` maps each event type to its summaries as ``(type, window)`` pairs;
    ``parameters`` are the free-form keys (sent as given, values as JSON).
    """

    subject_type: str = "point-to-point"
    source: str | None = None
    destination: str | None = None
    measurement_agent: str | None = None
    tool_name: str | None = None
    input_source: str | None = None
    input_destination: str | None = None
    event_types: dict[str, list[tuple[str, int]]] = field(default_factory=dict)
    parameters: dict[str, Any] = field(default_factory=dict)

    def add_event_type(self, event_type: str,
                       summaries: Sequence[tuple[str, int]] = ()) -> NewMetadata:
        self.event_types.setdefault(event_type, []).extend(summaries)
        return self

    def to_payload(self) -> dict[str, Any]:
        payload: dict[str, Any] = {"subject-type": self.subject_type}
        subject = {"source": self.source, "destination": self.destination,
                   "measurement-agent": self.measurement_agent, "tool-name": self.tool_name,
                   "input-source": self.input_source,
                   "input-destination": self.input_destination}
        payload.update({k: v for k, v in subject.items() if v is not None})
        payload.update(self.parameters)
        payload["event-types"] = [
            {"event-type": name,
             "summaries": [{"summary-type": t, "summary-window": int(w)} for t, w in sums]}
            for name, sums in self.event_types.items()]
        return payload


class BulkData:
    """Points for one bulk ``PUT``, grouped by timestamp in insertion order (as esmond)."""

    def __init__(self) -> None:
        self._by_ts: dict[int, list[dict[str, Any]]] = {}

    def add(self, event_type: str, ts: int, val: Any) -> BulkData:
        if isinstance(ts, bool) or not isinstance(ts, int):
            raise TypeError(f"ts must be an int, got {ts!r}")
        self._by_ts.setdefault(ts, []).append({"event-type": event_type, "val": val})
        return self

    def __len__(self) -> int:
        return sum(len(v) for v in self._by_ts.values())

    def __bool__(self) -> bool:
        return bool(self._by_ts)

    def to_payload(self) -> dict[str, Any]:
        return {"data": [{"ts": ts, "val": vals} for ts, vals in self._by_ts.items()]}
