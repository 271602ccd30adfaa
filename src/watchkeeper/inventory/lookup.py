"""What the rest of watchkeeper reads from the inventory: devices to poll, facts about one.

* :func:`devices_of` turns the device nodes of the latest snapshots into the
  :class:`~watchkeeper.model.Device` values collectors poll (the runtime reconciles the
  scheduler's jobs from them).
* :class:`DeviceLookup` is the ``lookup(name) -> {site, role, tags, upstream, ...}``
  callable the enrich engine receives (``Services.lookup``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from watchkeeper.inventory.graph import (
    DEPENDS_ON,
    DEVICE,
    HAS_INTERFACE,
    IN_SITE,
    Graph,
    Node,
    node_id,
)
from watchkeeper.inventory.live import Snapshot
from watchkeeper.inventory.manager import InventoryManager
from watchkeeper.model import Device

INVENTORY_CONNECTION = "inventory"
"""``Device.connections["inventory"]`` carries what the inventory knows beyond the
device's own settings (``interfaces``), so a collector can derive jobs from it."""


def device_of(graph: Graph, node: Node) -> Device:
    """The pollable device a device node describes."""
    attrs = node.attrs
    connections: dict[str, dict[str, Any]] = dict(attrs.get("connections") or {})
    interfaces = sorted(n.name for n in graph.neighbours(node.id, HAS_INTERFACE))
    if interfaces:
        connections[INVENTORY_CONNECTION] = {"interfaces": interfaces}
    interval = attrs.get("interval")
    return Device(
        name=node.name,
        address=str(attrs.get("address") or ""),
        tags=tuple(sorted(node.labels)),
        groups=tuple(attrs.get("groups") or ()),
        interval=float(interval) if interval else None,
        connections=connections,
    )


def devices_of(snapshots: Iterable[Snapshot]) -> list[Device]:
    """Every device of every snapshot, by name; the first collector that has a device wins,
    later ones only add interfaces it lacks."""
    found: dict[str, Device] = {}
    for snapshot in snapshots:
        graph = snapshot.graph
        for node in graph.nodes(DEVICE):
            device = device_of(graph, node)
            known = found.get(device.name)
            found[device.name] = device if known is None else _merge(known, device)
    return list(found.values())


def _merge(first: Device, other: Device) -> Device:
    mine = first.connections.get(INVENTORY_CONNECTION, {}).get("interfaces", [])
    theirs = other.connections.get(INVENTORY_CONNECTION, {}).get("interfaces", [])
    if set(theirs) <= set(mine) and (first.address or not other.address):
        return first
    connections = dict(first.connections)
    interfaces = sorted(set(mine) | set(theirs))
    if interfaces:
        connections[INVENTORY_CONNECTION] = {"interfaces": interfaces}
    return Device(name=first.name, address=first.address or other.address, tags=first.tags,
                  groups=first.groups, interval=first.interval, connections=connections)


def device_facts(graph: Graph, name: str) -> dict[str, str]:
    """``site``, ``role``, ``tags``, ``upstream``, ``address`` and ``groups`` of device
    ``name`` in one graph (only those known); lists are comma-separated."""
    node = graph.node(node_id(DEVICE, name))
    if node is None:
        return {}
    facts: dict[str, str] = {}
    address = node.attrs.get("address")
    if address:
        facts["address"] = str(address)
    groups = node.attrs.get("groups")
    if groups:
        facts["groups"] = ",".join(map(str, groups))
    site = node.attrs.get("site") or _names(graph, node, IN_SITE)
    if site:
        facts["site"] = str(site)
    role = node.attrs.get("role")
    if role:
        facts["role"] = str(role)
    if node.labels:
        facts["tags"] = ",".join(sorted(node.labels))
    upstream = _names(graph, node, DEPENDS_ON)
    if upstream:
        facts["upstream"] = upstream
    return facts


def _names(graph: Graph, node: Node, kind: str) -> str:
    return ",".join(sorted(n.name for n in graph.neighbours(node.id, kind)))


class DeviceLookup:
    """``lookup(device_name) -> Mapping[str, str]`` over the manager's latest snapshots.

    Facts from the first collector that knows the device win, key by key. Answers are
    cached until any model changes version, so a hot path (every event) costs a dict hit.
    """

    def __init__(self, manager: InventoryManager, *, cache_size: int = 65_536) -> None:
        self._manager = manager
        self._cache_size = cache_size
        self._versions: tuple[int, ...] = ()
        self._cache: dict[str, Mapping[str, str]] = {}

    def __call__(self, entity_component: str) -> Mapping[str, str]:
        snapshots = self._manager.snapshots()
        versions = tuple(s.version for s in snapshots)
        if versions != self._versions:
            self._versions = versions
            self._cache = {}
        facts = self._cache.get(entity_component)
        if facts is None:
            merged: dict[str, str] = {}
            for snapshot in snapshots:
                for key, value in device_facts(snapshot.graph, entity_component).items():
                    merged.setdefault(key, value)
            if len(self._cache) >= self._cache_size:
                self._cache.clear()
            facts = self._cache[entity_component] = merged
        return facts
