"""Output of CLI results: a table for people, or CSV / JSON for programs.

Cells are typed, and each format renders a type one way:

============  ==============================  ==========================================
cell          table (terminal or pipe)        CSV and JSON
============  ==============================  ==========================================
``datetime``  ``2026-12-07 12:53:11`` (UTC)   ISO 8601 UTC with ms, ``2026-12-07T12:53:11.250Z``
``float``     6 significant digits            ``repr``: every digit (JSON: a number)
``Level``     coloured on a terminal          the word
``dict``      JSON text                       JSON text (JSON: an object)
============  ==============================  ==========================================

A table is never cut: piped, it is as wide as its widest row; on a terminal, long cells
fold onto more lines. Numbers are right-aligned. Past :data:`LONG_OUTPUT` rows on a
terminal, a note on stderr suggests how to ask for less.
"""

from __future__ import annotations

import csv
import io
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TextIO

import msgspec
from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

LONG_OUTPUT = 1000
IMPORTANT_WIDTH = 48

# One status vocabulary for checks and alarms (docs/cli.md): the check statuses, with an
# alarm's Canopsis state shown as the check status that raises it (model/status.py's map).
STATE_LEVELS = ("ok", "warning", "errored", "critical", "unknown")
_STYLES = {"ok": "green", "partial": "yellow", "warning": "yellow", "critical": "bold red",
           "errored": "magenta", "unknown": "dim"}


class Level(str):
    """A status word (ok, warning, critical, errored, ...): coloured in tables on a terminal."""

    __slots__ = ()


def state_level(state: int) -> Level:
    """An alarm state (0 ok, 1 minor, 2 major, 3 critical, 4 no data) in the one vocabulary."""
    return Level(STATE_LEVELS[state] if 0 <= state < len(STATE_LEVELS) else f"state {state}")


def utc(ts: float | None) -> datetime | None:
    """An epoch timestamp as a time cell."""
    return None if ts is None else datetime.fromtimestamp(ts, tz=UTC)


def when(ts: float | None) -> str:
    """An epoch timestamp as UTC text inside a sentence."""
    moment = utc(ts)
    return "" if moment is None else moment.strftime("%Y-%m-%d %H:%M:%S")


def table(
    headers: Sequence[str],
    rows: Sequence[Sequence[object]],
    *,
    fmt: str,
    title: str | None = None,
    out: TextIO | None = None,
    hint: str = "",
    important: int = 0,
) -> None:
    """Print ``rows`` as ``fmt`` (``table``, ``csv`` or ``json``; ``human`` is ``table``).

    JSON is a list of objects keyed by the headers. ``hint`` says how to ask for fewer rows
    when a table on a terminal runs long; the ``important`` column keeps its room on a
    narrow terminal.
    """
    stream = out or sys.stdout
    if fmt == "json":
        records = [{h: _data(v) for h, v in zip(headers, row, strict=True)} for row in rows]
        stream.write(msgspec.json.format(msgspec.json.encode(records), indent=2).decode() + "\n")
    elif fmt == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(headers)
        writer.writerows([[_csv_cell(v) for v in row] for row in rows])
        stream.write(buffer.getvalue())
    else:
        _print_table(headers, rows, title=title, stream=stream, hint=hint,
                     important=important)


def _print_table(headers: Sequence[str], rows: Sequence[Sequence[object]], *,
                 title: str | None, stream: TextIO, hint: str, important: int) -> None:
    cells = [[_table_cell(v) for v in row] for row in rows]
    numeric = [bool(rows) and all(_is_number(row[i]) or row[i] is None for row in rows)
               for i in range(len(headers))]
    console = Console(file=stream, highlight=False)
    if not console.is_terminal:
        _print_plain(headers, cells, numeric, title, stream)
        return
    if len(rows) > LONG_OUTPUT:
        sys.stderr.write(f"watchkeeper: {len(rows)} rows"
                         f"{'; ' + hint if hint else ''} (-o csv to keep them in a file)\n")
    widths = fit_widths(headers, cells, important, console.width) if headers else []
    grid = Table(title=title, show_lines=False, box=box.SIMPLE_HEAD)
    for index, header in enumerate(headers):
        grid.add_column(header, justify="right" if numeric[index] else "left",
                        overflow="fold", width=widths[index])
    for row_cells in cells:
        grid.add_row(*row_cells)
    console.print(grid)


def _print_plain(headers: Sequence[str], cells: Sequence[Sequence[Text]],
                 numeric: Sequence[bool], title: str | None, stream: TextIO) -> None:
    """Piped: the table's layout as plain text, every column as wide as its widest cell,
    so no program ever reads a cut or folded cell (and 40,000 rows take no time)."""
    texts = [[cell.plain.replace("\n", " ") for cell in row] for row in cells]
    natural = [max([len(header), *(len(row[i]) for row in texts)])
               for i, header in enumerate(headers)]

    def line(values: Sequence[str]) -> str:
        padded = [value.rjust(width) if right else value.ljust(width)
                  for value, width, right in zip(values, natural, numeric, strict=True)]
        return ("  " + "   ".join(padded)).rstrip() + "\n"

    out = [f"  {title}\n"] if title else []
    out.append(line(headers))
    out.append("  " + "   ".join("-" * width for width in natural) + "\n")
    out.extend(line(row) for row in texts)
    stream.write("".join(out))


def fit_widths(headers: Sequence[str], cells: Sequence[Sequence[Text]], important: int,
               width: int) -> list[int | None]:
    """Column widths for a terminal ``width`` wide: none when the table fits; else the
    other columns narrow towards their longest word (widest first) so the ``important``
    one keeps up to IMPORTANT_WIDTH characters, and cells fold, never cut."""
    count = len(headers)
    natural, word = _column_widths(headers, cells)
    padding = 3 * count + 1  # SIMPLE_HEAD: one space each side of a cell, one between
    if sum(natural) + padding <= width:
        return [None] * count
    sized = list(natural)
    sized[important] = min(natural[important], IMPORTANT_WIDTH)
    others = [i for i in range(count) if i != important]
    while sum(sized) + padding > width:
        shrinkable = [i for i in others if sized[i] > word[i]]
        if not shrinkable:
            break
        widest = max(shrinkable, key=lambda i: sized[i])
        sized[widest] = max(word[widest], sized[widest] - (sum(sized) + padding - width))
    if sum(sized) + padding > width:
        sized[important] = max(10, width - padding - sum(sized[i] for i in others))
    return [max(size, 1) for size in sized]


def _column_widths(headers: Sequence[str],
                   cells: Sequence[Sequence[Text]]) -> tuple[list[int], list[int]]:
    """Each column's widest line and longest word, header included (cell widths are their
    character counts: the CLI's cells are plain text)."""
    texts = [[headers[i], *(row[i].plain for row in cells)] for i in range(len(headers))]
    natural = [max(len(line) for text in column for line in text.splitlines() or [""])
               for column in texts]
    word = [max((len(w) for text in column for w in text.split()), default=1)
            for column in texts]
    return natural, word


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _table_cell(value: object) -> Text:
    # Text, not markup: messages may contain [brackets].
    if value is None:
        return Text("")
    if isinstance(value, Level):
        return Text(str(value), style=_STYLES.get(value, ""))
    if isinstance(value, datetime):
        return Text(value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S"))
    if isinstance(value, float):
        return Text(_short_number(value))
    if isinstance(value, (dict, list)):
        return Text(msgspec.json.encode(value).decode())
    return Text(str(value))


def _short_number(value: float) -> str:
    if value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    if 1e6 <= abs(value) < 1e15:
        return f"{value:.1f}"
    return f"{value:.6g}"


def iso(moment: datetime) -> str:
    """ISO 8601 UTC with milliseconds: ``2026-12-07T12:53:11.250Z``."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _csv_cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return iso(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, (dict, list)):
        return msgspec.json.encode(value).decode()
    return str(value)


def _data(value: object) -> object:
    """A JSON value: times as ISO text, everything else as itself."""
    if isinstance(value, datetime):
        return iso(value)
    if isinstance(value, Level):
        return str(value)
    return value
