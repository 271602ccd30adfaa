"""The one exit-code path of watchkeeper's own commands.

``collect --once`` exits with its status roll-up (0 OK, 1 WARNING, 2 CRITICAL, 3 ERRORED),
so every failure takes a code of its own, from sysexits.h, and a script can tell "the
checks found trouble" from "the command could not run":

====  ==============  ============================================================
code  name            when
====  ==============  ============================================================
64    EX_USAGE        the command line is wrong
65    EX_DATAERR      the server refused the request (HTTP 4xx: bad input, not found)
69    EX_UNAVAILABLE  the server cannot be reached, or failed (HTTP 5xx)
70    EX_SOFTWARE     any other failure
77    EX_NOPERM       no valid token, or a token without the right (HTTP 401/403)
78    EX_CONFIG       a setting is wrong, or a plugin cannot be loaded
130                   interrupted (Ctrl-C)
====  ==============  ============================================================

The ``esmond-ps-*`` commands keep esmond's behaviour and do not use this module.
"""

from __future__ import annotations

from collections.abc import Mapping

from watchkeeper.cli.options import DEFAULT_SERVER, EX_USAGE, SERVER_ENV, TOKEN_ENV
from watchkeeper.errors import (
    AuthError,
    ConfigError,
    HTTPStatusError,
    PluginError,
    TransportError,
    UsageError,
)

EX_DATAERR = 65
EX_UNAVAILABLE = 69
EX_SOFTWARE = 70
EX_NOPERM = 77
EX_CONFIG = 78
EX_INTERRUPTED = 130

__all__ = ["EX_CONFIG", "EX_DATAERR", "EX_INTERRUPTED", "EX_NOPERM", "EX_SOFTWARE",
           "EX_UNAVAILABLE", "EX_USAGE", "exit_code", "explain", "name_flags"]


_BY_CLASS: tuple[tuple[type[BaseException] | tuple[type[BaseException], ...], int], ...] = (
    (KeyboardInterrupt, EX_INTERRUPTED),
    (UsageError, EX_USAGE),
    ((ConfigError, PluginError), EX_CONFIG),
    (TransportError, EX_UNAVAILABLE),
    (AuthError, EX_NOPERM),
)


def exit_code(exc: BaseException) -> int:
    """The exit status for an error that ended a command."""
    for kind, code in _BY_CLASS:
        if isinstance(exc, kind):
            return code
    if isinstance(exc, HTTPStatusError):
        if exc.status in (401, 403):
            return EX_NOPERM
        return EX_UNAVAILABLE if exc.status >= 500 else EX_DATAERR
    return EX_SOFTWARE


def explain(exc: BaseException) -> str:
    """The one line printed for ``exc``, with what to do where there is a usual cause."""
    text = str(exc)
    if isinstance(exc, TransportError):
        return (f"{text}\n  the server is chosen by --server URL or ${SERVER_ENV} (default "
                f"{DEFAULT_SERVER}); is `watchkeeper up` running there? To serve elsewhere: "
                "watchkeeper up --listen 127.0.0.1:9090 (make run ARGS=\"--listen "
                "127.0.0.1:9090\")")
    if isinstance(exc, ConfigError) and exc.key == "server.listen":
        return (f"{text}\n  choose the address with --listen HOST:PORT or "
                "WATCHKEEPER_SERVER__LISTEN (make run ARGS=\"--listen 127.0.0.1:9090\")")
    if isinstance(exc, HTTPStatusError) and exc.status == 401:
        return (f"{text}\n  give a key with --token KEY or ${TOKEN_ENV} (watchkeeper token "
                "create --user NAME, with --write for a command that writes)")
    return text


def name_flags(exc: HTTPStatusError, flags: Mapping[str, str]) -> HTTPStatusError:
    """A 400 whose detail names a request parameter (``plugin: must be ...``), reworded to
    name the flag that set it (``--plugin: must be ...``): the user typed the flag."""
    field, sep, rest = exc.detail.partition(": ")
    flag = flags.get(field)
    if exc.status != 400 or not sep or flag is None:
        return exc
    return HTTPStatusError(exc.status, f"{flag}: {rest}", url=exc.url)
