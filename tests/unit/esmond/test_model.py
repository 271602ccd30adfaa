"""Metadata POST parsing and esmond's checksum."""

from __future__ import annotations

from typing import Any

import pytest

from tests.unit.esmond.support import UPSTREAM, read_json
from watchkeeper.archive.esmond.fixtures import parse_fixture, parse_test_data
from watchkeeper.archive.esmond.model import (
    MetadataSpec,
    checksum,
    parameter_text,
    parse_metadata,
)
from watchkeeper.archive.esmond.types import BASE, Summary


@pytest.mark.parametrize("key", [
    "EC7E5AF67F8746C8AEF41E60288F3F59", "0CB19291FB6D40EAA1955376772BF5D2",
    "638e53d546924c58b067f3d6f6926059", "1af831f8c5cc4cfa9909fde64c04aad5",
])
def test_checksum_is_esmonds(key: str) -> None:
    """The checksum of a fixture metadata equals the one esmond stored for it.

    (Fixture rows made by older esmond versions, or edited by hand, do not all match.)
    """
    loaded = []
    for name in ("perfsonar_api_metadata.json", "perfsonar_client_metadata.json"):
        loaded += parse_fixture(read_json(UPSTREAM / "fixtures" / name))
    metadata, stored = next((m, c) for m, c in loaded if m.key == key)
    spec = MetadataSpec(subject_type=metadata.subject_type, subject=metadata.subject,
                        parameters=metadata.parameters,
                        rows=tuple((r.event_type, r.summary_type, r.summary_window)
                                   for r in metadata.event_types))
    assert checksum(spec) == stored


def test_parse_metadata_normalises() -> None:
    """Addresses become canonical, windows ints, base rows implicit, values text."""
    spec = parse_metadata({
        "subject-type": "point-to-point", "source": "2001:0DB8::0001",
        "destination": " 10.0.0.2 ", "measurement-agent": "10.0.0.1", "tool-name": "t",
        "input-source": "a", "input-destination": "b", "time-duration": 20,
        "ip-packet-interval": 0.1, "flag": True, "list": [1, "a"],
        "event-types": [{"event-type": "throughput", "summaries": [
            {"summary-type": "average", "summary-window": "86400"},
            {"summary-type": "base", "summary-window": 0},
            {"summary-type": "average", "summary-window": 86400}]}],
    })
    subject = dict(spec.subject)
    assert subject["source"] == "2001:db8::1"
    assert subject["destination"] == "10.0.0.2"
    assert dict(spec.parameters) == {"time-duration": "20", "ip-packet-interval": "0.1",
                                     "flag": "True", "list": '[1, "a"]'}
    assert spec.rows == (("throughput", "base", 0), ("throughput", "average", 86400))


@pytest.mark.parametrize(("value", "text"), [
    ("tcp", "tcp"), (20, "20"), (0.1, "0.1"), (False, "False"), ({"a": 1}, '{"a": 1}'),
])
def test_parameter_text(value: Any, text: str) -> None:
    """Free-form values are stored as text, numbers as Python prints them."""
    assert parameter_text(value) == text


def test_parse_test_data_rows() -> None:
    """Test-data rows give points per (key, event type, summary), ts in seconds."""
    rows = [
        {"path": ["ps", "packet_count_lost", "K"], "ts": 1391548990000, "val": 325},
        {"path": ["ps", "histogram_owdelay", "K", "aggregation", "86400"],
         "ts": 1382973631000, "val": {"1": 2}},
    ]
    assert parse_test_data(rows) == {
        ("K", "packet-count-lost", BASE): [(1391548990, 325)],
        ("K", "histogram-owdelay", Summary("aggregation", 86400)): [(1382973631, {"1": 2})],
    }
