"""Decimal numbers of many rows, parsed by numpy at once (pure; no I/O).

The bulk readers of the ecosystem's text protocols (:mod:`.lineplain`) find where each
number sits in a body, then parse them all here: each row's bytes are gathered into a
right-aligned grid of digits (a column is a decimal place), checked, and turned into
numbers by a few matrix products, giving exactly what ``float()`` (or ``int()``) gives
for the same text. Floats of up to 14 digits are exact quotients of doubles; up to 18
significant digits (what Telegraf writes) a long double's quotient rounded once more,
with the rare row halfway between two doubles left to ``float()``; anything else (an
exponent, more digits) goes through numpy's own parse, which is ``float()``'s (D41, D49).
"""

from __future__ import annotations

import functools
import re
from typing import Final, NamedTuple

import numpy as np
import numpy.typing as npt

FLOAT_BYTES: Final = np.isin(np.arange(256), list(b"0123456789.eE+-"))
MAX_WIDTH: Final = 32  # longer values or timestamps: the general parser
_EXACT_DIGITS: Final = 14  # with the point as a digit, still below 2**53: exact
_POWERS: Final = 10.0 ** np.arange(MAX_WIDTH + 1)  # exact up to 10**22
_POWERS_INT: Final = 10 ** np.arange(19, dtype=np.int64)
_LONG_POWERS: Final = (np.cumprod(np.full(28, 10, dtype=np.longdouble)) / 10  # 10**0..10**27
                       if np.finfo(np.longdouble).nmant >= 63 else None)  # exact, or none
_INTEGER: Final = re.compile(rb"-?[0-9]{1,19}")
MINUS, PLUS = ord("-"), ord("+")

Positions = npt.NDArray[np.intp]
Grid = npt.NDArray[np.uint8]
Floats = npt.NDArray[np.float64]
Stamps = npt.NDArray[np.int64]


def floats(data: bytes, starts: Positions, stops: Positions) -> Floats | None:
    """The floats written at ``data[starts[i]:stops[i]]``, parsed as Python parses them
    (with the characters admitted, that is the line protocol's float grammar); None if
    one does not parse. Without exponent, each is its digits as an integer divided by a
    power of ten: up to 14 digits both are exact in a float64, so the quotient is the
    correctly rounded value, as ``float()`` gives it; up to 18 significant digits (what
    Telegraf writes), :func:`_long_floats`; anything else goes through ``float()``."""
    grid = byte_grid(data, starts, stops)
    if grid is None:
        return None
    digits = _digits(grid.copy(), stops - starts, fractions=True)
    if digits is None:  # an exponent, or a byte no number holds
        return _parsed(data, grid, starts, stops)
    if digits.lengths.max() <= _EXACT_DIGITS:
        return _short_floats(digits, grid.shape[1])
    long = _long_floats(digits, grid.shape[1])
    if long is None:
        return _parsed(data, grid, starts, stops)
    magnitudes, ambiguous = long
    if ambiguous.any():  # on a midpoint between two doubles: float() decides
        decided = _parsed(data, grid[ambiguous], starts[ambiguous], stops[ambiguous])
        if decided is None:
            return None
        magnitudes[ambiguous] = np.abs(decided)  # the sign is applied below
    signed: Floats = np.where(digits.negative, -magnitudes, magnitudes)
    return signed


def _short_floats(digits: _Digits, width: int) -> Floats:
    """Numbers of up to 14 digits: the digits over a power of ten, both exact doubles."""
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
    signed: Floats = np.where(digits.negative, -values, values)
    return signed


def _parsed(data: bytes, grid: Grid, starts: Positions, stops: Positions) -> Floats | None:
    """The rows parsed by numpy, which parses bytes as ``float()`` does (slower: ~0.3 µs
    a value of 17 digits)."""
    if not FLOAT_BYTES[grid].all():
        return None
    texts = byte_grid(data, starts, stops, right=False)
    assert texts is not None  # as wide as grid
    try:
        parsed: Floats = texts.view(f"S{texts.shape[1]}").ravel().astype(np.float64)
    except ValueError:
        return None
    return parsed


def _long_floats(digits: _Digits, width: int) -> tuple[Floats, npt.NDArray[np.bool_]] | None:
    """Magnitudes of numbers of up to 18 significant digits and 27 decimals, and the rows
    whose value ``float()`` must decide; None when some row is out of that range, or
    numpy's long double is a double (not Linux on x86 or ARM).

    The digits as an integer (exact in an int64) divided by a power of ten (exact in an
    x87 or quad long double): one correctly rounded division to 64 (or 113) bits, then
    rounded to 53. Rounding twice gives the correctly rounded double unless the first
    result lies exactly halfway between two doubles: those rows are ambiguous (with, at
    worst, a few that are not: they cost a ``float()``)."""
    if _LONG_POWERS is None:
        return None
    low = min(width, 9)  # two parts: up to 10 digits and 9, each exact in a float64
    columns = digits.matrix.astype(np.float64)  # the point is a 0 digit here
    high = columns[:, :width - low] @ _places(width - low)
    if (high > (2**63 - 1) // 10**9 - 1).any():
        return None
    whole = high.astype(np.int64) * 10**9 + (columns[:, width - low:] @ _places(low)).astype(
        np.int64)
    decimals = np.zeros(len(whole), dtype=np.intp)
    if len(digits.point_rows):  # the digits before the point are 10x: as in _floats
        rows, places = digits.point_rows, width - 1 - digits.point_columns
        if places.max() >= len(_LONG_POWERS):
            return None
        decimals[rows] = places
        before = places < len(_POWERS_INT)  # else every digit (< 10**19) is after it
        rows, places = rows[before], places[before]
        scaled = whole[rows]
        after = scaled % _POWERS_INT[places]
        whole[rows] = (scaled - after) // 10 + after
    exact = whole.astype(np.longdouble) / _LONG_POWERS[decimals]
    values = exact.astype(np.float64)
    # how far rounding moved it: a few bits, exact in a double; half the gap to the next
    # double (a quarter below a power of two) means it sat on a midpoint
    moved = np.abs(exact - values.astype(np.longdouble)).astype(np.float64)
    gap = np.spacing(np.abs(values))
    return values, (moved == gap / 2) | (moved == gap / 4)


def stamps(data: bytes, starts: Positions, stops: Positions) -> Stamps | None:
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
    grid = byte_grid(data, starts, stops)
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


def byte_grid(data: bytes, starts: Positions, stops: Positions, *, right: bool = True
          ) -> Grid | None:
    """Row i: the bytes ``data[starts[i]:stops[i]]``, right-aligned after ``0`` digits
    (so that a column is a decimal place; a NUL byte in a number stays a bad byte), or
    left-aligned before NUL bytes (as text)."""
    widths = stops - starts
    width = int(widths.max())
    if width > MAX_WIDTH:
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
        grid *= gather_rows(_columns_from(width), width - widths)
        grid += gather_rows(_zeros_before(width), width - widths)
    else:
        grid *= gather_rows(columns_before(width), widths)
    return grid


def gather_rows(table: Grid, which: Positions) -> Grid:
    """``table[which]``, gathered as whole rows (several times faster for short rows)."""
    width = table.shape[1]
    return table.view(f"V{width}").ravel()[which].view(np.uint8).reshape(len(which), width)


@functools.cache
def _columns_from(width: int) -> Grid:
    """Row k: 1 in the columns from k on, of ``width`` (k = 0..width)."""
    return (np.arange(width) >= np.arange(width + 1)[:, None]).astype(np.uint8)


@functools.cache
def columns_before(width: int) -> Grid:
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
