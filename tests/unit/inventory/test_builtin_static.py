"""The static model collector: settings devices plus a YAML file, reloaded when it changes."""

from __future__ import annotations

import asyncio
import os
import threading
from pathlib import Path
from typing import Any

import pytest

from tests.unit.inventory.fakes import until
from watchkeeper.clock import FakeClock
from watchkeeper.errors import InventoryError
from watchkeeper.inventory import Graph, InventoryManager, Node, Notification, node_id
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


# ------------------------------------------------------------- pushed attribute changes


def pushed(payload: dict[str, Any], publisher: str = "operator.alice") -> Notification:
    return Notification(publisher_id=publisher, event_type="node.updated", payload=payload)


def rewrite(path: Path, text: str) -> None:
    """Write ``text`` and make sure the mtime moves (same-second writes)."""
    stat = path.stat()
    path.write_text(text)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))


async def static_model(tmp_path: Path, clock: FakeClock) -> tuple[InventoryManager, Path]:
    path = tmp_path / "inventory.yaml"
    path.write_text(FILE)
    manager = InventoryManager([collector(path)], clock=clock)
    assert await manager.get("static").rebuild()
    return manager, path


def node_of(manager: InventoryManager, ident: str) -> Node:
    node = manager.get("static").latest().graph.node(ident)
    assert node is not None, ident
    return node


async def test_pushed_attrs_and_labels_outlive_rebuilds(tmp_path: Path, clock: FakeClock) -> None:
    manager, _ = await static_model(tmp_path, clock)
    live = manager.get("static")
    change = pushed({"id": "device/core1", "attrs": {"role": "spine", "groups": None,
                                                     "rack": "r12"},
                     "labels": ["core", "maintenance"]})
    assert manager.deliver(change) == 1
    core = node_of(manager, "device/core1")
    assert core.attrs["role"] == "spine"
    assert core.attrs["rack"] == "r12"
    assert "groups" not in core.attrs
    assert core.labels == {"core", "maintenance"}
    version = live.latest().version
    assert manager.deliver(change) == 1
    assert live.latest().version == version  # idempotent
    assert await live.rebuild()  # the file did not change: the push stays
    assert live.latest().version == version
    assert node_of(manager, "device/core1").attrs["rack"] == "r12"
    through_pipeline = Notification(publisher_id="pipeline.tell", event_type="node.updated",
                                    payload={"id": "site/par1", "attrs": {"city": "Paris 12"},
                                             "component": "cmdb", "resource": "", "tags": []})
    assert manager.deliver(through_pipeline) == 1
    assert node_of(manager, "site/par1").attrs == {"city": "Paris 12"}
    assert manager.deliver(pushed({"id": "device/ghost", "attrs": {"a": 1}})) == 1  # not ours
    assert manager.deliver(pushed({"id": "device/core1", "attrs": {"a": 1}},
                                  publisher="someone")) == 0  # not a publisher we take


async def test_a_file_edit_of_the_node_wins_over_a_push(tmp_path: Path, clock: FakeClock) -> None:
    manager, path = await static_model(tmp_path, clock)
    live = manager.get("static")
    assert manager.deliver(pushed({"id": "device/core1", "attrs": {"role": "spine"}})) == 1
    assert manager.deliver(pushed({"id": "device/edge1", "attrs": {"rack": "r1"}})) == 1
    rewrite(path, FILE.replace("role: core", "role: border"))
    assert await live.rebuild()
    assert node_of(manager, "device/core1").attrs["role"] == "border"  # redeclared: file wins
    assert node_of(manager, "device/edge1").attrs["rack"] == "r1"  # untouched in the file
    assert await live.rebuild()
    assert node_of(manager, "device/core1").attrs["role"] == "border"


async def test_a_push_during_a_rebuild_that_reads_an_edit_survives(
        tmp_path: Path, clock: FakeClock, monkeypatch: pytest.MonkeyPatch) -> None:
    manager, path = await static_model(tmp_path, clock)
    live = manager.get("static")
    static = live.collector
    assert isinstance(static, StaticModelCollector)
    gate, reading = threading.Event(), threading.Event()
    load = static._load

    def slow_load(previous: Any) -> Any:
        loaded = load(previous)
        reading.set()
        gate.wait(5)
        return loaded

    monkeypatch.setattr(static, "_load", slow_load)
    rewrite(path, FILE.replace("role: core", "role: border"))
    rebuild = asyncio.create_task(live.rebuild())
    await until(reading.is_set)
    assert manager.deliver(pushed({"id": "device/core1", "attrs": {"role": "spine"}})) == 1
    gate.set()
    assert await rebuild
    assert node_of(manager, "device/core1").attrs["role"] == "spine"  # replayed at the swap
    monkeypatch.undo()
    assert await live.rebuild()  # and kept by the next build
    assert node_of(manager, "device/core1").attrs["role"] == "spine"


@pytest.mark.parametrize(("payload", "message"), [
    ({"attrs": {"a": 1}}, "payload field 'id' is missing"),
    ({"id": "device/core1"}, "payload field 'attrs' is missing (give 'attrs' and/or 'labels')"),
    ({"id": "device/core1", "attrs": [1]}, "payload field 'attrs' must be an object"),
    ({"id": "device/core1", "labels": "core"}, "payload field 'labels' must be a list"),
])
async def test_bad_pushes_name_the_field(tmp_path: Path, clock: FakeClock, payload: dict[str, Any],
                                         message: str, caplog: pytest.LogCaptureFixture) -> None:
    manager, _ = await static_model(tmp_path, clock)
    assert manager.deliver(pushed(payload)) == 0
    assert message in caplog.text
    assert manager.get("static").stats().notification_errors == 1


TESTBED = """\
credentials:
  lab-snmp: {community: env:WK_SNMP_COMMUNITY}
defaults:
  groups: [lab]
  connections: {snmp: {port: 161}}
devices:
  core1:
    addresses: [192.0.2.1, "2001:db8::1"]
    tags: [core]
    groups: [site-a]
    intervals: {if-traffic: 300}
    site: par1
    connections:
      snmp: {credentials: lab-snmp, version: 2c}
  edge1:
    address: 192.0.2.2
    groups: [lab]
  bare1:
"""


async def test_a_collect_testbed_file_is_a_model_too(tmp_path: Path, clock: FakeClock) -> None:
    """The file `watchkeeper collect` reads (credentials, defaults, devices by name,
    several addresses) builds the same devices into the live model."""
    path = tmp_path / "testbed.yaml"
    path.write_text(TESTBED)
    graph = await collector(path).build(ctx(clock))
    core = graph.node(node_id("device", "core1"))
    assert core is not None
    assert core.attrs["address"] == "192.0.2.1"
    assert core.attrs["addresses"] == ["192.0.2.1", "2001:db8::1"]
    assert core.attrs["groups"] == ["lab", "site-a"]
    assert core.attrs["intervals"] == {"if-traffic": 300}
    assert core.attrs["connections"]["snmp"] == {"port": 161, "credentials": "lab-snmp",
                                                 "version": "2c"}
    assert core.labels == frozenset({"core"})
    assert graph.relation(core.id, IN_SITE, node_id("site", "par1")) is not None
    edge = graph.node(node_id("device", "edge1"))
    assert edge is not None
    assert edge.attrs["groups"] == ["lab"]  # joined, not repeated
    assert edge.attrs["connections"] == {"snmp": {"port": 161}}
    assert graph.node(node_id("device", "bare1")) is not None
    assert "env:WK_SNMP_COMMUNITY" not in repr(list(graph.nodes()))  # credentials stay out


async def test_a_device_list_entry_needs_a_name(tmp_path: Path, clock: FakeClock) -> None:
    path = tmp_path / "testbed.yaml"
    path.write_text("devices:\n  - {address: 192.0.2.9}\n")
    with pytest.raises(InventoryError, match=r"devices\[0\]: a device needs a name"):
        await collector(path).build(ctx(clock))
