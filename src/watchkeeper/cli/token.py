"""``watchkeeper token create|list|revoke``: the API keys for ``Authorization: Token <key>``.

``create`` prints the key once, as the last word of its output, so a script can capture
it (``KEY=$(watchkeeper token create --user ps --write | awk '{print $NF}')``); only its
hash is stored. ``--admin`` makes a key that may also manage tokens over the API
(``/api/v1/tokens``, the console's Tokens page). ``list`` shows each token's id, user,
scopes, creation and last use, never a key. ``revoke`` deletes by id (as ``list`` shows
it) or every token of a user; every server sharing the store refuses the key from its
next request on.

All three work on the store the servers read, chosen exactly as ``serve`` chooses it
(``runtime.esmond.build_tokens``): from ``-c/--config`` (or ``$WATCHKEEPER_CONFIG``) that
is PostgreSQL when ``esmond.store`` or ``archive.backend`` is postgres, else
``auth.sqlite3`` in the data directory (``--data-dir``, default ``./var``). They refuse
rather than write where no server looks: ``--data-dir`` against a configuration whose
tokens live in PostgreSQL, or a data directory that does not exist; in a directory no
server has used yet they work, with a note saying so.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any, TypeVar

from watchkeeper import runtime
from watchkeeper.archive.tokens import DB_NAME, PostgresTokenStore, Token, TokenStore, key_id
from watchkeeper.cli.options import (
    add_config,
    add_data_dir,
    add_output,
    output_of,
    settings_overrides,
)
from watchkeeper.cli.render import table, utc
from watchkeeper.errors import UsageError
from watchkeeper.runtime.esmond import build_tokens

T = TypeVar("T")


def add_commands(commands: Any) -> None:
    token = commands.add_parser("token", help="manage API tokens (create, list, revoke)",
                                description="manage API tokens (Authorization: Token KEY) "
                                            "in the store the servers read")
    sub = token.add_subparsers(dest="token_command", required=True, metavar="ACTION")
    create = sub.add_parser("create", help="create a key for a user; prints it last",
                            description="create an API key; the key is the last word printed")
    create.add_argument("--user", required=True, help="who the key is for")
    create.add_argument("--write", action="store_true",
                        help="allow writes (without it the key can only read)")
    create.add_argument("--admin", action="store_true",
                        help="also manage tokens over the API (/api/v1/tokens); implies --write")
    _add_store(create)
    create.set_defaults(handler=_create)
    listing = sub.add_parser("list", help="list tokens: id, user, scopes, created, last used",
                             description="list tokens (never their keys)")
    _add_store(listing)
    add_output(listing)
    listing.set_defaults(handler=_list)
    revoke = sub.add_parser("revoke", help="revoke tokens by id or by user, at once",
                            description="revoke tokens; every server refuses them from its "
                                        "next request")
    which = revoke.add_mutually_exclusive_group(required=True)
    which.add_argument("id", nargs="?", metavar="ID",
                       help="the token's id, as `watchkeeper token list` shows it")
    which.add_argument("--user", help="revoke every token of this user")
    _add_store(revoke)
    revoke.set_defaults(handler=_revoke)


def _add_store(cmd: argparse.ArgumentParser) -> None:
    add_config(cmd)
    add_data_dir(cmd)


def open_store(args: argparse.Namespace) -> TokenStore:
    """The token store the settings name, refusing places no server reads (no I/O)."""
    settings, locator = runtime.read_settings(args.config, overrides=settings_overrides(args))
    store = build_tokens(settings, locator)
    if isinstance(store, PostgresTokenStore):
        if args.data_dir is not None:
            where = locator.file or "the settings"
            raise UsageError(f"{where} keeps tokens in PostgreSQL (esmond.store or "
                             "archive.backend is postgres), so the servers never read "
                             f"--data-dir {args.data_dir}: drop --data-dir")
        return store
    data_dir = Path(settings.data_dir)
    if not data_dir.is_dir():
        raise UsageError(f"data directory {data_dir} does not exist, so no server reads "
                         "tokens there: give the one the server uses (--data-dir DIR or "
                         "-c FILE), or start the server once to create it")
    if not any((data_dir / name).exists() for name in (DB_NAME, "archive.lock")):
        # Allowed (a token made before the first start), but a typo would look the same.
        print(f"watchkeeper: note: no server has used {data_dir} yet; start servers with "
              f"--data-dir {data_dir} for them to read this store", file=sys.stderr)
    return store


def _with_store(args: argparse.Namespace,
                action: Callable[[TokenStore], Awaitable[T]]) -> T:
    store = open_store(args)

    async def run() -> T:
        async with AsyncExitStack() as stack:
            await store.start(stack)
            return await action(store)

    return asyncio.run(run())


def _create(args: argparse.Namespace) -> int:
    key = _with_store(args, lambda store: store.create(args.user, write=args.write,
                                                       admin=args.admin, now=int(time.time())))
    rights = ("read, write and admin" if args.admin
              else "read and write" if args.write else "read-only")
    print(f"Created a {rights} token for {args.user} (id {key_id(key)}): {key}")
    return 0


def _list(args: argparse.Namespace) -> int:
    found = _with_store(args, lambda store: store.tokens())
    table(["id", "user", "scopes", "created", "last_used"], [_row(t) for t in found],
          fmt=output_of(args), title="API tokens")
    return 0


def _row(token: Token) -> list[object]:
    return [token.id, token.user, " ".join(token.scopes), utc(token.created),
            utc(token.last_used)]


def _revoke(args: argparse.Namespace) -> int:
    gone = _with_store(args, lambda store: store.revoke(user=args.user, token_id=args.id))
    if not gone:
        which = f"of user {args.user}" if args.user else f"with id {args.id}"
        raise UsageError(f"no token {which} (see watchkeeper token list)")
    for token in gone:
        print(f"Revoked token {token.id} of {token.user} ({' '.join(token.scopes)})")
    return 0
