"""``/api/v1/tokens`` over the whole app: admin only, keys answered once and never listed,
input checked field by field, and a revocation refused at once, here and by another
server sharing the store."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path

import httpx
import pytest

from tests.unit.api.full_app import NOW, FullApp, full_app
from tests.unit.api.test_auth_revocation import ok
from watchkeeper.api.auth import TokenAuth
from watchkeeper.archive.tokens import SqliteTokenStore, key_id

ROUTES = [("GET", "/api/v1/tokens"), ("POST", "/api/v1/tokens"),
          ("DELETE", "/api/v1/tokens/0123456789ab")]


@pytest.fixture
async def full(tmp_path: Path) -> AsyncIterator[FullApp]:
    async with full_app(tmp_path) as started:
        yield started


async def admin_key(full: FullApp) -> str:
    return await full.tokens.create("root", write=True, admin=True, now=NOW)


async def point(http: httpx.AsyncClient) -> int:
    """A write with ``http``'s key: its status says whether the key is good and may write."""
    response = await http.post("/api/v1/write", json={"points": [["t/k/v", NOW, 1.0]]})
    return response.status_code


@pytest.mark.parametrize("public_reads", [True, False])
async def test_only_an_admin_token_may_call_them(tmp_path: Path, public_reads: bool) -> None:
    """No token: 401, reads included, whatever public_reads says; a read or write token:
    403; nothing was created or revoked by the refused calls."""
    async with full_app(tmp_path, public_reads=public_reads) as full:
        before = [(t.id, t.scopes) for t in await full.tokens.tokens()]
        for key, status in ((None, 401), (full.read_key, 403), (full.write_key, 403)):
            async with full.client(key) as http:
                for method, path in ROUTES:
                    body = {"user": "eve", "scopes": ["admin"]} if method == "POST" else None
                    response = await http.request(method, path, json=body)
                    assert response.status_code == status, (key, method, path, response.text)
        assert [(t.id, t.scopes) for t in await full.tokens.tokens()] == before


async def test_create_answers_the_key_once_and_it_works(full: FullApp) -> None:
    """A created key authenticates at once with the scopes asked for; the list shows it
    with id, user, scopes, created and last use, and no key appears in any listing."""
    started = int(time.time())
    async with full.client(await admin_key(full)) as admin:
        made = {}
        for user, scopes in (("ro", ["read"]), ("rw", ["read", "write"]), ("boss", ["admin"])):
            response = await admin.post("/api/v1/tokens", json={"user": user, "scopes": scopes})
            assert response.status_code == 201, response.text
            assert response.headers["cache-control"] == "no-store"
            made[user] = response.json()
        assert made["ro"]["scopes"] == ["read"]
        assert made["rw"]["scopes"] == ["read", "write"]
        assert made["boss"]["scopes"] == ["read", "write", "admin"]  # admin implies write
        for answer in made.values():
            assert answer["id"] == key_id(answer["key"])
        default = await admin.post("/api/v1/tokens", json={"user": "plain"})
        assert default.json()["scopes"] == ["read"]
        async with full.client(made["ro"]["key"]) as ro, full.client(made["rw"]["key"]) as rw:
            assert await point(ro) == 403
            assert await point(rw) == 201
        async with full.client(made["boss"]["key"]) as boss:
            listing = await boss.get("/api/v1/tokens")
        assert listing.status_code == 200
        tokens = listing.json()["tokens"]
        by_user = {t["user"]: t for t in tokens}
        assert set(by_user) == {"admin", "reader", "root", "ro", "rw", "boss", "plain"}
        rw = by_user["rw"]
        assert (rw["id"], rw["scopes"], rw["created"]) == (
            made["rw"]["id"], ["read", "write"], made["rw"]["created"])
        assert started <= rw["created"] <= rw["last_used"]  # it wrote above
        assert by_user["admin"]["created"] == NOW  # made by the store (the CLI's way)
        assert by_user["plain"]["last_used"] is None
        assert all(set(t) == {"id", "user", "scopes", "created", "last_used"} for t in tokens)
        for answer in made.values():
            assert answer["key"] not in listing.text


async def test_revoke_is_at_once_here_and_on_another_server(full: FullApp) -> None:
    """A key revoked over the API is refused from the next request on by this app and by a
    second server (its own store connection and key cache) on the same store."""
    other_store = SqliteTokenStore(full.data_dir)
    async with AsyncExitStack() as stack:
        await other_store.start(stack)
        other = httpx.AsyncClient(transport=httpx.ASGITransport(
            app=TokenAuth(ok, other_store, protected=("/",))), base_url="http://other")
        await stack.enter_async_context(other)
        admin = await stack.enter_async_context(full.client(await admin_key(full)))
        made = (await admin.post("/api/v1/tokens",
                                 json={"user": "temp", "scopes": ["write"]})).json()
        async with full.client(made["key"]) as temp:
            auth = {"Authorization": f"Token {made['key']}"}
            assert await point(temp) == 201  # cached by both servers now
            assert (await other.post("/w", headers=auth)).status_code == 200
            gone = await admin.delete(f"/api/v1/tokens/{made['id']}")
            assert gone.status_code == 200, gone.text
            assert gone.json()["user"] == "temp"
            assert "key" not in gone.json()
            assert await point(temp) == 401
            assert (await other.post("/w", headers=auth)).status_code == 401
        again = await admin.delete(f"/api/v1/tokens/{made['id']}")
        assert again.status_code == 404
        assert made["id"] in again.json()["detail"]
        listed = (await admin.get("/api/v1/tokens")).json()["tokens"]
        assert made["id"] not in {t["id"] for t in listed}
        assert [t.user for t in await other_store.tokens()] == [t["user"] for t in listed]


async def test_an_admin_may_revoke_itself(full: FullApp) -> None:
    """No special case: the key that revoked itself is refused on its next request."""
    key = await admin_key(full)
    async with full.client(key) as admin:
        assert (await admin.delete(f"/api/v1/tokens/{key_id(key)}")).status_code == 200
        assert (await admin.get("/api/v1/tokens")).status_code == 401


@pytest.mark.parametrize(("method", "path", "body", "field"), [
    ("POST", "/api/v1/tokens", {"user": "two words"}, "user"),
    ("POST", "/api/v1/tokens", {"user": ""}, "user"),
    ("POST", "/api/v1/tokens", {"user": "x" * 151}, "user"),
    ("POST", "/api/v1/tokens", {"user": 7}, "$.user"),
    ("POST", "/api/v1/tokens", {}, "user"),
    ("POST", "/api/v1/tokens", {"user": "a", "scopes": ["root"]}, "scopes"),
    ("POST", "/api/v1/tokens", {"user": "a", "scopes": []}, "scopes"),
    ("POST", "/api/v1/tokens", {"user": "a", "scopes": "write"}, "$.scopes"),
    ("POST", "/api/v1/tokens", {"user": "a", "write": True}, "write"),
    ("POST", "/api/v1/tokens", None, "body"),
    ("DELETE", "/api/v1/tokens/abc", None, "id"),
    ("DELETE", "/api/v1/tokens/0123456789AB", None, "id"),
    ("DELETE", "/api/v1/tokens/0123456789ab0", None, "id"),
])
async def test_bad_input_is_a_400_naming_the_field(full: FullApp, method: str, path: str,
                                                   body: object, field: str) -> None:
    before = await full.tokens.tokens()
    async with full.client(await admin_key(full)) as admin:
        response = await admin.request(method, path, json=body)
    assert response.status_code == 400, response.text
    assert field in response.json()["detail"], response.text
    assert len(await full.tokens.tokens()) == len(before) + 1  # only the admin key


async def test_the_routes_are_in_the_openapi_document(full: FullApp) -> None:
    async with full.client() as anonymous:
        paths = (await anonymous.get("/api/v1/openapi.json")).json()["paths"]
    assert {m: e["x-access"] for m, e in paths["/api/v1/tokens"].items()} == {
        "get": "admin", "post": "admin"}
    assert paths["/api/v1/tokens/{id}"]["delete"]["x-access"] == "admin"
    assert paths["/api/v1/tokens"]["post"]["security"] == [{"token": []}]
    assert "201" in paths["/api/v1/tokens"]["post"]["responses"]
