"""API tokens: the stores (SQLite and PostgreSQL) and the ``Authorization: Token`` rules."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path

import httpx
import pytest

from tests.unit.esmond.stores import KINDS, store_location
from tests.unit.esmond.support import Stack, running
from watchkeeper.api.auth import parse_authorization
from watchkeeper.archive.tokens import (
    PostgresTokenStore,
    SqliteTokenStore,
    TokenStore,
    key_hash,
)
from watchkeeper.errors import AuthError, InvalidData

P = "/esmond/perfsonar/archive"


@pytest.fixture(params=KINDS)
async def tokens(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[TokenStore]:
    async with store_location(request.param, tmp_path) as where, AsyncExitStack() as stack:
        store: TokenStore = (SqliteTokenStore(where) if isinstance(where, Path)
                             else PostgresTokenStore(where))
        await store.start(stack)
        yield store


async def test_token_store_round_trip(tokens: TokenStore) -> None:
    """A created key finds its user and rights; other keys find nothing."""
    key = await tokens.create("alice", write=True, now=100)
    read = await tokens.create("bob", write=False, now=200)
    assert len(key) == 40
    assert int(key, 16) >= 0
    found = await tokens.lookup(key)
    assert found is not None
    assert (found.user, found.write, found.created) == ("alice", True, 100)
    reader = await tokens.lookup(read)
    assert reader is not None
    assert not reader.write
    assert await tokens.lookup("0" * 40) is None
    with pytest.raises(InvalidData, match="user"):
        await tokens.create("two words", write=True, now=1)


async def test_sqlite_keeps_only_hashes(tmp_path: Path) -> None:
    """The database file holds the key's SHA-256, never the key."""
    async with AsyncExitStack() as stack:
        store = SqliteTokenStore(tmp_path)
        await store.start(stack)
        key = await store.create("alice", write=True, now=1)
    raw = (tmp_path / "auth.sqlite3").read_bytes()
    wal = tmp_path / "auth.sqlite3-wal"
    if wal.exists():
        raw += wal.read_bytes()
    assert key.encode() not in raw
    assert key_hash(key).encode() in raw


async def test_two_sqlite_stores_share_the_file(tmp_path: Path) -> None:
    """A key created by one process (store) is found by another already open."""
    async with AsyncExitStack() as stack:
        server, cli = SqliteTokenStore(tmp_path), SqliteTokenStore(tmp_path)
        await server.start(stack)
        await cli.start(stack)
        key = await cli.create("late", write=True, now=1)
        assert await server.lookup(key) is not None


@pytest.mark.parametrize(("header", "result"), [
    (None, None),
    (b"", None),
    (b"Token abc", "abc"),
    (b"token abc", "abc"),
    (b"TOKEN  abc ", "abc"),
    (b"ApiKey user:abc", None),  # the tastypie scheme: ignored, as DRF does
    (b"Basic dXNlcjpwYXNz", None),
])
def test_parse_authorization(header: bytes | None, result: str | None) -> None:
    """Only the Token scheme counts; its keyword is case-insensitive."""
    assert parse_authorization(header) == result


@pytest.mark.parametrize(("header", "detail"), [
    (b"Token", "Invalid token header. No credentials provided."),
    (b"Token a b", "Invalid token header. Token string should not contain spaces."),
    (b"Token \xff", "Invalid token header. Token string should not contain invalid characters."),
])
def test_malformed_token_headers(header: bytes, detail: str) -> None:
    """DRF's messages for a malformed Token header."""
    with pytest.raises(AuthError, match=detail.replace(".", r"\.")):
        parse_authorization(header)


async def test_esmond_auth_rules(stack: Stack, anonymous: httpx.AsyncClient) -> None:
    """Reads are public; writes need a write token (401 without, 403 read-only); a bad
    key is 401 even on a read; the tastypie header is ignored (so 401 on a write)."""
    assert (await anonymous.get(f"{P}/")).status_code == 200
    body = {"subject-type": "point-to-point"}
    response = await anonymous.post(f"{P}/", json=body)
    assert response.status_code == 401
    assert response.json() == {"detail": "Authentication credentials were not provided."}
    assert response.headers["www-authenticate"] == "Token"
    async with stack.client(auth="read") as reader:
        refused = await reader.post(f"{P}/", json=body)
        assert refused.status_code == 403
        assert refused.json() == {"detail": "You do not have permission to perform this action."}
        assert (await reader.get(f"{P}/")).status_code == 200
    bad = await anonymous.get(f"{P}/", headers={"Authorization": "Token nosuchkey"})
    assert bad.status_code == 401
    assert bad.json() == {"detail": "Invalid token."}
    tastypie = await anonymous.post(f"{P}/", json=body,
                                    headers={"Authorization": "ApiKey admin:key"})
    assert tastypie.status_code == 401


async def test_native_writes_need_a_token(stack: Stack, anonymous: httpx.AsyncClient,
                                          client: httpx.AsyncClient) -> None:
    """The native /api/v1 write and delete routes follow the same rules; health stays open."""
    batch = {"points": [["r1/system/cpu", 1_000.0, 1.0]]}
    assert (await anonymous.post("/api/v1/write", json=batch)).status_code == 401
    assert (await client.post("/api/v1/write", json=batch)).status_code == 201
    params = {"series": "r1/system/cpu", "start": "0", "end": "2000"}
    assert (await anonymous.delete("/api/v1/series", params=params)).status_code == 401
    assert (await anonymous.get("/api/v1/query", params=params)).status_code == 200
    assert (await client.delete("/api/v1/series", params=params)).status_code == 200
    assert (await anonymous.get("/api/v1/health")).status_code == 200


async def test_private_reads(tmp_path: Path) -> None:
    """With public_reads off, reads need a token too (any token: read rights suffice)."""
    async with running(tmp_path, public_reads=False) as stack:
        async with stack.client(auth=None) as anonymous:
            response = await anonymous.get(f"{P}/")
            assert response.status_code == 401
            assert (await anonymous.get("/api/v1/query", params={"series": "a/b/c"})
                    ).status_code == 401
            assert (await anonymous.get("/api/v1/health")).status_code == 200
        async with stack.client(auth="read") as reader:
            assert (await reader.get(f"{P}/")).status_code == 200
