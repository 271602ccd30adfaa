"""The static model collector: settings devices plus a YAML file, reloaded when it changes."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from watchkeeper.clock import FakeClock
from watchkeeper.errors import InventoryError
from watchkeeper.inventory import Graph, InventoryManager, node_id
from watchkeeper.inventory.abc import BuildContext
from watchkeeper.inventory.builtin.static import (
    DeviceEntry,
    StaticModelCollector,
    StaticOptions,
)
from watchkeeper.inventory.graph import DEPENDS_ON, HAS_INTERFACE, IN_SITE, LINKS_TO, RUNS_ON

FILE = """\
sites:
  - {name: par1, attrs: {city: Paris}}
devices:
  - name: core1
    address: 10.0.0.1
    tags: [core]
    groups: [backbone]
    site: par1
    role: core
    upstream: [edge1]
    interfaces: [xe-0/0/0, {name: xe-0/0/1, attrs: {speed: 10000}}]
    connections: {snmp: {community: public}}
  - {name: edge1, address: 10.0.0.2, site: lyon}
links:
  - {a: "core1:xe-0/0/0", b: "edge1:eth0"}
services:
  - {name: dns, device: edge1, attrs: {port: 53}}
"""


def ctx(clock: FakeClock) -> BuildContext:
    return BuildContext(collector="static", clock=clock, started=clock.time(),
                        deadline=clock.time() + 60, previous=Graph())


def collector(path: Path | None = None, *devices: DeviceEntry) -> StaticModelCollector:
    options = StaticOptions(file=str(path) if path else None, devices=devices)
    return StaticModelCollector(options, name="static")


async def test_the_file_becomes_a_graph(tmp_path: Path, clock: FakeClock) -> None:
    path = tmp_path / "inventory.yaml"
    path.write_text(FILE)
    graph = await collector(path, DeviceEntry(name="localhost", tags=["self"])).build(ctx(clock))
    assert sorted(n.id for n in graph.nodes("device")) == [
        "device/core1", "device/edge1", "device/localhost"]
    core = graph.node("device/core1")
    assert core is not None
    assert core.labels == {"core"}
    assert core.attrs == {"address": "10.0.0.1", "groups": ["backbone"], "site": "par1",
                          "role": "core", "connections": {"snmp": {"community": "public"}}}
    assert [n.name for n in graph.neighbours(core.id, IN_SITE)] == ["par1"]
    assert [n.name for n in graph.neighbours("device/edge1", IN_SITE)] == ["lyon"]  # created
    assert [n.name for n in graph.neighbours(core.id, DEPENDS_ON)] == ["edge1"]
    assert sorted(n.name for n in graph.neighbours(core.id, HAS_INTERFACE)) == [
        "xe-0/0/0", "xe-0/0/1"]
    port = node_id("interface", "core1", "xe-0/0/0")
    assert [n.id for n in graph.neighbours(port, LINKS_TO)] == ["interface/edge1/eth0"]
    assert [n.id for n in graph.neighbours("interface/edge1/eth0", LINKS_TO)] == [port]
    assert [n.name for n in graph.neighbours("service/edge1/dns", RUNS_ON)] == ["edge1"]


async def test_reloaded_only_when_the_file_changes(tmp_path: Path, clock: FakeClock) -> None:
    """An unchanged file gives back the very same graph; a changed one is read again."""
    path = tmp_path / "inventory.yaml"
    path.write_text(FILE)
    static = collector(path)
    first = await static.build(ctx(clock))
    assert await static.build(ctx(clock)) is first
    path.write_text(FILE + "  - {name: ntp, device: core1}\n")
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    second = await static.build(ctx(clock))
    assert second is not first
    assert second.node("service/core1/ntp") is not None


async def test_settings_devices_without_a_file(clock: FakeClock) -> None:
    static = collector(None, DeviceEntry(name="r1", address="10.0.0.1", interval=30.0))
    graph = await static.build(ctx(clock))
    assert [n.attrs for n in graph.nodes("device")] == [{"address": "10.0.0.1", "interval": 30.0}]
    assert await static.build(ctx(clock)) is graph


@pytest.mark.parametrize(("text", "message"), [
    ("devices: [{name: a}, {name: a}]", "device 'a' is declared twice"),
    ("devices: [{name: a, upstream: [b]}]", "upstream of device 'a': no device 'b'"),
    ("devices: [{name: a}]\nlinks: [{a: 'a:eth0', b: 'b:eth0'}]", "link end 'b:eth0': no device"),
    ("devices: [{name: a}]\nlinks: [{a: 'a', b: 'a:eth0'}]", "expected device:interface"),
    ("services: [{name: dns, device: x}]", "device of service 'dns': no device 'x'"),
    ("devices: [{name: a, colour: red}]", r"unknown field `colour` - at `\$.devices\[0\]`"),
    ("devices: [{name: a}", "invalid YAML"),
])
async def test_bad_files_are_refused_with_the_reason(tmp_path: Path, clock: FakeClock,
                                                     text: str, message: str) -> None:
    path = tmp_path / "inventory.yaml"
    path.write_text(text)
    with pytest.raises(InventoryError, match=message):
        await collector(path).build(ctx(clock))


async def test_a_missing_or_empty_file(tmp_path: Path, clock: FakeClock) -> None:
    with pytest.raises(InventoryError, match="cannot read the inventory file"):
        await collector(tmp_path / "nope.yaml").build(ctx(clock))
    empty = tmp_path / "empty.yaml"
    empty.write_text("\n")
    assert (await collector(empty).build(ctx(clock))).node_count == 0


async def test_a_broken_edit_keeps_the_last_good_model(tmp_path: Path, clock: FakeClock) -> None:
    """Through the manager: a bad edit marks the model stale; fixing the file recovers it."""
    path = tmp_path / "inventory.yaml"
    path.write_text(FILE)
    manager = InventoryManager([collector(path)], clock=clock)
    live = manager.get("static")
    assert await live.rebuild()
    good = live.latest()
    path.write_text("devices: [{name: a, upstream: [ghost]}]\n")
    assert not await live.rebuild()
    assert live.latest().graph is good.graph
    assert "no device 'ghost'" in (live.latest().stale_reason or "")
    path.write_text("devices: [{name: a}]\n")
    assert await live.rebuild()
    assert [n.name for n in live.latest().graph.nodes("device")] == ["a"]
    assert not live.latest().stale
