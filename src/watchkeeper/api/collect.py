"""The server side of remote collectors: one GET for the job configuration, one POST for
result batches.

``GET /api/v1/collect/config`` answers the whole configuration (inventory and collector
config) with an ``ETag``; a collector sending it back in ``If-None-Match`` gets ``304``
while nothing changed. ``POST /api/v1/collect/results`` takes a :class:`CollectBatch`; a
batch whose ``seq`` the server already accepted from that collector is acknowledged as a
duplicate and not stored twice (a collector re-sends when an answer got lost). The last
``seq`` of a collector is asked of ``recall(collector)`` the first time the process sees it,
so the runtime can keep it where the results go and a restart forgets nothing.

Both routes need a token with the write right (:func:`require_collector`, the default
``authorize``): the configuration holds device connections, which may hold inline
secrets, so it is never a public read, whatever ``server.public_reads`` says.

The handlers only see callables the runtime passes in: ``config()`` for the current
configuration, ``accept(batch)`` to store a batch, ``recall(collector)`` for its last stored
``seq``, and ``authorize(request)``, which raises :class:`~watchkeeper.errors.AuthError` to
refuse. Collectors send ``Authorization: Token KEY``; :func:`token_of` reads it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from watchkeeper.api.auth import NO_PERMISSION, NOT_PROVIDED
from watchkeeper.api.limits import decode_json
from watchkeeper.errors import AuthError
from watchkeeper.wire import CollectAck, CollectBatch, CollectConfig

log = logging.getLogger(__name__)

JSON = "application/json"

ConfigSource = Callable[[], CollectConfig]
Accept = Callable[[CollectBatch], Awaitable[int]]
Authorize = Callable[[Request], None]
Recall = Callable[[str], Awaitable[int]]


def allow_all(request: Request) -> None:
    """An ``authorize`` for tests and private set-ups: every request may fetch and send."""


def require_collector(request: Request) -> None:
    """The default ``authorize``: the token the auth middleware found must have the write
    right (a collector writes results); 401 without one, 403 with a read-only one."""
    token = request.scope.get("state", {}).get("token")
    if token is None:
        raise AuthError(NOT_PROVIDED)
    if not getattr(token, "write", False):
        raise AuthError(NO_PERMISSION, status=403)


async def no_history(collector: str) -> int:
    """The default ``recall``: nothing stored before this process started."""
    return -1


def token_of(request: Request) -> str | None:
    """The KEY of an ``Authorization: Token KEY`` header, if any (never a query parameter)."""
    scheme, _, key = request.headers.get("authorization", "").partition(" ")
    return key.strip() or None if scheme.lower() == "token" else None


class CollectApi:
    """Routes for remote collectors, bound to the runtime's callables."""

    def __init__(self, *, config: ConfigSource, accept: Accept,
                 authorize: Authorize = require_collector, recall: Recall = no_history) -> None:
        self._config = config
        self._accept = accept
        self._authorize = authorize
        self._recall = recall
        self._last_seq: dict[str, int] = {}
        self._locks: dict[str, asyncio.Lock] = {}
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
        batch = decode_json(await request.body(), CollectBatch)  # depth bounded: 400
        # One batch of a collector at a time: a re-send racing its original is a duplicate.
        async with self._locks.setdefault(batch.collector, asyncio.Lock()):
            last = self._last_seq.get(batch.collector)
            if last is None:
                last = self._last_seq[batch.collector] = await self._recall(batch.collector)
            if batch.seq <= last:
                return _json(CollectAck(accepted=0, duplicate=True))
            self._note_dropped(batch)
            accepted = await self._accept(batch)
            self._last_seq[batch.collector] = batch.seq
        return _json(CollectAck(accepted=accepted))

    def _note_dropped(self, batch: CollectBatch) -> None:
        known = self._dropped.get(batch.collector, 0)
        if batch.dropped > known:
            log.warning("collector %s dropped %d results its spool could not hold (%d in all)",
                        batch.collector, batch.dropped - known, batch.dropped)
            self._dropped[batch.collector] = batch.dropped


def _json(payload: object) -> Response:
    return Response(msgspec.json.encode(payload), media_type=JSON)
