"""The many-chunks-at-once decoder of float chunks: :func:`decode_floats_many`.

Why: a read of one series over a day decodes ~18 chunks of ~480 points, and
:func:`~watchkeeper.archive.codec.decode_floats_ms` spends ~25 small numpy calls on each;
at a few microseconds of overhead per call, that overhead is most of the cost. Here only
the headers are parsed chunk by chunk, in Python; the rest is a fixed number of numpy
calls over all chunks together:

1. *plan*: per chunk, the header and the heads of its timestamps and values say where
   each bit-packed stream lies in the chunk's body (offset, count, width; for a patched
   stream the exceptions' positions and high bits too);
2. *gather*: the bodies are joined, and every value of every stream is one 8-byte
   little-endian load at its first byte, shifted and masked (widths up to 57 bits),
   into work arrays reused from call to call; exceptions are patched in all at once;
3. *undo the transforms*, segmented (a segment per chunk): zig-zag, the running sums of
   deltas and delta-of-deltas (one ``cumsum`` over all, each segment's first row less
   the sum of the segment before), the grid, the decimal scales, and the sign, exponent
   and mantissa of ``SPLIT`` values.

Integer arithmetic wraps in int64 as the encoder's did. Chunks it does not handle
(versions 1 and 2, ``XOR`` values, streams wider than 57 bits, anything odd or corrupt)
are decoded by :func:`~watchkeeper.archive.codec.decode_floats_ms`, the reference, in
their place: it decodes them, or raises its :class:`ArchiveError`.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Final, NamedTuple

import numpy as np
import numpy.typing as npt
from numpy.lib.stride_tricks import as_strided

from watchkeeper.archive.bitpack import (
    GATHER_BITS,
    PATCHED,
    Index,
    Int64Array,
    UInt64Array,
    packed_size,
    position_bits,
    read_signed_varint,
    read_varint,
    unzigzag,
)
from watchkeeper.archive.codec import (
    DECIMAL_SCALES,
    Encoding,
    Float64Array,
    TimeMode,
    decode_floats_ms,
    unpack_chunk,
)
from watchkeeper.errors import ArchiveError

_PADDING: Final = bytes(8)  # an 8-byte load at the last byte stays inside
_MANTISSA_BITS: Final = 52
_SPLIT: Final = 0  # the "order" of SPLIT exponents: deltas, no centre
_EXPONENT = np.uint64(0x7FF)


class _Unhandled(Exception):
    """A chunk the batch leaves to the reference decoder."""


# -- plan: where each chunk's streams lie (Python, per chunk) -------------------------------


class _Stream(NamedTuple):
    """A bit-packed stream at ``pos`` of a chunk's body; patched when it has exceptions."""

    pos: int
    size: int  # values
    width: int
    exceptions: int = 0
    high_bits: int = 0

    @property
    def positions(self) -> int:
        """Where the exceptions' positions start."""
        return self.pos + packed_size(self.size, self.width)

    @property
    def highs(self) -> int:
        """Where the exceptions' high bits start."""
        return self.positions + packed_size(self.exceptions, position_bits(self.size))

    @property
    def end(self) -> int:
        if not self.exceptions:
            return self.positions
        return self.highs + packed_size(self.exceptions, self.high_bits)


class _Plan(NamedTuple):
    """One chunk as the batch decodes it."""

    body: memoryview
    n: int
    grid: bool  # timestamps on a grid (else delta-of-deltas)
    ts_first: int  # the first timestamp or the grid's origin
    ts_delta: int  # the first delta or the grid's step
    times: _Stream
    order: int  # DECIMAL: 1 (deltas) or 2 (delta-of-deltas); _SPLIT: exponent deltas
    first: int  # the first integer, or the first exponent
    delta: int  # order 1: the centre of the deltas; order 2: the first delta
    k: int  # DECIMAL: the values are integers / 10**k
    values: _Stream
    signs: int  # SPLIT: where the sign bits start (the mantissas follow them)


def _plan(blob: bytes) -> _Plan | None:
    """How the batch decodes ``blob``; None if it leaves it to the reference decoder."""
    try:
        version, encoding, n, body = unpack_chunk(blob)
        if version < 3 or encoding not in (Encoding.DECIMAL, Encoding.SPLIT):
            return None
        plan = _plan_body(body, n, encoding)
    except (ArchiveError, _Unhandled, IndexError, ValueError):
        return None  # the reference says what is wrong
    # Truncated: the reference refuses to read past the end.
    end = plan.values.end
    if plan.signs >= 0:
        end = plan.signs + packed_size(n, 1) + packed_size(n, _MANTISSA_BITS)
    return plan if end <= len(body) else None


def _plan_body(body: memoryview, n: int, encoding: Encoding) -> _Plan:
    mode, width = body[0], body[1]
    ts_first, pos = read_signed_varint(body, 2)
    ts_delta, pos = read_signed_varint(body, pos)
    if mode not in (TimeMode.GRID, TimeMode.DOD):
        raise _Unhandled
    grid = mode == TimeMode.GRID
    times = _plan_stream(body, pos, n if grid else max(n - 2, 0), width)
    pos = times.end
    if encoding == Encoding.SPLIT:
        width = body[pos]
        first, pos = read_varint(body, pos + 1)
        if first > int(_EXPONENT):
            raise _Unhandled
        values = _plan_stream(body, pos, max(n - 1, 0), width)
        return _Plan(body, n, grid, ts_first, ts_delta, times, _SPLIT, first, 0, 0, values,
                     values.end)
    k, order, width = body[pos], body[pos + 1], body[pos + 2]
    first, pos = read_signed_varint(body, pos + 3)
    delta, pos = read_signed_varint(body, pos)
    if order not in (1, 2) or k >= len(DECIMAL_SCALES):
        raise _Unhandled
    values = _plan_stream(body, pos, max(n - order, 0), width)
    return _Plan(body, n, grid, ts_first, ts_delta, times, order, first, delta, k, values, -1)


def _plan_stream(body: memoryview, pos: int, count: int, width: int) -> _Stream:
    """The stream at ``pos`` after a head ending in ``width`` (see ``unpack_stream``)."""
    if not width & PATCHED:
        return _Stream(pos, count, _loadable(width))
    width &= ~PATCHED
    exceptions, pos = read_varint(body, pos)
    high_bits = body[pos]
    if not 0 < exceptions <= count or width + high_bits > 64:
        raise _Unhandled
    return _Stream(pos + 1, count, _loadable(width), exceptions, _loadable(high_bits))


def _loadable(width: int) -> int:
    """``width``, if one 8-byte load holds a value that wide."""
    if width > GATHER_BITS:
        raise _Unhandled
    return width


# -- layout: where each stream's values go in the output ------------------------------------


class _Layout:
    """The segments of the gathered output, each ``bit offset, count, width`` (flat lists:
    numpy reads them faster than tuples): the timestamps of all chunks (one row per
    point), then their values' integers, SPLIT sign bits and mantissas, exceptions'
    positions and their high bits. Rows a stream does not cover (a chunk's first one or
    two) are a segment of width 0: zeros. No segment is empty."""

    def __init__(self, rows: int) -> None:
        self.rows = rows  # points of all chunks
        self.times: list[int] = []
        self.values: list[int] = []
        self.signs: list[int] = []
        self.mantissas: list[int] = []
        self.positions: list[int] = []
        self.highs: list[int] = []
        self.patches: list[int] = []  # row, count, width, exceptions
        self.split = self.exceptions = 0  # rows of SPLIT chunks; exceptions of all streams

    def add(self, plan: _Plan, base: int, row: int) -> None:
        """A chunk whose body starts at byte ``base`` and whose points at ``row``."""
        self._add_stream(self.times, plan.times, plan.n, base, row)
        self._add_stream(self.values, plan.values, plan.n, base, self.rows + row)
        if plan.signs >= 0:
            signs = 8 * (base + plan.signs)
            self.signs += (signs, plan.n, 1)
            self.mantissas += (signs + 8 * packed_size(plan.n, 1), plan.n, _MANTISSA_BITS)
            self.split += plan.n

    def _add_stream(self, segments: list[int], stream: _Stream, n: int, base: int,
                    row: int) -> None:
        skipped = n - stream.size  # rows the head holds
        if skipped:
            segments += (0, skipped, 0)
        if not stream.size:
            return
        segments += (8 * (base + stream.pos), stream.size, stream.width)
        if stream.exceptions:
            self.patches += (row + skipped, stream.size, stream.width, stream.exceptions)
            self.positions += (8 * (base + stream.positions), stream.exceptions,
                               position_bits(stream.size))
            self.highs += (8 * (base + stream.highs), stream.exceptions, stream.high_bits)
            self.exceptions += stream.exceptions

    def segments(self) -> list[int]:
        return [*self.times, *self.values, *self.signs, *self.mantissas, *self.positions,
                *self.highs]


# -- gather: every stream's values at once -------------------------------------------------


class _Scratch(threading.local):
    """Large work arrays kept from call to call, one set per thread.

    A fresh array of more than 128 KiB comes from the OS (glibc's mmap threshold) and
    faults in page by page: on this VM that cost more than the arithmetic (a 20,000-value
    gather: ~60 µs into a reused buffer, ~400 µs into a fresh one).
    """

    def __init__(self) -> None:
        self.buffers: dict[str, UInt64Array] = {}

    def get(self, name: str, size: int) -> UInt64Array:
        """``size`` values of the buffer ``name`` (contents undefined)."""
        buffer = self.buffers.get(name)
        if buffer is None or len(buffer) < size:
            buffer = np.empty(size, dtype=np.uint64)
            if size <= _SCRATCH_LIMIT:  # a rare huge read does not stay in memory
                self.buffers[name] = buffer
        return buffer[:size]


_SCRATCH_LIMIT: Final = 1 << 18  # values (2 MiB) per buffer
_scratch = _Scratch()


def _unpack_all(data: bytes, segments: list[int]) -> UInt64Array:
    """The values of all segments, one after another: value i of a segment at bit ``o``,
    ``w`` bits wide, is the ``w`` bits from bit ``o + i * w`` of ``data``.

    The result is a scratch buffer: valid until the next call in this thread.
    """
    table = np.array(segments, dtype=np.int64).reshape(-1, 3)
    bits, counts, widths = table[:, 0], table[:, 1], table[:, 2]
    total = int(counts.sum())
    firsts = np.cumsum(counts) - counts
    # Each value's segment: a running count of the segments started.
    segment = _scratch.get("segment", total).view(np.int64)
    segment.fill(0)
    segment[firsts[1:]] = 1
    np.cumsum(segment, out=segment)
    # Each value's first bit, as a running sum: the width, or at a segment's first value
    # the jump from the previous segment's last value.
    starts = _scratch.get("starts", total).view(np.int64)
    np.take(widths, segment, out=starts)
    jumps = bits.copy()
    jumps[1:] -= bits[:-1] + (counts[:-1] - 1) * widths[:-1]
    starts[firsts] = jumps
    np.cumsum(starts, out=starts)
    shifts = _scratch.get("shifts", total)
    np.bitwise_and(starts, 7, out=shifts.view(np.int64))
    starts >>= 3
    padded = np.frombuffer(data, dtype=np.uint8)
    # Every byte offset seen as the start of an unaligned little-endian uint64.
    words = as_strided(padded, shape=(len(padded) - 7, 8), strides=(1, 1)).view("<u8")
    out = _scratch.get("out", total)
    np.take(words.reshape(-1), starts, out=out)
    out >>= shifts
    masks = _scratch.get("masks", total)
    np.take((np.left_shift(1, widths) - 1).view(np.uint64), segment, out=masks)
    out &= masks
    return out


def _apply_patches(out: UInt64Array, layout: _Layout, positions: UInt64Array,
                   highs: UInt64Array) -> None:
    """Put back the high bits of every exception (as ``unpack_stream`` does)."""
    if not layout.patches:
        return
    table = np.array(layout.patches, dtype=np.int64).reshape(-1, 4)
    per_exception = np.repeat(table[:, :3], table[:, 3], axis=0)
    where = positions.view(np.int64)
    if (where >= per_exception[:, 1]).any():
        raise ArchiveError("corrupt chunk: exception beyond the values")
    out[per_exception[:, 0] + where] |= highs << per_exception[:, 2].view(np.uint64)


# -- undo the transforms, a segment per chunk -----------------------------------------------


def _segment_cumsum(x: Int64Array, starts: Index) -> Int64Array:
    """Running sums that restart at each segment (every segment non-empty), in place.

    One running sum over all, each segment's first row less the sum of the segment
    before: what came before cancels out.
    """
    totals = np.add.reduceat(x, starts)
    x[starts[1:]] -= totals[:-1]
    return np.cumsum(x, out=x)


class _Heads(NamedTuple):
    """Per segment (the chunks' timestamps, then their values' integers)."""

    starts: Index
    counts: Index
    firsts: Int64Array  # each segment's first integer
    seconds: Index  # rows whose value is a first delta (from the head)
    first_deltas: Int64Array
    kinds: npt.NDArray[np.int8]  # _DELTAS, _DODS or _GRID
    addends: Int64Array  # added to every delta: a centre, or the grid's step


_DELTAS, _DODS, _GRID = 0, 1, 2


def _heads(plans: list[_Plan]) -> _Heads:
    n = [plan.n for plan in plans]
    sizes = n + n
    counts = np.array(sizes, dtype=np.intp)
    starts = np.cumsum(counts) - counts
    firsts = [plan.ts_first for plan in plans] + [plan.first for plan in plans]
    kinds = [_GRID if plan.grid else _DODS for plan in plans] + [
        _DODS if plan.order == 2 else _DELTAS for plan in plans]
    addends = [plan.ts_delta if plan.grid else 0 for plan in plans] + [
        plan.delta if plan.order == 1 else 0 for plan in plans]
    deltas = [plan.ts_delta for plan in plans] + [plan.delta for plan in plans]
    second = [i for i, kind in enumerate(kinds) if kind == _DODS and sizes[i] >= 2]
    return _Heads(starts, counts, np.array(firsts, dtype=np.int64),
                  starts[second] + 1, np.array([deltas[i] for i in second], dtype=np.int64),
                  np.array(kinds, dtype=np.int8), np.array(addends, dtype=np.int64))


def _integers(zigzagged: UInt64Array, heads: _Heads) -> Int64Array:
    """The timestamps and integers of every segment, from their zig-zagged streams.

    Products with 0/1 rather than masked assignments, and in place where possible:
    both are faster on arrays this large.
    """
    x = unzigzag(zigzagged)
    x[heads.seconds] = heads.first_deltas  # rows of zeros until now
    kinds = np.repeat(heads.kinds, heads.counts)
    # Deltas: the deltas as they are, a running sum of the delta-of-deltas, or 0 on a
    # grid (there x is the distance from it).
    deltas = x * (kinds == _DELTAS)
    if (heads.kinds == _DODS).any():
        sums = _segment_cumsum(x.copy(), heads.starts)
        sums *= kinds == _DODS
        deltas += sums
    deltas += np.repeat(heads.addends, heads.counts)
    deltas[heads.starts] = heads.firsts
    out = _segment_cumsum(deltas, heads.starts)
    if (heads.kinds == _GRID).any():
        x *= kinds == _GRID
        out += x
    return out


def _floats(ints: Int64Array, plans: list[_Plan], signs: UInt64Array,
            mantissas: UInt64Array) -> Float64Array:
    counts = [plan.n for plan in plans]
    scales = DECIMAL_SCALES[[plan.k for plan in plans]]
    # The reference's operations exactly: int64 to float64, then divide by the scale.
    values: Float64Array = ints.astype(np.float64)
    values /= np.repeat(scales, counts)
    if len(signs):
        rows = _split_rows(plans)
        exponents = ints.take(rows).view(np.uint64) & _EXPONENT
        bits = (signs << np.uint64(63)) | (exponents << np.uint64(52)) | mantissas
        values[rows] = bits.view(np.float64)
    return values


def _split_rows(plans: list[_Plan]) -> Index:
    """The rows of the SPLIT chunks, in order."""
    firsts, counts, row = [], [], 0
    for plan in plans:
        if plan.order == _SPLIT:
            firsts.append(row)
            counts.append(plan.n)
        row += plan.n
    ends = np.cumsum(counts)
    rows: Index = np.arange(int(ends[-1])) + np.repeat(np.array(firsts) - (ends - counts),
                                                        counts)
    return rows


# -- the decoder -------------------------------------------------------------------------------


def decode_floats_many(blobs: Sequence[bytes]) -> tuple[Int64Array, Float64Array]:
    """The chunks' (int64 ms, float64 values), concatenated in the order given; equal to
    concatenating ``decode_floats_ms`` of each blob."""
    plans = [_plan(blob) for blob in blobs]
    ts, values = _decode_batch([plan for plan in plans if plan is not None and plan.n])
    if all(plan is not None for plan in plans):
        return ts, values
    return _splice(blobs, plans, ts, values)


def _decode_batch(plans: list[_Plan]) -> tuple[Int64Array, Float64Array]:
    rows = sum(plan.n for plan in plans)
    if not rows:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float64)
    layout = _Layout(rows)
    base = row = 0
    for plan in plans:
        layout.add(plan, base, row)
        base += len(plan.body)
        row += plan.n
    data = b"".join([*(plan.body for plan in plans), _PADDING])
    out = _unpack_all(data, layout.segments())
    split, exceptions = layout.split, layout.exceptions
    at = 2 * rows + 2 * split
    _apply_patches(out, layout, out[at:at + exceptions], out[at + exceptions:])
    ints = _integers(out[:2 * rows], _heads(plans))
    values = _floats(ints[rows:], plans, out[2 * rows:2 * rows + split],
                     out[2 * rows + split:at])
    return ints[:rows], values


def _splice(blobs: Sequence[bytes], plans: list[_Plan | None], ts: Int64Array,
            values: Float64Array) -> tuple[Int64Array, Float64Array]:
    """The batch's rows with the reference's chunks in their places."""
    ts_parts: list[Int64Array] = []
    value_parts: list[Float64Array] = []
    row = 0
    for blob, plan in zip(blobs, plans, strict=True):
        if plan is None:
            chunk_ts, chunk_values = decode_floats_ms(blob)
        else:
            chunk_ts, chunk_values = ts[row:row + plan.n], values[row:row + plan.n]
            row += plan.n
        ts_parts.append(chunk_ts)
        value_parts.append(chunk_values)
    return np.concatenate(ts_parts), np.concatenate(value_parts)
