"""The HTTP side of a remote collector: fetch the configuration, send result batches.

The token goes in an ``Authorization: Token KEY`` header, never in the URL (where
Grafolean put it, and where proxies and logs keep it).
"""

from __future__ import annotations

import httpx
import msgspec

from watchkeeper.collect.credentials import Credential
from watchkeeper.errors import CollectError
from watchkeeper.wire import CollectAck, CollectBatch, CollectConfig

CONFIG_PATH = "/api/v1/collect/config"
RESULTS_PATH = "/api/v1/collect/results"


class ServerUnavailable(CollectError):
    """The server could not be reached, or answered with an error; try again later."""


class RemoteServer:
    """A watchkeeper server as seen by a remote collector. ``aclose`` when done."""

    def __init__(self, url: str, token: Credential | None, *, timeout: float = 10.0,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.url = url.rstrip("/")
        self._token = token
        self._timeout = timeout
        self._transport = transport  # tests pass an httpx.ASGITransport or MockTransport
        self._client: httpx.AsyncClient | None = None

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:  # created on first use: no I/O in the constructor
            headers = {"Authorization": f"Token {self._token.reveal()}"} if self._token else {}
            self._client = httpx.AsyncClient(base_url=self.url, headers=headers,
                                             timeout=self._timeout, transport=self._transport,
                                             trust_env=False)
        return self._client

    async def aclose(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()

    async def fetch_config(self, etag: str | None) -> tuple[CollectConfig | None, str | None]:
        """The configuration and its ETag; ``(None, etag)`` when unchanged since ``etag``."""
        headers = {"If-None-Match": etag} if etag else {}
        response = await self._request("GET", CONFIG_PATH, headers=headers)
        if response.status_code == 304:
            return None, etag
        try:
            config = msgspec.json.decode(response.content, type=CollectConfig)
        except msgspec.DecodeError as exc:  # ValidationError is a DecodeError
            raise ServerUnavailable(f"{self.url}: unreadable configuration: {exc}") from None
        return config, response.headers.get("etag")

    async def send(self, batch: CollectBatch) -> CollectAck:
        response = await self._request("POST", RESULTS_PATH, content=msgspec.json.encode(batch),
                                       headers={"Content-Type": "application/json"})
        try:
            return msgspec.json.decode(response.content, type=CollectAck)
        except msgspec.DecodeError as exc:
            raise ServerUnavailable(f"{self.url}: unreadable answer: {exc}") from None

    async def _request(self, method: str, path: str, **kwargs: object) -> httpx.Response:
        try:
            response = await self._http().request(method, path, **kwargs)  # type: ignore[arg-type]
        except httpx.HTTPError as exc:
            raise ServerUnavailable(f"{self.url}: {type(exc).__name__}: {exc}") from None
        if response.status_code >= 400:
            detail = response.text[:200]
            raise ServerUnavailable(f"{method} {self.url}{path}: HTTP {response.status_code} "
                                    f"{detail}")
        return response
