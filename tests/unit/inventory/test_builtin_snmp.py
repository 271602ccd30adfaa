"""The snmp model collector's tables-to-graph part: IF-MIB interfaces and LLDP neighbours."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from watchkeeper.inventory import Graph
from watchkeeper.inventory.builtin._snmpwalk import Oid, SnmpTarget
from watchkeeper.inventory.builtin.snmp import (
    AgentData,
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
