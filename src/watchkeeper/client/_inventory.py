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

from watchkeeper.client._native import Client, _decode
from watchkeeper.wire import InventoryCollectors, InventoryDiff, InventoryGraph

T = TypeVar("T")


class InventoryClient(Client):
    """Synchronous client of the inventory routes; takes an httpx transport for tests."""

    def _get(self, url: str, model: type[T], params: Any = None) -> T:
        return _decode(self._send("GET", url, params=params), model)

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
