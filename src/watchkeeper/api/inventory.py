"""The inventory under ``/api/v1/inventory``: models as JSON, filtered, and diffs of versions.

* ``GET /api/v1/inventory``: every model collector, its version and freshness.
* ``GET /api/v1/inventory/{collector}?kind=device&label=core``: the nodes passing every
  filter (``kind`` and ``label`` may repeat: any of the kinds, all of the labels) and the
  relations between them, a page at a time: ``limit`` nodes (default 1,000, at most
  10,000) from ``offset`` (default 0) in id order, the relations leaving them, and the
  totals; ``version`` (default the latest) pins the pages after the first to the
  version the first came from, while it is kept.
* ``GET /api/v1/inventory/{collector}/node?id=device/core1``: one node with every relation
  leaving and entering it and the nodes at their other ends (the console's node detail).
  The id is a query parameter because ids hold ``/`` and ``%`` (``interface/core1/ge-0%2F1``),
  which proxies may decode or refuse in a path.
* ``GET /api/v1/inventory/{collector}/versions/{a}..{b}``: what changed from version ``a``
  to ``b`` (``latest`` names the current one).
* ``POST /api/v1/inventory/notifications``: one raw notification (``publisher_id``,
  ``event_type``, ``payload``...) or a list, applied as one batch; the answer says how many
  matched an endpoint and how many applied. It needs a write token (:mod:`.auth`).

Each collector's summary carries its ``stats``: builds, failed and discarded builds,
notifications and handler errors, and whether a build runs now.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import msgspec
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from watchkeeper.api.errors import scrub_paths
from watchkeeper.api.limits import decode_json, whole_param
from watchkeeper.api.openapi import Param, operation, paging
from watchkeeper.api.redact import redact
from watchkeeper.errors import InvalidData
from watchkeeper.inventory import (
    Graph,
    InventoryManager,
    LiveModel,
    Node,
    Notification,
    Relation,
    UnknownCollector,
)
from watchkeeper.inventory.live import VersionGone
from watchkeeper.wire import (
    InventoryCollector,
    InventoryCollectors,
    InventoryDiff,
    InventoryGraph,
    InventoryNode,
    InventoryNodeChange,
    InventoryNodeDetail,
    InventoryNotified,
    InventoryRelation,
    InventoryRelationChange,
    InventoryStats,
)

JSON = "application/json"
DEFAULT_LIMIT = 1_000  # nodes per page when the request gives no limit
MAX_LIMIT = 10_000
_SELECTIONS = 8  # filtered, sorted node lists kept for the next pages' requests


@dataclass(frozen=True, slots=True)
class _Selection:
    """The ids of one version's nodes passing one filter, sorted, and the relations
    between them. Only ids (strings) are kept, never the graph: an old model must not be
    held here and then freed in one long cascade on the event loop."""

    ids: list[str]
    kept: frozenset[str] | None  # the same ids when filtered; None: every node
    relations: int


def _json(payload: object) -> Response:
    return Response(msgspec.json.encode(payload), media_type=JSON)


def wire_node(node: Node) -> InventoryNode:
    """A node as served: attributes naming secrets are redacted (:mod:`.redact`)."""
    return InventoryNode(id=node.id, kind=node.kind, name=node.name,
                         attrs=redact(dict(node.attrs)), labels=sorted(node.labels))


def wire_relation(relation: Relation) -> InventoryRelation:
    return InventoryRelation(source=relation.source, kind=relation.kind,
                             target=relation.target, attrs=redact(dict(relation.attrs)))


def summary(model: LiveModel) -> InventoryCollector:
    snapshot = model.latest()
    stats = model.stats()
    return InventoryCollector(
        name=model.name, version=snapshot.version, nodes=snapshot.graph.node_count,
        relations=snapshot.graph.relation_count, synced_at=snapshot.synced_at,
        stale_since=snapshot.stale_since,
        stale_reason=None if snapshot.stale_reason is None else scrub_paths(snapshot.stale_reason),
        versions=model.versions(),
        stats=InventoryStats(builds=stats.builds, build_failures=stats.build_failures,
                             discarded_builds=stats.discarded_builds,
                             notifications=stats.notifications,
                             handler_errors=stats.notification_errors,
                             building=stats.building,
                             last_build_seconds=stats.last_build_seconds))


class InventoryApi:
    """Handlers bound to one inventory manager."""

    def __init__(self, manager: InventoryManager) -> None:
        self._manager = manager
        self._selections: OrderedDict[tuple[str, int, frozenset[str], frozenset[str]],
                                      _Selection] = OrderedDict()

    def routes(self) -> Sequence[Route]:
        return [
            Route("/api/v1/inventory", self.collectors, methods=["GET"]),
            Route("/api/v1/inventory/notifications", self.notify, methods=["POST"]),
            Route("/api/v1/inventory/{collector}", self.graph, methods=["GET"]),
            Route("/api/v1/inventory/{collector}/node", self.node, methods=["GET"]),
            Route("/api/v1/inventory/{collector}/versions/{span}", self.diff, methods=["GET"]),
        ]

    def _model(self, request: Request) -> LiveModel:
        try:
            return self._manager.get(request.path_params["collector"])
        except UnknownCollector as exc:
            raise HTTPException(404, str(exc)) from None

    @operation("every model collector, its version and freshness", "read",
               answer=InventoryCollectors, errors=())
    async def collectors(self, request: Request) -> Response:
        models = [self._manager.get(name) for name in self._manager.names()]
        return _json(InventoryCollectors(collectors=[summary(m) for m in models]))

    @operation("raw notifications (an object or a list) applied as one batch", "write",
               body=Any, answer=InventoryNotified, errors=(400, 401, 403, 413))
    async def notify(self, request: Request) -> Response:
        """Raw notifications in (an object or a list), applied as one batch."""
        body = decode_json(await request.body(), Notification | list[Notification])
        batch = body if isinstance(body, list) else [body]
        delivery = self._manager.deliver_batch(batch)
        return _json(InventoryNotified(notifications=delivery.notifications,
                                       matched=delivery.matched, applied=delivery.applied))

    @operation("a model's nodes passing the filters and their relations, a page at a time",
               "read", answer=InventoryGraph, errors=(400, 404),
               params=(Param("kind", description="node kind; may repeat (any of)"),
                       Param("label", description="node label; may repeat (all of)"),
                       *paging(DEFAULT_LIMIT, MAX_LIMIT),
                       Param("version", description="a kept version or 'latest'")))
    async def graph(self, request: Request) -> Response:
        model = self._model(request)
        params = request.query_params
        limit = whole_param(params.get("limit"), field="limit", default=DEFAULT_LIMIT, low=1,
                            high=MAX_LIMIT)
        offset = whole_param(params.get("offset"), field="offset", default=0)
        graph = self._version(model, params.get("version"))  # nodes and relations of one
        selection = self._select(model.name, graph, frozenset(params.getlist("kind")),
                                 frozenset(params.getlist("label")))
        page = [node for node in map(graph.node, selection.ids[offset:offset + limit])
                if node is not None]
        kept = selection.kept
        relations = [r for n in page for r in graph.relations_of(n.id)
                     if kept is None or r.target in kept]
        relations.sort(key=lambda r: r.key)
        return _json(InventoryGraph(collector=summary(model),
                                    nodes=[wire_node(n) for n in page],
                                    relations=[wire_relation(r) for r in relations],
                                    version=graph.version, total=len(selection.ids),
                                    total_relations=selection.relations, offset=offset,
                                    limit=limit))

    @operation("one node, the relations leaving and entering it, and its neighbours", "read",
               answer=InventoryNodeDetail, errors=(400, 404),
               params=(Param("id", required=True,
                             description="the node's id, e.g. device/core1"),
                       Param("version", description="a kept version or 'latest'")))
    async def node(self, request: Request) -> Response:
        model = self._model(request)
        node_id = request.query_params.get("id", "")
        if not node_id:
            raise HTTPException(400, "id: required (a node id, e.g. device/core1)")
        graph = self._version(model, request.query_params.get("version"))
        node = graph.node(node_id)
        if node is None:
            raise HTTPException(404, f"no node {node_id!r} in model {model.name!r} "
                                     f"(version {graph.version})")
        touching = sorted(graph.relations_of(node_id, direction="both"), key=lambda r: r.key)
        ends = sorted({r.target if r.source == node_id else r.source for r in touching})
        neighbours = [n for n in map(graph.node, ends) if n is not None]
        return _json(InventoryNodeDetail(
            collector=model.name, version=graph.version, node=wire_node(node),
            relations_out=[wire_relation(r) for r in touching if r.source == node_id],
            relations_in=[wire_relation(r) for r in touching if r.target == node_id],
            neighbours=[wire_node(n) for n in neighbours]))

    def _version(self, model: LiveModel, raw: str | None) -> Graph:
        latest = model.latest().graph
        if raw is None or raw in ("", "latest"):
            return latest
        version = whole_param(raw, field="version", default=0)
        if version == latest.version:
            return latest
        try:
            return model.graph(version)
        except VersionGone as exc:
            raise HTTPException(404, str(exc)) from None

    def _select(self, collector: str, graph: Graph, kinds: frozenset[str],
                labels: frozenset[str]) -> _Selection:
        """The filtered node ids in order, kept for a few (collector, version, filter)s so
        that walking the pages of a big model does not filter and sort it once per page.
        A model's versions only ever grow, so (collector, version) names one graph."""
        key = (collector, graph.version, kinds, labels)
        found = self._selections.get(key)
        if found is not None:
            self._selections.move_to_end(key)
            return found
        if kinds or labels:
            ids = sorted(n.id for n in graph.nodes()
                         if (not kinds or n.kind in kinds) and labels <= n.labels)
            kept = frozenset(ids)
            relations = sum(1 for i in ids for r in graph.relations_of(i) if r.target in kept)
            found = _Selection(ids, kept, relations)
        else:
            found = _Selection(sorted(n.id for n in graph.nodes()), None, graph.relation_count)
        self._selections[key] = found
        while len(self._selections) > _SELECTIONS:
            self._selections.popitem(last=False)
        return found

    @operation("what changed between two versions (span A..B, 'latest' allowed)", "read",
               answer=InventoryDiff, errors=(400, 404))
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
    try:
        return whole_param(text, field="version", default=-1)
    except InvalidData:
        return None

