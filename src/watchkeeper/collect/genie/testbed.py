"""A pyATS testbed YAML as watchkeeper's inventory, read by pyATS' own loader.

With the ``pyats`` extra installed, ``inventory.file`` may be a pyATS testbed (recognised
by its top-level ``testbed:`` key, or devices that declare ``os`` or ``type``). It is loaded
with ``pyats.topology.loader.load`` (so ``extends:``, ``%ENV{}``, ``%ASK{}`` and the
credential rules are pyATS' own) and each pyATS device becomes a :class:`Device`:

============================  ============================================================
pyATS                         watchkeeper
============================  ============================================================
device name                   ``name``
``os`` / ``type`` / platform  tags ``os:linux``, ``type:router``, ``platform:n9k``
testbed name                  group
ssh connection ``ip``/``host``  ``address`` (else the first connection that has one)
ssh connection ``port``,      ``connections.ssh``: ``port``, ``username``,
credentials ``default``       ``key: file:PATH`` from ``ssh_options: -i PATH``,
                              ``password: env:VAR`` when the file says ``%ENV{VAR}``
(all of it)                   ``connections.pyats``: testbed file, device name, os, type
============================  ============================================================

A password written in the file as plain text (or ``%ENC{}``) is not copied: it stays in
pyATS' objects, which the genie plugins use; watchkeeper's own ssh collector needs a key or
an ``%ENV{VAR}`` password. pyATS is imported only when a testbed is loaded.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from watchkeeper.errors import ConfigError
from watchkeeper.model import Device

PYATS_KEY = "pyats"
"""``device.connections["pyats"]``: where the device's pyATS object comes from."""

_ENV = re.compile(r"^%ENV\{(\w+)\}$")
_PREFERRED = ("cli", "ssh", "a", "default")


def looks_like_pyats(text: str) -> bool:
    """Whether an inventory file is a pyATS testbed rather than watchkeeper's own format."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError:
        return False  # the watchkeeper parser reports the error with its line
    if not isinstance(data, Mapping):
        return False
    if "testbed" in data:
        return True
    devices = data.get("devices")
    return isinstance(devices, Mapping) and any(
        isinstance(body, Mapping) and ("os" in body or "type" in body)
        for body in devices.values())


def load_testbed(path: str | Path) -> Any:
    """The pyATS ``Testbed`` of a file; :class:`ConfigError` naming the file if pyATS is
    missing or refuses it."""
    try:
        from pyats.topology import loader  # the optional extra
    except ImportError:
        raise ConfigError("a pyATS testbed needs the pyats extra: "
                          "pip install 'watchkeeper[pyats]'", file=str(path)) from None
    try:
        return loader.load(str(path))
    except Exception as exc:  # noqa: BLE001 - pyATS raises its schema and YAML errors as many types
        raise ConfigError(f"pyATS cannot load the testbed: {exc}", file=str(path)) from None


def read_pyats_inventory(path: str | Path) -> list[Device]:
    """The watchkeeper devices of a pyATS testbed file."""
    testbed = load_testbed(path)
    try:
        raw = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):  # pragma: no cover - pyATS just read it
        raw = None
    return devices_from_testbed(testbed, raw=raw if isinstance(raw, Mapping) else None)


def devices_from_testbed(testbed: Any, *, raw: Mapping[str, Any] | None = None) -> list[Device]:
    """Devices from a loaded pyATS testbed; ``raw`` (the file as plain YAML) lets a
    ``%ENV{VAR}`` password become the reference ``env:VAR``."""
    source = getattr(testbed, "testbed_file", None)
    origin = str(Path(source).resolve()) if isinstance(source, str) else None
    group = str(getattr(testbed, "name", "") or "")
    return [_device(name, pyats_device, origin, group, raw or {})
            for name, pyats_device in testbed.devices.items()]


def _device(name: str, device: Any, origin: str | None, group: str,
            raw: Mapping[str, Any]) -> Device:
    os_name = getattr(device, "os", None)
    kind = getattr(device, "type", None)
    platform = getattr(device, "platform", None)
    tags = [f"{label}:{value}" for label, value in
            (("os", os_name), ("type", kind), ("platform", platform)) if value]
    connections: dict[str, dict[str, Any]] = {PYATS_KEY: {
        "testbed": origin, "device": name, "os": os_name, "type": kind,
        "via": [v for v, c in _connections(device)],
    }}
    address = ""
    ssh = next(((v, c) for v, c in _connections(device)
                if str(c.get("protocol", "")).lower() == "ssh"), None)
    if ssh is not None:
        via, conn = ssh
        address = _address(conn)
        connections["ssh"] = _ssh(name, via, conn, device, raw)
    if not address:
        address = next((a for _, c in _connections(device) if (a := _address(c))), "")
    return Device(name=name, address=address, tags=tuple(tags),
                  groups=(group,) if group else (), connections=connections)


def _connections(device: Any) -> list[tuple[str, Mapping[str, Any]]]:
    found = [(str(via), conn) for via, conn in (getattr(device, "connections", {}) or {}).items()
             if isinstance(conn, Mapping) and via != "defaults"]
    return sorted(found, key=lambda vc: (_PREFERRED.index(vc[0]) if vc[0] in _PREFERRED
                                         else len(_PREFERRED), vc[0]))


def _address(conn: Mapping[str, Any]) -> str:
    value = conn.get("ip") or conn.get("host")
    return str(value) if value else ""


def _ssh(name: str, via: str, conn: Mapping[str, Any], device: Any,
         raw: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"port": int(conn.get("port") or 22)}
    credentials = conn.get("credentials") or getattr(device, "credentials", None) or {}
    default = credentials.get("default") if isinstance(credentials, Mapping) else None
    if isinstance(default, Mapping) and default.get("username"):
        out["username"] = str(default["username"])
    key = _identity_file(str(conn.get("ssh_options") or ""))
    if key:
        out["key"] = f"file:{key}"
    password = _env_password(raw, name, via)
    if password:
        out["password"] = password
    return out


def _identity_file(options: str) -> str | None:
    try:
        words = shlex.split(options)
    except ValueError:
        return None
    for index, word in enumerate(words):
        if word == "-i" and index + 1 < len(words):
            return words[index + 1]
        if word.startswith("-i") and len(word) > 2:
            return word[2:]
    return None


def _env_password(raw: Mapping[str, Any], name: str, via: str) -> str | None:
    """``env:VAR`` for the most specific ``%ENV{VAR}`` default password in the raw file."""
    device = _get(raw, "devices", name)
    for scope in (_get(device, "connections", via), device, _get(raw, "testbed")):
        value = _get(scope, "credentials", "default", "password")
        if isinstance(value, str):
            match = _ENV.match(value.strip())
            return f"env:{match.group(1)}" if match else None
    return None


def _get(data: Any, *keys: str) -> Any:
    for key in keys:
        if not isinstance(data, Mapping):
            return None
        data = data.get(key)
    return data
