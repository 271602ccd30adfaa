"""The composition root: settings become objects, or a ConfigError says where they are wrong."""

from __future__ import annotations

from pathlib import Path

import pytest

from watchkeeper.clock import FakeClock
from watchkeeper.errors import ConfigError
from watchkeeper.inventory import StaticInventory
from watchkeeper.pipeline import Services, register_task
from watchkeeper.pipeline.bus.local import LocalBus
from watchkeeper.pipeline.engine import Engine
from watchkeeper.runtime import read_settings
from watchkeeper.runtime.assemble import (
    build_archive,
    build_bus,
    build_engines,
    build_jobs,
    build_pipeline,
    devices_from,
    self_watch,
)
from watchkeeper.settings import load_settings
from watchkeeper.telemetry import SelfMetrics


@register_task("test_passthrough")
def passthrough(engine: Engine, event: object, **ctx: object) -> object:
    return event


def _jobs(text: str) -> list[object]:
    settings, locator = load_settings(text, source="wk.yaml")
    return list(build_jobs(settings, locator, StaticInventory(devices_from(settings))))


def test_default_settings_watch_this_machine() -> None:
    settings, locator = load_settings()
    jobs = build_jobs(settings, locator, StaticInventory(devices_from(settings)))
    assert sorted(j.spec.job_id for j in jobs) == ["api-http:localhost", "api-tcp:localhost",
                                                   "ping:localhost", "system:localhost"]
    by_name = {c.name: c for c in self_watch(settings)}
    assert by_name["api-tcp"].options == {"host": "127.0.0.1", "port": 8080}
    assert by_name["api-http"].options["url"] == "http://127.0.0.1:8080/api/v1/health"


def test_self_watch_on_a_wildcard_address_checks_loopback() -> None:
    settings, _ = load_settings(overrides={"server.listen": "0.0.0.0:9000"})
    by_name = {c.name: c for c in self_watch(settings)}
    assert by_name["api-tcp"].options == {"host": "127.0.0.1", "port": 9000}


CONFIG = """\
inventory:
  devices:
    - name: r1
      address: 10.0.0.1
      tags: [core]
    - name: r2
      address: 10.0.0.2
      interval: 5
collectors:
  - name: reach
    plugin: tcp
    interval: 60
    devices: ["*"]
    options:
      port: 22
"""


def test_jobs_per_device_with_device_interval_override() -> None:
    jobs = _jobs(CONFIG)
    assert [(j.spec.job_id, j.spec.intervals) for j in jobs] == [  # type: ignore[attr-defined]
        ("reach:r1", (60.0,)), ("reach:r2", (5.0,))]


@pytest.mark.parametrize(
    ("change", "line", "fragment"),
    [
        (("plugin: tcp", "plugin: nosuch"), 11, "collectors[0].plugin: plugin 'nosuch'"),
        (("port: 22", "port: ssh"), 15, "collectors[0].options.port: Expected `int`"),
        (("port: 22", "prot: 22"), 15, "collectors[0].options.prot: unknown option"),
        (("      port: 22\n", "      {}\n"), 14, "collectors[0].options.port: required option"),
        (('devices: ["*"]', "devices: [r9]"), 13, "collectors[0].devices: no device 'r9'"),
        (("interval: 60", "interval: 0"), 12, "collectors[0].interval: interval and timeout"),
    ],
)
def test_collector_config_errors_point_at_the_line(change: tuple[str, str], line: int,
                                                    fragment: str) -> None:
    with pytest.raises(ConfigError) as info:
        _jobs(CONFIG.replace(*change))
    assert f"wk.yaml:{line}: {fragment}" in str(info.value)


def test_duplicate_collector_names() -> None:
    text = CONFIG + "  - name: reach\n    plugin: system\n"
    with pytest.raises(ConfigError, match=r"wk.yaml:16: collectors\[1\].name: .*unique"):
        _jobs(text)


def _engines(text: str) -> list[Engine]:
    settings, locator = load_settings(text, source="wk.yaml")
    services = Services(clock=FakeClock(), metrics=SelfMetrics())
    engines = build_engines(settings, locator, services)
    build_pipeline(engines, LocalBus(), locator)
    return engines


def test_engines_from_config() -> None:
    engines = _engines("""\
engines:
  - name: pass
    event_processing: test_passthrough
    next: [archive]
    options: {threshold: 3}
  - name: archive
    engine: archive_writer
    options: {batch_size: 50}
""")
    assert [e.name for e in engines] == ["pass", "archive"]
    assert engines[0].ctx == {"threshold": 3}
    assert engines[1].options.batch_size == 50
    assert engines[1].beat_interval == 1.0


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("engines:\n  - name: a\n", "wk.yaml:2: engines[0]: an engine needs"),
        ("engines:\n  - name: a\n    event_processing: nope\n",
         "wk.yaml:3: engines[0].event_processing"),
        ("engines:\n  - name: a\n    beat_processing: nope\n", "engines[0].beat_processing"),
        ("engines:\n  - name: a\n    engine: nope\n", "wk.yaml:3: engines[0].engine"),
        ("engines:\n  - name: a\n    engine: archive_writer\n    workers: 0\n",
         "engines[0].workers: must be at least 1"),
        ("engines:\n  - name: a\n    engine: archive_writer\n    options: {size: 1}\n",
         "engines[0].options.size: unknown option"),
        ("engines:\n  - name: a\n    engine: archive_writer\n    next: [b]\n",
         "wk.yaml:1: engines: engine 'a': next engine 'b' is not defined"),
    ],
)
def test_engine_config_errors(text: str, fragment: str) -> None:
    with pytest.raises(ConfigError) as info:
        _engines(text)
    assert fragment in str(info.value)


def test_backends_are_plugins(tmp_path: Path) -> None:
    settings, locator = load_settings(f"data_dir: {tmp_path}\narchive:\n  backend: memory\n",
                                      source="wk.yaml")
    archive = build_archive(settings, locator, clock=FakeClock(), metrics=SelfMetrics())
    assert type(archive).__name__ == "MemoryArchive"
    assert isinstance(build_bus(settings, locator), LocalBus)
    bad, locator = load_settings("bus:\n  options: {nope: 1}\n", source="wk.yaml")
    with pytest.raises(ConfigError, match=r"wk\.yaml:2: bus\.options: invalid bus options"):
        build_bus(bad, locator)
    bad, locator = load_settings("archive:\n  backend: cassandra\n", source="wk.yaml")
    with pytest.raises(ConfigError, match=r"wk\.yaml:2: archive\.backend: plugin 'cassandra'"):
        build_archive(bad, locator, clock=FakeClock(), metrics=SelfMetrics())


def test_read_settings_from_file_and_env(tmp_path: Path) -> None:
    path = tmp_path / "wk.yaml"
    path.write_text("data_dir: /file\n")
    settings, _ = read_settings(str(path), env={"WATCHKEEPER_LOG_LEVEL": "debug"})
    assert (settings.data_dir, settings.log_level) == ("/file", "debug")
    settings, _ = read_settings(env={"WATCHKEEPER_CONFIG": str(path)})
    assert settings.data_dir == "/file"
    with pytest.raises(ConfigError, match="cannot read the configuration file"):
        read_settings(str(tmp_path / "missing.yaml"), env={})
    path.write_bytes(b"\xff\xfe")
    with pytest.raises(ConfigError, match="not UTF-8"):
        read_settings(str(path), env={})


_STATEFUL = """\
engines:
  - {name: threshold, engine: threshold, next: [dedup],
     options: {rules: [{metric: "cpu", warning: 80, critical: 90}]}}
  - {name: dedup, engine: dedup, next: [kept]}
  - {name: kept, engine: dedup, options: {state: memory}, next: [local]}
  - {name: local, engine: threshold, options: {state: sqlite}, next: [named]}
  - {name: named, engine: dedup, options: {state: postgres, schema: mine}, next: [alarms]}
  - {name: alarms, engine: alarms, next: [enrich]}
  - {name: enrich, engine: enrich}
"""


def _where(engine: Engine) -> tuple[str, str | None, str | None]:
    options = engine.options
    kind = getattr(options, "state", None) or options.store
    return kind, options.dsn, options.schema


def test_stateful_engines_keep_their_state_with_a_postgres_archive() -> None:
    """With the archive in PostgreSQL, a stateful engine whose options name no state keeps
    it in the archive's database and schema; one that names it keeps its choice."""
    engines = {e.name: e for e in _engines(
        'archive: {backend: postgres, options: {dsn: "host=db dbname=wk", schema: wk_a}}\n'
        + _STATEFUL)}
    shared = ("host=db dbname=wk", "wk_a")
    assert _where(engines["threshold"]) == ("postgres", *shared)
    assert _where(engines["dedup"]) == ("postgres", *shared)
    assert _where(engines["alarms"]) == ("postgres", *shared)
    assert _where(engines["kept"]) == ("memory", None, "watchkeeper")
    assert _where(engines["local"]) == ("sqlite", None, "watchkeeper")
    assert _where(engines["named"]) == ("postgres", "host=db dbname=wk", "mine")
    assert not hasattr(engines["enrich"].options, "dsn")


def test_stateful_engines_default_to_memory_with_the_embedded_archive() -> None:
    engines = {e.name: e for e in _engines(_STATEFUL.replace(
        "{state: postgres, schema: mine}", "{state: sqlite}"))}
    for name in ("threshold", "dedup", "alarms", "kept"):
        assert _where(engines[name]) == ("memory", None, "watchkeeper")
