"""The inventory over REST, through the Python client and the CLI, against the real app."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest

from tests.support.server import serve_in_thread
from tests.unit.inventory.fakes import FakeSource, created, deleted
from watchkeeper.api import create_app
from watchkeeper.archive.backends.memory import MemoryArchive
from watchkeeper.cli.main import main
from watchkeeper.client._inventory import InventoryClient
from watchkeeper.clock import FakeClock
from watchkeeper.errors import HTTPStatusError
from watchkeeper.inventory import InventoryManager
from watchkeeper.inventory.builtin.static import DeviceEntry, StaticModelCollector, StaticOptions
from watchkeeper.telemetry import SelfMetrics
from watchkeeper.wire import InventoryGraph


@pytest.fixture
async def manager(clock: FakeClock) -> InventoryManager:
    static = StaticModelCollector(StaticOptions(devices=(
        DeviceEntry(name="core1", tags=["core"], site="par1", interfaces=["eth0"]),
        DeviceEntry(name="edge1", tags=["edge"]),
    )), name="static")
    inventory = InventoryManager([static, FakeSource("cmdb", source=["a"])], clock=clock)
    for name in inventory.names():
        assert await inventory.get(name).rebuild()
    return inventory


@pytest.fixture
async def url(manager: InventoryManager, tmp_path: Path) -> AsyncIterator[str]:
    async with AsyncExitStack() as stack:
        archive = MemoryArchive(data_dir=tmp_path, options=MemoryArchive.Options(),
                                clock=FakeClock(), metrics=SelfMetrics())
        await archive.start(stack)
        app = create_app(archive, metrics=archive.metrics, inventory=manager)
        with serve_in_thread(app) as base:
            yield base


@pytest.fixture
def client(url: str) -> Iterator[InventoryClient]:
    with InventoryClient(url) as inventory:
        yield inventory


def test_collectors(client: InventoryClient) -> None:
    listing = client.collectors().collectors
    assert [(c.name, c.version, c.nodes, c.stale_since) for c in listing] == [
        ("static", 1, 4, None), ("cmdb", 1, 2, None)]
    assert listing[0].versions == [0, 1]


def test_graph_with_filters(client: InventoryClient) -> None:
    everything = client.graph("static")
    assert [n.id for n in everything.nodes] == [
        "device/core1", "device/edge1", "interface/core1/eth0", "site/par1"]
    assert len(everything.relations) == 2
    assert everything.collector.version == 1
    devices = client.graph("static", kinds=["device", "site"])
    assert [n.id for n in devices.nodes] == ["device/core1", "device/edge1", "site/par1"]
    assert [(r.source, r.kind, r.target) for r in devices.relations] == [
        ("device/core1", "in_site", "site/par1")]  # only relations inside the selection
    core = client.graph("static", kinds=["device"], labels=["core"])
    assert [n.name for n in core.nodes] == ["core1"]
    assert core.nodes[0].attrs == {"address": "", "site": "par1"}
    assert client.graph("static", labels=["core", "edge"]).nodes == []


async def test_diff(client: InventoryClient, manager: InventoryManager) -> None:
    await manager.notify(created("b"))
    await manager.notify(deleted("a"))
    change = client.diff("cmdb", 1, "latest")
    assert (change.from_version, change.to_version) == (1, 3)
    assert [n.id for n in change.appeared] == ["device/b", "interface/b/eth0"]
    assert [n.id for n in change.disappeared] == ["device/a", "interface/a/eth0"]
    assert [r.source for r in change.relations_appeared] == ["device/b"]
    assert not client.diff("cmdb", 3, 3).appeared


def test_errors(client: InventoryClient) -> None:
    with pytest.raises(HTTPStatusError, match="no model collector 'nope'") as info:
        client.graph("nope")
    assert info.value.status == 404
    with pytest.raises(HTTPStatusError, match=r"version 7 is not kept \(kept: 0..1\)") as gone:
        client.diff("static", 7, 1)
    assert gone.value.status == 404
    with pytest.raises(HTTPStatusError, match=r"expected versions as A\.\.B") as bad:
        client.diff("static", "x", 1)
    assert bad.value.status == 400


def test_cli_show_and_diff(url: str, manager: InventoryManager,
                           capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["inventory", "show", "--server", url, "-o", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["collector"], r["version"], r["state"]) for r in rows] == [
        ("static", 1, "fresh"), ("cmdb", 1, "fresh")]
    assert main(["inventory", "show", "static", "--kind", "device", "--label", "core",
                 "--server", url, "-o", "csv"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "id,kind,name,labels,attrs", "device/core1,device,core1,core,address= site=par1"]
    assert main(["inventory", "show", "static", "--relations", "--server", url]) == 0
    assert "has_interface" in capsys.readouterr().out
    manager.deliver(created("z"))
    assert main(["inventory", "diff", "cmdb", "1..2", "--server", url, "-o", "json"]) == 0
    changes = json.loads(capsys.readouterr().out)
    assert [(c["change"], c["id"]) for c in changes] == [
        ("+", "device/z"), ("+", "interface/z/eth0"), ("+", "device/z -> interface/z/eth0")]
    assert main(["inventory", "diff", "cmdb", "1", "--server", url]) == 0
    assert "version 1 -> 2, 3 changes" in capsys.readouterr().out
    assert main(["inventory", "show", "nope", "--server", url]) == 65  # EX_DATAERR: a 404
    assert "no model collector 'nope'" in capsys.readouterr().err


def test_cli_show_json_gives_attrs_and_labels_as_json(
        url: str, capsys: pytest.CaptureFixture[str]) -> None:
    """`inventory show -o json`: attrs an object and labels a list, as the API sends them,
    not the table's `k=v` text; relations' attrs too."""
    assert main(["inventory", "show", "static", "--kind", "device", "--server", url,
                 "-o", "json"]) == 0
    rows = {r["id"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["device/core1"]["labels"] == ["core"]
    assert rows["device/core1"]["attrs"] == {"address": "", "site": "par1"}
    assert rows["device/edge1"]["labels"] == ["edge"]
    assert main(["inventory", "show", "static", "--relations", "--server", url,
                 "-o", "json"]) == 0
    relations = json.loads(capsys.readouterr().out)
    assert relations
    assert all(isinstance(r["attrs"], dict) for r in relations)


# ------------------------------------------------------------- paging


@pytest.fixture
async def big(clock: FakeClock) -> InventoryManager:
    """30 devices with their eth0: 60 nodes, 30 relations; 2 versions of history."""
    inventory = InventoryManager([FakeSource("big", source=[f"d{i:02}" for i in range(30)])],
                                 clock=clock, history=2)
    assert await inventory.get("big").rebuild()
    return inventory


@pytest.fixture
def big_url(big: InventoryManager, tmp_path: Path) -> Iterator[str]:
    archive = MemoryArchive(data_dir=tmp_path, options=MemoryArchive.Options(),
                            clock=FakeClock(), metrics=SelfMetrics())
    app = create_app(archive, metrics=archive.metrics, inventory=big)
    with serve_in_thread(app) as base:
        yield base


def test_a_small_model_is_one_page_with_its_totals(client: InventoryClient) -> None:
    page = client.graph_page("static")
    assert [n.id for n in page.nodes] == [
        "device/core1", "device/edge1", "interface/core1/eth0", "site/par1"]
    assert (page.version, page.total, page.total_relations, page.offset, page.limit) == (
        1, 4, 2, 0, 1000)
    assert msgspec.structs.replace(page, limit=None) == client.graph("static")
    devices = client.graph_page("static", kinds=["device", "site"])
    assert (devices.total, devices.total_relations) == (3, 1)


def test_pages_in_id_order_add_up_to_the_model(big_url: str) -> None:
    with InventoryClient(big_url) as client:
        whole = client.graph_page("big", limit=10_000)
        assert whole.total == 60
        assert whole.total_relations == len(whole.relations) == 30
        ids = [n.id for n in whole.nodes]
        assert ids == sorted(ids)
        nodes, relations = [], []
        for offset in range(0, 60, 7):
            page = client.graph_page("big", limit=7, offset=offset)
            assert (page.total, page.offset, page.limit) == (60, offset, 7)
            assert {r.source for r in page.relations} <= {n.id for n in page.nodes}
            nodes += page.nodes
            relations += page.relations
        assert nodes == whole.nodes
        assert relations == whole.relations  # each relation once, with its source's page
        assert client.graph_page("big", limit=7, offset=60).nodes == []
        assert client.graph("big", page_size=7) == msgspec.structs.replace(
            whole, limit=None)
        interfaces = client.graph_page("big", kinds=["interface"], limit=5, offset=25)
        assert [n.name for n in interfaces.nodes] == ["eth0"] * 5
        assert (interfaces.total, interfaces.total_relations, interfaces.relations) == (30, 0, [])


async def test_later_pages_stay_on_the_first_pages_version(big_url: str,
                                                           big: InventoryManager) -> None:
    with InventoryClient(big_url) as client:
        first = client.graph_page("big", limit=10)
        await big.notify(created("a0"))  # sorts first: would shift every later page
        second = client.graph_page("big", limit=10, offset=10, version=first.version)
        assert second.version == first.version
        assert second.total == 60
        assert second.nodes[0].id == "device/d10"
        assert client.graph_page("big", limit=10).total == 62
        await big.notify(created("a1"))
        await big.notify(created("a2"))  # only 2 versions are kept
        with pytest.raises(HTTPStatusError, match="is not kept") as gone:
            client.graph_page("big", offset=10, version=first.version)
        assert gone.value.status == 404


async def test_following_pages_starts_again_when_its_version_goes(
        big_url: str, big: InventoryManager) -> None:
    class Racing(InventoryClient):
        """Changes the model three times after the first page of the first walk."""

        calls = 0

        def graph_page(self, *args: Any, **kwargs: Any) -> InventoryGraph:
            Racing.calls += 1
            page = super().graph_page(*args, **kwargs)
            if Racing.calls == 1:
                for name in ("a1", "a2", "a3"):
                    big.deliver(created(name))
            return page

    with Racing(big_url) as client:
        graph = client.graph("big", page_size=25)
    assert graph.total == len(graph.nodes) == 66
    assert graph.version == big.get("big").latest().version
    assert Racing.calls == 1 + 1 + 3  # first walk: page 1, then 404; second walk: 3 pages


@pytest.mark.parametrize(("query", "detail"), [
    ("limit=0", "limit: expected a whole number from 1 to 10000, not '0'"),
    ("limit=abc", "limit: expected a whole number from 1 to 10000, not 'abc'"),
    ("limit=10001", "limit: expected a whole number from 1 to 10000, not '10001'"),
    ("limit=2.5", "limit: expected a whole number from 1 to 10000, not '2.5'"),
    ("offset=-1", "offset: expected a whole number from 0 to 9007199254740992, not '-1'"),
    ("version=v2", "version: expected a whole number from 0 to 9007199254740992, not 'v2'"),
])
def test_bad_paging_parameters_are_400_naming_them(url: str, query: str, detail: str) -> None:
    response = httpx.get(f"{url}/api/v1/inventory/static?{query}")
    assert response.status_code == 400
    assert response.json() == {"detail": detail}


def test_cli_show_follows_the_pages(big_url: str, monkeypatch: pytest.MonkeyPatch,
                                    capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr("watchkeeper.client._inventory.PAGE", 7)
    assert main(["inventory", "show", "big", "--server", big_url, "-o", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == 60
    assert [r["id"] for r in rows] == sorted(r["id"] for r in rows)
    assert main(["inventory", "show", "big", "--relations", "--server", big_url,
                 "-o", "json"]) == 0
    assert len(json.loads(capsys.readouterr().out)) == 30
