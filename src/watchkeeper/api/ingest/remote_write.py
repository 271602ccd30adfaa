"""Prometheus remote write 1.0: a snappy block holding a protobuf ``WriteRequest``.

The three messages (``WriteRequest``, ``TimeSeries``, ``Label``/``Sample``) are described
in code and parsed by the ``protobuf`` package's C (upb) parser: measured against a small
hand-written decoder, it reads a 10,000-series request several times faster (decision
D-prom, figures in docs/performance.md). Exemplars, native histograms and metadata are
not read.

Everything a sender cannot fix by retrying is :class:`InvalidData` (400: Prometheus drops
the batch): a corrupt block, a truncated or malformed message, labels out of order or
duplicated, a series without ``__name__``. Stale markers (the NaN with bits
``0x7ff0000000000002`` Prometheus writes when a series disappears) are skipped; any other
NaN is stored.
"""

from __future__ import annotations

import functools
import itertools
import struct
from typing import Any, Final

import cramjam
import numpy as np
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.message import DecodeError

from watchkeeper.archive import Columns
from watchkeeper.errors import InvalidData
from watchkeeper.model import promlabels

STALE_NAN: Final = struct.pack("<Q", 0x7FF0000000000002)
MAX_UNCOMPRESSED: Final = 256 * 1024 * 1024
_F = descriptor_pb2.FieldDescriptorProto


@functools.cache
def write_request_class() -> Any:
    """The ``prometheus.WriteRequest`` message class (remote write 1.0's fields only)."""
    file = descriptor_pb2.FileDescriptorProto(name="watchkeeper_remote.proto",
                                              package="prometheus", syntax="proto3")

    def message(name: str, *fields: tuple[str, int, int, str | None, bool]) -> None:
        msg = file.message_type.add(name=name)
        for fname, number, ftype, type_name, repeated in fields:
            field = msg.field.add(name=fname, number=number, type=ftype,
                                  label=_F.LABEL_REPEATED if repeated else _F.LABEL_OPTIONAL)
            if type_name:
                field.type_name = type_name

    message("Label", ("name", 1, _F.TYPE_STRING, None, False),
            ("value", 2, _F.TYPE_STRING, None, False))
    message("Sample", ("value", 1, _F.TYPE_DOUBLE, None, False),
            ("timestamp", 2, _F.TYPE_INT64, None, False))
    message("TimeSeries", ("labels", 1, _F.TYPE_MESSAGE, ".prometheus.Label", True),
            ("samples", 2, _F.TYPE_MESSAGE, ".prometheus.Sample", True))
    message("WriteRequest",
            ("timeseries", 1, _F.TYPE_MESSAGE, ".prometheus.TimeSeries", True))
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("prometheus.WriteRequest"))


def decompress(body: bytes) -> bytes:
    """The snappy block's content; InvalidData for a corrupt or oversized block."""
    try:
        size = int(cramjam.snappy.decompress_raw_len(body))
        if size > MAX_UNCOMPRESSED:
            raise InvalidData(f"decompresses to {size} bytes, more than {MAX_UNCOMPRESSED}",
                              field="body")
        return bytes(cramjam.snappy.decompress_raw(body))
    except cramjam.DecompressionError as exc:
        raise InvalidData(f"not a snappy block: {exc}", field="body") from None


def decode(body: bytes) -> Columns:
    """A remote-write request body (snappy protobuf) as a columnar write batch."""
    request = write_request_class()()
    try:
        request.ParseFromString(decompress(body))
    except DecodeError as exc:
        raise InvalidData(f"not a WriteRequest protobuf: {exc}", field="body") from None
    series: list[str] = []
    index: list[int] = []
    stamps: list[int] = []
    values: list[float] = []
    for position, ts in enumerate(request.timeseries):
        labels = [(label.name, label.value) for label in ts.labels]
        check_order(labels, position)
        samples = [(s.timestamp, s.value) for s in ts.samples
                   if s.value == s.value or struct.pack("<d", s.value) != STALE_NAN]
        if not samples:
            continue
        try:
            text = promlabels.key_text(labels)
        except InvalidData as exc:
            raise InvalidData(f"timeseries[{position}]: {exc}", field="labels") from None
        at = len(series)
        series.append(text)
        for stamp, value in samples:
            index.append(at)
            stamps.append(stamp)
            values.append(value)
    return Columns(series=series, index=np.asarray(index, dtype=np.int32),
                   ts=np.asarray(stamps, dtype=np.float64) / 1000.0,
                   values=np.asarray(values, dtype=np.float64))


def check_order(labels: list[tuple[str, str]], position: int) -> None:
    """InvalidData unless label names are strictly ascending (sorted, no duplicate)."""
    for (before, _), (after, _) in itertools.pairwise(labels):
        if not before < after:
            what = "duplicated" if before == after else "out of order"
            raise InvalidData(f"timeseries[{position}]: label {after!r} {what} after "
                              f"{before!r}", field="labels", value=after)
