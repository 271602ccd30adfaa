"""Remote-write requests read by their shape: the same answers as the general reader,
never another request's series, and a bounded memory."""

from __future__ import annotations

import math
import struct

import cramjam
import numpy as np
import pytest

from watchkeeper.api.ingest.remote_shapes import Offsets, Shape, Shapes
from watchkeeper.api.ingest.remote_write import Decoder, write_request_class
from watchkeeper.archive import Columns
from watchkeeper.errors import InvalidData

T0 = 1_700_000_000_000
STALE = struct.unpack("<d", struct.pack("<Q", 0x7FF0000000000002))[0]


def request(series: list[list[tuple[str, str]]], values: list[float], stamp: int = T0) -> bytes:
    message = write_request_class()()
    for labels, value in zip(series, values, strict=True):
        ts = message.timeseries.add()
        for name, text in labels:
            ts.labels.add(name=name, value=text)
        ts.samples.add(timestamp=stamp, value=value)
    return bytes(cramjam.snappy.compress_raw(message.SerializeToString()))


def node(i: int, host: str = "h1") -> list[tuple[str, str]]:
    return [("__name__", f"m{i}"), ("instance", f"{host}:9100"), ("job", "node")]


SERIES = [node(i) for i in range(5)]


def fresh(body: bytes) -> Columns:
    """What a decoder that remembers no shape reads."""
    return Decoder(shapes=Shapes(count=0)).decode(body)


def same(a: Columns, b: Columns) -> bool:
    return (list(a.series) == list(b.series) and a.index.tolist() == b.index.tolist()
            and a.ts.tolist() == b.ts.tolist()
            and np.array_equal(a.values, b.values, equal_nan=True))


def test_a_repeated_request_reads_as_a_fresh_decoder_reads_it() -> None:
    """Round after round (values, NaN, infinity, negative, a later timestamp) the shape
    gives what the general reader gives, with one token for the one series list."""
    decoder = Decoder()
    first = decoder.decode(request(SERIES, [1.0, 2.0, 3.0, 4.0, 5.0]))
    assert first.series_token is not None
    for round_no, values in enumerate([[1.5, math.nan, -3.0, 5e-324, 1e300],
                                       [2.5, 2.0, math.inf, -7.0, 7.0]], start=1):
        body = request(SERIES, values, T0 + 15_000 * round_no)
        columns = decoder.decode(body)
        assert same(columns, fresh(body))
        assert columns.series_token == first.series_token
        assert columns.ts.tolist() == [(T0 + 15_000 * round_no) / 1000] * 5


def test_values_of_zero_which_protobuf_leaves_out() -> None:
    """A sample of value 0 has no value field (9 bytes shorter): read in bulk too, and a
    request with zeros in the same places has the same shape."""
    decoder = Decoder()
    first = decoder.decode(request(SERIES, [0.0, 1.0, 0.0, 2.0, 3.0]))
    assert first.values.tolist() == [0.0, 1.0, 0.0, 2.0, 3.0]
    assert first.series_token is not None
    body = request(SERIES, [0.0, 4.0, 0.0, 5.0, 6.0], T0 + 15_000)
    columns = decoder.decode(body)
    assert same(columns, fresh(body))
    assert columns.series_token == first.series_token
    swapped = request(SERIES, [4.0, 0.0, 0.0, 5.0, 6.0], T0 + 30_000)  # same size
    columns = decoder.decode(swapped)
    assert same(columns, fresh(swapped))
    assert columns.values.tolist() == [4.0, 0.0, 0.0, 5.0, 6.0]


def test_stale_markers_are_kept_bit_for_bit_by_the_shape() -> None:
    """A stale marker is a value like another: the request keeps its shape (and token),
    and the marker's NaN bits reach the archive intact (PromQL tells it from NaN)."""
    decoder = Decoder()
    first = decoder.decode(request(SERIES, [1.0] * 5))
    body = request(SERIES, [1.0, STALE, 3.0, math.nan, 5.0])
    columns = decoder.decode(body)
    assert same(columns, fresh(body))
    assert [text.split("/")[2] for text in columns.series] == ["m0", "m1", "m2", "m3", "m4"]
    assert columns.series_token == first.series_token
    assert columns.values.view(np.uint64)[[1, 3]].tolist() == [0x7FF0000000000002,
                                                               0x7FF8000000000000]


@pytest.mark.parametrize("other", [
    [node(i, "h2") for i in range(5)],                        # same lengths, other host
    [*SERIES[:4], [("__name__", "m9"), ("instance", "h1:9100"), ("job", "node")]],
    [SERIES[1], SERIES[0], *SERIES[2:]],                       # same series, other order
], ids=["other-host", "other-metric", "reordered"])
def test_a_request_of_the_same_size_with_other_series_is_not_taken_for_it(
        other: list[list[tuple[str, str]]]) -> None:
    decoder = Decoder()
    first = decoder.decode(request(SERIES, [1.0] * 5))
    body = request(other, [2.0] * 5)
    assert len(cramjam.snappy.decompress_raw(body)) == len(
        cramjam.snappy.decompress_raw(request(SERIES, [1.0] * 5)))
    columns = decoder.decode(body)
    assert same(columns, fresh(body))
    assert columns.series_token != first.series_token


def test_a_timestamp_of_another_length_is_read_by_the_general_reader() -> None:
    """A 5-byte timestamp varint and a label one byte longer: same size, other shape."""
    decoder = Decoder()
    decoder.decode(request([[("__name__", "ab")]], [1.0]))
    body = request([[("__name__", "abc")]], [1.0], stamp=2**34)  # 5 varint bytes
    columns = decoder.decode(body)
    assert same(columns, fresh(body))
    assert columns.ts.tolist() == [2**34 / 1000]


def test_a_corrupt_block_of_a_remembered_size_is_refused() -> None:
    decoder = Decoder()
    body = request(SERIES, [1.0] * 5)
    decoder.decode(body)
    corrupt = body[:8] + bytes(len(body) - 8)  # the announced length is kept
    with pytest.raises(InvalidData):
        decoder.decode(corrupt)
    assert same(decoder.decode(body), fresh(body))  # and the shape still serves


def test_shapes_are_bounded_in_count_and_bytes() -> None:
    shapes = Shapes(count=2, limit=1000)

    def shape(size: int) -> Shape:
        return Shape.of(bytes(size), Offsets(np.empty(0, np.intp), np.empty(0, np.intp)), [])

    for size in (100, 200, 300):
        shapes.remember(shape(size))
    assert len(shapes) == 2
    assert shapes.get(100) is None
    assert shapes.get(300) is not None
    shapes.remember(shape(900))  # 300 + 900 > 1000: the oldest goes
    assert shapes.get(300) is None
    assert shapes.get(900) is not None
    shapes.remember(shape(2000))  # larger than the limit: never kept
    assert shapes.get(2000) is None


def test_a_decoder_holds_at_most_its_count_of_shapes() -> None:
    shapes = Shapes(count=3)
    decoder = Decoder(shapes=shapes)
    for n in range(1, 6):
        body = request(SERIES[:n], [1.0] * n)
        assert same(decoder.decode(body), fresh(body))
    assert len(shapes) == 3


def test_new_label_sets_of_every_kind_read_alike() -> None:
    """ASCII label sets take the short reader; non-ASCII values, empty values (which
    protobuf leaves out) and long ones (two-byte lengths) the varint reader: same keys."""
    series = [[("__name__", "a"), ("zone", "x")], [("__name__", "b"), ("zone", "é")],
              [("__name__", "c"), ("zone", "")], [("__name__", "d"), ("zone", "y" * 200)]]
    columns = Decoder().decode(request(series, [1.0] * 4))
    assert list(columns.series) == [
        'prometheus/prometheus/a{zone="x"}', 'prometheus/prometheus/b{zone="é"}',
        "prometheus/prometheus/c", f'prometheus/prometheus/d{{zone="{"y" * 200}"}}']
