"""Core value types: series keys, measurements, statuses, events, devices."""

from __future__ import annotations

import msgspec
import pytest

from watchkeeper.errors import InvalidData
from watchkeeper.model import CheckResult, Device, Event, Measurement, SeriesKey, Status


@pytest.mark.parametrize(
    "text",
    [
        "localhost/system/cpu.percent",
        'core1/snmp/if.in_octets{if="eth0"}',
        'a/b/c{x="1",y="with \\"quotes\\" and \\\\ and \\n"}',
    ],
)
def test_series_key_text_round_trip(text: str) -> None:
    key = SeriesKey.parse(text)
    assert str(key) == text
    assert SeriesKey.parse(str(key)) == key


def test_labels_are_sorted() -> None:
    a = SeriesKey.make("d", "p", "m", {"b": "2", "a": "1"})
    assert str(a) == 'd/p/m{a="1",b="2"}'
    assert a == SeriesKey.parse('d/p/m{b="2",a="1"}')


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("just-one-part", "expected subject/plugin/metric"),
        ("a/b/c/d", "expected subject/plugin/metric"),
        ("a//c", "plugin"),
        ('a/b/c{x="1"', "must end with"),
        ("a/b/c{x=1}", "bad label"),
        ('a/b/c{x="1";y="2"}', "separated by"),
        ("a b/p/m", "subject"),
    ],
)
def test_bad_series_keys_say_why(text: str, fragment: str) -> None:
    with pytest.raises(InvalidData, match=fragment):
        SeriesKey.parse(text)


def test_parsed_keys_are_remembered_and_bad_texts_still_refused() -> None:
    text = 'r1/snmp/if.in{if="ge-0/0/1"}'
    assert SeriesKey.parse(text) is SeriesKey.parse(text)
    for _ in range(2):  # a refusal is not remembered as an answer
        with pytest.raises(InvalidData, match="expected subject/plugin/metric"):
            SeriesKey.parse("no-slashes")


def test_label_names_must_be_identifiers() -> None:
    with pytest.raises(InvalidData, match="identifiers"):
        SeriesKey.make("d", "p", "m", {"1bad": "x"})


def test_measurement_needs_exactly_one_value_kind() -> None:
    key = SeriesKey.make("d", "p", "m")
    with pytest.raises(InvalidData):
        Measurement(key=key, ts=1.0)
    with pytest.raises(InvalidData):
        Measurement(key=key, ts=1.0, value=1.0, histogram={"1": 2})
    m = Measurement(key=key, ts=1.0, histogram={"1": 2})
    assert msgspec.json.decode(msgspec.json.encode(m), type=Measurement) == m


def test_status_rollup_is_by_severity_not_code() -> None:
    assert Status.rollup([Status.OK, Status.CRITICAL, Status.WARNING]) is Status.CRITICAL
    assert Status.rollup([Status.CRITICAL, Status.ERRORED]) is Status.ERRORED
    assert Status.rollup([Status.UNKNOWN, Status.OK]) is Status.OK
    assert Status.rollup([Status.OK, Status.PARTIAL]) is Status.PARTIAL
    assert Status.rollup([]) is Status.UNKNOWN


@pytest.mark.parametrize(
    ("status", "code", "state"),
    [(Status.OK, 0, 0), (Status.WARNING, 1, 1), (Status.CRITICAL, 2, 3), (Status.ERRORED, 3, 2)],
)
def test_status_codes(status: Status, code: int, state: int) -> None:
    assert status.exit_code == code
    assert status.state == state
    assert status.severity > Status.UNKNOWN.severity


def test_check_result_summary() -> None:
    result = CheckResult.of(Status.WARNING, "disk 91% full", ts=5.0)
    assert result.summary == "disk 91% full"
    assert CheckResult.of(Status.OK, ts=1.0).messages == ()


def test_event_identity_is_escaped() -> None:
    event = Event(event_type="check", component="sw/1", resource="if 1", timestamp=1.0)
    assert event.entity_id == "resource/sw%2F1/if%201"
    comp = Event(event_type="check", component="sw/1", source_type="component", timestamp=1.0)
    assert comp.entity_id == "component/sw%2F1"
    assert event.id != Event(event_type="check", component="x", timestamp=1.0).id
    assert event.v == 1


@pytest.mark.parametrize(
    ("selector", "hit"),
    [("*", True), ("r1", True), ("r2", False), ("tag:core", True), ("tag:edge", False),
     ("group:lab", True), ("group:", False), ("tag:", False)],
)
def test_device_selectors(selector: str, hit: bool) -> None:
    device = Device(name="r1", tags=("core",), groups=("lab",))
    assert device.matches(selector) is hit
