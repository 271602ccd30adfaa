"""The many-chunks decoder against the per-chunk one (the reference), and bit unpacking."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from watchkeeper.archive import bitpack, codec
from watchkeeper.archive.chunkscan import decode_floats_many
from watchkeeper.archive.codec import Encoding
from watchkeeper.errors import ArchiveError

from .test_codec import V1_BLOBS, V2_BLOBS

Ints = npt.NDArray[np.int64]
Floats = npt.NDArray[np.float64]
T0_MS = 1_700_000_000_000


def reference(blobs: list[bytes]) -> tuple[Ints, Floats]:
    parts = [codec.decode_floats_ms(blob) for blob in blobs]
    if not parts:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float64)
    return np.concatenate([t for t, _ in parts]), np.concatenate([v for _, v in parts])


def assert_same_as_reference(blobs: list[bytes]) -> None:
    ts, values = decode_floats_many(blobs)
    ref_ts, ref_values = reference(blobs)

    assert ts.dtype == np.int64
    assert values.dtype == np.float64
    assert ts.tolist() == ref_ts.tolist()
    assert values.view(np.uint64).tolist() == ref_values.view(np.uint64).tolist()


# -- chunks of many shapes ----------------------------------------------------------------


def _times(rng: np.random.Generator, n: int) -> Ints:
    grid = T0_MS + np.arange(n) * 10_000
    shapes: dict[str, Callable[[], npt.NDArray[Any]]] = {
        "jitter": lambda: grid + rng.integers(-20, 21, n),
        "grid": lambda: grid,
        "gaps": lambda: T0_MS + np.cumsum(rng.integers(0, 2**40, n)),
        "phase-jump": lambda: grid + (np.arange(n) >= n // 2) * 7_321,
        "slowdown": lambda: T0_MS + 500 * np.arange(n) ** 2,
        "huge": lambda: rng.integers(  # deltas wrap in int64
            np.iinfo(np.int64).min, np.iinfo(np.int64).max, n, endpoint=True),
    }
    times: Ints = shapes[str(rng.choice(list(shapes)))]().astype(np.int64)
    return times


def _counter_with_resets(rng: np.random.Generator, n: int) -> Floats:
    ints = np.cumsum(rng.integers(0, 2_000_000, n))
    for cut in rng.integers(0, max(n, 1), 2).tolist():
        if 0 < cut < n:
            ints[cut:] -= ints[cut - 1]
    return ints.astype(np.float64)


def _values(rng: np.random.Generator, n: int) -> Floats:
    shapes: dict[str, Callable[[], npt.NDArray[Any]]] = {
        "gauge": lambda: np.round(20 + np.cumsum(rng.normal(0, 0.05, n)), 2),
        "negative-gauge": lambda: np.round(-5e3 + np.cumsum(rng.normal(0, 3, n)), 1),
        "counter": lambda: np.cumsum(rng.integers(900_000, 1_100_000, n)) + 1e12,
        "counter-resets": lambda: _counter_with_resets(rng, n),
        "steady-counter": lambda: 1e6 + 1_000.0 * np.arange(n),
        "noise": lambda: rng.normal(0, 1, n),
        "negative-noise": lambda: -np.abs(rng.normal(0, 1e-3, n)),
        "few-distinct": lambda: rng.choice([1 / 3, 2 / 3, math.pi], n),  # XOR if any
        "specials": lambda: rng.choice(
            [math.nan, math.inf, -math.inf, -0.0, 0.0, 1.5, 5e-324, -2.5], n),
        "huge": lambda: rng.choice([2.0**53 - 1, -(2.0**53) + 1, 2.0**53, 9.2e18, 0.0], n),
        "spikes": lambda: np.where(rng.random(n) < 0.01, 1e9, np.round(rng.normal(50, 1, n), 2)),
    }
    values: Floats = shapes[str(rng.choice(list(shapes)))]().astype(np.float64)
    return values


def _chunk(rng: np.random.Generator) -> bytes:
    n = int(rng.choice([0, 1, 2, 3, 4, 17, 200, 479, 480]))
    return codec.encode_floats_ms(_times(rng, n), _values(rng, n))


def _encodings(blobs: list[bytes]) -> set[int]:
    return {blob[1] & 0x7F for blob in blobs}


@pytest.mark.parametrize("seed", range(25))
def test_random_mixes_decode_like_the_reference(seed: int) -> None:
    rng = np.random.default_rng(seed)
    blobs = [_chunk(rng) for _ in range(int(rng.integers(1, 40)))]

    assert_same_as_reference(blobs)


def test_every_kind_of_chunk_appears_in_the_mixes() -> None:
    """The mixes above reach every encoding, time mode and patched streams."""
    rng = np.random.default_rng(0)
    blobs = [_chunk(rng) for _ in range(400)]

    assert _encodings(blobs) == {Encoding.XOR, Encoding.DECIMAL, Encoding.SPLIT}
    assert {blob[0] for blob in blobs} == {codec.FORMAT_VERSION}


def test_nothing_decodes_to_nothing() -> None:
    ts, values = decode_floats_many([])

    assert ts.dtype == np.int64
    assert values.dtype == np.float64
    assert len(ts) == len(values) == 0


@pytest.mark.parametrize("n", [0, 1, 2, 3])
@pytest.mark.parametrize("values", [
    pytest.param(lambda n: np.round(np.linspace(1, 2, n), 2), id="decimal"),
    pytest.param(lambda n: 1e6 + 1_000.0 * np.arange(n), id="steady-counter"),
    pytest.param(lambda n: np.random.default_rng(n).normal(0, 1, n), id="noise"),
])
@pytest.mark.parametrize("times", [
    pytest.param(lambda n: T0_MS + 10_000 * np.arange(n), id="grid"),
    pytest.param(lambda n: T0_MS + 500 * np.arange(n) ** 2, id="dod"),
])
def test_tiny_chunks(n: int, values: Callable[[int], Floats],
                     times: Callable[[int], Ints]) -> None:
    blob = codec.encode_floats_ms(times(n).astype(np.int64), values(n))

    assert_same_as_reference([blob])
    assert_same_as_reference([blob, blob, blob])


def test_a_realistic_day_decodes_like_the_reference() -> None:
    blobs = realistic_day(np.random.default_rng(7))

    assert_same_as_reference(blobs)
    assert_same_as_reference(blobs[::-1])


def test_patched_streams_are_exercised() -> None:
    """Counters with resets and phase jumps: exceptions in values and timestamps."""
    rng = np.random.default_rng(3)
    n = 480
    ts = T0_MS + np.arange(n) * 10_000 + rng.integers(-20, 21, n)
    ts[240:] += 3_217
    blobs = [codec.encode_floats_ms(ts, _counter_with_resets(rng, n)) for _ in range(5)]

    assert_same_as_reference(blobs)


def test_encode_float_chunks_output_decodes_like_the_reference() -> None:
    rng = np.random.default_rng(11)
    sizes = rng.integers(0, 500, 30)
    ts = np.concatenate([_times(rng, int(size)) for size in sizes])
    values = np.concatenate([_values(rng, int(size)) for size in sizes])

    blobs = codec.encode_float_chunks(ts, values, np.concatenate(([0], np.cumsum(sizes))))

    assert_same_as_reference(blobs)


def test_old_versions_are_spliced_in_their_places() -> None:
    """Versions 1 and 2 (and XOR) go through the reference decoder, in order."""
    rng = np.random.default_rng(5)
    old = [bytes.fromhex(blob) for blob, _ in V1_BLOBS.values()]
    old += [bytes.fromhex(blob) for _, blob, _ in V2_BLOBS.values()]
    xor = codec.encode_floats_ms(T0_MS + np.arange(50), rng.choice([1 / 3, 2 / 7], 50))
    assert xor[1] & 0x7F == Encoding.XOR
    blobs = [*old, xor, *(_chunk(rng) for _ in range(20))]
    order = rng.permutation(len(blobs))

    assert_same_as_reference([blobs[i] for i in order])
    assert_same_as_reference(old)


# -- corrupt chunks -------------------------------------------------------------------------


GOOD = codec.encode_floats_ms(T0_MS + np.arange(480) * 10_000,
                              np.cumsum(np.random.default_rng(1).integers(0, 2_000_000, 480))
                              .astype(np.float64))


def _raw_v3(body: bytes) -> bytes:
    return bytes([3, Encoding.DECIMAL | 0x80]) + body


@pytest.mark.parametrize(
    "blob",
    [
        pytest.param(b"", id="empty"),
        pytest.param(GOOD[:-1], id="truncated-by-one"),
        pytest.param(GOOD[: len(GOOD) // 2], id="truncated-by-half"),
        pytest.param(GOOD[:12], id="truncated-in-the-heads"),
        pytest.param(bytes([9]) + GOOD[1:], id="unknown-version"),
        pytest.param(codec.encode_objects_ms(np.array([1, 2]), [{"a": 1}, {}]), id="objects"),
        # 4 points, grid times, decimal deltas: 1 bit + 9 exceptions among 3 values
        pytest.param(_raw_v3(bytes([4, 1, 0, 0, 20, 0, 1, 0x81, 0, 0, 9, 3]) + b"\xff" * 8),
                     id="more-exceptions-than-values"),
        pytest.param(_raw_v3(bytes([4, 1, 0, 0, 20, 0, 1, 0x81, 0, 0, 1, 3]) + b"\x00\x03\x07"),
                     id="exception-past-the-end"),
        pytest.param(_raw_v3(bytes([4, 1, 0, 0, 20, 0, 250, 1, 0, 0]) + b"\x00"),
                     id="bad-decimal-order"),
        pytest.param(_raw_v3(bytes([4, 1, 0, 0, 20, 99, 1, 1, 0, 0]) + b"\x00"),
                     id="bad-decimal-exponent"),
        pytest.param(_raw_v3(bytes([4, 7, 0, 0, 20, 0, 1, 1, 0, 0]) + b"\x00"),
                     id="unknown-time-mode"),
        pytest.param(_raw_v3(bytes([4, 1, 0, 0, 20, 0, 1, 99, 0, 0]) + b"\x00" * 40),
                     id="too-wide"),
    ],
)
def test_corrupt_chunks_raise_archive_error(blob: bytes) -> None:
    with pytest.raises(ArchiveError, match="chunk"):
        codec.decode_floats_ms(blob)
    with pytest.raises(ArchiveError, match="chunk"):
        decode_floats_many([GOOD, blob, GOOD])
    with pytest.raises(ArchiveError, match="chunk"):
        decode_floats_many([blob])


def test_a_hand_made_chunk_decodes_like_the_reference() -> None:
    """The layout the corrupt cases start from: zig-zagged deltas 1, 0 and 1 + (7 << 1)."""
    blob = _raw_v3(bytes([4, 1, 0, 0, 20, 0, 1, 0x81, 0, 0, 1, 3]) + b"\x05\x02\x07")

    assert codec.decode_floats_ms(blob)[1].tolist() == [0.0, -1.0, -1.0, -9.0]
    assert_same_as_reference([blob, GOOD, blob])


# -- bitpack.unpack_bits ---------------------------------------------------------------------


@pytest.mark.parametrize("count", [0, 1, 7, 8, 478, 480])
@pytest.mark.parametrize("bits", range(1, 65))
def test_unpack_bits_inverts_pack_bits(bits: int, count: int) -> None:
    rng = np.random.default_rng(bits * 1000 + count)
    values = rng.integers(0, 2**64, count, dtype=np.uint64, endpoint=False)
    values &= np.uint64((1 << bits) - 1)
    packed = bitpack.pack_bits(values, bits)
    prefix = b"\xa5" * 3  # not at the start of the buffer
    body = memoryview(prefix + packed)

    out = bitpack.unpack_bits(body, len(prefix), count, bits)

    assert out.dtype == np.uint64
    assert out.tolist() == values.tolist()
    assert bitpack.unpack_bits(memoryview(packed), 0, count, bits).tolist() == values.tolist()


def test_unpack_bits_refuses_a_short_body() -> None:
    packed = bitpack.pack_bits(np.arange(100, dtype=np.uint64), 7)

    with pytest.raises(ValueError, match="buffer"):
        bitpack.unpack_bits(memoryview(packed[:-1]), 0, 100, 7)


# -- a realistic read: one day of 18 chunks ------------------------------------------------


def realistic_day(rng: np.random.Generator, chunks: int = 18, size: int = 480) -> list[bytes]:
    """Timestamps every 10 s with ±20 ms jitter; 45% gauges with 2 decimals, 45% counters,
    10% noise, each chunk a series of its own."""
    blobs = []
    for i in range(chunks):
        ts = T0_MS + (i * size + np.arange(size)) * 10_000 + rng.integers(-20, 21, size)
        draw = rng.random()
        if draw < 0.45:
            values = np.round(20 + np.cumsum(rng.normal(0, 0.05, size)), 2)
        elif draw < 0.9:
            values = np.cumsum(rng.integers(0, 2_000_000, size)).astype(np.float64)
        else:
            values = rng.normal(0, 1, size)
        blobs.append(codec.encode_floats_ms(ts.astype(np.int64), values))
    return blobs

