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

With ``--server URL`` (or ``$WATCHKEEPER_SERVER``) they manage that server's tokens over
its API instead (``/api/v1/tokens``), with an admin key (``--token`` or
``$WATCHKEEPER_TOKEN``): for hosts that cannot open the server's store. The flags decide
first: ``--server`` with ``-c``/``--data-dir`` is refused (one place or the other);
``-c``/``--data-dir`` without ``--server`` use the store even when ``$WATCHKEEPER_SERVER``
is set (a flag beats the environment); with none of them, ``$WATCHKEEPER_SERVER`` means
the API, else the store of ``$WATCHKEEPER_CONFIG`` or ``./var``. Both ways print the same
lines, and refuse alike: revoking nothing is a usage error (exit 64) naming the id or user.
``-o csv|json`` prints what ``create`` made and ``revoke`` revoked as rows instead.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any, TypeVar

from watchkeeper import runtime
from watchkeeper.archive.tokens import DB_NAME, PostgresTokenStore, Token, TokenStore, key_id
from watchkeeper.cli.exits import name_flags
from watchkeeper.cli.options import (
    SERVER_ENV,
    TOKEN_ENV,
    add_config,
    add_data_dir,
    add_output,
    add_server,
    add_token,
    output_of,
    settings_overrides,
    token_of,
)
from watchkeeper.cli.render import table, utc
from watchkeeper.client import Client
from watchkeeper.errors import AuthError, HTTPStatusError, UsageError
from watchkeeper.runtime.esmond import build_tokens
from watchkeeper.wire import TokenInfo

T = TypeVar("T")
LISTED = ["id", "user", "scopes", "created", "last_used"]


def add_commands(commands: Any) -> None:
    token = commands.add_parser("token", help="manage API tokens (create, list, revoke)",
                                description="manage API tokens (Authorization: Token KEY) "
                                            "in the store the servers read, or over a "
                                            "server's API with --server and an admin "
                                            "--token")
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
    """Where the tokens are: a store (-c, --data-dir) or a server's API (--server)."""
    add_config(cmd)
    add_data_dir(cmd)
    add_server(cmd, purpose=f"manage this server's tokens over its API (/api/v1/tokens) "
                            f"with an admin --token, instead of a store (default "
                            f"${SERVER_ENV}; without it, the store)")
    add_token(cmd, right="managing tokens (admin) with --server")
    add_output(cmd)


def server_of(args: argparse.Namespace) -> str | None:
    """The API to use instead of a store, if any (flags first, then the environment)."""
    local = args.config is not None or args.data_dir is not None
    if args.server:
        if local:
            raise UsageError("--server manages a server's tokens over its API, -c/--config "
                             "and --data-dir a store: give one or the other")
        return str(args.server)
    return None if local else os.environ.get(SERVER_ENV) or None


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


def _client(args: argparse.Namespace, url: str) -> Client:
    if token_of(args) is None:
        raise AuthError(f"token {args.token_command} --server needs an admin key: --token KEY "
                        f"or ${TOKEN_ENV} (one made with `watchkeeper token create --user "
                        "NAME --admin` on the server's store)")
    return Client(url, token=token_of(args), verify=not args.insecure)


def _with_api(args: argparse.Namespace, url: str, action: Callable[[Client], T]) -> T:
    """``action`` on the server's API; a refused key says which flag gave it."""
    with _client(args, url) as client:
        try:
            return action(client)
        except HTTPStatusError as exc:
            if exc.status == 401:
                raise AuthError(f"{url} refused the key of --token/${TOKEN_ENV}: unknown or "
                                "revoked") from None
            if exc.status == 403:
                raise AuthError(f"the key of --token/${TOKEN_ENV} may not manage tokens on "
                                f"{url}: it needs the admin scope (token create --admin)",
                                status=403) from None
            raise name_flags(exc, {"id": "ID", "user": "--user"}) from None


# Rows are the same from a store's Token and the API's TokenInfo.
Listed = Token | TokenInfo


def _row(token: Listed) -> list[object]:
    return [token.id, token.user, " ".join(token.scopes), utc(token.created),
            utc(token.last_used)]


def _create(args: argparse.Namespace) -> int:
    url = server_of(args)
    if url is None:
        now = int(time.time())
        key = _with_store(args, lambda store: store.create(args.user, write=args.write,
                                                           admin=args.admin, now=now))
        token_id, scopes, created = key_id(key), _scopes(args), now
    else:
        made = _with_api(args, url, lambda client: client.create_token(
            args.user, write=args.write, admin=args.admin))
        key, token_id, scopes, created = made.key, made.id, made.scopes, made.created
    fmt = output_of(args)
    if fmt != "table":
        table(["id", "user", "scopes", "created", "key"],
              [[token_id, args.user, " ".join(scopes), utc(created), key]], fmt=fmt)
        return 0
    rights = ("read, write and admin" if args.admin
              else "read and write" if args.write else "read-only")
    print(f"Created a {rights} token for {args.user} (id {token_id}): {key}")
    return 0


def _scopes(args: argparse.Namespace) -> list[str]:
    return ["read", "write", "admin"][:3 if args.admin else 2 if args.write else 1]


def _list(args: argparse.Namespace) -> int:
    url = server_of(args)
    found: list[Listed]
    if url is None:
        found = list(_with_store(args, lambda store: store.tokens()))
    else:
        found = list(_with_api(args, url, lambda client: client.tokens()))
    table(LISTED, [_row(t) for t in found], fmt=output_of(args), title="API tokens")
    return 0


def _revoke(args: argparse.Namespace) -> int:
    url = server_of(args)
    gone: list[Listed]
    if url is None:
        gone = list(_with_store(args, lambda store: store.revoke(user=args.user,
                                                                 token_id=args.id)))
    else:
        gone = _with_api(args, url, lambda client: _revoke_over_api(client, args))
    if not gone:
        which = f"of user {args.user}" if args.user else f"with id {args.id}"
        raise UsageError(f"no token {which} (see watchkeeper token list)")
    fmt = output_of(args)
    if fmt != "table":
        table(LISTED, [_row(t) for t in gone], fmt=fmt)
        return 0
    for token in gone:
        print(f"Revoked token {token.id} of {token.user} ({' '.join(token.scopes)})")
    return 0


def _revoke_over_api(client: Client, args: argparse.Namespace) -> list[Listed]:
    """The API revokes by id: a user's tokens are listed first, then revoked one by one
    (one revoked meanwhile by someone else is left out, as the store leaves it out)."""
    ids = ([args.id] if args.id is not None
           else [t.id for t in client.tokens() if t.user == args.user])
    gone: list[Listed] = []
    for token_id in ids:
        try:
            gone.append(client.revoke_token(token_id))
        except HTTPStatusError as exc:
            if exc.status != 404 or not exc.detail.startswith("no token"):
                raise  # a router's 404 (no token routes there) is not "no such token"
    return gone
