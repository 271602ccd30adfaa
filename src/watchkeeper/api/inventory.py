"""The inventory under ``/api/v1/inventory``: models as JSON, filtered, and diffs of versions.

* ``GET /api/v1/inventory``: every model collector, its version and freshness.
* ``GET /api/v1/inventory/{collector}?kind=device&label=core``: the nodes passing every
  filter (``kind`` and ``label`` may repeat: any of the kinds, all of the labels) and the
  relations between them.
* ``GET /api/v1/inventory/{collector}/versions/{a}..{b}``: what changed from version ``a``
  to ``b`` (``latest`` names the current one).
"""

from __future__ import annotations

from collections.abc import Sequence

import msgspec
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from watchkeeper.inventory import InventoryManager, LiveModel, Node, Relation, UnknownCollector
from watchkeeper.inventory.live import VersionGone
from watchkeeper.wire import (
    InventoryCollector,
    InventoryCollectors,
    InventoryDiff,
    InventoryGraph,
    InventoryNode,
    InventoryNodeChange,
    InventoryRelation,
    InventoryRelationChange,
)

JSON = "application/json"


def _json(payload: object) -> Response:
    return Response(msgspec.json.encode(payload), media_type=JSON)


def wire_node(node: Node) -> InventoryNode:
    return InventoryNode(id=node.id, kind=node.kind, name=node.name, attrs=dict(node.attrs),
                         labels=sorted(node.labels))


def wire_relation(relation: Relation) -> InventoryRelation:
    return InventoryRelation(source=relation.source, kind=relation.kind,
                             target=relation.target, attrs=dict(relation.attrs))


def summary(model: LiveModel) -> InventoryCollector:
    snapshot = model.latest()
    return InventoryCollector(
        name=model.name, version=snapshot.version, nodes=snapshot.graph.node_count,
        relations=snapshot.graph.relation_count, synced_at=snapshot.synced_at,
        stale_since=snapshot.stale_since, stale_reason=snapshot.stale_reason,
        versions=model.versions())


class InventoryApi:
    """Handlers bound to one inventory manager."""

    def __init__(self, manager: InventoryManager) -> None:
        self._manager = manager

    def routes(self) -> Sequence[Route]:
        return [
            Route("/api/v1/inventory", self.collectors, methods=["GET"]),
            Route("/api/v1/inventory/{collector}", self.graph, methods=["GET"]),
            Route("/api/v1/inventory/{collector}/versions/{span}", self.diff, methods=["GET"]),
        ]

    def _model(self, request: Request) -> LiveModel:
        try:
            return self._manager.get(request.path_params["collector"])
        except UnknownCollector as exc:
            raise HTTPException(404, str(exc)) from None

    async def collectors(self, request: Request) -> Response:
        models = [self._manager.get(name) for name in self._manager.names()]
        return _json(InventoryCollectors(collectors=[summary(m) for m in models]))

    async def graph(self, request: Request) -> Response:
        model = self._model(request)
        snapshot = model.latest()  # one snapshot: nodes and relations from the same version
        kinds = set(request.query_params.getlist("kind"))
        labels = set(request.query_params.getlist("label"))
        graph = snapshot.graph
        nodes = [n for n in graph.nodes()
                 if (not kinds or n.kind in kinds) and labels <= n.labels]
        if kinds or labels:
            kept = {n.id for n in nodes}
            relations = [r for n in nodes for r in graph.relations_of(n.id) if r.target in kept]
        else:
            relations = list(graph.relations())
        nodes.sort(key=lambda n: n.id)
        relations.sort(key=lambda r: r.key)
        return _json(InventoryGraph(collector=summary(model),
                                    nodes=[wire_node(n) for n in nodes],
                                    relations=[wire_relation(r) for r in relations]))

    async def diff(self, request: Request) -> Response:
        model = self._model(request)
        span = request.path_params["span"]
        first, sep, last = span.partition("..")
        latest = model.latest().version
        before, after = _version(first, latest), _version(last, latest)
        if not sep or before is None or after is None:
            raise HTTPException(400, f"expected versions as A..B (numbers or 'latest'), "
                                     f"not {span!r}")
        try:
            change = model.diff(before, after)
        except VersionGone as exc:
            raise HTTPException(404, str(exc)) from None
        return _json(InventoryDiff(
            collector=model.name, from_version=change.from_version,
            to_version=change.to_version,
            appeared=[wire_node(n) for n in change.appeared],
            disappeared=[wire_node(n) for n in change.disappeared],
            changed=[InventoryNodeChange(before=wire_node(a), after=wire_node(b))
                     for a, b in change.changed],
            relations_appeared=[wire_relation(r) for r in change.relations_appeared],
            relations_disappeared=[wire_relation(r) for r in change.relations_disappeared],
            relations_changed=[InventoryRelationChange(before=wire_relation(a),
                                                       after=wire_relation(b))
                               for a, b in change.relations_changed],
        ))


def _version(text: str, latest: int) -> int | None:
    if text == "latest":
        return latest
    return int(text) if text.isdigit() else None
