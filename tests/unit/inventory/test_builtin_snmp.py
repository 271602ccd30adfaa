"""The snmp model collector's tables-to-graph part: IF-MIB interfaces and LLDP neighbours."""

from __future__ import annotations

import asyncio
from typing import Any

import msgspec
import pytest

from tests.unit.inventory.fakes import until
from watchkeeper.clock import FakeClock
from watchkeeper.inventory import Graph, InventoryManager, Notification
from watchkeeper.inventory.builtin._snmpwalk import Oid, SnmpTarget
from watchkeeper.inventory.builtin.snmp import (
    AgentData,
    SnmpModelCollector,
    SnmpOptions,
    agent_graph,
    interfaces,
    lldp_links,
)
from watchkeeper.inventory.graph import HAS_INTERFACE, LINKS_TO

MAC = bytes.fromhex("020000000001")


def if_columns(rows: dict[int, dict[str, Any]]) -> dict[str, dict[Oid, Any]]:
    columns: dict[str, dict[Oid, Any]] = {}
    for index, values in rows.items():
        for column, value in values.items():
            columns.setdefault(column, {})[(index,)] = value
    return columns


def lldp_remote(rows: list[tuple[int, int, dict[int, Any]]]) -> dict[Oid, Any]:
    """(local port num, remote index, {column: value}) -> lldpRemTable by index."""
    table: dict[Oid, Any] = {}
    for port, index, values in rows:
        for column, value in values.items():
            table[(column, 0, port, index)] = value
    return table


SW1 = AgentData(
    target=SnmpTarget(device="sw1", address="10.0.0.1"),
    system={(1, 0): b"Switch OS 1.0", (5, 0): b"sw1.example", (2, 0): "1.3.6.1.4.1.9"},
    interfaces=if_columns({
        1: {"descr": b"GigabitEthernet0/1", "name": b"Gi0/1", "type": 6, "mtu": 1500,
            "speed": 1_000_000_000, "high_speed": 1000, "mac": MAC, "admin": 1, "oper": 1,
            "alias": b"to core"},
        2: {"descr": b"GigabitEthernet0/2", "type": 6, "admin": 2, "oper": 2},
        3: {"descr": b"", "name": b""},  # nameless: skipped
    }),
    lldp_local={(3, 1): b"Gi0/1", (2, 1): 5, (3, 7): bytes.fromhex("020000000002"), (2, 7): 3,
                (4, 7): b"GigabitEthernet0/2"},
    lldp_remote=lldp_remote([
        (1, 1, {4: 4, 5: bytes.fromhex("0a0b0c0d0e0f"), 6: 5, 7: b"xe-0/0/0", 9: b"core1"}),
        (7, 2, {4: 4, 5: bytes.fromhex("aabbccddeeff"), 6: 3,
                7: bytes.fromhex("aabbccddee01")}),  # no sysName: named by chassis MAC
        (9, 3, {9: b"ghost", 7: b"x"}),  # a local port we cannot place: skipped
    ]),
)


def test_interfaces_from_if_mib() -> None:
    found = interfaces(SW1.interfaces)
    assert list(found) == ["Gi0/1", "GigabitEthernet0/2"]
    assert found["Gi0/1"] == {
        "index": 1, "descr": "GigabitEthernet0/1", "type": 6, "mtu": 1500,
        "speed_bps": 1_000_000_000, "admin_status": "up", "oper_status": "up",
        "alias": "to core", "mac": "02:00:00:00:00:01"}
    assert found["GigabitEthernet0/2"] == {
        "index": 2, "descr": "GigabitEthernet0/2", "type": 6, "admin_status": "down",
        "oper_status": "down"}


def test_agent_and_lldp_neighbours() -> None:
    edit = Graph().edit()
    agent_graph(edit, SW1)
    lldp_links(edit, SW1)
    graph = edit.commit()
    sw1 = graph.node("device/sw1")
    assert sw1 is not None
    assert sw1.attrs == {"address": "10.0.0.1", "sys_descr": "Switch OS 1.0",
                         "sys_name": "sw1.example", "sys_object_id": "1.3.6.1.4.1.9"}
    assert [n.name for n in graph.neighbours("interface/sw1/Gi0%2F1", LINKS_TO)] == ["xe-0/0/0"]
    core = graph.node("device/core1")
    assert core is not None
    assert core.attrs == {"discovered_by": "lldp"}
    assert [n.name for n in graph.neighbours(core.id, HAS_INTERFACE)] == ["xe-0/0/0"]
    # Port 7 is not an ifIndex: placed by lldpLocPortDesc; peer and port named by MAC.
    peer = graph.neighbours("interface/sw1/GigabitEthernet0%2F2", LINKS_TO)
    assert [(n.id, n.name) for n in peer] == [
        ("interface/aa%3Abb%3Acc%3Add%3Aee%3Aff/aa%3Abb%3Acc%3Add%3Aee%3A01", "aa:bb:cc:dd:ee:01")]
    assert graph.node("device/ghost") is None
    relation = graph.relation("interface/sw1/Gi0%2F1", LINKS_TO, "interface/core1/xe-0%2F0%2F0")
    assert relation is not None
    assert relation.attrs == {"protocol": "lldp"}


def test_an_agent_seen_first_as_a_neighbour_keeps_its_own_view() -> None:
    core = AgentData(target=SnmpTarget(device="core1", address="10.0.0.9"),
                     interfaces=if_columns({5: {"descr": b"xe-0/0/0"}}))
    edit = Graph().edit()
    agent_graph(edit, SW1)
    lldp_links(edit, SW1)
    agent_graph(edit, core)
    graph = edit.commit()
    node = graph.node("device/core1")
    assert node is not None
    assert node.attrs == {"address": "10.0.0.9"}
    assert [n.attrs.get("index") for n in graph.neighbours(node.id, HAS_INTERFACE)] == [5]


def test_options() -> None:
    options = msgspec.convert({"targets": [{"device": "a", "address": "h", "version": "3",
                                            "user": "u"}]}, SnmpOptions)
    assert options.targets[0].port == 161
    with pytest.raises(msgspec.ValidationError, match="same device"):
        msgspec.convert({"targets": [{"device": "a", "address": "h"},
                                     {"device": "a", "address": "i"}]}, SnmpOptions)
    with pytest.raises(msgspec.ValidationError, match=r"Invalid enum value '1' - at"):
        msgspec.convert({"targets": [{"device": "a", "address": "h", "version": "1"}]},
                        SnmpOptions)


# ------------------------------------------------------------- notifications between builds


class TableSnmp(SnmpModelCollector):
    """The snmp collector over walked tables instead of agents; walks may wait on ``gate``."""

    def __init__(self, *agents: AgentData, lldp: bool = True) -> None:
        super().__init__(SnmpOptions(targets=tuple(a.target for a in agents), lldp=lldp),
                         name="lab-snmp")
        self.agents = {a.target.device: a for a in agents}
        self.gate: asyncio.Event | None = None
        self.walking = asyncio.Event()

    async def _walk(self, target: SnmpTarget) -> AgentData:
        self.walking.set()
        if self.gate is not None:
            await self.gate.wait()
        return self.agents[target.device]


async def built(*agents: AgentData) -> tuple[InventoryManager, TableSnmp]:
    collector = TableSnmp(*agents)
    manager = InventoryManager([collector], clock=FakeClock(1000.0))
    assert await manager.get("lab-snmp").rebuild()
    return manager, collector


def note(event_type: str, publisher: str = "snmp-trap.sw1", timestamp: float | None = None,
         **payload: Any) -> Notification:
    return Notification(publisher_id=publisher, event_type=event_type, payload=payload,
                        timestamp=timestamp)


def graph_of(manager: InventoryManager) -> Graph:
    return manager.get("lab-snmp").latest().graph


def attrs_of(manager: InventoryManager, node: str) -> dict[str, Any]:
    found = graph_of(manager).node(node)
    assert found is not None, node
    return dict(found.attrs)


GI1 = "interface/sw1/Gi0%2F1"
GI2 = "interface/sw1/GigabitEthernet0%2F2"


@pytest.mark.parametrize(("event_type", "payload", "status"), [
    ("linkDown", {"device": "sw1", "ifIndex": "1"}, "down"),
    ("IF-MIB::linkDown", {"device": "sw1", "ifindex": 1, "ifOperStatus": 7},
     "lowerLayerDown"),
    (".1.3.6.1.6.3.1.1.5.3", {"device": "sw1", "ifName": "Gi0/1"}, "down"),
    ("interface.down", {"component": "sw1", "resource": "Gi0/1", "state": 2}, "down"),
    ("interface.down", {"device": "sw1", "ifname": "GigabitEthernet0/1"}, "down"),  # descr
])
async def test_link_down_in_every_accepted_shape(event_type: str, payload: dict[str, Any],
                                                 status: str) -> None:
    manager, _ = await built(SW1)
    before = graph_of(manager).version
    assert manager.deliver(note(event_type, **payload)) == 1
    assert attrs_of(manager, GI1)["oper_status"] == status
    version = graph_of(manager).version
    assert version == before + 1
    assert manager.deliver(note(event_type, **payload)) == 1  # replayed: nothing changes
    assert graph_of(manager).version == version


async def test_link_up_sets_admin_status_too_and_pipeline_publishers_pass() -> None:
    manager, _ = await built(SW1)
    up = note("interface.up", publisher="pipeline.to-inventory", component="sw1",
              resource="GigabitEthernet0/2", admin_status="up")
    assert manager.deliver(up) == 1
    assert attrs_of(manager, GI2)["oper_status"] == "up"
    assert attrs_of(manager, GI2)["admin_status"] == "up"
    assert manager.deliver(note("linkUp", device="sw1", ifIndex=2, ifAdminStatus=2)) == 1
    assert attrs_of(manager, GI2)["admin_status"] == "down"


async def test_notifications_for_other_models_or_publishers_change_nothing() -> None:
    manager, _ = await built(SW1)
    version = graph_of(manager).version
    assert manager.deliver(note("linkDown", device="elsewhere", ifIndex=1)) == 1
    assert manager.deliver(note("linkDown", device="sw1", ifIndex=99)) == 1
    assert manager.deliver(note("linkDown", publisher="cmdb.x", device="sw1", ifIndex=1)) == 0
    assert manager.deliver(note("interface.downs", device="sw1", ifIndex=1)) == 0
    assert graph_of(manager).version == version


@pytest.mark.parametrize(("payload", "field"), [
    ({"ifIndex": 1}, "'device' is missing (or 'component')"),
    ({"device": "sw1"}, "'ifname' is missing"),
    ({"device": "sw1", "ifIndex": "one"}, "'ifIndex' must be a whole number"),
    ({"device": "sw1", "ifIndex": 1, "ifOperStatus": 9}, "'ifOperStatus' must be an IF-MIB"),
    ({"device": ["sw1"], "ifIndex": 1}, "'device' must be text"),
])
async def test_bad_payloads_fail_naming_the_field(payload: dict[str, Any], field: str,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    manager, _ = await built(SW1)
    version = graph_of(manager).version
    assert manager.deliver(note("linkDown", **payload)) == 0
    assert graph_of(manager).version == version
    assert manager.get("lab-snmp").stats().notification_errors == 1
    assert f"payload field {field}" in caplog.text


async def test_snmp_checks_mark_a_silent_agent_and_clear_it() -> None:
    manager, _ = await built(SW1)
    version = graph_of(manager).version
    silent = note("check", publisher="pipeline.to-inventory", timestamp=1500.0,
                  component="sw1", resource="snmp", state=2, status="CRITICAL",
                  output="no SNMP answer from 10.0.0.1:161")
    assert manager.deliver(silent) == 1
    assert attrs_of(manager, "device/sw1")["unreachable"] == "no SNMP answer from 10.0.0.1:161"
    assert attrs_of(manager, "device/sw1")["unreachable_since"] == 1500.0
    later = msgspec.structs.replace(silent, timestamp=1800.0)
    assert manager.deliver(later) == 1
    assert attrs_of(manager, "device/sw1")["unreachable_since"] == 1500.0  # the first time
    assert graph_of(manager).version == version + 1
    other = note("check", publisher="pipeline.to-inventory", component="sw1",
                 resource="system", state=0, output="cpu 3.0%, memory 20.0%")
    assert manager.deliver(other) == 0  # not an snmp check: not routed
    answered = note("check", publisher="pipeline.to-inventory", component="sw1",
                    resource="snmp", state=1, output="10.0.0.1:161: 42 values; Gi0/2 is down")
    assert manager.deliver(answered) == 1
    assert "unreachable" not in attrs_of(manager, "device/sw1")
    assert graph_of(manager).version == version + 2
    assert manager.deliver(answered) == 1
    assert graph_of(manager).version == version + 2


async def test_lldp_neighbours_come_and_go() -> None:
    manager, _ = await built(SW1)
    added = note("lldp.neighbour.added", device="sw1", port="GigabitEthernet0/2",
                 remote_device="edge7", remote_port="eth1")
    assert manager.deliver(added) == 1
    graph = graph_of(manager)
    assert [n.id for n in graph.neighbours(GI2, LINKS_TO)] == [
        "interface/aa%3Abb%3Acc%3Add%3Aee%3Aff/aa%3Abb%3Acc%3Add%3Aee%3A01", "interface/edge7/eth1"]
    assert [n.id for n in graph.neighbours("interface/edge7/eth1", LINKS_TO)] == [GI2]
    assert attrs_of(manager, "device/edge7") == {"discovered_by": "lldp"}
    version = graph.version
    assert manager.deliver(added) == 1
    assert graph_of(manager).version == version
    removed = msgspec.structs.replace(added, event_type="lldp.neighbor.removed")
    assert manager.deliver(removed) == 1
    graph = graph_of(manager)
    assert graph.node("interface/edge7/eth1") is None  # LLDP was its only reason to be here
    assert graph.node("device/edge7") is None
    assert len(graph.neighbours(GI2, LINKS_TO)) == 1
    assert manager.deliver(removed) == 1
    assert graph_of(manager).version == version + 1
    # core1 came by LLDP and keeps its port while another link holds... until it goes too.
    gone = note("lldp.neighbour.removed", device="sw1", ifindex=1, remote_device="core1",
                remote_port="xe-0/0/0")
    assert manager.deliver(gone) == 1
    assert graph_of(manager).node("device/core1") is None
    assert manager.deliver(note("lldp.neighbour.added", device="sw1", port="Gi0/1",
                                remote_device="x")) == 0  # no remote_port: an error


async def test_a_link_change_during_a_rebuild_survives_it() -> None:
    """The build read the port as up; the trap saying it went down lands after the swap."""
    manager, collector = await built(SW1)
    live = manager.get("lab-snmp")
    collector.gate = asyncio.Event()
    collector.walking.clear()
    rebuild = asyncio.create_task(live.rebuild())
    await until(collector.walking.is_set)
    assert manager.deliver(note("linkDown", device="sw1", ifIndex=1)) == 1
    assert attrs_of(manager, GI1)["oper_status"] == "down"  # applied at once
    collector.gate.set()
    assert await rebuild
    assert attrs_of(manager, GI1)["oper_status"] == "down"  # and replayed onto the build
    assert not live.latest().stale


def test_publishers_option_is_a_regex() -> None:
    with pytest.raises(msgspec.ValidationError, match="`publishers` is not a valid regex"):
        msgspec.convert({"publishers": "("}, SnmpOptions)
    collector = SnmpModelCollector(SnmpOptions(lldp=False, publishers=r"traps\."), name="s")
    assert [e.publisher_id for e in collector.endpoints()] == [r"traps\."] * 3
