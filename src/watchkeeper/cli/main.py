"""The ``watchkeeper`` command: one parser per command group, one exit-code path."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Sequence

from watchkeeper._version import __version__
from watchkeeper.cli import (
    alarms,
    archive,
    collect,
    config,
    engine,
    inventory,
    jobs,
    run,
    series,
    token,
)
from watchkeeper.cli.exits import exit_code, explain
from watchkeeper.cli.options import SERVER_ENV, Parser
from watchkeeper.errors import WatchkeeperError


def build_parser() -> Parser:
    parser = Parser(prog="watchkeeper", description="Keeps watch over networks and services.")
    parser.add_argument("--version", action="version", version=f"watchkeeper {__version__}",
                        help="print the version and exit")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    run.add_commands(commands)
    collect.add_commands(commands)
    engine.add_commands(commands)
    series.add_commands(commands)
    alarms.add_commands(commands)
    jobs.add_commands(commands)
    inventory.add_commands(commands)
    archive.add_commands(commands)
    token.add_commands(commands)
    config.add_commands(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if "WATCHKEEPER_URL" in os.environ and SERVER_ENV not in os.environ:
        print(f"watchkeeper: WATCHKEEPER_URL is no longer read; use {SERVER_ENV}",
              file=sys.stderr)
    try:
        code: int = args.handler(args)
    except (WatchkeeperError, KeyboardInterrupt) as exc:
        if not isinstance(exc, KeyboardInterrupt):
            print(f"watchkeeper: {explain(exc)}", file=sys.stderr)
        return exit_code(exc)
    finally:
        logging.shutdown()
    return code


if __name__ == "__main__":  # pragma: no cover - exercised through the console script
    sys.exit(main())
