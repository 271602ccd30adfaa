"""The ``snmp`` model collector: interfaces from IF-MIB, neighbours from LLDP-MIB.

For each target it walks the system group, the ifTable and ifXTable columns it needs and,
when the agent has them, LLDP-MIB's local port and remote tables. OIDs are numeric, so no
MIB files are needed. Every target must answer: one that does not fails the build (the
previous model stays, marked stale), never a model with that agent's part missing. Put
agents that fail independently into separate collectors.

Turning walked values into a model (:func:`agent_graph`) is pure and tested from tables.

Between builds it applies these notifications (publisher matching ``publishers``; payload
fields are looked up in the order given; a device or interface the model does not have
is left alone, the next build brings it):

* interface status: ``interface.up``/``interface.down`` (the pipeline's inventory_notify
  for the events ``inventory.interface.up|down``), or the traps ``linkUp``/``linkDown``
  (also ``IF-MIB::linkUp`` and the numeric ``1.3.6.1.6.3.1.1.5.4``/``.3``). Payload:
  ``device`` or ``component``; ``ifname``, ``interface``, ``ifName``, ``ifDescr`` or
  ``resource`` (an interface's name or its ``descr``), or ``ifindex``
  (``ifIndex``); optional ``oper_status``/``ifOperStatus`` and ``admin_status``/
  ``ifAdminStatus`` (IF-MIB numbers or names). Sets the interface's ``oper_status`` (the
  payload's, else ``up``/``down`` from the event) and ``admin_status`` when given.
* agent reachability, from watchkeeper's own ``snmp`` check events (``check``, passed on
  by an inventory_notify engine whose ``event_types`` include ``check$``): output ``no
  SNMP answer from ...`` marks the device ``unreachable`` (the output) and
  ``unreachable_since`` (the event's time); an answering poll (``host:port: N values``)
  clears both.
* LLDP neighbours: ``lldp.neighbour.added``/``lldp.neighbour.removed`` with ``device``,
  ``port`` (the local interface, or ``ifindex``), ``remote_device`` and ``remote_port``:
  adds or removes the ``links_to`` pair (and the neighbour's device and port when LLDP
  was the only reason they were in the model). LLDP-MIB's own trap
  (``lldpRemTablesChange``) only carries counters, so this comes from an operator or a
  system that knows which neighbour changed.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from watchkeeper.inventory.abc import (
    BuildContext,
    ModelCollector,
    Notification,
    NotificationEndpoint,
)
from watchkeeper.inventory.builtin._notify import (
    BadNotification,
    NotifiedOptions,
    device_interface,
    optional_text,
    text,
    whole_number,
)
from watchkeeper.inventory.builtin._snmpwalk import Oid, SnmpTarget, Walker
from watchkeeper.inventory.graph import (
    DEVICE,
    HAS_INTERFACE,
    INTERFACE,
    LINKS_TO,
    Graph,
    GraphEdit,
    node_id,
)

SYSTEM = (1, 3, 6, 1, 2, 1, 1)
IF_COLUMNS = {  # IF-MIB ifTable (1.3.6.1.2.1.2.2.1.N) and ifXTable (1.3.6.1.2.1.31.1.1.1.N)
    "descr": (1, 3, 6, 1, 2, 1, 2, 2, 1, 2),
    "type": (1, 3, 6, 1, 2, 1, 2, 2, 1, 3),
    "mtu": (1, 3, 6, 1, 2, 1, 2, 2, 1, 4),
    "speed": (1, 3, 6, 1, 2, 1, 2, 2, 1, 5),
    "mac": (1, 3, 6, 1, 2, 1, 2, 2, 1, 6),
    "admin": (1, 3, 6, 1, 2, 1, 2, 2, 1, 7),
    "oper": (1, 3, 6, 1, 2, 1, 2, 2, 1, 8),
    "name": (1, 3, 6, 1, 2, 1, 31, 1, 1, 1, 1),
    "high_speed": (1, 3, 6, 1, 2, 1, 31, 1, 1, 1, 15),
    "alias": (1, 3, 6, 1, 2, 1, 31, 1, 1, 1, 18),
}
LLDP_LOC_PORT = (1, 0, 8802, 1, 1, 2, 1, 3, 7, 1)  # lldpLocPortTable, index lldpLocPortNum
LLDP_REM = (1, 0, 8802, 1, 1, 2, 1, 4, 1, 1)  # lldpRemTable, index (timeMark, port, index)

_STATUS = {1: "up", 2: "down", 3: "testing", 4: "unknown", 5: "dormant", 6: "notPresent",
           7: "lowerLayerDown"}
_STATUS_NAMES = frozenset(_STATUS.values())
_MAC_SUBTYPE = {"chassis": 4, "port": 3}  # LLDP id subtypes carrying a MAC address

# Interface status events: ours (inventory.interface.up|down through inventory_notify), the
# standard traps by name (snmptrapd prints IF-MIB::linkUp) and by OID (linkDown .3, linkUp .4).
LINK_EVENTS = (r"(?:interface\.(?:up|down)|(?:IF-MIB::)?link(?:Up|Down)"
               r"|\.?1\.3\.6\.1\.6\.3\.1\.1\.5\.[34])$")
# What watchkeeper's snmp collector says in a check's output (collect/builtin/snmp.py).
NO_ANSWER = r"no SNMP answer from "
ANSWERED = r"[^\s;]+:\d+: \d+ values(?:;|$)"


class SnmpOptions(NotifiedOptions, frozen=True, kw_only=True):
    period: float = 900.0
    timeout: float = 120.0
    targets: tuple[SnmpTarget, ...] = ()
    lldp: bool = True

    def __post_init__(self) -> None:
        super().__post_init__()
        names = [t.device for t in self.targets]
        if len(set(names)) != len(names):
            raise ValueError("two `targets` describe the same device")


@dataclass(frozen=True, slots=True)
class AgentData:
    """What was walked from one agent: each table as {column: {index: value}}."""

    target: SnmpTarget
    system: dict[Oid, Any] = field(default_factory=dict)
    interfaces: dict[str, dict[Oid, Any]] = field(default_factory=dict)
    lldp_local: dict[Oid, Any] = field(default_factory=dict)
    lldp_remote: dict[Oid, Any] = field(default_factory=dict)


class SnmpModelCollector(ModelCollector):
    """Devices, interfaces and LLDP neighbours of SNMP agents."""

    Options = SnmpOptions
    options: SnmpOptions

    async def build(self, ctx: BuildContext) -> Graph:
        agents = await asyncio.gather(*(self._walk(t) for t in self.options.targets))
        edit = Graph().edit()
        for agent in agents:
            agent_graph(edit, agent)
        for agent in agents:  # after every agent's own ports, so neighbours find them
            lldp_links(edit, agent)
        return edit.commit()

    async def _walk(self, target: SnmpTarget) -> AgentData:
        walker = Walker(target)
        try:
            await walker.open()
            system = await walker.walk(SYSTEM)
            columns = await asyncio.gather(*(walker.walk(oid) for oid in IF_COLUMNS.values()))
            local: dict[Oid, Any] = {}
            remote: dict[Oid, Any] = {}
            if self.options.lldp:
                local = await walker.walk(LLDP_LOC_PORT)
                remote = await walker.walk(LLDP_REM) if local else {}
        finally:
            walker.close()
        return AgentData(target=target, system=system,
                         interfaces=dict(zip(IF_COLUMNS, columns, strict=True)),
                         lldp_local=local, lldp_remote=remote)

    def endpoints(self) -> list[NotificationEndpoint]:
        publishers = self.options.publishers
        found = [
            NotificationEndpoint(handler=link_status, publisher_id=publishers,
                                 event_type=LINK_EVENTS),
            NotificationEndpoint(handler=agent_silent, publisher_id=publishers,
                                 event_type=r"check$", payload={"output": NO_ANSWER}),
            NotificationEndpoint(handler=agent_answered, publisher_id=publishers,
                                 event_type=r"check$", payload={"output": ANSWERED}),
        ]
        if self.options.lldp:
            found.append(NotificationEndpoint(
                handler=lldp_neighbour, publisher_id=publishers,
                event_type=r"lldp\.neighbou?r\.(?:added|removed)$"))
        return found


# ----------------------------------------------------------------- notification handlers


def link_status(edit: GraphEdit, n: Notification) -> None:
    """``interface.up|down`` or ``linkUp|linkDown``: the interface's oper (and admin) status."""
    device = text(n, "device", "component")
    name = optional_text(n, "ifname", "interface", "ifName", "ifDescr", "resource")
    index = whole_number(n, "ifindex", "ifIndex")
    if name is None and index is None:
        raise BadNotification(n, "ifname", "is missing (or 'interface', 'resource', "
                                           "'ifindex')")
    up = n.event_type.endswith(("up", "Up", ".4"))
    attrs = {"oper_status": _status(n, "oper_status", "ifOperStatus") or
             ("up" if up else "down")}
    admin = _status(n, "admin_status", "ifAdminStatus")
    if admin is not None:
        attrs["admin_status"] = admin
    port = device_interface(edit, device, name=name, index=index)
    if port is not None:
        edit.update(port.id, attrs=attrs)


def agent_silent(edit: GraphEdit, n: Notification) -> None:
    """An snmp check found the agent silent: mark its device ``unreachable`` (first time)."""
    device = node_id(DEVICE, text(n, "device", "component"))
    output = text(n, "output")
    node = edit.node(device)
    if node is None or "unreachable" in node.attrs:
        return  # not ours, or already marked (keeps the first time)
    attrs: dict[str, Any] = {"unreachable": output}
    if n.timestamp is not None:
        attrs["unreachable_since"] = n.timestamp
    edit.update(device, attrs=attrs)


def agent_answered(edit: GraphEdit, n: Notification) -> None:
    """An snmp check got answers: the device is reachable again."""
    device = node_id(DEVICE, text(n, "device", "component"))
    edit.update(device, attrs={"unreachable": None, "unreachable_since": None})


def lldp_neighbour(edit: GraphEdit, n: Notification) -> None:
    """``lldp.neighbour.added|removed``: the links_to pair between a port and its neighbour."""
    device = text(n, "device", "component")
    port = optional_text(n, "port", "interface", "ifname")
    index = whole_number(n, "ifindex", "ifIndex")
    if port is None and index is None:
        raise BadNotification(n, "port", "is missing (or 'interface', 'ifname', 'ifindex')")
    peer = text(n, "remote_device")
    peer_port_name = text(n, "remote_port")
    local = device_interface(edit, device, name=port, index=index)
    if local is None:
        return
    peer_id, peer_port = node_id(DEVICE, peer), node_id(INTERFACE, peer, peer_port_name)
    if n.event_type.endswith("added"):
        if peer_id not in edit:
            edit.add(DEVICE, peer, attrs={"discovered_by": "lldp"})
        if peer_port not in edit:
            edit.add(INTERFACE, peer, peer_port_name, attrs={"discovered_by": "lldp"})
            edit.relate(peer_id, HAS_INTERFACE, peer_port)
        edit.relate(local.id, LINKS_TO, peer_port, {"protocol": "lldp"})
        edit.relate(peer_port, LINKS_TO, local.id, {"protocol": "lldp"})
        return
    edit.unrelate(local.id, LINKS_TO, peer_port)
    edit.unrelate(peer_port, LINKS_TO, local.id)
    # What LLDP alone put in the model goes with its last link, as a rebuild would do.
    node = edit.node(peer_port)
    if (node is not None and node.attrs.get("discovered_by") == "lldp"
            and not any(r.kind == LINKS_TO for r in edit.relations_of(peer_port))):
        edit.remove(peer_port)
    owner = edit.node(peer_id)
    if (owner is not None and owner.attrs.get("discovered_by") == "lldp"
            and not any(r.kind == HAS_INTERFACE for r in edit.relations_of(peer_id))):
        edit.remove(peer_id)


def _status(n: Notification, *names: str) -> str | None:
    """An IF-MIB status from the payload, by number (1 up, 2 down...) or by name."""
    value = optional_text(n, *names)
    if value is None:
        return None
    if value.isdigit() and int(value) in _STATUS:
        return _STATUS[int(value)]
    if value in _STATUS_NAMES:
        return value
    field = next(name for name in names if n.payload.get(name) not in (None, ""))
    raise BadNotification(n, field, f"must be an IF-MIB status (1-7 or up, down, ...), "
                                    f"not {value!r}")


def agent_graph(edit: GraphEdit, agent: AgentData) -> None:
    """Add the agent's device and its interfaces to ``edit``."""
    target = agent.target
    attrs: dict[str, Any] = {"address": target.address}
    for key, oid in (("sys_descr", (1, 0)), ("sys_name", (5, 0)), ("sys_location", (6, 0))):
        value = agent.system.get(oid)
        if value:
            attrs[key] = _text(value)
    object_id = agent.system.get((2, 0))
    if object_id:
        attrs["sys_object_id"] = str(object_id)
    device = node_id(DEVICE, target.device)
    old = edit.node(device)
    if old is not None and old.attrs.get("discovered_by") == "lldp":
        edit.remove(device)  # a neighbour seen before its own agent: the agent's view wins
    edit.add(DEVICE, target.device, attrs=attrs)
    for name, iface in interfaces(agent.interfaces).items():
        node = edit.add(INTERFACE, target.device, name, attrs=iface)
        edit.relate(device, HAS_INTERFACE, node.id)


def interfaces(columns: dict[str, dict[Oid, Any]]) -> dict[str, dict[str, Any]]:
    """Interfaces by name (ifName, else ifDescr) with their IF-MIB attributes."""
    found: dict[str, dict[str, Any]] = {}
    indexes = sorted(set(columns.get("descr", {})) | set(columns.get("name", {})))
    for index in indexes:
        def col(key: str, index: Oid = index) -> Any:
            return columns.get(key, {}).get(index)

        name = _text(col("name") or col("descr") or "")
        if not name:
            continue
        attrs: dict[str, Any] = {"index": index[0], "descr": _text(col("descr") or b"")}
        high = col("high_speed")
        speed = high * 1_000_000 if high else col("speed")
        optional = {"type": col("type"), "mtu": col("mtu"), "speed_bps": speed,
                    "admin_status": _STATUS.get(col("admin") or 0),
                    "oper_status": _STATUS.get(col("oper") or 0),
                    "alias": _text(col("alias") or b""), "mac": _mac(col("mac") or b"")}
        attrs.update({k: v for k, v in optional.items() if v not in (None, "")})
        found.setdefault(name, attrs)  # a duplicate name keeps its first (lowest) index
    return found


def lldp_links(edit: GraphEdit, agent: AgentData) -> None:
    """Add the agent's LLDP neighbours (devices and ports) and links to them."""
    device = agent.target.device
    ports = [edit.node(r.target) for r in edit.relations_of(node_id(DEVICE, device))
             if r.kind == HAS_INTERFACE]
    by_index = {n.attrs.get("index"): n for n in ports if n is not None}
    by_name = {n.attrs.get("descr") or n.name: n for n in by_index.values()}
    by_name.update({n.name: n for n in by_index.values()})
    remote: dict[tuple[int, int], dict[int, Any]] = {}
    for index, value in agent.lldp_remote.items():
        if len(index) >= 4:  # column, timeMark, localPortNum, remIndex
            remote.setdefault((index[2], index[3]), {})[index[0]] = value
    for (port_num, _), cols in sorted(remote.items()):
        local = by_index.get(port_num) or next(
            (by_name[n] for n in _local_port_names(agent, port_num) if n in by_name), None)
        peer = _text(cols.get(9) or b"") or _id_text(cols.get(5), cols.get(4), "chassis")
        port = _id_text(cols.get(7), cols.get(6), "port") or _text(cols.get(8) or b"")
        if local is None or not peer or not port:
            continue
        peer_id = node_id(DEVICE, peer)
        if peer_id not in edit:
            edit.add(DEVICE, peer, attrs={"discovered_by": "lldp"})
        peer_port = node_id(INTERFACE, peer, port)
        if peer_port not in edit:
            edit.add(INTERFACE, peer, port, attrs={"discovered_by": "lldp"})
            edit.relate(peer_id, HAS_INTERFACE, peer_port)
        edit.relate(local.id, LINKS_TO, peer_port, {"protocol": "lldp"})
        edit.relate(peer_port, LINKS_TO, local.id, {"protocol": "lldp"})


def _local_port_names(agent: AgentData, port_num: int) -> list[str]:
    """What LLDP calls a local port (lldpLocPortId, lldpLocPortDesc), to find it in IF-MIB."""
    local = agent.lldp_local
    names = [_id_text(local.get((3, port_num)), local.get((2, port_num)), "port"),
             _text(local.get((4, port_num)) or b"")]
    return [name for name in names if name]


def _id_text(value: Any, subtype: Any, which: str) -> str:
    if value is None:
        return ""
    if subtype == _MAC_SUBTYPE[which] and isinstance(value, bytes):
        return _mac(value)
    return _text(value)


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace").strip("\x00").strip()
    return str(value)


def _mac(value: bytes) -> str:
    return ":".join(f"{b:02x}" for b in value) if len(value) == 6 else ""
