"""The routes added for finding series, collector jobs, tokens and inventory nodes, through
the public client and the CLI, against one real ``watchkeeper up`` on 127.0.0.1.

The server polls two devices with a fixed-status collector (web1 critical, db1 ok), keeps
a static model with a small topology, and holds series written here; its token store gets
an admin, a write and a read key from the CLI's local store before it starts.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.e2e.test_up import Stack, free_port
from watchkeeper.cli.main import main
from watchkeeper.client import AsyncClient, Client, InventoryClient
from watchkeeper.errors import HTTPStatusError
from watchkeeper.wire import CollectReport

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
WATCHKEEPER = [sys.executable, "-m", "watchkeeper.cli.main"]
CONFIG = """\
data_dir: {data}
inventory:
  file: {topology}
  devices:
    - {{name: web1, address: 127.0.0.1}}
    - {{name: db1, address: 127.0.0.1}}
collectors:
  - name: probe
    plugin: "tests.unit.collect.plugins:Fixed"
    interval: 2
    devices: [web1, db1]
    options: {{by_device: {{web1: critical}}}}
"""
TOPOLOGY = """\
devices:
  - name: core1
    interfaces: [ge-0/0/1]
    attrs: {vendor: juniper}
  - {name: edge1, upstream: [core1], interfaces: [eth0]}
links:
  - {a: "core1:ge-0/0/1", b: "edge1:eth0", attrs: {speed: 10000}}
"""
SERIES = ['web1/http/latency{host="web1",path="/"}', 'web1/http/latency{host="web2"}',
          "db1/tcp/connect.latency", "web1/http/sizes"]


@dataclass
class Up:
    url: str
    config: Path
    admin: str  # keys made in the store before the server started
    writer: str
    reader: str


def cli(*argv: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*WATCHKEEPER, *argv], capture_output=True, text=True, timeout=60,
                          check=False, cwd=REPO, env={**_clean(), **(env or {})})


def _clean() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("WATCHKEEPER_")}


def _key(config: Path, user: str, *flags: str) -> str:
    made = cli("token", "create", "--user", user, *flags, "-c", str(config))
    assert made.returncode == 0, made.stderr
    return made.stdout.split()[-1]


def _polled(url: str) -> bool:
    """Both probe jobs polled, and their points written (the archive writer commits in
    groups, a moment after the poll)."""
    jobs = httpx.get(f"{url}/api/v1/collect/jobs", params={"collector": "probe"},
                     timeout=5).json()["jobs"]
    written = httpx.get(f"{url}/api/v1/series", params={"metric": "value"}, timeout=5).json()
    return (len(jobs) == 2 and all(job["status"] for job in jobs)
            and written["total"] == 2)


@pytest.fixture(scope="module")
def up(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Up]:
    root = tmp_path_factory.mktemp("up")
    (root / "var").mkdir()
    (root / "topology.yaml").write_text(TOPOLOGY)
    config = root / "wk.yaml"
    config.write_text(CONFIG.format(data=root / "var", topology=root / "topology.yaml"))
    keys = [_key(config, "root", "--admin"), _key(config, "app", "--write"),
            _key(config, "viewer")]
    port = free_port()
    proc = subprocess.Popen([*WATCHKEEPER, "up", "-c", str(config), "--listen",
                             f"127.0.0.1:{port}", "--log-level", "warning"], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**_clean(), "PYTHONUNBUFFERED": "1"})
    stack = Stack(proc, f"http://127.0.0.1:{port}")
    try:
        stack.wait_ready(timeout=60)
        deadline = time.monotonic() + 60
        while not _polled(stack.url):
            assert time.monotonic() < deadline, "the probe jobs were never polled"
            time.sleep(0.2)
        with Client(stack.url, token=keys[1]) as client:
            now = time.time()
            client.write([(name, now, {"10.5": 3, "11.0": 1} if name.endswith("sizes") else 1.5)
                          for name in SERIES])
        yield Up(stack.url, config, *keys)
    finally:
        if proc.poll() is None:
            stack.stop()


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """One CLI command in this process: exit code, stdout, stderr."""
    try:
        code = main(list(argv))
    except SystemExit as exc:  # argparse's refusals
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def rows(out: str) -> list[dict[str, object]]:
    found: list[dict[str, object]] = json.loads(out)
    return found


# -- finding series -------------------------------------------------------------------------


def test_series_list_finds_by_every_filter(up: Up, capsys: pytest.CaptureFixture[str]) -> None:
    """`series list` takes --subject --plugin --metric --label --match --kind as the API
    does; `series PREFIX` (no verb) still lists by prefix."""
    where = ("--server", up.url, "-o", "json")

    def names(*flags: str) -> set[object]:
        code, out, err = run(capsys, "series", "list", *flags, *where)
        assert code == 0, err
        return {row["series"] for row in rows(out)}

    assert names("--plugin", "http", "--label", "host=web1") == {SERIES[0]}
    assert names("--subject", "web1", "--metric", "latency") == set(SERIES[:2])
    assert names("--match", "latency", "--match", "web2") == {SERIES[1]}
    assert names("--kind", "histogram") == {SERIES[3]}
    assert names("--label", "host=web1", "--label", "path=/") == {SERIES[0]}
    assert names("db1/t", "--kind", "float") == {SERIES[2]}
    assert names("--subject", "web1", "--plugin", "probe", "--metric", "value") == {
        "web1/probe/value"}  # the collector's own series
    code, out, _ = run(capsys, "series", "db1/tcp", "--server", up.url, "-o", "csv")
    assert code == 0
    assert out.splitlines()[1].startswith("db1/tcp/connect.latency,")


def test_series_list_refusals_name_the_flag(up: Up, capsys: pytest.CaptureFixture[str]) -> None:
    """What the CLI can tell is wrong exits 64 before asking; what the server refuses
    exits 65, its message naming the flag instead of the API's parameter."""
    where = ("--server", up.url)
    code, _, err = run(capsys, "series", "list", "--label", "host", *where)
    assert code == 64
    assert "--label: 'host' is not NAME=VALUE" in err
    code, _, err = run(capsys, "series", "list", "--label", "host=a", "--label", "host=b",
                       *where)
    assert code == 64
    assert "--label host is given twice" in err
    code, _, err = run(capsys, "series", "list", "--kind", "int", *where)
    assert code == 64
    assert "--kind" in err
    code, _, err = run(capsys, "series", "list", "--match", "", *where)
    assert code == 64
    assert "--match" in err
    code, _, err = run(capsys, "series", "list", "--plugin", "no such", *where)
    assert code == 65
    assert "--plugin: must be non-empty" in err
    code, _, err = run(capsys, "series", "list", "--label", "1x=y", *where)
    assert code == 65
    assert "--label: " in err
    code, _, err = run(capsys, "series", "web1/", "db1/", *where)
    assert code == 64
    assert "series takes one PREFIX" in err


# -- collector jobs ---------------------------------------------------------------------------


def test_jobs_list_worst_first_and_filtered(up: Up, capsys: pytest.CaptureFixture[str]) -> None:
    where = ("--server", up.url)
    code, out, err = run(capsys, "jobs", "list", "--collector", "probe", *where, "-o", "json")
    assert code == 0, err
    listed = rows(out)
    assert [(r["device"], r["status"]) for r in listed] == [("web1", "critical"), ("db1", "ok")]
    assert listed[0]["reason"] == "web1 is critical"
    assert listed[0]["plugin"] == "tests.unit.collect.plugins:Fixed"
    assert str(listed[0]["next"]).endswith("Z")  # a time: ISO 8601 UTC
    code, out, _ = run(capsys, "jobs", "list", "--status", "ok", "--status", "critical",
                       "--device", "db1", *where, "-o", "csv")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].startswith("device,collector,plugin,status,last,duration,")
    assert [line.split(",")[:2] for line in lines[1:]] == [["db1", "probe"]]
    code, out, _ = run(capsys, "jobs", "list", "--limit", "1", *where)
    assert code == 0
    assert " 1 of " in out.splitlines()[0]  # the title says more jobs are there
    assert "web1" in out
    assert "critical" in out


def test_jobs_list_refusals(up: Up, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "jobs", "list", "--status", "bad", "--server", up.url)
    assert code == 64
    assert "--status: invalid choice: 'bad'" in err
    code, _, err = run(capsys, "jobs", "list", "--limit", "0", "--server", up.url)
    assert code == 65
    assert "--limit: " in err


def test_jobs_report_per_result_and_per_measurement(
        up: Up, capsys: pytest.CaptureFixture[str]) -> None:
    where = ("--server", up.url)
    code, out, err = run(capsys, "jobs", "report", "web1", *where, "-o", "json")
    assert code == 0, err
    [result] = rows(out)
    assert {k: result[k] for k in ("collector", "device", "status", "measurements")} == {
        "collector": "probe", "device": "web1", "status": "critical", "measurements": 1}
    assert [m["text"] for m in result["message"]] == ["web1 is critical"]  # type: ignore[attr-defined]
    code, out, _ = run(capsys, "jobs", "report", "web1", "--collector", "probe",
                       "--measurements", *where, "-o", "csv")
    assert code == 0
    assert out.splitlines() == ["collector,device,series,value,unit",
                                "probe,web1,web1/probe/value,1.0,"]
    code, out, _ = run(capsys, "jobs", "report", "db1", *where)
    assert code == 0
    assert "db1: OK (latest polls)" in out
    code, _, err = run(capsys, "jobs", "report", "nosuch", *where)
    assert code == 65
    assert "no job of any collector on device 'nosuch'" in err
    code, _, err = run(capsys, "jobs", "report", "web1", "--collector", "nope", *where)
    assert code == 65
    assert "no job of collector 'nope'" in err


# -- inventory nodes --------------------------------------------------------------------------


def test_inventory_node(up: Up, capsys: pytest.CaptureFixture[str]) -> None:
    """The node first, then its relations out and in, each with the node at its other end."""
    code, out, err = run(capsys, "inventory", "node", "static", "device/core1",
                         "--server", up.url, "-o", "json")
    assert code == 0, err
    found = rows(out)
    assert found[0] == {"direction": "node", "relation": "", "id": "device/core1",
                        "kind": "device", "name": "core1", "labels": [],
                        "attrs": found[0]["attrs"]}
    assert found[0]["attrs"]["vendor"] == "juniper"  # type: ignore[index]
    relations = {(r["direction"], r["relation"], r["id"]) for r in found[1:]}
    assert ("out", "has_interface", "interface/core1/ge-0%2F0%2F1") in relations
    assert ("in", "depends_on", "device/edge1") in relations
    code, out, _ = run(capsys, "inventory", "node", "static", "device/core1", "--server",
                       up.url)
    assert code == 0
    assert "static version" in out
    assert "device core1 (device/core1)" in out
    code, _, err = run(capsys, "inventory", "node", "static", "device/nope", "--server",
                       up.url)
    assert code == 65
    assert "no node 'device/nope'" in err


# -- tokens over the API ----------------------------------------------------------------------


def test_token_commands_over_the_api(up: Up, capsys: pytest.CaptureFixture[str],
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """--server (or $WATCHKEEPER_SERVER) with an admin --token (or $WATCHKEEPER_TOKEN):
    create, list and revoke print what the store commands print, and act at once."""
    api = ("--server", up.url, "--token", up.admin)
    code, out, err = run(capsys, "token", "create", "--user", "ci", "--write", *api)
    assert code == 0, err
    assert out.startswith("Created a read and write token for ci (id ")
    key = out.split()[-1]
    with Client(up.url, token=key) as client:
        assert client.write([("ci/t/v", time.time(), 1.0)]).written == 1

    monkeypatch.setenv("WATCHKEEPER_SERVER", up.url)
    monkeypatch.setenv("WATCHKEEPER_TOKEN", up.admin)
    code, out, _ = run(capsys, "token", "list", "-o", "json")
    assert code == 0
    listed = rows(out)
    # Oldest first, by the second: tokens made within one second come in id order.
    assert sorted((r["user"], r["scopes"]) for r in listed) == [
        ("app", "read write"), ("ci", "read write"), ("root", "read write admin"),
        ("viewer", "read")]
    assert key not in out
    [ci_id] = [r["id"] for r in listed if r["user"] == "ci"]
    code, out, _ = run(capsys, "token", "revoke", str(ci_id))
    assert (code, out) == (0, f"Revoked token {ci_id} of ci (read write)\n")
    with Client(up.url, token=key) as client, pytest.raises(HTTPStatusError) as refused:
        client.write([("ci/t/v", time.time(), 2.0)])
    assert refused.value.status == 401

    code, out, _ = run(capsys, "token", "create", "--user", "ci", "-o", "json")
    assert code == 0
    [made] = rows(out)
    assert (made["user"], made["scopes"]) == ("ci", "read")
    assert str(made["created"]).endswith("Z")
    code, out, _ = run(capsys, "token", "revoke", "--user", "ci", "-o", "csv")
    assert code == 0
    assert out.splitlines()[1].startswith(f"{made['id']},ci,read,")
    code, _, err = run(capsys, "token", "revoke", "--user", "ci")
    assert code == 64
    assert "no token of user ci" in err
    code, _, err = run(capsys, "token", "revoke", "0123456789ab")
    assert code == 64
    assert "no token with id 0123456789ab" in err
    code, _, err = run(capsys, "token", "revoke", "abc")
    assert code == 65
    assert "ID: " in err


def test_token_commands_over_the_api_refuse_without_an_admin_key(
        up: Up, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """No key: 77 before asking, naming --token; a read key: 77, naming the admin scope; a
    wrong key: 77. -c/--data-dir still reach the store when $WATCHKEEPER_SERVER is set, and
    --server with either is refused."""
    code, _, err = run(capsys, "token", "list", "--server", up.url)
    assert code == 77
    assert "needs an admin key: --token KEY or $WATCHKEEPER_TOKEN" in err
    code, _, err = run(capsys, "token", "list", "--server", up.url, "--token", up.reader)
    assert code == 77
    assert "needs the admin scope" in err
    code, _, err = run(capsys, "token", "list", "--server", up.url, "--token", "wrong")
    assert code == 77
    assert "refused the key of --token" in err
    code, _, err = run(capsys, "token", "list", "--server", up.url, "-c", str(up.config))
    assert code == 64
    assert "give one or the other" in err
    monkeypatch.setenv("WATCHKEEPER_SERVER", f"http://127.0.0.1:{free_port()}")  # nobody
    code, out, err = run(capsys, "token", "list", "-c", str(up.config), "-o", "json")
    assert code == 0, err
    assert "root" in {r["user"] for r in rows(out)}


# -- the client -------------------------------------------------------------------------------


def test_the_client_reads_the_new_routes(up: Up) -> None:
    """Typed answers; a plain string is one value of a repeatable parameter."""
    with Client(up.url) as client:
        found = client.list_series(plugin="http", labels={"host": "web1"}, matches="lat")
        assert [s.series for s in found.series] == [SERIES[0]]
        assert found.total == 1
        assert client.list_series("web1/", kind="histogram").series[0].series == SERIES[3]
        with pytest.raises(HTTPStatusError) as bad:
            client.list_series(kind="int")
        assert (bad.value.status, bad.value.detail) == (
            400, "kind: must be one of float, histogram, object")
        jobs = client.jobs(statuses="critical", collectors=["probe"])
        assert [(j.device, j.status, j.reason) for j in jobs.jobs] == [
            ("web1", "critical", "web1 is critical")]
        assert jobs.statuses["critical"] >= 1
        report = client.job_report("web1", collector="probe")
        assert isinstance(report, CollectReport)
        result = report.runs["latest"].results["probe"]["web1"]
        assert (result.status, [m.text for m in result.messages]) == (
            "critical", ["web1 is critical"])
        assert [(m.series, m.value) for m in result.measurements] == [("web1/probe/value", 1.0)]
    with Client(up.url, token=up.admin) as admin:
        made = admin.create_token("robot", admin=True)
        assert made.scopes == ["read", "write", "admin"]
        assert made.id in {t.id for t in admin.tokens()}
        assert admin.revoke_token(made.id).user == "robot"
        assert made.id not in {t.id for t in admin.tokens()}
    with InventoryClient(up.url) as inventory:
        node = inventory.node("static", "interface/core1/ge-0%2F0%2F1")
        assert node.node.name == "ge-0/0/1"
        assert {(r.kind, r.target) for r in node.relations_out} >= {
            ("links_to", "interface/edge1/eth0")}
        assert "interface/edge1/eth0" in {n.id for n in node.neighbours}


async def test_the_async_client_reads_the_new_routes(up: Up) -> None:
    async with AsyncClient(up.url) as client:
        found = await client.list_series(subject="db1", metric="connect.latency")
        assert [s.series for s in found.series] == [SERIES[2]]
        jobs = await client.jobs(devices="db1", limit=1)
        assert [(j.device, j.status) for j in jobs.jobs] == [("db1", "ok")]
        report = await client.job_report("db1")
        assert report.status == "ok"
        with pytest.raises(HTTPStatusError) as refused:
            await client.tokens()  # no token: admin routes always need one
        assert refused.value.status == 401
    async with AsyncClient(up.url, token=up.admin) as admin:
        made = await admin.create_token("robot2", write=True)
        assert made.scopes == ["read", "write"]
        assert (await admin.revoke_token(made.id)).id == made.id
        assert "robot2" not in {t.user for t in await admin.tokens()}
