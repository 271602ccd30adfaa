"""collect.genie without a network: statuses, the configuration file, pyATS testbeds read by
pyATS' own loader, the plugin adapter and genie's Manager on real pyATS device objects.

Plugins are written into ``tmp_path`` as modules, as users write them; they never connect
here (tests/integration/test_pyats_genie.py does, over SSH).
"""

from __future__ import annotations

import asyncio
import io
import logging
import sys
import textwrap
from pathlib import Path
from typing import Any

import msgspec
import pytest
import yaml
from genie.telemetry import status as genie_status

from watchkeeper.collect.build import build_collector
from watchkeeper.collect.genie import (
    CRITICAL,
    ERRORED,
    OK,
    PARTIAL,
    WARNING,
    BasePlugin,
    GeniePluginCollector,
    HealthStatus,
    Manager,
    collector_settings,
    devices_from_testbed,
    load_testbed,
    looks_like_pyats,
    parse_genie_config,
    read_genie_config,
    read_pyats_inventory,
    to_watchkeeper,
)
from watchkeeper.collect.genie.status import NULL, genie_code, massage_meta
from watchkeeper.collect.manager import Manager as CoreManager
from watchkeeper.collect.testing import poll_once
from watchkeeper.errors import ConfigError
from watchkeeper.model import Device, Status
from watchkeeper.settings import CollectorSettings

TESTBED = """\
testbed:
  name: lab
  credentials:
    default: {username: admin, password: "%ENV{WK_GENIE_TB_PASSWORD}"}
devices:
  box:
    os: linux
    type: linux
    platform: x86
    connections:
      cli:
        protocol: ssh
        ip: 192.0.2.7
        port: 2200
        ssh_options: -i /keys/id_ed25519 -o StrictHostKeyChecking=yes
  edge:
    os: iosxe
    type: router
    credentials:
      default: {username: cisco, password: plain-secret}
    connections:
      a: {protocol: telnet, ip: 192.0.2.8, port: 2001}
"""

PLUGINS = {
    "wk_warns": """
        from watchkeeper.collect.genie import BasePlugin, OK, WARNING

        class Plugin(BasePlugin):
            __plugin_name__ = "Warns"

            def __init__(self, level="high", **kwargs):
                super().__init__(**kwargs)
                self.level = level
                self.runs = 0

            def execution(self, device, **kwargs):
                self.runs += 1
                status = OK
                status += WARNING({"2026-11-22T14:53:08.000001Z": f"{self.level} on {device.name}",
                                   "2026-11-22T14:53:07.000001Z": f"run {self.runs}"})
                return status
        """,
    "wk_raises": """
        from watchkeeper.collect.genie import BasePlugin

        class Plugin(BasePlugin):
            def execution(self, device, **kwargs):
                raise RuntimeError(f"cannot read {device.name}")
        """,
    "wk_nothing": """
        from watchkeeper.collect.genie import BasePlugin

        class Plugin(BasePlugin):
            def execution(self, device, **kwargs):
                return None
        """,
    "wk_linux_only": """
        from genie.telemetry.plugin import BasePlugin
        from genie.telemetry.status import OK

        class Plugin(BasePlugin):
            __supported_os__ = ["linux"]

            def execution(self, device, **kwargs):
                return OK(device.os)
        """,
    "wk_args": """
        import argparse
        from pyats.datastructures import classproperty
        from genie.telemetry.plugin import BasePlugin
        from genie.telemetry.status import PARTIAL

        class Plugin(BasePlugin):
            @classproperty
            def parser(cls):
                parser = argparse.ArgumentParser(add_help=False)
                parser.add_argument("--args_depth", default="1")
                parser.add_argument("--args_mode", default="fast")
                return parser

            def execution(self, device, **kwargs):
                return PARTIAL(f"depth={self.args.args_depth} mode={self.args.args_mode}")
        """,
    "wk_no_plugin": "VALUE = 1\n",
    "wk_blocks": """
        import threading
        from watchkeeper.collect.genie import BasePlugin, OK

        GATE = threading.Event()

        class Plugin(BasePlugin):
            def execution(self, device, **kwargs):
                GATE.wait(60)
                return OK("released")
        """,
}


# An OS-abstracted plugin package laid out as genie.libs.telemetry's are.
OS_PACKAGE = {
    "__init__.py": "from genie import abstract\nabstract.declare_package(__name__)\n"
                   "from .plugin import Plugin\n",
    "plugin.py": "from genie.telemetry.plugin import BasePlugin\n"
                 "from genie.telemetry.status import OK\n\n"
                 "class Plugin(BasePlugin):\n"
                 "    def execution(self, device, **kwargs):\n"
                 "        return OK('generic')\n",
    "linux/__init__.py": "from genie import abstract\nabstract.declare_token(__name__)\n"
                         "from .plugin import *\n",
    "linux/plugin.py": "from genie.telemetry.status import OK\n"
                       "from ..plugin import Plugin as Generic\n\n"
                       "class Plugin(Generic):\n"
                       "    def execution(self, device, **kwargs):\n"
                       "        return OK('linux')\n",
}


@pytest.fixture
def plugins_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    where = tmp_path / "plugins"
    where.mkdir()
    for name, source in PLUGINS.items():
        (where / f"{name}.py").write_text(textwrap.dedent(source))
    for name, source in OS_PACKAGE.items():
        (where / "wk_os" / name).parent.mkdir(parents=True, exist_ok=True)
        (where / "wk_os" / name).write_text(source)
    monkeypatch.syspath_prepend(str(where))
    return where


@pytest.fixture
def testbed_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("WK_GENIE_TB_PASSWORD", "tb-sentinel")
    path = tmp_path / "testbed.yaml"
    path.write_text(TESTBED)
    return path


@pytest.fixture
def testbed(testbed_file: Path) -> Any:
    return load_testbed(testbed_file)


# ------------------------------------------------------------------ statuses


def test_compat_statuses_roll_up_by_severity_and_keep_meta() -> None:
    status = OK + CRITICAL("core found") + WARNING("slow")
    assert str(status) == "critical"
    assert status.name == "critical"
    assert int(status) == 2
    assert repr(status) == "Critical"
    assert sorted(status.meta.values()) == ["core found", "slow"]
    assert OK.meta == {}  # the singletons are never altered
    assert str(PARTIAL + WARNING) == "warning"
    assert str(ERRORED + PARTIAL) == "errored"
    assert str(sum([OK, PARTIAL])) == "partial"  # sum starts from 0: no status
    assert str(OK + NULL) == str(NULL + OK) == "ok"  # neutral on either side, unlike genie
    assert bool(OK)
    assert not bool(WARNING)
    assert HealthStatus.from_str("Warning") == WARNING
    assert WARNING != 1
    assert hash(WARNING("a")) == hash(WARNING)
    assert str(OK + {"k": "v"}) == "ok"
    assert list((OK + "bare text").meta.values()) == ["bare text"]
    with pytest.raises(ValueError, match="no genie status named 'fine'"):
        HealthStatus("fine")


def test_meta_is_kept_by_timestamp_or_put_under_a_new_one() -> None:
    stamped = {"2026-11-22T14:53:08.453729Z": "No cores found!"}
    assert massage_meta(stamped) == stamped
    assert massage_meta({}) == {}
    wrapped = massage_meta({"cpu": 91})
    assert list(wrapped.values()) == [{"cpu": 91}]


@pytest.mark.parametrize(("name", "expected"), [
    ("OK", Status.OK), ("WARNING", Status.WARNING), ("CRITICAL", Status.CRITICAL),
    ("ERRORED", Status.ERRORED), ("PARTIAL", Status.PARTIAL)])
def test_genie_and_compat_statuses_map_onto_watchkeeper(name: str, expected: Status) -> None:
    real = getattr(genie_status, name)("from genie")
    ours = getattr(sys.modules["watchkeeper.collect.genie"], name)("from us")
    for status, text in ((real, "from genie"), (ours, "from us")):
        got, messages = to_watchkeeper(status, now=5.0)
        assert got is expected
        assert [m.text for m in messages] == [text]
        assert messages[0].ts > 1.7e9  # the meta's own timestamp, not `now`
    assert genie_code(real) == genie_code(ours) == real.code


def test_no_status_and_odd_meta() -> None:
    status, messages = to_watchkeeper(None, now=5.0)
    assert status is Status.UNKNOWN
    assert messages[0].text == "the plugin returned no status"
    status, messages = to_watchkeeper(42, now=5.0)
    assert (status, messages[0].text) == (Status.UNKNOWN, "the plugin returned int, not a status")
    assert genie_code(None) is None
    assert genie_code(genie_status.NULL) is None
    status, messages = to_watchkeeper(genie_status.WARNING({"cpu": 91}), now=5.0)
    assert (status, messages[0].text) == (Status.WARNING, '{"cpu": 91}')
    # genie's NULL means no status; meta that is not a dict is one message at `now`
    assert to_watchkeeper(genie_status.NULL, now=5.0)[0] is Status.UNKNOWN

    class Odd:
        name = "critical"
        meta = "just text"

    status, messages = to_watchkeeper(Odd(), now=5.0)
    assert (status, messages[0].text, messages[0].ts) == (Status.CRITICAL, "just text", 5.0)


# ------------------------------------------------------------------ configuration

CONFIG = """\
plugins:
  zeta:
    module: wk_warns
    interval: 10
    devices: [box]
    level: low
  alpha:
    module: wk_args
    plugin_arguments: {args_depth: 3}
  dormant:
    module: nowhere.at_all
    enabled: false
connections:
  box: {via: cli, alias: mon, timeout: 5}
"""


def test_configuration_is_read_as_genie_writes_it() -> None:
    config = parse_genie_config(CONFIG, source="gt.yaml")
    assert [e.key for e in config.plugins] == ["alpha", "zeta"]  # sorted; disabled dropped
    alpha, zeta = config.plugins
    assert (alpha.interval, alpha.devices, alpha.plugin_arguments) == (30.0, (), {"args_depth": 3})
    assert (zeta.interval, zeta.devices, zeta.arguments) == (10.0, ("box",), {"level": "low"})
    assert config.connections == {"box": {"via": "cli", "alias": "mon", "timeout": 5}}
    specs = collector_settings(config, timeout=60, argv=["--args_mode", "slow"])
    assert [(s.name, s.interval, s.timeout, s.devices) for s in specs] == [
        ("alpha", 30.0, 60, ["*"]), ("zeta", 10.0, 60, ["box"])]
    assert specs[1].options["arguments"] == {"level": "low"}
    assert specs[0].options["argv"] == ["--args_mode", "slow"]
    assert parse_genie_config("").plugins == ()


def test_configuration_from_a_path_a_dict_or_an_open_file(tmp_path: Path) -> None:
    path = tmp_path / "gt.yaml"
    path.write_text(CONFIG)
    assert len(read_genie_config(path).plugins) == 2
    assert read_genie_config(str(path)).source == str(path)
    assert len(read_genie_config(yaml.safe_load(CONFIG)).plugins) == 2
    with path.open() as handle:
        assert read_genie_config(handle).source == str(path)
    assert len(read_genie_config(io.StringIO(CONFIG)).plugins) == 2
    with pytest.raises(ConfigError, match=r"cannot read the genie\.telemetry configuration"):
        read_genie_config(tmp_path / "missing.yaml")


def test_a_genie_file_adds_collectors_to_the_settings(tmp_path: Path) -> None:
    from watchkeeper.collect.genie.config import with_genie_plugins
    from watchkeeper.settings import load_settings

    path = tmp_path / "gt.yaml"
    path.write_text(CONFIG)
    settings, _ = load_settings("collectors: [{name: tcp, plugin: tcp}]", env={})
    added = with_genie_plugins(settings, path)
    assert [c.name for c in added.collectors or []] == ["tcp", "alpha", "zeta"]
    assert [c.name for c in with_genie_plugins(load_settings(env={})[0], path).collectors
            or []] == ["alpha", "zeta"]  # no collectors configured: only the file's
    clash, _ = load_settings("collectors: [{name: zeta, plugin: tcp}]", env={})
    with pytest.raises(ConfigError, match=r"plugins\.zeta: a genie plugin key is also"):
        with_genie_plugins(clash, path)


@pytest.mark.parametrize(("text", "where", "message"), [
    ("- a\n", "gt.yaml", "the top level must be a mapping"),
    ("plugins: [a]\n", "gt.yaml:1: plugins", "must be a mapping of plugin name"),
    ("plugins:\n  a: 1\n", "gt.yaml:2: plugins.a", "must be a mapping with at least `module`"),
    ("plugins:\n  a:\n    enabled: true\n", "gt.yaml:2: plugins.a.module", "required"),
    ("plugins:\n  a:\n    module: m\n    devices: box\n", "gt.yaml:4: plugins.a.devices",
     "must be a list"),
    ("plugins:\n  a:\n    module: m\n    interval: -1\n", "gt.yaml:4: plugins.a.interval",
     "must be a positive number"),
    ("plugins:\n  a:\n    module: m\n    plugin_arguments: [x]\n",
     "gt.yaml:4: plugins.a.plugin_arguments", "must be a mapping of option"),
    ("connections:\n  box: cli\n", "gt.yaml:1: connections", "must map device names"),
])
def test_configuration_mistakes_name_file_line_and_key(text: str, where: str,
                                                       message: str) -> None:
    with pytest.raises(ConfigError, match=message) as caught:
        parse_genie_config(text, source="gt.yaml")
    assert str(caught.value).startswith(where)


# ------------------------------------------------------------------ testbeds


@pytest.mark.parametrize(("text", "expected"), [
    (TESTBED, True),
    ("devices:\n  r1: {os: nxos}\n", True),
    ("devices:\n  r1: {address: 127.0.0.1}\n", False),
    ("devices: [{name: r1}]\n", False),
    ("- 1\n", False),
    ("a: [\n", False),
])
def test_a_pyats_testbed_is_told_from_a_watchkeeper_inventory(text: str,
                                                              expected: bool) -> None:
    assert looks_like_pyats(text) is expected


def test_pyats_testbed_becomes_watchkeeper_devices(testbed_file: Path) -> None:
    box, edge = read_pyats_inventory(testbed_file)
    assert box == Device(
        name="box", address="192.0.2.7", tags=("os:linux", "type:linux", "platform:x86"),
        groups=("lab",), connections={
            "pyats": {"testbed": str(testbed_file.resolve()), "device": "box", "os": "linux",
                      "type": "linux", "via": ["cli"]},
            "ssh": {"port": 2200, "username": "admin", "key": "file:/keys/id_ed25519",
                    "password": "env:WK_GENIE_TB_PASSWORD"},
        })
    # telnet only: an address, no ssh; a plain password never leaves pyATS' objects
    assert (edge.address, edge.tags) == (  # pyATS defaults the platform to the type
        "192.0.2.8", ("os:iosxe", "type:router", "platform:router"))
    assert set(edge.connections) == {"pyats"}
    assert "plain-secret" not in msgspec.json.encode(edge).decode()


def test_devices_from_a_testbed_built_in_code() -> None:
    from pyats.topology import Device as PyatsDevice
    from pyats.topology import Testbed

    testbed = Testbed("coded")
    PyatsDevice("r9", os="nxos", testbed=testbed,
                connections={"ssh": {"protocol": "ssh", "host": "r9.lab",
                                     "ssh_options": "-i'/k ey'"}})
    (r9,) = devices_from_testbed(testbed)
    assert (r9.address, r9.groups) == ("r9.lab", ("coded",))
    assert r9.connections["ssh"] == {"port": 22, "key": "file:/k ey"}
    assert r9.connections["pyats"]["testbed"] is None


def test_a_testbed_pyats_refuses_is_a_config_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("devices:\n  r1: {os: linux, connections: 7}\n")
    with pytest.raises(ConfigError, match="pyATS cannot load the testbed") as caught:
        load_testbed(bad)
    assert str(caught.value).startswith(str(bad))


# ------------------------------------------------------------------ the adapter


def genie(module: str, **options: Any) -> GeniePluginCollector:
    options.setdefault("connect", False)
    spec = CollectorSettings(name=module.replace("wk_", ""), plugin="genie",
                             options={"module": module, **options})
    collector = build_collector(spec)
    assert isinstance(collector, GeniePluginCollector)
    return collector


def device_of(testbed_file: Path, name: str = "box") -> Device:
    return next(d for d in read_pyats_inventory(testbed_file) if d.name == name)


async def test_a_plugin_runs_on_the_pyats_device_and_keeps_its_state(
        plugins_path: Path, testbed_file: Path) -> None:
    collector = genie("wk_warns", arguments={"level": "low"})
    box = device_of(testbed_file)
    first = await poll_once(collector, box)
    assert first.status is Status.WARNING
    assert [m.text for m in first.check.messages] == ["run 1", "low on box"]  # by time
    assert [(str(m.key), m.value) for m in first.measurements] == [("box/warns/genie.code", 1.0)]
    second = await poll_once(collector, box)
    assert second.check.messages[0].text == "run 2"  # one instance per device, kept


async def test_exceptions_none_and_missing_devices(plugins_path: Path,
                                                   testbed_file: Path) -> None:
    box = device_of(testbed_file)
    raised = await poll_once(genie("wk_raises"), box)
    assert (raised.status, raised.check.summary) == (Status.ERRORED, "cannot read box")
    assert [m.value for m in raised.measurements] == [3.0]
    nothing = await poll_once(genie("wk_nothing"), box)
    assert (nothing.status, nothing.measurements) == (Status.UNKNOWN, ())
    stranger = Device(name="ghost", connections=box.connections | {
        "pyats": {**box.connections["pyats"], "device": "ghost"}})
    missing = await poll_once(genie("wk_nothing"), stranger)
    assert missing.status is Status.ERRORED
    assert "'ghost' is not in the pyATS testbed" in missing.check.summary
    lost = await poll_once(genie("wk_nothing"), Device(name="box"))
    assert "has no pyATS testbed" in lost.check.summary
    named = await poll_once(genie("wk_nothing", testbed=str(testbed_file)), Device(name="box"))
    assert named.status is Status.UNKNOWN


async def test_plugin_arguments_and_the_command_line(plugins_path: Path,
                                                     testbed_file: Path) -> None:
    box = device_of(testbed_file)
    from_yaml = await poll_once(genie("wk_args", plugin_arguments={"args_depth": 3}), box)
    assert (from_yaml.status, from_yaml.check.summary) == (Status.PARTIAL, "depth=3 mode=fast")
    command_line_wins = genie("wk_args", plugin_arguments={"args_depth": 3},
                              argv=["--args_depth", "9", "--unrelated", "x"])
    assert (await poll_once(command_line_wins, box)).check.summary == "depth=9 mode=fast"


async def test_the_os_specific_plugin_is_found_by_genie_abstraction(
        plugins_path: Path, testbed_file: Path) -> None:
    collector = genie("wk_os")
    box, edge = read_pyats_inventory(testbed_file)
    assert (await poll_once(collector, box)).check.summary == "linux"
    assert (await poll_once(collector, edge)).check.summary == "generic"  # iosxe: no token


async def test_a_call_stuck_on_a_device_makes_the_others_busy_not_stuck(
        plugins_path: Path, testbed_file: Path, testbed: Any) -> None:
    """Two plugins on one bound testbed share each pyATS device, one call at a time."""
    import wk_blocks  # type: ignore[import-not-found]

    box = device_of(testbed_file)
    blocks, warns = genie("wk_blocks"), genie("wk_warns")
    blocks.bind(testbed)
    warns.bind(testbed)
    try:
        stuck = await poll_once(blocks, box, timeout=0.5)
        assert stuck.status is Status.ERRORED  # its timeout; its thread is still inside
        busy = await poll_once(warns, box, timeout=2)
        assert busy.status is Status.ERRORED
        assert busy.check.summary.startswith("box is busy: an earlier call")
    finally:
        wk_blocks.GATE.set()
    after = await poll_once(warns, box, timeout=30)
    assert after.status is Status.WARNING


def test_supported_os_and_bad_modules(plugins_path: Path, testbed_file: Path) -> None:
    devices = read_pyats_inventory(testbed_file)
    jobs = list(genie("wk_linux_only").jobs(devices, (30.0,)))
    assert [j.device.name for j in jobs] == ["box"]  # edge runs iosxe
    assert len(list(genie("wk_warns").jobs(devices, (30.0,)))) == 2
    with pytest.raises(ConfigError, match="cannot import the genie plugin module"):
        list(genie("wk_nowhere").jobs(devices, (30.0,)))
    with pytest.raises(ConfigError, match="defines a class `Plugin`"):
        list(genie("wk_no_plugin").jobs(devices, (30.0,)))


async def test_an_unreachable_device_is_critical_and_the_plugin_does_not_run(
        plugins_path: Path, testbed_file: Path) -> None:
    # edge's only connection is telnet to a documentation address: connect fails at once
    # because the testbed names no telnet client settings pyATS can spawn in time.
    edge = device_of(testbed_file, "edge")
    result = await poll_once(genie("wk_warns", connect=True, connection_timeout=3), edge)
    assert result.status is Status.CRITICAL
    assert result.check.summary.startswith("cannot connect to edge")


# ------------------------------------------------------------------ genie's Manager


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "gt.yaml"
    path.write_text("plugins:\n  warns: {module: wk_warns}\n  broken: {module: wk_raises}\n"
                    "  linux: {module: wk_linux_only}\n")
    return path


def test_the_manager_runs_reports_and_rolls_up(plugins_path: Path, testbed: Any,
                                               config_file: Path, tmp_path: Path) -> None:
    seen: list[tuple[str, str, str]] = []

    class Owner:
        def post_run(self, device: str, plugin: str, result: Any) -> None:
            seen.append((device, plugin, result["status"].name))

    class Section:
        uid = "common_setup"

    manager = Manager(testbed, instance=Owner(), runinfo_dir=tmp_path,
                      configuration=str(config_file))
    try:
        manager.run(Section(), plugins=["warns"])
        manager.run("all")
        assert list(manager.results) == ["common_setup", "all"]
        assert list(manager.results["common_setup"]) == ["warns"]
        run = manager.results.get("all", {})
        assert {p: {d: r.get("status").name for d, r in by_device.items()}
                for p, by_device in run.items()} == {
            "broken": {"box": "ERRORED", "edge": "ERRORED"},
            "linux": {"box": "OK"},
            "warns": {"box": "WARNING", "edge": "WARNING"}}
        assert ("box", "warns", "WARNING") in seen
        assert manager.status is Status.ERRORED
        assert manager.statuses == {"ok": 0, "warning": 0, "critical": 0, "errored": 2,
                                    "partial": 0}
        assert manager.manager.status("common_setup") is Status.WARNING
        text = manager.finalize_report()
    finally:
        manager.takedown()
    written = yaml.safe_load((tmp_path / "telemetry.yaml").read_text())
    assert yaml.safe_load(text) == written
    assert written["all"]["linux"]["box"]["status"] == "Ok"
    assert list(written["all"]["linux"]["box"]["result"].values()) == ["linux"]
    assert written["all"]["broken"]["edge"]["status"] == "Errored"
    assert (tmp_path / "report.yaml").exists()
    assert (tmp_path / "report.html").exists()


def test_the_manager_reads_genietelemetry_from_the_command_line(
        plugins_path: Path, testbed: Any, config_file: Path,
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    args = ["--genietelemetry", str(config_file), "--warns_level", "x"]
    assert Manager.parser.parse_args(args).configuration == str(config_file)
    monkeypatch.setattr(sys, "argv", ["prog", *args])
    manager = Manager(testbed)  # no configuration=: genie reads --genietelemetry
    assert [e.key for e in manager.configuration.plugins] == ["broken", "linux", "warns"]
    caplog.set_level(logging.ERROR)
    assert "warns" not in manager.finalize_report()  # no runs yet, no directory
    assert "no run-info directory" in caplog.text
    manager.takedown()
    monkeypatch.setattr(sys, "argv", ["prog"])
    with pytest.raises(ConfigError, match="--genietelemetry FILE"):
        Manager(testbed)


def test_the_manager_refuses_an_unknown_plugin(plugins_path: Path, testbed: Any,
                                               config_file: Path) -> None:
    manager = Manager(testbed, configuration=config_file)
    try:
        with pytest.raises(ConfigError, match="no configured plugin nosuch"):
            manager.run("x", plugins=["nosuch"])
    finally:
        manager.takedown()


async def test_the_async_manager_runs_genie_collectors(plugins_path: Path,
                                                       testbed_file: Path) -> None:
    """watchkeeper's own Manager, with the plugin by its entry-point name."""
    spec = CollectorSettings(name="warns", plugin="genie",
                             options={"module": "wk_warns", "connect": False})
    async with CoreManager(read_pyats_inventory(testbed_file), [spec]) as manager:
        run = await manager.run("once")
    assert {d: r.status for d, r in run["warns"].items()} == {
        "box": Status.WARNING, "edge": Status.WARNING}
    assert asyncio.get_running_loop() is not None


def test_the_compat_base_plugin_contract() -> None:
    plugin = BasePlugin(interval=5)
    assert (plugin.name, plugin.version, plugin.token, plugin.interval) == (
        "watchkeeper.collect.genie.plugin", "1.0.0", [], 5)
    assert BasePlugin.parser is None
    plugin.parse_args(["--x", "1"])
    assert plugin.args is None
    with pytest.raises(NotImplementedError):
        plugin.execution(object())
