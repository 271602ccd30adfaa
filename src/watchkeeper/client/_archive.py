"""Clients for the esmond (perfSONAR archive) API: :class:`ArchiveClient` and its async twin.

They talk to watchkeeper's esmond-compatible archive or to any esmond server::

    with ArchiveClient("http://ma.example.net", token="...") as archive:
        for meta in archive.metadata(source="10.0.0.1", event_type="throughput",
                                     time_start=t0, time_end=t1):
            for point in meta.get_event_type("throughput").get_data():
                print(point.ts, point.val)

Paging is transparent (as esmond-client does it). Connection failures are retried with
backoff; a 4xx/5xx answer raises :class:`~watchkeeper.errors.HTTPStatusError` carrying
the server's ``detail``; an unreachable server raises
:class:`~watchkeeper.errors.TransportError`. Pass ``transport=`` to run against an
app in-process.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator, Mapping
from typing import Any

import httpx
import msgspec

from watchkeeper.client._archive_core import (
    DATA_PAGE,
    DEFAULT_ALIAS,
    DataPager,
    MetadataPager,
    archive_path,
    backoff_delay,
    check,
    dashed,
    decode_json,
    decode_metadata_page,
    decode_points,
    retryable,
    split_url,
    time_filters,
)
from watchkeeper.client._archive_models import (
    BulkData,
    DataPayload,
    Metadata,
    NewMetadata,
    WirePoint,
    _Binding,
)
from watchkeeper.errors import ClientError, TransportError

_WRITE_OK = (200, 201)
_JSON_HEADERS = {"content-type": "application/json"}


def _headers(token: str | None, user_agent: str | None) -> dict[str, str]:
    headers = {"Authorization": f"Token {token}"} if token else {}
    if user_agent:
        headers["User-Agent"] = user_agent
    return headers


def _metadata_body(metadata: NewMetadata | Mapping[str, Any]) -> bytes:
    payload = metadata.to_payload() if isinstance(metadata, NewMetadata) else dict(metadata)
    return msgspec.json.encode(payload)


def _bulk_body(data: BulkData | Mapping[str, Any]) -> bytes:
    return msgspec.json.encode(data.to_payload() if isinstance(data, BulkData) else dict(data))


class _Base:
    """Configuration shared by the sync and async clients."""

    def __init__(self, api_url: str, *, token: str | None, script_alias: str | None,
                 retries: int, backoff: float, page_size: int) -> None:
        self.origin, path = split_url(api_url)
        self.root = f"{path}{archive_path(script_alias)}"
        self.retries = max(0, retries)
        self.backoff = backoff
        self.page_size = page_size
        self.token = token

    def metadata_url(self, key: str | None = None) -> str:
        return f"{self.root}{key}/" if key else self.root

    def point_url(self, key: str, event_type: str) -> str:
        return f"{self.root}{key}/{event_type}/base"

    def _bind(self, fetcher: Any, params: Mapping[str, Any]) -> _Binding:
        return _Binding(fetcher, time_filters(params))

    def _unreachable(self, method: str, url: str, exc: Exception) -> TransportError:
        tries = self.retries + 1
        return TransportError(f"cannot reach {self.origin} ({method} {url}): "
                              f"{exc or type(exc).__name__} (after {tries} attempt"
                              f"{'s' if tries > 1 else ''})")


class ArchiveClient(_Base):
    """Synchronous client of an esmond-compatible archive."""

    is_async = False

    def __init__(self, api_url: str, *, token: str | None = None,
                 script_alias: str | None = DEFAULT_ALIAS, timeout: float | None = 20.0,
                 verify: bool = True, retries: int = 3, backoff: float = 0.2,
                 page_size: int = DATA_PAGE, user_agent: str | None = None,
                 transport: httpx.BaseTransport | None = None) -> None:
        super().__init__(api_url, token=token, script_alias=script_alias, retries=retries,
                         backoff=backoff, page_size=page_size)
        self._http = httpx.Client(base_url=self.origin, headers=_headers(token, user_agent),
                                  timeout=timeout, verify=verify, transport=transport)

    def __enter__(self) -> ArchiveClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        """Send one request, retrying connection failures with backoff."""
        for attempt in range(self.retries + 1):
            try:
                return self._http.request(method, url, **kwargs)
            except httpx.TransportError as exc:
                if attempt >= self.retries or not retryable(exc, method):
                    raise self._unreachable(method, url, exc) from exc
                time.sleep(backoff_delay(attempt, self.backoff))
        raise AssertionError("unreachable")  # pragma: no cover

    # -- reads ---------------------------------------------------------------------------

    def metadata(self, **filters: Any) -> Iterator[Metadata]:
        """Metadata matching the filters (underscore or hyphen names), all pages."""
        params = dashed(filters)
        binding = self._bind(self, params)
        pager = MetadataPager(params)
        while not pager.done:
            page = decode_metadata_page(self.request("GET", self.root, params=pager.params()))
            pager.feed(page)
            for item in page:
                yield Metadata(item, binding)

    def get_metadata(self, key: str) -> Metadata:
        """One metadata by key (404 raises HTTPStatusError)."""
        body = decode_json(self.request("GET", self.metadata_url(key)))
        if not isinstance(body, dict):
            raise ClientError(f"{self.metadata_url(key)}: expected a metadata object")
        return Metadata(body, self._bind(self, {}))

    def iter_pages(self, uri: str, *, page_size: int | None = None,
                   **filters: Any) -> Iterator[list[WirePoint]]:
        """The pages of a series, one request at a time (never the whole series at once)."""
        pager = DataPager(time_filters(dashed(filters)), page_size or self.page_size)
        while not pager.done:
            page = decode_points(self.request("GET", uri, params=pager.params()))
            pager.feed(page)
            if page:
                yield page

    def get_data(self, uri: str, data_type: str = "unspecified", **filters: Any) -> DataPayload:
        """All points of a series (``base-uri`` or summary ``uri``)."""
        points: list[WirePoint] = []
        for page in self.iter_pages(uri, **filters):
            points.extend(page)
        return DataPayload(points, data_type)

    def _fetch_payload(self, uri: str, data_type: str,
                       time_filters: Mapping[str, int]) -> DataPayload:
        return self.get_data(uri, data_type, **time_filters)

    # -- writes --------------------------------------------------------------------------

    def create_metadata(self, metadata: NewMetadata | Mapping[str, Any]) -> Metadata:
        """Register a metadata (or find the identical one); returns it with its key."""
        response = check(self.request("POST", self.root, content=_metadata_body(metadata),
                                      headers=_JSON_HEADERS), expect=_WRITE_OK)
        body = decode_json(httpx.Response(200, headers=response.headers,
                                          content=response.content, request=response.request))
        return Metadata(body, self._bind(self, {}))

    def post_point(self, metadata_key: str, event_type: str, ts: int, val: Any) -> None:
        """Write one point (``POST .../<key>/<event-type>/base``)."""
        body = msgspec.json.encode({"ts": ts, "val": val})
        check(self.request("POST", self.point_url(metadata_key, event_type), content=body,
                           headers=_JSON_HEADERS), expect=_WRITE_OK)

    def post_bulk(self, metadata_key: str, data: BulkData | Mapping[str, Any]) -> None:
        """Write many points of many event types (``PUT .../<key>/``)."""
        check(self.request("PUT", self.metadata_url(metadata_key), content=_bulk_body(data),
                           headers=_JSON_HEADERS), expect=_WRITE_OK)


class AsyncArchiveClient(_Base):
    """Asynchronous client with the same methods as :class:`ArchiveClient`."""

    is_async = True

    def __init__(self, api_url: str, *, token: str | None = None,
                 script_alias: str | None = DEFAULT_ALIAS, timeout: float | None = 20.0,
                 verify: bool = True, retries: int = 3, backoff: float = 0.2,
                 page_size: int = DATA_PAGE, user_agent: str | None = None,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        super().__init__(api_url, token=token, script_alias=script_alias, retries=retries,
                         backoff=backoff, page_size=page_size)
        self._http = httpx.AsyncClient(base_url=self.origin,
                                       headers=_headers(token, user_agent), timeout=timeout,
                                       verify=verify, transport=transport)

    async def __aenter__(self) -> AsyncArchiveClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        for attempt in range(self.retries + 1):
            try:
                return await self._http.request(method, url, **kwargs)
            except httpx.TransportError as exc:
                if attempt >= self.retries or not retryable(exc, method):
                    raise self._unreachable(method, url, exc) from exc
                await asyncio.sleep(backoff_delay(attempt, self.backoff))
        raise AssertionError("unreachable")  # pragma: no cover

    async def metadata(self, **filters: Any) -> AsyncIterator[Metadata]:
        params = dashed(filters)
        binding = self._bind(self, params)
        pager = MetadataPager(params)
        while not pager.done:
            response = await self.request("GET", self.root, params=pager.params())
            page = decode_metadata_page(response)
            pager.feed(page)
            for item in page:
                yield Metadata(item, binding)

    async def get_metadata(self, key: str) -> Metadata:
        body = decode_json(await self.request("GET", self.metadata_url(key)))
        if not isinstance(body, dict):
            raise ClientError(f"{self.metadata_url(key)}: expected a metadata object")
        return Metadata(body, self._bind(self, {}))

    async def iter_pages(self, uri: str, *, page_size: int | None = None,
                         **filters: Any) -> AsyncIterator[list[WirePoint]]:
        pager = DataPager(time_filters(dashed(filters)), page_size or self.page_size)
        while not pager.done:
            page = decode_points(await self.request("GET", uri, params=pager.params()))
            pager.feed(page)
            if page:
                yield page

    async def get_data(self, uri: str, data_type: str = "unspecified",
                       **filters: Any) -> DataPayload:
        points: list[WirePoint] = []
        async for page in self.iter_pages(uri, **filters):
            points.extend(page)
        return DataPayload(points, data_type)

    def _fetch_payload(self, uri: str, data_type: str,
                       time_filters: Mapping[str, int]) -> Any:
        return self.get_data(uri, data_type, **time_filters)

    async def create_metadata(self, metadata: NewMetadata | Mapping[str, Any]) -> Metadata:
        response = check(await self.request("POST", self.root,
                                            content=_metadata_body(metadata),
                                            headers=_JSON_HEADERS), expect=_WRITE_OK)
        body = decode_json(httpx.Response(200, headers=response.headers,
                                          content=response.content, request=response.request))
        return Metadata(body, self._bind(self, {}))

    async def post_point(self, metadata_key: str, event_type: str, ts: int, val: Any) -> None:
        body = msgspec.json.encode({"ts": ts, "val": val})
        check(await self.request("POST", self.point_url(metadata_key, event_type),
                                 content=body, headers=_JSON_HEADERS), expect=_WRITE_OK)

    async def post_bulk(self, metadata_key: str, data: BulkData | Mapping[str, Any]) -> None:
        check(await self.request("PUT", self.metadata_url(metadata_key),
                                 content=_bulk_body(data), headers=_JSON_HEADERS),
              expect=_WRITE_OK)
