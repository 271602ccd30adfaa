"""Chunk encoding: a run of one series' points as one compact, self-describing blob.

The scheme follows Gorilla (timestamps as delta-of-delta, values relative to the
previous value) but works on numpy arrays: integers are bit-packed at the width the
largest of a chunk needs, float bits byte-shuffled, and zstd goes over the whole:

* timestamps become int64 milliseconds, stored one of two ways, chosen per chunk:

  - ``DOD``: the first value and first delta as they are, then the delta-of-deltas,
    zig-zagged and bit-packed (a regular 10 s series is all zeros: 0 bits);
  - ``GRID``: an origin and a step, then each timestamp's distance from
    ``origin + i * step``, zig-zagged and bit-packed. A poller's timestamps
    are a grid give or take its jitter: the distance is the jitter (±20 ms: 6 bits),
    where a delta-of-delta is the difference of three jitters (7-8 bits);
* values are stored one of two ways, chosen per chunk:

  - ``DECIMAL`` when every value is exactly ``integer / 10**k`` (counters, gauges
    rounded to a few decimals): the integers' deltas, or delta-of-deltas when those
    are smaller (steady counters), zig-zagged and bit-packed. This is what brings
    real data to 1-4 bytes per point;
  - ``XOR`` otherwise: each value's bits XOR the previous value's bits as uint64, then
    the eight byte planes are transposed (byte-shuffled) so zstd sees the runs of equal
    sign and exponent bytes. Exact for every bit pattern (NaN payloads, inf, -0.0);

* histogram and object chunks keep the same timestamps and a msgpack list of the
  values (``{bucket: count}`` dicts, or any JSON values); the reader says which.

Blob layout: ``version:u8 | encoding:u8 | zstd(count:u32 | timestamps | values)``,
little-endian. Version 1 has only ``DOD`` timestamps (``first:i8 | delta:i8 |
width:u8 | ...``) and stores integers byte-shuffled in 1, 2, 4 or 8 bytes (``width`` in
bytes); version 2 adds a time mode byte (``first or origin:i8 | delta or step:i8 |
mode:u8 | bits:u8 | ...``) and bit-packs (widths in bits, 0-64), which takes counters
of ~21 bits from 4 bytes to 2.7. Both are read; new chunks are version 2. Decoding
refuses versions it does not know, so a later format can be added beside these.

:func:`encode_float_chunks` encodes many chunks in one call: the transforms run once
over all rows, leaving only slicing and zstd per chunk. Compaction of thousands of
series uses it; the one-chunk functions are the same code with one chunk.

zstd contexts are cached per thread: they are not safe to share between threads and
are costly to build for every chunk.
"""

from __future__ import annotations

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

FORMAT_VERSION: Final = 2
_READABLE: Final = frozenset({1, 2})
MAX_SECONDS: Final = 2**53 / 1000  # milliseconds stay exact integers in a double
ZSTD_LEVEL: Final = 3

_HEADER = struct.Struct("<BB")
_COUNT = struct.Struct("<I")
_TS_HEAD_V1 = struct.Struct("<qqB")  # first ts, first delta, width of the delta-of-deltas
_TS_HEAD = struct.Struct("<qqBB")  # first ts, first delta or step, TimeMode, width
_DEC_HEAD = struct.Struct("<BBqqB")  # k, order, first integer, first delta, width
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
    return [
        _pack(encoding, count, ts_part, value_part)
        for count, ts_part, (encoding, value_part) in zip(
            chunks.counts.tolist(), ts_sections, value_sections, strict=True
        )
    ]


def decode_floats_ms(blob: bytes) -> tuple[Int64Array, Float64Array]:
    """Decode a float chunk to ``(int64 ms, values)``."""
    version, encoding, n, body = _unpack(blob)
    if encoding == Encoding.OBJECTS:
        raise ArchiveError("chunk holds objects, not floats")
    try:
        ts, pos = _decode_ts(body, n, version)
        if encoding == Encoding.XOR:
            return ts, _decode_xor(body, pos, n)
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


def _pack(encoding: Encoding, n: int, *parts: bytes) -> bytes:
    body = b"".join((_COUNT.pack(n), *parts))
    return _HEADER.pack(FORMAT_VERSION, encoding) + _zstd.compressor.compress(body)


def _unpack(blob: bytes) -> tuple[int, Encoding, int, memoryview]:
    if len(blob) < _HEADER.size:
        raise ArchiveError("corrupt chunk: shorter than its header")
    version, encoding = _HEADER.unpack_from(blob)
    if version not in _READABLE:
        raise ArchiveError(f"chunk format version {version} is not supported")
    try:
        body = memoryview(_zstd.decompressor.decompress(blob[_HEADER.size :]))
        (n,) = _COUNT.unpack_from(body)
        return version, Encoding(encoding), n, body[_COUNT.size :]
    except (zstandard.ZstdError, struct.error, ValueError) as exc:
        raise ArchiveError(f"corrupt chunk: {exc}") from exc


# -- many chunks at once -----------------------------------------------------------------


class _Chunks:
    """Row ranges ``[starts[i], ends[i])`` of one array, and per-chunk reductions over it."""

    def __init__(self, starts: Index, ends: Index) -> None:
        self.starts = starts
        self.ends = ends
        self.counts = ends - starts

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

    def mean(self, arr: UInt64Array, lo: Index) -> Float64Array:
        sums: Float64Array = self.reduce(np.add, arr.astype(np.float64), lo, 0.0)
        means: Float64Array = sums / np.maximum(self.ends - lo, 1)
        return means


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

    def packed(self, lo: int, hi: int, bits: int) -> bytes:
        """The low ``bits`` bits of each value, one after another (least significant first)."""
        part = self._values[lo:hi]
        if not bits or not len(part):
            return b""
        if bits == 8:
            return part.astype(np.uint8).tobytes()
        planes = ((part[:, None] >> _SHIFTS[:bits]) & np.uint64(1)).astype(np.uint8)
        return np.packbits(planes.ravel(), bitorder="little").tobytes()


def _ts_sections(ts: Int64Array, chunks: _Chunks) -> list[bytes]:
    deltas = _diff(ts)
    dods = _zigzag(_diff(deltas))
    lo = chunks.tail(2)
    widths = _bits(chunks.reduce(np.maximum, dods, lo, np.uint64(0)))
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
        origins = (np.array(firsts, dtype=np.int64) + centre).tolist()
        off = _zigzag(raw - np.repeat(centre, chunks.counts))
    lo_grid = chunks.starts
    grid_widths = _bits(chunks.reduce(np.maximum, off, lo_grid, np.uint64(0)))
    # Fewer bits per point wins; at equal widths, the smaller numbers (zstd's choice).
    use_grid = (grid_widths < widths) | (
        (grid_widths == widths) & (chunks.mean(off, lo_grid) < chunks.mean(dods, lo)))
    planes, grid_planes = _Planes(dods), _Planes(off)
    out = []
    for i, (first, end) in enumerate(zip(firsts, chunks.ends.tolist(), strict=True)):
        if use_grid[i]:
            width = int(grid_widths[i])
            out.append(_TS_HEAD.pack(origins[i], int(steps[i]), TimeMode.GRID, width)
                       + grid_planes.packed(int(lo_grid[i]), end, width))
        else:
            width = int(widths[i])
            out.append(_TS_HEAD.pack(first, first_deltas[i], TimeMode.DOD, width)
                       + planes.packed(int(lo[i]), end, width))
    return out


def _value_sections(values: Float64Array, chunks: _Chunks) -> list[tuple[Encoding, bytes]]:
    ks = _decimal_exponents(values, chunks)
    decimal = ks >= 0
    rows = np.repeat(decimal, chunks.counts)
    ints = np.zeros(len(values), dtype=np.int64)
    scales = np.repeat(_SCALES[np.maximum(ks, 0)], chunks.counts)
    ints[rows] = np.rint(values[rows] * scales[rows]).astype(np.int64)
    deltas = _diff(ints)
    z1, z2 = _zigzag(deltas), _zigzag(_diff(deltas))
    lo1, lo2 = chunks.tail(1), chunks.tail(2)
    max1 = chunks.reduce(np.maximum, z1, lo1, np.uint64(0))
    max2 = chunks.reduce(np.maximum, z2, lo2, np.uint64(0))
    w1, w2 = _bits(max1), _bits(max2)
    # Gauges pack best as deltas, steady counters as delta-of-deltas: keep the smaller.
    order2 = (w2 < w1) | ((w2 == w1) & (chunks.mean(z2, lo2) < chunks.mean(z1, lo1)))
    bits = values.view(np.uint64)
    xored = bits ^ np.concatenate(([np.uint64(0)], bits[:-1]))
    some = chunks.counts > 0
    xored[chunks.starts[some]] = bits[chunks.starts[some]]  # each chunk starts afresh
    planes1, planes2, planes_xor = _Planes(z1), _Planes(z2), _Planes(xored)
    firsts = _at(ints, chunks.starts, chunks.counts >= 1)
    first_deltas = _at(deltas, chunks.starts + 1, chunks.counts >= 2)
    out: list[tuple[Encoding, bytes]] = []
    for i, (start, end, k) in enumerate(
        zip(chunks.starts.tolist(), chunks.ends.tolist(), ks.tolist(), strict=True)
    ):
        if k < 0:
            out.append((Encoding.XOR, planes_xor.shuffled(start, end, 8)))
        elif order2[i]:
            head = _DEC_HEAD.pack(k, 2, firsts[i], first_deltas[i], int(w2[i]))
            out.append((Encoding.DECIMAL, head + planes2.packed(int(lo2[i]), end, int(w2[i]))))
        else:
            head = _DEC_HEAD.pack(k, 1, firsts[i], 0, int(w1[i]))
            out.append((Encoding.DECIMAL, head + planes1.packed(int(lo1[i]), end, int(w1[i]))))
    return out


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
    return ((x << 1) ^ (x >> 63)).view(np.uint64)


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
    """Inverse of :meth:`_Planes.packed`."""
    if not bits or not count:
        return np.zeros(count, dtype=np.uint64)
    if bits > 64:
        raise ValueError(f"{bits} bits per value")
    raw = np.frombuffer(body, dtype=np.uint8, count=_packed_size(count, bits), offset=pos)
    if bits == 8:
        return raw.astype(np.uint64)
    planes = np.unpackbits(raw, count=count * bits, bitorder="little").reshape(count, bits)
    out: UInt64Array = (planes.astype(np.uint64) << _SHIFTS[:bits]).sum(axis=1, dtype=np.uint64)
    return out


def _packed_size(count: int, bits: int) -> int:
    return (count * bits + 7) // 8


def _unpack_uints(body: memoryview, pos: int, count: int, width: int) -> UInt64Array:
    planes = np.frombuffer(body, dtype=np.uint8, count=count * width, offset=pos)
    narrow = planes.reshape(width, count).T.copy().view(f"<u{width}").reshape(count)
    return narrow.astype(np.uint64)


def _decode_ts(body: memoryview, n: int, version: int) -> tuple[Int64Array, int]:
    if version == 1:
        first, delta, width = _TS_HEAD_V1.unpack_from(body, 0)
        mode, pos = TimeMode.DOD, _TS_HEAD_V1.size
    else:
        first, delta, mode, width = _TS_HEAD.unpack_from(body, 0)
        pos = _TS_HEAD.size
    if mode == TimeMode.GRID:  # ``first`` is the grid's origin, ``delta`` its step
        off = _unzigzag(_unpack_bits(body, pos, n, width))
        with np.errstate(over="ignore"):
            out: Int64Array = np.arange(n, dtype=np.int64) * np.int64(delta) + np.int64(first)
            out += off
        return out, pos + _packed_size(n, width)
    if mode != TimeMode.DOD:
        raise ValueError(f"unknown timestamp mode {mode}")
    dods = max(n - 2, 0)
    if version == 1:
        zigzagged = _unpack_uints(body, pos, dods, width)
        return _undiff(first, delta, _unzigzag(zigzagged), n), pos + dods * width
    zigzagged = _unpack_bits(body, pos, dods, width)
    return _undiff(first, delta, _unzigzag(zigzagged), n), pos + _packed_size(dods, width)


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


def _decode_decimal(body: memoryview, pos: int, n: int, version: int) -> Float64Array:
    k, order, first, delta, width = _DEC_HEAD.unpack_from(body, pos)
    pos += _DEC_HEAD.size
    unpack = _unpack_uints if version == 1 else _unpack_bits  # byte widths, bit widths
    diffs = _unzigzag(unpack(body, pos, max(n - order, 0), width))
    ints = _cumulate(first, diffs, n) if order == 1 else _undiff(first, delta, diffs, n)
    values: Float64Array = ints.astype(np.float64) / _SCALES[k]
    return values
