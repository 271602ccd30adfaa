"""Token authentication of the archive's routes, as esmond (Django REST framework) does it.

It guards the esmond routes, the native archive routes (``/api/v1/write``,
``/api/v1/series``, ``/api/v1/query``), remote collectors' config and results
(``/api/v1/collect/``), alarm actions, the event importer and inventory notifications
(``/api/v1/inventory/notifications``); health, metrics and the inventory read routes pass
through untouched.

``Authorization: Token <key>`` or ``Bearer <key>`` (keyword in any case; Prometheus'
``remote_write.authorization`` sends Bearer). Under the ``basic`` path prefixes (the
ecosystem's write routes: Prometheus and Telegraf send a username and password), basic
auth is read too, the key being the password. Reads (GET, HEAD, OPTIONS) are
public unless ``public_reads`` is off; every other method needs a token with the write
right. Failures answer in esmond's words and form:

* no credentials where they are needed: 401 ``Authentication credentials were not
  provided.`` with ``WWW-Authenticate: Token``;
* a malformed ``Token`` header, or an unknown key, even on a public read: 401 (DRF
  authenticates whatever header is sent);
* a valid key without the write right on a write: 403.

Under the ``admin`` path prefixes (token management, ``/api/v1/tokens``) every method,
reads included, needs a token with the ``admin`` scope, whatever ``public_reads`` says:
none is 401, another is 403.

Other schemes (``ApiKey user:key``, ``Basic``) are ignored, as DRF ignores them. Keys
found are remembered, so a busy writer does not cost a lookup per request, but every
request first reads the store's revocation *revision* (a counter every revocation
raises, in any process): when it moved, the remembered keys are forgotten, so a revoked
key is refused from the very next request on, by every server sharing the store. Each
key's "last used" time is written at most once a minute. Keys are never logged.
"""

from __future__ import annotations

import base64
import logging
import time
from collections.abc import Callable
from typing import Final

from starlette.types import ASGIApp, Receive, Scope, Send

from watchkeeper.api.errors import error_response
from watchkeeper.archive.tokens import Token, TokenStore, key_hash, key_id
from watchkeeper.errors import ArchiveError, AuthError

log = logging.getLogger(__name__)

SAFE_METHODS: Final = frozenset({"GET", "HEAD", "OPTIONS"})
NOT_PROVIDED: Final = "Authentication credentials were not provided."
NO_PERMISSION: Final = "You do not have permission to perform this action."
_TOUCH_SECONDS: Final = 60.0
_CACHE_SIZE: Final = 10_000
PROTECTED: Final = ("/esmond/perfsonar/", "/perfsonar/", "/api/v1/write", "/api/v1/series",
                    "/api/v1/query", "/api/v1/collect/", "/api/v1/alarms",
                    "/api/v1/events/", "/api/v1/inventory/notifications", "/api/v1/tokens")
"""Path prefixes the middleware guards."""
ADMIN: Final = ("/api/v1/tokens",)
"""Path prefixes where every method needs an admin token."""


def parse_authorization(header: bytes | None, *, basic: bool = False) -> str | None:
    """The key of a ``Token <key>`` or ``Bearer <key>`` header (with ``basic``, also the
    password of a ``Basic`` header); None for no header or another scheme.

    Raises AuthError (401) for a ``Token`` header without exactly one key.
    """
    if not header:
        return None
    parts = header.split()
    if basic and len(parts) == 2 and parts[0].lower() == b"basic":
        return _basic_password(parts[1])
    if not parts or parts[0].lower() not in (b"token", b"bearer"):
        return None
    if len(parts) == 1:
        raise AuthError("Invalid token header. No credentials provided.")
    if len(parts) > 2:
        raise AuthError("Invalid token header. Token string should not contain spaces.")
    try:
        return parts[1].decode("ascii")
    except UnicodeDecodeError:
        raise AuthError("Invalid token header. Token string should not contain invalid "
                        "characters.") from None


def _basic_password(encoded: bytes) -> str:
    try:
        _, colon, password = base64.b64decode(encoded, validate=True).decode().partition(":")
    except (ValueError, UnicodeDecodeError):
        raise AuthError("Invalid basic header. Credentials not correctly base64 encoded.") \
            from None
    if not colon or not password:
        raise AuthError("Invalid basic header. No credentials provided.")
    return password


class TokenAuth:
    """ASGI middleware applying the rules above to HTTP requests under ``protected`` paths."""

    def __init__(
        self,
        app: ASGIApp,
        tokens: TokenStore,
        *,
        public_reads: bool = True,
        protected: tuple[str, ...] = PROTECTED,
        basic: tuple[str, ...] = (),
        read_posts: tuple[str, ...] = (),
        admin: tuple[str, ...] = ADMIN,
        now: Callable[[], float] = time.time,
    ) -> None:
        self.app = app
        self.tokens = tokens
        self.public_reads = public_reads
        self.protected = protected
        self.basic = basic
        self.read_posts = read_posts  # POSTs that only read (Prometheus' form queries)
        self.admin = admin
        self._now = now
        self._known: dict[str, Token] = {}
        self._revision: int | None = None
        self._touched: dict[str, float] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(self.protected):
            await self.app(scope, receive, send)
            return
        try:
            token = await self.authenticate(
                _header(scope), basic=bool(self.basic) and scope["path"].startswith(self.basic))
            method = scope["method"]
            if method == "POST" and self.read_posts and scope["path"].startswith(
                    self.read_posts):
                method = "GET"
            if self.admin and scope["path"].startswith(self.admin):
                self.authorize_admin(token)
            else:
                self.authorize(method, token)
        except AuthError as exc:
            response = error_response(exc.status, str(exc))
            if exc.status == 401:
                response.headers["WWW-Authenticate"] = "Token"
            await response(scope, receive, send)
            return
        scope.setdefault("state", {})["token"] = token
        await self.app(scope, receive, send)

    async def authenticate(self, header: bytes | None, *, basic: bool = False) -> Token | None:
        """The token the header names; None without one; AuthError for a bad one."""
        key = parse_authorization(header, basic=basic)
        if key is None:
            return None
        revision = await self.tokens.revision()
        if revision != self._revision:
            self._known.clear()  # something was revoked somewhere: forget every key
            self._revision = revision
        digest = key_hash(key)
        token = self._known.get(digest)
        if token is None:
            token = await self.tokens.lookup(key)
            if token is None:
                raise AuthError("Invalid token.")
            if len(self._known) >= _CACHE_SIZE:
                self._known.clear()
            if self._revision == revision:  # no revocation seen while we looked it up
                self._known[digest] = token
        await self._touch(key, digest)
        return token

    async def _touch(self, key: str, digest: str) -> None:
        now = self._now()
        if now - self._touched.get(digest, float("-inf")) < _TOUCH_SECONDS:
            return
        if len(self._touched) >= _CACHE_SIZE:
            self._touched.clear()
        self._touched[digest] = now
        try:
            await self.tokens.touch(key, int(now))
        except ArchiveError as exc:  # bookkeeping only: never refuse a good key for it
            log.warning("could not record the use of token %s: %s", key_id(key), exc)

    def authorize(self, method: str, token: Token | None) -> None:
        """Raise AuthError unless ``token`` may use ``method``."""
        if method in SAFE_METHODS:
            if token is None and not self.public_reads:
                raise AuthError(NOT_PROVIDED)
            return
        if token is None:
            raise AuthError(NOT_PROVIDED)
        if not token.write:
            raise AuthError(NO_PERMISSION, status=403)

    @staticmethod
    def authorize_admin(token: Token | None) -> None:
        """Raise AuthError unless ``token`` has the admin scope (any method)."""
        if token is None:
            raise AuthError(NOT_PROVIDED)
        if not token.admin:
            raise AuthError(NO_PERMISSION, status=403)


def _header(scope: Scope) -> bytes | None:
    for name, value in scope.get("headers", ()):
        if name == b"authorization":
            return bytes(value)
    return None
