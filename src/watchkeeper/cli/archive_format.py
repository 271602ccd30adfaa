"""Rows and output of the esmond query tools, in the original tools' layouts.

Every event type has a formatting class (esmond-client's ``EVENT_MAP``) that decides the
columns: the common ``source, destination, event_type, tool, summary_type,
summary_window, timestamp`` and then e.g. ``value``, ``bucket, value`` or the hop fields
of a packet trace. Outputs:

* ``text``: esmond's human layout (``key: value`` lines, entries separated by
  ``= + = + = + = + = + =``), values as Python 2 printed them (floats to 12 digits,
  histograms as ``{u'41.10': 2, u'41.00': 98}``), what ``esmond-ps-*`` print by default;
* ``table``: a Rich table, the default human output of ``watchkeeper archive``;
* ``json``: one JSON array of objects, as esmond printed it (members in its order);
* ``csv``: esmond's columns and ``\\r\\n`` line ends; lists joined with ``", "``.
  Histograms and other objects are written as JSON (esmond wrote Python reprs).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, TextIO

from rich.console import Console
from rich.table import Table

from watchkeeper.cli.archive_py2 import py2_json_order, py2_kwargs_order, py2_str
from watchkeeper.client._archive_models import WirePoint, utc_naive

EVENT_MAP: dict[str, str] = {
    "failures": "failures",
    "histogram-owdelay": "histogram", "histogram-rtt": "histogram",
    "histogram-ttl": "histogram", "histogram-ttl-reverse": "histogram",
    "ntp-delay": "numeric", "ntp-dispersion": "numeric", "ntp-jitter": "numeric",
    "ntp-offset": "numeric", "ntp-polling-interval": "numeric", "ntp-reach": "numeric",
    "ntp-stratum": "numeric", "ntp-wander": "numeric",
    "packet-duplicates": "numeric", "packet-duplicates-bidir": "numeric",
    "packet-loss-rate": "numeric", "packet-loss-rate-bidir": "numeric",
    "packet-trace": "packet_trace",
    "packet-count-lost": "numeric", "packet-count-lost-bidir": "numeric",
    "packet-count-sent": "numeric", "packet-reorders": "numeric",
    "packet-reorders-bidir": "numeric", "packet-retransmits": "numeric",
    "packet-retransmits-subintervals": "subintervals", "path-mtu": "numeric",
    "streams-packet-retransmits": "number_list",
    "streams-packet-retransmits-subintervals": "subinterval_list",
    "streams-throughput": "number_list",
    "streams-throughput-subintervals": "subinterval_list",
    "throughput": "numeric", "throughput-subintervals": "subintervals",
    "time-error-estimates": "numeric",
}

HEADER_BASE = ["source", "destination", "event_type", "tool", "summary_type",
               "summary_window", "timestamp"]
TRACE_FIELDS = ["ttl", "query", "success", "ip", "rtt", "mtu", "error_message"]
STAT_COLUMNS = {"min": "minimum", "median": "median", "max": "maximum", "mean": "mean",
                "mode": "mode", "standard_deviation": "standard-deviation",
                "variance": "variance", "percentile_25": "percentile-25",
                "percentile_75": "percentile-75", "percentile_95": "percentile-95"}
ENTRY_DELIM = "= + = + = + = + = + =\n"
NO_DATA = "No data found."


def kind_of(event_type: str) -> str:
    """The formatting class; event types esmond's tools did not know print raw values."""
    return EVENT_MAP.get(event_type, "raw")


_EXTRA_COLUMNS = {
    "failures": ["msg"],
    "packet_trace": TRACE_FIELDS,
    "subintervals": ["start", "duration", "value"],
    "number_list": ["stream_num", "value"],
    "subinterval_list": ["stream_num", "start", "duration", "value"],
}


def columns(kind: str, summary_type: str | None) -> list[str]:
    """esmond's column layout of a formatting class."""
    if kind == "histogram":
        extra = list(STAT_COLUMNS) if summary_type == "statistics" else ["bucket", "value"]
        return [*HEADER_BASE, *extra]
    return [*HEADER_BASE, *_EXTRA_COLUMNS.get(kind, ["value"])]


def _get(value: Any, key: str) -> Any:
    return value.get(key) if isinstance(value, dict) else None


def rows(kind: str, common: dict[str, Any], points: Iterable[WirePoint], *,
         summary_type: str | None = None, bucket: Any = None) -> Iterator[dict[str, Any]]:
    """The output rows of ``points``; ``common`` holds source..summary_window."""
    for point in points:
        base = {**common, "timestamp": str(utc_naive(point.ts))}
        val = point.val
        if kind == "failures":
            yield {**base, "msg": _get(val, "error")}
        elif kind == "histogram" and summary_type == "statistics":
            yield {**base, **{col: _get(val, key) for col, key in STAT_COLUMNS.items()}}
        elif kind == "histogram":
            yield {**base, "bucket": bucket, "value": val}
        elif kind == "packet_trace":
            for hop in val if isinstance(val, list) else []:
                yield {**base, **{f: _get(hop, f) for f in TRACE_FIELDS}}
        elif kind == "subintervals":
            for sub in val if isinstance(val, list) else []:
                yield {**base, "start": _get(sub, "start"), "duration": _get(sub, "duration"),
                       "value": _get(sub, "val")}
        elif kind == "number_list":
            for num, item in enumerate(val if isinstance(val, list) else []):
                yield {**base, "stream_num": num, "value": item}
        elif kind == "subinterval_list":
            yield from _subinterval_list(base, val)
        else:
            yield {**base, "value": val}


def _subinterval_list(base: dict[str, Any], val: Any) -> Iterator[dict[str, Any]]:
    # Shaped as esmond's formatter reads it (outer list = stream); loaders write it
    # interval-major with 'retransmits'/'throughput' keys, which are read when 'val' is absent.
    for num, items in enumerate(val if isinstance(val, list) else []):
        for sub in items if isinstance(items, list) else []:
            value = _get(sub, "val")
            if value is None:
                value = _get(sub, "throughput") if _get(sub, "throughput") is not None \
                    else _get(sub, "retransmits")
            yield {**base, "stream_num": num, "start": _get(sub, "start"),
                   "duration": _get(sub, "duration"), "value": value}


def cell(value: Any) -> str:
    """A CSV/table cell: lists joined with ', ', objects as JSON, None empty-ish as esmond."""
    if isinstance(value, list):
        return ", ".join(cell(v) if isinstance(v, (dict, list)) else str(v) for v in value)
    if isinstance(value, dict):
        return json.dumps(value, sort_keys=True)
    return str(value)


def text_output(data: Sequence[dict[str, Any]], cols: Sequence[str], *,
                extended: bool = False) -> str:
    """esmond's HumanOutput: ``key: value`` lines, entries separated by a delimiter, values
    as Python 2 printed them (:mod:`.archive_py2`). As esmond does, the fields that hold a
    list in the first entry are joined with ``", "``; a list elsewhere prints as a list."""
    if not data:
        return NO_DATA
    joined = {key for key, value in data[0].items() if isinstance(value, list)}
    out = io.StringIO()
    for row in data:
        for col in cols:
            out.write(f"{col}: {_text(row.get(col), col in joined)}\n")
        if extended:
            for key, value in row.items():
                if key not in cols:
                    out.write(f"{key}: {_text(value, key in joined)}\n")
        out.write(ENTRY_DELIM)
    text = out.getvalue()
    return text[:text.rfind(ENTRY_DELIM)]


def _text(value: Any, joined: bool) -> str:
    if joined and isinstance(value, list):
        return ", ".join(py2_str(v) for v in value)
    return py2_str(value)


def json_output(data: Sequence[dict[str, Any]], *, extended: bool = False) -> str:
    """esmond's JsonOutput: the rows with their members in the order Python 2 gave them
    (``-M`` rows are sorted by key, as esmond sorted them)."""
    if not data:
        return json.dumps([{"msg": NO_DATA}])
    return json.dumps([_json_row(row, extended) for row in data])


def _json_row(row: dict[str, Any], extended: bool) -> dict[str, Any]:
    order = sorted(row) if extended else py2_kwargs_order(list(row))
    return {key: py2_json_order(row[key]) for key in order}


class CsvWriter:
    """esmond's CSVOutput, streaming: header once, then rows as they come."""

    def __init__(self, stream: TextIO, cols: Sequence[str]) -> None:
        self._writer = csv.writer(stream, lineterminator="\r\n")
        self._cols = list(cols)

    def header(self) -> None:
        self._writer.writerow(self._cols)

    def write(self, data: Iterable[dict[str, Any]]) -> int:
        count = 0
        for row in data:
            self._writer.writerow(["" if row.get(c) is None else cell(row.get(c))
                                   for c in self._cols])
            count += 1
        return count


def csv_output(data: Sequence[dict[str, Any]], cols: Sequence[str]) -> str:
    out = io.StringIO()
    writer = CsvWriter(out, cols)
    writer.header()
    if data:
        writer.write(data)
    else:
        writer.write([dict.fromkeys(cols, "No data")])
    return out.getvalue()


def table_output(data: Sequence[dict[str, Any]], cols: Sequence[str], stream: TextIO, *,
                 title: str | None = None, extended: bool = False) -> None:
    """A Rich table (extra keys of -M become columns too)."""
    if not data:
        stream.write(NO_DATA + "\n")
        return
    names = list(cols)
    if extended:
        names += [k for row in data for k in row if k not in names]
        names = list(dict.fromkeys(names))
    grid = Table(title=title)
    for name in names:
        grid.add_column(name)
    cells = [["" if row.get(n) is None else cell(row.get(n)) for n in names] for row in data]
    for values in cells:
        grid.add_row(*values)
    # Not a terminal: as wide as the content, so nothing is cut when piped or saved.
    widths = [max([len(n), *(len(v[i]) for v in cells)]) + 3 for i, n in enumerate(names)]
    isatty = getattr(stream, "isatty", lambda: False)()
    Console(file=stream, soft_wrap=True,
            width=None if isatty else max(80, sum(widths) + 1)).print(grid)


def render(fmt: str, data: Sequence[dict[str, Any]], cols: Sequence[str], stream: TextIO, *,
           extended: bool = False, title: str | None = None) -> None:
    """Print ``data`` as ``fmt`` (text, table, json, csv), as the esmond tools print."""
    if fmt == "table":
        table_output(data, cols, stream, title=title, extended=extended)
    elif fmt == "json":
        stream.write(json_output(data, extended=extended) + "\n")
    elif fmt == "csv":
        stream.write(csv_output(data, cols) + "\n")
    else:
        stream.write(text_output(data, cols, extended=extended) + "\n")
