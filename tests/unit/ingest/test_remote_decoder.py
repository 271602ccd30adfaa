"""The hand-written WriteRequest decoder: what protobuf allows, what it refuses."""

from __future__ import annotations

import math
import struct

import cramjam
import numpy as np
import pytest

from watchkeeper.api.ingest.metadata import MetricMetadata
from watchkeeper.api.ingest.remote_write import Decoder, decode, write_request_class
from watchkeeper.errors import InvalidData


def snappy(raw: bytes) -> bytes:
    return bytes(cramjam.snappy.compress_raw(raw))


def field(number: int, body: bytes) -> bytes:
    return bytes([number << 3 | 2, len(body)]) + body


def label(name: str, value: str) -> bytes:
    return field(1, field(1, name.encode()) + field(2, value.encode()))


def sample(value: float, stamp: int) -> bytes:
    varint = bytearray()
    stamp &= (1 << 64) - 1
    while True:
        byte, stamp = stamp & 0x7F, stamp >> 7
        varint.append(byte | (0x80 if stamp else 0))
        if not stamp:
            break
    return field(2, b"\x09" + struct.pack("<d", value) + b"\x10" + bytes(varint))


def test_agrees_with_protobuf() -> None:
    """What the protobuf package encodes, the decoder reads the same (NaN included)."""
    request = write_request_class()()
    ts = request.timeseries.add()
    for name, value in (("__name__", "up"), ("job", "j")):
        ts.labels.add(name=name, value=value)
    ts.samples.add(timestamp=1_700_000_000_123, value=math.nan)
    ts.samples.add(timestamp=-5, value=2.0)
    columns = decode(snappy(request.SerializeToString()))
    assert list(columns.series) == ['prometheus/prometheus/up{job="j"}']
    assert columns.ts.tolist() == [1_700_000_000.123, -0.005]
    assert math.isnan(columns.values[0])


def test_unknown_fields_interleaving_and_the_cache() -> None:
    """Exemplars, unknown fields and fields of every wire type are skipped, metadata read
    beside the samples; labels split by another field still make one label set; a known
    set is remembered (and the memory bounded)."""
    series = (label("__name__", "m") + b"\x1d\x00\x00\x00\x00" + label("a", "1")
              + field(3, b"exemplar") + b"\x21" + bytes(8) + b"\x28\x07" + sample(1.0, 1000))
    metadata = b"\x08\x02" + field(2, b"m") + field(4, b"help") + b"\x35" + bytes(4)
    body = snappy(field(1, series) + field(3, metadata) + field(9, b"unknown")
                  + field(1, label("__name__", "x")))
    decoder = Decoder(remember=1)
    for _ in range(2):
        columns, described = decoder.read(body)
        assert list(columns.series) == ['prometheus/prometheus/m{a="1"}']
        assert columns.values.tolist() == [1.0]
        assert described == [("m", MetricMetadata("gauge", "help", ""))]


@pytest.mark.parametrize("raw", [
    field(1, label("__name__", "m") + sample(1.0, 1))[:-3],         # truncated
    b"\x0a\x05" + bytes(2),                                           # runs past the end
    b"\x0a" + b"\xff" * 11,                                           # varint too long
    b"\x0b",                                                          # wire type 3
    field(1, label("__name__", "m") + b"\x12\x03\x09\x00\x00"),       # sample overruns
    field(1, b"\x0a\x02\x0a\x05" + sample(1.0, 1)),                   # label overruns
    field(1, field(1, field(1, b"\xff\xfe")) + sample(1.0, 1)),       # not UTF-8
    field(1, field(1, b"\x1d\x00\x00") + sample(1.0, 1)),             # label field overrun
])
def test_malformed_requests_are_invalid(raw: bytes) -> None:
    with pytest.raises(InvalidData):
        decode(snappy(raw))


def test_oversized_block_is_refused() -> None:
    """A block announcing more than the limit is refused before it is inflated."""
    with pytest.raises(InvalidData):
        decode(b"\x80\x80\x80\x80\x02" + b"\x00")


def one_sample_request(*series: tuple[list[tuple[str, str]], float]) -> bytes:
    request = write_request_class()()
    for labels, value in series:
        ts = request.timeseries.add()
        for name, text in labels:
            ts.labels.add(name=name, value=text)
        ts.samples.add(timestamp=1_700_000_000_000, value=value)
    return snappy(request.SerializeToString())


STALE = struct.unpack("<d", struct.pack("<Q", 0x7FF0000000000002))[0]


def test_the_usual_layout_reads_as_the_general_one() -> None:
    """One sample per series (Prometheus' usual request), long label sets (2-byte
    lengths), NaN and stale markers: read the same by the vectorised path, known or new."""
    long_value = "x" * 300
    body = one_sample_request(([("__name__", "a")], 1.5), ([("__name__", "b")], math.nan),
                              ([("__name__", "c")], STALE),
                              ([("__name__", "d"), ("long", long_value)], -2.0))
    decoder = Decoder()
    for _ in range(2):
        columns = decoder.decode(body)
        assert list(columns.series) == ["prometheus/prometheus/a", "prometheus/prometheus/b",
                                        "prometheus/prometheus/c",
                                        f'prometheus/prometheus/d{{long="{long_value}"}}']
        assert columns.ts.tolist() == [1_700_000_000.0] * 4
        assert columns.values[0] == 1.5
        assert columns.values.view(np.uint64)[1:3].tolist() == [0x7FF8000000000000,
                                                                0x7FF0000000000002]
        assert columns.values[3] == -2.0


@pytest.mark.parametrize("body", [
    one_sample_request(([("job", "j"), ("__name__", "a")], 1.0)),   # out of order
    snappy(field(1, label("__name__", "a") + field(1, field(1, b"l") + field(2, b"\xff"))
                 + sample(1.0, 1_700_000_000_000))),                 # not UTF-8
    snappy(field(1, label("__name__", "a") + sample(1.0, 1_700_000_000_000))[:-1]),  # cut
])
def test_the_usual_layout_refuses_what_the_general_one_refuses(body: bytes) -> None:
    with pytest.raises(InvalidData):
        Decoder().decode(body)
