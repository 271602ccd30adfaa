"""The engines' batch fast paths give exactly what their reference paths give."""

from __future__ import annotations

import importlib
import random
from typing import Any

import msgspec
import pytest

from watchkeeper.clock import SystemClock
from watchkeeper.model import Event, Measurement, SeriesKey
from watchkeeper.pipeline import Engine, EngineDefinition, Services
from watchkeeper.pipeline.engines import dedup, enrich, threshold
from watchkeeper.pipeline.engines.alarms import AlarmBook, AlarmOptions
from watchkeeper.pipeline.engines.alarms.store import MemoryStore
from watchkeeper.pipeline.partition import EntityIds
from watchkeeper.pipeline.recent import RecentIds
from watchkeeper.telemetry import SelfMetrics


def _engine(definition: EngineDefinition, options: dict[str, Any], **services: Any) -> Engine:
    return Engine(name="e", services=Services(clock=SystemClock(), metrics=SelfMetrics(),
                                              **services),
                  event_task=definition.event_task, batch_task=definition.batch_task,
                  beat_task=definition.beat_task,
                  options=msgspec.convert(options, definition.options))


def _stream(n: int, seed: int, redelivered: float = 0.03) -> list[Event]:
    """Checks and metrics of a few entities: one, two or no measurements, missing values,
    Nagios limits, attributes and tags, states of their own, repeated ids, actions."""
    rng = random.Random(seed)
    events: list[Event] = []
    for k in range(n):
        host = f"h{rng.randrange(4)}"
        resource = rng.choice(["", "cpu", "disk"])
        metrics = rng.choice([(), ("cpu.percent",), ("cpu.percent", "load"), ("other",)])
        ms = tuple(Measurement(key=SeriesKey.make(host, "system", m), ts=float(k),
                               value=rng.uniform(60, 100))
                   if rng.random() > 0.05 else  # a histogram: no value to judge
                   Measurement(key=SeriesKey.make(host, "system", m), ts=float(k),
                               histogram={"1": 2})
                   for m in metrics)
        attrs = rng.choice([{}, {}, {"perf.other.warn": "70", "perf.other.crit": "@90:95"},
                            {"site": "x"}])
        kind = rng.choice(["check", "check", "check", "perf", "metric", "log", "ack"])
        event = Event(event_type=kind, component=host, resource=resource, timestamp=float(k),
                      state=rng.choice([0, 0, 0, 1, 2, 3]), measurements=ms, attrs=attrs,
                      tags=rng.choice([(), (), ("a",)]), output="o",
                      source_type=rng.choice(["resource", "resource", "component"]),
                      ttl=rng.choice([None, None, None, 30.0]))
        if events and rng.random() < redelivered:
            event = rng.choice(events)  # redelivered
        events.append(event)
    return events


def _batches(events: list[Event], size: int) -> list[list[Event]]:
    return [events[i:i + size] for i in range(0, len(events), size)]


async def _compare(definition: EngineDefinition, options: dict[str, Any],
                   events: list[Event], **services: Any) -> None:
    by_batch = _engine(definition, options, **services)
    by_event = _engine(definition, options, **services)
    assert definition.batch_task is not None
    assert definition.event_task is not None
    batched: list[Event] = []
    for batch in _batches(events, 37):
        batched.extend(await definition.batch_task(by_batch, batch))
    single = [out for e in events
              if (out := definition.event_task(by_event, e)) is not None]
    assert batched == single


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("options", [
    {"rules": [{"metric": "cpu.*", "warning": 80, "critical": 90, "hysteresis": 5}]},
    {"combine": "replace", "rules": [
        {"metric": "cpu.*", "direction": "below", "warning": 80, "critical": 70}]},
    {"use_perf_data": False, "rules": [{"metric": "load", "critical": 90}]},
])
async def test_threshold_batches_equal_events(seed: int, options: dict[str, Any]) -> None:
    await _compare(threshold.ENGINE, options, _stream(2_000, seed))


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("options", [{"window": 50}, {"window": 1_000},
                                     {"window": 100, "throttle": 2, "period": 10}])
async def test_dedup_batches_equal_events(seed: int, options: dict[str, Any]) -> None:
    await _compare(dedup.ENGINE, options, _stream(2_000, seed))


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("options", [{}, {"keys": ["site"], "prefix": "inv."},
                                     {"overwrite": True}])
async def test_enrich_batches_equal_events(seed: int, options: dict[str, Any]) -> None:
    inventory = {"h0": {"site": "a", "tags": "t1,t1,a"}, "h1": {"role": "db"},
                 "h2": {"tags": "t2"}}
    await _compare(enrich.ENGINE, options, _stream(1_000, seed),
                   lookup=lambda c: inventory.get(c, {}))


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("options", [{}, {"hard_after": 2, "dedup_window": 50},
                                     {"default_ttl": 20.0}])
def test_alarm_fast_path_equals_the_reference_loop(
        seed: int, options: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    events = _stream(3_000, seed, redelivered=0.002)
    opts = msgspec.convert(options, AlarmOptions)
    fast = AlarmBook(opts, MemoryStore())
    reference = AlarmBook(opts, MemoryStore())
    fast_out = [e for batch in _batches(events, 50) for e in fast.apply_batch(batch)]
    monkeypatch.setattr(AlarmBook, "_apply_fresh", lambda self, batch: None)
    ref_out = [e for batch in _batches(events, 50) for e in reference.apply_batch(batch)]
    assert fast_out == ref_out
    assert sorted(fast.tracks(), key=lambda t: t.entity_id) == sorted(
        reference.tracks(), key=lambda t: t.entity_id)
    assert fast.duplicates == reference.duplicates


def test_alarm_fast_path_forgets_the_ids_it_did_not_apply(
        monkeypatch: pytest.MonkeyPatch) -> None:
    book = AlarmBook(AlarmOptions(), MemoryStore())
    events = [Event(event_type="check", component=f"c{i}", timestamp=1.0, state=2)
              for i in range(5)]
    module = importlib.import_module("watchkeeper.pipeline.engines.alarms.book")

    real = module.apply

    def failing(track: Any, event: Event, *args: Any) -> Any:
        if event is events[2]:
            raise RuntimeError("boom")
        return real(track, event, *args)

    monkeypatch.setattr(module, "apply", failing)
    with pytest.raises(RuntimeError):
        book.apply_batch(events)
    monkeypatch.setattr(module, "apply", real)
    again = book.apply_batch(events)  # redelivered: the failed event and later ones apply
    assert {e.component for e in again} == {"c3", "c4"}


def test_recent_ids_add_all_is_add_one_by_one() -> None:
    recent = RecentIds(10, ["a"])
    assert recent.add_all(["b", "c"])
    assert not recent.add_all(["d", "d"])  # repeats within: nothing changes
    assert not recent.add_all(["d", "a"])  # one known: nothing changes
    assert not recent.add_all([str(i) for i in range(7)])  # would fill the generation
    assert set(recent) == {"a", "b", "c"}
    recent.discard("b")
    assert "b" not in recent


def test_entity_ids_of_a_batch_are_each_events() -> None:
    events = _stream(500, 7)
    for limit in (3, 1_000):
        ids = EntityIds(limit=limit)
        assert ids.of_batch(events) == [e.entity_id for e in events]
        assert ids.of_batch(events[::-1]) == [ids(e) for e in events[::-1]]
