"""Line-protocol bodies of plain lines, read by numpy a body at a time (pure; no I/O).

A plain line is ``series field=number timestamp``: printable ASCII, no escape, quote or
comment, one field holding a float, a timestamp: what Telegraf sends for one-field
measurements, and the ecosystem benchmark's body. The body's bytes are searched for
newlines, spaces, ``=`` and commas in a few numpy passes that also check each line has
exactly that form; values and timestamps are parsed in bulk. A line's series is named by
its text up to the ``=`` (``series field``); the body with each line's value and
timestamp cut out is its *skeleton*. A body whose skeleton equals one read before holds
the same series in the same order (a sender repeating its series every interval), so
their keys are taken whole from then; otherwise each line's series is looked up by its
text (remembered, bounded) and only new ones are mapped, by :func:`lineprotocol.key_text`.
Anything else, or anything a plain line cannot be, returns None: the general parser
reads the body, and names a bad line (decision D41, figures in docs/performance.md).
"""

from __future__ import annotations

import functools
import os
import re
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Final, NamedTuple

import numpy as np
import numpy.typing as npt

from watchkeeper.api.ingest.lineprotocol import BadLine, key_text
from watchkeeper.archive import Columns

_FLOAT_BYTES: Final = np.isin(np.arange(256), list(b"0123456789.eE+-"))
_MAX_WIDTH: Final = 32  # longer values or timestamps: the general parser
_MAX_PREFIX: Final = 256  # longer "series key=" texts: the skeleton is built otherwise
_EXACT_DIGITS: Final = 14  # with the point as a digit, still below 2**53: exact
_POWERS: Final = 10.0 ** np.arange(_MAX_WIDTH + 1)  # exact up to 10**22
_POWERS_INT: Final = 10 ** np.arange(19, dtype=np.int64)
_TOKEN_PREFIX: Final = b"line-protocol:"
_INTEGER: Final = re.compile(rb"-?[0-9]{1,19}")
_LINE: Final = np.frombuffer(b"  \n", dtype=np.uint8)  # a line's separators, in order
NEWLINE, SPACE, EQUALS, HASH, MINUS, PLUS = (ord(c) for c in "\n =#-+")

Positions = npt.NDArray[np.intp]
Grid = npt.NDArray[np.uint8]
Floats = npt.NDArray[np.float64]
Stamps = npt.NDArray[np.int64]


@dataclass(frozen=True, eq=False)
class _Seen:
    """A skeleton read before, with its lines' series keys and their token."""

    skeleton: bytes
    keys: list[str]
    token: bytes


class PlainReader:
    """Reads plain bodies, remembering series keys by line text (``remember`` of them)
    and the skeletons of the last ``bodies`` bodies (at most ``limit`` bytes)."""

    def __init__(self, *, remember: int = 1_000_000, bodies: int = 8,
                 limit: int = 64 * 1024 * 1024) -> None:
        self._keys: dict[str, dict[bytes, str]] = {}  # plugin -> line text -> key
        self._known = 0
        self._remember = remember
        self._seen: OrderedDict[tuple[str, int, int], _Seen] = OrderedDict()
        self._bodies = bodies
        self._limit = limit
        self._lock = threading.Lock()  # large bodies are read on worker threads

    def read(self, body: bytes, *, plugin: str, scale: float) -> Columns | None:
        """The points of a plain body (``plugin`` names the database, ``scale`` the
        seconds of one timestamp unit); None when some line is not plain.

        Every byte is checked: separators by the scans, values and timestamps by their
        parse, the rest (each line's ``series key=``) by :meth:`_keys_of` when first
        seen, or by being equal to a skeleton checked before."""
        if not body:
            return None
        data = body if body.endswith(b"\n") else body + b"\n"
        lines = _lines(data)
        if lines is None:
            return None
        starts, equals, spaces, ends = lines
        values = _floats(data, equals + 1, spaces)
        stamps = _stamps(data, spaces + 1, ends)
        if values is None or stamps is None:
            return None
        skeleton, width = _skeleton(data, starts, equals + 1, ends)
        shape = (plugin, len(starts), width)
        seen = self._seen.get(shape)
        if seen is None or seen.skeleton != skeleton:
            keys = self._keys_of(_texts(skeleton, width), plugin)
            if keys is None:
                return None
            seen = _Seen(skeleton, keys, _TOKEN_PREFIX + os.urandom(16))
            self._keep(shape, seen)
        return Columns(series=seen.keys, index=np.arange(len(starts), dtype=np.int32),
                       ts=np.multiply(stamps, scale, dtype=np.float64), values=values,
                       series_token=seen.token)

    def _keys_of(self, texts: list[bytes], plugin: str) -> list[str] | None:
        """The key of each line's ``series key=`` text; None for a text a plain line
        cannot hold (the general parser then reads the body, or names the line)."""
        known = self._keys.setdefault(plugin, {})
        keys = list(map(known.get, texts))
        if None in keys:
            for i, text in enumerate(texts):
                if keys[i] is None:
                    if not (text.isascii() and text.decode("ascii").isprintable()) \
                            or b"\\" in text or b'"' in text:
                        return None
                    series, _, field = text.decode("ascii")[:-1].partition(" ")
                    if "," in field:  # a second field, or a bad one
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

    def _keep(self, shape: tuple[str, int, int], seen: _Seen) -> None:
        if len(seen.skeleton) > self._limit:
            return
        with self._lock:
            self._seen.pop(shape, None)
            self._seen[shape] = seen
            while (len(self._seen) > self._bodies
                   or sum(len(s.skeleton) for s in self._seen.values()) > self._limit):
                self._seen.popitem(last=False)


def _lines(data: bytes) -> tuple[Positions, Positions, Positions, Positions] | None:
    """Each line's start, first ``=`` after its first space, second space and newline, if
    every line is ``series key=value timestamp`` with each part non-empty and no comment.
    (A second field, an ``=`` or a comma in the value, fails the value's parse; a comma in
    the key, :meth:`PlainReader._keys_of`.)"""
    octets = np.frombuffer(data, dtype=np.uint8)
    separators = np.flatnonzero(octets <= SPACE)  # one scan for both (and control bytes)
    if len(separators) % 3 or not (octets[separators].reshape(-1, 3) == _LINE).all():
        return None  # not space, space, newline on every line
    first, second, ends = separators[0::3], separators[1::3], separators[2::3]
    starts = np.concatenate(([0], ends[:-1] + 1))
    if not (first > starts).all():
        return None
    equals = np.flatnonzero(octets == EQUALS)
    at = np.searchsorted(equals, first)
    if at[-1] >= len(equals):
        return None
    field = equals[at]
    if not ((field > first + 1) & (field + 1 < second) & (second + 1 < ends)).all() \
            or (octets[starts] == HASH).any():
        return None
    return starts, field, second, ends


def _floats(data: bytes, starts: Positions, stops: Positions) -> Floats | None:
    """The floats written at ``data[starts[i]:stops[i]]``, parsed as Python parses them
    (with the characters admitted, that is the line protocol's float grammar); None if
    one does not parse. Up to 14 digits and no exponent, each is its digits as an integer
    divided by a power of ten, both exact in a float64, so the quotient is the correctly
    rounded value, as ``float()`` gives it; anything else goes through ``float()``."""
    grid = _grid(data, starts, stops)
    if grid is None:
        return None
    digits = _digits(grid.copy(), stops - starts, fractions=True)
    if digits is None or digits.lengths.max() > _EXACT_DIGITS:
        if not _FLOAT_BYTES[grid].all():
            return None
        texts = _grid(data, starts, stops, right=False)
        assert texts is not None  # as wide as grid
        try:  # numpy parses bytes as float() does
            return texts.view(f"S{grid.shape[1]}").ravel().astype(np.float64)
        except ValueError:
            return None
    width = grid.shape[1]
    whole = (digits.matrix.astype(np.float64) @ _places(width)).astype(np.int64)  # exact
    decimals = np.zeros(len(whole), dtype=np.intp)
    if len(digits.point_rows):  # the point counted as a 0 digit: the digits before it 10x
        rows, places = digits.point_rows, width - 1 - digits.point_columns
        scaled = whole[rows]
        after = scaled % _POWERS_INT[places]
        whole[rows] = (scaled - after) // 10 + after
        decimals[rows] = places
    values = whole.astype(np.float64)
    values /= _POWERS[decimals]
    return np.where(digits.negative, -values, values)


def _stamps(data: bytes, starts: Positions, stops: Positions) -> Stamps | None:
    """The integers ``-?[0-9]+`` at ``data[starts[i]:stops[i]]`` that an int64 holds
    (19 digits, nanoseconds, included)."""
    width = int(stops[0] - starts[0])
    if ((stops - starts) == width).all():  # one width: maybe one timestamp for all
        texts = np.ndarray(shape=(len(data) - width + 1,), dtype=f"V{width}", buffer=data,
                           strides=(1,))[starts]  # V, not S: S drops trailing NUL bytes
        if (texts == texts[0]).all():
            text = texts[0].tobytes()
            stamp = int(text) if _INTEGER.fullmatch(text) else None
            if stamp is None or not -(2**63) < stamp < 2**63:
                return None
            return np.full(len(starts), stamp, dtype=np.int64)
    grid = _grid(data, starts, stops)
    if grid is None:
        return None
    digits = _digits(grid, stops - starts, fractions=False)
    if digits is None or digits.lengths.max() > 19:
        return None
    width = grid.shape[1]
    low = min(width, 9)  # two parts of up to 10 and 9 digits, each exact in a float64
    matrix = digits.matrix.astype(np.float64)
    high = (matrix[:, :width - low] @ _places(width - low)).astype(np.int64)
    rest = (matrix[:, width - low:] @ _places(low)).astype(np.int64)
    most_high, most_rest = divmod(2**63 - 1, 10**9)
    if ((high > most_high) | ((high == most_high) & (rest > most_rest))).any():
        return None
    stamps = high * 10**9 + rest
    return np.where(digits.negative, -stamps, stamps)


def _grid(data: bytes, starts: Positions, stops: Positions, *, right: bool = True
          ) -> Grid | None:
    """Row i: the bytes ``data[starts[i]:stops[i]]``, right-aligned after ``0`` digits
    (so that a column is a decimal place; a NUL byte in a number stays a bad byte), or
    left-aligned before NUL bytes (as text)."""
    widths = stops - starts
    width = int(widths.max())
    if width > _MAX_WIDTH:
        return None
    if right:  # row i ends at stops[i]: padded in front when one would start before 0
        shift = max(width - int(stops.min()), 0)
        padded = bytes(shift) + data if shift else data
        at = stops - width + shift
    else:  # row i starts at starts[i]: padded behind
        padded, at = data + bytes(width), starts
    windows = np.ndarray(shape=(len(padded) - width + 1,), dtype=f"V{width}", buffer=padded,
                         strides=(1,))
    grid: Grid = windows[at].view(np.uint8).reshape(len(stops), width)
    if right:
        grid *= _rows(_columns_from(width), width - widths)
        grid += _rows(_zeros_before(width), width - widths)
    else:
        grid *= _rows(_columns_before(width), widths)
    return grid


def _rows(table: Grid, which: Positions) -> Grid:
    """``table[which]``, gathered as whole rows (several times faster for short rows)."""
    width = table.shape[1]
    return table.view(f"V{width}").ravel()[which].view(np.uint8).reshape(len(which), width)


@functools.cache
def _columns_from(width: int) -> Grid:
    """Row k: 1 in the columns from k on, of ``width`` (k = 0..width)."""
    return (np.arange(width) >= np.arange(width + 1)[:, None]).astype(np.uint8)


@functools.cache
def _columns_before(width: int) -> Grid:
    """Row k: 1 in the columns before k, of ``width`` (k = 0..width)."""
    return (np.arange(width) < np.arange(width + 1)[:, None]).astype(np.uint8)


@functools.cache
def _zeros_before(width: int) -> Grid:
    """Row k: the digit 0 in the columns before k, of ``width`` (k = 0..width)."""
    return np.where(np.arange(width) < np.arange(width + 1)[:, None], ord("0"), 0).astype(
        np.uint8)


class _Digits(NamedTuple):
    matrix: Grid  # each row's digits in its columns, 0 elsewhere (the point)
    lengths: Positions  # digits in each row
    point_rows: Positions  # the rows with a point (ascending)...
    point_columns: Positions  # ...and its column in each
    negative: npt.NDArray[np.bool_]


def _digits(grid: Grid, widths: Positions, *, fractions: bool) -> _Digits | None:
    """The digits of each row of ``grid`` (right-aligned after 0 digits, overwritten),
    when every row is an optional sign (``-``, or with ``fractions`` ``+`` too), at least
    one digit and (with ``fractions``) at most one point; else None."""
    rows, width = grid.shape
    flat = grid.reshape(-1)
    leads = np.arange(rows) * width + (width - widths)
    negative = flat[leads] == MINUS
    signed = negative | (flat[leads] == PLUS) if fractions else negative
    flat[leads[signed]] = ord("0")
    digits = grid - np.uint8(ord("0"))
    is_digit = digits < 10
    is_point = grid == ord(".") if fractions else np.zeros_like(is_digit)
    if not (is_digit | is_point).all():
        return None
    points = np.flatnonzero(is_point)
    point_rows, point_columns = np.divmod(points, width)
    if (np.diff(point_rows) == 0).any():  # two points in a row
        return None
    lengths = widths - signed
    lengths[point_rows] -= 1
    if not (lengths > 0).all():
        return None
    digits *= is_digit
    return _Digits(digits, lengths, point_rows, point_columns, negative)


@functools.cache
def _places(width: int) -> Floats:
    """The place value of each of ``width`` right-aligned columns."""
    return np.ascontiguousarray(_POWERS[:width][::-1])


def _skeleton(data: bytes, starts: Positions, cut_from: Positions, cut_to: Positions
              ) -> tuple[bytes, int]:
    """``data`` without the bytes ``cut_from[i]:cut_to[i]`` of each line, and the width
    of its rows: each line's ``starts[i]:cut_from[i]`` as a row of zeros after it (a few
    gathers), or, for a line longer than ``_MAX_PREFIX``, the lines kept whole with their
    newlines (width 0)."""
    widths = cut_from - starts
    width = int(widths.max())
    if width <= _MAX_PREFIX:
        padded = data + bytes(width)
        windows = np.ndarray(shape=(len(data) + 1,), dtype=f"V{width}", buffer=padded,
                             strides=(1,))
        rows: Grid = windows[starts].view(np.uint8).reshape(len(starts), width)
        rows *= _rows(_columns_before(width), widths)
        return rows.tobytes(), width
    lengths = np.empty(2 * len(cut_from) + 1, dtype=np.intp)
    lengths[0] = cut_from[0]
    lengths[1::2] = cut_to - cut_from
    lengths[2:-1:2] = cut_from[1:] - cut_to[:-1]
    lengths[-1] = len(data) - cut_to[-1]
    kept = np.zeros(len(lengths), dtype=np.bool_)
    kept[0::2] = True
    return np.frombuffer(data, dtype=np.uint8)[np.repeat(kept, lengths)].tobytes(), 0


def _texts(skeleton: bytes, width: int) -> list[bytes]:
    """Each line's text in a skeleton of rows of ``width`` (0: lines with newlines)."""
    if width:
        texts: list[bytes] = np.frombuffer(skeleton, dtype=f"S{width}").tolist()
        return texts  # each without its zeros (a line holds none: they are not printable)
    texts = skeleton.split(b"\n")
    texts.pop()  # after the last newline
    return texts
