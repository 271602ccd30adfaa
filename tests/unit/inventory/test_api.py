"""The inventory over REST, through the Python client and the CLI, against the real app."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack
from pathlib import Path

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
    assert main(["inventory", "show", "--server", url, "-f", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["collector"], r["version"], r["state"]) for r in rows] == [
        ("static", 1, "fresh"), ("cmdb", 1, "fresh")]
    assert main(["inventory", "show", "static", "--kind", "device", "--label", "core",
                 "--server", url, "-f", "csv"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "id,kind,name,labels,attrs", "device/core1,device,core1,core,address= site=par1"]
    assert main(["inventory", "show", "static", "--relations", "--server", url]) == 0
    assert "has_interface" in capsys.readouterr().out
    manager.deliver(created("z"))
    assert main(["inventory", "diff", "cmdb", "1..2", "--server", url, "-f", "json"]) == 0
    changes = json.loads(capsys.readouterr().out)
    assert [(c["change"], c["id"]) for c in changes] == [
        ("+", "device/z"), ("+", "interface/z/eth0"), ("+", "device/z -> interface/z/eth0")]
    assert main(["inventory", "diff", "cmdb", "1", "--server", url]) == 0
    assert "version 1 -> 2, 3 changes" in capsys.readouterr().out
    assert main(["inventory", "show", "nope", "--server", url]) == 1
    assert "no model collector 'nope'" in capsys.readouterr().err
