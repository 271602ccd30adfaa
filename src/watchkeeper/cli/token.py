"""``watchkeeper token create``: make an API key for ``Authorization: Token <key>``.

The key is printed once, as the last word of the output, so a script can capture it
(``KEY=$(watchkeeper token create --user ps --write | awk '{print $NF}')``); only its hash
is stored. It works while a server runs on the same data: the token store is its own
SQLite file that several processes may write (or the configured PostgreSQL database).
"""

from __future__ import annotations

import argparse
import asyncio
import time
from contextlib import AsyncExitStack
from typing import Any

from watchkeeper import runtime
from watchkeeper.runtime.esmond import build_tokens


def add_commands(commands: Any) -> None:
    token = commands.add_parser("token", help="manage API tokens",
                                description="manage API tokens (Authorization: Token KEY)")
    sub = token.add_subparsers(dest="token_command", required=True, metavar="ACTION")
    create = sub.add_parser("create", help="create a key for a user; prints it last",
                            description="create an API key; the key is the last word printed")
    create.add_argument("--user", required=True, help="who the key is for")
    create.add_argument("--write", action="store_true",
                        help="allow writes (without it the key can only read)")
    where = create.add_mutually_exclusive_group()
    where.add_argument("--data", metavar="DIR", help="data directory (default ./var)")
    where.add_argument("--config", "-c", metavar="FILE", help="YAML configuration file")
    create.set_defaults(handler=_create)


def _create(args: argparse.Namespace) -> int:
    settings, locator = runtime.read_settings(args.config, overrides={"data_dir": args.data})
    tokens = build_tokens(settings, locator)

    async def create() -> str:
        async with AsyncExitStack() as stack:
            await tokens.start(stack)
            return await tokens.create(args.user, write=args.write, now=int(time.time()))

    key = asyncio.run(create())
    rights = "read and write" if args.write else "read-only"
    print(f"Created a {rights} token for {args.user}: {key}")
    return 0
