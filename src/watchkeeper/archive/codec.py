"""Chunk encoding: a run of one series' points as one compact, self-describing blob.

The scheme follows Gorilla (timestamps as delta-of-delta, values relative to the
previous value) but works on numpy arrays: integers are bit-packed with their outliers
stored apart (patched frame of reference, as in Lemire's FastPFor), float bits
byte-shuffled or split, and zstd goes over the whole when that makes it smaller:

* timestamps become int64 milliseconds, stored one of two ways, chosen per chunk:

  - ``DOD``: the first value and first delta as they are, then the delta-of-deltas,
    zig-zagged and bit-packed (a regular 10 s series is all zeros: 0 bits);
  - ``GRID``: an origin and a step, then each timestamp's distance from
    ``origin + i * step``, zig-zagged and bit-packed. A poller's timestamps
    are a grid give or take its jitter: the distance is the jitter (±20 ms: 6 bits),
    where a delta-of-delta is the difference of three jitters (7-8 bits); a poller
    restarted at another phase leaves the grid, and two outliers among the DODs;
* values are stored one of three ways, chosen per chunk:

  - ``DECIMAL`` when every value is exactly ``integer / 10**k`` (counters, gauges
    rounded to a few decimals): the integers' deltas, or delta-of-deltas when those
    are smaller (steady counters), zig-zagged and bit-packed. Deltas that all have
    one sign (a counter's) are zig-zagged around the middle of their range, which
    saves a bit. This is what brings real data to 1-4 bytes per point;
  - ``XOR``: each value's bits XOR the previous value's bits as uint64, then the
    eight byte planes are transposed (byte-shuffled) so zstd sees the runs of equal
    sign and exponent bytes (values that repeat or change little);
  - ``SPLIT`` (version 3): the sign bits, the exponents' deltas (bit-packed as
    above) and the 52-bit mantissas apart: full-precision noise in ~57 bits a value
    where XOR and zstd take ~60. XOR or SPLIT, whichever blob is smaller; both are
    exact for every bit pattern (NaN payloads, inf, -0.0);

* histogram and object chunks keep the same timestamps and a msgpack list of the
  values (``{bucket: count}`` dicts, or any JSON values); the reader says which.

Bit-packing (version 3) picks, per stream of a chunk, the width ``b`` that minimises
``b * count + exceptions * (position bits + high bits)``; each value wider than ``b``
(a counter reset, a gauge's jump, a phase jump) is an exception. Without exceptions
a stream is ``values`` (each value's low ``b`` bits, least significant first, padded to
a byte); with them, the width byte has its top bit (0x80) set and the stream is
``exceptions:varint | high bits:u8 | values | positions | highs``: the positions (in
``ceil(log2(count))`` bits each) and the bits above ``b`` of each exception, patched
back on decoding. Format 2 packed every value of a chunk at the width its widest
needed: a counter reset in 480 points cost ~300 bytes more, now ~5.

Blob layout: ``version:u8 | encoding:u8 | body``, little-endian. Version 3 (written
now): the encoding byte's top bit (0x80) says the body is stored as it is, else it is
zstd-compressed (bit-packed integers rarely compress: the frame would cost ~10
bytes); body ``count:varint | timestamps | values`` where the timestamps are
``mode:u8 | width:u8 | first or origin:svarint | delta or step:svarint | stream``,
``DECIMAL`` values ``k:u8 | order:u8 | width:u8 | first:svarint | delta or
centre:svarint | stream`` (order 1: the deltas less ``centre``; order 2: the
delta-of-deltas after the first ``delta``), ``SPLIT`` values ``width:u8 |
first exponent:varint | exponent deltas | signs (1 bit each) | mantissas (52 bits
each)``, ``XOR`` values the shuffled planes. Varints are LEB128, 7 bits a byte;
svarints zig-zagged first. Version 2: zstd always, body ``count:u32 | first or
origin:i8 | delta or step:i8 | mode:u8 | bits:u8 | ...``, ``k:u8 | order:u8 |
first:i8 | delta:i8 | bits:u8 | ...``, every value at one bit width (0-64). Version 1
has only ``DOD`` timestamps (``first:i8 | delta:i8 | width:u8 | ...``) and stores
integers byte-shuffled in 1, 2, 4 or 8 bytes (``width`` in bytes). All three are read.
Decoding refuses versions it does not know, so a later format can be added beside these.

:func:`encode_float_chunks` encodes many chunks in one call: the transforms, the choice
of widths (one histogram of bit lengths per stream) and the packing (chunks of one
size and width at a time) run over all rows, leaving only joining and zstd per
chunk. Compaction of thousands of series uses it; the one-chunk functions are the same
code with one chunk.

zstd contexts are cached per thread: they are not safe to share between threads and
are costly to build for every chunk.
"""

from __future__ import annotations

import itertools
import struct
import threading
from collections.abc import Sequence
from enum import IntEnum
from typing import Any, Final

import msgspec
import numpy as np
import numpy.typing as npt
import zstandard

from watchkeeper.errors import ArchiveError

Int64Array = npt.NDArray[np.int64]
UInt64Array = npt.NDArray[np.uint64]
Float64Array = npt.NDArray[np.float64]
Index = npt.NDArray[np.intp]

FORMAT_VERSION: Final = 3
_READABLE: Final = frozenset({1, 2, 3})
MAX_SECONDS: Final = 2**53 / 1000  # milliseconds stay exact integers in a double
ZSTD_LEVEL: Final = 3

_HEADER = struct.Struct("<BB")
_COUNT = struct.Struct("<I")
_TS_HEAD_V1 = struct.Struct("<qqB")  # first ts, first delta, width of the delta-of-deltas
_TS_HEAD = struct.Struct("<qqBB")  # first ts, first delta or step, TimeMode, width
_DEC_HEAD = struct.Struct("<BBqqB")  # k, order, first integer, first delta or centre, width
_PATCHED: Final = 0x80  # version 3, in a width byte: exceptions follow the head
_RAW: Final = 0x80  # version 3, in the encoding byte: the body is not compressed
_BYTE = struct.Struct("<B")
_VARINT_BYTES: Final = 10  # of a 64-bit value, 7 bits a byte
_LENGTHS: Final = 65  # bit lengths 0 to 64
_BATCH: Final = 1 << 16  # values bit-packed at a time
_MAX_EXACT: Final = float(2**53)  # integers beyond this are not exact in a double
_MAX_DECIMALS: Final = 15
_SCALES = np.array([10.0**k for k in range(_MAX_DECIMALS + 1)])  # decoding divides by these
_WIDTHS = np.array([1, 2, 4, 8])
_WIDTH_LIMITS = np.array([2**8, 2**16, 2**32], dtype=np.uint64)
_POWERS = np.array([2**k for k in range(64)], dtype=np.uint64)
_SHIFTS = np.arange(64, dtype=np.uint64)
_PROBE: Final = 8  # values per chunk tried against every k before the full check
HISTOGRAMS: Final[Any] = list[dict[str, int]]
"""The type to decode histogram chunks as (see :func:`decode_objects_ms`)."""
JSON_VALUES: Final[Any] = list[Any]
"""The type to decode chunks of arbitrary JSON values as."""


class Encoding(IntEnum):
    """How the values of a chunk are stored (the second header byte)."""

    XOR = 0
    DECIMAL = 1
    OBJECTS = 2
    SPLIT = 3  # version 3


class TimeMode(IntEnum):
    """How the timestamps of a chunk are stored (version 2 chunks)."""

    DOD = 0
    GRID = 1


class _Zstd(threading.local):
    """One compressor and one decompressor per thread, built on first use."""

    def __init__(self) -> None:
        self.compressor = zstandard.ZstdCompressor(level=ZSTD_LEVEL)
        self.decompressor = zstandard.ZstdDecompressor()


_zstd = _Zstd()


# -- public API, timestamps in seconds ----------------------------------------------------


def to_millis(ts: npt.ArrayLike) -> Int64Array:
    """Seconds since the epoch to int64 milliseconds, rounded to the nearest.

    Raises ``ValueError`` for NaN, infinities and times beyond ``MAX_SECONDS``.
    """
    seconds = np.asarray(ts, dtype=np.float64)
    if not (np.abs(seconds) <= MAX_SECONDS).all():  # also false for NaN
        raise ValueError(f"timestamps must be finite seconds within ±{MAX_SECONDS:.0f}")
    return np.rint(seconds * 1000.0).astype(np.int64)


def from_millis(ms: Int64Array) -> Float64Array:
    """int64 milliseconds to float seconds (exact for any millisecond-precision input)."""
    return ms.astype(np.float64) / 1000.0


def encode_floats(ts: npt.ArrayLike, values: npt.ArrayLike) -> bytes:
    """Encode float points; ``ts`` in seconds is stored to the millisecond."""
    return encode_floats_ms(to_millis(ts), np.asarray(values, dtype=np.float64))


def decode_floats(blob: bytes) -> tuple[Float64Array, Float64Array]:
    """Decode a float chunk to ``(ts in seconds, values)``."""
    ms, values = decode_floats_ms(blob)
    return from_millis(ms), values


def encode_objects(ts: npt.ArrayLike, objects: Sequence[Any]) -> bytes:
    """Encode histogram or object points; ``ts`` in seconds is stored to the millisecond."""
    return encode_objects_ms(to_millis(ts), objects)


def decode_objects(blob: bytes, values_type: Any = HISTOGRAMS) -> tuple[Float64Array, list[Any]]:
    """Decode a histogram (with ``JSON_VALUES``: object) chunk to ``(ts in seconds, values)``."""
    ms, objects = decode_objects_ms(blob, values_type)
    return from_millis(ms), objects


# -- the same in int64 milliseconds, as the backends store them ----------------------------


def encode_floats_ms(ts: Int64Array, values: Float64Array) -> bytes:
    """Encode float points with int64 millisecond timestamps."""
    return encode_float_chunks(ts, values, np.array([0, len(ts)]))[0]


def encode_float_chunks(ts: Int64Array, values: Float64Array, bounds: npt.ArrayLike) -> list[bytes]:
    """Encode many float chunks at once: chunk i holds rows ``bounds[i]:bounds[i + 1]``.

    ``bounds`` runs from 0 to ``len(ts)``; a chunk may be empty.
    """
    ts = np.ascontiguousarray(ts, dtype=np.int64)
    values = np.ascontiguousarray(values, dtype=np.float64)
    if ts.shape != values.shape or ts.ndim != 1:
        raise ValueError(f"ts {ts.shape} and values {values.shape} must be equal 1-d shapes")
    edges = np.asarray(bounds, dtype=np.intp)
    if len(edges) < 2 or edges[0] != 0 or edges[-1] != len(ts) or (np.diff(edges) < 0).any():
        raise ValueError("bounds must ascend from 0 to the number of rows")
    chunks = _Chunks(edges[:-1], edges[1:])
    ts_sections = _ts_sections(ts, chunks)
    value_sections = _value_sections(values, chunks)
    split = _split_sections(values, chunks, np.flatnonzero(
        np.array([encoding == Encoding.XOR for encoding, _ in value_sections], dtype=np.bool_)))
    blobs = [
        _pack(encoding, count, ts_part, value_part)
        for count, ts_part, (encoding, value_part) in zip(
            chunks.counts.tolist(), ts_sections, value_sections, strict=True
        )
    ]
    for i, part in split.items():  # XOR or SPLIT: whichever is smaller
        # Random mantissas: zstd would only add its frame.
        other = _pack(Encoding.SPLIT, int(chunks.counts[i]), ts_sections[i], part,
                      compress=False)
        if len(other) < len(blobs[i]):
            blobs[i] = other
    return blobs


def decode_floats_ms(blob: bytes) -> tuple[Int64Array, Float64Array]:
    """Decode a float chunk to ``(int64 ms, values)``."""
    version, encoding, n, body = _unpack(blob)
    if encoding == Encoding.OBJECTS:
        raise ArchiveError("chunk holds objects, not floats")
    try:
        ts, pos = _decode_ts(body, n, version)
        if encoding == Encoding.XOR:
            return ts, _decode_xor(body, pos, n)
        if encoding == Encoding.SPLIT:
            return ts, _decode_split(body, pos, n, version)
        return ts, _decode_decimal(body, pos, n, version)
    except (struct.error, ValueError, IndexError) as exc:
        raise ArchiveError(f"corrupt chunk: {exc}") from exc


def encode_objects_ms(ts: Int64Array, objects: Sequence[Any]) -> bytes:
    """Encode histogram or object points with int64 millisecond timestamps."""
    ts = np.ascontiguousarray(ts, dtype=np.int64)
    if ts.ndim != 1 or len(objects) != len(ts):
        raise ValueError(f"{len(ts)} timestamps but {len(objects)} objects")
    (ts_part,) = _ts_sections(ts, _Chunks(np.array([0]), np.array([len(ts)])))
    return _pack(Encoding.OBJECTS, len(ts), ts_part, msgspec.msgpack.encode(objects))


def decode_objects_ms(blob: bytes, values_type: Any = HISTOGRAMS) -> tuple[Int64Array, list[Any]]:
    """Decode a histogram chunk to ``(int64 ms, histograms)``.

    ``values_type`` is what the values must be: :data:`HISTOGRAMS` (the default) or
    :data:`JSON_VALUES` for object chunks.
    """
    version, encoding, n, body = _unpack(blob)
    if encoding != Encoding.OBJECTS:
        raise ArchiveError("chunk holds floats, not objects")
    try:
        ts, pos = _decode_ts(body, n, version)
        objects: list[Any] = msgspec.msgpack.decode(body[pos:], type=values_type)
    except (struct.error, ValueError, msgspec.DecodeError) as exc:
        raise ArchiveError(f"corrupt chunk: {exc}") from exc
    if len(objects) != n:
        raise ArchiveError(f"corrupt chunk: {n} timestamps but {len(objects)} objects")
    return ts, objects


# -- framing ------------------------------------------------------------------------------


def _pack(encoding: Encoding, n: int, *parts: bytes, compress: bool = True) -> bytes:
    body = b"".join((_varint(n), *parts))
    if not compress:
        return _HEADER.pack(FORMAT_VERSION, encoding | _RAW) + body
    compressed = _zstd.compressor.compress(body)
    if len(body) < len(compressed):  # bit-packed integers often are: save the frame
        return _HEADER.pack(FORMAT_VERSION, encoding | _RAW) + body
    return _HEADER.pack(FORMAT_VERSION, encoding) + compressed


def _unpack(blob: bytes) -> tuple[int, Encoding, int, memoryview]:
    if len(blob) < _HEADER.size:
        raise ArchiveError("corrupt chunk: shorter than its header")
    version, encoding = _HEADER.unpack_from(blob)
    if version not in _READABLE:
        raise ArchiveError(f"chunk format version {version} is not supported")
    try:
        if version >= 3 and encoding & _RAW:
            encoding &= ~_RAW
            body = memoryview(blob)[_HEADER.size :]
        else:
            body = memoryview(_zstd.decompressor.decompress(blob[_HEADER.size :]))
        if version < 3:
            (n,) = _COUNT.unpack_from(body)
            return version, Encoding(encoding), n, body[_COUNT.size :]
        n, pos = _read_varint(body, 0)
        return version, Encoding(encoding), n, body[pos:]
    except (zstandard.ZstdError, struct.error, ValueError) as exc:
        raise ArchiveError(f"corrupt chunk: {exc}") from exc


# -- many chunks at once -----------------------------------------------------------------


class _Chunks:
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

    def slots(self, signs: int) -> Int64Array:
        """Each row's chunk times ``signs * _LENGTHS``: where :class:`_Fit` counts it."""
        if signs not in self._slots:
            self._slots[signs] = np.repeat(np.arange(len(self.counts)) * signs * _LENGTHS,
                                           self.counts)
        return self._slots[signs]


class _Planes:
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



def _pack_bits(part: UInt64Array, bits: int) -> bytes:
    """The low ``bits`` bits of each value, one after another (least significant first)."""
    if not bits or not len(part):
        return b""
    if bits == 8:
        return part.astype(np.uint8).tobytes()
    planes = ((part[:, None] >> _SHIFTS[:bits]) & np.uint64(1)).astype(np.uint8)
    return np.packbits(planes.ravel(), bitorder="little").tobytes()


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


class _Fit:
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

    def __init__(self, x: Int64Array, chunks: _Chunks, lo: Index, *, centre: bool = False,
                 ) -> None:
        self._x = x
        n_chunks = len(lo)
        signs = 2 if centre else 1
        tops = x.astype(np.float64).view(np.uint64)
        tops >>= np.uint64(52)
        slots = np.take(_SIGNED_SLOTS if centre else _UNSIGNED_SLOTS, tops.view(np.int64))
        slots += chunks.slots(signs)  # each chunk counts its own bit lengths
        dump = n_chunks * signs * _LENGTHS
        for skip in range(1, 3):  # rows a chunk keeps in its head are not in the stream
            slots[chunks.starts[chunks.starts + skip <= lo] + (skip - 1)] = dump
        by_sign = np.bincount(slots, minlength=dump + 1)[:-1].reshape(n_chunks, signs, _LENGTHS)
        counts = by_sign.sum(axis=1)
        sizes = (chunks.ends - lo)[:, None]
        wider = sizes - np.cumsum(counts, axis=1)  # values wider than each width 0..64
        top = np.where(sizes[:, 0] > 0, _LENGTHS - 1 - np.argmax(counts[:, ::-1] > 0, axis=1), 0)
        each = _bits(np.maximum(sizes[:, 0] - 1, 0).astype(np.uint64)) + top
        widths = np.arange(_LENGTHS)
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
            step = max(1, _BATCH // max(size, 1))
            for first in range(0, len(group), step):
                batch = group[first:first + step]
                with np.errstate(over="ignore"):  # wraps like the decoder
                    rows = self._x[lo[batch][:, None] + np.arange(size)]
                    rows -= self.centres[batch][:, None]
                z = _zigzag(rows)
                # Only chunks with exceptions on paper can have any (the estimate of a
                # bit length is never short): the others are not searched.
                extras: list[tuple[bytes, bytes] | None] = [None] * len(batch)
                some = np.flatnonzero(self.exceptions[batch] > 0)
                for at, extra in zip(some.tolist(), _exceptions(z[some], width), strict=True):
                    extras[at] = extra
                for i, main, extra in zip(batch.tolist(), _pack_matrix(z, width), extras,
                                          strict=True):
                    if extra:
                        heads[i] |= _PATCHED
                        out[i] = extra[0] + main + extra[1]
                    else:
                        out[i] = main
        return heads, out


def _pack_matrix(z: UInt64Array, width: int) -> list[bytes]:
    """Each row of ``z`` packed as :func:`_pack_bits` does."""
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
    position_bits = _position_bits(z.shape[1])
    highs = high[rows, where]
    cuts: list[int] = [0, *(np.flatnonzero(np.diff(rows)) + 1).tolist(), len(rows)]
    row_list: list[int] = rows.tolist()
    for lo, hi in itertools.pairwise(cuts):
        high_bits = int(_bits(highs[lo:hi].max()))
        out[row_list[lo]] = (_varint(hi - lo) + _BYTE.pack(high_bits),
                             _pack_few(where[lo:hi], position_bits)
                             + _pack_few(highs[lo:hi], high_bits))
    return out


def _pack_few(values: npt.NDArray[Any], bits: int) -> bytes:
    """:func:`_pack_bits`, with Python ints when there are only a few values."""
    if len(values) > 8:
        return _pack_bits(values.astype(np.uint64), bits)
    packed = 0
    for i, value in enumerate(values.tolist()):
        packed |= value << (i * bits)
    return packed.to_bytes(_packed_size(len(values), bits), "little")


def _position_bits(count: int) -> int:
    return max(count - 1, 0).bit_length()


def _ts_sections(ts: Int64Array, chunks: _Chunks) -> list[bytes]:
    deltas = _diff(ts)
    lo = chunks.tail(2)
    dod_fit = _Fit(_diff(deltas), chunks, lo)
    firsts = _at(ts, chunks.starts, chunks.counts >= 1)
    first_deltas = _at(deltas, chunks.starts + 1, chunks.counts >= 2)
    # The grid: from the first timestamp to the last in equal steps (rounded to the ms).
    some = chunks.counts > 0
    lasts = np.zeros(len(chunks.counts), dtype=np.int64)
    lasts[some] = ts[chunks.ends[some] - 1]
    gaps = np.maximum(chunks.counts - 1, 1)
    with np.errstate(over="ignore"):  # wraps like the decoder; then the grid loses anyway
        spans = lasts - np.array(firsts, dtype=np.int64)
        steps = np.where(chunks.counts > 1, np.floor_divide(2 * spans + gaps, 2 * gaps), 0)
        rows = np.arange(len(ts), dtype=np.int64) - np.repeat(chunks.starts, chunks.counts)
        grid = np.repeat(np.array(firsts, dtype=np.int64), chunks.counts) + rows * np.repeat(
            steps, chunks.counts)
        raw = ts - grid
        # Centre the grid on the points (not on the first one): offsets of ±jitter.
        low = chunks.reduce(np.minimum, raw, chunks.starts, np.int64(0))
        high = chunks.reduce(np.maximum, raw, chunks.starts, np.int64(0))
        centre = low + (high - low) // 2
        origins = np.array(firsts, dtype=np.int64) + centre
        raw -= np.repeat(centre, chunks.counts)
    lo_grid = chunks.starts
    grid_fit = _Fit(raw, chunks, lo_grid)
    # Fewer bits wins; at equal sizes, the smaller numbers (zstd's choice).
    use_grid = (grid_fit.costs < dod_fit.costs) | (
        (grid_fit.costs == dod_fit.costs) & (grid_fit.weights < dod_fit.weights))
    grid_widths, grid_parts = grid_fit.pack(use_grid, lo_grid, chunks.ends)
    dod_widths, dod_parts = dod_fit.pack(~use_grid, lo, chunks.ends)
    heads = _heads(
        np.where(use_grid, TimeMode.GRID, TimeMode.DOD),
        np.where(use_grid, grid_widths, dod_widths),
        signed=(np.where(use_grid, origins, firsts), np.where(use_grid, steps, first_deltas)))
    return [head + (grid_parts[i] if grid else dod_parts[i])
            for i, (head, grid) in enumerate(zip(heads, use_grid.tolist(), strict=True))]


def _value_sections(values: Float64Array, chunks: _Chunks) -> list[tuple[Encoding, bytes]]:
    ks = _decimal_exponents(values, chunks)
    decimal = ks >= 0
    rows = np.repeat(decimal, chunks.counts)
    ints = np.zeros(len(values), dtype=np.int64)
    scales = np.repeat(_SCALES[np.maximum(ks, 0)], chunks.counts)
    ints[rows] = np.rint(values[rows] * scales[rows]).astype(np.int64)
    deltas = _diff(ints)
    lo1, lo2 = chunks.tail(1), chunks.tail(2)
    fit1 = _Fit(deltas, chunks, lo1, centre=True)
    fit2 = _Fit(_diff(deltas), chunks, lo2)
    # Gauges pack best as deltas, steady counters as delta-of-deltas: keep the smaller.
    order2 = (fit2.costs < fit1.costs) | (
        (fit2.costs == fit1.costs) & (fit2.weights < fit1.weights))
    bits = values.view(np.uint64)
    xored = bits ^ np.concatenate(([np.uint64(0)], bits[:-1]))
    some = chunks.counts > 0
    xored[chunks.starts[some]] = bits[chunks.starts[some]]  # each chunk starts afresh
    planes_xor = _Planes(xored)
    firsts = _at(ints, chunks.starts, chunks.counts >= 1)
    first_deltas = _at(deltas, chunks.starts + 1, chunks.counts >= 2)
    out: list[tuple[Encoding, bytes]] = []
    widths2, parts2 = fit2.pack(decimal & order2, lo2, chunks.ends)
    widths1, parts1 = fit1.pack(decimal & ~order2, lo1, chunks.ends)
    heads = _heads(np.maximum(ks, 0), 1 + order2, np.where(order2, widths2, widths1),
                   signed=(firsts, np.where(order2, first_deltas, fit1.centres)))
    for i, (start, end, k, second) in enumerate(zip(
        chunks.starts.tolist(), chunks.ends.tolist(), ks.tolist(), order2.tolist(), strict=True
    )):
        if k < 0:
            out.append((Encoding.XOR, planes_xor.shuffled(start, end, 8)))
        else:
            out.append((Encoding.DECIMAL, heads[i] + (parts2[i] if second else parts1[i])))
    return out


def _split_sections(values: Float64Array, chunks: _Chunks, which: Index) -> dict[int, bytes]:
    """Chunks ``which`` as sign bits, exponent deltas (patched) and 52-bit mantissas.

    Noise has random low bits that XOR cannot shrink, and zstd compresses the sign and
    exponent bytes poorly among them: about 57 bits a value against 60.
    """
    if not len(which):
        return {}
    counts = chunks.counts[which]
    ends = np.cumsum(counts)
    starts = ends - counts
    rows = np.repeat(chunks.starts[which] - starts, counts) + np.arange(int(ends[-1]))
    bits = values[rows].view(np.uint64)
    sub = _Chunks(starts, ends)
    exponents = ((bits >> np.uint64(52)) & np.uint64(0x7FF)).astype(np.int64)
    lo = sub.tail(1)
    widths, parts = _Fit(_diff(exponents), sub, lo).pack(counts >= 0, lo, ends)
    firsts = _at(exponents, starts, counts >= 1)
    tails: list[bytes] = [b""] * len(which)
    for size in np.unique(counts).tolist():  # chunks of one size at a time
        same = np.flatnonzero(counts == size)
        for first in range(0, len(same), max(1, _BATCH // max(size, 1))):
            batch = same[first:first + max(1, _BATCH // max(size, 1))]
            matrix = bits[starts[batch][:, None] + np.arange(size)]
            signs = np.packbits((matrix >> np.uint64(63)).astype(np.uint8), axis=1,
                                bitorder="little")
            for j, sign_bits, mantissas in zip(
                batch.tolist(), signs, _pack_mantissas(matrix & np.uint64(2**52 - 1)),
                strict=True,
            ):
                tails[j] = sign_bits.tobytes() + mantissas
    return {i: b"".join((_BYTE.pack(widths[j]), _varint(firsts[j]), parts[j], tails[j]))
            for j, i in enumerate(which.tolist())}


def _pack_mantissas(m: UInt64Array) -> list[bytes]:
    """Each row of ``m`` packed as ``_pack_bits(row, 52)`` does: 13 bytes a pair."""
    rows, size = m.shape
    pairs = size // 2
    out = np.empty((rows, _packed_size(size, 52)), dtype=np.uint8)
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


def _heads(*small: npt.ArrayLike, signed: tuple[npt.ArrayLike, ...]) -> list[bytes]:
    """Per chunk, its ``small`` values as bytes, then its ``signed`` ones as varints."""
    columns = [np.asarray(column, dtype=np.uint64)[:, None] for column in small]
    valid = [np.ones_like(column, dtype=np.bool_) for column in columns]
    for column in signed:
        z = _zigzag(np.asarray(column, dtype=np.int64))
        groups = z[:, None] >> (np.arange(_VARINT_BYTES, dtype=np.uint64) * np.uint64(7))
        more = np.zeros(groups.shape, dtype=np.bool_)
        more[:, :-1] = groups[:, 1:] != 0  # a next byte follows
        columns.append((groups & np.uint64(0x7F)) | (more * np.uint64(0x80)))
        valid.append(np.concatenate((np.ones((len(z), 1), dtype=np.bool_), more[:, :-1]), axis=1))
    table, keep = np.concatenate(columns, axis=1), np.concatenate(valid, axis=1)
    flat = table[keep].astype(np.uint8).tobytes()
    ends: list[int] = np.cumsum(keep.sum(axis=1)).tolist()
    return [flat[start:end] for start, end in zip([0, *ends[:-1]], ends, strict=True)]


def _varint(value: int) -> bytes:
    """An unsigned LEB128 varint: 7 bits a byte, least significant first."""
    out = bytearray()
    while value > 0x7F:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _read_varint(body: memoryview, pos: int) -> tuple[int, int]:
    """An unsigned varint at ``pos``, and where it ends."""
    value = shift = 0
    while True:
        if shift >= 7 * _VARINT_BYTES:
            raise ValueError("varint too long")
        byte = body[pos]  # IndexError past the end
        value |= (byte & 0x7F) << shift
        pos += 1
        shift += 7
        if not byte & 0x80:
            return value, pos


def _read_signed(body: memoryview, pos: int) -> tuple[int, int]:
    """A zig-zagged varint as an int64 (wrapping), and where it ends."""
    z, pos = _read_varint(body, pos)
    if z >= 2**64:
        raise ValueError("varint beyond 64 bits")
    return (z >> 1) ^ -(z & 1), pos


def _decimal_exponents(values: Float64Array, chunks: _Chunks) -> Int64Array:
    """Per chunk, the smallest k with every value exactly ``rint(v * 10**k) / 10**k``; or -1."""
    ks = np.full(len(chunks.counts), -1, dtype=np.int64)
    negative_zero = (np.signbit(values) & (values == 0)).astype(np.uint8)
    # -0.0 would come back as 0.0, and an empty chunk has nothing to gain.
    eligible = (chunks.counts > 0) & (
        chunks.reduce(np.maximum, negative_zero, chunks.starts, np.uint8(0)) == 0
    )
    if not eligible.any():
        return ks
    with np.errstate(over="ignore", invalid="ignore"):  # inf and NaN simply fail the test
        # Try every k on a few values of each chunk at once, then confirm on all values.
        offsets = np.minimum(np.arange(_PROBE), chunks.counts[eligible, None] - 1)
        probe = values[chunks.starts[eligible, None] + offsets]
        passing = np.all(_exact(probe[:, :, None], _SCALES), axis=1)
        candidate = np.where(passing.any(axis=1), passing.argmax(axis=1), -1)
        ks[np.flatnonzero(eligible)] = candidate
        tried = ks >= 0
        scales = np.repeat(np.where(tried, _SCALES[np.maximum(ks, 0)], 1.0), chunks.counts)
        exact = _exact(values, scales).astype(np.uint8)
        confirmed = chunks.reduce(np.minimum, exact, chunks.starts, np.uint8(1)) == 1
        for i in np.flatnonzero(tried & ~confirmed).tolist():  # rare: a larger k may still fit
            lo, hi = int(chunks.starts[i]), int(chunks.ends[i])
            ks[i] = _smallest_exponent(values[lo:hi], int(ks[i]) + 1)
    return ks


def _smallest_exponent(values: Float64Array, first: int) -> int:
    for k in range(first, _MAX_DECIMALS + 1):
        if _exact(values, _SCALES[k]).all():
            return k
    return -1


def _exact(values: Float64Array, scale: Float64Array | np.float64) -> npt.NDArray[np.bool_]:
    ints: Float64Array = np.rint(values * scale)
    exact: npt.NDArray[np.bool_] = (np.abs(ints) < _MAX_EXACT) & (ints / scale == values)
    return exact


# -- integer helpers ----------------------------------------------------------------------


def _diff(x: Int64Array) -> Int64Array:
    """``x[i] - x[i - 1]``, with 0 in front so indexes line up with ``x``."""
    out = np.empty_like(x)
    out[:1] = 0
    np.subtract(x[1:], x[:-1], out=out[1:])  # wraps on overflow; decoding wraps back
    return out


def _zigzag(x: Int64Array) -> UInt64Array:
    out = x << 1
    out ^= x >> 63
    return out.view(np.uint64)


def _unzigzag(z: UInt64Array) -> Int64Array:
    return ((z >> np.uint64(1)) ^ (np.uint64(0) - (z & np.uint64(1)))).view(np.int64)


def _bits(top: UInt64Array) -> npt.NDArray[np.int64]:
    """How many bits each value needs (0 for 0)."""
    bits: npt.NDArray[np.int64] = np.searchsorted(_POWERS, top, side="right")
    return bits


def _widths(top: UInt64Array) -> npt.NDArray[np.int64]:
    """The narrowest of 1, 2, 4, 8 bytes that holds each value."""
    widths: npt.NDArray[np.int64] = _WIDTHS[np.searchsorted(_WIDTH_LIMITS, top, side="right")]
    return widths


def _at(arr: Int64Array, index: Index, valid: npt.NDArray[np.bool_]) -> list[int]:
    """``arr[index]`` as Python ints, 0 where not ``valid``."""
    out = np.zeros(len(index), dtype=np.int64)
    out[valid] = arr[index[valid]]
    ints: list[int] = out.tolist()
    return ints


# -- decoding -----------------------------------------------------------------------------


def _unpack_bits(body: memoryview, pos: int, count: int, bits: int) -> UInt64Array:
    """Inverse of :func:`_pack_bits`."""
    if not bits or not count:
        return np.zeros(count, dtype=np.uint64)
    if bits > 64:
        raise ValueError(f"{bits} bits per value")
    raw = np.frombuffer(body, dtype=np.uint8, count=_packed_size(count, bits), offset=pos)
    if bits == 8:
        return raw.astype(np.uint64)
    planes = np.zeros((count, 64), dtype=np.uint8)
    planes[:, :bits] = np.unpackbits(raw, count=count * bits, bitorder="little").reshape(
        count, bits)
    out: UInt64Array = np.packbits(planes, axis=1, bitorder="little").view("<u8").reshape(count)
    return out


def _packed_size(count: int, bits: int) -> int:
    return (count * bits + 7) // 8


def _unpack_stream(body: memoryview, pos: int, count: int, width: int,
                   version: int) -> tuple[UInt64Array, int]:
    """A bit-packed stream of ``count`` values after a head ending in ``width``; the end."""
    if version < 3 or not width & _PATCHED:
        return _unpack_bits(body, pos, count, width), pos + _packed_size(count, width)
    width &= ~_PATCHED
    exceptions, pos = _read_varint(body, pos)
    high_bits = body[pos]
    pos += 1
    if not 0 < exceptions <= count or width + high_bits > 64:
        raise ValueError(f"{exceptions} exceptions of {width} + {high_bits} bits")
    out = _unpack_bits(body, pos, count, width)
    pos += _packed_size(count, width)
    position_bits = _position_bits(count)
    where = _unpack_bits(body, pos, exceptions, position_bits).astype(np.intp)
    pos += _packed_size(exceptions, position_bits)
    highs = _unpack_bits(body, pos, exceptions, high_bits)
    if (where >= count).any():
        raise ValueError("exception beyond the values")
    out[where] |= highs << np.uint64(width)
    return out, pos + _packed_size(exceptions, high_bits)


def _unpack_uints(body: memoryview, pos: int, count: int, width: int) -> UInt64Array:
    planes = np.frombuffer(body, dtype=np.uint8, count=count * width, offset=pos)
    narrow = planes.reshape(width, count).T.copy().view(f"<u{width}").reshape(count)
    return narrow.astype(np.uint64)


def _decode_ts(body: memoryview, n: int, version: int) -> tuple[Int64Array, int]:
    if version == 1:
        first, delta, width = _TS_HEAD_V1.unpack_from(body, 0)
        mode, pos = int(TimeMode.DOD), _TS_HEAD_V1.size
    elif version == 2:
        first, delta, mode, width = _TS_HEAD.unpack_from(body, 0)
        pos = _TS_HEAD.size
    else:
        mode, width = body[0], body[1]
        first, pos = _read_signed(body, 2)
        delta, pos = _read_signed(body, pos)
    if mode == TimeMode.GRID:  # ``first`` is the grid's origin, ``delta`` its step
        zigzagged, end = _unpack_stream(body, pos, n, width, version)
        with np.errstate(over="ignore"):
            out: Int64Array = np.arange(n, dtype=np.int64) * np.int64(delta) + np.int64(first)
            out += _unzigzag(zigzagged)
        return out, end
    if mode != TimeMode.DOD:
        raise ValueError(f"unknown timestamp mode {mode}")
    dods = max(n - 2, 0)
    if version == 1:
        zigzagged = _unpack_uints(body, pos, dods, width)
        return _undiff(first, delta, _unzigzag(zigzagged), n), pos + dods * width
    zigzagged, end = _unpack_stream(body, pos, dods, width, version)
    return _undiff(first, delta, _unzigzag(zigzagged), n), end


def _undiff(first: int, delta: int, dods: Int64Array, n: int) -> Int64Array:
    """Invert the delta-of-deltas given x[0] and x[1] - x[0] (wrapping like the encoder)."""
    deltas = np.empty(max(n - 1, 0), dtype=np.int64)
    if n > 1:
        deltas[0] = delta
        np.cumsum(dods, out=deltas[1:])
        deltas[1:] += np.int64(delta)
    return _cumulate(first, deltas, n)


def _cumulate(first: int, deltas: Int64Array, n: int) -> Int64Array:
    out = np.empty(n, dtype=np.int64)
    if n:
        out[0] = first
        np.cumsum(deltas, out=out[1:])
        out[1:] += np.int64(first)
    return out


def _decode_xor(body: memoryview, pos: int, n: int) -> Float64Array:
    xored = _unpack_uints(body, pos, n, 8)
    # XOR is its own inverse, so a prefix XOR-scan restores the bits.
    return np.bitwise_xor.accumulate(xored).view(np.float64)


def _decode_split(body: memoryview, pos: int, n: int, version: int) -> Float64Array:
    if version < 3:
        raise ValueError(f"encoding {Encoding.SPLIT} in version {version}")
    width = body[pos]
    first, pos = _read_varint(body, pos + 1)
    if first > 0x7FF:
        raise ValueError(f"exponent {first}")
    diffs, pos = _unpack_stream(body, pos, max(n - 1, 0), width, 3)
    exponents = _cumulate(first, _unzigzag(diffs), n).view(np.uint64) & np.uint64(0x7FF)
    signs = _unpack_bits(body, pos, n, 1)
    mantissas = _unpack_bits(body, pos + _packed_size(n, 1), n, 52)
    bits: UInt64Array = (signs << np.uint64(63)) | (exponents << np.uint64(52)) | mantissas
    return bits.view(np.float64)


def _decode_decimal(body: memoryview, pos: int, n: int, version: int) -> Float64Array:
    if version < 3:
        k, order, first, delta, width = _DEC_HEAD.unpack_from(body, pos)
        pos += _DEC_HEAD.size
    else:
        k, order, width = body[pos], body[pos + 1], body[pos + 2]
        first, pos = _read_signed(body, pos + 3)
        delta, pos = _read_signed(body, pos)
    count = max(n - order, 0)
    if version == 1:  # byte widths
        diffs = _unzigzag(_unpack_uints(body, pos, count, width))
    else:
        diffs = _unzigzag(_unpack_stream(body, pos, count, width, version)[0])
    if order == 1:
        if version >= 3:  # deltas around a centre (``delta``)
            with np.errstate(over="ignore"):
                diffs += np.int64(delta)
        ints = _cumulate(first, diffs, n)
    else:
        ints = _undiff(first, delta, diffs, n)
    values: Float64Array = ints.astype(np.float64) / _SCALES[k]
    return values
