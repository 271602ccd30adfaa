"""Output a person (table) or a program (CSV, JSON) can use."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime

import pytest

from watchkeeper.cli import render
from watchkeeper.cli.render import Level, state_level, table, utc, when


class Terminal(io.StringIO):
    """A stream that says it is a terminal, as Rich asks."""

    def isatty(self) -> bool:
        return True


def test_csv_keeps_every_digit_and_iso_times() -> None:
    """Timestamps are ISO 8601 UTC with ms (not 1.79641e+09), values their repr."""
    out = io.StringIO()
    rows_in = [[utc(1796410000.25), 0.1 + 0.2], [utc(1796410001.0), 123456789.125]]
    table(["time", "value"], rows_in, fmt="csv", out=out)
    rows = list(csv.reader(io.StringIO(out.getvalue())))
    assert rows == [["time", "value"],
                    ["2026-12-04T18:46:40.250Z", "0.30000000000000004"],
                    ["2026-12-04T18:46:41.000Z", "123456789.125"]]


def test_json_times_are_iso_and_numbers_stay_numbers() -> None:
    out = io.StringIO()
    table(["time", "value", "state"], [[utc(0.5), 1e-7, Level("ok")]], fmt="json", out=out)
    assert json.loads(out.getvalue()) == [{"time": "1970-01-01T00:00:00.500Z", "value": 1e-7,
                                           "state": "ok"}]


def test_a_piped_table_is_never_cut() -> None:
    """Piped, the table is as wide as its widest row: a long id is whole, on one line."""
    entity = "resource/" + "device-with-a-long-name." * 6 + "example.net/interface-ge-0/0/1"
    out = io.StringIO()
    table(["entity", "state"], [[entity, Level("critical")]], fmt="table", out=out)
    assert any(entity in line for line in out.getvalue().splitlines())
    assert "…" not in out.getvalue()
    assert "\x1b[" not in out.getvalue()  # no colour in a pipe


def test_a_terminal_table_folds_long_cells_and_colours_statuses(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv("TERM", "xterm-256color")
    entity = "resource/" + "x" * 150
    out = Terminal()
    table(["entity", "state"], [[entity, Level("critical")]], fmt="table", out=out)
    text = out.getvalue()
    assert "…" not in text
    assert text.count("x") == 150  # folded onto more lines, not cut
    assert "\x1b[" in text  # coloured


@pytest.mark.parametrize("stream", [io.StringIO, Terminal])
def test_numbers_are_right_aligned(stream: type[io.StringIO]) -> None:
    """In a pipe and on a terminal, a number column ends on one edge."""
    out = stream()
    table(["name", "count"], [["a", 1], ["b", 12345]], fmt="table", out=out)
    lines = [line.rstrip() for line in out.getvalue().splitlines()
             if " a " in line or " b " in line]
    assert lines[0].endswith("    1")
    assert len(lines[0]) == len(lines[1])


def test_a_piped_table_is_plain_text() -> None:
    """Piped: title, header, rule, one line per row (multi-line cells joined)."""
    out = io.StringIO()
    table(["entity", "message"], [["a/b", "two\nlines"]], fmt="table", out=out, title="t")
    assert out.getvalue() == ("  t\n"
                              "  entity   message\n"
                              "  ------   ---------\n"
                              "  a/b      two lines\n")


def test_table_numbers_for_people() -> None:
    assert render._short_number(23607435264.0) == "23607435264"
    assert render._short_number(149.92183399999703) == "149.922"
    assert render._short_number(12345678.5) == "12345678.5"
    out = io.StringIO()
    table(["a", "b"], [[{"k": 1}, None]], fmt="table", out=out)
    assert '{"k":1}' in out.getvalue()


def test_long_output_on_a_terminal_warns(monkeypatch: pytest.MonkeyPatch,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    """Past LONG_OUTPUT rows on a terminal a note on stderr says how to ask for less."""
    monkeypatch.setattr(render, "LONG_OUTPUT", 3)
    table(["n"], [[n] for n in range(5)], fmt="table", out=Terminal(), hint="--step 5m")
    assert capsys.readouterr().err == ("watchkeeper: 5 rows; --step 5m (-o csv to keep them "
                                       "in a file)\n")
    table(["n"], [[n] for n in range(5)], fmt="table", out=io.StringIO())
    assert capsys.readouterr().err == ""


def test_one_status_vocabulary_for_alarm_states() -> None:
    """Alarm states show as the check status that raises them (model/status.py's map)."""
    assert [state_level(s) for s in range(5)] == ["ok", "warning", "errored", "critical",
                                                  "unknown"]
    assert state_level(9) == "state 9"


def test_when_and_utc() -> None:
    assert when(None) == ""
    assert when(0) == "1970-01-01 00:00:00"
    assert utc(None) is None
    assert utc(0) == datetime(1970, 1, 1, tzinfo=UTC)


def test_an_80_column_terminal_keeps_every_character(monkeypatch: pytest.MonkeyPatch) -> None:
    """On 80 columns the alarm list and an alarm's explanation fold; no line is wider than
    the terminal and no character is lost (`resource/dev…` before)."""
    monkeypatch.setenv("COLUMNS", "80")
    entity = "resource/device-router-core-01.example.net/interface-ge-0/0/1-errors"
    message = ("HTTP check failed: connection refused after 3 attempts to "
               "https://web1.example.net/health (timeout 10s)")
    out = Terminal()
    table(["entity", "state", "status", "acked", "opened (UTC)", "changed (UTC)"],
          [[entity, Level("critical"), Level("ongoing"), "yes", utc(0), utc(60)]],
          fmt="table", out=out)
    table(["time (UTC)", "step", "author", "value", "message"],
          [[utc(0), "stateinc", "system", Level("critical"), message]], fmt="table", out=out,
          important=4)
    import re

    lines = re.sub(r"\x1b\[[0-9;]*m", "", out.getvalue()).splitlines()
    assert max(len(line) for line in lines) <= 80
    split = next(i for i, line in enumerate(lines) if " message" in line)
    first, second = lines[:split], lines[split:]
    head = next(line for line in first if " entity " in line)
    entity_column = "".join(line[:head.index(" state ")].strip() for line in first[2:])
    assert entity in entity_column
    start = second[0].index(" message") + 1
    message_column = " ".join(line[start:].strip() for line in second[1:] if line[start:].strip())
    assert message in message_column


def test_fit_widths_leaves_a_fitting_table_alone() -> None:
    from rich.text import Text

    assert render.fit_widths(["a", "b"], [[Text("1"), Text("x")]], 0, 80) == [None, None]
    wide = [[Text("w" * 200), Text("word " * 30)]]
    assert render.fit_widths(["a", "b"], wide, 0, 80) == [48, 25]
