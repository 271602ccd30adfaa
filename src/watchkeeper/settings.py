"""One typed settings tree, and the pure function that builds it from its sources.

Precedence, lowest to highest: defaults < YAML file < ``WATCHKEEPER_*`` environment
variables < command-line flags. Nested keys use ``__`` in the environment
(``WATCHKEEPER_SERVER__LISTEN=0.0.0.0:8080``) and dots in overrides
(``{"server.listen": "0.0.0.0:8080"}``). The client's variables (:data:`CLIENT_ENV`:
``WATCHKEEPER_SERVER``, ``WATCHKEEPER_TOKEN``, ...) are never settings, so exporting
them cannot stop a server: ``server`` is a section, which the environment sets only key by
key, and no setting may be named ``token``, ``config`` or ``url``.

This module reads nothing itself: the runtime hands it the file's text, the
environment and the flags, so it is tested from strings.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, Any

import msgspec
import yaml

from watchkeeper.errors import ConfigError

ENV_PREFIX = "WATCHKEEPER_"
# Variables of the command line and the tests, not settings (see the module docstring).
# WATCHKEEPER_URL was the client's name for the server before WATCHKEEPER_SERVER.
CLIENT_ENV = frozenset({"WATCHKEEPER_CONFIG", "WATCHKEEPER_SERVER", "WATCHKEEPER_TOKEN",
                        "WATCHKEEPER_URL"})
TEST_ENV_PREFIX = "WATCHKEEPER_TEST_"


class _Section(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Base of every settings section: immutable, keyword-only, unknown keys refused."""


class PromqlSettings(_Section, frozen=True):
    """What one PromQL query may cost (docs/promql.md); over it, Prometheus' errors."""

    max_series: Annotated[int, msgspec.Meta(gt=0)] = 100_000
    max_samples: Annotated[int, msgspec.Meta(gt=0)] = 50_000_000
    timeout: Annotated[float, msgspec.Meta(gt=0)] = 120.0


class ServerSettings(_Section, frozen=True):
    listen: str = "127.0.0.1:8080"
    public_reads: bool = True
    max_body_bytes: int = 64 * 1024 * 1024
    promql: PromqlSettings = msgspec.field(default_factory=PromqlSettings)


class ArchiveSettings(_Section, frozen=True):
    backend: str = "embedded"
    options: dict[str, Any] = msgspec.field(default_factory=dict)


class BusSettings(_Section, frozen=True):
    backend: str = "local"
    options: dict[str, Any] = msgspec.field(default_factory=dict)


class DeviceSettings(_Section, frozen=True):
    name: str
    address: str = ""
    tags: list[str] = msgspec.field(default_factory=list)
    groups: list[str] = msgspec.field(default_factory=list)
    interval: float | None = None
    connections: dict[str, dict[str, Any]] = msgspec.field(default_factory=dict)


def _default_devices() -> list[DeviceSettings]:
    return [DeviceSettings(name="localhost", address="127.0.0.1", tags=["self"])]


class InventorySettings(_Section, frozen=True):
    devices: list[DeviceSettings] = msgspec.field(default_factory=_default_devices)
    # The static model's YAML file (sites, devices, interfaces, links, services).
    file: str | None = None
    # Model collectors by name, each with its raw options (validated against the plugin's
    # Options at start-up); `plugin:` picks the plugin when the name is not one.
    collectors: dict[str, dict[str, Any]] = msgspec.field(default_factory=dict)
    # Notifications from RabbitMQ (the scaled deployment): JSON notifications (an object or
    # an array per message) read from `notifications_queue` at `notifications_url`
    # (amqp://...); none when the URL is unset.
    notifications_url: str | None = None
    notifications_queue: str = "watchkeeper.inventory"
    # Versions of each model kept for diffs, and notifications buffered during one build
    # (past that the build is dropped, the notifications kept); both at least 1.
    history: int = 64
    replay_limit: int = 100_000


class CollectorSettings(_Section, frozen=True):
    """One configured collector: a plugin, its options, which devices and how often."""

    name: str
    plugin: str
    interval: float = 30.0
    timeout: float = 10.0
    devices: list[str] = msgspec.field(default_factory=lambda: ["*"])
    options: dict[str, Any] = msgspec.field(default_factory=dict)


class EngineSettings(_Section, frozen=True):
    """One engine of the chain: a plugin, or Canopsis-style task references."""

    name: str
    engine: str | None = None
    event_processing: str | None = None
    beat_processing: str | None = None
    beat_interval: float | None = None
    next: list[str] = msgspec.field(default_factory=list)
    workers: int = 1
    partitions: int | None = None  # stateful engines: entity partitions (default: workers)
    attempts: int = 3  # tries per event before it is dead-lettered
    options: dict[str, Any] = msgspec.field(default_factory=dict)


def _default_engines() -> list[EngineSettings]:
    # Both are roots: every event reaches the archive writer and the alarms engine.
    return [EngineSettings(name="archive", engine="archive_writer"),
            EngineSettings(name="alarms", engine="alarms", options={"store": "sqlite"})]


class SchedulerSettings(_Section, frozen=True):
    max_concurrency: int = 512
    per_device_concurrency: int = 1
    jitter: float = 0.0


class CollectSettings(_Section, frozen=True):
    """Remote collectors: what a server tells them, and how a collector daemon spools."""

    refresh: float = 60.0  # server: seconds between a remote collector's config fetches
    spool_max: int = 100_000  # collector: results kept on disk while the server is away
    batch_size: int = 500  # collector: results per POST
    flush_interval: float = 1.0  # collector: seconds between deliveries


class EsmondSettings(_Section, frozen=True):
    """The esmond-compatible archive API (``/esmond/perfsonar/archive/``) and API tokens."""

    enabled: bool = True
    store: str = "embedded"  # metadata and tokens: "embedded" (SQLite in data_dir) or "postgres"
    dsn: str = ""  # PostgreSQL connection string, when store is "postgres"


class GraphiteSettings(_Section, frozen=True):
    """The Graphite plaintext listener (docs/ecosystem.md): off unless ``listen`` is set."""

    listen: str = ""  # host:port, e.g. "127.0.0.1:2003"
    templates: list[str] = msgspec.field(default_factory=list)  # "[filter] template [k=v,...]"


class Settings(_Section, frozen=True):
    """The whole configuration. ``collectors: None`` means "watch this machine" defaults."""

    data_dir: str = "var"
    log_level: str = "info"
    server: ServerSettings = msgspec.field(default_factory=ServerSettings)
    archive: ArchiveSettings = msgspec.field(default_factory=ArchiveSettings)
    bus: BusSettings = msgspec.field(default_factory=BusSettings)
    inventory: InventorySettings = msgspec.field(default_factory=InventorySettings)
    scheduler: SchedulerSettings = msgspec.field(default_factory=SchedulerSettings)
    collectors: list[CollectorSettings] | None = None
    collect: CollectSettings = msgspec.field(default_factory=CollectSettings)
    engines: list[EngineSettings] = msgspec.field(default_factory=_default_engines)
    esmond: EsmondSettings = msgspec.field(default_factory=EsmondSettings)
    graphite: GraphiteSettings = msgspec.field(default_factory=GraphiteSettings)


class Locator:
    """Maps a settings path such as ``collectors[0].interval`` to where it was set."""

    def __init__(self, file: str | None, lines: Mapping[str, int], origins: Mapping[str, str]):
        self.file = file
        self._lines = dict(lines)
        self._origins = dict(origins)

    def error(self, path: str, message: str, value: object = None) -> ConfigError:
        """A :class:`ConfigError` naming the file and line (or env var / flag) of ``path``."""
        probe = path
        while probe:
            if probe in self._origins:
                return ConfigError(message, file=self._origins[probe], key=path, value=value)
            if probe in self._lines:
                return ConfigError(message, file=self.file, line=self._lines[probe], key=path,
                                   value=value)
            probe = _parent(probe)
        return ConfigError(message, file=self.file, key=path, value=value)


def _parent(path: str) -> str:
    cut = max(path.rfind("."), path.rfind("["))
    return path[:cut] if cut > 0 else ""


def load_settings(
    text: str | None = None,
    *,
    source: str | None = None,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, object] | None = None,
) -> tuple[Settings, Locator]:
    """Build :class:`Settings` from YAML ``text``, ``env`` and CLI ``overrides``.

    Returns the settings and a :class:`Locator` so later checks (plugin options,
    engine chains) can point at the line that caused them.
    """
    raw: dict[str, Any] = {}
    lines: dict[str, int] = {}
    if text is not None and text.strip():
        raw, lines = _parse_yaml(text, source)
    origins: dict[str, str] = {}
    for name, text_value in sorted(settings_env(env or {}).items()):
        path = name[len(ENV_PREFIX):].lower().replace("__", ".")
        _assign(raw, path, _scalar(text_value))
        origins[path] = f"environment variable {name}"
    for path, value in (overrides or {}).items():
        if value is not None:
            _assign(raw, path, value)
            origins[path] = f"command-line option for {path}"
    locator = Locator(source, lines, origins)
    try:
        settings = msgspec.convert(raw, Settings, str_keys=True)
    except msgspec.ValidationError as exc:
        path, message = _split_validation_error(str(exc))
        raise locator.error(path, message, _lookup(raw, path)) from None
    try:
        parse_listen(settings.server.listen)
    except ConfigError:
        raise locator.error("server.listen", "expected HOST:PORT (e.g. 127.0.0.1:8080)",
                            settings.server.listen) from None
    return settings, locator


def settings_env(env: Mapping[str, str]) -> dict[str, str]:
    """The variables of ``env`` that are settings: ``WATCHKEEPER_*`` but not the client's
    (:data:`CLIENT_ENV`) nor the tests' (``WATCHKEEPER_TEST_*``)."""
    return {name: value for name, value in env.items()
            if name.startswith(ENV_PREFIX) and name not in CLIENT_ENV
            and not name.startswith(TEST_ENV_PREFIX)}


def read_yaml(text: str, source: str | None) -> tuple[Any, dict[str, int]]:
    """Parse YAML and note the line of every key and list item (``a.b[2].c`` → line).

    Errors are :class:`ConfigError` naming the file and line; an empty document is ``None``.
    """
    try:
        loader = yaml.SafeLoader(text)
        try:
            node = loader.get_single_node()
            data = loader.construct_document(node) if node is not None else None
        finally:
            loader.dispose()
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"invalid YAML: {problem}", file=source, line=line) from None
    lines: dict[str, int] = {}
    if node is not None:
        _record_lines(node, "", lines)
    return data, lines


def _parse_yaml(text: str, source: str | None) -> tuple[dict[str, Any], dict[str, int]]:
    data, lines = read_yaml(text, source)
    if data is None:
        return {}, {}
    if not isinstance(data, dict):
        raise ConfigError("the top level must be a mapping of sections", file=source, line=1)
    return data, lines


def _record_lines(node: yaml.Node, path: str, lines: dict[str, int]) -> None:
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            child = f"{path}.{key_node.value}" if path else str(key_node.value)
            lines[child] = key_node.start_mark.line + 1
            _record_lines(value_node, child, lines)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            child = f"{path}[{index}]"
            lines[child] = item.start_mark.line + 1
            _record_lines(item, child, lines)


def _scalar(text: str) -> object:
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def _assign(raw: dict[str, Any], path: str, value: object) -> None:
    parts = path.split(".")
    node = raw
    for part in parts[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            child = {}
            node[part] = child
        node = child
    node[parts[-1]] = value


_ERROR_PATH = re.compile(r"^(?P<msg>.*?)(?: - at `\$(?P<path>[^`]*)`)?$", re.DOTALL)


def _split_validation_error(text: str) -> tuple[str, str]:
    match = _ERROR_PATH.match(text)
    assert match is not None  # the pattern matches any string
    path = (match.group("path") or "").lstrip(".")
    message = match.group("msg")
    unknown = re.match(r"Object contains unknown field `(.+)`", message)
    if unknown:
        field = unknown.group(1)
        path = f"{path}.{field}" if path else field
        message = "unknown setting"
    return path, message


def _lookup(raw: object, path: str) -> object:
    node: object = raw
    for part in re.findall(r"[^.\[\]]+|\[\d+\]", path):
        if part.startswith("[") and isinstance(node, list):
            index = int(part[1:-1])
            node = node[index] if index < len(node) else None
        elif isinstance(node, dict):
            node = node.get(part)
        else:
            return None
    return node


def parse_listen(listen: str) -> tuple[str, int]:
    """Split ``HOST:PORT`` (``[v6]:PORT`` too); raise ConfigError naming the value."""
    host, sep, port = listen.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ConfigError("expected HOST:PORT", key="server.listen", value=listen)
    return host.strip("[]") or "127.0.0.1", int(port)


def parse_duration(text: str | float) -> float:
    """Seconds from ``30``, ``30s``, ``5m``, ``2h`` or ``1d``."""
    if isinstance(text, (int, float)):
        return float(text)
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*", text)
    if not match:
        raise ConfigError("expected a duration such as 30s, 5m, 2h or 1d", value=text)
    scale = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}[match.group(2)]
    return float(match.group(1)) * scale
