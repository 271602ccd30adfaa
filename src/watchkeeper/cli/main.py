"""The ``watchkeeper`` command."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from watchkeeper._version import __version__
from watchkeeper.cli import archive, collect, data, engine, inventory, run, token
from watchkeeper.errors import ClientError, WatchkeeperError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="watchkeeper",
        description="Keeps watch over networks and services.",
    )
    parser.add_argument("--version", action="version", version=f"watchkeeper {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    run.add_commands(commands)
    collect.add_commands(commands)
    engine.add_commands(commands)
    data.add_commands(commands)
    inventory.add_commands(commands)
    archive.add_commands(commands)
    token.add_commands(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code: int = args.handler(args)
    except ClientError as exc:
        print(f"watchkeeper: {exc}", file=sys.stderr)
        return 1
    except WatchkeeperError as exc:
        print(f"watchkeeper: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    finally:
        logging.shutdown()
    return code


if __name__ == "__main__":  # pragma: no cover - exercised through the console script
    sys.exit(main())
