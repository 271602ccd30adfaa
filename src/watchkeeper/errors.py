"""The one exception tree of watchkeeper.

Every error raised on purpose by watchkeeper derives from :class:`WatchkeeperError`
and carries the context needed to act on it::

    WatchkeeperError
    ├── ConfigError (ValueError)          file, line, key, value: a bad setting, refused early
    ├── UsageError (ValueError)           a wrong command line (the CLI exits 64)
    ├── PluginError (ImportError)         group, plugin: not found, or breaks its contract
    ├── CollectError                      a poll that could not be run
    │   ├── PollTimeout (TimeoutError)    the poll exceeded its timeout
    │   └── LocalSaturation               resource: watchkeeper ran out of its own capacity
    ├── PipelineError                     an engine chain that cannot run
    ├── InventoryError                    the inventory model cannot be built or read
    ├── ArchiveError                      the archive refused or failed an operation
    │   ├── SeriesNotFound (LookupError)  series: no such series
    │   ├── InvalidData (ValueError)      field, value: a write or query with bad input
    │   ├── NotFound (LookupError)        a named thing (an esmond metadata) does not exist
    │   ├── Conflict                      a write would replace a point that must stay (409)
    │   ├── AuthError                     status: no valid token (401) or no right (403)
    │   └── QueryError                    a PromQL query refused: Prometheus' error_type, status
    │       ├── BadQuery                  bad_data (400): unparsable, bad parameter, unsupported
    │       ├── QueryTooLarge             execution (422): over a series or samples limit
    │       └── QueryTimeout              timeout (503): ran past its time
    └── ClientError                       raised by watchkeeper.client
        ├── TransportError (OSError)      the server could not be reached
        └── HTTPStatusError               status, detail: the server answered 4xx/5xx

The REST layer maps these to HTTP in one place (``api.errors``); the client maps
HTTP back to the same classes, so callers catch the same names on both sides.
"""

from __future__ import annotations


class WatchkeeperError(Exception):
    """Root of every error watchkeeper raises on purpose."""


class ConfigError(WatchkeeperError, ValueError):
    """A setting is missing, malformed or inconsistent; found before anything starts."""

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        line: int | None = None,
        key: str | None = None,
        value: object = None,
    ) -> None:
        self.file = file
        self.line = line
        self.key = key
        self.value = value
        where = file or "<settings>"
        if line is not None:
            where = f"{where}:{line}"
        parts = [where]
        if key:
            parts.append(key)
        shown = _shown_value(key, value)
        got = f" (value: {shown})" if shown is not None else ""
        super().__init__(f"{': '.join(parts)}: {message}{got}")


_SECRET_WORDS = ("password", "secret", "token", "key", "community")


def _shown_value(key: str | None, value: object) -> str | None:
    """The bad value for a message: never a secret (a key naming one shows ``<redacted>``),
    never a whole section, never more than a line."""
    if value is None or isinstance(value, (dict, list)):
        return None
    last = (key or "").rsplit(".", 1)[-1].lower()
    if any(word in last for word in _SECRET_WORDS):
        return "<redacted>"
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


class UsageError(WatchkeeperError, ValueError):
    """The command line is wrong (a missing argument, options that exclude each other)."""


class PluginError(WatchkeeperError, ImportError):
    """A plugin could not be loaded from its group, or does not fulfil its contract."""

    def __init__(self, message: str, *, group: str, plugin: str) -> None:
        self.group = group
        self.plugin = plugin
        super().__init__(f"plugin {plugin!r} in group {group!r}: {message}")


class CollectError(WatchkeeperError):
    """A poll could not be run."""


class PollTimeout(CollectError, TimeoutError):
    """A poll ran longer than its timeout."""


class LocalSaturation(CollectError):
    """watchkeeper itself ran out of capacity (a connection pool, worker threads, a queue):
    the poll failed for a local reason, never the device's fault. ``resource`` names it."""

    def __init__(self, message: str, *, resource: str) -> None:
        self.resource = resource
        super().__init__(message)


class PipelineError(WatchkeeperError):
    """The engine chain is invalid or an engine cannot run."""


class InventoryError(WatchkeeperError):
    """The inventory model cannot be built or read."""


class ArchiveError(WatchkeeperError):
    """The archive refused or failed an operation."""


class SeriesNotFound(ArchiveError, LookupError):
    """No series has the requested key."""

    def __init__(self, series: str) -> None:
        self.series = series
        super().__init__(f"no series {series!r}")


class InvalidData(ArchiveError, ValueError):
    """A write or a query carries input the archive cannot accept."""

    def __init__(self, message: str, *, field: str | None = None, value: object = None) -> None:
        self.field = field
        self.value = value
        super().__init__(f"{field}: {message}" if field else message)


class NotFound(ArchiveError, LookupError):
    """A thing named in a request (an esmond metadata key) does not exist."""


class Conflict(ArchiveError):
    """A write would replace a stored point that must not change (esmond's 409)."""


class AuthError(ArchiveError):
    """Missing or invalid credentials (401), or valid ones without the right (403)."""

    def __init__(self, message: str, *, status: int = 401) -> None:
        self.status = status
        super().__init__(message)


class QueryError(ArchiveError):
    """A PromQL query Prometheus would refuse; ``error_type`` is Prometheus' ``errorType``
    (``execution``, 422, for what fails while evaluating)."""

    error_type = "execution"
    status = 422


class BadQuery(QueryError):
    """The query or a parameter is wrong, or uses what is not supported (400 ``bad_data``)."""

    error_type = "bad_data"
    status = 400


class QueryTooLarge(QueryError):
    """The query would touch more series or samples than the limits allow (422)."""


class QueryTimeout(QueryError):
    """The query ran past its timeout (503 ``timeout``)."""

    error_type = "timeout"
    status = 503


class ClientError(WatchkeeperError):
    """Raised by watchkeeper.client."""


class TransportError(ClientError, OSError):
    """The server could not be reached."""


class HTTPStatusError(ClientError):
    """The server answered with an error status; ``detail`` is its explanation."""

    def __init__(self, status: int, detail: str, *, url: str = "") -> None:
        self.status = status
        self.detail = detail
        self.url = url
        super().__init__(f"HTTP {status} from {url or 'server'}: {detail}")
