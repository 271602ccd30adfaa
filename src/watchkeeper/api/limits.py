"""What one request may ask of the server: whole-number parameters, JSON nesting, body size.

Every route parses ``limit``/``offset``-like parameters with :func:`whole_param` and every
JSON body with :func:`decode_json`, so a bad value is one 400 naming the field wherever it
is sent, never an ``OverflowError`` or ``RecursionError`` deeper down (issue 17).

Body size: :class:`BodyLimit` counts the bytes as they arrive, so a chunked body (no
``Content-Length``) is held to the same ``server.max_body_bytes`` as a declared one.
"""

from __future__ import annotations

from typing import Any, Final, TypeVar, overload

import msgspec
import numpy as np
import numpy.typing as npt
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from watchkeeper.api.errors import error_response
from watchkeeper.errors import InvalidData

MAX_WHOLE: Final = 2**53
"""The largest whole-number parameter: exact as a float and far inside SQLite's int64."""
MAX_JSON_DEPTH: Final = 64
"""Arrays and objects nested deeper than this are refused (the deepest real body, an
esmond bulk write, nests 4)."""

_T = TypeVar("_T")
# Byte codes the depth scan looks at: quote, backslash, brackets; every other byte is 0.
_QUOTE, _ESCAPE, _OPEN, _CLOSE = 1, 2, 3, 4
_MARKS = bytes(
    {0x22: _QUOTE, 0x5C: _ESCAPE, 0x5B: _OPEN, 0x7B: _OPEN, 0x5D: _CLOSE, 0x7D: _CLOSE}.get(b, 0)
    for b in range(256))


def whole_param(raw: str | None, *, field: str, default: int, low: int = 0,
                high: int = MAX_WHOLE) -> int:
    """A whole-number query parameter in ``low..high``; ``default`` when absent or empty.

    Raises InvalidData naming the field and the value otherwise (``1e400``, ``NaN``,
    ``1.5``, ``-1`` and ``10**30`` alike): decimal digits only, as a person types them.
    """
    if raw is None or raw == "":
        return default
    text = raw.strip()
    if not (text.isascii() and text.isdigit()) or len(text) > len(str(high)) + 1:
        raise InvalidData(f"expected a whole number from {low} to {high}, not {raw[:40]!r}",
                          field=field, value=raw[:40])
    value = int(text)
    if not low <= value <= high:
        raise InvalidData(f"expected a whole number from {low} to {high}, not {raw[:40]!r}",
                          field=field, value=raw[:40])
    return value


def json_depth(raw: bytes, *, stop_after: int = MAX_JSON_DEPTH) -> int:
    """How deeply the arrays and objects of the JSON text ``raw`` nest (brackets inside
    strings do not count). Exact up to ``stop_after``; a body with fewer brackets than
    that in all is answered without a scan.

    The scan runs in numpy over the positions of quotes, backslashes and brackets only,
    so even a body of the largest size allowed costs milliseconds, not a Python loop.
    """
    opens = raw.count(b"[") + raw.count(b"{")
    if opens <= stop_after:
        return opens  # an upper bound, and within the limit: no need to be exact
    codes = np.frombuffer(raw.translate(_MARKS), dtype=np.uint8)
    where = np.flatnonzero(codes)
    kind = codes[where]
    quote = kind == _QUOTE
    if b"\\" in raw:  # only then can a quote be escaped
        quote &= ~_escaped(where, kind == _ESCAPE)
    inside = (np.cumsum(quote, dtype=np.int32) & 1).astype(bool)  # after an odd quote count
    step = (kind == _OPEN).astype(np.int8) - (kind == _CLOSE).astype(np.int8)
    step[inside] = 0
    return int(np.cumsum(step, dtype=np.int32).max(initial=0))


def _escaped(where: npt.NDArray[np.intp], escape: npt.NDArray[np.bool_]) -> npt.NDArray[np.bool_]:
    """Which marks follow an odd run of backslashes ending right before them."""
    count = len(where)
    adjacent = np.zeros(count, dtype=bool)  # mark i directly follows a backslash
    adjacent[1:] = escape[:-1] & (where[1:] == where[:-1] + 1)
    index = np.arange(count)
    run_start = np.maximum.accumulate(np.where(escape & ~(adjacent & escape), index, 0))
    run = np.zeros(count, dtype=np.intp)
    run[1:] = index[:-1] - run_start[:-1] + 1
    odd: npt.NDArray[np.bool_] = adjacent & (run % 2 == 1)
    return odd


def check_depth(raw: bytes, *, field: str = "body") -> None:
    """Raise InvalidData when ``raw`` nests deeper than :data:`MAX_JSON_DEPTH`."""
    if json_depth(raw) > MAX_JSON_DEPTH:
        raise InvalidData(f"JSON nests arrays and objects deeper than {MAX_JSON_DEPTH} levels "
                          "(the limit)", field=field)


@overload
def decode_json(raw: bytes, type: type[_T], *, field: str = ..., scan: bool = ...) -> _T: ...
@overload
def decode_json(raw: bytes, type: Any = ..., *, field: str = ..., scan: bool = ...) -> Any: ...
def decode_json(raw: bytes, type: Any = Any, *, field: str = "body", scan: bool = True) -> Any:
    """``raw`` decoded as ``type`` by msgspec, its nesting bounded first.

    The msgspec errors (DecodeError, ValidationError) pass through to the one mapping in
    :mod:`watchkeeper.api.errors`; too deep a body is InvalidData naming the limit.
    ``scan=False`` skips the depth scan for a ``type`` that bounds depth itself (no
    ``Any`` inside): a deeper body then fails validation, or, deep in a field msgspec
    skips, hits msgspec's recursion guard, which answers the same 400.
    """
    if scan:
        check_depth(raw, field=field)
    try:
        return msgspec.json.decode(raw, type=type)
    except RecursionError:
        raise InvalidData(f"JSON nests arrays and objects deeper than {MAX_JSON_DEPTH} levels "
                          "(the limit)", field=field) from None


def decode_msgpack(raw: bytes, type: type[_T]) -> _T:
    """``raw`` decoded as ``type``; too deep a nesting (in fields msgspec skips) is a 400."""
    try:
        return msgspec.msgpack.decode(raw, type=type)
    except RecursionError:
        raise InvalidData(f"msgpack nests deeper than this server decodes (keep it under "
                          f"{MAX_JSON_DEPTH} levels)", field="body") from None


class BodyTooLarge(Exception):
    """Raised inside ``receive`` once a body passes the limit (never leaves BodyLimit)."""


class BodyLimit:
    """Refuses request bodies over ``max_bytes`` with 413, declared or chunked.

    A ``Content-Length`` over the limit is answered before the body is read. A body
    without one is counted as it arrives and the 413 is sent as soon as the count passes
    the limit, if the application has not started its response yet (it cannot have
    acknowledged a body it has not finished reading). The rest of the body is left to
    the server, which reads and discards it, so the connection stays usable.
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", ()):
            if name == b"content-length" and value.isdigit() and int(value) > self.max_bytes:
                await self._refuse(scope, receive, send)
                return
        seen = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise BodyTooLarge
            return message

        async def watching_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, watching_send)
        except BodyTooLarge:
            if started:
                raise
            await self._refuse(scope, receive, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        await error_response(413, f"request body over {self.max_bytes} bytes (the "
                                  "server.max_body_bytes limit)")(scope, receive, send)
