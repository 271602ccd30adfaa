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

Bit-packing (version 3) is patched: one width per stream of a chunk, the values wider
than it (a counter reset, a jump) stored apart. :mod:`watchkeeper.archive.bitpack` does
it, and describes a ``stream``'s layout, varints and byte planes.

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

import struct
import threading
from collections.abc import Sequence
from enum import IntEnum
from typing import Any, Final

import msgspec
import numpy as np
import numpy.typing as npt
import zstandard

from watchkeeper.archive.bitpack import (
    BATCH,
    BytePlanes,
    Chunks,
    Fit,
    Index,
    Int64Array,
    UInt64Array,
    diff,
    ints_at,
    pack_52_bits,
    pack_heads,
    packed_size,
    read_signed_varint,
    read_varint,
    unpack_bits,
    unpack_byte_planes,
    unpack_stream,
    unzigzag,
    varint,
)
from watchkeeper.errors import ArchiveError

Float64Array = npt.NDArray[np.float64]

FORMAT_VERSION: Final = 3
_READABLE: Final = frozenset({1, 2, 3})
MAX_SECONDS: Final = 2**53 / 1000  # milliseconds stay exact integers in a double
ZSTD_LEVEL: Final = 3

_HEADER = struct.Struct("<BB")
_COUNT = struct.Struct("<I")
_TS_HEAD_V1 = struct.Struct("<qqB")  # first ts, first delta, width of the delta-of-deltas
_TS_HEAD = struct.Struct("<qqBB")  # first ts, first delta or step, TimeMode, width
_DEC_HEAD = struct.Struct("<BBqqB")  # k, order, first integer, first delta or centre, width
_RAW: Final = 0x80  # version 3, in the encoding byte: the body is not compressed
_BYTE = struct.Struct("<B")
_MAX_EXACT: Final = float(2**53)  # integers beyond this are not exact in a double
_MAX_DECIMALS: Final = 15
# Decoding divides a DECIMAL chunk's integers by its scale.
DECIMAL_SCALES: Final = np.array([10.0**k for k in range(_MAX_DECIMALS + 1)])
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
    chunks = Chunks(edges[:-1], edges[1:])
    ts_sections = _ts_sections(ts, chunks)
    value_sections = _value_sections(values, chunks)
    split = _split_sections(values, chunks, np.flatnonzero(
        np.array([encoding == Encoding.XOR for encoding, _ in value_sections], dtype=np.bool_)))
    blobs = _packed(chunks.counts.tolist(), ts_sections, value_sections)
    for i, part in split.items():  # XOR or SPLIT: whichever is smaller
        # Random mantissas: zstd would only add its frame.
        other = _pack(Encoding.SPLIT, int(chunks.counts[i]), ts_sections[i], part,
                      compress=False)
        if len(other) < len(blobs[i]):
            blobs[i] = other
    return blobs


def decode_floats_ms(blob: bytes) -> tuple[Int64Array, Float64Array]:
    """Decode a float chunk to ``(int64 ms, values)``."""
    version, encoding, n, body = unpack_chunk(blob)
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
    (ts_part,) = _ts_sections(ts, Chunks(np.array([0]), np.array([len(ts)])))
    return _pack(Encoding.OBJECTS, len(ts), ts_part, msgspec.msgpack.encode(objects))


def decode_objects_ms(blob: bytes, values_type: Any = HISTOGRAMS) -> tuple[Int64Array, list[Any]]:
    """Decode a histogram chunk to ``(int64 ms, histograms)``.

    ``values_type`` is what the values must be: :data:`HISTOGRAMS` (the default) or
    :data:`JSON_VALUES` for object chunks.
    """
    version, encoding, n, body = unpack_chunk(blob)
    if encoding != Encoding.OBJECTS:
        raise ArchiveError("chunk holds floats, not objects")
    try:
        ts, pos = _decode_ts(body, n, version)
        objects: list[Any] = msgspec.msgpack.decode(body[pos:], type=values_type)
    except (struct.error, ValueError, IndexError, msgspec.DecodeError) as exc:
        raise ArchiveError(f"corrupt chunk: {exc}") from exc
    if len(objects) != n:
        raise ArchiveError(f"corrupt chunk: {n} timestamps but {len(objects)} objects")
    return ts, objects


# -- framing ------------------------------------------------------------------------------


def _pack(encoding: Encoding, n: int, *parts: bytes, compress: bool = True) -> bytes:
    body = b"".join((varint(n), *parts))
    if not compress:
        return _HEADER.pack(FORMAT_VERSION, encoding | _RAW) + body
    compressed = _zstd.compressor.compress(body)
    if len(body) < len(compressed):  # bit-packed integers often are: save the frame
        return _HEADER.pack(FORMAT_VERSION, encoding | _RAW) + body
    return _HEADER.pack(FORMAT_VERSION, encoding) + compressed


def _packed(counts: list[int], ts_sections: list[bytes],
            value_sections: list[tuple[Encoding, bytes]]) -> list[bytes]:
    """:func:`_pack` of every chunk, with its per-chunk steps made once (a flush of a
    million series packs a million chunks: ~5 µs a chunk went to the steps alone)."""
    counts_v = {count: varint(count) for count in set(counts)}
    raw_heads = {e: _HEADER.pack(FORMAT_VERSION, e | _RAW) for e in Encoding}
    zstd_heads = {e: _HEADER.pack(FORMAT_VERSION, e) for e in Encoding}
    compress = _zstd.compressor.compress
    blobs = []
    for count, ts_part, (encoding, value_part) in zip(counts, ts_sections, value_sections,
                                                      strict=True):
        body = b"".join((counts_v[count], ts_part, value_part))
        compressed = compress(body)
        blobs.append(raw_heads[encoding] + body if len(body) < len(compressed)
                     else zstd_heads[encoding] + compressed)
    return blobs


def unpack_chunk(blob: bytes) -> tuple[int, Encoding, int, memoryview]:
    """A chunk's version, encoding, point count and body (after the count; unzipped)."""
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
        n, pos = read_varint(body, 0)
        return version, Encoding(encoding), n, body[pos:]
    except (zstandard.ZstdError, struct.error, ValueError, IndexError) as exc:
        raise ArchiveError(f"corrupt chunk: {exc}") from exc


# -- many chunks at once -----------------------------------------------------------------


def _ts_sections(ts: Int64Array, chunks: Chunks) -> list[bytes]:
    deltas = diff(ts)
    lo = chunks.tail(2)
    dod_fit = Fit(diff(deltas), chunks, lo)
    firsts = ints_at(ts, chunks.starts, chunks.counts >= 1)
    first_deltas = ints_at(deltas, chunks.starts + 1, chunks.counts >= 2)
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
    grid_fit = Fit(raw, chunks, lo_grid)
    # Fewer bits wins; at equal sizes, the smaller numbers (zstd's choice).
    use_grid = (grid_fit.costs < dod_fit.costs) | (
        (grid_fit.costs == dod_fit.costs) & (grid_fit.weights < dod_fit.weights))
    grid_widths, grid_parts = grid_fit.pack(use_grid, lo_grid, chunks.ends)
    dod_widths, dod_parts = dod_fit.pack(~use_grid, lo, chunks.ends)
    heads = pack_heads(
        np.where(use_grid, TimeMode.GRID, TimeMode.DOD),
        np.where(use_grid, grid_widths, dod_widths),
        signed=(np.where(use_grid, origins, firsts), np.where(use_grid, steps, first_deltas)))
    return [head + (grid_parts[i] if grid else dod_parts[i])
            for i, (head, grid) in enumerate(zip(heads, use_grid.tolist(), strict=True))]


def _value_sections(values: Float64Array, chunks: Chunks) -> list[tuple[Encoding, bytes]]:
    ks = _decimal_exponents(values, chunks)
    decimal = ks >= 0
    rows = np.repeat(decimal, chunks.counts)
    ints = np.zeros(len(values), dtype=np.int64)
    scales = np.repeat(DECIMAL_SCALES[np.maximum(ks, 0)], chunks.counts)
    ints[rows] = np.rint(values[rows] * scales[rows]).astype(np.int64)
    deltas = diff(ints)
    lo1, lo2 = chunks.tail(1), chunks.tail(2)
    fit1 = Fit(deltas, chunks, lo1, centre=True)
    fit2 = Fit(diff(deltas), chunks, lo2)
    # Gauges pack best as deltas, steady counters as delta-of-deltas: keep the smaller.
    order2 = (fit2.costs < fit1.costs) | (
        (fit2.costs == fit1.costs) & (fit2.weights < fit1.weights))
    bits = values.view(np.uint64)
    xored = bits ^ np.concatenate(([np.uint64(0)], bits[:-1]))
    some = chunks.counts > 0
    xored[chunks.starts[some]] = bits[chunks.starts[some]]  # each chunk starts afresh
    planes_xor = BytePlanes(xored)
    firsts = ints_at(ints, chunks.starts, chunks.counts >= 1)
    first_deltas = ints_at(deltas, chunks.starts + 1, chunks.counts >= 2)
    widths2, parts2 = fit2.pack(decimal & order2, lo2, chunks.ends)
    widths1, parts1 = fit1.pack(decimal & ~order2, lo1, chunks.ends)
    heads = pack_heads(np.maximum(ks, 0), 1 + order2, np.where(order2, widths2, widths1),
                      signed=(firsts, np.where(order2, first_deltas, fit1.centres)))
    # One Fit packed each chunk (the other left it empty): joining both picks it.
    out = [(Encoding.DECIMAL, b"".join(parts)) for parts in zip(heads, parts2, parts1,
                                                                  strict=True)]
    for i in np.flatnonzero(~decimal).tolist():
        out[i] = (Encoding.XOR, planes_xor.shuffled(int(chunks.starts[i]), int(chunks.ends[i]), 8))
    return out


def _split_sections(values: Float64Array, chunks: Chunks, which: Index) -> dict[int, bytes]:
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
    sub = Chunks(starts, ends)
    exponents = ((bits >> np.uint64(52)) & np.uint64(0x7FF)).astype(np.int64)
    lo = sub.tail(1)
    widths, parts = Fit(diff(exponents), sub, lo).pack(counts >= 0, lo, ends)
    firsts = ints_at(exponents, starts, counts >= 1)
    tails: list[bytes] = [b""] * len(which)
    for size in np.unique(counts).tolist():  # chunks of one size at a time
        same = np.flatnonzero(counts == size)
        for first in range(0, len(same), max(1, BATCH // max(size, 1))):
            batch = same[first:first + max(1, BATCH // max(size, 1))]
            matrix = bits[starts[batch][:, None] + np.arange(size)]
            signs = np.packbits((matrix >> np.uint64(63)).astype(np.uint8), axis=1,
                                bitorder="little")
            for j, sign_bits, mantissas in zip(
                batch.tolist(), signs, pack_52_bits(matrix & np.uint64(2**52 - 1)),
                strict=True,
            ):
                tails[j] = sign_bits.tobytes() + mantissas
    return {i: b"".join((_BYTE.pack(widths[j]), varint(firsts[j]), parts[j], tails[j]))
            for j, i in enumerate(which.tolist())}


def _decimal_exponents(values: Float64Array, chunks: Chunks) -> Int64Array:
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
        passing = np.all(_exact(probe[:, :, None], DECIMAL_SCALES), axis=1)
        candidate = np.where(passing.any(axis=1), passing.argmax(axis=1), -1)
        ks[np.flatnonzero(eligible)] = candidate
        tried = ks >= 0
        scales = np.repeat(np.where(tried, DECIMAL_SCALES[np.maximum(ks, 0)], 1.0), chunks.counts)
        exact = _exact(values, scales).astype(np.uint8)
        confirmed = chunks.reduce(np.minimum, exact, chunks.starts, np.uint8(1)) == 1
        for i in np.flatnonzero(tried & ~confirmed).tolist():  # rare: a larger k may still fit
            lo, hi = int(chunks.starts[i]), int(chunks.ends[i])
            ks[i] = _smallest_exponent(values[lo:hi], int(ks[i]) + 1)
    return ks


def _smallest_exponent(values: Float64Array, first: int) -> int:
    for k in range(first, _MAX_DECIMALS + 1):
        if _exact(values, DECIMAL_SCALES[k]).all():
            return k
    return -1


def _exact(values: Float64Array, scale: Float64Array | np.float64) -> npt.NDArray[np.bool_]:
    ints: Float64Array = np.rint(values * scale)
    exact: npt.NDArray[np.bool_] = (np.abs(ints) < _MAX_EXACT) & (ints / scale == values)
    return exact


# -- decoding -----------------------------------------------------------------------------


def _decode_ts(body: memoryview, n: int, version: int) -> tuple[Int64Array, int]:
    if version == 1:
        first, delta, width = _TS_HEAD_V1.unpack_from(body, 0)
        mode, pos = int(TimeMode.DOD), _TS_HEAD_V1.size
    elif version == 2:
        first, delta, mode, width = _TS_HEAD.unpack_from(body, 0)
        pos = _TS_HEAD.size
    else:
        mode, width = body[0], body[1]
        first, pos = read_signed_varint(body, 2)
        delta, pos = read_signed_varint(body, pos)
    if mode == TimeMode.GRID:  # ``first`` is the grid's origin, ``delta`` its step
        zigzagged, end = unpack_stream(body, pos, n, width, version)
        # Integer arrays wrap silently (as the encoder's did); only scalars would warn.
        out: Int64Array = np.arange(n, dtype=np.int64) * np.int64(delta) + np.int64(first)
        out += unzigzag(zigzagged)
        return out, end
    if mode != TimeMode.DOD:
        raise ValueError(f"unknown timestamp mode {mode}")
    dods = max(n - 2, 0)
    if version == 1:
        zigzagged = unpack_byte_planes(body, pos, dods, width)
        return _undiff(first, delta, unzigzag(zigzagged), n), pos + dods * width
    zigzagged, end = unpack_stream(body, pos, dods, width, version)
    return _undiff(first, delta, unzigzag(zigzagged), n), end


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
    xored = unpack_byte_planes(body, pos, n, 8)
    # XOR is its own inverse, so a prefix XOR-scan restores the bits.
    return np.bitwise_xor.accumulate(xored).view(np.float64)


def _decode_split(body: memoryview, pos: int, n: int, version: int) -> Float64Array:
    if version < 3:
        raise ValueError(f"encoding {Encoding.SPLIT} in version {version}")
    width = body[pos]
    first, pos = read_varint(body, pos + 1)
    if first > 0x7FF:
        raise ValueError(f"exponent {first}")
    diffs, pos = unpack_stream(body, pos, max(n - 1, 0), width, 3)
    exponents = _cumulate(first, unzigzag(diffs), n).view(np.uint64) & np.uint64(0x7FF)
    signs = unpack_bits(body, pos, n, 1)
    mantissas = unpack_bits(body, pos + packed_size(n, 1), n, 52)
    bits: UInt64Array = (signs << np.uint64(63)) | (exponents << np.uint64(52)) | mantissas
    return bits.view(np.float64)


def _decode_decimal(body: memoryview, pos: int, n: int, version: int) -> Float64Array:
    if version < 3:
        k, order, first, delta, width = _DEC_HEAD.unpack_from(body, pos)
        pos += _DEC_HEAD.size
    else:
        k, order, width = body[pos], body[pos + 1], body[pos + 2]
        first, pos = read_signed_varint(body, pos + 3)
        delta, pos = read_signed_varint(body, pos)
    if order not in (1, 2):
        raise ArchiveError(f"corrupt chunk: decimal order {order} (expected 1 or 2)")
    count = max(n - order, 0)
    if version == 1:  # byte widths
        diffs = unzigzag(unpack_byte_planes(body, pos, count, width))
    else:
        diffs = unzigzag(unpack_stream(body, pos, count, width, version)[0])
    if order == 1:
        if version >= 3:  # deltas around a centre (``delta``); arrays wrap without warning
            diffs += np.int64(delta)
        ints = _cumulate(first, diffs, n)
    else:
        ints = _undiff(first, delta, diffs, n)
    values: Float64Array = ints.astype(np.float64) / DECIMAL_SCALES[k]
    return values
