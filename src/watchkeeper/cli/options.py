"""The one vocabulary of watchkeeper's own commands: every shared flag is defined here.

=====================  ==================================  =================================
flag                   meaning                             default
=====================  ==================================  =================================
``--server URL``       the watchkeeper API to talk to      ``$WATCHKEEPER_SERVER``, else
                                                           ``http://127.0.0.1:8080``
``--token KEY``        API key (``Authorization: Token``)  ``$WATCHKEEPER_TOKEN``
                       for writes, and reads if needed
``--insecure``         do not verify TLS certificates      verified
``-o/--output FMT``    ``table``, ``csv`` or ``json``      ``table``
``-c/--config FILE``   the settings file                   ``$WATCHKEEPER_CONFIG``
``--data-dir DIR``     settings key ``data_dir``           ``var``
``--listen HOST:PORT`` settings key ``server.listen``      ``127.0.0.1:8080``
``--log-level LEVEL``  settings key ``log_level``          ``info``
``--since/--start``    one time grammar: ``5m``, ``2h``,   ``--since 1h``
``--end/--step``       ``1d``, seconds; times also epoch
                       or ISO 8601
=====================  ==================================  =================================

``-f/--file`` is kept for input files; no short letter means two things. The
``esmond-ps-*`` commands do not use this module: they keep esmond's own flags.
The client variables (``WATCHKEEPER_SERVER``, ``WATCHKEEPER_TOKEN``) can never be
settings: ``server`` is a section, which the environment only sets key by key
(``WATCHKEEPER_SERVER__LISTEN``), and ``token`` is reserved (see ``settings.CLIENT_ENV``).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import NoReturn

from watchkeeper.cli.archive_time import TimeParseError, parse_time
from watchkeeper.errors import ConfigError
from watchkeeper.settings import parse_duration

SERVER_ENV = "WATCHKEEPER_SERVER"
TOKEN_ENV = "WATCHKEEPER_TOKEN"  # noqa: S105 - the variable's name, not a secret
CONFIG_ENV = "WATCHKEEPER_CONFIG"
DEFAULT_SERVER = "http://127.0.0.1:8080"
OUTPUTS = ("table", "csv", "json")
LOG_LEVELS = ("debug", "info", "warning", "error")

EX_USAGE = 64  # sysexits.h: the command line is wrong


class Parser(argparse.ArgumentParser):
    """argparse with the usage exit code of sysexits (64), not 2, which ``collect --once``
    uses for CRITICAL."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EX_USAGE, f"{self.prog}: error: {message}\n")


# -- value types: one time grammar -------------------------------------------------------


def duration(text: str) -> float:
    """Seconds from ``300``, ``30s``, ``5m``, ``2h``, ``1d`` or ``1w`` (argparse type)."""
    try:
        seconds = parse_duration(text)
    except ConfigError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a duration (try 300, 30s, 5m, 2h or 1d)") from None
    if seconds <= 0:
        raise argparse.ArgumentTypeError(f"{text!r}: a duration must be more than 0")
    return seconds


def moment(text: str) -> float:
    """Epoch seconds from epoch, ISO 8601, ``now``, or a duration ago (``5m``, ``2h ago``)."""
    try:
        return float(parse_time(text))
    except TimeParseError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def window(args: argparse.Namespace, *, now: float | None = None) -> tuple[float, float | None]:
    """``(start, end)`` from ``--start``/``--since``/``--end``; ``--start`` wins."""
    now = time.time() if now is None else now
    start = args.start if args.start is not None else now - args.since
    return start, args.end


# -- flags -------------------------------------------------------------------------------


def add_server(cmd: argparse.ArgumentParser, *, purpose: str | None = None) -> None:
    """``--server`` and ``--insecure``: which API, and whether to skip TLS verification;
    ``purpose`` is the help where the server is for something more (``token``: instead of
    the local store)."""
    cmd.add_argument("--server", metavar="URL", default=None,
                     help=purpose or f"watchkeeper API URL (default ${SERVER_ENV} or "
                                     f"{DEFAULT_SERVER})")
    cmd.add_argument("--insecure", action="store_true",
                     help="do not verify the server's TLS certificate")


def server_url(args: argparse.Namespace) -> str:
    """The ``--server`` flag, else ``$WATCHKEEPER_SERVER``, else the default."""
    return str(args.server or os.environ.get(SERVER_ENV) or DEFAULT_SERVER)


def add_token(cmd: argparse.ArgumentParser, *, right: str = "writes") -> None:
    """``--token``: the API key, for ``right`` (writes; admin for ``token --server``)."""
    cmd.add_argument("--token", metavar="KEY", default=None,
                     help=f"API key for {right}, sent as 'Authorization: Token KEY' "
                          f"(default ${TOKEN_ENV})")


def token_of(args: argparse.Namespace) -> str | None:
    """The ``--token`` flag, else ``$WATCHKEEPER_TOKEN``, else none."""
    return args.token or os.environ.get(TOKEN_ENV) or None


def add_output(cmd: argparse.ArgumentParser, *, dest: str = "output") -> None:
    """``-o/--output table|csv|json``; ``--format`` stays as a hidden, deprecated alias."""
    cmd.add_argument("-o", "--output", choices=OUTPUTS, default="table", dest=dest,
                     help="output format: table (for people), csv or json (default table)")
    cmd.add_argument("--format", choices=(*OUTPUTS, "human"), dest=dest,
                     help=argparse.SUPPRESS)


def output_of(args: argparse.Namespace, dest: str = "output") -> str:
    """The output format; the deprecated ``human`` is ``table``."""
    value = str(getattr(args, dest))
    return "table" if value == "human" else value


def add_client(cmd: argparse.ArgumentParser, *, write: bool = False) -> None:
    """The flags of every command that talks to the API: server, TLS, token, output. A
    command that only reads sends the token when one is given (a server with
    ``server.public_reads: false`` needs it)."""
    add_server(cmd)
    add_token(cmd, right="writes" if write else "a server whose reads need one")
    add_output(cmd)


def add_config(cmd: argparse.ArgumentParser) -> None:
    cmd.add_argument("-c", "--config", metavar="FILE",
                     help=f"the YAML settings file (default ${CONFIG_ENV})")


def add_data_dir(cmd: argparse.ArgumentParser) -> None:
    """``--data-dir`` (settings key ``data_dir``); ``--data`` stays as a hidden alias."""
    cmd.add_argument("--data-dir", metavar="DIR", dest="data_dir",
                     help="data directory, settings key data_dir (default ./var)")
    cmd.add_argument("--data", metavar="DIR", dest="data_dir", help=argparse.SUPPRESS)


def add_listen(cmd: argparse.ArgumentParser) -> None:
    cmd.add_argument("--listen", metavar="HOST:PORT",
                     help="API address, settings key server.listen (default 127.0.0.1:8080)")


def add_log_level(cmd: argparse.ArgumentParser) -> None:
    cmd.add_argument("--log-level", choices=LOG_LEVELS,
                     help="how much to log, settings key log_level (default info)")


def add_time_window(cmd: argparse.ArgumentParser, *, since: str = "1h") -> None:
    """``--since/--start/--end``, all in the one time grammar."""
    cmd.add_argument("--since", type=duration, default=duration(since), metavar="DURATION",
                     help=f"how far back: 300, 5m, 2h, 1d (default {since})")
    cmd.add_argument("--start", type=moment, metavar="TIME",
                     help="start: epoch, ISO 8601, or a duration ago (5m); overrides --since")
    cmd.add_argument("--end", type=moment, metavar="TIME",
                     help="end: epoch, ISO 8601, or a duration ago (default now)")


def add_step(cmd: argparse.ArgumentParser) -> None:
    cmd.add_argument("--step", type=duration, metavar="DURATION",
                     help="aggregate into buckets of this size: 60, 5m, 1h")


def settings_overrides(args: argparse.Namespace) -> dict[str, object]:
    """The flags named like settings keys, as overrides for ``runtime.read_settings``."""
    return {"server.listen": getattr(args, "listen", None),
            "data_dir": getattr(args, "data_dir", None),
            "log_level": getattr(args, "log_level", None)}
