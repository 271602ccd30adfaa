"""Canopsis-format events in: the importer, and a realistic stream through threshold -> alarms."""

from __future__ import annotations

import json
from contextlib import AsyncExitStack
from typing import Any

import msgspec
import pytest

from watchkeeper.clock import FakeClock
from watchkeeper.model import Event, SeriesKey
from watchkeeper.pipeline import Engine, Pipeline, Services
from watchkeeper.pipeline.bus.local import LocalBus
from watchkeeper.pipeline.canopsis import (
    EventFormatError,
    PerfMetric,
    event_id,
    from_canopsis,
    from_canopsis_json,
    parse_perf_data,
)
from watchkeeper.pipeline.codec import decode_batch, encode_batch
from watchkeeper.pipeline.engines import threshold
from watchkeeper.pipeline.engines.alarms import ENGINE as ALARMS
from watchkeeper.pipeline.engines.alarms import AlarmOptions, Alarms
from watchkeeper.pipeline.partition import EntityIds, partition_of, split
from watchkeeper.telemetry import SelfMetrics

T0 = 1_700_000_000.0
NAGIOS = {"connector": "nagios", "connector_name": "nagios1"}


def test_perf_data_is_parsed_once_with_units_limits_and_quotes() -> None:
    metrics = parse_perf_data("rta=0.097ms;100;500;0 pl=0%;20;60;; "
                              "'C:\\ used''s'=12,5GB;;;0;100 unknown=U")
    assert metrics == [
        PerfMetric(metric="rta", value=0.097, unit="ms", warn="100", crit="500", min=0.0),
        PerfMetric(metric="pl", value=0.0, unit="%", warn="20", crit="60"),
        PerfMetric(metric="C:\\ used's", value=12.5, unit="GB", min=0.0, max=100.0),
    ]


@pytest.mark.parametrize(
    ("text", "fragment"),
    [("rta=fast", "metric 'rta': value is not a number (got 'fast')"),
     ("=1", "expected 'label'=value"),
     ("x=1;2;3;4;5;6", "at most warn;crit;min;max"),
     ("x=1;;;zero", "metric 'x': not a number (got 'zero')")],
)
def test_bad_perf_data_names_the_field(text: str, fragment: str) -> None:
    with pytest.raises(EventFormatError, match=r"^perf_data: ") as info:
        parse_perf_data(text)
    assert fragment in str(info.value)
    assert info.value.field == "perf_data"


def test_a_nagios_service_event() -> None:
    event = from_canopsis({
        **NAGIOS, "event_type": "check", "source_type": "resource",
        "component": "web1.example.com", "resource": "Disk /var", "state": 2,
        "state_type": 0, "output": "DISK CRITICAL", "long_output": "/var 93% used",
        "timestamp": 1700000000, "perf_data": "'/var'=93%;80;90;0;100",
        "hostgroups": ["linux", "web"], "current_attempt": 1, "max_attempts": 3,
        "tags": "prod", "rk": "nagios.nagios1.check.resource.web1.example.com.Disk /var",
    }, now=1.0)
    assert (event.connector, event.connector_name, event.event_type, event.source_type) == (
        "nagios", "nagios1", "check", "resource")
    assert (event.component, event.resource, event.state, event.timestamp) == (
        "web1.example.com", "Disk /var", 2, 1700000000.0)
    assert event.entity_id == "resource/web1.example.com/Disk%20%2Fvar"
    [m] = event.measurements
    assert m.key == SeriesKey.make("web1.example.com", "Disk_var", "var",
                                   {"resource": "Disk /var", "metric": "/var"})
    assert (m.value, m.unit, m.ts) == (93.0, "%", 1700000000.0)
    assert event.attrs == {"state_type": "soft", "hostgroups": "linux,web",
                           "current_attempt": "1", "max_attempts": "3",
                           "perf./var.warn": "80", "perf./var.crit": "90",
                           "perf./var.min": "0", "perf./var.max": "100"}
    assert event.tags == ("prod",)


def test_cleaner_defaults_and_component_events() -> None:
    event = from_canopsis({**NAGIOS, "component": "router1", "resource": ""}, now=42.0)
    assert (event.event_type, event.source_type, event.state, event.timestamp) == (
        "check", "component", 0, 42.0)
    assert event.attrs == {"state_type": "hard"}
    assert event.entity_id == "component/router1"


def test_perf_data_array_wins_over_the_string() -> None:
    event = from_canopsis({
        **NAGIOS, "component": "db1", "resource": "load", "event_type": "perf",
        "perf_data": "load1=1", "perf_data_array": [
            {"metric": "load1", "value": 12, "warn": 4, "crit": 8, "type": "GAUGE"},
            {"metric": "ctx", "value": "100", "type": "COUNTER", "unit": "c"}],
    }, now=1.0)
    assert [(m.key.metric, m.value, m.unit) for m in event.measurements] == [
        ("load1", 12.0, ""), ("ctx", 100.0, "c")]
    assert event.attrs["perf.load1.crit"] == "8"
    assert event.attrs["perf.ctx.type"] == "COUNTER"


@pytest.mark.parametrize(
    ("change", "field"),
    [({"component": None}, "component"),
     ({"connector": 3}, "connector"),
     ({"connector_name": ""}, "connector_name"),
     ({"state": 4}, "state"),
     ({"state": True}, "state"),
     ({"state_type": 2}, "state_type"),
     ({"source_type": "planet"}, "source_type"),
     ({"source_type": "resource", "resource": ""}, "resource"),
     ({"timestamp": "yesterday"}, "timestamp"),
     ({"timestamp": -5}, "timestamp"),
     ({"tags": [1, 2]}, "tags"),
     ({"output": ["x"]}, "output"),
     ({"ttl": 0}, "ttl"),
     ({"perf_data_array": [{"value": 1}]}, "perf_data_array[0].metric"),
     ({"perf_data_array": [{"metric": "m", "value": "x"}]}, "perf_data_array[0].value"),
     ({"perf_data_array": [{"metric": "m", "value": 1, "type": "RATE"}]},
      "perf_data_array[0].type"),
     ({"extra": {"nested": True}}, "extra")],
)
def test_bad_events_name_the_field(change: dict[str, Any], field: str) -> None:
    doc = {**NAGIOS, "component": "c", "resource": "r", **change}
    with pytest.raises(EventFormatError) as info:
        from_canopsis(doc, now=1.0)
    assert info.value.field == field
    assert str(info.value).startswith(f"{field}: ")


def test_json_bodies_one_or_many() -> None:
    one = {**NAGIOS, "component": "a"}
    assert len(from_canopsis_json(json.dumps(one), now=1.0)) == 1
    assert len(from_canopsis_json(json.dumps([one, one]).encode(), now=1.0)) == 2
    with pytest.raises(EventFormatError, match=r"^\[1\]\.state: expected an integer"):
        from_canopsis_json(json.dumps([one, {**one, "state": 9}]), now=1.0)
    with pytest.raises(EventFormatError, match=r"^\$: not JSON"):
        from_canopsis_json(b"{nope", now=1.0)
    with pytest.raises(EventFormatError, match=r"^\[0\]: a Canopsis event is a JSON object"):
        from_canopsis_json("[3]", now=1.0)


def test_the_same_message_converted_twice_gives_the_same_ids() -> None:
    """Ids come from the message, not from chance: a redelivered message converted again
    is recognised by every stage that de-duplicates by id."""
    doc = {**NAGIOS, "component": "web1", "resource": "HTTP", "state": 2, "timestamp": T0}
    body = json.dumps(doc)
    first = from_canopsis_json(body, now=1.0)
    again = from_canopsis_json(json.dumps(doc, indent=2, sort_keys=True), now=2.0)
    assert [e.id for e in first] == [e.id for e in again] == [event_id(doc)]
    assert len(first[0].id) == 32
    # the source, the broker's message id and every field are part of the identity
    assert from_canopsis(doc, now=1.0, source="amqp:x").id != first[0].id
    assert from_canopsis(doc, now=1.0, key="m1").id != first[0].id
    assert from_canopsis({**doc, "timestamp": T0 + 1}, now=1.0).id != first[0].id
    # in an array with a message id, equal events are told apart by their place
    many = from_canopsis_json(json.dumps([doc, doc]), now=1.0, key="m1")
    assert len({e.id for e in many}) == 2
    assert [e.id for e in many] == [
        e.id for e in from_canopsis_json(json.dumps([doc, doc]), now=5.0, key="m1")]


def test_the_wire_form_round_trips_and_partitions_are_stable() -> None:
    event = from_canopsis({**NAGIOS, "component": "web1", "resource": "r",
                           "perf_data": "a=1"}, now=1.0)
    assert decode_batch(encode_batch([event, event])) == [event, event]
    ids = EntityIds(limit=2)
    assert ids(event) == event.entity_id
    assert partition_of("resource/web1/r", 8) == partition_of("resource/web1/r", 8) < 8
    groups = split([event] * 3, 4)
    assert [len(g) for g in groups.values()] == [3]


# A realistic stream, after engines.md §A.2: Nagios services and hosts (FQDN components,
# soft retries, perf data with limits), an SNMP trap, a collectd perf-only event, and
# users' actions (ack, ticket, cancel, snooze), one event a minute.
STREAM: list[tuple[float, dict[str, Any]]] = [
    (0, {**NAGIOS, "component": "web1.example.com", "resource": "HTTP", "state": 0,
         "output": "HTTP OK: 200"}),
    (60, {**NAGIOS, "component": "web1.example.com", "resource": "PING", "state": 0,
          "perf_data": "rta=0.097ms;100;500;0 pl=0%;20;60;;"}),
    (120, {**NAGIOS, "component": "web1.example.com", "resource": "Disk /var", "state": 0,
           "output": "DISK OK", "perf_data": "'/var'=93%;80;90;0;100"}),
    (180, {**NAGIOS, "component": "web1.example.com", "resource": "HTTP", "state": 2,
           "state_type": 0, "current_attempt": 1, "max_attempts": 3, "output": "timeout"}),
    (240, {**NAGIOS, "component": "web1.example.com", "resource": "HTTP", "state": 2,
           "state_type": 0, "current_attempt": 2, "max_attempts": 3, "output": "timeout"}),
    (300, {**NAGIOS, "component": "web1.example.com", "resource": "HTTP", "state": 2,
           "state_type": 1, "current_attempt": 3, "max_attempts": 3,
           "output": "HTTP CRITICAL: timeout"}),
    (330, {**NAGIOS, "event_type": "ack", "component": "web1.example.com",
           "resource": "HTTP", "author": "alice", "output": "looking",
           "ref_rk": "nagios.nagios1.check.resource.web1.example.com.HTTP"}),
    (360, {**NAGIOS, "event_type": "assocticket", "component": "web1.example.com",
           "resource": "HTTP", "author": "alice", "ticket": "INC-42"}),
    (420, {**NAGIOS, "component": "web1.example.com", "resource": "HTTP", "state": 0,
           "output": "HTTP OK: 200"}),
    (480, {**NAGIOS, "component": "web1.example.com", "resource": "Disk /var", "state": 0,
           "output": "DISK OK", "perf_data": "'/var'=85%;80;90;0;100"}),
    (540, {"connector": "snmp", "connector_name": "snmptrapd", "event_type": "trap",
           "component": "switch1", "resource": "linkDown", "state": 2,
           "output": "ifIndex 3 down"}),
    (600, {"connector": "collectd", "connector_name": "collectd1", "event_type": "perf",
           "component": "db1", "resource": "load", "perf_data_array": [
               {"metric": "load1", "value": 12, "warn": 4, "crit": 8}]}),
    (660, {"connector": "canopsis", "connector_name": "ui", "event_type": "cancel",
           "component": "db1", "resource": "load", "author": "bob",
           "output": "maintenance"}),
    (720, {"connector": "canopsis", "connector_name": "ui", "event_type": "snooze",
           "component": "web1.example.com", "resource": "Disk /var", "author": "alice",
           "duration": 600}),
    (780, {**NAGIOS, "component": "web1.example.com", "source_type": "component",
           "state": 2, "output": "PING CRITICAL - Packet loss = 100%"}),
    (840, {**NAGIOS, "component": "web1.example.com", "resource": "HTTP", "state": 0}),
    (4400, {**NAGIOS, "component": "web1.example.com", "resource": "HTTP", "state": 0}),
]

EXPECTED = {
    "resource/web1.example.com/HTTP": [
        ("stateinc", 300, "nagios.nagios1", "HTTP CRITICAL: timeout", 2),
        ("statusinc", 300, "system", "", 1),
        ("ack", 330, "alice", "looking", None),
        ("assocticket", 360, "alice", "INC-42", None),
        ("statedec", 420, "nagios.nagios1", "HTTP OK: 200", 0),
        ("statusinc", 420, "system", "", 2),  # 2 minutes of trouble: stealthy
        ("statusdec", 720, "system", "", 0),  # shown as stealthy for 300 s
        ("resolve", 4320, "system", "", None),  # off for an hour: resolved
    ],
    "resource/web1.example.com/Disk%20%2Fvar": [
        ("stateinc", 120, "nagios.nagios1", "/var=93 (critical)", 3),
        ("statusinc", 120, "system", "", 1),
        ("statedec", 480, "nagios.nagios1", "/var=85 (warning)", 1),
        ("snooze", 720, "alice", "", 1320),
        ("unsnooze", 1320, "system", "snooze ended", None),  # found by the last beat
    ],
    "resource/db1/load": [
        ("stateinc", 600, "collectd.collectd1", "load1=12 (critical)", 3),
        ("statusinc", 600, "system", "", 1),
        ("cancel", 660, "bob", "maintenance", None),
        ("statusinc", 660, "system", "", 4),
    ],
    "component/web1.example.com": [
        ("stateinc", 780, "nagios.nagios1", "PING CRITICAL - Packet loss = 100%", 2),
        ("statusinc", 780, "system", "", 1),
    ],
}


async def test_a_canopsis_stream_through_threshold_and_alarms() -> None:
    clock = FakeClock(T0 + 5000)
    services = Services(clock=clock, metrics=SelfMetrics())
    seen: list[Event] = []

    async def collect(engine: Engine, batch: list[Event]) -> list[Event]:
        seen.extend(batch)
        return []

    engines = [
        Engine(name="threshold", services=services, event_task=threshold.ENGINE.event_task,
               batch_task=threshold.ENGINE.batch_task, next_engines=("alarms",),
               options=threshold.ThresholdOptions()),
        Engine(name="alarms", services=services, event_task=ALARMS.event_task,
               batch_task=ALARMS.batch_task, beat_task=ALARMS.beat_task,
               commit_task=ALARMS.commit_task, options=AlarmOptions(hard_after=3),
               next_engines=("out",), ordered=True),
        Engine(name="out", services=services, event_task=None, batch_task=collect),
    ]
    events = [from_canopsis({**doc, "timestamp": T0 + t}, now=clock.time())
              for t, doc in STREAM]
    bus = LocalBus()
    async with AsyncExitStack() as stack:
        await bus.start(stack)
        pipeline = Pipeline(engines, bus)
        await pipeline.start(stack)
        for event in events:  # one at a time, as connectors send them
            await pipeline.publish([event])
        await pipeline.stop()
    api = Alarms(engines[1], pipeline.send)
    logs = {}
    for entity in EXPECTED:
        alarm = api.get(entity)
        logs[entity] = [(s.type, s.t - T0, s.author, s.message,
                         None if s.val is None else s.val - (T0 if s.type == "snooze" else 0))
                        for s in alarm.steps]
    assert logs == EXPECTED
    assert {a.entity_id for a in api.list()} == set(EXPECTED) - {
        "resource/web1.example.com/HTTP"}  # resolved
    assert api.get("resource/web1.example.com/HTTP").resolved == T0 + 4320
    assert api.get("resource/db1/load").status_name == "cancelled"
    assert api.get("resource/web1.example.com/Disk%20%2Fvar").snoozed is False  # ended
    changes = [e for e in seen if e.event_type == "alarm"]
    assert len(changes) == sum(map(len, EXPECTED.values()))
    assert msgspec.json.decode(msgspec.json.encode(changes[0].attrs))["alarm_state"] == "critical"
    assert not any(e.component == "switch1" and e.event_type == "alarm" for e in seen)
