"""Chunk encoding: exact round trips, the compact forms, batches, and corrupt blobs."""

from __future__ import annotations

import math
import struct

import numpy as np
import numpy.typing as npt
import pytest
import zstandard

from watchkeeper.archive import codec
from watchkeeper.archive.codec import Encoding
from watchkeeper.errors import ArchiveError

T0 = 1_700_000_000.0
RNG = np.random.default_rng(2024)


def regular(n: int, jitter_ms: int = 0) -> npt.NDArray[np.float64]:
    """n timestamps 10 s apart, each off by up to ``jitter_ms``."""
    jitter = RNG.integers(-jitter_ms, jitter_ms + 1, n) / 1000.0 if jitter_ms else 0.0
    return (T0 + np.arange(n) * 10.0 + jitter).astype(np.float64)


def gauge(n: int) -> npt.NDArray[np.float64]:
    return np.round(20 + np.cumsum(RNG.normal(0, 0.05, n)), 2).astype(np.float64)


def counter(n: int) -> npt.NDArray[np.float64]:
    return np.cumsum(RNG.integers(900_000, 1_100_000, n)).astype(np.float64) + 1e12


def bits(values: npt.ArrayLike) -> list[int]:
    patterns: list[int] = np.asarray(values, dtype=np.float64).view(np.uint64).tolist()
    return patterns


SHAPES = {
    "empty": (regular(0), np.empty(0)),
    "one": (regular(1), np.array([3.25])),
    "two": (regular(2), np.array([1.0, -1.0])),
    "three": (regular(3), np.array([1.0, 2.0, 4.0])),
    "constant": (regular(100), np.full(100, 7.0)),
    "gauge": (regular(240, jitter_ms=50), gauge(240)),
    "counter": (regular(240), counter(240)),
    "noise": (regular(240), RNG.normal(0, 1, 240)),
    "specials": (
        regular(9),
        np.array([math.nan, math.inf, -math.inf, -0.0, 0.0, 5e-324, -1.5, 1e308, -1e-300]),
    ),
    "negative-zero-only": (regular(3), np.array([-0.0, -0.0, -0.0])),
    "beyond-2**53": (regular(4), np.array([2.0**60, 2.0**60 + 2**8, 3.0, 2.0**62])),
    "nan-payloads": (regular(2), np.frombuffer(  # a quiet NaN and a signalling one
        struct.pack("<QQ", 0x7FF8_0000_DEAD_BEEF, 0xFFF0_0000_0000_0001), dtype=np.float64)),
    "late-decimals": (regular(20), np.array([float(i) for i in range(10)] + [0.5] * 10)),
    "late-noise": (regular(20), np.array([float(i) for i in range(10)] + [1 / 3] * 10)),
    "irregular-times": (np.array([-5.0, 0.001, 3600.0, 1e12, 1e12 - 1, 2.5]), np.arange(6.0)),
    "duplicate-times": (np.array([T0, T0, T0]), np.array([1.0, 2.0, 3.0])),
}


@pytest.mark.parametrize("name", SHAPES)
def test_floats_round_trip_bit_for_bit(name: str) -> None:
    """Timestamps (to the ms) and values (every bit) come back as written."""
    ts, values = SHAPES[name]

    decoded_ts, decoded = codec.decode_floats(codec.encode_floats(ts, values))

    assert codec.to_millis(decoded_ts).tolist() == codec.to_millis(ts).tolist()
    assert bits(decoded) == bits(values)


@pytest.mark.parametrize(
    ("name", "encoding"),
    [
        ("constant", Encoding.DECIMAL),
        ("gauge", Encoding.DECIMAL),
        ("counter", Encoding.DECIMAL),
        ("late-decimals", Encoding.DECIMAL),
        ("noise", Encoding.XOR),
        ("specials", Encoding.XOR),
        ("negative-zero-only", Encoding.XOR),
        ("beyond-2**53", Encoding.XOR),
        ("late-noise", Encoding.XOR),
    ],
)
def test_values_take_the_form_that_fits(name: str, encoding: Encoding) -> None:
    """Exact decimals use the integer form; anything else falls back to XOR."""
    blob = codec.encode_floats(*SHAPES[name])

    assert blob[:2] == bytes([codec.FORMAT_VERSION, encoding])


@pytest.mark.parametrize(
    ("values", "jitter_ms", "limit"),
    [
        pytest.param(gauge, 0, 1.5, id="gauge"),
        pytest.param(gauge, 50, 3.0, id="gauge-with-jitter"),
        pytest.param(counter, 0, 3.5, id="counter"),
        pytest.param(counter, 50, 4.5, id="counter-with-jitter"),
    ],
)
def test_realistic_chunks_are_small(values: object, jitter_ms: int, limit: float) -> None:
    """240 points of gauge or counter data at 10 s fit in a few bytes per point."""
    assert callable(values)
    blob = codec.encode_floats(regular(240, jitter_ms), values(240))

    assert len(blob) / 240 <= limit


def test_regular_timestamps_cost_almost_nothing() -> None:
    """A constant series at a fixed interval is a few dozen bytes, whatever its length."""
    assert len(codec.encode_floats(regular(10_000), np.full(10_000, 1.0))) < 100


@pytest.mark.parametrize(
    "names",
    [
        ("gauge", "empty", "noise", "one", "specials", "two", "counter", "late-decimals",
         "late-noise", "empty"),
        ("three", "nan-payloads", "constant", "one"),
    ],
    ids=["mixed", "short-last"],
)
def test_many_chunks_encode_like_one_at_a_time(names: tuple[str, ...]) -> None:
    """encode_float_chunks gives, chunk by chunk, the blobs of encode_floats_ms."""
    parts = [SHAPES[name] for name in names]
    ts = np.concatenate([codec.to_millis(t) for t, _ in parts])
    values = np.concatenate([v for _, v in parts])
    bounds = np.cumsum([0] + [len(v) for _, v in parts])

    blobs = codec.encode_float_chunks(ts, values, bounds)

    assert blobs == [codec.encode_floats_ms(codec.to_millis(t), v) for t, v in parts]


@pytest.mark.parametrize(
    "bounds",
    [[0, 5, 3, 9], [1, 9], [0, 8], [0, 10], []],
    ids=["descending", "skips-first-rows", "skips-last-row", "past-the-end", "no-bounds"],
)
def test_chunk_bounds_are_checked(bounds: list[int]) -> None:
    ts, values = SHAPES["specials"]
    with pytest.raises(ValueError, match="bounds"):
        codec.encode_float_chunks(codec.to_millis(ts), values, bounds)


def test_objects_round_trip() -> None:
    """Histogram chunks keep their dicts, in order, with millisecond timestamps."""
    objects = [{"0.5": 1, "1": 2}, {}, {"+Inf": 2**40}]
    ts = [T0, T0 + 10.0006, T0 + 20]

    decoded_ts, decoded = codec.decode_objects(codec.encode_objects(ts, objects))

    assert decoded_ts.tolist() == [T0, T0 + 10.001, T0 + 20]
    assert decoded == objects


def test_json_values_round_trip() -> None:
    """Object chunks hold any JSON values; read as histograms they are refused."""
    objects = [{"numerator": 1, "denominator": 3}, [1, "a", None], "text", 2.5, True]
    blob = codec.encode_objects([T0 + i for i in range(5)], objects)

    _, decoded = codec.decode_objects(blob, codec.JSON_VALUES)

    assert decoded == objects
    with pytest.raises(ArchiveError, match="corrupt chunk"):
        codec.decode_objects(blob)


def test_kinds_are_not_mixed_up() -> None:
    """Decoding a float chunk as objects, or the reverse, is refused."""
    floats = codec.encode_floats([T0], [1.0])
    objects = codec.encode_objects([T0], [{"a": 1}])

    with pytest.raises(ArchiveError, match="not objects"):
        codec.decode_objects(floats)
    with pytest.raises(ArchiveError, match="not floats"):
        codec.decode_floats(objects)


def _reframe(blob: bytes, body: bytes) -> bytes:
    return blob[:2] + zstandard.ZstdCompressor().compress(body)


GOOD = codec.encode_floats(regular(50), gauge(50))
GOOD_OBJECTS = codec.encode_objects([T0, T0 + 1], [{"a": 1}, {"b": 2}])


@pytest.mark.parametrize(
    "blob",
    [
        pytest.param(b"", id="empty"),
        pytest.param(b"\x01", id="header-only"),
        pytest.param(bytes([9]) + GOOD[1:], id="unknown-version"),
        pytest.param(GOOD[:2] + b"not zstd at all", id="not-zstd"),
        pytest.param(GOOD[:20], id="truncated"),
        pytest.param(bytes([1, 7]) + GOOD[2:], id="unknown-encoding"),
        pytest.param(_reframe(GOOD, struct.pack("<I", 50) + b"\x00" * 10), id="short-body"),
        pytest.param(_reframe(GOOD, struct.pack("<I", 1) + struct.pack("<qqB", 0, 0, 1)
                              + struct.pack("<BBqqB", 99, 1, 0, 0, 1)), id="bad-exponent"),
    ],
)
def test_corrupt_float_chunks_raise_archive_error(blob: bytes) -> None:
    with pytest.raises(ArchiveError, match="chunk"):
        codec.decode_floats(blob)


@pytest.mark.parametrize(
    "blob",
    [
        pytest.param(_reframe(GOOD_OBJECTS, struct.pack("<I", 2) + b"\x00"), id="short-body"),
        pytest.param(_reframe(GOOD_OBJECTS, struct.pack("<I", 1) + struct.pack("<qqB", 0, 0, 1)
                              + b"\x92\xa1x\xa1y"), id="not-dicts"),
        pytest.param(_reframe(GOOD_OBJECTS, struct.pack("<I", 3) + struct.pack("<qqB", 0, 0, 1)
                              + b"\x00" + b"\x91\x80"), id="count-mismatch"),
    ],
)
def test_corrupt_object_chunks_raise_archive_error(blob: bytes) -> None:
    with pytest.raises(ArchiveError, match="corrupt"):
        codec.decode_objects(blob)


@pytest.mark.parametrize("ts", [math.nan, math.inf, -math.inf, 1e13, -1e13])
def test_impossible_times_are_refused(ts: float) -> None:
    with pytest.raises(ValueError, match="finite seconds"):
        codec.to_millis([T0, ts])


def test_mismatched_inputs_are_refused() -> None:
    with pytest.raises(ValueError, match="shapes"):
        codec.encode_floats([T0, T0 + 1], [1.0])
    with pytest.raises(ValueError, match="objects"):
        codec.encode_objects([T0, T0 + 1], [{}])


def test_millisecond_conversions_are_exact() -> None:
    """Any millisecond-precision time survives seconds -> ms -> seconds unchanged."""
    seconds = np.array([T0 + 0.001, T0 + 0.999, -0.001, 0.0, 9e12 + 0.123])

    assert codec.from_millis(codec.to_millis(seconds)).tolist() == seconds.tolist()


# -- format version 2: grid timestamps, bit widths; version 1 still read -------------------

V1_TS = T0 + np.arange(6) * 10 + np.array([0, 0.013, -0.007, 0.02, 0, 0.001])
V1_BLOBS = {  # written by the version 1 encoder (byte widths, delta-of-delta times only)
    "decimal": (
        ("010128b52ffd20313d0100f8060000000068e5cf8b0100001d270001415e5d2a0201a113000132"
        "9532c8310200e0900bd401"),
        [50.25, 50.5, 49.75, 50.0, 51.0, 50.75],
    ),
    "counter": (
        ("010128b52ffd2040c50100f402060000000068e5cf8b0100001d270001415e5d2a000140420f00"
        "04406020c09042e3a1c6d00f16072d030000000000020080bd16d401"),
        [1e6, 1.5e6, 2.25e6, 2.5e6, 4e6, 4.125e6],
    ),
    "xor": (
        ("010028b52ffd2049490200060000000068e5cf8b0100001d2700000000000001415e5d2a9ab52f"
        "eded0099a9300d0d00992eb7bebe00992ab3303000993ea79999009950c9aaaa00b9034afa0a1c"
        "3fbefe3fc0c0"),
        [0.1, -2.5e-300, math.inf, 3.3333, -0.0, 7.0],
    ),
}
V1_OBJECTS = ("010228b52ffd2023190100030000000068e5cf8b0100001d2700000000000001419381a13102"
              "8082a13501a13703")


@pytest.mark.parametrize("name", V1_BLOBS)
def test_version_1_chunks_are_still_read(name: str) -> None:
    blob, values = V1_BLOBS[name]

    ts, decoded = codec.decode_floats(bytes.fromhex(blob))

    assert codec.to_millis(ts).tolist() == codec.to_millis(V1_TS).tolist()
    assert bits(decoded) == bits(values)


def test_version_1_object_chunks_are_still_read() -> None:
    ts, objects = codec.decode_objects(bytes.fromhex(V1_OBJECTS))

    assert codec.to_millis(ts).tolist() == codec.to_millis(V1_TS[:3]).tolist()
    assert objects == [{"1": 2}, {}, {"5": 1, "7": 3}]


def _time_mode(blob: bytes) -> codec.TimeMode:
    body = zstandard.ZstdDecompressor().decompress(blob[2:])
    return codec.TimeMode(body[4 + 16])


@pytest.mark.parametrize(
    ("ts", "mode"),
    [
        pytest.param(regular(240, jitter_ms=20), codec.TimeMode.GRID, id="poller-jitter"),
        pytest.param(T0 + np.cumsum(RNG.integers(1, 100_000, 240)) / 1000, codec.TimeMode.DOD,
                     id="random-gaps"),
        pytest.param(T0 + 0.5 * np.arange(240) ** 2, codec.TimeMode.DOD, id="steady-slowdown"),
    ],
)
def test_timestamps_take_the_form_that_fits(ts: npt.NDArray[np.float64],
                                            mode: codec.TimeMode) -> None:
    blob = codec.encode_floats(ts, gauge(len(ts)))

    assert _time_mode(blob) == mode
    decoded, _ = codec.decode_floats(blob)
    assert codec.to_millis(decoded).tolist() == codec.to_millis(ts).tolist()


def test_grid_timestamps_cost_the_jitter_only() -> None:
    """±20 ms around a 10 s grid: 6 bits a point (delta-of-deltas would need 8)."""
    blob = codec.encode_floats(regular(480, jitter_ms=20), np.zeros(480))

    assert len(blob) <= 480 * 6 / 8 + 60


@pytest.mark.parametrize("width", [1, 2, 3, 7, 8, 9, 21, 31, 32, 33, 52, 53, 63, 64])
def test_every_bit_width_round_trips(width: int) -> None:
    """Integer deltas of any size, at the largest and smallest values of that width."""
    top = 2 ** (width - 1)  # zig-zagged deltas of up to ±top need ``width`` bits
    deltas = RNG.integers(-top, top, 100, dtype=np.int64, endpoint=False)
    deltas[:2] = (-top, top - 1)
    ms = np.cumsum(deltas)  # wraps in int64 like the codec
    blob = codec.encode_floats_ms(np.arange(100, dtype=np.int64), ms.astype(np.float64))
    decoded_ts, decoded = codec.decode_floats_ms(blob)

    assert decoded_ts.tolist() == list(range(100))
    assert bits(decoded) == bits(ms.astype(np.float64))
    wide = np.arange(100, dtype=np.int64) * 0 + np.cumsum(deltas)
    back, _ = codec.decode_floats_ms(codec.encode_floats_ms(np.sort(wide), np.zeros(100)))
    assert back.tolist() == np.sort(wide).tolist()


def _v2_body(ts_head: bytes) -> bytes:
    return _reframe(GOOD, struct.pack("<I", 3) + ts_head + b"\x00" * 8)


@pytest.mark.parametrize(
    "blob",
    [
        pytest.param(_v2_body(struct.pack("<qqBB", 0, 10, 0, 65)), id="dod-too-wide"),
        pytest.param(_v2_body(struct.pack("<qqBB", 0, 10, 1, 99)), id="grid-too-wide"),
        pytest.param(_v2_body(struct.pack("<qqBB", 0, 10, 7, 1)), id="unknown-time-mode"),
        pytest.param(_v2_body(struct.pack("<qqBB", 0, 10, 1, 64)), id="grid-short"),
    ],
)
def test_corrupt_version_2_chunks_raise_archive_error(blob: bytes) -> None:
    assert blob[0] == 2
    with pytest.raises(ArchiveError, match="chunk"):
        codec.decode_floats(blob)
