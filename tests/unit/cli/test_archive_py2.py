"""The esmond tools' human output is esmond's byte for byte: values print as Python 2.7
printed them (checked against forms Python 2.7.18 produced, tests/data/esmond/python2)."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest

from tests.unit.client.esmond_replay import CAPTURED, ReplayServer
from watchkeeper.cli.archive import run_tool
from watchkeeper.cli.archive_format import json_output, text_output
from watchkeeper.cli.archive_py2 import (
    py2_dict_order,
    py2_hash,
    py2_kwargs_order,
    py2_repr,
    py2_str,
)
from watchkeeper.cli.archive_query import Context

FORMS = json.loads((Path(__file__).resolve().parents[2] / "data" / "esmond" / "python2" /
                    "forms.json").read_text(encoding="utf-8"))


@pytest.mark.parametrize(("text", "expected"), FORMS["dicts"])
def test_dicts_print_in_python2_order(text: str, expected: str) -> None:
    """Histograms (and any JSON object) as Python 2's repr: u'' keys in its hash order,
    through the table's resizes (up to 400 keys)."""
    assert py2_repr(json.loads(text)) == expected


@pytest.mark.parametrize(("text", "expected"), FORMS["floats"])
def test_floats_print_as_python2_str(text: str, expected: str) -> None:
    """12 significant digits, '.0' on whole numbers, the exponent from 12 digits on."""
    assert py2_str(float(text)) == expected


@pytest.mark.parametrize(("rows", "columns", "expected"), FORMS["human"])
def test_human_layout_matches_python2(rows: str, columns: list[str], expected: str) -> None:
    """Whole entries of the key: value layout: a histogram row, a statistics row."""
    data: list[dict[str, Any]] = json.loads(rows)
    assert text_output(data, columns) == expected


def test_lists_are_joined_only_where_the_first_entry_has_one() -> None:
    """As esmond: a field that is a list in the first entry is joined; a list that turns
    up only later prints as a Python 2 list."""
    data = [{"mode": [41.0], "x": None}, {"mode": [1.5, 0.40109100000000003], "x": [1.0]}]
    assert text_output(data, ["mode", "x"]).splitlines() == [
        "mode: 41.0", "x: None", "= + = + = + = + = + =", "mode: 1.5, 0.401091", "x: [1.0]"]


def test_other_values() -> None:
    """Strings print bare, reprs escape as Python 2's unicode repr does."""
    assert py2_str("ab") == "ab"
    assert py2_str(None) == "None"
    assert py2_str(float("nan")) == "nan"
    assert py2_repr(float("-inf")) == "-inf"
    assert py2_repr("\t\x01\U0001f600") == "u'\\t\\x01\\U0001f600'"
    assert py2_hash("") == 0
    assert py2_dict_order(["a", "a", "b"]) == py2_dict_order(["a", "b"])
    assert py2_repr([1, True, None]) == "[1, True, None]"


def test_json_rows_come_in_esmond_order() -> None:
    """Rows as dict(source=..., ...) made them in Python 2 (arguments collected last to
    first, then merged), checked against orders Python 2.7.18 printed; -M rows sorted."""
    stats = ["source", "destination", "event_type", "tool", "summary_type", "summary_window",
             "timestamp", "min", "median", "max", "mean", "mode", "standard_deviation",
             "variance", "percentile_25", "percentile_75", "percentile_95"]
    assert py2_kwargs_order(stats) == [
        "event_type", "max", "tool", "percentile_95", "percentile_25", "percentile_75",
        "summary_window", "min", "standard_deviation", "destination", "median", "source",
        "summary_type", "mode", "timestamp", "variance", "mean"]
    assert py2_kwargs_order([*stats[:7], "bucket", "value"]) == [
        "summary_window", "event_type", "timestamp", "tool", "destination", "bucket",
        "value", "source", "summary_type"]
    row = {"b": 1, "a": {"41.10": 2, "41.00": 98}}
    assert json_output([row], extended=True) == '[{"a": {"41.10": 2, "41.00": 98}, "b": 1}]'


@pytest.mark.parametrize(("scenario", "argv"), [
    ("cli_get_histogram_stats_json", ["-s", "127.0.0.1", "-d", "127.0.0.2", "-e",
                                      "histogram-owdelay", "-T", "statistics", "-W", "0",
                                      "-o", "json"]),
    ("cli_get_summary_average", ["-s", "127.0.0.1", "-d", "127.0.0.2", "-e", "throughput",
                                 "-T", "average", "-W", "86400"]),
])
def test_captured_output_byte_for_byte(scenario: str, argv: list[str]) -> None:
    """What the real esmond-ps-get printed (tests/data/esmond/captured), to the byte."""
    server = ReplayServer()
    out, err = io.StringIO(), io.StringIO()
    code = run_tool("get", ["--url", "http://127.0.0.1:18080", "--ip", "-S", "2014-04-30",
                            "-E", "2014-05-02", *argv],
                    Context(stdout=out, stderr=err, transport=server.transport()))
    assert (code, err.getvalue()) == (0, "")
    assert out.getvalue().encode() == (CAPTURED / f"{scenario}.stdout").read_bytes()
