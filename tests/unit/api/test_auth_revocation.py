"""Token auth keeps a key cache, yet a revocation by any process holds from the next
request, on every server sharing the store (SQLite file or PostgreSQL schema)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path

import httpx
import pytest
from starlette.responses import PlainTextResponse
from starlette.types import Receive, Scope, Send

from tests.unit.esmond.stores import KINDS, store_location
from watchkeeper.api.auth import TokenAuth
from watchkeeper.archive.tokens import (
    PostgresTokenStore,
    SqliteTokenStore,
    Token,
    TokenStore,
    key_hash,
    key_id,
)
from watchkeeper.errors import ArchiveError, InvalidData


async def ok(scope: Scope, receive: Receive, send: Send) -> None:
    await PlainTextResponse("ok")(scope, receive, send)


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def client(store: TokenStore, clock: Clock | None = None) -> httpx.AsyncClient:
    """One 'server': its own middleware (and key cache) over its own store connection."""
    app = TokenAuth(ok, store, protected=("/",), now=clock or Clock())
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")


@pytest.fixture(params=KINDS)
async def stores(request: pytest.FixtureRequest,
                 tmp_path: Path) -> AsyncIterator[list[TokenStore]]:
    """Three stores on one location: two servers and the command line."""
    async with store_location(request.param, tmp_path) as where, AsyncExitStack() as stack:
        made: list[TokenStore] = [SqliteTokenStore(where) if isinstance(where, Path)
                                  else PostgresTokenStore(where) for _ in range(3)]
        for store in made:
            await store.start(stack)
        yield made


async def post(http: httpx.AsyncClient, key: str) -> int:
    return (await http.post("/w", headers={"Authorization": f"Token {key}"})).status_code


async def test_a_revoked_key_is_refused_by_every_server_at_once(
        stores: list[TokenStore]) -> None:
    """Both servers have the key cached; one revocation elsewhere, and the very next
    request to each is 401, while another user's key keeps working."""
    one, two, cli = stores
    key = await cli.create("alice", write=True, now=1)
    other = await cli.create("bob", write=True, now=2)
    async with client(one) as a, client(two) as b:
        for _ in range(3):
            assert [await post(a, key), await post(b, key)] == [200, 200]
        revoked = await cli.revoke(token_id=key_id(key))
        assert [(t.user, t.id) for t in revoked] == [("alice", key_id(key))]
        assert [await post(a, key), await post(b, key)] == [401, 401]
        assert [await post(a, other), await post(b, other)] == [200, 200]
        await cli.revoke(user="bob")
        assert [await post(a, other), await post(b, other)] == [401, 401]


async def test_the_revision_moves_only_on_revocation(stores: list[TokenStore]) -> None:
    """Creating, using and listing tokens leaves the revision (and so the caches) alone."""
    one, _, cli = stores
    before = await one.revision()
    key = await cli.create("carol", write=False, now=5)
    await cli.touch(key, 6)
    assert await one.revision() == before
    assert await cli.revoke(user="nobody") == []
    assert await one.revision() == before + 1  # even an empty revocation is one
    assert [t.user for t in await one.tokens()] == ["carol"]


async def test_list_shows_scopes_and_last_use_but_no_key(stores: list[TokenStore]) -> None:
    """Tokens come out oldest first, with id, scopes and the last use (written at most
    once a minute), never with the key."""
    one, _, cli = stores
    writer = await cli.create("w", write=True, now=10)
    reader = await cli.create("r", write=False, now=20)
    clock = Clock()
    async with client(one, clock) as http:
        assert await post(http, writer) == 200
        clock.now += 30
        assert await post(http, writer) == 200  # within the minute: not written again
    admin = await cli.create("a", write=False, admin=True, now=30)
    listed = await cli.tokens()
    assert [(t.user, t.scopes, t.created) for t in listed] == [
        ("w", ("read", "write"), 10), ("r", ("read",), 20), ("a", ("read", "write", "admin"), 30)]
    assert [t.id for t in listed] == [key_id(writer), key_id(reader), key_id(admin)]
    assert [t.admin for t in listed] == [False, False, True]
    assert listed[0].last_used == 1_000_000
    assert listed[1].last_used is None
    assert writer not in repr(listed)


@pytest.mark.parametrize(("user", "token_id", "field"), [
    (None, None, "revoke"), ("a", "0" * 12, "revoke"), (None, "abc", "id"),
    (None, "0" * 11 + "G", "id"), ("two words", None, "user"),
])
async def test_revoke_names_exactly_one_thing(stores: list[TokenStore], user: str | None,
                                              token_id: str | None, field: str) -> None:
    """A user or a full 12-digit id; a prefix could revoke more than was meant."""
    with pytest.raises(InvalidData) as caught:
        await stores[2].revoke(user=user, token_id=token_id)
    assert caught.value.field == field


class RevokedMeanwhile(TokenStore):
    """A store whose revision moves while a key is being looked up (another server's
    request saw the revocation first)."""

    def __init__(self) -> None:
        self.current = 0
        self.lookups = 0
        self.auth: TokenAuth | None = None

    async def start(self, exit_stack: AsyncExitStack) -> None: ...

    async def create(self, user: str, *, write: bool, now: int, admin: bool = False) -> str:
        raise NotImplementedError

    async def lookup(self, key: str) -> Token | None:
        self.lookups += 1
        if self.lookups == 1 and self.auth is not None:
            self.current += 1
            await self.auth.authenticate(b"Token other")  # sees the new revision first
        return Token(user=key, write=True, created=0)

    async def tokens(self) -> list[Token]:
        return []

    async def revoke(self, *, user: str | None = None, token_id: str | None = None
                     ) -> list[Token]:
        return []

    async def touch(self, key: str, now: int) -> None:
        raise ArchiveError("read-only store")

    async def revision(self) -> int:
        return self.current


async def test_a_lookup_overtaken_by_a_revocation_is_not_cached() -> None:
    """What a lookup found under an older revision is used once, never remembered; a
    failure to record the last use does not refuse the key."""
    store = RevokedMeanwhile()
    auth = TokenAuth(ok, store)
    store.auth = auth
    assert await auth.authenticate(b"Token k1") is not None  # looks up k1, then other
    assert await auth.authenticate(b"Token other") is not None  # cached: current revision
    assert store.lookups == 2
    assert await auth.authenticate(b"Token k1") is not None  # not cached: looked up again
    assert store.lookups == 3
    assert await auth.authenticate(b"Token k1") is not None
    assert store.lookups == 3


async def test_a_store_made_before_revocation_is_upgraded(tmp_path: Path) -> None:
    """An auth.sqlite3 of the first layout (no last_used, no revision, no admin) opens,
    keeps its tokens, and gains all three; its tokens are no admins."""
    import sqlite3

    with sqlite3.connect(tmp_path / "auth.sqlite3") as db:
        db.execute("CREATE TABLE api_tokens (key_hash TEXT PRIMARY KEY, username TEXT NOT "
                   "NULL, can_write BOOLEAN NOT NULL, created BIGINT NOT NULL)")
        db.execute("INSERT INTO api_tokens VALUES (?, 'old', 1, 7)", (key_hash("k" * 40),))
    db.close()
    async with AsyncExitStack() as stack:
        store = SqliteTokenStore(tmp_path)
        await store.start(stack)
        found = await store.lookup("k" * 40)
        assert found is not None
        assert (found.user, found.last_used, found.scopes) == ("old", None, ("read", "write"))
        assert await store.revision() == 0
        admin = await store.create("new", write=False, admin=True, now=8)
        assert [t.scopes for t in await store.tokens()] == [("read", "write"),
                                                            ("read", "write", "admin")]
        assert (await store.lookup(admin)) == (await store.tokens())[1]


def test_a_schema_must_be_a_plain_name() -> None:
    """The schema is put into SQL: only lowercase names are taken."""
    with pytest.raises(InvalidData, match="schema"):
        PostgresTokenStore("host=db", schema='x"; DROP TABLE api_tokens; --')
