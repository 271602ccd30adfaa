"""Clients for the native REST API: :class:`Client` (sync) and :class:`AsyncClient`.

Both take an httpx transport, so tests run them against the real app in-process::

    client = AsyncClient("http://test", transport=httpx.ASGITransport(app=app))
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Self, TypeVar
from urllib.parse import quote

import httpx
import msgspec

from watchkeeper.errors import HTTPStatusError, TransportError
from watchkeeper.wire import (
    ActionAccepted,
    AlarmInfo,
    CollectJobs,
    CollectReport,
    CreatedToken,
    DeleteResult,
    ErrorBody,
    Health,
    QueryResult,
    RollupResult,
    SeriesList,
    TokenInfo,
    TokenList,
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


Params = list[tuple[str, str | int | float]]


def _many(values: str | Iterable[str] | None) -> list[str]:
    """A repeatable parameter's values; one string is one value, not its characters."""
    if values is None:
        return []
    return [values] if isinstance(values, str) else list(values)


def _series_params(prefix: str, *, subject: str | None, plugin: str | None,
                   metric: str | None, labels: Mapping[str, str] | None,
                   matches: str | Iterable[str] | None, kind: str | None,
                   limit: int | None, offset: int) -> Params:
    params: Params = [("prefix", prefix), ("offset", offset)]
    params += [(name, value) for name, value in
               (("subject", subject), ("plugin", plugin), ("metric", metric), ("kind", kind))
               if value is not None]
    params += [("label", f"{name}={value}") for name, value in (labels or {}).items()]
    params += [("match", text) for text in _many(matches)]
    if limit is not None:
        params.append(("limit", limit))
    return params


def _job_params(statuses: str | Iterable[str] | None, collectors: str | Iterable[str] | None,
                devices: str | Iterable[str] | None, limit: int | None, offset: int) -> Params:
    params: Params = [("status", s) for s in _many(statuses)]
    params += [("collector", c) for c in _many(collectors)]
    params += [("device", d) for d in _many(devices)]
    if limit is not None:
        params.append(("limit", limit))
    if offset:
        params.append(("offset", offset))
    return params


def _report_params(device: str, collector: str | None) -> dict[str, str]:
    return {"device": device, **({"collector": collector} if collector is not None else {})}


def _new_token(user: str, write: bool, admin: bool) -> bytes:
    # Scopes are cumulative on the server: the highest one named counts.
    scope = "admin" if admin else "write" if write else "read"
    return msgspec.json.encode({"user": user, "scopes": [scope]})


def _token_url(token_id: str) -> str:
    return f"/api/v1/tokens/{quote(token_id, safe='')}"


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

    def list_series(self, prefix: str = "", *, subject: str | None = None,
                    plugin: str | None = None, metric: str | None = None,
                    labels: Mapping[str, str] | None = None,
                    matches: str | Iterable[str] | None = None, kind: str | None = None,
                    limit: int | None = None, offset: int = 0) -> SeriesList:
        """Series in name order, a page of ``limit`` from ``offset`` (``total`` counts them
        all): those starting with ``prefix``, with exactly this ``subject``, ``plugin``,
        ``metric``, every one of ``labels``, containing every text of ``matches``, of this
        ``kind`` (float, histogram or object)."""
        params = _series_params(prefix, subject=subject, plugin=plugin, metric=metric,
                                labels=labels, matches=matches, kind=kind, limit=limit,
                                offset=offset)
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

    def jobs(self, *, statuses: str | Iterable[str] | None = None,
             collectors: str | Iterable[str] | None = None,
             devices: str | Iterable[str] | None = None, limit: int | None = None,
             offset: int = 0) -> CollectJobs:
        """The scheduled jobs of a ``watchkeeper up``, worst latest status first: those of
        any of ``statuses`` (``pending``: not polled yet), ``collectors`` and ``devices``;
        ``limit`` of them (the server's default 1,000 when None) from ``offset``."""
        params = _job_params(statuses, collectors, devices, limit, offset)
        return _decode(self._send("GET", "/api/v1/collect/jobs", params=params), CollectJobs)

    def job_report(self, device: str, *, collector: str | None = None) -> CollectReport:
        """The report of the latest poll of ``device``'s jobs (of ``collector``'s only)."""
        response = self._send("GET", "/api/v1/collect/report",
                              params=_report_params(device, collector))
        return _decode(response, CollectReport)

    def tokens(self) -> list[TokenInfo]:
        """Every API token, oldest first, never a key. Needs an admin token."""
        return _decode(self._send("GET", "/api/v1/tokens"), TokenList).tokens

    def create_token(self, user: str, *, write: bool = False,
                     admin: bool = False) -> CreatedToken:
        """A new token for ``user`` (read-only unless ``write``; ``admin`` implies write);
        its ``key`` is in this answer only. Needs an admin token."""
        response = self._send("POST", "/api/v1/tokens", content=_new_token(user, write, admin),
                              headers=_HEADERS)
        return _decode(response, CreatedToken)

    def revoke_token(self, token_id: str) -> TokenInfo:
        """Revoke a token by id (as :meth:`tokens` lists it); the token it was. Needs an
        admin token."""
        return _decode(self._send("DELETE", _token_url(token_id)), TokenInfo)


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

    async def list_series(self, prefix: str = "", *, subject: str | None = None,
                          plugin: str | None = None, metric: str | None = None,
                          labels: Mapping[str, str] | None = None,
                          matches: str | Iterable[str] | None = None,
                          kind: str | None = None, limit: int | None = None,
                          offset: int = 0) -> SeriesList:
        params = _series_params(prefix, subject=subject, plugin=plugin, metric=metric,
                                labels=labels, matches=matches, kind=kind, limit=limit,
                                offset=offset)
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

    async def jobs(self, *, statuses: str | Iterable[str] | None = None,
                   collectors: str | Iterable[str] | None = None,
                   devices: str | Iterable[str] | None = None, limit: int | None = None,
                   offset: int = 0) -> CollectJobs:
        params = _job_params(statuses, collectors, devices, limit, offset)
        return _decode(await self._send("GET", "/api/v1/collect/jobs", params=params),
                       CollectJobs)

    async def job_report(self, device: str, *, collector: str | None = None) -> CollectReport:
        response = await self._send("GET", "/api/v1/collect/report",
                                    params=_report_params(device, collector))
        return _decode(response, CollectReport)

    async def tokens(self) -> list[TokenInfo]:
        return _decode(await self._send("GET", "/api/v1/tokens"), TokenList).tokens

    async def create_token(self, user: str, *, write: bool = False,
                           admin: bool = False) -> CreatedToken:
        response = await self._send("POST", "/api/v1/tokens",
                                    content=_new_token(user, write, admin), headers=_HEADERS)
        return _decode(response, CreatedToken)

    async def revoke_token(self, token_id: str) -> TokenInfo:
        return _decode(await self._send("DELETE", _token_url(token_id)), TokenInfo)
