"""A client for the inventory routes (``/api/v1/inventory``); needs only httpx and msgspec.

::

    with InventoryClient("http://127.0.0.1:8080") as inventory:
        graph = inventory.graph("static", kinds=["device"], labels=["core"])
        change = inventory.diff("static", 3, "latest")
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, TypeVar
from urllib.parse import quote

import httpx
import msgspec

from watchkeeper.errors import HTTPStatusError, TransportError
from watchkeeper.wire import ErrorBody, InventoryCollectors, InventoryDiff, InventoryGraph

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


class InventoryClient:
    """Synchronous client of the inventory routes; takes an httpx transport for tests."""

    def __init__(self, base_url: str = DEFAULT_URL, *, token: str | None = None,
                 timeout: float = 30.0, transport: httpx.BaseTransport | None = None) -> None:
        headers = {"Authorization": f"Token {token}"} if token else {}
        self._http = httpx.Client(base_url=base_url, headers=headers, timeout=timeout,
                                  transport=transport)

    def __enter__(self) -> InventoryClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _get(self, url: str, model: type[T], params: Any = None) -> T:
        try:
            response = self._http.get(url, params=params)
        except httpx.TransportError as exc:
            raise TransportError(f"cannot reach {self._http.base_url}: {exc}") from exc
        return _decode(response, model)

    def collectors(self) -> InventoryCollectors:
        """Every model collector: version, size and freshness."""
        return self._get("/api/v1/inventory", InventoryCollectors)

    def graph(self, collector: str, *, kinds: Iterable[str] = (),
              labels: Iterable[str] = ()) -> InventoryGraph:
        """A collector's model: nodes of any of ``kinds`` carrying all ``labels``."""
        params = [("kind", k) for k in kinds] + [("label", label) for label in labels]
        return self._get(f"/api/v1/inventory/{quote(collector, safe='')}", InventoryGraph,
                         params)

    def diff(self, collector: str, before: int | str, after: int | str = "latest") -> InventoryDiff:
        """What changed between two versions (``"latest"`` names the current one)."""
        return self._get(
            f"/api/v1/inventory/{quote(collector, safe='')}/versions/{before}..{after}",
            InventoryDiff)
