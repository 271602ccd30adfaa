"""``watchkeeper token create|list|revoke``: where tokens go, what is shown, what is refused."""

from __future__ import annotations

import asyncio
import json
from contextlib import AsyncExitStack
from pathlib import Path

import pytest

from watchkeeper.archive.tokens import PostgresTokenStore, SqliteTokenStore, Token
from watchkeeper.cli.main import main
from watchkeeper.runtime.esmond import build_tokens
from watchkeeper.settings import load_settings


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["token", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def lookup(data: Path, *keys: str) -> list[Token | None]:
    async def go() -> list[Token | None]:
        async with AsyncExitStack() as stack:
            store = SqliteTokenStore(data)
            await store.start(stack)
            return [await store.lookup(key) for key in keys]

    return asyncio.run(go())


def test_create_prints_the_key_last(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The key is the last word (with its id before it); --data-dir, its old spelling
    --data and -c all reach the data directory's store."""
    data = tmp_path / "var"
    data.mkdir()
    code, out, _ = run(capsys, "create", "--user", "ps", "--write", "--data-dir", str(data))
    assert code == 0
    written = out.split()[-1]
    assert out.startswith("Created a read and write token for ps (id ")
    assert run(capsys, "create", "--user", "old", "--data", str(data))[0] == 0
    config = tmp_path / "wk.yaml"
    config.write_text(f"data_dir: {data}\n")
    code, out, _ = run(capsys, "create", "--user", "viewer", "-c", str(config))
    assert code == 0
    writer, reader = lookup(data, written, out.split()[-1])
    assert writer is not None
    assert (writer.user, writer.write) == ("ps", True)
    assert reader is not None
    assert (reader.user, reader.write) == ("viewer", False)


def test_create_admin(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--admin makes a key that may manage tokens over the API; it implies --write."""
    code, out, _ = run(capsys, "create", "--user", "root", "--admin", "--data-dir", str(tmp_path))
    assert code == 0
    assert out.startswith("Created a read, write and admin token for root (id ")
    [admin] = lookup(tmp_path, out.split()[-1])
    assert admin is not None
    assert (admin.user, admin.scopes) == ("root", ("read", "write", "admin"))


def test_list_and_revoke(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """list shows id, user, scopes, created and last use but never a key; revoke takes an
    id or a user, says what it revoked, and refuses to revoke nothing."""
    where = ["--data-dir", str(tmp_path)]
    keys = [run(capsys, "create", "--user", user, *flags, *where)[1].split()[-1]
            for user, flags in (("ann", ["--write"]), ("bob", []), ("bob", []))]
    code, out, _ = run(capsys, "list", "-o", "json", *where)
    assert code == 0
    rows = json.loads(out)
    assert [(r["user"], r["scopes"], r["last_used"]) for r in rows] == [
        ("ann", "read write", None), ("bob", "read", None), ("bob", "read", None)]
    assert all(key not in out for key in keys)
    code, out, _ = run(capsys, "list", *where)
    assert code == 0
    assert rows[0]["id"] in out
    assert "last used" in out or "last_used" in out
    code, out, _ = run(capsys, "revoke", rows[0]["id"], *where)
    assert (code, out) == (0, f"Revoked token {rows[0]['id']} of ann (read write)\n")
    code, out, _ = run(capsys, "revoke", "--user", "bob", *where)
    assert code == 0
    assert out.count("Revoked token") == 2
    assert lookup(tmp_path, *keys) == [None, None, None]
    code, _, err = run(capsys, "revoke", "--user", "bob", *where)
    assert code != 0
    assert "no token of user bob" in err
    code, _, err = run(capsys, "revoke", "abc", *where)
    assert code != 0
    assert "12 lowercase hex digits" in err


def test_revoke_needs_an_id_or_a_user(capsys: pytest.CaptureFixture[str]) -> None:
    """Exactly one of ID and --user."""
    with pytest.raises(SystemExit):
        main(["token", "revoke"])
    with pytest.raises(SystemExit):
        main(["token", "revoke", "0" * 12, "--user", "x"])
    capsys.readouterr()


def test_a_data_dir_no_server_uses_is_refused(tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    """A directory that does not exist is not created: a token there would be read by no
    server, so nothing is written and nothing claims success. One that exists but that no
    server has used yet works, with a note."""
    missing = tmp_path / "typo"
    for action in (["create", "--user", "x"], ["list"], ["revoke", "--user", "x"]):
        code, out, err = run(capsys, *action, "--data-dir", str(missing))
        assert code != 0
        assert out == ""
        assert f"data directory {missing} does not exist" in err
    assert not missing.exists()
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    code, out, err = run(capsys, "create", "--user", "x", "--data-dir", str(fresh))
    assert code == 0
    assert f"no server has used {fresh} yet" in err
    code, out, err = run(capsys, "list", "--data-dir", str(fresh))
    assert (code, err) == (0, "")  # the store is there now: no note


def test_data_dir_against_a_postgres_config_is_refused(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """When the settings keep tokens in PostgreSQL, --data-dir would write a SQLite file
    that no server reads: refused before anything is opened."""
    for text in ("archive: {backend: postgres, options: {dsn: 'host=db'}}\n",
                 "esmond: {store: postgres, dsn: 'host=db'}\n"):
        config = tmp_path / "pg.yaml"
        config.write_text(text)
        code, out, err = run(capsys, "create", "--user", "x", "-c", str(config),
                             "--data-dir", str(tmp_path))
        assert code != 0
        assert out == ""
        assert "keeps tokens in PostgreSQL" in err
        assert "drop --data-dir" in err
    assert not (tmp_path / "auth.sqlite3").exists()


def test_the_servers_token_store_follows_the_archive() -> None:
    """esmond.store postgres wins; else a PostgreSQL archive keeps tokens in its schema;
    else the data directory."""
    settings, locator = load_settings(
        "archive: {backend: postgres, options: {dsn: 'host=db', schema: wk1}}\n")
    store = build_tokens(settings, locator)
    assert isinstance(store, PostgresTokenStore)
    assert (store.dsn, store.schema) == ("host=db", "wk1")
    settings, locator = load_settings("archive: {backend: postgres}\n")
    store = build_tokens(settings, locator)
    assert isinstance(store, PostgresTokenStore)
    assert store.schema == "watchkeeper"
    settings, locator = load_settings(
        "archive: {backend: postgres}\nesmond: {store: postgres, dsn: 'host=e'}\n")
    store = build_tokens(settings, locator)
    assert isinstance(store, PostgresTokenStore)
    assert (store.dsn, store.schema) == ("host=e", None)
    settings, locator = load_settings("data_dir: /srv/wk\n")
    assert isinstance(build_tokens(settings, locator), SqliteTokenStore)
