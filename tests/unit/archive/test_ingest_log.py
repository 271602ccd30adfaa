"""The ingest-log form of a write batch: round trip, and refusal of corrupt rows."""

from __future__ import annotations

import numpy as np
import pytest

from watchkeeper.archive.backends._batch import (
    LOG_VERSION,
    LOG_VERSION_RAW,
    columnize,
    decode_batch,
    encode_batch,
)
from watchkeeper.archive.backends._catalog import Catalog
from watchkeeper.errors import ArchiveError, InvalidData
from watchkeeper.model import Measurement, SeriesKey

T0 = 1_700_000_000.0
A = SeriesKey.make("h", "p", "a")
B = SeriesKey.make("h", "p", "b", {"x": "1"})


@pytest.mark.parametrize("compress", [True, False], ids=["zstd", "raw"])
def test_a_batch_survives_the_log(compress: bool) -> None:
    """Floats and histograms come back column for column, bit for bit, in either form."""
    batch = columnize(
        [
            Measurement(key=A, ts=T0, value=-0.0),
            Measurement(key=B, ts=T0 + 0.5, histogram={"1": 2}),
            Measurement(key=A, ts=T0 + 1, value=float("nan")),
        ],
        Catalog(),
    )

    blob = encode_batch(batch, compress=compress)
    back = decode_batch(blob)

    assert blob[0] == (LOG_VERSION if compress else LOG_VERSION_RAW)
    assert [s.key for s in batch.new_series] == [A, B]
    floats, hists = back.column("float"), back.column("histogram")
    assert floats.sids.tolist() == batch.column("float").sids.tolist() == [0, 0]
    assert floats.ts.tolist() == [T0 * 1000, T0 * 1000 + 1000]
    written = batch.column("float").values
    assert floats.values.view(np.uint64).tolist() == written.view(np.uint64).tolist()
    assert (hists.sids.tolist(), hists.ts.tolist()) == ([1], [T0 * 1000 + 500])
    assert hists.values.tolist() == [{"1": 2}]


@pytest.mark.parametrize(
    "blob",
    [
        pytest.param(b"", id="empty"),
        pytest.param(bytes([LOG_VERSION_RAW + 1]) + b"x", id="unknown-version"),
        pytest.param(bytes([LOG_VERSION]) + b"not zstd", id="not-zstd"),
        pytest.param(bytes([LOG_VERSION]), id="no-body"),
        pytest.param(bytes([LOG_VERSION_RAW]) + b"\x01\x00", id="raw-cut-in-the-counts"),
        pytest.param(bytes([LOG_VERSION_RAW]) + bytes([9, 0, 0, 0]) + bytes(8) + bytes(20),
                     id="raw-cut-in-the-columns"),
    ],
)
def test_corrupt_rows_are_refused(blob: bytes) -> None:
    with pytest.raises(ArchiveError, match="ingest log row"):
        decode_batch(blob)


@pytest.mark.parametrize("compress", [True, False], ids=["zstd", "raw"])
def test_objects_survive_the_log(compress: bool) -> None:
    """Object points get their own column; histograms and floats are untouched by them."""
    batch = columnize(
        [
            Measurement(key=A, ts=T0, obj={"numerator": 1, "denominator": 4}),
            Measurement(key=A, ts=T0 + 1, obj=["x", None, 2.5]),
            Measurement(key=B, ts=T0, value=1.0),
        ],
        Catalog(),
    )

    back = decode_batch(encode_batch(batch, compress=compress))

    objects = back.column("object")
    assert [s.kind for s in batch.new_series] == ["object", "float"]
    assert (objects.sids.tolist(), objects.ts.tolist()) == ([0, 0], [T0 * 1000, T0 * 1000 + 1000])
    assert objects.values.tolist() == [{"numerator": 1, "denominator": 4}, ["x", None, 2.5]]
    assert back.column("float").sids.tolist() == [1]
    assert len(back.column("histogram").sids) == 0


def test_version_1_rows_are_still_read() -> None:
    """Rows written before objects existed (no object column) decode as before."""
    import struct

    import msgspec
    import zstandard

    body = b"".join((
        struct.pack("<II", 1, 1),
        np.array([3], "<i4").tobytes(), np.array([5000], "<i8").tobytes(),
        np.array([2.5], "<f8").tobytes(),
        np.array([4], "<i4").tobytes(), np.array([6000], "<i8").tobytes(),
        msgspec.msgpack.encode([{"b": 1}]),
    ))
    back = decode_batch(bytes([1]) + zstandard.ZstdCompressor().compress(body))

    floats, hists, objects = back.columns
    assert (floats.sids.tolist(), floats.ts.tolist()) == ([3], [5000])
    assert floats.values.tolist() == [2.5]
    assert (hists.sids.tolist(), hists.values.tolist()) == ([4], [{"b": 1}])
    assert len(objects.sids) == 0


@pytest.mark.parametrize(
    "fields",
    [{}, {"value": 1.0, "obj": {}}, {"histogram": {}, "obj": 1}, {"value": 1.0, "histogram": {}}],
    ids=["none", "value-and-obj", "histogram-and-obj", "value-and-histogram"],
)
def test_a_measurement_has_exactly_one_value(fields: dict[str, object]) -> None:
    with pytest.raises(InvalidData, match="exactly one of value, histogram and obj"):
        Measurement(key=A, ts=T0, **fields)  # type: ignore[arg-type]
