"""The server side of remote collectors: one GET for the job configuration, one POST for
result batches.

``GET /api/v1/collect/config`` answers the whole configuration (inventory and collector
config) with an ``ETag``; a collector sending it back in ``If-None-Match`` gets ``304``
while nothing changed. ``POST /api/v1/collect/results`` takes a :class:`CollectBatch`; a
batch whose ``seq`` the server already accepted from that collector is acknowledged as a
duplicate and not stored twice (a collector re-sends when an answer got lost).

The handlers only see callables the runtime passes in: ``config()`` for the current
configuration, ``accept(batch)`` to store a batch, and ``authorize(request)``, which raises
:class:`~watchkeeper.errors.AuthError` to refuse (the default allows everyone). Collectors
send ``Authorization: Token KEY``; :func:`token_of` reads it for an ``authorize``.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from watchkeeper.wire import CollectAck, CollectBatch, CollectConfig

log = logging.getLogger(__name__)

JSON = "application/json"

ConfigSource = Callable[[], CollectConfig]
Accept = Callable[[CollectBatch], Awaitable[int]]
Authorize = Callable[[Request], None]


def allow_all(request: Request) -> None:
    """The default ``authorize``: every request may fetch and send."""


def token_of(request: Request) -> str | None:
    """The KEY of an ``Authorization: Token KEY`` header, if any (never a query parameter)."""
    scheme, _, key = request.headers.get("authorization", "").partition(" ")
    return key.strip() or None if scheme.lower() == "token" else None


class CollectApi:
    """Routes for remote collectors, bound to the runtime's callables."""

    def __init__(self, *, config: ConfigSource, accept: Accept,
                 authorize: Authorize = allow_all) -> None:
        self._config = config
        self._accept = accept
        self._authorize = authorize
        self._last_seq: dict[str, int] = {}
        self._dropped: dict[str, int] = {}

    def routes(self) -> Sequence[Route]:
        return [
            Route("/api/v1/collect/config", self.get_config, methods=["GET"]),
            Route("/api/v1/collect/results", self.post_results, methods=["POST"]),
        ]

    async def get_config(self, request: Request) -> Response:
        self._authorize(request)
        config = self._config()
        etag = f'"{config.version}"'
        headers = {"ETag": etag, "Cache-Control": "no-cache"}
        if etag in {t.strip() for t in request.headers.get("if-none-match", "").split(",")}:
            return Response(status_code=304, headers=headers)
        return Response(msgspec.json.encode(config), media_type=JSON, headers=headers)

    async def post_results(self, request: Request) -> Response:
        self._authorize(request)
        batch = msgspec.json.decode(await request.body(), type=CollectBatch)
        if batch.seq <= self._last_seq.get(batch.collector, -1):
            return _json(CollectAck(accepted=0, duplicate=True))
        if batch.dropped > self._dropped.get(batch.collector, 0):
            log.warning("collector %s dropped %d results its spool could not hold (%d in all)",
                        batch.collector, batch.dropped - self._dropped.get(batch.collector, 0),
                        batch.dropped)
            self._dropped[batch.collector] = batch.dropped
        accepted = await self._accept(batch)
        self._last_seq[batch.collector] = batch.seq
        return _json(CollectAck(accepted=accepted))


def _json(payload: object) -> Response:
    return Response(msgspec.json.encode(payload), media_type=JSON)
