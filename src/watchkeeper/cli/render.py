"""Output of CLI results as a Rich table (human), JSON or CSV."""

from __future__ import annotations

import csv
import io
import sys
from collections.abc import Sequence
from typing import TextIO

import msgspec
from rich.console import Console
from rich.table import Table

FORMATS = ("human", "json", "csv")


def table(
    headers: Sequence[str],
    rows: Sequence[Sequence[object]],
    *,
    fmt: str,
    title: str | None = None,
    out: TextIO | None = None,
) -> None:
    """Print rows in ``fmt``; JSON is a list of objects keyed by the headers."""
    stream = out or sys.stdout
    if fmt == "json":
        records = [dict(zip(headers, row, strict=True)) for row in rows]
        stream.write(msgspec.json.format(msgspec.json.encode(records), indent=2).decode() + "\n")
    elif fmt == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(headers)
        writer.writerows([["" if v is None else _cell(v) for v in row] for row in rows])
        stream.write(buffer.getvalue())
    else:
        grid = Table(title=title, show_lines=False)
        for header in headers:
            grid.add_column(header)
        for row in rows:
            grid.add_row(*("" if v is None else _cell(v) for v in row))
        Console(file=stream, soft_wrap=True).print(grid)


def _cell(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, dict):
        return msgspec.json.encode(value).decode()
    return str(value)
