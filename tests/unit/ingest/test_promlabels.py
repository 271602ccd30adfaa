"""The one Prometheus <-> watchkeeper series mapping, both ways."""

from __future__ import annotations

import pytest

from watchkeeper.errors import InvalidData
from watchkeeper.model import SeriesKey
from watchkeeper.model.promlabels import key_text, sanitize, to_key, to_labels


def test_instance_and_job_make_subject_and_plugin() -> None:
    """{__name__, instance, job, rest} is instance/job/name{rest}, and back exactly."""
    labels = {"__name__": "node_cpu_seconds_total", "instance": "h1:9100", "job": "node",
              "cpu": "0", "mode": "idle"}
    key = to_key(labels)
    assert str(key) == 'h1:9100/node/node_cpu_seconds_total{cpu="0",mode="idle"}'
    assert to_labels(key) == labels


@pytest.mark.parametrize("labels", [
    {"__name__": "up"},
    {"__name__": "up", "job": "node"},
    {"__name__": "up", "instance": "http://h/x y", "job": "node"},
    {"__name__": "up", "instance": "prometheus", "job": "prometheus"},
])
def test_other_label_sets_fall_back_and_round_trip(labels: dict[str, str]) -> None:
    """Without a usable instance and job the key is prometheus/prometheus/N{all}: the
    labels come back exactly (also when instance and job are both 'prometheus')."""
    key = to_key(labels)
    assert (key.subject, key.plugin) == ("prometheus", "prometheus")
    assert to_labels(key) == labels


def test_native_series_get_sanitized_names() -> None:
    """A native key reads as a Prometheus series; a clashing label is exported_."""
    key = SeriesKey.parse('localhost/system/cpu.percent{job="x"}')
    assert to_labels(key) == {"__name__": "cpu_percent", "instance": "localhost",
                              "job": "system", "exported_job": "x"}
    assert sanitize("9lives-ok") == "_9lives_ok"


def test_empty_values_are_absent_and_bad_sets_refused() -> None:
    """Empty values are dropped; no name, a bad name or a bad label name is refused."""
    assert key_text([("__name__", "up"), ("a", "")]) == "prometheus/prometheus/up"
    for labels in ([("job", "x")], [("__name__", "a b")], [("__name__", "up"), ("1x", "v")]):
        with pytest.raises(InvalidData):
            key_text(labels)
