"""The inventory file (a testbed, in genie's words): devices to watch and how to reach them.

A pure parser: :func:`parse_testbed` takes the YAML text and returns :class:`Device`
values; errors name the file and line. The runtime reads the file (``inventory.file``)::

    credentials:                     # named sets, used by connections; references only
      lab-snmp: {community: env:WK_SNMP_COMMUNITY}
      lab-ssh: {username: admin, key: file:/etc/watchkeeper/id_ed25519}
    defaults:                        # merged under every device (lists are joined)
      groups: [lab]
      connections: {snmp: {port: 161}}
    devices:
      core1:                         # a mapping by name (or a list of entries with `name`)
        address: 192.0.2.1           # or addresses: [192.0.2.1, "2001:db8::1"]
        tags: [core]
        groups: [site-a]
        interval: 60                 # this device, every collector
        intervals: {if-traffic: 300} # this device, one collector (by its name)
        connections:
          snmp: {credentials: lab-snmp, version: 2c}
          ssh: {credentials: lab-ssh, port: 2222}

Secrets (``password``, ``community``, ``auth_key``, ``priv_key``, ``key``, ...) must be
references, ``env:VAR`` or ``file:/path``, resolved only when a poll needs them: a plain
value is refused with its file and line. The file may also carry the live inventory's
static model (``sites``, ``links``, ``services``; ``site``, ``role``, ``upstream``,
``interfaces``, ``attrs`` on devices): those keys are accepted and ignored here.
The model's Device has one ``address``: with
``addresses`` the first is polled and the full list is kept in
``connections["inventory"]["addresses"]``; per-collector intervals go to
``connections["intervals"]``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec

from watchkeeper.collect.abc import INTERVALS_KEY
from watchkeeper.collect.credentials import SECRET_KEYS, is_reference
from watchkeeper.errors import ConfigError
from watchkeeper.model import Device
from watchkeeper.settings import read_yaml

INVENTORY_KEY = "inventory"
"""``device.connections["inventory"]``: what the file says that Device has no field for."""


class _Entry(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    name: str | None = None
    address: str | None = None
    addresses: list[str] = msgspec.field(default_factory=list)
    tags: list[str] = msgspec.field(default_factory=list)
    groups: list[str] = msgspec.field(default_factory=list)
    interval: float | None = None
    intervals: dict[str, float] = msgspec.field(default_factory=dict)
    connections: dict[str, dict[str, Any]] = msgspec.field(default_factory=dict)
    # The live inventory's static model reads the same file: its topology keys are
    # accepted here and left to it.
    site: Any = None
    role: Any = None
    upstream: Any = None
    interfaces: Any = None
    attrs: Any = None


class _File(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    credentials: dict[str, dict[str, str]] = msgspec.field(default_factory=dict)
    defaults: _Entry = msgspec.field(default_factory=_Entry)
    devices: dict[str, dict[str, Any]] | list[dict[str, Any]] = msgspec.field(
        default_factory=list)
    sites: Any = None  # the static model's, like links and services: not devices
    links: Any = None
    services: Any = None


class _Lines:
    """Line numbers of every path in the file, for errors."""

    def __init__(self, source: str | None, lines: Mapping[str, int]) -> None:
        self.source = source
        self.lines = lines

    def error(self, path: str, message: str, value: object = None) -> ConfigError:
        probe = path
        while probe and probe not in self.lines:
            cut = max(probe.rfind("."), probe.rfind("["))
            probe = probe[:cut] if cut > 0 else ""
        return ConfigError(message, file=self.source, line=self.lines.get(probe), key=path,
                           value=value)


def parse_testbed(text: str, *, source: str | None = None) -> list[Device]:
    """The devices of an inventory file; :class:`ConfigError` with file:line on mistakes."""
    raw, lines = _load(text, source)
    where = _Lines(source, lines)
    try:
        testbed = msgspec.convert(raw, _File, str_keys=True)
    except msgspec.ValidationError as exc:
        raise where.error(*_split(exc, "")) from None
    for name, fields in testbed.credentials.items():
        _check_secrets(fields, f"credentials.{name}", where)
    entries = testbed.devices.items() if isinstance(testbed.devices, dict) else \
        ((None, entry) for entry in testbed.devices)
    devices: list[Device] = []
    seen: set[str] = set()
    for index, (key, body) in enumerate(entries):
        path = f"devices.{key}" if key is not None else f"devices[{index}]"
        device = _device(key, body or {}, path, testbed, where)
        if device.name in seen:
            raise where.error(path, f"device {device.name!r} is declared twice")
        seen.add(device.name)
        devices.append(device)
    return devices


def _device(key: str | None, body: dict[str, Any], path: str, testbed: _File,
            where: _Lines) -> Device:
    try:
        entry = msgspec.convert(body, _Entry, str_keys=True)
    except msgspec.ValidationError as exc:
        raise where.error(*_split(exc, path)) from None
    name = entry.name or key
    if not name:
        raise where.error(path, "a device needs a name")
    defaults = testbed.defaults
    addresses = entry.addresses or ([entry.address] if entry.address else []) or \
        defaults.addresses or ([defaults.address] if defaults.address else [])
    connections: dict[str, dict[str, Any]] = {}
    for protocol in {**defaults.connections, **entry.connections}:
        merged = {**defaults.connections.get(protocol, {}), **entry.connections.get(protocol, {})}
        connections[protocol] = _resolve_named(merged, f"{path}.connections.{protocol}",
                                               testbed, where)
    intervals = {**defaults.intervals, **entry.intervals}
    for collector, seconds in intervals.items():
        if seconds <= 0:
            raise where.error(f"{path}.intervals.{collector}", "must be positive", seconds)
    if intervals:
        connections[INTERVALS_KEY] = intervals
    if len(addresses) > 1:
        connections[INVENTORY_KEY] = {"addresses": list(addresses)}
    interval = entry.interval if entry.interval is not None else defaults.interval
    if interval is not None and interval <= 0:
        raise where.error(f"{path}.interval", "must be positive", interval)
    return Device(
        name=name, address=addresses[0] if addresses else "",
        tags=tuple(dict.fromkeys([*defaults.tags, *entry.tags])),
        groups=tuple(dict.fromkeys([*defaults.groups, *entry.groups])),
        interval=interval, connections=connections,
    )


def _split(exc: msgspec.ValidationError, base: str) -> tuple[str, str]:
    """(path, message) of a validation error, the path pointing at an unknown key itself."""
    message, _, sub = str(exc).partition(" - at `$")
    path = f"{base}{sub.rstrip('`')}".lstrip(".")
    if message.startswith("Object contains unknown field `"):
        path = f"{path}.{message.split('`')[1]}".lstrip(".")
        message = "unknown field"
    return path, message


def _resolve_named(connection: dict[str, Any], path: str, testbed: _File,
                   where: _Lines) -> dict[str, Any]:
    """Merge the named ``credentials`` set in (the connection's own keys win); check secrets."""
    named = connection.pop("credentials", None)
    if named is not None:
        if not isinstance(named, str) or named not in testbed.credentials:
            known = ", ".join(testbed.credentials) or "none"
            raise where.error(f"{path}.credentials", f"no credentials named {named!r} "
                                                     f"(known: {known})", named)
        connection = {**testbed.credentials[named], **connection}
    _check_secrets(connection, path, where)
    return connection


def _check_secrets(fields: Mapping[str, Any], path: str, where: _Lines) -> None:
    for key, value in fields.items():
        if key in SECRET_KEYS and value and not (isinstance(value, str) and is_reference(value)):
            # Never echo the value: it is the secret.
            raise where.error(f"{path}.{key}", "secrets must be references: env:VAR or "
                                               "file:/path")


def _load(text: str, source: str | None) -> tuple[Any, dict[str, int]]:
    data, lines = read_yaml(text, source)
    if data is None:
        return {}, {}
    if not isinstance(data, dict):
        raise ConfigError("the top level must be a mapping with `devices`", file=source, line=1)
    return data, lines
