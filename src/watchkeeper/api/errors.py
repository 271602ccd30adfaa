"""Domain errors to HTTP responses, in one place. Bodies are esmond's ``{"detail": ...}``."""

from __future__ import annotations

import logging

import msgspec
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from watchkeeper.errors import (
    AuthError,
    Conflict,
    InvalidData,
    NotFound,
    SeriesNotFound,
    WatchkeeperError,
)
from watchkeeper.wire import ErrorBody

log = logging.getLogger(__name__)

JSON = "application/json"


def error_response(status: int, detail: str) -> Response:
    return Response(msgspec.json.encode(ErrorBody(detail=detail)), status_code=status,
                    media_type=JSON)


async def domain_error(request: Request, exc: Exception) -> Response:
    if isinstance(exc, SeriesNotFound | NotFound | LookupError):
        return error_response(404, str(exc))
    if isinstance(exc, Conflict):
        return error_response(409, str(exc))
    if isinstance(exc, InvalidData):
        return error_response(400, str(exc))
    if isinstance(exc, AuthError):
        return error_response(exc.status, str(exc))
    log.error("request %s %s failed: %s", request.method, request.url.path, exc)
    return error_response(500, str(exc))


async def decode_error(request: Request, exc: Exception) -> Response:
    return error_response(400, f"malformed request body: {exc}")


async def http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return error_response(exc.status_code, str(exc.detail))


async def unexpected_error(request: Request, exc: Exception) -> Response:
    log.error("request %s %s failed", request.method, request.url.path, exc_info=exc)
    return error_response(500, f"internal error: {type(exc).__name__}")


HANDLERS = {
    WatchkeeperError: domain_error,
    msgspec.ValidationError: decode_error,
    msgspec.DecodeError: decode_error,
    HTTPException: http_error,
    Exception: unexpected_error,
}
