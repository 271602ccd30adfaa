"""``/api/v1/tokens``: list, create and revoke API tokens, as ``watchkeeper token`` does.

The routes work on the very store the token middleware reads (``api.auth``), so a key
created here works at once and a revoked one is refused from the next request on, by
every server sharing the store. Every method needs a token with the ``admin`` scope,
whatever ``public_reads`` says (the middleware enforces it: ``auth.ADMIN``). A key is
answered once, by the POST that made it; listings carry ids, never keys. Answers are
``Cache-Control: no-store``.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from watchkeeper.api.limits import decode_json
from watchkeeper.api.openapi import operation
from watchkeeper.archive.tokens import SCOPES, Token, TokenStore, key_id
from watchkeeper.errors import InvalidData, NotFound
from watchkeeper.wire import CreatedToken, NewToken, TokenInfo, TokenList

JSON = "application/json"
NO_STORE = {"Cache-Control": "no-store"}


def info(token: Token) -> TokenInfo:
    return TokenInfo(id=token.id, user=token.user, scopes=list(token.scopes),
                     created=token.created, last_used=token.last_used)


def _json(payload: object, status: int = 200) -> Response:
    return Response(msgspec.json.encode(payload), status_code=status, media_type=JSON,
                    headers=NO_STORE)


def _rank(scopes: list[str]) -> int:
    """The highest scope named, as its index in SCOPES."""
    unknown = [s for s in scopes if s not in SCOPES]
    if unknown:
        raise InvalidData(f"unknown scope {unknown[0]!r}: one or more of "
                          f"{', '.join(SCOPES)}", field="scopes", value=unknown[0])
    if not scopes:
        raise InvalidData(f"name at least one of {', '.join(SCOPES)}", field="scopes")
    return max(SCOPES.index(s) for s in scopes)


def token_routes(tokens: TokenStore, *, now: Callable[[], float] = time.time
                 ) -> list[BaseRoute]:
    """Routes over the store the servers read."""

    @operation("every API token: id, user, scopes, created, last used (never a key)",
               "admin", answer=TokenList, errors=(401, 403))
    async def list_tokens(request: Request) -> Response:
        return _json(TokenList(tokens=[info(t) for t in await tokens.tokens()]))

    @operation("create a token; its key is in this answer only", "admin", body=NewToken,
               answer=CreatedToken, status=201, errors=(400, 401, 403))
    async def create_token(request: Request) -> Response:
        body = decode_json(await request.body(), NewToken)
        rank = _rank(body.scopes)
        created = int(now())
        key = await tokens.create(body.user, write=rank >= 1, admin=rank >= 2, now=created)
        return _json(CreatedToken(id=key_id(key), user=body.user,
                                  scopes=list(SCOPES[:rank + 1]), created=created, key=key),
                     status=201)

    @operation("revoke a token by id: refused from the next request on, by every server",
               "admin", answer=TokenInfo, errors=(400, 401, 403, 404))
    async def revoke_token(request: Request) -> Response:
        token_id = request.path_params["id"]
        gone = await tokens.revoke(token_id=token_id)  # InvalidData names "id"
        if not gone:
            raise NotFound(f"no token with id {token_id} (see GET /api/v1/tokens)")
        return _json(info(gone[0]))

    return [
        Route("/api/v1/tokens", list_tokens, methods=["GET"]),
        Route("/api/v1/tokens", create_token, methods=["POST"]),
        Route("/api/v1/tokens/{id:str}", revoke_token, methods=["DELETE"]),
    ]
