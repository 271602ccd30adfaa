"""Drop-in replacement for ``esmond_client.perfsonar.query`` and ``.post`` on Python 3.

Existing scripts run by changing only the import line::

    from watchkeeper.client.esmond import ApiConnect, ApiFilters
    from watchkeeper.client.esmond import MetadataPost, EventTypePost, EventTypeBulkPost

The classes send the same requests as esmond-client 4.2.1 (method, path, query, JSON
body, ``Authorization: Token <key>`` only when both username and key are given) and keep
its behaviour: a failed query warns (``ApiConnectWarning``, ``EventTypeWarning``) and
yields nothing; a failed post raises ``MetadataPostException``,
``EventTypePostException`` or ``EventTypeBulkPostException``, here with the server's
``detail`` in the message and in ``.detail``/``.status``. Differences, all on purpose:
connection failures are retried before giving up; ``ApiConnect`` no longer shares one
default ``ApiFilters`` between instances; a data page that ends exactly at ``time-end``
is not dropped; every class accepts ``transport=`` (an httpx transport) for tests.
The modern, typed client is :class:`watchkeeper.client.ArchiveClient`.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import httpx

from watchkeeper.client._archive import ArchiveClient
from watchkeeper.client._archive_core import DATA_PAGE, decode_metadata_page, error_detail
from watchkeeper.client._archive_models import (
    DataHistogram,
    DataPayload,
    DataPoint,
    EventType,
    Metadata,
    Summary,
    _Binding,
)
from watchkeeper.errors import ClientError, TransportError

__all__ = [
    "ApiConnect",
    "ApiConnectWarning",
    "ApiFilters",
    "ApiFiltersWarning",
    "DataHistogram",
    "DataPayload",
    "DataPoint",
    "EventType",
    "EventTypeBulkPost",
    "EventTypeBulkPostException",
    "EventTypePost",
    "EventTypePostException",
    "EventTypePostWarning",
    "EventTypeWarning",
    "Metadata",
    "MetadataPost",
    "MetadataPostException",
    "MetadataPostWarning",
    "PostException",
    "QueryLimitException",
    "Summary",
]


class NodeInfoWarning(Warning):
    """A query result could not be fetched."""


class MetadataWarning(NodeInfoWarning):
    pass


class EventTypeWarning(NodeInfoWarning):
    pass


class SummaryWarning(NodeInfoWarning):
    pass


class ApiFiltersWarning(Warning):
    pass


class ApiConnectWarning(Warning):
    pass


class MetadataPostWarning(Warning):
    pass


class EventTypePostWarning(Warning):
    pass


class EventTypeBulkPostWarning(Warning):
    pass


class QueryLimitException(ClientError):
    """A data page could not be fetched."""


class PostException(ClientError):
    """A post failed; ``value`` is the message, ``status``/``detail`` the server's answer."""

    def __init__(self, value: str, *, status: int | None = None, detail: str | None = None):
        self.value = value
        self.status = status
        self.detail = detail
        super().__init__(value)


class MetadataPostException(PostException):
    pass


class EventTypePostException(PostException):
    pass


class EventTypeBulkPostException(PostException):
    pass


def _time_value(value: Any) -> int | None:
    try:
        return int(float(value))
    except (TypeError, ValueError):
        warnings.warn(f"The timestamp value {value} is not a valid integer", ApiFiltersWarning,
                      stacklevel=3)
        return None


def _filter(key: str, *, time: bool = False) -> property:
    store = "_time_filters" if time else "_metadata_filters"

    def fget(self: ApiFilters) -> Any:
        return getattr(self, store).get(key)

    def fset(self: ApiFilters, value: Any) -> None:
        getattr(self, store)[key] = _time_value(value) if time else value

    def fdel(self: ApiFilters) -> None:
        del getattr(self, store)[key]

    return property(fget, fset, fdel, f"The ``{key}`` filter.")


class ApiFilters:
    """Query options: metadata filters and time filters (underscore names for dashed keys)."""

    metadata_key = _filter("metadata-key")
    destination = _filter("destination")
    input_destination = _filter("input-destination")
    input_source = _filter("input-source")
    measurement_agent = _filter("measurement-agent")
    source = _filter("source")
    tool_name = _filter("tool-name")
    event_type = _filter("event-type")
    subject_type = _filter("subject-type")
    summary_type = _filter("summary-type")
    summary_window = _filter("summary-window")
    time = _filter("time", time=True)
    time_start = _filter("time-start", time=True)
    time_end = _filter("time-end", time=True)
    time_range = _filter("time-range", time=True)

    def __init__(self) -> None:
        self.verbose: bool | int = False
        self._metadata_filters: dict[str, Any] = {}
        self._time_filters: dict[str, int | None] = {}
        self.auth_username = ""
        self.auth_apikey = ""
        self.ssl_verify = True
        self.timeout: float | None = 20

    @property
    def metadata_filters(self) -> dict[str, Any]:
        return self._metadata_filters

    @property
    def time_filters(self) -> dict[str, int | None]:
        return self._time_filters

    def warn(self, msg: str) -> None:
        warnings.warn(msg, ApiFiltersWarning, stacklevel=2)


def _token(username: str | None, api_key: str | None) -> str | None:
    return api_key if username and api_key else None


class _Borrowed(httpx.BaseTransport):
    """A caller's transport used by a short-lived client without being closed by it."""

    def __init__(self, inner: httpx.BaseTransport) -> None:
        self._inner = inner

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        return self._inner.handle_request(request)

    def close(self) -> None:
        return None


def _client_for(api_url: str, filters: ApiFilters, script_alias: str | None,
                transport: httpx.BaseTransport | None) -> ArchiveClient:
    return ArchiveClient(api_url, token=_token(filters.auth_username, filters.auth_apikey),
                         script_alias=script_alias, timeout=filters.timeout,
                         verify=filters.ssl_verify, page_size=DATA_PAGE,
                         transport=_Borrowed(transport) if transport is not None else None)


class _CompatFetcher:
    """Fetches data like esmond-client: 1000-point pages; on failure a warning, no data.

    Each fetch opens its own connection and closes it, as ``requests.get`` did.
    """

    is_async = False

    def __init__(self, api_url: str, filters: ApiFilters, script_alias: str | None,
                 transport: httpx.BaseTransport | None) -> None:
        self._args = (api_url, filters, script_alias, transport)
        self._filters = filters

    def _fetch_payload(self, uri: str, data_type: str,
                       time_filters: Mapping[str, int]) -> DataPayload:
        live = {k: v for k, v in self._filters.time_filters.items() if v is not None}
        with _client_for(*self._args) as client:
            try:
                return client.get_data(uri, data_type, **{**live, **time_filters})
            except TransportError:
                raise
            except ClientError as exc:
                warnings.warn(f"Request for {uri} failed: {exc}", EventTypeWarning,
                              stacklevel=4)
                return DataPayload([], data_type)


class ApiConnect:
    """Finds metadata on an archive: ``get_metadata()`` yields :class:`Metadata` objects."""

    def __init__(self, api_url: str, filters: ApiFilters | None = None, username: str = "",
                 api_key: str = "", script_alias: str | None = "esmond", *,
                 transport: httpx.BaseTransport | None = None) -> None:
        self.api_url = api_url.rstrip("/")
        self.filters = filters if filters is not None else ApiFilters()
        self.filters.auth_username = username
        self.filters.auth_apikey = api_key
        self.script_alias = script_alias
        self._transport = transport

    def get_metadata(self) -> Iterator[Metadata]:
        """Metadata matching the filters, all pages; on failure a warning and nothing."""
        params = {k: v for k, v in {**self.filters.metadata_filters,
                                    **self.filters.time_filters}.items() if v is not None}
        with _client_for(self.api_url, self.filters, self.script_alias,
                         self._transport) as client:
            data = self._all_pages(client, params)
        binding = _Binding(_CompatFetcher(self.api_url, self.filters, self.script_alias,
                                          self._transport), {})
        for item in data or []:
            yield _metadata(item, binding, self)

    def _all_pages(self, client: ArchiveClient,
                   params: dict[str, Any]) -> list[dict[str, Any]] | None:
        first = self._page(client, params)
        if first is None:
            return None
        total = first[0].get("metadata-count-total") if first else 0
        total = total if isinstance(total, int) else 0
        data, step = list(first), len(first)
        offset = step
        while len(data) < total and offset < total and step:
            page = self._page(client, {**params, "offset": offset})
            if page is None:
                return None
            data.extend(page)
            offset += step
        return data

    def _page(self, client: ArchiveClient, params: dict[str, Any]) -> list[dict[str, Any]] | None:
        if self.filters.verbose:
            print(f"[url: {client.root} {params}]")  # noqa: T201 - esmond's verbose mode
        try:
            return decode_metadata_page(client.request("GET", client.root, params=params))
        except TransportError:
            raise
        except ClientError as exc:
            warnings.warn(f"Request for {client.origin}{client.root} failed: {exc}",
                          ApiConnectWarning, stacklevel=4)
            return None

    def warn(self, msg: str) -> None:
        warnings.warn(msg, ApiConnectWarning, stacklevel=2)


def _metadata(item: dict[str, Any], binding: _Binding, conn: ApiConnect) -> Metadata:
    meta = _CompatMetadata(item, binding)
    meta.filters = conn.filters
    meta.api_url = conn.api_url
    return meta


class _CompatMetadata(Metadata):
    """esmond's Metadata also carries ``filters`` and ``api_url``."""

    filters: ApiFilters
    api_url: str


class _PostBase:
    wrn: type[Warning] = Warning
    exc: type[PostException] = PostException

    def __init__(self, api_url: str, username: str | None,  # noqa: PLR0917 - esmond's
                 api_key: str | None,
                 script_alias: str | None, ssl_verify: bool = True,
                 timeout: float | None = 20,
                 transport: httpx.BaseTransport | None = None) -> None:
        self.api_url = api_url.rstrip("/") if api_url else api_url
        self.username = username
        self.api_key = api_key
        self.script_alias = script_alias
        self.ssl_verify = ssl_verify
        self.timeout = timeout
        self._transport = transport
        if not (username and api_key):
            self.warn("username and api_key not set")

    def warn(self, msg: str) -> None:
        warnings.warn(msg, self.wrn, stacklevel=3)

    def ex(self, msg: str, **kwargs: Any) -> PostException:
        return self.exc(msg, **kwargs)

    def _client(self) -> ArchiveClient:
        transport = _Borrowed(self._transport) if self._transport is not None else None
        return ArchiveClient(self.api_url, token=_token(self.username, self.api_key),
                             script_alias=self.script_alias, timeout=self.timeout,
                             verify=self.ssl_verify, transport=transport)

    def _send(self, client: ArchiveClient, method: str, url: str,
              payload: Any) -> httpx.Response:
        try:
            response = client.request(method, url, content=json.dumps(payload).encode(),
                                       headers={"content-type": "application/json"})
        except TransportError as exc:
            raise self.ex(f"POST connection error: {exc}") from exc
        if response.status_code != 201:
            detail = error_detail(response)
            raise self.ex(f"POST error: status_code: {response.status_code}, message: {detail}",
                          status=response.status_code, detail=detail)
        return response


class MetadataPost(_PostBase):
    """Registers a metadata: subject, event types with summaries, free-form keys."""

    wrn = MetadataPostWarning
    exc = MetadataPostException
    _required_args = ("subject_type", "source", "destination", "tool_name",
                      "measurement_agent", "input_source", "input_destination")
    _optional_args = ("time_duration", "ip_transport_protocol")

    def __init__(self, api_url: str, username: str = "",  # noqa: PLR0917 - esmond's
                 api_key: str = "", subject_type: str | None = None, source: str | None = None,
                 destination: str | None = None, tool_name: str | None = None,
                 measurement_agent: str | None = None, input_source: str | None = None,
                 input_destination: str | None = None, time_duration: Any = None,
                 ip_transport_protocol: str | None = None, script_alias: str | None = "esmond",
                 ssl_verify: bool = True, timeout: float | None = 20, *,
                 transport: httpx.BaseTransport | None = None) -> None:
        super().__init__(api_url, username, api_key, script_alias, ssl_verify, timeout,
                         transport)
        self.subject_type = subject_type
        self.source = source
        self.destination = destination
        self.tool_name = tool_name
        self.measurement_agent = measurement_agent
        self.input_source = input_source
        self.input_destination = input_destination
        self.time_duration = time_duration
        self.ip_transport_protocol = ip_transport_protocol
        self._payload: dict[str, Any] = {
            "subject-type": subject_type, "source": source, "destination": destination,
            "tool-name": tool_name, "measurement-agent": measurement_agent,
            "input-source": input_source, "input-destination": input_destination,
            "time-duration": time_duration, "ip-transport-protocol": ip_transport_protocol,
            "event-types": [],
        }

    def add_event_type(self, etype: str) -> None:
        if any(e.get("event-type") == etype for e in self._payload["event-types"]):
            self.warn(f"Event type {etype} already exists - skipping")
        self._payload["event-types"].append({"event-type": etype, "summaries": []})

    def add_summary_type(self, etype: str, stype: str, windows: Sequence[Any] = ()) -> None:
        if not windows:
            self.warn("No summary windows were defined - skipping")
            return
        for window in windows:
            try:
                int(window)
            except (TypeError, ValueError):
                raise MetadataPostException(f"Invalid summary window int: {window}") from None
        new = [{"summary-type": stype, "summary-window": w} for w in windows]
        for existing in self._payload["event-types"]:
            if existing.get("event-type") == etype:
                kept = [s for s in existing["summaries"] if s["summary-type"] != stype]
                existing["summaries"] = new + kept
                return
        self._payload["event-types"].append({"event-type": etype, "summaries": new})

    def add_freeform_key_value(self, k: str, v: Any) -> None:
        if not self._payload.get(k):
            self._payload[k] = v
        else:
            self.warn(f"Payload key {k} exists - skipping")

    def _validate(self) -> None:
        for arg in self._required_args:
            if not getattr(self, arg):
                raise MetadataPostException(f"Reqired arg {arg} not set")
        for arg in self._optional_args:
            if not getattr(self, arg):
                self._payload.pop(arg.replace("_", "-"), None)

    def json_payload(self, pp: bool = False) -> str:
        self._validate()
        return json.dumps(self._payload, indent=4 if pp else None)

    def post_metadata(self) -> Metadata:
        """POST the metadata; returns it (with its ``metadata_key``) or raises."""
        self._validate()
        with self._client() as client:
            response = self._send(client, "POST", client.root, self._payload)
        try:
            body = json.loads(response.content)
        except ValueError:
            raise self.ex(f"POST answer is not JSON: {response.text[:200]}") from None
        filters = ApiFilters()
        if self.username and self.api_key:
            filters.auth_username = self.username
            filters.auth_apikey = self.api_key
        conn = ApiConnect(self.api_url, filters, self.username or "", self.api_key or "",
                          self.script_alias, transport=self._transport)
        fetcher = _CompatFetcher(self.api_url, filters, self.script_alias, self._transport)
        return _metadata(body, _Binding(fetcher, {}), conn)


class EventTypePost(_PostBase):
    """Writes points of one event type, one ``POST`` per point."""

    wrn = EventTypePostWarning
    exc = EventTypePostException

    def __init__(self, api_url: str, username: str = "",  # noqa: PLR0917 - esmond's
                 api_key: str = "", metadata_key: str | None = None, event_type: str | None = None,
                 script_alias: str | None = "esmond", ssl_verify: bool = True,
                 timeout: float | None = 20, *,
                 transport: httpx.BaseTransport | None = None) -> None:
        super().__init__(api_url, username, api_key, script_alias, ssl_verify, timeout,
                         transport)
        self.metadata_key = metadata_key
        self.event_type = event_type
        if not metadata_key or not event_type:
            raise EventTypePostException("Must set metadata_key and event_type args")
        self._payload: list[dict[str, Any]] = []

    def add_data_point(self, ts: int, val: Any) -> None:
        if isinstance(ts, bool) or not isinstance(ts, int):
            raise EventTypePostException("ts arg must be an integer")
        self._payload.append({"ts": ts, "val": val})

    def json_payload(self, pp: bool = False) -> str:
        return json.dumps(self._payload, indent=4 if pp else None)

    def post_data(self) -> None:
        """POST every point; raises on the first one not answered 201."""
        assert self.metadata_key
        assert self.event_type
        with self._client() as client:
            url = client.point_url(self.metadata_key, self.event_type)
            for point in self._payload:
                self._send(client, "POST", url, point)


class EventTypeBulkPost(_PostBase):
    """Writes points of many event types of one metadata in one ``PUT``."""

    wrn = EventTypePostWarning
    exc = EventTypeBulkPostException

    def __init__(self, api_url: str, username: str = "",  # noqa: PLR0917 - esmond's
                 api_key: str = "", metadata_key: str | None = None,
                 script_alias: str | None = "esmond", ssl_verify: bool = True,
                 timeout: float | None = 20, *,
                 transport: httpx.BaseTransport | None = None) -> None:
        super().__init__(api_url, username, api_key, script_alias, ssl_verify, timeout,
                         transport)
        self.metadata_key = metadata_key
        if not metadata_key:
            raise EventTypeBulkPostException("Must set metadata_key")
        self._payload: dict[str, list[dict[str, Any]]] = {"data": []}

    def add_data_point(self, event_type: str, ts: int, val: Any) -> None:
        if isinstance(ts, bool) or not isinstance(ts, int):
            raise EventTypeBulkPostException("ts arg must be an integer")
        for entry in self._payload["data"]:
            if entry["ts"] == ts:
                break
        else:
            entry = {"ts": ts, "val": []}
            self._payload["data"].append(entry)
        entry["val"].append({"event-type": event_type, "val": val})

    def json_payload(self, pp: bool = False) -> str:
        return json.dumps(self._payload, indent=4 if pp else None)

    def post_data(self) -> None:
        """PUT all points; raises unless answered 201."""
        assert self.metadata_key
        with self._client() as client:
            self._send(client, "PUT", client.metadata_url(self.metadata_key), self._payload)
