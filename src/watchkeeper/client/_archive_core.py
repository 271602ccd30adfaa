"""The I/O-free part of the esmond archive client: URLs, paging, decoding, errors, retries.

The sync and async clients only send what these functions prepare and feed back what
the server answered, so both behave the same and the logic is tested without sockets.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import httpx
import msgspec

from watchkeeper.client._archive_models import WirePoint
from watchkeeper.errors import ClientError, HTTPStatusError

DEFAULT_ALIAS = "esmond"
PS_ROOT = "perfsonar/archive"
DATA_PAGE = 1000  # esmond-client's page size for data queries
JSON = "application/json"

METADATA_FILTERS = ("metadata-key", "source", "destination", "measurement-agent",
                    "input-source", "input-destination", "tool-name", "event-type",
                    "subject-type", "summary-type", "summary-window", "dns-match-rule")
TIME_FILTERS = ("time", "time-start", "time-end", "time-range")

_points = msgspec.json.Decoder(list[WirePoint], strict=False)
_any = msgspec.json.Decoder()


def archive_path(script_alias: str | None = DEFAULT_ALIAS) -> str:
    """``/<alias>/perfsonar/archive/``; ``None``, ``''`` or ``'/'`` mean no alias."""
    alias = (script_alias or "").strip("/")
    return f"/{alias}/{PS_ROOT}/" if alias else f"/{PS_ROOT}/"


def split_url(api_url: str) -> tuple[str, str]:
    """``(origin, path)`` of a URL, the path without its trailing slash."""
    parts = urlsplit(api_url.strip())
    if not parts.scheme or not parts.netloc:
        raise ClientError(f"not an http(s) URL: {api_url!r} (expected e.g. http://host:port)")
    return f"{parts.scheme}://{parts.netloc}", parts.path.rstrip("/")


def dashed(params: Mapping[str, Any]) -> dict[str, Any]:
    """Query parameters with ``_`` turned into ``-`` and ``None`` dropped."""
    return {k.replace("_", "-"): v for k, v in params.items() if v is not None}


def time_filters(params: Mapping[str, Any]) -> dict[str, int]:
    """The time filters among ``params``, as integers (``int(float(x))`` like esmond)."""
    found: dict[str, int] = {}
    for key in TIME_FILTERS:
        if params.get(key) is not None:
            found[key] = int(float(params[key]))
    return found


def error_detail(response: httpx.Response) -> str:
    """The server's explanation: ``detail`` (DRF), ``error``, or the start of the body."""
    try:
        body = _any.decode(response.content)
    except msgspec.DecodeError:
        body = None
    if isinstance(body, dict):
        for key in ("detail", "error", "message"):
            if isinstance(body.get(key), str):
                return str(body[key])
    if isinstance(body, str) and body:
        return body
    text = response.text.strip()
    return text[:200] if text else response.reason_phrase


def check(response: httpx.Response, *, expect: tuple[int, ...] = (200,)) -> httpx.Response:
    """Raise :class:`HTTPStatusError` with the server's detail unless the status is expected."""
    if response.status_code not in expect:
        raise HTTPStatusError(response.status_code, error_detail(response),
                              url=str(response.url))
    return response


def decode_json(response: httpx.Response) -> Any:
    """The JSON body of a 200 answer, refusing anything that is not JSON."""
    check(response)
    content_type = response.headers.get("content-type", "")
    if not content_type.split(";")[0].strip().lower() == JSON:
        raise ClientError(f"{response.url}: expected {JSON}, got {content_type or 'nothing'}"
                          " (is this an esmond archive?)")
    try:
        return _any.decode(response.content)
    except msgspec.DecodeError as exc:
        raise ClientError(f"{response.url}: invalid JSON ({exc})") from None


def decode_points(response: httpx.Response) -> list[WirePoint]:
    """A time-series page, ``[{"ts", "val"}, ...]``."""
    check(response)
    try:
        return _points.decode(response.content)
    except msgspec.DecodeError as exc:
        raise ClientError(f"{response.url}: not a time series ({exc})") from None


def decode_metadata_page(response: httpx.Response) -> list[dict[str, Any]]:
    body = decode_json(response)
    if not isinstance(body, list):
        raise ClientError(f"{response.url}: expected a JSON array of metadata")
    return [m for m in body if isinstance(m, dict)]


class MetadataPager:
    """esmond-client's metadata paging: ``metadata-count-total`` on the first element,
    then ``offset=`` in steps of the first page's size until that many were received."""

    def __init__(self, params: Mapping[str, Any]) -> None:
        self._params = dict(params)
        self._offset: int | None = None
        self._step = 0
        self._total = 0
        self._received = 0
        self.done = False

    def params(self) -> dict[str, Any]:
        if self._offset is None:
            return dict(self._params)
        return {**self._params, "offset": self._offset}

    def feed(self, page: list[dict[str, Any]]) -> None:
        self._received += len(page)
        if self._offset is None:
            total = page[0].get("metadata-count-total") if page else 0
            self._total = total if isinstance(total, int) else 0
            self._step = len(page)
            self._offset = self._step
        else:
            self._offset += self._step
        if not page or self._received >= self._total or self._offset >= self._total:
            self.done = True


class DataPager:
    """esmond-client's data paging: ``limit=<page>``; a full page asks again from
    ``time-start = last ts + 1`` until a short page or the end of the range."""

    def __init__(self, filters: Mapping[str, int], page_size: int = DATA_PAGE) -> None:
        self._params: dict[str, Any] = {**filters, "limit": page_size}
        self._page_size = page_size
        self.done = False

    def params(self) -> dict[str, Any]:
        return dict(self._params)

    def feed(self, page: list[WirePoint]) -> None:
        if len(page) < self._page_size:
            self.done = True
            return
        self._params["time-start"] = page[-1].ts + 1
        self._params.pop("time", None)
        end = self._params.get("time-end")
        if end is not None and self._params["time-start"] > end:
            self.done = True


# Failures where the request never reached the server: safe to retry for any method.
CONNECT_ERRORS: tuple[type[Exception], ...] = (httpx.ConnectError, httpx.ConnectTimeout,
                                               httpx.PoolTimeout)


def retryable(exc: Exception, method: str) -> bool:
    """Retry connection failures always; other transport failures only for reads."""
    if isinstance(exc, CONNECT_ERRORS):
        return True
    return method in ("GET", "HEAD") and isinstance(exc, httpx.TransportError)


def backoff_delay(attempt: int, base: float) -> float:
    return float(base * (2 ** attempt))
