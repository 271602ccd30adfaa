"""The ``static`` model collector: the declared inventory (settings devices and a YAML file).

The file, reloaded whenever its modification time or size changes::

    sites:
      - {name: par1, attrs: {city: Paris}}
    devices:
      - name: core1
        address: 10.0.0.1
        tags: [core]
        site: par1
        role: core
        upstream: [edge1]            # device names; edge1 must be declared too
        interfaces: [xe-0/0/0, {name: xe-0/0/1, attrs: {speed: 10000}}]
        connections: {snmp: {community: public}}
      - {name: edge1, address: 10.0.0.2}
    links:
      - {a: "core1:xe-0/0/0", b: "edge1:eth0"}   # device:interface; interfaces are created
    services:
      - {name: dns, device: edge1, attrs: {port: 53}}

Each ``period`` (10 s by default) the build only looks at the file's mtime; when nothing
changed it returns the previous model unchanged, which costs nothing downstream.

Between builds an operator (or a CMDB) may push attribute and label changes: a
``node.updated`` notification (the event ``inventory.node.updated`` through the pipeline's
inventory_notify engine, or straight to the notifications queue; publisher matching
``publishers``) with ``id`` (a node of this model, ``device/core1``) and ``attrs`` (merged;
``null`` removes one) and/or ``labels`` (replace the node's labels: a device's tags). A
pushed change outlives rebuilds: it stays until watchkeeper restarts or a file edit
changes that node's declaration (then the file wins). Ids the model does not have are
left alone; nodes and relations are only ever added or removed by the file.
"""

from __future__ import annotations

import asyncio
import itertools
import os
from dataclasses import dataclass
from typing import Any

import msgspec

from watchkeeper.errors import InventoryError
from watchkeeper.inventory.abc import (
    BuildContext,
    ModelCollector,
    Notification,
    NotificationEndpoint,
)
from watchkeeper.inventory.builtin._notify import (
    BadNotification,
    NotifiedOptions,
    mapping,
    text,
)
from watchkeeper.inventory.graph import (
    DEPENDS_ON,
    DEVICE,
    HAS_INTERFACE,
    IN_SITE,
    INTERFACE,
    LINKS_TO,
    RUNS_ON,
    SERVICE,
    SITE,
    Graph,
    GraphEdit,
    node_id,
)


class _Entry(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    pass


class InterfaceEntry(_Entry, frozen=True, kw_only=True):
    name: str
    attrs: dict[str, Any] = msgspec.field(default_factory=dict)
    labels: list[str] = msgspec.field(default_factory=list)


class DeviceEntry(_Entry, frozen=True, kw_only=True):
    """A device: the settings' device fields plus topology.

    The testbed's keys are accepted too (``addresses``, ``intervals``), so one file serves
    ``watchkeeper collect`` and the live model; in a mapping of devices the key is the name.
    """

    name: str = ""
    address: str = ""
    addresses: list[str] = msgspec.field(default_factory=list)
    tags: list[str] = msgspec.field(default_factory=list)
    groups: list[str] = msgspec.field(default_factory=list)
    interval: float | None = None
    intervals: dict[str, float] = msgspec.field(default_factory=dict)
    connections: dict[str, dict[str, Any]] = msgspec.field(default_factory=dict)
    site: str | None = None
    role: str | None = None
    upstream: list[str] = msgspec.field(default_factory=list)
    interfaces: list[str | InterfaceEntry] = msgspec.field(default_factory=list)
    attrs: dict[str, Any] = msgspec.field(default_factory=dict)


class SiteEntry(_Entry, frozen=True, kw_only=True):
    name: str
    attrs: dict[str, Any] = msgspec.field(default_factory=dict)
    labels: list[str] = msgspec.field(default_factory=list)


class LinkEntry(_Entry, frozen=True, kw_only=True):
    a: str  # device:interface
    b: str
    attrs: dict[str, Any] = msgspec.field(default_factory=dict)


class ServiceEntry(_Entry, frozen=True, kw_only=True):
    name: str
    device: str
    attrs: dict[str, Any] = msgspec.field(default_factory=dict)
    labels: list[str] = msgspec.field(default_factory=list)


class StaticFile(_Entry, frozen=True, kw_only=True):
    sites: list[SiteEntry] = msgspec.field(default_factory=list)
    devices: list[DeviceEntry] | dict[str, DeviceEntry | None] = msgspec.field(
        default_factory=list)
    links: list[LinkEntry] = msgspec.field(default_factory=list)
    services: list[ServiceEntry] = msgspec.field(default_factory=list)
    # The testbed's: how to reach devices (references only; never in the model) and what
    # every device gets (lists joined, the rest filled in where a device says nothing).
    credentials: dict[str, dict[str, Any]] = msgspec.field(default_factory=dict)
    defaults: DeviceEntry | None = None

    def device_list(self) -> list[DeviceEntry]:
        """The devices with their names filled in and the defaults merged under them."""
        if isinstance(self.devices, dict):
            named = [msgspec.structs.replace(entry or DeviceEntry(), name=key)
                     for key, entry in self.devices.items()]
        else:
            named = list(self.devices)
        for index, device in enumerate(named):
            if not device.name:
                raise InventoryError(f"devices[{index}]: a device needs a name")
        if self.defaults is None:
            return named
        return [_with_defaults(device, self.defaults) for device in named]


def _with_defaults(device: DeviceEntry, defaults: DeviceEntry) -> DeviceEntry:
    merged: dict[str, Any] = {}
    for field in msgspec.structs.fields(DeviceEntry):
        mine, default = getattr(device, field.name), getattr(defaults, field.name)
        if field.name == "name" or not default:
            continue
        if isinstance(mine, list):
            merged[field.name] = [*default, *(x for x in mine if x not in default)]
        elif field.name == "connections":  # per protocol, as the testbed merges them
            merged[field.name] = {protocol: {**default.get(protocol, {}), **mine.get(protocol, {})}
                                  for protocol in {**default, **mine}}
        elif isinstance(mine, dict):
            merged[field.name] = {**default, **mine}
        elif not mine:
            merged[field.name] = default
    return msgspec.structs.replace(device, **merged) if merged else device


class StaticOptions(NotifiedOptions, frozen=True, kw_only=True):
    period: float = 10.0  # how often the file is checked for changes
    timeout: float = 60.0
    file: str | None = None
    devices: tuple[DeviceEntry, ...] = ()  # the settings' inventory.devices, given by the runtime


@dataclass(frozen=True, slots=True)
class _Loaded:
    stamp: tuple[int, int] | None  # the file's (mtime_ns, size) when read
    graph: Graph


@dataclass(slots=True)
class _Pushed:
    """What node.updated notifications set on one node (None in attrs: removed)."""

    attrs: dict[str, Any]
    labels: frozenset[str] | None
    seq: int  # when it was last pushed (a counter), to tell pushes during a build apart


class StaticModelCollector(ModelCollector):
    """Devices, sites, interfaces, links and services declared by hand."""

    Options = StaticOptions
    options: StaticOptions

    def __init__(self, options: StaticOptions, *, name: str) -> None:
        super().__init__(options, name=name)
        self._loaded: _Loaded | None = None
        self._pushed: dict[str, _Pushed] = {}
        self._seq = itertools.count(1)
        self._last_seq = 0

    async def build(self, ctx: BuildContext) -> Graph:
        before = self._last_seq  # pushes after this arrived during the build: they stay
        loaded = await asyncio.to_thread(self._load, self._loaded)
        previous, self._loaded = self._loaded, loaded
        if previous is not None and loaded is not previous:
            self._forget_redeclared(previous.graph, loaded.graph, before)
        return self._with_pushed(loaded.graph)

    def endpoints(self) -> list[NotificationEndpoint]:
        return [NotificationEndpoint(handler=self._node_updated,
                                     publisher_id=self.options.publishers,
                                     event_type=r"node\.updated$")]

    def _node_updated(self, edit: GraphEdit, n: Notification) -> None:
        """``node.updated``: merge ``attrs`` and/or replace ``labels`` of node ``id``."""
        target = text(n, "id")
        attrs = mapping(n, "attrs")
        raw_labels = n.payload.get("labels")
        labels: frozenset[str] | None = None
        if raw_labels is not None:
            if isinstance(raw_labels, str) or not isinstance(raw_labels, list | tuple) or \
                    not all(isinstance(label, str) for label in raw_labels):
                raise BadNotification(n, "labels", "must be a list of strings")
            labels = frozenset(raw_labels)
        if attrs is None and labels is None:
            raise BadNotification(n, "attrs", "is missing (give 'attrs' and/or 'labels')")
        if edit.update(target, attrs=attrs, labels=labels) is None:
            return  # no such node in this model
        seq = self._last_seq = next(self._seq)
        pushed = self._pushed.get(target)
        if pushed is None:
            self._pushed[target] = _Pushed(dict(attrs or {}), labels, seq)
        else:
            pushed.attrs.update(attrs or {})
            if labels is not None:
                pushed.labels = labels
            pushed.seq = seq

    def _forget_redeclared(self, old: Graph, new: Graph, before: int) -> None:
        """The file changed: pushes to nodes it now declares differently (or not at all)
        give way to it, unless they came during this build."""
        for target, pushed in list(self._pushed.items()):
            node = new.node(target)
            if pushed.seq <= before and (node is None or node != old.node(target)):
                del self._pushed[target]

    def _with_pushed(self, graph: Graph) -> Graph:
        if not self._pushed:
            return graph
        edit = graph.edit()
        for target, pushed in self._pushed.items():
            edit.update(target, attrs=pushed.attrs, labels=pushed.labels)
        return edit.commit()

    def _load(self, previous: _Loaded | None) -> _Loaded:
        path = self.options.file
        if path is None:
            if previous is not None:
                return previous
            return _Loaded(stamp=None, graph=static_graph(self.options.devices, StaticFile()))
        try:
            stat = os.stat(path)
        except OSError as exc:
            raise InventoryError(f"{path}: cannot read the inventory file: "
                                 f"{exc.strerror}") from None
        stamp = (stat.st_mtime_ns, stat.st_size)
        if previous is not None and previous.stamp == stamp:
            return previous
        return _Loaded(stamp=stamp, graph=static_graph(self.options.devices, read_file(path)))


def read_file(path: str) -> StaticFile:
    """Parse and validate an inventory file; errors name the file and the bad key."""
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except OSError as exc:
        raise InventoryError(f"{path}: cannot read the inventory file: {exc.strerror}") from None
    if not data.strip():
        return StaticFile()
    try:
        return msgspec.yaml.decode(data, type=StaticFile)
    except msgspec.ValidationError as exc:
        raise InventoryError(f"{path}: {exc}") from None
    except msgspec.DecodeError as exc:
        raise InventoryError(f"{path}: invalid YAML: {exc}") from None


def static_graph(settings_devices: tuple[DeviceEntry, ...], file: StaticFile) -> Graph:
    """The model of the declared inventory; raises InventoryError on a dangling reference."""
    edit = Graph().edit()
    for site in file.sites:
        edit.add(SITE, site.name, attrs=site.attrs, labels=site.labels)
    devices = [*settings_devices, *file.device_list()]
    for device in devices:
        if node_id(DEVICE, device.name) in edit:
            raise InventoryError(f"device {device.name!r} is declared twice")
        _add_device(edit, device)
    for device in devices:
        for upstream in device.upstream:
            _require(edit, DEVICE, upstream, f"upstream of device {device.name!r}")
            edit.relate(node_id(DEVICE, device.name), DEPENDS_ON, node_id(DEVICE, upstream))
    for link in file.links:
        a, b = _port(edit, link.a), _port(edit, link.b)
        edit.relate(a, LINKS_TO, b, link.attrs)
        edit.relate(b, LINKS_TO, a, link.attrs)
    for service in file.services:
        _require(edit, DEVICE, service.device, f"device of service {service.name!r}")
        svc = edit.add(SERVICE, service.device, service.name, attrs=service.attrs,
                       labels=service.labels)
        edit.relate(svc.id, RUNS_ON, node_id(DEVICE, service.device))
    return edit.commit()


def _add_device(edit: GraphEdit, device: DeviceEntry) -> None:
    address = device.address or (device.addresses[0] if device.addresses else "")
    attrs: dict[str, Any] = {"address": address, **device.attrs}
    optional = {"addresses": device.addresses if len(device.addresses) > 1 else None,
                "groups": device.groups, "interval": device.interval,
                "intervals": device.intervals, "connections": device.connections,
                "site": device.site, "role": device.role}
    attrs.update({k: v for k, v in optional.items() if v})
    node = edit.add(DEVICE, device.name, attrs=attrs, labels=device.tags)
    if device.site:
        site = node_id(SITE, device.site)
        if site not in edit:
            edit.add(SITE, device.site)
        edit.relate(node.id, IN_SITE, site)
    for entry in device.interfaces:
        iface = entry if isinstance(entry, InterfaceEntry) else InterfaceEntry(name=entry)
        added = edit.add(INTERFACE, device.name, iface.name, attrs=iface.attrs,
                         labels=iface.labels)
        edit.relate(node.id, HAS_INTERFACE, added.id)


def _require(edit: GraphEdit, kind: str, name: str, what: str) -> None:
    if node_id(kind, name) not in edit:
        raise InventoryError(f"{what}: no {kind} {name!r} is declared")


def _port(edit: GraphEdit, ref: str) -> str:
    """The interface node of ``device:interface``, created if the device lacks it."""
    device, sep, interface = ref.partition(":")
    if not sep or not device or not interface:
        raise InventoryError(f"link end {ref!r}: expected device:interface")
    _require(edit, DEVICE, device, f"link end {ref!r}")
    iface = node_id(INTERFACE, device, interface)
    if iface not in edit:
        edit.add(INTERFACE, device, interface)
        edit.relate(node_id(DEVICE, device), HAS_INTERFACE, iface)
    return iface
