"""The Nagios plugin output format: text, long output, perfdata items and ranges."""

from __future__ import annotations

import math

import pytest

from watchkeeper.collect.builtin._nagios_output import (
    PerfItem,
    check_range,
    parse_item,
    parse_output,
    parse_perfdata,
)


def test_the_guidelines_example_splits_text_long_output_and_perfdata() -> None:
    """A '|' on the first line and on a later line both start perfdata; after the second,
    every line is perfdata."""
    out = parse_output(
        "DISK OK - free space: / 3326 MB (56%); | /=2643MB;5948;5958;0;5968\n"
        "/ 15272 MB (77%);\n"
        "/boot 68 MB (69%);\n"
        "/var/log 819 MB (84%); | /boot=68MB;88;93;0;98\n"
        "/home=69357MB;253404;253409;0;253414\n"
        "/var/log=818MB;970;975;0;980\n")
    assert out.text == "DISK OK - free space: / 3326 MB (56%);"
    assert out.long_output == "/ 15272 MB (77%);\n/boot 68 MB (69%);\n/var/log 819 MB (84%);"
    assert [i.label for i in out.perfdata] == ["/", "/boot", "/home", "/var/log"]
    assert out.perfdata[1].value == 68 * 1024**2
    assert out.perfdata[1].unit == "B"
    assert out.problems == ()


def test_output_without_perfdata_is_all_text() -> None:
    """No '|' anywhere: the first line is the message, the rest long output."""
    out = parse_output("OK all good\nline two\nline three")
    assert (out.text, out.long_output, out.perfdata) == ("OK all good", "line two\nline three", ())


def test_empty_output_is_empty() -> None:
    """A plugin that prints nothing parses to nothing."""
    assert parse_output("") == ("", "", (), ())


@pytest.mark.parametrize(("raw", "expected"), [
    ("time=0.000718s;;;0.000000;10.000000",
     PerfItem("time", 0.000718, "s", "", "", 0.0, 10.0)),
    ("rta=0.357ms;100.0;200.0;0.0", PerfItem("rta", 0.357e-3, "s", "100.0", "200.0", 0.0, None)),
    ("pl=0%;20;50;0;", PerfItem("pl", 0.0, "%", "20", "50", 0.0, None)),
    ("load1=3.700;5.000;10.000;0;", PerfItem("load1", 3.7, "", "5.000", "10.000", 0.0, None)),
    ("'label with spaces'=5", PerfItem("label with spaces", 5.0, "", "", "", None, None)),
    ("'it''s'=1c", PerfItem("it's", 1.0, "c", "", "", None, None)),
    ("'a=b'=2KB;@1:2;~:5", PerfItem("a=b", 2048.0, "B", "@1:2", "~:5", None, None)),
    ("x=U;1;2", PerfItem("x", None, "", "1", "2", None, None)),
    ("t=15us", PerfItem("t", 15e-6, "s", "", "", None, None)),
    ("big=1.5e3TB", PerfItem("big", 1.5e3 * 1024**4, "B", "", "", None, None)),
    ("neg=-3.5;10:;;-10;10", PerfItem("neg", -3.5, "", "10:", "", -10.0, 10.0)),
])
def test_items_parse_to_base_units(raw: str, expected: PerfItem) -> None:
    """Values become seconds and bytes; quoted labels may hold spaces, '=' and ''."""
    item = parse_item(raw)
    assert item._replace(value=None) == expected._replace(value=None)
    if expected.value is None:
        assert item.value is None
    else:
        assert item.value == pytest.approx(expected.value)


@pytest.mark.parametrize(("raw", "reason"), [
    ("novalue", "no '='"),
    ("=5", "empty label"),
    ("x=abc", "not a number"),
    ("x=5parsecs", "unit 'parsecs'"),
    ("x=5;1;2;3;4;5", "more than five"),
    ("x=5;abc", "not a Nagios range"),
    ("x=5;;;low", "min 'low'"),
    ("x=inf", "not a number"),
    ("x=5;20:10", "start is above end"),
])
def test_a_malformed_item_is_described_not_raised_from_the_whole(raw: str, reason: str) -> None:
    """A bad item is skipped with a sentence naming it; the good ones around it stay."""
    items, problems = parse_perfdata(f"good=1 {raw} also=2")
    assert [i.label for i in items] == ["good", "also"]
    assert len(problems) == 1
    assert raw in problems[0]
    assert reason in problems[0]


@pytest.mark.parametrize(("text", "value", "alerts"), [
    ("10", 5, False), ("10", 11, True), ("10", -1, True),
    ("10:", 9, True), ("10:", 10, False), ("10:", 1e9, False),
    ("~:10", -1e9, False), ("~:10", 11, True),
    ("10:20", 15, False), ("10:20", 21, True), ("10:20", 9, True),
    ("@10:20", 15, True), ("@10:20", 21, False),
])
def test_nagios_ranges_alert_as_the_guidelines_say(text: str, value: float, alerts: bool) -> None:
    """Outside the range alerts; '@' turns it inside out; '~' is minus infinity."""
    assert check_range(text).alerts(value) is alerts


def test_open_range_ends_are_infinite() -> None:
    """'10:' has no upper end and '~:' no lower one."""
    assert check_range("10:").high == math.inf
    assert check_range("~:10").low == -math.inf


def test_an_unterminated_quote_takes_the_rest_of_the_line_as_one_bad_item() -> None:
    """Everything after an unclosed quote is one item, reported; what came before stays."""
    items, problems = parse_perfdata("good=1 'unterminated=5 also=2")
    assert [i.label for i in items] == ["good"]
    assert len(problems) == 1
    assert "quoted label" in problems[0]
