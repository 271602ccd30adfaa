"""The genie-style Manager: runs, roll-ups, filters, isolation, config errors and reports."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import msgspec
import pytest
import yaml

from watchkeeper.collect.manager import Manager
from watchkeeper.errors import ConfigError
from watchkeeper.model import Device, Status
from watchkeeper.settings import CollectorSettings, load_settings

P = "tests.unit.collect.plugins"
DEVICES = [Device(name="r1", address="127.0.0.1", tags=("core",)),
           Device(name="r2", address="127.0.0.1", groups=("edge",))]


def spec(name: str, plugin: str, devices: list[str] | None = None, **options: Any
         ) -> CollectorSettings:
    return CollectorSettings(name=name, plugin=plugin, devices=devices or ["*"],
                             options=options, timeout=1.0)


async def test_results_by_run_plugin_and_device_with_rollups() -> None:
    config = [spec("health", f"{P}:Fixed", by_device={"r2": "warning"}),
              spec("cpu", f"{P}:Fixed", devices=["tag:core"], status="critical")]
    async with Manager(DEVICES, config) as manager:
        results = await manager.run("run1")
        assert results is manager.results["run1"]
        assert results["health"]["r1"].status is Status.OK
        assert results["health"]["r2"].status is Status.WARNING
        assert set(results["cpu"]) == {"r1"}
        assert manager.status("run1") is Status.CRITICAL
        assert manager.device_statuses("run1") == {"r1": Status.CRITICAL, "r2": Status.WARNING}
        assert manager.plugin_statuses("run1") == {"health": Status.WARNING,
                                                   "cpu": Status.CRITICAL}
        assert [m.text for m in results["health"]["r2"].messages] == ["r2 is warning"]
        assert str(results["health"]["r1"].measurements[0].key) == "r1/health/value"


async def test_plugin_and_device_filters() -> None:
    config = [spec("a", f"{P}:Fixed"), spec("b", f"{P}:Fixed", status="critical")]
    async with Manager(DEVICES, config) as manager:
        await manager.run("only-a", plugins=["a"], devices=["group:edge"])
        assert {p: set(d) for p, d in manager.results["only-a"].items()} == {"a": {"r2"}}
        assert manager.status("only-a") is Status.OK
        with pytest.raises(ConfigError, match="no configured plugin nope"):
            await manager.run("x", plugins=["nope"])


async def test_a_plugin_that_raises_hangs_or_returns_garbage_is_errored_and_isolated() -> None:
    config = [spec("raise", f"{P}:Broken"), spec("hang", f"{P}:Broken", mode="hang"),
              spec("garbage", f"{P}:Broken", mode="garbage"), spec("fine", f"{P}:Fixed")]
    async with Manager(DEVICES[:1], config) as manager:
        results = await manager.run("r")
    assert {p: by[d].status for p, by in results.items() for d in by} == {
        "raise": Status.ERRORED, "hang": Status.ERRORED, "garbage": Status.ERRORED,
        "fine": Status.OK}
    assert "timed out" in results["hang"]["r1"].messages[0].text
    assert manager.status() is Status.ERRORED


async def test_job_state_persists_between_runs() -> None:
    async with Manager(DEVICES[:1], [spec("count", f"{P}:Counting")]) as manager:
        await manager.run("one")
        await manager.run("two")
    values = [manager.results[uid]["count"]["r1"].measurements[0].value for uid in ("one", "two")]
    assert values == [1.0, 2.0]


CONFIG = """\
collectors:
  - name: good
    plugin: tests.unit.collect.plugins:Fixed
  - name: bad
    plugin: {plugin}
    devices: [{devices}]
    options: {options}
"""


@pytest.mark.parametrize(
    ("plugin", "devices", "options", "line", "match"),
    [
        ("no.such.module:X", "'*'", "{}", 5, "cannot import"),
        ("nosuchplugin", "'*'", "{}", 5, "no such plugin"),
        ("tests.unit.collect.plugins:Fixed", "'*'", "{status: 5}", 7, "Expected `str`"),
        ("tests.unit.collect.plugins:Fixed", "'*'", "{colour: red}", 7, "unknown option"),
        ("tests.unit.collect.plugins:Fixed", "r9", "{}", 6, "no device 'r9'"),
    ],
)
def test_bad_config_is_refused_with_its_location(plugin: str, devices: str, options: str,
                                                 line: int, match: str) -> None:
    text = CONFIG.format(plugin=plugin, devices=devices, options=options)
    settings, locator = load_settings(text, source="wk.yaml")
    assert settings.collectors is not None
    with pytest.raises(ConfigError, match=match) as caught:
        Manager(DEVICES, settings.collectors, locator=locator)
    assert (caught.value.file, caught.value.line) == ("wk.yaml", line)


def test_a_collector_name_no_series_may_carry_is_refused_with_its_line() -> None:
    """The name is the plugin part of every series key the collector writes: a name every
    poll would fail on is refused when the config loads, not polled as ERRORED forever."""
    text = "collectors:\n  - name: disk free\n    plugin: tests.unit.collect.plugins:Fixed\n"
    settings, locator = load_settings(text, source="wk.yaml")
    assert settings.collectors is not None
    with pytest.raises(ConfigError, match=r"collectors\[0\]\.name: a collector name") as caught:
        Manager(DEVICES, settings.collectors, locator=locator)
    assert (caught.value.line, caught.value.value) == (2, "disk free")


async def test_no_plugin_list_runs_every_plugin_as_in_genie() -> None:
    """``run(uid)`` and ``run(uid, plugins=[])`` run every configured plugin, as
    genie.telemetry's ``Manager.run`` does ("if empty list, all plugins will run")."""
    config = [spec("a", f"{P}:Fixed"), spec("b", f"{P}:Fixed", status="warning")]
    async with Manager(DEVICES, config) as manager:
        await manager.run("none")
        await manager.run("empty", plugins=[])
        assert set(manager.results["none"]) == set(manager.results["empty"]) == {"a", "b"}
        assert manager.status("empty") is Status.WARNING


async def test_a_result_reads_like_genies_dict() -> None:
    """The genie.telemetry guide's loop: ``result.get('status')``, then its ``name``."""
    async with Manager(DEVICES, [spec("cpu", f"{P}:Fixed", by_device={"r2": "critical"})]) \
            as manager:
        await manager.run("all")
        anomalies = []
        for name, result in manager.results["all"]["cpu"].items():
            status = result.get("status", None)
            if str(getattr(status, "name", status)).lower() != "ok":
                anomalies.append(name)
        assert anomalies == ["r2"]
        result = manager.results["all"]["cpu"]["r1"]
        assert result["status"] is result.status is Status.OK
        assert result.get("nosuch", "dflt") == "dflt"
        with pytest.raises(KeyError, match="nosuch"):
            result["nosuch"]


@pytest.mark.parametrize("selector", ["nosuch", "tag:nosuch", "group:nosuch"])
async def test_a_device_selector_that_selects_nothing_is_refused(selector: str) -> None:
    """Like an unknown plugin: an empty run would report UNKNOWN and exit 0."""
    async with Manager(DEVICES, [spec("a", f"{P}:Fixed")]) as manager:
        with pytest.raises(ConfigError, match=f"no device matches '{selector}'"):
            await manager.run("x", devices=[selector])


def test_a_bad_device_connection_is_refused_at_construction() -> None:
    devices = [Device(name="r1", connections={"snmp": {"port": "nope"}})]
    with pytest.raises(ConfigError, match="device 'r1'"):
        Manager(devices, [spec("snmp", "snmp", interfaces=True)])


@pytest.mark.parametrize("suffix", [".yaml", ".json"])
async def test_finalize_report_writes_data_and_html_without_touching_results(
        tmp_path: Path, suffix: str) -> None:
    config = [spec("health", f"{P}:Fixed", by_device={"r2": "critical"}, text="<b>&</b>")]
    async with Manager(DEVICES, config) as manager:
        await manager.run("before")
        await manager.run("after", plugins=["health"], devices=["r1"])
    before = manager.results["before"]["health"]["r1"]
    paths = manager.finalize_report(tmp_path / f"report{suffix}")
    assert paths == [tmp_path / f"report{suffix}", tmp_path / "report.html"]
    assert manager.results["before"]["health"]["r1"] == before  # genie's report mutated these
    text = paths[0].read_text()
    data = json.loads(text) if suffix == ".json" else yaml.safe_load(text)
    assert data["status"] == "critical"
    assert data["counts"] == {"ok": 2, "critical": 1}
    assert data["devices"] == {"r1": "ok", "r2": "critical"}
    assert data["runs"]["after"]["status"] == "ok"
    r2 = data["runs"]["before"]["results"]["health"]["r2"]
    assert r2["status"] == "critical"
    assert r2["messages"][0]["text"] == "<b>&</b>"
    assert r2["measurements"] == [{"series": "r2/health/value", "value": 1.0, "unit": ""}]
    page = paths[1].read_text()
    assert "&lt;b&gt;&amp;&lt;/b&gt;" in page  # escaped, never raw HTML from a check
    assert "<b>&</b>" not in page
    assert "run before" in page
    assert manager.finalize_report(tmp_path / f"report{suffix}")  # again, any time


def test_a_report_needs_a_known_extension(tmp_path: Path) -> None:
    manager = Manager(DEVICES, [])
    with pytest.raises(ConfigError, match=r"\.yaml"):
        manager.finalize_report(tmp_path / "report.txt")


async def test_secrets_never_reach_logs_or_reports(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    secret = "s3cr3t-community-sentinel"
    monkeypatch.setenv("WK_TEST_COMMUNITY", secret)
    caplog.set_level(logging.DEBUG)
    devices = [Device(name="mute", address="127.0.0.1",
                      connections={"snmp": {"port": 9, "community": "env:WK_TEST_COMMUNITY",
                                            "request_timeout": 0.2, "retries": 0}})]
    config = [msgspec.structs.replace(  # pysnmp's first import may take a second or more
        spec("snmp", "snmp", objects=[{"name": "up", "oid": "1.3.6.1.2.1.1.3.0"}]), timeout=10.0)]
    async with Manager(devices, config) as manager:
        await manager.run("r")
        paths = manager.finalize_report(tmp_path / "report.yaml")
    assert manager.status() is Status.CRITICAL, manager.results
    assert "env:WK_TEST_COMMUNITY" in repr(manager.devices)  # the reference, never the value
    for text in (caplog.text, *(p.read_text() for p in paths), repr(manager.results)):
        assert secret not in text


async def test_the_readme_example_plugin_runs_through_the_config() -> None:
    """docs/examples/diskfree.py, referenced as in README's tour, run once by the Manager."""
    text = (Path(__file__).resolve().parents[3] / "docs" / "examples" / "diskfree.yaml"
            ).read_text()
    settings, locator = load_settings(text, source="diskfree.yaml")
    assert settings.collectors is not None
    assert settings.collectors[0].plugin == "docs.examples.diskfree:DiskFree"
    devices = [Device(name="localhost", address="127.0.0.1", tags=("self",))]
    async with Manager(devices, settings.collectors, locator=locator) as manager:
        results = await manager.run("tour")
    result = results["diskfree"]["localhost"]
    assert result.status in (Status.OK, Status.WARNING)
    (point,) = result.measurements
    assert str(point.key) == 'localhost/diskfree/free{path="/"}'
    assert point.value is not None
    assert 0 <= point.value <= 100
    assert point.unit == "%"
    assert "% free on /" in result.messages[0].text
