"""``create_app``: the ASGI application over an archive, with self-metrics at ``/metrics``."""

from __future__ import annotations

from collections.abc import Sequence

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from watchkeeper.api.auth import TokenAuth
from watchkeeper.api.errors import HANDLERS
from watchkeeper.api.esmond import EsmondApi
from watchkeeper.api.inventory import InventoryApi
from watchkeeper.api.limits import BodyLimit
from watchkeeper.api.native import NativeApi
from watchkeeper.archive import Archive
from watchkeeper.archive.esmond import EsmondArchive
from watchkeeper.archive.tokens import TokenStore
from watchkeeper.inventory import InventoryManager
from watchkeeper.telemetry import SelfMetrics


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
) -> Starlette:
    """The REST application. The runtime owns the archive's lifecycle, not the app.

    With ``esmond``, the esmond-compatible routes are served too. With ``tokens``, the
    esmond and native archive routes need ``Authorization: Token <key>`` to write (and to
    read unless ``public_reads``, see :mod:`.auth`); without, they are open.
    """

    async def exposition(request: Request) -> Response:
        return Response(metrics.exposition(),
                        media_type="text/plain; version=0.0.4; charset=utf-8")

    routes: list[BaseRoute] = [*NativeApi(archive).routes(),
                               Route("/metrics", exposition, methods=["GET"])]
    if inventory is not None:
        routes.extend(InventoryApi(inventory).routes())
    routes.extend(extra_routes)  # e.g. the remote collectors' routes (api.collect)
    if esmond is not None:
        routes.extend(EsmondApi(esmond).routes())
    middleware = [Middleware(BodyLimit, max_bytes=max_body_bytes)]
    if tokens is not None:
        middleware.append(Middleware(TokenAuth, tokens=tokens, public_reads=public_reads))
    return Starlette(
        routes=routes,
        exception_handlers=HANDLERS,
        middleware=middleware,
    )
