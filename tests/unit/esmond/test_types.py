"""The event-type table: esmond 4.2.1's 49 event types and what they allow."""

from __future__ import annotations

import pytest

from watchkeeper.archive.esmond.types import (
    ALLOWED_SUMMARIES,
    EVENT_TYPES,
    URL_NAME_OF,
    URL_NAMES,
    data_type,
    summary_allowed,
)


def test_forty_nine_event_types_by_data_type() -> None:
    """The counts per data type are esmond's (reference §3.1)."""
    counts: dict[str, int] = {}
    for kind in EVENT_TYPES.values():
        counts[kind] = counts.get(kind, 0) + 1
    assert len(EVENT_TYPES) == 49
    assert counts == {"integer": 14, "float": 7, "percentage": 2, "histogram": 4,
                      "subinterval": 4, "json": 18}


@pytest.mark.parametrize(("event_type", "expected"), [
    ("throughput", "integer"),
    ("time-error-estimates", "float"),
    ("packet-loss-rate-bidir", "percentage"),
    ("histogram-ttl-reverse", "histogram"),
    ("tcp-windowsize-subintervals", "subinterval"),
    ("pscheduler-run-href", "json"),
    ("streams-retransmits", None),  # in esmond's fixture, but not a known type
    ("Throughput", None),
])
def test_data_type(event_type: str, expected: str | None) -> None:
    """Each event type has its data type; other names have none."""
    assert data_type(event_type) == expected


@pytest.mark.parametrize(("event_type", "summary", "allowed"), [
    ("throughput", "average", True),
    ("throughput", "aggregation", True),
    ("throughput", "statistics", False),
    ("ntp-offset", "average", True),
    ("packet-loss-rate", "aggregation", True),
    ("packet-loss-rate", "average", False),
    ("histogram-owdelay", "statistics", True),
    ("histogram-owdelay", "average", False),
    ("failures", "aggregation", False),
    ("throughput-subintervals", "aggregation", False),
    ("no-such-type", "aggregation", False),
])
def test_allowed_summaries(event_type: str, summary: str, allowed: bool) -> None:
    """Summaries allowed per data type follow reference §3.2."""
    assert summary_allowed(event_type, summary) is allowed


def test_url_names_and_json_names_are_inverse() -> None:
    """URL names are plural, JSON names singular, and each maps back to the other."""
    assert URL_NAMES["averages"] == "average"
    assert URL_NAMES["aggregations"] == "aggregation"
    assert URL_NAMES["statistics"] == "statistics"
    assert {URL_NAME_OF[v]: v for v in URL_NAMES.values()} == dict(URL_NAMES)
    assert set(ALLOWED_SUMMARIES) == {"integer", "float", "percentage", "histogram",
                                      "subinterval", "json"}
