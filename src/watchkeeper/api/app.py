"""``create_app``: the ASGI application over an archive, with self-metrics at ``/metrics``
and its own OpenAPI document at ``/api/v1/openapi.json``."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Final

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from watchkeeper.api import openapi
from watchkeeper.api.auth import PROTECTED, TokenAuth
from watchkeeper.api.console import console_routes
from watchkeeper.api.errors import HANDLERS, ContainErrors, scrub_paths
from watchkeeper.api.esmond import EsmondApi
from watchkeeper.api.ingest import PATHS as INGEST_PATHS
from watchkeeper.api.ingest import IngestApi, MetadataStore
from watchkeeper.api.inventory import InventoryApi
from watchkeeper.api.limits import BodyLimit
from watchkeeper.api.metrics import RequestMetrics
from watchkeeper.api.native import NativeApi
from watchkeeper.api.openapi import Operation, operation
from watchkeeper.api.prometheus_query import READ_POSTS, PrometheusQueryApi
from watchkeeper.api.tokens import token_routes
from watchkeeper.archive import Archive
from watchkeeper.archive.esmond import EsmondArchive
from watchkeeper.archive.promql import Limits
from watchkeeper.archive.tokens import TokenStore
from watchkeeper.inventory import InventoryManager
from watchkeeper.telemetry import SelfMetrics
from watchkeeper.wire import CollectAck, CollectBatch, CollectConfig

GUARDED: Final = (*PROTECTED, "/api/v1/rollup", "/api/v1/inventory", *INGEST_PATHS)
"""What the token middleware guards: every archive, alarm, collector, inventory and token
route.
Only health, metrics and the OpenAPI document are outside (they carry no data)."""

ELSEWHERE: Final = {  # handlers that carry no description of their own (api.collect)
    ("/api/v1/collect/config", "GET"): Operation(
        "the whole remote-collector configuration (ETag; 304 while unchanged)", "write",
        answer=CollectConfig, errors=(401, 403),
        extra={"description": "Needs a token allowed to collect, whatever public_reads "
                              "says: the configuration names devices and connections."}),
    ("/api/v1/collect/results", "POST"): Operation(
        "a remote collector's batch of results (a re-sent seq is acknowledged once)",
        "write", body=CollectBatch, answer=CollectAck, errors=(400, 401, 403, 413, 507)),
}


def create_app(
    archive: Archive,
    *,
    metrics: SelfMetrics,
    max_body_bytes: int = 64 * 1024 * 1024,
    inventory: InventoryManager | None = None,
    extra_routes: Sequence[BaseRoute] = (),
    esmond: EsmondArchive | None = None,
    tokens: TokenStore | None = None,
    public_reads: bool = True,
    health: Callable[[], Sequence[str]] | None = None,
    promql_limits: Limits | None = None,
    metric_metadata: MetadataStore | None = None,
) -> Starlette:
    """The REST application. The runtime owns the archive's lifecycle, not the app.

    With ``esmond``, the esmond-compatible routes are served too. With ``tokens``, the
    esmond and native archive routes need ``Authorization: Token <key>`` to write (and to
    read unless ``public_reads``, see :mod:`.auth`), and ``/api/v1/tokens`` manages that
    store with an admin token; without, the routes are open and there are no token
    routes. ``health`` says why watchkeeper is degraded (nothing: ok). ``metric_metadata``
    keeps the metric metadata remote write sends (by default in memory only). Every
    request is counted in ``metrics`` by route template and status class (:mod:`.metrics`).
    """

    @operation("watchkeeper's own Prometheus metrics", "public", errors=(),
               answer_type="text/plain")
    async def exposition(request: Request) -> Response:
        # Public whatever public_reads says: labels (a model's stale reason) may quote a
        # server path, which is not for everyone.
        return Response(scrub_paths(metrics.exposition().decode()),
                        media_type="text/plain; version=0.0.4; charset=utf-8")

    document: dict[str, Any] = {}

    @operation("this document: every route mounted here (OpenAPI 3.1)", "public", errors=())
    async def describe(request: Request) -> Response:
        if not document:
            document.update(openapi.build(request.app.routes, ELSEWHERE))
        return JSONResponse(document)

    families = metric_metadata if metric_metadata is not None else MetadataStore()
    routes: list[BaseRoute] = [*NativeApi(archive, degraded=health).routes(),
                               *IngestApi(archive, metadata=families).routes(),
                               *PrometheusQueryApi(archive, limits=promql_limits,
                                                   metadata=families).routes(),
                               Route("/metrics", exposition, methods=["GET"]),
                               Route(openapi.PATH, describe, methods=["GET"])]
    if inventory is not None:
        routes.extend(InventoryApi(inventory).routes())
    routes.extend(extra_routes)  # e.g. the remote collectors' routes (api.collect)
    if tokens is not None:
        routes.extend(token_routes(tokens))  # admin only (auth.ADMIN), over the same store
    if esmond is not None:
        routes.extend(EsmondApi(esmond).routes())
    routes.extend(console_routes())  # `/` and `/console/`: the web console (docs/console.md)
    middleware = [Middleware(RequestMetrics, metrics=metrics), Middleware(ContainErrors),
                  Middleware(BodyLimit, max_bytes=max_body_bytes)]
    if tokens is not None:
        middleware.append(Middleware(TokenAuth, tokens=tokens, public_reads=public_reads,
                                     protected=GUARDED, basic=INGEST_PATHS,
                                     read_posts=READ_POSTS))
    return Starlette(
        routes=routes,
        exception_handlers=HANDLERS,
        middleware=middleware,
    )
