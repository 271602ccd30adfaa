"""genie.telemetry's configuration YAML, read as it is, into watchkeeper collector settings.

::

    plugins:
      uname:                                  # the key: config name, result key, filter
        module: mypkg.plugins.uname           # required: where the Plugin class lives
        enabled: true                         # default true; disabled entries are dropped
        interval: 30                          # default 30 (seconds, really, here)
        devices: [box]                        # default []: every device
        plugin_arguments: {uname_expect: Linux}   # each becomes `--uname_expect Linux`
        anything_else: 1                      # passed to Plugin(**kwargs)
    connections:
      box: {via: cli, alias: monitor, timeout: 10}   # how device.connect() is called

Each enabled plugin becomes one :class:`CollectorSettings` running the genie adapter
(:class:`~watchkeeper.collect.genie.adapter.GeniePluginCollector`). Differences from
genie.telemetry, on purpose: the module is imported when the collectors are built, so an
import error names the module (genie says only "Invalid genietelemetry_config.yaml input");
a device in ``devices`` that the testbed lacks is refused rather than ignored; YAML values of
``plugin_arguments`` keep ``false`` as ``False`` text, as genie passes them (the plugin's
parser decides). ``extends:`` is not supported.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, Any

import msgspec

from watchkeeper.errors import ConfigError
from watchkeeper.settings import CollectorSettings, Locator, Settings, read_yaml

ADAPTER = "watchkeeper.collect.genie.adapter:GeniePluginCollector"
_RESERVED = ("module", "enabled", "interval", "devices", "plugin_arguments")


class PluginEntry(msgspec.Struct, frozen=True, kw_only=True):
    """One entry of ``plugins:``."""

    key: str
    module: str
    enabled: bool = True
    interval: float = 30.0
    devices: tuple[str, ...] = ()
    plugin_arguments: dict[str, Any] = msgspec.field(default_factory=dict)
    arguments: dict[str, Any] = msgspec.field(default_factory=dict)


class GenieConfig(msgspec.Struct, frozen=True, kw_only=True):
    """The whole file: its enabled plugins (sorted by key, as genie loads them) and the
    per-device ``connections``."""

    plugins: tuple[PluginEntry, ...] = ()
    connections: dict[str, dict[str, Any]] = msgspec.field(default_factory=dict)
    source: str | None = None


Configuration = str | Path | Mapping[str, Any] | IO[str]
"""What genie's ``Manager(configuration=...)`` accepts: a path, a dict or an open file."""


def read_genie_config(configuration: Configuration) -> GenieConfig:
    """Read a configuration given as genie accepts it (path, dict or file object)."""
    if isinstance(configuration, Mapping):
        return genie_config_from(configuration, source=None, lines={})
    source: str | None
    if isinstance(configuration, str | Path):
        source = str(configuration)
        try:
            text = Path(configuration).read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"cannot read the genie.telemetry configuration: "
                              f"{exc.strerror}", file=source) from None
    else:
        source = getattr(configuration, "name", None)
        text = configuration.read()
    return parse_genie_config(text, source=source)


def parse_genie_config(text: str, *, source: str | None = None) -> GenieConfig:
    """A pure parse of the YAML text; errors name the file, line and key."""
    data, lines = read_yaml(text, source)
    return genie_config_from(data if data is not None else {}, source=source, lines=lines)


def genie_config_from(data: Any, *, source: str | None,
                      lines: Mapping[str, int]) -> GenieConfig:
    where = Locator(source, lines, {})
    if not isinstance(data, Mapping):
        raise where.error("", "the top level must be a mapping with `plugins`")
    plugins = data.get("plugins") or {}
    if not isinstance(plugins, Mapping):
        raise where.error("plugins", "must be a mapping of plugin name to settings")
    entries = [_entry(str(key), body, where) for key, body in
               sorted(plugins.items(), key=lambda kv: str(kv[0]))]
    connections = data.get("connections") or {}
    if not isinstance(connections, Mapping) or not all(
            isinstance(v, Mapping) for v in connections.values()):
        raise where.error("connections", "must map device names to {via, alias, timeout}")
    return GenieConfig(plugins=tuple(e for e in entries if e.enabled),
                       connections={str(k): dict(v) for k, v in connections.items()},
                       source=source)


def _entry(key: str, body: Any, where: Locator) -> PluginEntry:
    path = f"plugins.{key}"
    if not isinstance(body, Mapping):
        raise where.error(path, "must be a mapping with at least `module`")
    module = body.get("module")
    if not isinstance(module, str) or not module:
        raise where.error(f"{path}.module", "required: the python module of the plugin",
                          module)
    devices = body.get("devices", [])
    if not isinstance(devices, list):
        raise where.error(f"{path}.devices", "must be a list of device names", devices)
    arguments = body.get("plugin_arguments", {}) or {}
    if not isinstance(arguments, Mapping):
        raise where.error(f"{path}.plugin_arguments", "must be a mapping of option to value")
    interval = body.get("interval", 30)
    if isinstance(interval, bool) or not isinstance(interval, int | float) or interval <= 0:
        raise where.error(f"{path}.interval", "must be a positive number of seconds", interval)
    return PluginEntry(
        key=key, module=module, enabled=bool(body.get("enabled", True)),
        interval=float(interval), devices=tuple(str(d) for d in devices),
        plugin_arguments={str(k): v for k, v in arguments.items()},
        arguments={str(k): v for k, v in body.items() if k not in _RESERVED},
    )


def collector_settings(config: GenieConfig, *, timeout: float = 300.0,
                       connection_timeout: float = 10.0, connect: bool = True,
                       argv: Sequence[str] = ()) -> list[CollectorSettings]:
    """One collector per enabled plugin, named by its key; ``argv`` is the command line the
    plugins' parsers also read (genie lets a real ``--option`` win over the YAML's);
    ``connect``: connect a device before its plugins run, as genie's timed daemon does (its
    plain Manager leaves that to ``setup()`` or the plugins)."""
    return [
        CollectorSettings(
            name=entry.key, plugin=ADAPTER, interval=entry.interval, timeout=timeout,
            devices=list(entry.devices) or ["*"],
            options={
                "module": entry.module, "arguments": entry.arguments,
                "plugin_arguments": entry.plugin_arguments, "argv": list(argv),
                "connections": config.connections, "connection_timeout": connection_timeout,
                "connect": connect,
            },
        )
        for entry in config.plugins
    ]


def with_genie_plugins(settings: Settings, configuration: Configuration) -> Settings:
    """``settings`` whose collectors also run this configuration's plugins (``watchkeeper
    collect --genietelemetry FILE``); a plugin key equal to a collector's name is refused."""
    config = read_genie_config(configuration)
    own = list(settings.collectors or [])
    taken = {spec.name for spec in own}
    for entry in config.plugins:
        if entry.key in taken:
            raise ConfigError("a genie plugin key is also a collector's name",
                              file=config.source, key=f"plugins.{entry.key}")
    return msgspec.structs.replace(settings, collectors=[*own, *collector_settings(config)])
