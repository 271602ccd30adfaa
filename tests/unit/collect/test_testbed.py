"""The inventory file: devices, defaults, named credentials, intervals, and mistakes by line."""

from __future__ import annotations

import pytest

from watchkeeper.collect.testbed import parse_testbed
from watchkeeper.errors import ConfigError
from watchkeeper.model import Device

TESTBED = """\
credentials:
  lab-snmp: {community: env:WK_COMMUNITY}
  lab-ssh: {username: admin, key: file:/etc/wk/id_ed25519}
defaults:
  groups: [lab]
  connections:
    snmp: {port: 161}
devices:
  core1:
    addresses: [192.0.2.1, "2001:db8::1"]
    tags: [core]
    groups: [site-a]
    interval: 60
    intervals: {if-traffic: 300}
    connections:
      snmp: {credentials: lab-snmp, port: 16161}
      ssh: {credentials: lab-ssh, username: root}
  edge1:
    address: 192.0.2.2
"""


def test_devices_defaults_and_named_credentials() -> None:
    core, edge = parse_testbed(TESTBED, source="lab.yaml")
    assert core == Device(
        name="core1", address="192.0.2.1", tags=("core",), groups=("lab", "site-a"),
        interval=60,
        connections={
            "snmp": {"community": "env:WK_COMMUNITY", "port": 16161},
            "ssh": {"username": "root", "key": "file:/etc/wk/id_ed25519"},
            "intervals": {"if-traffic": 300},
            "inventory": {"addresses": ["192.0.2.1", "2001:db8::1"]},
        },
    )
    assert edge == Device(name="edge1", address="192.0.2.2", groups=("lab",),
                          connections={"snmp": {"port": 161}})
    assert core.matches("group:site-a")
    assert edge.matches("group:lab")
    assert not edge.matches("tag:core")


def test_the_list_form_works_too() -> None:
    devices = parse_testbed("devices:\n  - {name: a, address: 10.0.0.1}\n  - name: b\n")
    assert [d.name for d in devices] == ["a", "b"]


def test_an_empty_file_has_no_devices() -> None:
    assert parse_testbed("") == []


@pytest.mark.parametrize(
    ("text", "line", "match"),
    [
        ("devices:\n  r1:\n    connections:\n      snmp: {community: public}\n", 4,
         "secrets must be references"),
        ("credentials:\n  c: {password: hunter2}\ndevices: []\n", 2, "secrets must be references"),
        ("devices:\n  r1:\n    connections:\n      ssh: {credentials: nope}\n", 4,
         "no credentials named 'nope'"),
        ("devices:\n  r1:\n    tagz: [x]\n", 3, "unknown field"),
        ("devices:\n  r1:\n    interval: -5\n", 3, "must be positive"),
        ("devices:\n  - {name: a}\n  - {name: a}\n", 3, "declared twice"),
        ("devices:\n  - {address: 10.0.0.1}\n", 2, "needs a name"),
        ("devices: [\n", 2, "invalid YAML"),
        ("- a\n", 1, "top level"),
    ],
)
def test_mistakes_name_file_and_line(text: str, line: int, match: str) -> None:
    with pytest.raises(ConfigError, match=match) as caught:
        parse_testbed(text, source="lab.yaml")
    assert (caught.value.file, caught.value.line) == ("lab.yaml", line)


def test_a_refused_secret_is_never_echoed() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_testbed("devices:\n  r1:\n    connections:\n      snmp: {community: s3cr3t}\n")
    assert "s3cr3t" not in str(caught.value)
    assert caught.value.value is None


def test_the_live_inventory_static_model_keys_are_accepted() -> None:
    """The same file feeds the live inventory: its topology keys are left to it."""
    text = """\
sites:
  - {name: par1, attrs: {city: Paris}}
devices:
  - name: core1
    address: 10.0.0.1
    site: par1
    role: core
    upstream: [edge1]
    interfaces: [xe-0/0/0, {name: xe-0/0/1, attrs: {speed: 10000}}]
    attrs: {rack: 4}
    connections: {snmp: {community: env:WK_COMMUNITY}}
  - {name: edge1, address: 10.0.0.2}
links:
  - {a: "core1:xe-0/0/0", b: "edge1:eth0"}
services:
  - {name: dns, device: edge1}
"""
    core, edge = parse_testbed(text)
    assert core == Device(name="core1", address="10.0.0.1",
                          connections={"snmp": {"community": "env:WK_COMMUNITY"}})
    assert edge.name == "edge1"
