"""A client for the inventory routes (``/api/v1/inventory``); needs only httpx and msgspec.

::

    with InventoryClient("http://127.0.0.1:8080") as inventory:
        graph = inventory.graph("static", kinds=["device"], labels=["core"])  # every page
        first = inventory.graph_page("static", limit=100)                     # one page
        change = inventory.diff("static", 3, "latest")
        core1 = inventory.node("static", "device/core1")  # its relations and neighbours
        done = inventory.notify([{"publisher_id": "operator.me", "event_type": "node.updated",
                                  "payload": {"id": "device/core1", "attrs": {"rack": "B2"}}}])

It is public as ``watchkeeper.client.InventoryClient``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, TypeVar
from urllib.parse import quote

import msgspec

from watchkeeper.client._native import _HEADERS, Client, _decode
from watchkeeper.errors import HTTPStatusError
from watchkeeper.wire import (
    InventoryCollectors,
    InventoryDiff,
    InventoryGraph,
    InventoryNodeDetail,
    InventoryNotified,
)

T = TypeVar("T")
PAGE = 10_000  # nodes per request when following pages (the server's maximum)
_RESTARTS = 3  # times a walk starts again when the version it read went out of history


class InventoryClient(Client):
    """Synchronous client of the inventory routes; takes an httpx transport for tests."""

    def _get(self, url: str, model: type[T], params: Any = None) -> T:
        return _decode(self._send("GET", url, params=params), model)

    def collectors(self) -> InventoryCollectors:
        """Every model collector: version, size and freshness."""
        return self._get("/api/v1/inventory", InventoryCollectors)

    def graph(self, collector: str, *, kinds: Iterable[str] = (),
              labels: Iterable[str] = (), page_size: int | None = None) -> InventoryGraph:
        """A collector's model: nodes of any of ``kinds`` carrying all ``labels``, and the
        relations between them, every page of one version of it (``total`` nodes)."""
        kinds, labels = list(kinds), list(labels)
        page_size = page_size or PAGE
        for attempt in range(_RESTARTS + 1):
            first = self.graph_page(collector, kinds=kinds, labels=labels, limit=page_size)
            if first.total is None:  # a server from before paging: that was everything
                return first
            nodes, relations = list(first.nodes), list(first.relations)
            try:
                while first.nodes and len(nodes) < first.total:
                    page = self.graph_page(collector, kinds=kinds, labels=labels,
                                           limit=page_size, offset=len(nodes),
                                           version=first.version)
                    if not page.nodes:
                        break
                    nodes += page.nodes
                    relations += page.relations
            except HTTPStatusError as exc:
                # The version went out of the server's history while we read it: again.
                if exc.status != 404 or "is not kept" not in exc.detail or \
                        attempt == _RESTARTS:
                    raise
                continue
            return msgspec.structs.replace(first, nodes=nodes, relations=relations,
                                           offset=0, limit=None)
        raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises

    def graph_page(self, collector: str, *, kinds: Iterable[str] = (),
                   labels: Iterable[str] = (), limit: int | None = None, offset: int = 0,
                   version: int | str | None = None) -> InventoryGraph:
        """One page: ``limit`` nodes (the server's default when None) from ``offset`` in id
        order, with the relations leaving them, from ``version`` (default the latest)."""
        params: list[tuple[str, str | int]] = [("kind", k) for k in kinds]
        params += [("label", label) for label in labels]
        if limit is not None:
            params.append(("limit", limit))
        if offset:
            params.append(("offset", offset))
        if version is not None:
            params.append(("version", version))
        return self._get(f"/api/v1/inventory/{quote(collector, safe='')}", InventoryGraph,
                         params)

    def node(self, collector: str, node_id: str, *,
             version: int | str | None = None) -> InventoryNodeDetail:
        """One node of ``collector``'s model (of ``version``, default the latest), every
        relation leaving and entering it, and the nodes at their other ends."""
        params: dict[str, str | int] = {"id": node_id}
        if version is not None:
            params["version"] = version
        return self._get(f"/api/v1/inventory/{quote(collector, safe='')}/node",
                         InventoryNodeDetail, params)

    def diff(self, collector: str, before: int | str, after: int | str = "latest") -> InventoryDiff:
        """What changed between two versions (``"latest"`` names the current one)."""
        return self._get(
            f"/api/v1/inventory/{quote(collector, safe='')}/versions/{before}..{after}",
            InventoryDiff)

    def notify(self, notifications: Iterable[Mapping[str, Any]]) -> InventoryNotified:
        """Send raw notifications (``publisher_id``, ``event_type``, ``payload``, and
        optionally ``priority``, ``timestamp``, ``message_id``), applied as one batch;
        how many matched an endpoint and applied. Needs a client made with a write token."""
        response = self._send("POST", "/api/v1/inventory/notifications",
                              content=msgspec.json.encode(list(notifications)),
                              headers=_HEADERS)
        return _decode(response, InventoryNotified)
