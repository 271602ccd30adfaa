"""Integer packing: uint64 streams bit-packed (plain or patched) or byte-shuffled; varints.

Signed integers (deltas, delta-of-deltas, distances from a grid) are zig-zagged first
(0, -1, 1, -2, ... to 0, 1, 2, 3, ...), so that small magnitudes need few bits.

Patched packing (patched frame of reference, as in Lemire's FastPFor; chunk format
version 3) picks, per stream of a chunk, the width ``b`` that minimises
``b * count + exceptions * (position bits + high bits)``; each value wider than ``b``
(a counter reset, a gauge's jump, a phase jump) is an exception. Without exceptions
a stream is ``values`` (each value's low ``b`` bits, least significant first, padded to
a byte); with them, the width byte (in the head the caller writes before the stream)
has its top bit (0x80) set and the stream is
``exceptions:varint | high bits:u8 | values | positions | highs``: the positions (in
``ceil(log2(count))`` bits each) and the bits above ``b`` of each exception, patched
back on decoding. Format 2 packed every value of a chunk at the width its widest
needed: a counter reset in 480 points cost ~300 bytes more, now ~5. Streams of
versions 1 and 2 are never patched.

Byte-shuffled values (:class:`BytePlanes`) are ``width`` byte planes one after another:
byte ``i`` of every value, then byte ``i + 1``. Varints are LEB128, 7 bits a byte,
least significant first; signed varints are zig-zagged first.

:class:`Fit` chooses the widths for many chunks at once (one histogram of bit lengths
per stream) and packs the chunks of one size and width together; :class:`Chunks` says
which rows are whose. Nothing here knows about timestamps, floats or the chunk framing:
that is :mod:`watchkeeper.archive.codec`, which builds on this module.
"""

from __future__ import annotations

import functools
import itertools
import struct
from typing import Any, Final

import numpy as np
import numpy.typing as npt

Int64Array = npt.NDArray[np.int64]
UInt64Array = npt.NDArray[np.uint64]
Index = npt.NDArray[np.intp]

PATCHED: Final = 0x80  # version 3, in a width byte: exceptions follow the head
_BYTE = struct.Struct("<B")
_VARINT_BYTES: Final = 10  # of a 64-bit value, 7 bits a byte
_LENGTHS: Final = 65  # bit lengths 0 to 64
BATCH: Final = 1 << 16  # values bit-packed at a time
_WIDTHS = np.array([1, 2, 4, 8])
_WIDTH_LIMITS = np.array([2**8, 2**16, 2**32], dtype=np.uint64)
_POWERS = np.array([2**k for k in range(64)], dtype=np.uint64)
_SHIFTS = np.arange(64, dtype=np.uint64)
_ONE: Final = np.uint64(1)


# -- integer helpers ----------------------------------------------------------------------


def diff(x: Int64Array) -> Int64Array:
    """``x[i] - x[i - 1]``, with 0 in front so indexes line up with ``x``."""
    out = np.empty_like(x)
    out[:1] = 0
    np.subtract(x[1:], x[:-1], out=out[1:])  # wraps on overflow; decoding wraps back
    return out


def zigzag(x: Int64Array) -> UInt64Array:
    out = x << 1
    out ^= x >> 63
    return out.view(np.uint64)


def unzigzag(z: UInt64Array) -> Int64Array:
    signs = (z & _ONE).view(np.int64)
    np.negative(signs, out=signs)  # 0 or -1: all bits set
    out = (z >> _ONE).view(np.int64)
    out ^= signs
    return out


def bit_lengths(top: UInt64Array) -> npt.NDArray[np.int64]:
    """How many bits each value needs (0 for 0)."""
    bits: npt.NDArray[np.int64] = np.searchsorted(_POWERS, top, side="right")
    return bits


def _widths(top: UInt64Array) -> npt.NDArray[np.int64]:
    """The narrowest of 1, 2, 4, 8 bytes that holds each value."""
    widths: npt.NDArray[np.int64] = _WIDTHS[np.searchsorted(_WIDTH_LIMITS, top, side="right")]
    return widths


def ints_at(arr: Int64Array, index: Index, valid: npt.NDArray[np.bool_]) -> list[int]:
    """``arr[index]`` as Python ints, 0 where not ``valid``."""
    out = np.zeros(len(index), dtype=np.int64)
    out[valid] = arr[index[valid]]
    ints: list[int] = out.tolist()
    return ints


# -- varints ------------------------------------------------------------------------------


def varint(value: int) -> bytes:
    """An unsigned LEB128 varint: 7 bits a byte, least significant first."""
    out = bytearray()
    while value > 0x7F:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def read_varint(body: memoryview, pos: int) -> tuple[int, int]:
    """An unsigned varint at ``pos``, and where it ends."""
    value = shift = 0
    for at in range(pos, pos + _VARINT_BYTES):  # a loop of few steps: chunk heads are hot
        byte = body[at]  # IndexError past the end
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, at + 1
        shift += 7
    raise ValueError("varint too long")


def read_signed_varint(body: memoryview, pos: int) -> tuple[int, int]:
    """A zig-zagged varint as an int64 (wrapping), and where it ends."""
    z, pos = read_varint(body, pos)
    if z >= 2**64:
        raise ValueError("varint beyond 64 bits")
    return (z >> 1) ^ -(z & 1), pos


def pack_heads(*small: npt.ArrayLike, signed: tuple[npt.ArrayLike, ...]) -> list[bytes]:
    """Per chunk, its ``small`` values as bytes, then its ``signed`` ones as varints."""
    columns = [np.asarray(column, dtype=np.uint64)[:, None] for column in small]
    valid = [np.ones_like(column, dtype=np.bool_) for column in columns]
    for column in signed:
        z = zigzag(np.asarray(column, dtype=np.int64))
        groups = z[:, None] >> (np.arange(_VARINT_BYTES, dtype=np.uint64) * np.uint64(7))
        more = np.zeros(groups.shape, dtype=np.bool_)
        more[:, :-1] = groups[:, 1:] != 0  # a next byte follows
        columns.append((groups & np.uint64(0x7F)) | (more * np.uint64(0x80)))
        valid.append(np.concatenate((np.ones((len(z), 1), dtype=np.bool_), more[:, :-1]), axis=1))
    table, keep = np.concatenate(columns, axis=1), np.concatenate(valid, axis=1)
    flat = table[keep].astype(np.uint8).tobytes()
    ends: list[int] = np.cumsum(keep.sum(axis=1)).tolist()
    return [flat[start:end] for start, end in zip([0, *ends[:-1]], ends, strict=True)]


# -- rows of many chunks ------------------------------------------------------------------


class Chunks:
    """Row ranges ``[starts[i], ends[i])`` of one array, and per-chunk reductions over it."""

    def __init__(self, starts: Index, ends: Index) -> None:
        self.starts = starts
        self.ends = ends
        self.counts = ends - starts
        self._slots: dict[int, Int64Array] = {}

    def tail(self, skip: int) -> Index:
        """Where each chunk's rows start once its first ``skip`` rows are left out."""
        return np.minimum(self.starts + skip, self.ends)

    def reduce(self, ufunc: np.ufunc, arr: npt.NDArray[Any], lo: Index, empty: Any) -> Any:
        """``ufunc`` over ``arr[lo[i]:ends[i]]`` for every chunk; ``empty`` where none."""
        out = np.full(len(lo), empty, dtype=arr.dtype)
        some = self.ends > lo
        if some.any():
            # reduceat reduces up to the next index: interleave the ends, keep every other.
            edges = np.empty(2 * int(some.sum()), dtype=np.intp)
            edges[0::2], edges[1::2] = lo[some], self.ends[some]
            if edges[-1] == len(arr):  # past the end is not an index; the last runs to the end
                edges = edges[:-1]
            out[some] = ufunc.reduceat(arr, edges)[::2]
        return out

    def owners(self) -> Int64Array:
        """Each row's chunk (rows of no chunk are not covered)."""
        if 0 not in self._slots:
            self._slots[0] = np.repeat(np.arange(len(self.counts)), self.counts)
        return self._slots[0]


# -- bit-packing --------------------------------------------------------------------------


def pack_bits(part: UInt64Array, bits: int) -> bytes:
    """The low ``bits`` bits of each value, one after another (least significant first)."""
    if not bits or not len(part):
        return b""
    if bits == 8:
        return part.astype(np.uint8).tobytes()
    planes = ((part[:, None] >> _SHIFTS[:bits]) & np.uint64(1)).astype(np.uint8)
    return np.packbits(planes.ravel(), bitorder="little").tobytes()


def pack_52_bits(m: UInt64Array) -> list[bytes]:
    """Each row of ``m`` packed as ``pack_bits(row, 52)`` does (mantissas): 13 bytes a pair."""
    rows, size = m.shape
    pairs = size // 2
    out = np.empty((rows, packed_size(size, 52)), dtype=np.uint8)
    if pairs:
        low = np.ascontiguousarray(m[:, 0:2 * pairs:2]).view(np.uint8).reshape(rows, pairs, 8)
        high = np.ascontiguousarray(m[:, 1:2 * pairs:2] << np.uint64(4)).view(np.uint8).reshape(
            rows, pairs, 8)
        block = out[:, :13 * pairs].reshape(rows, pairs, 13)
        block[:, :, :6] = low[:, :, :6]
        block[:, :, 6] = low[:, :, 6] | high[:, :, 0]
        block[:, :, 7:] = high[:, :, 1:7]
    if size % 2:
        out[:, 13 * pairs:] = np.ascontiguousarray(m[:, -1]).view(np.uint8).reshape(rows, 8)[:, :7]
    return [row.tobytes() for row in out]


def _length_slots() -> Int64Array:
    """For the top 12 bits of ``float(x)`` (sign, exponent): 65 * sign + the bits that
    ``zigzag(x)`` needs, or one more (``x`` a negative power of two, or rounded up)."""
    top = np.arange(4096)
    magnitude = np.maximum((top & 0x7FF) - 1022, 0)  # bits of |x|
    slots: Int64Array = (top >> 11) * _LENGTHS + np.minimum(
        np.where(magnitude > 0, magnitude + 1, 0), 64)
    return slots


_SIGNED_SLOTS: Final = _length_slots()
_UNSIGNED_SLOTS: Final = _SIGNED_SLOTS % _LENGTHS


class Fit:
    """Patched bit-packing of one stream of signed integers, zig-zagged chunk by chunk.

    Per chunk, the width minimises ``width * count + exceptions * (position bits + high
    bits)``: each value wider (a counter reset, a jump) is an exception, its low
    ``width`` bits packed with the others and its position and high bits stored after
    them. ``costs`` is that size in bits (header of the exceptions included), ``weights``
    the sum of the values' bit lengths (a tie-break: zstd prefers smaller numbers). Bit
    lengths are estimated from ``float(x)``: at most one bit long, which can only make a
    value an exception on paper; packing finds the real ones.

    With ``centre``, a chunk whose values (outliers apart) all have one sign is zig-zagged
    around the middle of their range instead of 0: a counter's deltas save a bit.
    """

    def __init__(self, x: Int64Array, chunks: Chunks, lo: Index, *, centre: bool = False,
                 ) -> None:
        self._x = x
        n_chunks = len(lo)
        signs = 2 if centre else 1
        tops = x.astype(np.float64).view(np.uint64)
        tops >>= np.uint64(52)
        slots = np.take(_SIGNED_SLOTS if centre else _UNSIGNED_SLOTS, tops.view(np.int64))
        in_head = np.zeros(len(x), dtype=np.bool_)
        for skip in range(1, 3):  # rows a chunk keeps in its head are not in the stream
            in_head[chunks.starts[chunks.starts + skip <= lo] + (skip - 1)] = True
        # Widths up to the longest value only: wider ones cost more and are never chosen,
        # and a million chunks of 3 points spent most of their time on 65 of them.
        lengths = slots % _LENGTHS
        span = int(lengths.max(initial=0, where=~in_head)) + 1 if len(x) else 1
        slots = (chunks.owners() * signs + slots // _LENGTHS) * span + lengths
        dump = n_chunks * signs * span
        slots[in_head] = dump
        by_sign = np.bincount(slots, minlength=dump + 1)[:-1].reshape(n_chunks, signs, span)
        counts = by_sign.sum(axis=1)
        sizes = (chunks.ends - lo)[:, None]
        wider = sizes - np.cumsum(counts, axis=1)  # values wider than each width 0..64
        top = np.where(sizes[:, 0] > 0, span - 1 - np.argmax(counts[:, ::-1] > 0, axis=1), 0)
        each = bit_lengths(np.maximum(sizes[:, 0] - 1, 0).astype(np.uint64)) + top
        widths = np.arange(span)
        costs = (widths * sizes + wider * (each[:, None] - widths)
                 + (wider > 0) * 24)  # their head: a count and a width
        self.widths: npt.NDArray[np.int64] = np.argmin(costs, axis=1)
        picked = np.arange(n_chunks), self.widths
        self.costs: npt.NDArray[np.int64] = costs[picked]
        self.exceptions: npt.NDArray[np.int64] = wider[picked]
        exceptions = self.exceptions
        self.weights: npt.NDArray[np.int64] = counts @ widths
        self.centres: Int64Array = np.zeros(n_chunks, dtype=np.int64)
        if centre:
            # Values within the width: x in [0, 2**(w-1)) when none is negative, around
            # 2**(w-2) they zig-zag to w - 1 bits; the same for all negative.
            inside = np.cumsum(by_sign, axis=2)[np.arange(n_chunks), :, self.widths]
            wide = self.widths >= 2
            half = np.left_shift(np.int64(1), np.maximum(self.widths - 2, 0))
            positive = wide & (inside[:, 1] == 0) & (inside[:, 0] > 0)
            negative = wide & (inside[:, 0] == 0) & (inside[:, 1] > 0)
            self.centres[positive], self.centres[negative] = half[positive], -half[negative]
            better = positive | negative
            self.widths = self.widths - better
            # An exception may take a bit more around the centre (|x - centre| < 2 |x|).
            self.costs = self.costs - better * (sizes[:, 0] - 2 * exceptions)
            self.weights = self.weights - better * (sizes[:, 0] - exceptions)
        self._width_list: list[int] = self.widths.tolist()

    def pack(self, chosen: npt.NDArray[np.bool_], lo: Index,
             ends: Index) -> tuple[list[int], list[bytes]]:
        """The ``chosen`` chunks (rows ``lo:ends``): width bytes, and what follows the head.

        Chunks of equal size and width are packed together, a batch at a time.
        """
        heads = list(self._width_list)
        out = [b""] * len(lo)
        picked = np.flatnonzero(chosen)
        if not len(picked):
            return heads, out
        sizes, widths = ends[picked] - lo[picked], self.widths[picked]
        keys = widths * (int(sizes.max()) + 1) + sizes
        order = np.argsort(keys, kind="stable")
        for group in np.split(picked[order], np.flatnonzero(np.diff(keys[order])) + 1):
            width, size = self._width_list[group[0]], int(ends[group[0]] - lo[group[0]])
            step = max(1, BATCH // max(size, 1))
            for first in range(0, len(group), step):
                batch = group[first:first + step]
                with np.errstate(over="ignore"):  # wraps like the decoder
                    rows = self._x[lo[batch][:, None] + np.arange(size)]
                    rows -= self.centres[batch][:, None]
                z = zigzag(rows)
                # Only chunks with exceptions on paper can have any (the estimate of a
                # bit length is never short): the others are not searched.
                extras: list[tuple[bytes, bytes] | None] = [None] * len(batch)
                some = np.flatnonzero(self.exceptions[batch] > 0)
                for at, extra in zip(some.tolist(), _exceptions(z[some], width), strict=True):
                    extras[at] = extra
                for i, main, extra in zip(batch.tolist(), _pack_matrix(z, width), extras,
                                          strict=True):
                    if extra:
                        heads[i] |= PATCHED
                        out[i] = extra[0] + main + extra[1]
                    else:
                        out[i] = main
        return heads, out


def _pack_matrix(z: UInt64Array, width: int) -> list[bytes]:
    """Each row of ``z`` packed as :func:`pack_bits` does."""
    count, size = z.shape
    if not width or not size:
        return [b""] * count
    if width == 8:
        packed = z.astype(np.uint8)
    else:
        bits = np.unpackbits(z.view(np.uint8).reshape(count, size, 8), axis=2,
                             bitorder="little")[:, :, :width]
        packed = np.packbits(bits.reshape(count, size * width), axis=1, bitorder="little")
    return [row.tobytes() for row in packed]


def _exceptions(z: UInt64Array, width: int) -> list[tuple[bytes, bytes] | None]:
    """Per row of ``z``, the values wider than ``width``: their header, and their
    positions and high bits; None for rows without."""
    out: list[tuple[bytes, bytes] | None] = [None] * len(z)
    if width >= 64:
        return out
    high = z >> np.uint64(width)
    rows, where = np.nonzero(high)
    if not len(rows):
        return out
    where_bits = position_bits(z.shape[1])
    highs = high[rows, where]
    cuts: list[int] = [0, *(np.flatnonzero(np.diff(rows)) + 1).tolist(), len(rows)]
    row_list: list[int] = rows.tolist()
    for lo, hi in itertools.pairwise(cuts):
        high_bits = int(bit_lengths(highs[lo:hi].max()))
        out[row_list[lo]] = (varint(hi - lo) + _BYTE.pack(high_bits),
                             _pack_few(where[lo:hi], where_bits)
                             + _pack_few(highs[lo:hi], high_bits))
    return out


def _pack_few(values: npt.NDArray[Any], bits: int) -> bytes:
    """:func:`pack_bits`, with Python ints when there are only a few values."""
    if len(values) > 8:
        return pack_bits(values.astype(np.uint64), bits)
    packed = 0
    for i, value in enumerate(values.tolist()):
        packed |= value << (i * bits)
    return packed.to_bytes(packed_size(len(values), bits), "little")


def position_bits(count: int) -> int:
    """The bits of each exception's position in a patched stream of ``count`` values."""
    return max(count - 1, 0).bit_length()


# -- byte planes --------------------------------------------------------------------------


class BytePlanes:
    """Byte-shuffled slices of one uint64 array, narrowed to a given width."""

    def __init__(self, values: UInt64Array) -> None:
        self._values = values
        self._narrow: dict[int, npt.NDArray[Any]] = {}

    def shuffled(self, lo: int, hi: int, width: int) -> bytes:
        narrow = self._narrow.get(width)
        if narrow is None:
            narrow = self._narrow[width] = self._values.astype(f"<u{width}")
        part = narrow[lo:hi]
        if width == 1:
            return part.tobytes()
        # Byte plane i holds byte i of every value: similar bytes end up adjacent.
        return part.view(np.uint8).reshape(-1, width).T.tobytes()


def unpack_byte_planes(body: memoryview, pos: int, count: int, width: int) -> UInt64Array:
    """Inverse of :meth:`BytePlanes.shuffled`: ``count`` values of ``width`` bytes."""
    planes = np.frombuffer(body, dtype=np.uint8, count=count * width, offset=pos)
    narrow = planes.reshape(width, count).T.copy().view(f"<u{width}").reshape(count)
    return narrow.astype(np.uint64)


# -- unpacking bits -----------------------------------------------------------------------


def unpack_bits(body: memoryview, pos: int, count: int, bits: int) -> UInt64Array:
    """Inverse of :func:`pack_bits`."""
    if not bits or not count:
        return np.zeros(count, dtype=np.uint64)
    if bits > 64:
        raise ValueError(f"{bits} bits per value")
    size = packed_size(count, bits)
    if bits == 8:
        return np.frombuffer(body, dtype=np.uint8, count=size, offset=pos).astype(np.uint64)
    if bits > GATHER_BITS:
        return _unpack_wide(body, pos, count, bits)
    # Value i starts at bit i * bits: load the 8 bytes from its first byte as one
    # little-endian word, then shift and mask; 8 bytes of padding keep the loads inside.
    padded = np.zeros(size + 8, dtype=np.uint8)
    padded[:size] = np.frombuffer(body, dtype=np.uint8, count=size, offset=pos)
    index, shifts = _gather(count, bits)
    out: UInt64Array = padded.take(index).view("<u8").reshape(count)
    out >>= shifts
    out &= np.uint64((1 << bits) - 1)
    return out


GATHER_BITS: Final = 57  # a value of more bits may start late in a byte: 7 + 58 > 64


@functools.lru_cache(maxsize=256)
def _gather(count: int, bits: int) -> tuple[Index, UInt64Array]:
    """The byte positions of the 8-byte loads and the shift of each value (read-only)."""
    starts = np.arange(count, dtype=np.int64) * bits
    index = ((starts >> 3)[:, None] + np.arange(8)).astype(np.intp).reshape(-1)
    shifts = (starts & 7).astype(np.uint64)
    index.flags.writeable = shifts.flags.writeable = False
    return index, shifts


def _unpack_wide(body: memoryview, pos: int, count: int, bits: int) -> UInt64Array:
    """:func:`unpack_bits` through bit planes, for widths an 8-byte load cannot hold."""
    raw = np.frombuffer(body, dtype=np.uint8, count=packed_size(count, bits), offset=pos)
    planes = np.zeros((count, 64), dtype=np.uint8)
    planes[:, :bits] = np.unpackbits(raw, count=count * bits, bitorder="little").reshape(
        count, bits)
    out: UInt64Array = np.packbits(planes, axis=1, bitorder="little").view("<u8").reshape(count)
    return out


def packed_size(count: int, bits: int) -> int:
    return (count * bits + 7) // 8


def unpack_stream(body: memoryview, pos: int, count: int, width: int,
                   version: int) -> tuple[UInt64Array, int]:
    """A bit-packed stream of ``count`` values after a head ending in ``width``; the end."""
    if version < 3 or not width & PATCHED:
        return unpack_bits(body, pos, count, width), pos + packed_size(count, width)
    width &= ~PATCHED
    exceptions, pos = read_varint(body, pos)
    high_bits = body[pos]
    pos += 1
    if not 0 < exceptions <= count or width + high_bits > 64:
        raise ValueError(f"{exceptions} exceptions of {width} + {high_bits} bits")
    out = unpack_bits(body, pos, count, width)
    pos += packed_size(count, width)
    where_bits = position_bits(count)
    where = unpack_bits(body, pos, exceptions, where_bits).astype(np.intp)
    pos += packed_size(exceptions, where_bits)
    highs = unpack_bits(body, pos, exceptions, high_bits)
    if (where >= count).any():
        raise ValueError("exception beyond the values")
    out[where] |= highs << np.uint64(width)
    return out, pos + packed_size(exceptions, high_bits)
