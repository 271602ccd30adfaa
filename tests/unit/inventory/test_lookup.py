"""What the rest reads from the inventory: pollable devices and facts for enrichment."""

from __future__ import annotations

from watchkeeper.clock import FakeClock
from watchkeeper.inventory import (
    DeviceLookup,
    Graph,
    GraphEdit,
    InventoryManager,
    Notification,
    NotificationEndpoint,
    Snapshot,
    devices_of,
    node_id,
)
from watchkeeper.inventory.builtin.static import (
    DeviceEntry,
    StaticFile,
    StaticModelCollector,
    StaticOptions,
    static_graph,
)
from watchkeeper.inventory.lookup import device_facts
from watchkeeper.model import Device


def declared() -> Graph:
    return static_graph(
        (DeviceEntry(name="core1", address="10.0.0.1", tags=["core", "paris"], site="par1",
                     role="core", upstream=["edge1", "edge2"], interfaces=["eth1", "eth0"],
                     groups=["backbone"], interval=30.0,
                     connections={"snmp": {"community": "x"}}),
         DeviceEntry(name="edge1"), DeviceEntry(name="edge2", address="10.0.0.3")),
        StaticFile())


def test_device_facts() -> None:
    graph = declared()
    assert device_facts(graph, "core1") == {
        "site": "par1", "role": "core", "tags": "core,paris", "upstream": "edge1,edge2",
        "address": "10.0.0.1", "groups": "backbone"}
    assert device_facts(graph, "edge1") == {}
    assert device_facts(graph, "nope") == {}


def test_devices_of_snapshots() -> None:
    """Device nodes become pollable devices; a later model adds interfaces, not overrides."""
    discovered = Graph().edit()
    node = discovered.add("device", "edge2", attrs={"address": "192.0.2.9"})
    iface = discovered.add("interface", "edge2", "ge0")
    discovered.relate(node.id, "has_interface", iface.id)
    discovered.add("device", "new1", attrs={"address": "192.0.2.10"})
    snapshots = [Snapshot(collector="static", graph=declared()),
                 Snapshot(collector="snmp", graph=discovered.commit())]
    devices = {d.name: d for d in devices_of(snapshots)}
    assert devices["core1"] == Device(
        name="core1", address="10.0.0.1", tags=("core", "paris"), groups=("backbone",),
        interval=30.0, connections={"snmp": {"community": "x"},
                                    "inventory": {"interfaces": ["eth0", "eth1"]}})
    assert devices["edge2"].address == "10.0.0.3"  # the first model's value wins
    assert devices["edge2"].connections == {"inventory": {"interfaces": ["ge0"]}}
    assert devices["new1"] == Device(name="new1", address="192.0.2.10")
    assert devices["edge1"] == Device(name="edge1")


class Roles(StaticModelCollector):
    """The static model plus a ``role.changed`` notification."""

    def endpoints(self) -> list[NotificationEndpoint]:
        return [NotificationEndpoint(handler=self._role, event_type=r"role\.changed$")]

    def _role(self, edit: GraphEdit, notification: Notification) -> None:
        edit.update(node_id("device", notification.payload["device"]),
                    attrs={"role": notification.payload["role"]})


async def test_device_lookup_follows_versions(clock: FakeClock) -> None:
    options = StaticOptions(devices=(DeviceEntry(name="r1", role="edge", tags=["a"]),))
    manager = InventoryManager([Roles(options, name="static")], clock=clock)
    lookup = DeviceLookup(manager)
    assert lookup("r1") == {}  # not built yet
    assert await manager.get("static").rebuild()
    assert lookup("r1") == {"role": "edge", "tags": "a"}
    assert lookup("r1") is lookup("r1")  # cached while no model changes
    await manager.notify(Notification(publisher_id="cmdb", event_type="role.changed",
                                      payload={"device": "r1", "role": "core"}))
    assert lookup("r1") == {"role": "core", "tags": "a"}
