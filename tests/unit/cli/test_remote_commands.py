"""`series list`, `jobs`, `token --server` and `inventory node` against every route
watchkeeper mounts (tests/unit/api/full_app.py), served over HTTP on 127.0.0.1: the fast
counterpart of tests/e2e/test_cli_remote.py (a real `watchkeeper up`), for what needs no
poll: jobs not polled yet, a report with no run, refusals made before any request."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.support.serve import free_port
from tests.support.server import serve_in_thread
from tests.unit.api.full_app import NOW, full_app
from watchkeeper.api import create_app
from watchkeeper.archive.backends.memory import MemoryArchive
from watchkeeper.cli.main import main
from watchkeeper.client import Client
from watchkeeper.clock import FakeClock
from watchkeeper.telemetry import SelfMetrics


@dataclass
class Served:
    url: str
    admin: str
    reader: str


async def built(url: str, key: str | None = None) -> None:
    """Wait for the static model's first build. It runs on this test's event loop, which a
    CLI command run here blocks: so it must be done before any command runs."""
    headers = {"Authorization": f"Token {key}"} if key else {}
    deadline = time.monotonic() + 30
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=5) as http:
        while (await http.get("/api/v1/inventory/static/node",
                              params={"id": "device/core1"})).status_code != 200:
            assert time.monotonic() < deadline, "the static model was never built"
            await asyncio.sleep(0.05)


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[Served]:
    async with full_app(tmp_path) as full:
        admin = await full.tokens.create("root", write=True, admin=True, now=NOW)
        with serve_in_thread(full.app) as url:
            await built(url)
            with Client(url, token=full.write_key) as client:
                client.write([("core1/http/latency{host=\"a\"}", NOW, 1.0),
                              ("core1/http/latency{host=\"b\"}", NOW, 2.0),
                              ("core1/tcp/latency", NOW, 3.0)])
            yield Served(url, admin, full.read_key)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    try:
        code = main(list(argv))
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def test_series_list_and_its_old_spelling(served: Served,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "series", "list", "--plugin", "http", "--label", "host=b",
                         "--server", served.url, "-o", "json")
    assert code == 0, err
    assert [r["series"] for r in json.loads(out)] == ['core1/http/latency{host="b"}']
    code, out, _ = run(capsys, "series", "core1/t", "--server", served.url, "-o", "csv")
    assert code == 0
    assert [line.split(",")[0] for line in out.splitlines()[1:]] == ["core1/tcp/latency"]
    code, out, _ = run(capsys, "series", "list", "list", "--server", served.url)
    assert code == 0  # a prefix spelled "list": after the verb
    assert "0 series" in out


def test_jobs_not_polled_yet(served: Served, capsys: pytest.CaptureFixture[str]) -> None:
    """The full app's scheduler never runs: every job is pending, its report has no run."""
    code, out, err = run(capsys, "jobs", "list", "--status", "pending", "--server",
                         served.url, "-o", "json")
    assert code == 0, err
    pending = json.loads(out)
    assert ("core1", "tcp", "pending") in {(r["device"], r["collector"], r["status"])
                                           for r in pending}
    assert all(r["last"] is None and r["reason"] == "" for r in pending)
    code, out, _ = run(capsys, "jobs", "list", "--status", "critical", "--server", served.url,
                       "-o", "csv")
    assert (code, out.count("\n")) == (0, 1)  # the header alone
    code, out, _ = run(capsys, "jobs", "report", "core1", "--server", served.url)
    assert code == 0
    assert "core1: no poll has ended yet" in out


async def test_jobs_against_a_server_without_a_scheduler(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`serve` mounts no jobs routes: say where jobs live, not a bare 404."""
    async with AsyncExitStack() as stack:
        archive = MemoryArchive(data_dir=tmp_path, options=MemoryArchive.Options(),
                                clock=FakeClock(start=NOW), metrics=SelfMetrics())
        await archive.start(stack)
        with serve_in_thread(create_app(archive, metrics=archive.metrics)) as url:
            for argv in (["jobs", "list"], ["jobs", "report", "web1"]):
                code, _, err = run(capsys, *argv, "--server", url)
                assert code == 65
                assert "jobs live in `watchkeeper up`, not in `watchkeeper serve`" in err


def test_token_over_the_api(served: Served, capsys: pytest.CaptureFixture[str]) -> None:
    api = ("--server", served.url, "--token", served.admin)
    code, out, err = run(capsys, "token", "create", "--user", "ops", "--admin", *api)
    assert code == 0, err
    assert out.startswith("Created a read, write and admin token for ops (id ")
    key = out.split()[-1]
    code, out, _ = run(capsys, "token", "list", "--server", served.url, "--token", key,
                       "-o", "json")
    assert code == 0  # the new key is an admin key at once
    assert [(r["user"], r["scopes"]) for r in json.loads(out)][-1] == ("ops",
                                                                     "read write admin")
    code, out, _ = run(capsys, "token", "revoke", "--user", "ops", *api)
    assert code == 0
    assert out.startswith("Revoked token ")
    code, _, err = run(capsys, "token", "list", "--server", served.url, "--token", key)
    assert code == 77
    assert "unknown or revoked" in err


def test_token_server_refusals_before_any_request(capsys: pytest.CaptureFixture[str],
                                                  monkeypatch: pytest.MonkeyPatch,
                                                  tmp_path: Path) -> None:
    """No server listens here: each refusal comes from the command line alone."""
    nowhere = f"http://127.0.0.1:{free_port()}"
    code, _, err = run(capsys, "token", "create", "--user", "x", "--server", nowhere)
    assert code == 77
    assert "token create --server needs an admin key" in err
    code, _, err = run(capsys, "token", "revoke", "--user", "x", "--server", nowhere,
                       "--data-dir", str(tmp_path))
    assert code == 64
    assert "give one or the other" in err
    monkeypatch.setenv("WATCHKEEPER_SERVER", nowhere)
    monkeypatch.setenv("WATCHKEEPER_TOKEN", "k")
    code, _, err = run(capsys, "token", "list")  # the environment's server: the API
    assert code == 69
    assert f"cannot reach {nowhere}" in err
    code, out, _ = run(capsys, "token", "list", "--data-dir", str(tmp_path), "-o", "csv")
    assert (code, out) == (0, "id,user,scopes,created,last_used\n")  # a flag: the store


def test_inventory_node(served: Served, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "inventory", "node", "static", "device/core1", "--server",
                         served.url, "-o", "json")
    assert code == 0, err
    node = json.loads(out)[0]
    assert (node["direction"], node["id"], node["labels"]) == ("node", "device/core1",
                                                               ["core"])
    assert "s3cret-community" not in out  # served redacted, printed as served


async def test_reads_send_the_token_when_reads_need_one(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """With public_reads off, the read commands take --token (or $WATCHKEEPER_TOKEN);
    without one the refusal says how to give it."""
    async with full_app(tmp_path, public_reads=False) as full:
        with serve_in_thread(full.app) as url:
            await built(url, full.read_key)
            for argv in (["series", "list"], ["jobs", "list"], ["inventory", "node", "static",
                                                                 "device/core1"]):
                code, _, err = run(capsys, *argv, "--server", url)
                assert code == 77, argv
                assert "--token KEY or $WATCHKEEPER_TOKEN" in err
                code, _, err = run(capsys, *argv, "--server", url, "--token", full.read_key)
                assert code == 0, err
