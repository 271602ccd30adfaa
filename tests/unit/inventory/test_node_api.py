"""One node with its relations in and out: ``GET /api/v1/inventory/{collector}/node?id=``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path

import httpx
import msgspec
import pytest

from tests.support.server import serve_in_thread
from watchkeeper.api import create_app
from watchkeeper.archive.backends.memory import MemoryArchive
from watchkeeper.clock import FakeClock
from watchkeeper.inventory import InventoryManager
from watchkeeper.inventory.builtin.static import StaticModelCollector, StaticOptions
from watchkeeper.telemetry import SelfMetrics
from watchkeeper.wire import InventoryNodeDetail

TOPOLOGY = """\
sites:
  - {name: par1, attrs: {city: Paris}}
devices:
  - name: core1
    site: par1
    interfaces: [ge-0/0/1, eth9]
    attrs: {vendor: juniper, snmp_password: hunter2}
  - {name: edge1, site: par1, upstream: [core1], interfaces: [eth0]}
links:
  - {a: "core1:ge-0/0/1", b: "edge1:eth0", attrs: {speed: 10000}}
services:
  - {name: dns, device: edge1}
"""


@pytest.fixture
async def url(tmp_path: Path, clock: FakeClock) -> AsyncIterator[str]:
    (tmp_path / "inventory.yaml").write_text(TOPOLOGY)
    static = StaticModelCollector(StaticOptions(file=str(tmp_path / "inventory.yaml")),
                                  name="static")
    manager = InventoryManager([static], clock=clock)
    assert await manager.get("static").rebuild()
    async with AsyncExitStack() as stack:
        archive = MemoryArchive(data_dir=tmp_path, options=MemoryArchive.Options(),
                                clock=FakeClock(), metrics=SelfMetrics())
        await archive.start(stack)
        app = create_app(archive, metrics=archive.metrics, inventory=manager)
        with serve_in_thread(app) as base:
            yield base


def _node(url: str, node_id: str, **extra: str) -> InventoryNodeDetail:
    answer = httpx.get(f"{url}/api/v1/inventory/static/node", params={"id": node_id, **extra},
                       timeout=5)
    assert answer.status_code == 200, answer.text
    return msgspec.json.decode(answer.content, type=InventoryNodeDetail)


def _triples(detail: InventoryNodeDetail) -> tuple[list[tuple[str, str, str]], ...]:
    return tuple([(r.source, r.kind, r.target) for r in rels]
                 for rels in (detail.relations_out, detail.relations_in))


def test_a_device_with_its_relations_both_ways_and_its_neighbours(url: str) -> None:
    detail = _node(url, "device/core1")
    assert (detail.collector, detail.version) == ("static", 1)
    assert detail.node.id == "device/core1"
    assert detail.node.attrs["vendor"] == "juniper"
    assert detail.node.attrs["snmp_password"] != "hunter2"  # redacted as in every answer
    out, into = _triples(detail)
    assert out == [("device/core1", "has_interface", "interface/core1/eth9"),
                   ("device/core1", "has_interface", "interface/core1/ge-0%2F0%2F1"),
                   ("device/core1", "in_site", "site/par1")]
    assert into == [("device/edge1", "depends_on", "device/core1")]
    assert [n.id for n in detail.neighbours] == [
        "device/edge1", "interface/core1/eth9", "interface/core1/ge-0%2F0%2F1", "site/par1"]


def test_an_interface_id_holding_slashes_and_percent_signs(url: str) -> None:
    """The id travels as a query parameter, so its quoted `/` (``%2F``) stays as it is."""
    detail = _node(url, "interface/core1/ge-0%2F0%2F1")
    assert detail.node.name == "ge-0/0/1"
    out, into = _triples(detail)
    assert out == [("interface/core1/ge-0%2F0%2F1", "links_to", "interface/edge1/eth0")]
    assert into == [("device/core1", "has_interface", "interface/core1/ge-0%2F0%2F1"),
                    ("interface/edge1/eth0", "links_to", "interface/core1/ge-0%2F0%2F1")]
    assert detail.relations_out[0].attrs == {"speed": 10000}


def test_a_site_has_only_relations_coming_in(url: str) -> None:
    detail = _node(url, "site/par1", version="latest")
    out, into = _triples(detail)
    assert out == []
    assert [s for s, _, _ in into] == ["device/core1", "device/edge1"]
    assert detail.node.attrs == {"city": "Paris"}


@pytest.mark.parametrize(("query", "status", "detail"), [
    ({}, 400, "id: required (a node id, e.g. device/core1)"),
    ({"id": ""}, 400, "id: required (a node id, e.g. device/core1)"),
    ({"id": "device/nosuch"}, 404, "no node 'device/nosuch' in model 'static' (version 1)"),
    ({"id": "device/core1", "version": "x"}, 400, "version: expected a whole number"),
    ({"id": "device/core1", "version": "7"}, 404, "7"),
])
def test_bad_requests_name_what_is_wrong(url: str, query: dict[str, str], status: int,
                                         detail: str) -> None:
    answer = httpx.get(f"{url}/api/v1/inventory/static/node", params=query, timeout=5)
    assert answer.status_code == status, answer.text
    assert detail in answer.json()["detail"]


def test_an_unknown_model_is_404(url: str) -> None:
    answer = httpx.get(f"{url}/api/v1/inventory/nosuch/node", params={"id": "device/core1"},
                       timeout=5)
    assert answer.status_code == 404
    assert "nosuch" in answer.json()["detail"]
