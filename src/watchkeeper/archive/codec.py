"""Chunk encoding: a run of one series' points as one compact, self-describing blob.

The scheme follows Gorilla (timestamps as delta-of-delta, values relative to the
previous value) but works on whole numpy arrays and lets zstd do the bit packing:

* timestamps become int64 milliseconds; the first value and first delta are stored
  as they are, then the delta-of-deltas, zig-zagged, narrowed to the smallest
  unsigned width that holds them and byte-shuffled (a regular 10 s series is all zeros);
* values are stored one of two ways, whichever applies:
  - ``DECIMAL``: when every value is ``integer / 10**k`` exactly (counters, gauges
    rounded to a few decimals), the integers' deltas or delta-of-deltas, zig-zagged,
    narrowed and shuffled. This is what reaches 1-3 bytes per point on real data;
  - ``XOR``: otherwise each value's bits XOR the previous value's bits as uint64, then
    the eight byte planes are transposed (byte-shuffled) so zstd sees the runs of
    identical sign/exponent bytes. Exact for every bit pattern (NaN payloads, inf, -0.0).
* histogram series keep the same timestamps and a msgpack list of ``{bucket: count}``.

Blob layout: ``version:u8 | encoding:u8 | zstd(body)``. The body starts with the point
count (u32). Everything is little-endian. Decoding checks the version and refuses
blobs it does not know, so a future format can be added beside this one.

Compressors are cached per thread because zstd contexts are not safe to share
between threads and are costly to build for every chunk.
"""

from __future__ import annotations

import struct
import threading
from enum import IntEnum
from typing import Any, Final

import msgspec
import numpy as np
import numpy.typing as npt
import zstandard

from watchkeeper.errors import ArchiveError

Int64Array = npt.NDArray[np.int64]
Float64Array = npt.NDArray[np.float64]

FORMAT_VERSION: Final = 1
MAX_SECONDS: Final = 2**53 / 1000  # milliseconds stay exact integers in a double
ZSTD_LEVEL: Final = 3

_HEADER = struct.Struct("<BB")
_COUNT = struct.Struct("<I")
_TS_HEAD = struct.Struct("<qqB")
_DEC_HEAD = struct.Struct("<BBqqB")  # k, order, first int, first delta, width
_WIDTHS: Final = (1, 2, 4, 8)
_MAX_EXACT = float(2**53)  # integers beyond this are not exact in a double
_MAX_DECIMALS: Final = 15
_HIST_TYPE = list[dict[str, int]]


class Encoding(IntEnum):
    """How the values of a chunk are stored (the second header byte)."""

    XOR = 0
    DECIMAL = 1
    OBJECTS = 2


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


def encode_objects(ts: npt.ArrayLike, objects: list[dict[str, int]]) -> bytes:
    """Encode histogram points; ``ts`` in seconds is stored to the millisecond."""
    return encode_objects_ms(to_millis(ts), objects)


def decode_objects(blob: bytes) -> tuple[Float64Array, list[dict[str, int]]]:
    """Decode a histogram chunk to ``(ts in seconds, histograms)``."""
    ms, objects = decode_objects_ms(blob)
    return from_millis(ms), objects


# -- the same in int64 milliseconds, as the backends store them ----------------------------


def encode_floats_ms(ts: Int64Array, values: Float64Array) -> bytes:
    """Encode float points with int64 millisecond timestamps."""
    ts, values = _check_lengths(ts, values.astype(np.float64, copy=False))
    decimal = _encode_decimal(values)
    encoding, payload = (Encoding.XOR, _encode_xor(values)) if decimal is None else decimal
    return _pack(encoding, len(ts), _encode_ts(ts), payload)


def decode_floats_ms(blob: bytes) -> tuple[Int64Array, Float64Array]:
    """Decode a float chunk to ``(int64 ms, values)``."""
    encoding, n, body = _unpack(blob)
    if encoding == Encoding.OBJECTS:
        raise ArchiveError("chunk holds objects, not floats")
    try:
        ts, pos = _decode_ts(body, 0, n)
        if encoding == Encoding.XOR:
            return ts, _decode_xor(body, pos, n)
        return ts, _decode_decimal(body, pos, n)
    except (struct.error, ValueError) as exc:
        raise ArchiveError(f"corrupt chunk: {exc}") from exc


def encode_objects_ms(ts: Int64Array, objects: list[dict[str, int]]) -> bytes:
    """Encode histogram points with int64 millisecond timestamps."""
    if len(objects) != len(ts):
        raise ValueError(f"{len(ts)} timestamps but {len(objects)} objects")
    ts = np.ascontiguousarray(ts, dtype=np.int64)
    return _pack(Encoding.OBJECTS, len(ts), _encode_ts(ts), msgspec.msgpack.encode(objects))


def decode_objects_ms(blob: bytes) -> tuple[Int64Array, list[dict[str, int]]]:
    """Decode a histogram chunk to ``(int64 ms, histograms)``."""
    encoding, n, body = _unpack(blob)
    if encoding != Encoding.OBJECTS:
        raise ArchiveError("chunk holds floats, not objects")
    try:
        ts, pos = _decode_ts(body, 0, n)
        objects = msgspec.msgpack.decode(body[pos:], type=_HIST_TYPE)
    except (struct.error, ValueError, msgspec.DecodeError) as exc:
        raise ArchiveError(f"corrupt chunk: {exc}") from exc
    if len(objects) != n:
        raise ArchiveError(f"corrupt chunk: {n} timestamps but {len(objects)} objects")
    return ts, objects


# -- framing ------------------------------------------------------------------------------


def _check_lengths(ts: Int64Array, values: Float64Array) -> tuple[Int64Array, Float64Array]:
    if ts.shape != values.shape or ts.ndim != 1:
        raise ValueError(f"ts {ts.shape} and values {values.shape} must be equal 1-d shapes")
    return np.ascontiguousarray(ts, dtype=np.int64), np.ascontiguousarray(values)


def _pack(encoding: Encoding, n: int, *parts: bytes) -> bytes:
    body = b"".join((_COUNT.pack(n), *parts))
    return _HEADER.pack(FORMAT_VERSION, encoding) + _zstd.compressor.compress(body)


def _unpack(blob: bytes) -> tuple[Encoding, int, memoryview]:
    if len(blob) < _HEADER.size:
        raise ArchiveError("corrupt chunk: shorter than its header")
    version, encoding = _HEADER.unpack_from(blob)
    if version != FORMAT_VERSION:
        raise ArchiveError(f"chunk format version {version} is not supported")
    try:
        body = memoryview(_zstd.decompressor.decompress(blob[_HEADER.size :]))
        (n,) = _COUNT.unpack_from(body)
        return Encoding(encoding), n, body[_COUNT.size :]
    except (zstandard.ZstdError, struct.error, ValueError) as exc:
        raise ArchiveError(f"corrupt chunk: {exc}") from exc


# -- integers: zig-zag, narrowest width, byte shuffle -------------------------------------


def _zigzag(x: Int64Array) -> npt.NDArray[np.uint64]:
    # Wrapping int64 arithmetic is fine: decoding undoes it modulo 2**64.
    return ((x << 1) ^ (x >> 63)).view(np.uint64)


def _unzigzag(z: npt.NDArray[np.uint64]) -> Int64Array:
    return ((z >> np.uint64(1)) ^ (np.uint64(0) - (z & np.uint64(1)))).view(np.int64)


def _pack_uints(z: npt.NDArray[np.uint64]) -> tuple[int, bytes]:
    top = int(z.max()) if z.size else 0
    width = next(w for w in _WIDTHS if top < 1 << (8 * w))
    return width, _shuffle(z.astype(f"<u{width}"), width)


def _unpack_uints(body: memoryview, pos: int, count: int, width: int) -> npt.NDArray[np.uint64]:
    planes = np.frombuffer(body, dtype=np.uint8, count=count * width, offset=pos)
    narrow = planes.reshape(width, count).T.copy().view(f"<u{width}").reshape(count)
    return narrow.astype(np.uint64)


def _shuffle(arr: npt.NDArray[Any], width: int) -> bytes:
    # Byte plane i holds byte i of every element: similar bytes end up adjacent.
    return arr.view(np.uint8).reshape(-1, width).T.tobytes()


# -- timestamps ---------------------------------------------------------------------------


def _encode_ts(ts: Int64Array) -> bytes:
    first = int(ts[0]) if len(ts) else 0
    delta = int(ts[1] - ts[0]) if len(ts) > 1 else 0
    width, planes = _pack_uints(_zigzag(np.diff(ts, n=2)))
    return _TS_HEAD.pack(first, delta, width) + planes


def _decode_ts(body: memoryview, pos: int, n: int) -> tuple[Int64Array, int]:
    first, delta, width = _TS_HEAD.unpack_from(body, pos)
    pos += _TS_HEAD.size
    dods = max(n - 2, 0)
    return _undiff(first, delta, _unzigzag(_unpack_uints(body, pos, dods, width)), n), (
        pos + dods * width
    )


def _undiff(first: int, delta: int, dods: Int64Array, n: int) -> Int64Array:
    """Invert ``np.diff(x, n=2)`` given x[0] and x[1] - x[0] (wrapping like the encoder)."""
    deltas = np.empty(max(n - 1, 0), dtype=np.int64)
    if n > 1:
        deltas[0] = delta
        np.cumsum(dods, out=deltas[1:])
        deltas[1:] += np.int64(delta)
    out = np.empty(n, dtype=np.int64)
    if n:
        out[0] = first
        np.cumsum(deltas, out=out[1:])
        out[1:] += np.int64(first)
    return out


# -- values: XOR ------------------------------------------------------------------------


def _encode_xor(values: Float64Array) -> bytes:
    bits = values.view(np.uint64)
    xored = bits.copy()
    xored[1:] ^= bits[:-1]
    return _shuffle(xored, 8)


def _decode_xor(body: memoryview, pos: int, n: int) -> Float64Array:
    xored = _unpack_uints(body, pos, n, 8)
    # XOR is its own inverse, so a prefix XOR-scan restores the bits.
    return np.bitwise_xor.accumulate(xored).view(np.float64)


# -- values: DECIMAL --------------------------------------------------------------------


def _encode_decimal(values: Float64Array) -> tuple[Encoding, bytes] | None:
    if not len(values) or np.signbit(values[values == 0]).any():
        return None  # -0.0 would come back as 0.0
    k = _decimals(values)
    if k is None:
        return None
    ints = np.rint(values * 10.0**k).astype(np.int64)
    first = int(ints[0])
    delta = int(ints[1] - ints[0]) if len(ints) > 1 else 0
    # Gauges pack best as deltas, steady counters as delta-of-deltas: keep the smaller.
    candidates = [(order, *_pack_uints(_zigzag(np.diff(ints, n=order)))) for order in (1, 2)]
    order, width, planes = min(candidates, key=lambda c: (c[1], _nonzero_bytes(c[2])))
    head = _DEC_HEAD.pack(k, order, first, delta if order == 2 else 0, width)
    return Encoding.DECIMAL, head + planes


def _nonzero_bytes(planes: bytes) -> int:
    # A cheap proxy for how well shuffled planes compress.
    return len(planes) - planes.count(0)


def _decimals(values: Float64Array) -> int | None:
    """The smallest k with every value exactly ``rint(v * 10**k) / 10**k``, if any."""
    probe = values[:8]
    for k in range(_MAX_DECIMALS + 1):
        if _exact_at(probe, k) and _exact_at(values, k):
            return k
    return None


def _exact_at(values: Float64Array, k: int) -> bool:
    scale = 10.0**k
    with np.errstate(over="ignore", invalid="ignore"):  # inf and NaN simply fail the test
        ints = np.rint(values * scale)
        fits = bool((np.abs(ints) < _MAX_EXACT).all())
    return fits and bool((ints / scale == values).all())


def _decode_decimal(body: memoryview, pos: int, n: int) -> Float64Array:
    k, order, first, delta, width = _DEC_HEAD.unpack_from(body, pos)
    pos += _DEC_HEAD.size
    diffs = _unzigzag(_unpack_uints(body, pos, max(n - order, 0), width))
    if order == 1:
        ints = np.empty(n, dtype=np.int64)
        ints[0] = first
        np.cumsum(diffs, out=ints[1:])
        ints[1:] += np.int64(first)
    else:
        ints = _undiff(first, delta, diffs, n)
    return ints.astype(np.float64) / 10.0**k
