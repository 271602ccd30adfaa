"""Scraping's pure part: exposition parsing, target labels, relabelling, file_sd."""

from __future__ import annotations

import pytest

from watchkeeper.collect.builtin.promtext import (
    OPENMETRICS,
    Relabel,
    Target,
    attach,
    families,
    file_sd,
    parse,
    relabel,
)
from watchkeeper.errors import InvalidData
from watchkeeper.model import MetricMetadata

TEXT = """# HELP x_total a counter
# TYPE x_total counter
x_total{code="200"} 5
h_bucket{le="+Inf"} 3 1700000000000
"""
OM = """# TYPE x counter
x_total{code="200"} 5.0
x_created{code="200"} 1.7e9
# EOF
"""


def test_text_and_openmetrics() -> None:
    """Both formats give the same samples; OpenMetrics' _created lines are left out."""
    text = list(parse(TEXT, "text/plain; version=0.0.4"))
    assert text == [({"code": "200", "__name__": "x_total"}, 5.0, None),
                    ({"le": "+Inf", "__name__": "h_bucket"}, 3.0, 1.7e9)]
    assert list(parse(OM, f"{OPENMETRICS}; version=1.0.0")) == text[:1]
    with pytest.raises(InvalidData):
        list(parse("x{ 1\n", "text/plain"))


def test_honor_labels() -> None:
    """A clash keeps the scraped value as exported_<name>, or wins with honor_labels."""
    target = {"instance": "h:1", "job": "node"}
    scraped = {"__name__": "up", "job": "inner", "instance": ""}
    assert attach(scraped, target, honor_labels=False) == {
        "__name__": "up", "job": "node", "exported_job": "inner", "instance": "h:1"}
    assert attach(scraped, target, honor_labels=True)["job"] == "inner"


def test_relabel_keep_drop_replace() -> None:
    """keep/drop filter samples; replace rewrites with $1/${name}; an empty result deletes."""
    labels = {"__name__": "node_cpu", "mode": "idle", "cpu": "3"}
    assert relabel(dict(labels), [Relabel(source_labels=("mode",), regex="idle",
                                          action="drop")]) is None
    assert relabel(dict(labels), [Relabel(source_labels=("mode",), regex="user",
                                          action="keep")]) is None
    rules = [Relabel(source_labels=("__name__", "cpu"), regex="node_(.*);(?P<n>.*)",
                     target_label="what", replacement="${1}-$n"),
             Relabel(source_labels=("nothing",), regex="", target_label="mode",
                     replacement=""),
             Relabel(action="labeldrop", regex="c.u")]
    assert relabel(dict(labels), rules) == {"__name__": "node_cpu", "what": "cpu-3"}
    with pytest.raises(InvalidData):
        Relabel(regex="(")
    with pytest.raises(InvalidData):
        Relabel(source_labels=("a",))


def test_file_sd() -> None:
    """JSON and YAML target groups; meta labels set scheme and path."""
    json_text = ('[{"targets": ["a:1", "b:2"], "labels": {"env": "prod", '
                 '"__metrics_path__": "/m", "__meta_x": "y"}}]')
    assert file_sd(json_text, source="t.json") == [
        Target(address="a:1", path="/m", labels={"env": "prod"}),
        Target(address="b:2", path="/m", labels={"env": "prod"})]
    assert file_sd("- targets: ['c:3']\n", source="t.yml") == [Target(address="c:3")]
    for bad in ('{"targets": []}', "[{}]", "not json"):
        with pytest.raises(InvalidData):
            file_sd(bad, source="t.json")


def test_families_as_prometheus_reads_them() -> None:
    """Type, help and unit by the name the comment lines give (text 0.0.4 keeps
    ``_total``); help unescaped as the format says; untyped and help-only families are
    ``unknown``; a UNIT line is a plain comment in text 0.0.4; undescribed samples have
    no entry."""
    text = ("# HELP node_cpu_seconds_total Seconds the CPUs spent in each mode.\n"
            "# TYPE node_cpu_seconds_total counter\n"
            'node_cpu_seconds_total{cpu="0",mode="idle"} 1\n'
            "# HELP odd A\\\\B\\nC \\\"q\\\"\n# TYPE odd untyped\nodd 1\n"
            "# HELP only_help  Spaced.\nonly_help 2\n# UNIT x_seconds seconds\n"
            "# TYPE h histogram\nh_bucket{le=\"+Inf\"} 1\nh_sum 1\nh_count 1\nbare 3\n")
    assert families(text, "text/plain; version=0.0.4") == {
        "node_cpu_seconds_total": MetricMetadata(
            "counter", "Seconds the CPUs spent in each mode.", ""),
        "odd": MetricMetadata("unknown", 'A\\B\nC \\"q\\"', ""),
        "only_help": MetricMetadata("unknown", "Spaced.", ""),
        "h": MetricMetadata("histogram", "", "")}
    openmetrics = ("# TYPE req_seconds summary\n# UNIT req_seconds seconds\n"
                   '# HELP req_seconds Say \\"hi\\".\n# TYPE s stateset\n# EOF\n')
    assert families(openmetrics, "application/openmetrics-text; version=1.0.0") == {
        "req_seconds": MetricMetadata("summary", 'Say "hi".', "seconds"),
        "s": MetricMetadata("stateset", "", "")}
