"""``create_app``: the ASGI application over an archive, with self-metrics at ``/metrics``."""

from __future__ import annotations

from collections.abc import Sequence

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from watchkeeper.api.auth import TokenAuth
from watchkeeper.api.errors import HANDLERS, error_response
from watchkeeper.api.esmond import EsmondApi
from watchkeeper.api.inventory import InventoryApi
from watchkeeper.api.native import NativeApi
from watchkeeper.archive import Archive
from watchkeeper.archive.esmond import EsmondArchive
from watchkeeper.archive.tokens import TokenStore
from watchkeeper.inventory import InventoryManager
from watchkeeper.telemetry import SelfMetrics


class BodyLimit:
    """Refuses request bodies over ``max_bytes`` with 413 before reading them all."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            for name, value in scope.get("headers", ()):
                if name == b"content-length" and value.isdigit() and int(value) > self.max_bytes:
                    response = error_response(413, f"request body over {self.max_bytes} bytes")
                    await response(scope, receive, send)
                    return
        await self.app(scope, receive, send)


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
