"""The built-in engines: threshold, dedup/throttle, enrich; loading them by name (the notifier
has its own tests in test_notifier.py)."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from watchkeeper import plugins
from watchkeeper.clock import SystemClock
from watchkeeper.errors import ConfigError
from watchkeeper.model import Event, Measurement, SeriesKey
from watchkeeper.pipeline import Engine, EngineDefinition, Services
from watchkeeper.pipeline.canopsis import from_canopsis
from watchkeeper.pipeline.engines import dedup, enrich, threshold
from watchkeeper.runtime.assemble import build_engines
from watchkeeper.settings import load_settings
from watchkeeper.telemetry import SelfMetrics


def _engine(definition: EngineDefinition, options: dict[str, Any], **services: Any) -> Engine:
    return Engine(name="e", services=Services(clock=SystemClock(), metrics=SelfMetrics(),
                                              **services),
                  event_task=definition.event_task, batch_task=definition.batch_task,
                  beat_task=definition.beat_task,
                  options=msgspec.convert(options, definition.options))


def _metric(value: float, metric: str = "cpu.percent", t: float = 0.0, **kw: Any) -> Event:
    m = Measurement(key=SeriesKey.make("web1", "system", metric), ts=t, value=value)
    return Event(event_type=kw.pop("event_type", "check"), component="web1",
                 resource="system", timestamp=t, measurements=(m,), **kw)


CPU_RULE = {"metric": "cpu.*", "warning": 80, "critical": 90, "hysteresis": 5}


async def test_threshold_levels_with_hysteresis() -> None:
    engine = _engine(threshold.ENGINE, {"rules": [CPU_RULE]})
    values = [50, 85, 92, 88, 84, 76, 74, 95]
    out = await engine.process([_metric(v, t=n) for n, v in enumerate(values)])
    assert [e.state for e in out] == [0, 1, 3, 3, 1, 1, 0, 3]
    assert out[2].output == "cpu.percent=92 (critical: above 90)"


async def test_threshold_below_replace_and_untouched_events() -> None:
    engine = _engine(threshold.ENGINE, {"combine": "replace", "rules": [
        {"metric": "free", "direction": "below", "warning": 20, "critical": 10}]})
    unrelated = _metric(1.0, metric="other", state=2)
    out = await engine.process([_metric(15, metric="free", state=2),
                                _metric(5, metric="free", event_type="perf"),
                                _metric(50, metric="free", state=3), unrelated])
    assert [(e.state, e.event_type) for e in out] == [(1, "check"), (3, "check"),
                                                      (0, "check"), (2, "check")]
    assert out[3] is unrelated  # nothing matched: the very same event passes


@pytest.mark.parametrize(
    ("spec", "value", "alert"),
    [("10", 11, True), ("10", 5, False), ("10", -1, True), ("10:", 9, True),
     ("10:", 10, False), ("~:10", -100, False), ("~:10", 11, True), ("10:20", 15, False),
     ("10:20", 21, True), ("@10:20", 15, True), ("@10:20", 25, False), ("junk", 1e9, False)],
)
def test_nagios_ranges(spec: str, value: float, alert: bool) -> None:
    assert threshold.nagios_alert(spec, value) is alert


async def test_threshold_uses_canopsis_perf_data_limits() -> None:
    engine = _engine(threshold.ENGINE, {})
    event = from_canopsis({"connector": "nagios", "connector_name": "n1", "component": "web1",
                           "resource": "disk", "perf_data": "'/var'=93%;80;90;0;100"}, now=1.0)
    [out] = await engine.process([event])
    assert out.state == 3
    assert out.output == "/var=93 (critical)"


def test_threshold_rules_are_validated() -> None:
    with pytest.raises(msgspec.ValidationError, match="warning must come before critical"):
        msgspec.convert({"rules": [{"metric": "x", "warning": 9, "critical": 5}]},
                        threshold.ThresholdOptions)
    with pytest.raises(msgspec.ValidationError, match="needs warning or critical"):
        msgspec.convert({"rules": [{"metric": "x"}]}, threshold.ThresholdOptions)


async def test_dedup_drops_seen_ids_and_throttles_repeats() -> None:
    engine = _engine(dedup.ENGINE, {"throttle": 2, "period": 60})
    a = Event(event_type="check", component="h", timestamp=0)
    repeats = [Event(event_type="check", component="h", timestamp=t) for t in (1, 2, 3)]
    change = Event(event_type="check", component="h", timestamp=4, state=2)
    later = Event(event_type="check", component="h", timestamp=70, state=2)
    with_points = _metric(1.0, t=5)
    out = await engine.process([a, a, *repeats, change, with_points, later])
    assert out == [a, repeats[0], change, with_points, later]
    assert engine.state["dedup"].duplicates == 1
    assert engine.state["dedup"].throttled == 2
    assert dedup.filter_event(engine, a) is None


async def test_enrich_adds_inventory_attributes_and_tags() -> None:
    table = {"web1": {"site": "par1", "role": "web", "tags": "prod,edge"}}
    calls: list[str] = []

    def lookup(component: str) -> dict[str, str]:
        calls.append(component)
        return table.get(component, {})

    engine = _engine(enrich.ENGINE, {"keys": ["site", "role"], "prefix": "inv."},
                     lookup=lookup)
    mine = Event(event_type="check", component="web1", timestamp=0, tags=("edge",),
                 attrs={"inv.site": "kept"})
    other = Event(event_type="check", component="db9", timestamp=0)
    out = await engine.process([mine, other, mine])
    assert out[0].attrs == {"inv.site": "kept", "inv.role": "web"}
    assert out[0].tags == ("edge", "prod")
    assert out[1] is other
    assert calls == ["web1", "db9"]  # cached until the beat
    await engine.beat()
    await engine.process([mine])
    assert calls == ["web1", "db9", "web1"]


async def test_enrich_without_a_lookup_passes_events() -> None:
    engine = _engine(enrich.ENGINE, {})
    event = Event(event_type="check", component="web1", timestamp=0)
    assert await engine.process([event]) == [event]


def test_builtin_engines_load_by_name_with_checked_options() -> None:
    for name in ("alarms", "threshold", "dedup", "enrich", "notifier", "archive_writer"):
        assert isinstance(plugins.load(plugins.ENGINES, name), EngineDefinition)
    text = """\
engines:
  - name: threshold
    engine: threshold
    options:
      rules: [{metric: cpu.percent, warning: 80, critical: 90}]
    next: [alarms]
  - name: alarms
    engine: alarms
    partitions: 4
    options: {flap_changes: 5}
"""
    settings, locator = load_settings(text, source="wk.yaml")
    services = Services(clock=SystemClock(), metrics=SelfMetrics())
    first, second = build_engines(settings, locator, services)
    assert (first.ordered, first.partitions) == (True, 1)
    assert (second.ordered, second.partitions, second.options.flap_changes) == (True, 4, 5)
    assert second.commit_task is not None
    assert second.services.lookup is not None  # the runtime lent the inventory
    bad = text.replace("flap_changes: 5", "flap_changes: 0")
    settings, locator = load_settings(bad, source="wk.yaml")
    with pytest.raises(ConfigError,
                       match=r"wk.yaml:10: engines\[1\].options: flap_changes must be at least"):
        build_engines(settings, locator, services)
