"""Chunk encoding: exact round trips, the compact forms, batches, and corrupt blobs."""

from __future__ import annotations

import math
import struct
from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
import zstandard

from watchkeeper.archive import codec
from watchkeeper.archive.codec import Encoding
from watchkeeper.errors import ArchiveError

Floats = npt.NDArray[np.float64]
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
        ("noise", Encoding.SPLIT),
        ("specials", Encoding.XOR),
        ("negative-zero-only", Encoding.XOR),
        ("beyond-2**53", Encoding.XOR),
        ("late-noise", Encoding.XOR),
    ],
)
def test_values_take_the_form_that_fits(name: str, encoding: Encoding) -> None:
    """Exact decimals use the integer form; anything else the smaller of XOR (values that
    repeat or change little) and SPLIT (noise: sign, exponent and mantissa apart)."""
    blob = codec.encode_floats(*SHAPES[name])

    assert blob[0] == codec.FORMAT_VERSION
    assert blob[1] & 0x7F == encoding  # the top bit says whether zstd was worth it


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
    """``blob``'s header (its body zstd-compressed) over another body."""
    return bytes([blob[0], blob[1] & 0x7F]) + zstandard.ZstdCompressor().compress(body)


def _body(blob: bytes) -> bytes:
    """The uncompressed body of a chunk."""
    if blob[0] >= 3 and blob[1] & 0x80:
        return blob[2:]
    return zstandard.ZstdDecompressor().decompress(blob[2:])


GOOD = codec.encode_floats(regular(50), gauge(50))
GOOD_OBJECTS = codec.encode_objects([T0, T0 + 1], [{"a": 1}, {"b": 2}])


@pytest.mark.parametrize(
    "blob",
    [
        pytest.param(b"", id="empty"),
        pytest.param(b"\x01", id="header-only"),
        pytest.param(bytes([9]) + GOOD[1:], id="unknown-version"),
        pytest.param(_reframe(GOOD, b"")[:2] + b"not zstd at all", id="not-zstd"),
        pytest.param(GOOD[:20], id="truncated"),
        pytest.param(bytes([1, 7]) + GOOD[2:], id="unknown-encoding"),
        pytest.param(_reframe(GOOD, struct.pack("<I", 50) + b"\x00" * 10), id="short-body"),
        pytest.param(b"\x01" + _reframe(GOOD, struct.pack("<I", 1) + struct.pack("<qqB", 0, 0, 1)
                                        + struct.pack("<BBqqB", 99, 1, 0, 0, 1))[1:],
                     id="bad-exponent"),
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
    body = _body(blob)
    if blob[0] == 2:  # count:u32 | first:i8 | delta:i8 | mode:u8
        return codec.TimeMode(body[4 + 16])
    count_size = next(i for i, byte in enumerate(body) if not byte & 0x80) + 1
    return codec.TimeMode(body[count_size])  # count:varint | mode:u8


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
    return b"\x02" + _reframe(GOOD, struct.pack("<I", 3) + ts_head + b"\x00" * 8)[1:]


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


# -- format version 3: patched bit-packing (outliers stored apart), centred deltas ---------

V2_TS = T0 + np.arange(8) * 10 + np.array([0, 0.013, -0.007, 0.02, 0, 0.001, -0.019, 0.004])
V2_DOD_TS = T0 + np.array([0, 1, 3, 7, 15, 31, 63, 127.5])
V2_BLOBS = {  # written by the version 2 encoder (before patched packing)
    "gauge-grid": (
        V2_TS,
        ("020128b52ffd203b950100940208000000fc67e5cf8b01000011270001060898a800900a0201a113000d"
         "32a012c800641003004078070200e0be0bd401"),
        [50.25, 50.5, 49.75, 50.0, 51.0, 50.75, 50.75, 12.5],
    ),
    "counter-dod": (
        V2_DOD_TS,
        ("020128b52ffd2035a90100080000000068e5cf8b010000e8030000000000000010d007a00f401f803e00"
         "7de8fd000240420f000000000020a107000000000000"),
        [1e6, 1.5e6, 2e6, 2.5e6, 3e6, 3.5e6, 4e6, 4.5e6],
    ),
    "counter-reset": (
        V2_TS,
        ("020128b52ffd204e450200f40308000000fc67e5cf8b01000011270001060898a800900a0001001a7118"
         "02002380841e000024f4004037cf470cbd083d000048e8010020a1070000093d00000200c02e2da803"),
        [9e9, 9.001e9, 9.002e9, 17.0, 1e6, 2e6, 2.5e6, 3e6],
    ),
    "xor": (
        V2_TS,
        ("020028b52ffd205cad0200740408000000fc67e5cf8b01000011270001060898a800900a9ab52feded00"
         "005599a9300d0d2eb7bebe2ab330303ea7999950c9aaaa000055b9034afa0a1ce42d3fbefe3fc0c03f40"
         "050020080802825c09e60275"),
        [0.1, -2.5e-300, math.inf, 3.3333, -0.0, 7.0, math.nan, 1 / 3],
    ),
}
V2_OBJECTS = ("020228b52ffd2025290100030000000768e5cf8b0100000d2700000000000001054d3e9381a13102"
              "8082a13501a13703")


@pytest.mark.parametrize("name", V2_BLOBS)
def test_version_2_chunks_are_still_read(name: str) -> None:
    ts, blob, values = V2_BLOBS[name]

    decoded_ts, decoded = codec.decode_floats(bytes.fromhex(blob))

    assert codec.to_millis(decoded_ts).tolist() == codec.to_millis(ts).tolist()
    assert bits(decoded) == bits(values)


def test_version_2_object_chunks_are_still_read() -> None:
    ts, objects = codec.decode_objects(bytes.fromhex(V2_OBJECTS))

    assert codec.to_millis(ts).tolist() == codec.to_millis(V2_TS[:3]).tolist()
    assert objects == [{"1": 2}, {}, {"5": 1, "7": 3}]


def _random_times(rng: np.random.Generator, n: int) -> npt.NDArray[np.int64]:
    grid = 1_700_000_000_000 + np.arange(n) * 10_000
    shapes: dict[str, Callable[[], npt.NDArray[Any]]] = {
        "grid": lambda: grid + rng.integers(-20, 21, n),
        "gaps": lambda: np.cumsum(rng.integers(0, 2**40, n)),
        "phase-jump": lambda: grid + (np.arange(n) >= n // 2) * 7_321,
        "huge": lambda: rng.integers(  # deltas wrap in int64
            np.iinfo(np.int64).min, np.iinfo(np.int64).max, n, endpoint=True),
        "equal": lambda: np.full(n, -(2**62)),
    }
    times: npt.NDArray[np.int64] = shapes[str(rng.choice(list(shapes)))]().astype(np.int64)
    return times


def _reset(rng: np.random.Generator, n: int) -> npt.NDArray[np.float64]:
    """A counter back to about 0 at a random point."""
    ints = np.cumsum(rng.integers(0, 2_000_000, n))
    cut = int(rng.integers(0, n + 1))
    ints[cut:] -= ints[cut - 1] if cut else 0
    return (ints + 2**40 * (np.arange(n) < cut)).astype(np.float64)


def _jumps(rng: np.random.Generator, n: int) -> npt.NDArray[np.float64]:
    """A gauge with a few values far away."""
    values = np.round(50 + np.cumsum(rng.normal(0, 0.2, n)), 2)
    values[rng.integers(0, n, min(n, 3))] = rng.choice([-1e13, 1e13, 4.5e15])
    return values


def _random_values(rng: np.random.Generator, n: int) -> npt.NDArray[np.float64]:
    shapes: dict[str, Callable[[], npt.NDArray[Any]]] = {
        "gauge": lambda: np.round(50 + np.cumsum(rng.normal(0, 0.2, n)), 2),
        "counter": lambda: np.cumsum(rng.integers(0, 2_000_000, n)),
        "reset": lambda: _reset(rng, n),
        "jumps": lambda: _jumps(rng, n),
        "equal": lambda: np.full(n, rng.choice([0.0, 7.25, -3e15, 2.0**53])),
        "noise": lambda: rng.normal(0, 1, n),
        "specials": lambda: rng.choice([math.nan, math.inf, -math.inf, -0.0, 0.0, 1.5, 5e-324],
                                       n),
        "huge": lambda: rng.choice(  # integers at the edge of exact doubles, and beyond
            [2.0**53 - 1, -(2.0**53) + 1, 2.0**53, 9.2e18, -9.2e18, 0.0], n),
        "tiny-deltas": lambda: np.cumsum(rng.integers(-1, 2, n)) / 100,
    }
    values: npt.NDArray[np.float64] = shapes[str(rng.choice(list(shapes)))]().astype(np.float64)
    return values


def _random_chunk(rng: np.random.Generator) -> tuple[npt.NDArray[np.int64],
                                                       npt.NDArray[np.float64]]:
    """One chunk of millisecond times and values in one of many shapes, with outliers."""
    n = int(rng.choice([0, 1, 2, 3, 5, 60, 479, 480, 1000]))
    return _random_times(rng, n), _random_values(rng, n)


@pytest.mark.parametrize("seed", range(20))
def test_random_chunks_round_trip_bit_for_bit(seed: int) -> None:
    """Many random chunks (outliers, resets, specials, wrapping times) in one call and
    one at a time: the same blobs, and every bit back."""
    rng = np.random.default_rng(seed)
    parts = [_random_chunk(rng) for _ in range(25)]
    ts = np.concatenate([t for t, _ in parts])
    values = np.concatenate([v for _, v in parts])
    bounds = np.cumsum([0] + [len(t) for t, _ in parts])

    blobs = codec.encode_float_chunks(ts, values, bounds)

    for blob, (t, v) in zip(blobs, parts, strict=True):
        assert blob == codec.encode_floats_ms(t, v)
        assert blob[0] == codec.FORMAT_VERSION
        decoded_ts, decoded = codec.decode_floats_ms(blob)
        assert decoded_ts.tolist() == t.tolist()
        assert bits(decoded) == bits(v)


def _counter(n: int, seed: int) -> npt.NDArray[np.float64]:
    rng = np.random.default_rng(seed)
    return np.cumsum(rng.integers(0, 2_000_000, n)).astype(np.float64)


def _gauge(n: int, seed: int) -> npt.NDArray[np.float64]:
    rng = np.random.default_rng(seed)
    return np.round(50 + np.cumsum(rng.normal(0, 0.2, n)), 2)


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize(
    ("make", "jump"),
    [
        pytest.param(_counter, lambda v: np.concatenate((v[:200], v[200:] - v[199] + 5)),
                     id="counter-reset"),
        pytest.param(_counter, lambda v: v + (np.arange(len(v)) >= 300) * 2.0**45,
                     id="counter-leap"),
        pytest.param(_gauge, lambda v: np.round(v + (np.arange(len(v)) >= 100) * -4e6, 2),
                     id="gauge-step"),
        pytest.param(_gauge, lambda v: np.where(np.arange(len(v)) == 250, 1e9, v),
                     id="gauge-spike"),
    ],
)
def test_one_jump_costs_a_few_bytes(make: Callable[[int, int], Floats],
                                    jump: Callable[[Floats], Floats], seed: int) -> None:
    """A reset or a jump is stored apart: the chunk's other values keep their width
    (format 2 packed all 480 values at the width the jump needs: 100-800 bytes more)."""
    ts = regular(480, jitter_ms=20)
    values = make(480, seed)

    smooth = codec.encode_floats(ts, values)
    jumped = codec.encode_floats(ts, jump(values))

    assert len(jumped) <= len(smooth) + 24
    _, decoded = codec.decode_floats(jumped)
    assert bits(decoded) == bits(jump(values))


def test_a_phase_jump_in_the_times_costs_a_few_bytes() -> None:
    """A poller restarted at another phase: the delta-of-deltas hold two outliers."""
    ts = regular(480, jitter_ms=20)
    jumped = ts + (np.arange(480) >= 240) * 3.217
    steady = codec.encode_floats(ts, np.zeros(480))

    blob = codec.encode_floats(jumped, np.zeros(480))

    assert len(blob) <= len(steady) + 480 * 2 / 8 + 24  # at most 2 bits a point more
    decoded, _ = codec.decode_floats(blob)
    assert codec.to_millis(decoded).tolist() == codec.to_millis(jumped).tolist()


def test_counter_deltas_are_centred() -> None:
    """Deltas in [0, 2M) take 21 bits around their middle (22 zig-zagged around 0)."""
    values = _counter(480, 7)
    blob = codec.encode_floats_ms(np.arange(480, dtype=np.int64) * 10_000, values)

    assert len(blob) <= 479 * 21 / 8 + 60
    assert bits(codec.decode_floats_ms(blob)[1]) == bits(values)


def _v3_body(width: int, exceptions: bytes, packed: bytes, order: int = 1) -> bytes:
    """A raw version 3 DECIMAL chunk of 4 points: grid times, deltas of ``width`` bits."""
    ts_head = bytes([codec.TimeMode.GRID, 0, 0, 20])  # mode, width, origin 0, step 10
    values_head = bytes([0, order, width, 0, 0])  # k, order, width, first 0, centre 0
    return bytes([3, Encoding.DECIMAL | 0x80, 4]) + ts_head + values_head + exceptions + packed


@pytest.mark.parametrize(
    ("blob", "error"),
    [
        pytest.param(_v3_body(1 | 0x80, bytes([9, 3]), b"\xff" * 8), "9 exceptions",
                     id="more-exceptions-than-values"),
        pytest.param(_v3_body(60 | 0x80, bytes([1, 8]), b"\xff" * 40), "60 \\+ 8 bits",
                     id="too-wide"),
        pytest.param(_v3_body(1 | 0x80, bytes([1, 3]), b"\x00\x03\x07"), "beyond",
                     id="exception-past-the-end"),
        pytest.param(_v3_body(1 | 0x80, bytes([2, 3]), b"\x00"), "", id="truncated"),
        pytest.param(_v3_body(1, b"", b"\x00")[:9] + b"\xff" * 12, "varint", id="endless-varint"),
        pytest.param(_v3_body(1, b"", b"\x00", order=250), "decimal order 250",
                     id="bad-decimal-order"),
        pytest.param(bytes([3, Encoding.DECIMAL | 0x80, 0x80]), "", id="cut-inside-the-count"),
    ],
)
def test_corrupt_version_3_chunks_raise_archive_error(blob: bytes, error: str) -> None:
    with pytest.raises(ArchiveError, match=f"corrupt chunk.*{error}"):
        codec.decode_floats(blob)


def test_a_hand_made_version_3_chunk_decodes() -> None:
    """The layout the corrupt cases start from: zig-zagged deltas 1, 0 and 1 + (7 << 1)."""
    blob = _v3_body(1 | 0x80, bytes([1, 3]), b"\x05\x02\x07")  # zig-zagged 1, 0, 15

    ts, values = codec.decode_floats_ms(blob)

    assert ts.tolist() == [0, 10, 20, 30]
    assert values.tolist() == [0.0, -1.0, -1.0, -9.0]


def test_uncompressed_bodies_are_version_3_only() -> None:
    """The flag that skips zstd means nothing in version 2: such a blob is refused."""
    blob = codec.encode_floats(regular(480, jitter_ms=20), _counter(480, 1))
    assert blob[1] & 0x80  # bit-packed counters do not compress

    with pytest.raises(ArchiveError, match="corrupt chunk"):
        codec.decode_floats(b"\x02" + blob[1:])


def test_noise_is_stored_as_sign_exponent_and_mantissa() -> None:
    """Full-precision noise: 1 + ~4 + 52 bits a value (XOR and zstd: about 60)."""
    values = np.random.default_rng(3).normal(0, 1, 480)
    blob = codec.encode_floats_ms(np.arange(480, dtype=np.int64) * 10_000, values)

    assert blob[1] & 0x7F == Encoding.SPLIT
    assert len(blob) <= 480 * 58 / 8 + 40
    assert bits(codec.decode_floats_ms(blob)[1]) == bits(values)


def test_split_chunks_are_version_3_only() -> None:
    blob = codec.encode_floats(regular(60), np.random.default_rng(4).normal(0, 1, 60))
    assert blob[1] & 0x7F == Encoding.SPLIT

    with pytest.raises(ArchiveError, match="corrupt chunk"):
        codec.decode_floats(b"\x02" + blob[1:])
