"""Scraping's pure part: exposition parsing, target labels, relabelling, file_sd."""

from __future__ import annotations

import pytest

from watchkeeper.collect.builtin.promtext import (
    OPENMETRICS,
    Relabel,
    Target,
    attach,
    file_sd,
    parse,
    relabel,
)
from watchkeeper.errors import InvalidData

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
