"""Line-protocol bodies of plain lines, read by numpy a body at a time (pure; no I/O).

A plain line is ``series key=number[,key=number...] timestamp``: printable ASCII, no
escape, quote or comment, each field a float or an ``i`` or ``u`` integer, a timestamp: what
Telegraf's ``outputs.influxdb`` sends (one line per input's metric, often several fields)
and the ecosystem benchmark's bodies. Lines may hold different numbers of fields. The
body's bytes are searched for newlines, spaces, ``=`` and commas in a few numpy passes
that also check each line has exactly that form; values and timestamps are parsed in
bulk. A field's series is named by its line's ``series `` text and its ``key=``; the
body's *skeleton* is those texts as fixed-width rows, with each line's field count. A
body whose skeleton equals one read before holds the same series in the same order (a
sender repeating its series every interval), so their keys are taken whole from then;
otherwise each field's ``series key=`` text is looked up (remembered, bounded) and only
new ones are mapped, by :func:`lineprotocol.key_text`. Anything else, or anything a
plain line cannot be, returns None: the general parser reads the body, and names a bad
line (decisions D41 and D49, figures in docs/performance.md).
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Final, NamedTuple

import numpy as np

from watchkeeper.api.ingest import decimals
from watchkeeper.api.ingest.decimals import Floats, Grid, Positions
from watchkeeper.api.ingest.lineprotocol import BadLine, key_text
from watchkeeper.archive import Columns

_SKELETON_BUDGET: Final = 4  # skeleton rows up to 4x the body (one long line: general parser)
_TOKEN_PREFIX: Final = b"line-protocol:"
_NOT_INTEGER: Final = np.isin(np.arange(256), list(b".eE"))  # bytes a float has, not an int
_LINE: Final = np.frombuffer(b"  \n", dtype=np.uint8)  # a line's separators, in order
SPACE, EQUALS, COMMA, HASH = (ord(c) for c in " =,#")
INTEGER_MARK, UNSIGNED_MARK = ord("i"), ord("u")
MINUS: Final = ord("-")


@dataclass(frozen=True, eq=False)
class _Seen:
    """A skeleton read before, with its fields' series keys and their token."""

    skeleton: bytes
    keys: list[str]
    token: bytes


class _Lines(NamedTuple):
    """Where each line starts, its two spaces and its newline."""

    starts: Positions
    firsts: Positions
    seconds: Positions
    ends: Positions


class _Fields(NamedTuple):
    """Each field's key start, ``=`` and value end (its comma, or its line's second
    space), in line order then field order; and each line's number of fields."""

    keys: Positions
    equals: Positions
    stops: Positions
    counts: Positions


class PlainReader:
    """Reads plain bodies, remembering series keys by field text (``remember`` of them)
    and the skeletons of the last ``bodies`` bodies (at most ``limit`` bytes)."""

    def __init__(self, *, remember: int = 1_000_000, bodies: int = 8,
                 limit: int = 64 * 1024 * 1024) -> None:
        self._keys: dict[str, dict[bytes, str]] = {}  # plugin -> field text -> key
        self._known = 0
        self._remember = remember
        self._seen: OrderedDict[tuple[str, int, int, int, int], _Seen] = OrderedDict()
        self._bodies = bodies
        self._limit = limit
        self._lock = threading.Lock()  # large bodies are read on worker threads

    def read(self, body: bytes, *, plugin: str, scale: float) -> Columns | None:
        """The points of a plain body (``plugin`` names the database, ``scale`` the
        seconds of one timestamp unit); None when some line is not plain.

        Every byte is checked: separators by the scans, values and timestamps by their
        parse, the rest (each field's ``series key=``) by :meth:`_keys_of` when first
        seen, or by being equal to a skeleton checked before."""
        if not body:
            return None
        data = body if body.endswith(b"\n") else body + b"\n"
        octets = np.frombuffer(data, dtype=np.uint8)
        lines = _lines(octets)
        fields = _fields(octets, lines) if lines is not None else None
        if lines is None or fields is None:
            return None
        values = _values(data, octets, fields)
        stamps = decimals.stamps(data, lines.seconds + 1, lines.ends)
        rows = _skeleton(data, lines, fields)
        if values is None or stamps is None or rows is None:
            return None
        series, names = rows
        skeleton = b"".join((series.tobytes(), names.tobytes(),
                             fields.counts.astype(np.int32).tobytes()))
        shape = (plugin, len(lines.starts), len(values), series.shape[1], names.shape[1])
        seen = self._seen.get(shape)
        if seen is None or seen.skeleton != skeleton:
            keys = self._keys_of(_texts(series, names, fields.counts), plugin)
            if keys is None:
                return None
            seen = _Seen(skeleton, keys, _TOKEN_PREFIX + os.urandom(16))
            self._keep(shape, seen)
        if len(values) != len(stamps):  # several fields on some line: each gets its stamp
            stamps = np.repeat(stamps, fields.counts)
        return Columns(series=seen.keys, index=np.arange(len(values), dtype=np.int32),
                       ts=np.multiply(stamps, scale, dtype=np.float64), values=values,
                       series_token=seen.token)

    def _keys_of(self, texts: list[bytes], plugin: str) -> list[str] | None:
        """The key of each field's ``series key=`` text (padded with NUL bytes); None for
        a text a plain line cannot hold (the general parser then reads the body, or names
        the line)."""
        known = self._keys.setdefault(plugin, {})
        keys = list(map(known.get, texts))
        if None in keys:
            for i, text in enumerate(texts):
                if keys[i] is None:
                    plain = text.replace(b"\0", b"")
                    if not (plain.isascii() and plain.decode("ascii").isprintable()) \
                            or b"\\" in plain or b'"' in plain:
                        return None
                    series, _, field = plain.decode("ascii")[:-1].partition(" ")
                    if "," in field:  # a bad field (one field a line is not scanned for it)
                        return None
                    try:
                        keys[i] = known[text] = key_text(series, field, plugin)
                    except BadLine:  # the general parser names the line
                        return None
                    self._known += 1
            if self._known > self._remember:
                self._keys.clear()
                self._known = 0
        return keys  # type: ignore[return-value]  # every None was replaced

    def _keep(self, shape: tuple[str, int, int, int, int], seen: _Seen) -> None:
        if len(seen.skeleton) > self._limit:
            return
        with self._lock:
            self._seen.pop(shape, None)
            self._seen[shape] = seen
            while (len(self._seen) > self._bodies
                   or sum(len(s.skeleton) for s in self._seen.values()) > self._limit):
                self._seen.popitem(last=False)


def _lines(octets: Grid) -> _Lines | None:
    """Each line's start, two spaces and newline, if every line is ``series fields
    timestamp`` with each part non-empty and no comment."""
    separators = np.flatnonzero(octets <= SPACE)  # one scan for both (and control bytes)
    if len(separators) % 3 or not (octets[separators].reshape(-1, 3) == _LINE).all():
        return None  # not space, space, newline on every line
    first, second, ends = separators[0::3], separators[1::3], separators[2::3]
    starts = np.concatenate(([0], ends[:-1] + 1))
    if not ((first > starts) & (second + 1 < ends)).all() or (octets[starts] == HASH).any():
        return None
    return _Lines(starts, first, second, ends)


def _fields(octets: Grid, lines: _Lines) -> _Fields | None:
    """The fields of each line's middle part, if it is ``key=value[,key=value...]``: as
    many ``=`` as commas plus one, alternating, keys and values non-empty. (An ``=`` or a
    comma in a value fails this; any other byte, the value's parse or the key's check.)"""
    equals = np.flatnonzero(octets == EQUALS)
    low = np.searchsorted(equals, lines.firsts)
    counts = np.searchsorted(equals, lines.seconds) - low
    if (counts == 1).all():  # one field a line: no comma scan (a comma fails the value's
        field = equals[low]  # parse, or the key's check)
        if not ((lines.firsts + 1 < field) & (field + 1 < lines.seconds)).all():
            return None
        return _Fields(lines.firsts + 1, field, lines.seconds, counts)
    commas = np.flatnonzero(octets == COMMA)
    comma_low = np.searchsorted(commas, lines.firsts)
    if not (counts > 0).all() or not (
            np.searchsorted(commas, lines.seconds) - comma_low == counts - 1).all():
        return None
    at = _ranges(low, counts)
    between = commas[_ranges(comma_low, counts - 1)]
    firsts = np.cumsum(counts) - counts  # each line's first field
    lead = np.zeros(len(at), dtype=np.bool_)
    lead[firsts] = True
    last = np.zeros(len(at), dtype=np.bool_)
    last[firsts + counts - 1] = True
    before = np.empty(len(at), dtype=np.intp)  # the space or comma before each key
    before[lead] = lines.firsts
    before[~lead] = between
    stops = np.empty(len(at), dtype=np.intp)
    stops[last] = lines.seconds
    stops[~last] = between
    field = equals[at]
    if not ((before + 1 < field) & (field + 1 < stops)).all():
        return None
    return _Fields(before + 1, field, stops, counts)


def _ranges(starts: Positions, counts: Positions) -> Positions:
    """``starts[i], starts[i] + 1, ... starts[i] + counts[i] - 1`` for every i, in order."""
    total = int(counts.sum())
    offsets = np.cumsum(counts) - counts
    return np.repeat(starts - offsets, counts) + np.arange(total)


def _values(data: bytes, octets: Grid, fields: _Fields) -> Floats | None:
    """Each field's value: a float, or an ``i`` integer (digits with an optional sign) or
    a ``u`` one (no minus)."""
    starts, stops = fields.equals + 1, fields.stops
    marks = octets[stops - 1]
    integers = (marks == INTEGER_MARK) | (marks == UNSIGNED_MARK)
    if not integers.any():
        return decimals.floats(data, starts, stops)
    stops = stops - integers
    if not (stops > starts).all():  # "i" alone
        return None
    values = decimals.floats(data, starts, stops)
    if values is None:
        return None
    texts = decimals.byte_grid(data, starts[integers], stops[integers], right=False)
    if texts is None or _NOT_INTEGER[texts].any():
        return None  # "1.5i", "1e3i": the general parser names the line
    if ((marks[integers] == UNSIGNED_MARK) & (texts[:, 0] == MINUS)).any():
        return None  # "-1u": likewise
    return values


def _skeleton(data: bytes, lines: _Lines, fields: _Fields) -> tuple[Grid, Grid] | None:
    """Each line's ``series `` and each field's ``key=`` as rows of zeros after them (a
    few gathers); None when the rows would be much larger than the body (one long line
    among short ones)."""
    series_width = int((lines.firsts + 1 - lines.starts).max())
    name_width = int((fields.equals + 1 - fields.keys).max())
    if (len(lines.starts) * series_width + len(fields.keys) * name_width
            > _SKELETON_BUDGET * len(data)):
        return None
    return (_text_rows(data, lines.starts, lines.firsts + 1, series_width),
            _text_rows(data, fields.keys, fields.equals + 1, name_width))


def _text_rows(data: bytes, starts: Positions, stops: Positions, width: int) -> Grid:
    """Row i: ``data[starts[i]:stops[i]]`` followed by zeros, ``width`` wide."""
    padded = data + bytes(width)
    windows = np.ndarray(shape=(len(data) + 1,), dtype=f"V{width}", buffer=padded,
                         strides=(1,))
    rows: Grid = windows[starts].view(np.uint8).reshape(len(starts), width)
    rows *= decimals.gather_rows(decimals.columns_before(width), stops - starts)
    return rows


def _texts(series: Grid, names: Grid, counts: Positions) -> list[bytes]:
    """Each field's ``series key=`` text: its line's series row, then its key row (zero
    bytes between and after; a text holds none)."""
    if len(names) != len(series):
        series = np.repeat(series, counts, axis=0)
    rows = np.hstack((series, names))
    texts: list[bytes] = rows.view(f"S{rows.shape[1]}").ravel().tolist()
    return texts
