"""Tokens across real ``watchkeeper serve`` processes that share one store.

Two servers on one PostgreSQL archive (each with its own data directory, as on two
hosts), and two servers on one data directory (the embedded layout: the first takes the
archive's write lock, the second serves it read-only): a token created once by
``watchkeeper token create`` works on both; revoked once by ``watchkeeper token revoke``,
both refuse it on the very next request, although both had it cached. A key is checked
even on a public read (an unknown key is 401 there too), which is how the read-only
server shows it.
"""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from contextlib import ExitStack
from pathlib import Path

import httpx
import pytest

from tests.support.serve import REPO, WATCHKEEPER, serving

pytestmark = pytest.mark.slow

PG_DSN = os.environ.get("WATCHKEEPER_TEST_PG_DSN",
                        "host=127.0.0.1 user=postgres dbname=watchkeeper_test")
POINT = {"points": [["tokens/test/up", 1_000.0, 1.0]]}


def token(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*WATCHKEEPER, "token", *args], cwd=REPO, capture_output=True,
                          text=True, timeout=60, check=False)


def write(url: str, key: str) -> int:
    return httpx.post(f"{url}/api/v1/write", json=POINT, timeout=30,
                      headers={"Authorization": f"Token {key}"}).status_code


def read(url: str, key: str) -> int:
    return httpx.get(f"{url}/api/v1/series", params={"limit": "1"}, timeout=30,
                     headers={"Authorization": f"Token {key}"}).status_code


def use(urls: list[str], key: str) -> list[int]:
    """A write to the first server, a read with the key from each."""
    return [write(urls[0], key), *(read(url, key) for url in urls)]


def create_revoke_round(urls: list[str], where: list[str]) -> None:
    """Create through the CLI, use on every server (twice: cached), list, revoke by id,
    refused everywhere at once; the other user's key is untouched."""
    created = token("create", "--user", "ops", "--write", *where)
    assert created.returncode == 0, created.stderr
    key = created.stdout.split()[-1]
    other = token("create", "--user", "viewer", "--write", *where).stdout.split()[-1]
    accepted = [201] + [200] * len(urls)
    for _ in range(2):
        assert use(urls, key) == accepted
    listed = token("list", "-o", "json", *where)
    assert listed.returncode == 0, listed.stderr
    rows = json.loads(listed.stdout)
    assert key not in listed.stdout
    mine = [row for row in rows if row["user"] == "ops"]
    assert [row["scopes"] for row in mine] == ["read write"]
    assert mine[0]["last_used"] is not None
    revoked = token("revoke", mine[0]["id"], *where)
    assert revoked.returncode == 0, revoked.stderr
    assert use(urls, key) == [401] * (len(urls) + 1)
    assert use(urls, other) == accepted
    assert token("revoke", mine[0]["id"], *where).returncode != 0  # gone: nothing to revoke


@pytest.mark.external_service
def test_two_servers_on_one_postgres_archive_share_tokens(tmp_path: Path) -> None:
    """Tokens live in the archive's PostgreSQL schema (archive.backend: postgres), not in
    either server's data directory; ``--data-dir`` against that config is refused."""
    import psycopg

    schema = f"wk_tokens_{uuid.uuid4().hex[:12]}"
    configs = []
    for name in ("a", "b"):
        config = tmp_path / f"{name}.yaml"
        config.write_text(json.dumps({
            "data_dir": str(tmp_path / name),
            "archive": {"backend": "postgres", "options": {"dsn": PG_DSN, "schema": schema}},
        }))
        configs.append(config)
    try:
        with ExitStack() as stack:
            urls = [stack.enter_context(serving("-c", str(c))) for c in configs]
            create_revoke_round(urls, ["-c", str(configs[0])])
            refused = token("create", "--user", "x", "-c", str(configs[0]),
                            "--data-dir", str(tmp_path / "a"))
            assert refused.returncode != 0
            assert "PostgreSQL" in refused.stderr
            assert "--data-dir" in refused.stderr
        assert not (tmp_path / "a" / "auth.sqlite3").exists()
    finally:
        with psycopg.connect(PG_DSN, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def test_two_servers_on_one_data_dir_share_tokens(tmp_path: Path) -> None:
    """The embedded token store (auth.sqlite3) is shared by processes on one data
    directory; a data directory that does not exist is refused, not created."""
    data = tmp_path / "var"
    with ExitStack() as stack:
        urls = [stack.enter_context(serving("--data-dir", str(data))) for _ in range(2)]
        create_revoke_round(urls, ["--data-dir", str(data)])
    missing = token("create", "--user", "x", "--data-dir", str(tmp_path / "nosuch"))
    assert missing.returncode != 0
    assert "does not exist" in missing.stderr
    assert not (tmp_path / "nosuch").exists()
