"""InfluxDB line protocol, parsed and mapped to series (pure; no I/O).

``measurement[,tag=v...] field=v[,field=v...] [timestamp]``, escaping per the spec
(measurement: comma and space; tag keys and values, field keys: comma, equals sign and
space; string field values: double quote and backslash). Field values: floats,
``1i`` integers, ``1u`` unsigned, ``"strings"``, booleans ``t/T/true/True/TRUE`` and
the false forms.

Mapping (docs/ecosystem.md): field ``F`` of measurement ``M`` with tags ``T``, written to
database (or bucket) ``D``, is series ``<host tag or "influx">/<D>/<M>.<F>{T without host}``.
Characters a watchkeeper name cannot hold become ``_``; tag keys become identifiers.
Numbers are stored as numbers, booleans as 1/0, strings as object points (their series
holds strings only). A batch is parsed whole before anything is stored: one bad line
refuses the batch, naming the line.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from typing import Final

import numpy as np

from watchkeeper.errors import InvalidData

PRECISIONS: Final = {"n": 1e-9, "ns": 1e-9, "u": 1e-6, "us": 1e-6, "µ": 1e-6, "ms": 1e-3,
                     "s": 1.0, "m": 60.0, "h": 3600.0}
TRUE: Final = frozenset({"t", "T", "true", "True", "TRUE"})
FALSE: Final = frozenset({"f", "F", "false", "False", "FALSE"})
_NOT_NAME = re.compile(r"[^A-Za-z0-9_.:@-]")
_NOT_IDENT = re.compile(r"[^A-Za-z0-9_]")
_FLOAT = re.compile(r"^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$")
_INT = re.compile(r"^[+-]?\d+[iu]$")
_PLAIN = (r'([^\s,\\"#][^\s\\"]*) ([^\s,=\\"]+)='
          r"([+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?) (-?\d{1,19})")
_PLAIN_LINE = re.compile(rf"^{_PLAIN}$", re.ASCII | re.MULTILINE)
_VALUE = (r"(?:[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|[+-]?\d+i|\d+u"
          r"|t|T|true|True|TRUE|f|F|false|False|FALSE)")
_FIELDS_LINE = re.compile(
    rf'^([^\s,\\"#][^\s\\"]*) ((?:[^\s,=\\"]+={_VALUE},)*[^\s,=\\"]+={_VALUE}) (-?\d{{1,19}})$',
    re.ASCII | re.MULTILINE)


@dataclass
class Batch:
    """Parsed points: numbers (series text, seconds, value) and strings (series, ts, text)."""

    numbers: list[tuple[str, float, float]] = field(default_factory=list)
    strings: list[tuple[str, float, str]] = field(default_factory=list)


class LineError(InvalidData):
    """A line that does not parse; ``line`` is its text, ``number`` its 1-based position."""

    def __init__(self, reason: str, *, line: str, number: int) -> None:
        self.reason = reason
        self.line = line
        self.number = number
        super().__init__(f"unable to parse '{line[:1000]}' (line {number}): {reason}",
                         field="body", value=number)


def parse(text: str, *, database: str, precision: str, now: float) -> Batch:
    """Every point of a body; :class:`LineError` for the first bad line."""
    scale = PRECISIONS.get(precision)
    if scale is None:
        raise InvalidData(f"unknown precision, use one of {', '.join(PRECISIONS)}",
                          field="precision", value=precision)
    plugin = plugin_of(database)
    plain = _plain(text, plugin, scale)
    if plain is not None:
        return plain
    batch = Batch()
    for number, raw in enumerate(text.split("\n"), start=1):
        line = raw.strip(" \t\r")
        if not line or line.startswith("#"):
            continue
        try:
            parts = line.split(" ")
            if len(parts) == 3 and "," not in parts[1] and "\\" not in line \
                    and '"' not in line:  # the usual line: one plain numeric field
                key, eq, value = parts[1].partition("=")
                batch.numbers.append((key_text(parts[0], _field_key(key, eq, parts[1]), plugin),
                                      _stamp(parts[2], scale), _number(value)))
            else:
                _parse_line(line, plugin, scale, now, batch)
        except BadLine as exc:
            raise LineError(str(exc), line=line, number=number) from None
    return batch


def plugin_of(database: str) -> str:
    """The plugin part of the series keys of a database's (or bucket's) points."""
    return _name(database)


def _plain(text: str, plugin: str, scale: float) -> Batch | None:
    """A body of plain lines only (``series field=number timestamp``: no escapes, quotes,
    comments or second fields, as Telegraf mostly sends), read by two regular-expression
    passes and numpy; None for any other body, or a series part that does not parse
    (the line-by-line reader then reads it, or names the bad line)."""
    lines = text.count("\n") + (not text.endswith("\n"))
    found = _PLAIN_LINE.findall(text)  # whole lines only: one match per plain line
    if len(found) != lines:  # some line is not plain (or the body is empty)
        return _plain_fields(text, lines, plugin, scale)
    try:
        texts = [key_text(series, key, plugin) for series, key, _, _ in found]
        values = np.array([value for _, _, value, _ in found], dtype=np.float64)
        stamps = np.array([stamp for _, _, _, stamp in found], dtype=np.int64) * scale
    except (BadLine, OverflowError, ValueError):
        return None
    return Batch(numbers=list(zip(texts, stamps.tolist(), values.tolist(), strict=True)))


def _plain_fields(text: str, lines: int, plugin: str, scale: float) -> Batch | None:
    """A body of lines with unescaped number or boolean fields (Telegraf's usual), read by
    one regular-expression pass and a short loop per field; else None."""
    found = _FIELDS_LINE.findall(text)
    if len(found) != lines:
        return None
    numbers: list[tuple[str, float, float]] = []
    try:
        for series, fields, stamp in found:
            when = int(stamp) * scale
            for pair in fields.split(","):
                key, _, value = pair.partition("=")
                numbers.append((key_text(series, key, plugin), when, _plain_number(value)))
    except BadLine:
        return None
    return Batch(numbers=numbers)


def _plain_number(value: str) -> float:
    """A value the plain-line pattern admitted: a float, ``i``/``u`` integer or boolean."""
    last = value[-1]
    if last in "iu":
        return float(int(value[:-1]))
    if last.isdigit() or last == ".":
        return float(value)
    return 1.0 if value in TRUE else 0.0


class BadLine(Exception):
    """A reason a line does not parse (caught and given the line by :func:`parse`)."""


def _parse_line(line: str, plugin: str, scale: float, now: float, batch: Batch) -> None:
    parts = _split(line, " ") if "\\" in line or '"' in line else line.split(" ")
    parts = [p for p in parts if p]  # runs of spaces separate too
    if len(parts) < 2:
        raise BadLine("missing fields")
    if len(parts) > 3:
        raise BadLine("invalid field format (unescaped space?)")
    head, suffix = _head(parts[0], plugin)
    stamp = _stamp(parts[2], scale) if len(parts) == 3 else now
    for pair in _split(parts[1], ","):
        key, eq, raw = _partition(pair)
        if not eq or not key:
            raise BadLine(f"invalid field format {pair!r}")
        text = f"{head}{_name(key)}{suffix}"
        if raw.startswith('"'):
            batch.strings.append((text, stamp, _string(raw)))
        else:
            batch.numbers.append((text, stamp, _number(raw)))


def _field_key(key: str, eq: str, pair: str) -> str:
    if not eq or not key:
        raise BadLine(f"invalid field format {pair!r}")
    return key


def _stamp(text: str, scale: float) -> float:
    try:
        return int(text) * scale
    except ValueError:
        raise BadLine(f"bad timestamp {text!r}") from None


@functools.lru_cache(maxsize=200_000)
def key_text(series: str, field: str, plugin: str) -> str:
    """The series key of a field (its key without escapes) of a ``measurement,tags`` part."""
    head, suffix = _head(series, plugin)
    return f"{head}{_name(field)}{suffix}"


@functools.lru_cache(maxsize=100_000)
def _head(series: str, plugin: str) -> tuple[str, str]:
    """The key text around the field name of a line's ``measurement,tags`` part,
    remembered: a sender repeats the same series every interval."""
    measurement, subject, labels = _series(series)
    suffix = ""
    if labels:
        suffix = "{" + ",".join(f'{k}="{_escape(v)}"' for k, v in sorted(labels.items())) + "}"
    return f"{subject}/{plugin}/{_name(measurement)}.", suffix


def _series(text: str) -> tuple[str, str, dict[str, str]]:
    """Measurement, subject (the host tag or ``influx``) and the other tags."""
    series, *tags = _split(text, ",")
    measurement = _unescape(series)
    if not measurement:
        raise BadLine("missing measurement")
    subject = "influx"
    labels: dict[str, str] = {}
    for tag in tags:
        key, eq, value = _partition(tag, tag=True)
        if not eq or not key or not value:
            raise BadLine(f"missing tag key or value in {tag!r}")
        if key == "host":
            subject = _name(value)
        else:
            labels[_ident(key)] = value
    return measurement, subject, labels


def _number(raw: str) -> float:
    if raw in TRUE:
        return 1.0
    if raw in FALSE:
        return 0.0
    if _INT.match(raw):
        if raw.endswith("u") and raw.startswith("-"):
            raise BadLine(f"unsigned value {raw!r} is negative")
        return float(int(raw[:-1]))
    if _FLOAT.match(raw):
        return float(raw)
    raise BadLine(f"invalid number {raw!r}" if raw else "missing field value")


def _string(raw: str) -> str:
    if len(raw) < 2 or not raw.endswith('"') or (raw.endswith('\\"') and not raw.endswith('\\\\"')):
        raise BadLine(f"unterminated string {raw[:50]!r}")
    return re.sub(r'\\([\\"])', r"\1", raw[1:-1])


def _escaped_end(raw: str) -> bool:
    """Whether the closing quote is escaped (an odd run of backslashes before it)."""
    run = len(raw) - 1 - len(raw[:-1].rstrip("\\"))
    return run % 2 == 1


def _split(text: str, sep: str) -> list[str]:
    """``text`` split at ``sep`` outside backslash escapes and double-quoted strings."""
    if "\\" not in text and '"' not in text:
        return text.split(sep)
    parts: list[str] = []
    start = 0
    quoted = False
    chars = iter(enumerate(text))
    for i, char in chars:
        if char == "\\":
            next(chars, None)
        elif char == '"':
            quoted = not quoted
        elif char == sep and not quoted:
            parts.append(text[start:i])
            start = i + 1
    if quoted:
        raise BadLine("unterminated string")
    parts.append(text[start:])
    return parts


def _partition(text: str, *, tag: bool = False) -> tuple[str, str, str]:
    """Split at the first unescaped ``=``: (unescaped key, '=' or '', value), the value
    unescaped for a tag and left raw for a field (a string field has its own escapes)."""
    if "\\" not in text:
        key, eq, value = text.partition("=")
        return key, eq, value
    i = 0
    while i < len(text):
        if text[i] == "\\":
            i += 2
            continue
        if text[i] == "=":
            value = text[i + 1:]
            return _unescape(text[:i]), "=", _unescape(value) if tag else value
        i += 1
    return _unescape(text), "", ""


def _unescape(text: str) -> str:
    return re.sub(r"\\([, =\\])", r"\1", text) if "\\" in text else text


@functools.lru_cache(maxsize=100_000)
def _name(text: str) -> str:
    return _NOT_NAME.sub("_", text) or "_"


def _ident(text: str) -> str:
    name = _NOT_IDENT.sub("_", text)
    return f"_{name}" if not name or name[0].isdigit() else name


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")

