"""Clients for the native REST API: :class:`Client` (sync) and :class:`AsyncClient`.

Both take an httpx transport, so tests run them against the real app in-process::

    client = AsyncClient("http://test", transport=httpx.ASGITransport(app=app))
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Self, TypeVar

import httpx
import msgspec

from watchkeeper.errors import HTTPStatusError, TransportError
from watchkeeper.wire import (
    ActionAccepted,
    AlarmInfo,
    DeleteResult,
    ErrorBody,
    Health,
    QueryResult,
    RollupResult,
    SeriesList,
    WirePoint,
    WriteBatch,
    WriteResult,
)

T = TypeVar("T")
DEFAULT_URL = "http://127.0.0.1:8080"


def _decode(response: httpx.Response, model: type[T]) -> T:
    if response.status_code >= 400:
        try:
            detail = msgspec.json.decode(response.content, type=ErrorBody).detail
        except msgspec.MsgspecError:
            detail = response.text[:200] or response.reason_phrase
        raise HTTPStatusError(response.status_code, detail, url=str(response.url))
    return msgspec.json.decode(response.content, type=model)


def _query_params(series: str, **optional: object) -> dict[str, Any]:
    return {"series": series, **{k: v for k, v in optional.items() if v is not None}}


def _rollup_params(prefix: str, start: str | float, end: str | float, step: float,
                   aggs: Sequence[str]) -> dict[str, Any]:
    return {"prefix": prefix, "start": start, "end": end, "step": step, "aggs": ",".join(aggs)}


def _batch(points: Sequence[tuple[str, float, float | dict[str, int]]],
           units: Mapping[str, str] | None) -> bytes:
    batch = WriteBatch(points=[WirePoint(s, t, v) for s, t, v in points], units=dict(units or {}))
    return msgspec.json.encode(batch)


_HEADERS = {"Content-Type": "application/json"}


def _alarm_params(status: str | None, resolved: bool, limit: int) -> dict[str, Any]:
    params: dict[str, Any] = {"limit": limit, "resolved": "true" if resolved else "false"}
    if status:
        params["status"] = status
    return params


class Client:
    """Synchronous client."""

    def __init__(self, base_url: str = DEFAULT_URL, *, token: str | None = None,
                 timeout: float = 30.0, verify: bool = True,
                 transport: httpx.BaseTransport | None = None) -> None:
        # ``token`` is sent with every request (writes need it); TLS is verified unless
        # ``verify=False`` (the CLI's --insecure).
        headers = {"Authorization": f"Token {token}"} if token else {}
        self._http = httpx.Client(base_url=base_url, headers=headers, timeout=timeout,
                                  verify=verify, transport=transport)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _send(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        try:
            return self._http.request(method, url, **kwargs)
        except httpx.TransportError as exc:
            raise TransportError(f"cannot reach {self._http.base_url}: {exc}") from exc

    def health(self) -> Health:
        return _decode(self._send("GET", "/api/v1/health"), Health)

    def list_series(self, prefix: str = "", *, limit: int | None = None,
                    offset: int = 0) -> SeriesList:
        params: dict[str, Any] = {"prefix": prefix, "offset": offset}
        if limit is not None:
            params["limit"] = limit
        return _decode(self._send("GET", "/api/v1/series", params=params), SeriesList)

    def query(self, series: str, *, start: str | float | None = None,
              end: str | float | None = None, since: str | None = None,
              step: float | None = None, agg: str | None = None) -> QueryResult:
        params = _query_params(series, start=start, end=end, since=since, step=step, agg=agg)
        return _decode(self._send("GET", "/api/v1/query", params=params), QueryResult)

    def rollup(self, prefix: str = "", *, start: str | float, end: str | float = "now",
               step: float, aggs: Sequence[str] = ("avg",)) -> RollupResult:
        """Every float series whose key starts with ``prefix``, in ``step``-second buckets."""
        params = _rollup_params(prefix, start, end, step, aggs)
        return _decode(self._send("GET", "/api/v1/rollup", params=params), RollupResult)

    def write(self, points: Sequence[tuple[str, float, float | dict[str, int]]],
              units: Mapping[str, str] | None = None) -> WriteResult:
        response = self._send("POST", "/api/v1/write", content=_batch(points, units),
                              headers=_HEADERS)
        return _decode(response, WriteResult)

    def delete(self, series: str, *, start: str | float, end: str | float) -> DeleteResult:
        params = {"series": series, "start": start, "end": end}
        return _decode(self._send("DELETE", "/api/v1/series", params=params), DeleteResult)

    def alarms(self, *, status: str | None = None, resolved: bool = False,
               limit: int = 1000) -> list[AlarmInfo]:
        params = _alarm_params(status, resolved, limit)
        return _decode(self._send("GET", "/api/v1/alarms", params=params), list[AlarmInfo])

    def alarm(self, key: str) -> AlarmInfo:
        return _decode(self._send("GET", f"/api/v1/alarms/{key}"), AlarmInfo)

    def act(self, key: str, action: str, **body: object) -> ActionAccepted:
        response = self._send("POST", f"/api/v1/alarms/{key}/{action}",
                              content=msgspec.json.encode(body), headers=_HEADERS)
        return _decode(response, ActionAccepted)


class AsyncClient:
    """Asynchronous client with the same methods as :class:`Client`."""

    def __init__(self, base_url: str = DEFAULT_URL, *, token: str | None = None,
                 timeout: float = 30.0, verify: bool = True,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        headers = {"Authorization": f"Token {token}"} if token else {}
        self._http = httpx.AsyncClient(base_url=base_url, headers=headers, timeout=timeout,
                                       verify=verify, transport=transport)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _send(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        try:
            return await self._http.request(method, url, **kwargs)
        except httpx.TransportError as exc:
            raise TransportError(f"cannot reach {self._http.base_url}: {exc}") from exc

    async def health(self) -> Health:
        return _decode(await self._send("GET", "/api/v1/health"), Health)

    async def list_series(self, prefix: str = "", *, limit: int | None = None,
                          offset: int = 0) -> SeriesList:
        params: dict[str, Any] = {"prefix": prefix, "offset": offset}
        if limit is not None:
            params["limit"] = limit
        return _decode(await self._send("GET", "/api/v1/series", params=params), SeriesList)

    async def query(self, series: str, *, start: str | float | None = None,
                    end: str | float | None = None, since: str | None = None,
                    step: float | None = None, agg: str | None = None) -> QueryResult:
        params = _query_params(series, start=start, end=end, since=since, step=step, agg=agg)
        return _decode(await self._send("GET", "/api/v1/query", params=params), QueryResult)

    async def rollup(self, prefix: str = "", *, start: str | float, end: str | float = "now",
                     step: float, aggs: Sequence[str] = ("avg",)) -> RollupResult:
        params = _rollup_params(prefix, start, end, step, aggs)
        return _decode(await self._send("GET", "/api/v1/rollup", params=params), RollupResult)

    async def write(self, points: Sequence[tuple[str, float, float | dict[str, int]]],
                    units: Mapping[str, str] | None = None) -> WriteResult:
        response = await self._send("POST", "/api/v1/write", content=_batch(points, units),
                                    headers=_HEADERS)
        return _decode(response, WriteResult)

    async def delete(self, series: str, *, start: str | float,
                     end: str | float) -> DeleteResult:
        params = {"series": series, "start": start, "end": end}
        return _decode(await self._send("DELETE", "/api/v1/series", params=params), DeleteResult)

    async def alarms(self, *, status: str | None = None, resolved: bool = False,
                     limit: int = 1000) -> list[AlarmInfo]:
        params = _alarm_params(status, resolved, limit)
        return _decode(await self._send("GET", "/api/v1/alarms", params=params),
                       list[AlarmInfo])

    async def alarm(self, key: str) -> AlarmInfo:
        return _decode(await self._send("GET", f"/api/v1/alarms/{key}"), AlarmInfo)

    async def act(self, key: str, action: str, **body: object) -> ActionAccepted:
        response = await self._send("POST", f"/api/v1/alarms/{key}/{action}",
                                    content=msgspec.json.encode(body), headers=_HEADERS)
        return _decode(response, ActionAccepted)
