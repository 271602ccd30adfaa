"""Prometheus remote write 1.0: a snappy block holding a protobuf ``WriteRequest``.

The messages (``WriteRequest``, ``TimeSeries``, ``Label``, ``Sample``) are read by a small
hand-written decoder that remembers the series key of each label set's raw bytes: measured
against the ``protobuf`` package (upb, with the descriptor built in code here), it is
faster once a series is known, which is every request after the first; a request
repeating the series of one before is read by numpy alone (``remote_shapes``; decisions
D31 and D41, figures in docs/performance.md). Metric metadata (``WriteRequest.metadata``:
type, family name, help, unit) is read too (:meth:`Decoder.read`, decision D46); exemplars
and native histograms are skipped.

Everything a sender cannot fix by retrying is :class:`InvalidData` (400: Prometheus drops
the batch): a corrupt block, a truncated or malformed message, labels out of order or
duplicated, a series without ``__name__``. NaN is stored as sent, bits and all, so a stale
marker (the NaN with bits ``0x7ff0000000000002`` Prometheus writes when a series
disappears) is kept and ends the series for PromQL as in Prometheus (decision D42,
:data:`watchkeeper.model.promlabels.STALE_BITS`).
"""

from __future__ import annotations

import functools
import itertools
import struct
from collections.abc import Iterator
from typing import Any, Final, cast

import cramjam
import numpy as np

from watchkeeper.api.ingest.metadata import TYPES, MetricMetadata
from watchkeeper.api.ingest.remote_shapes import STAMP_BYTES, Offsets, Shape, Shapes, read_samples
from watchkeeper.api.ingest.remote_shapes import columns as columns_of
from watchkeeper.archive import Columns
from watchkeeper.errors import InvalidData
from watchkeeper.model import promlabels

MAX_UNCOMPRESSED: Final = 256 * 1024 * 1024


@functools.cache
def write_request_class() -> Any:
    """The ``prometheus.WriteRequest`` message class (remote write 1.0's fields only), for
    tests and the benchmark, which encode requests as Prometheus does and compare decoders;
    the server never needs it (``protobuf`` is a development dependency)."""
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

    field_type = descriptor_pb2.FieldDescriptorProto
    file = descriptor_pb2.FileDescriptorProto(name="watchkeeper_remote.proto",
                                              package="prometheus", syntax="proto3")

    def message(name: str, *fields: tuple[str, int, int, str | None, bool]) -> None:
        msg = file.message_type.add(name=name)
        for fname, number, ftype, type_name, repeated in fields:
            field = msg.field.add(name=fname, number=number, type=ftype,
                                  label=field_type.LABEL_REPEATED if repeated
                                  else field_type.LABEL_OPTIONAL)
            if type_name:
                field.type_name = type_name

    message("Label", ("name", 1, field_type.TYPE_STRING, None, False),
            ("value", 2, field_type.TYPE_STRING, None, False))
    message("Sample", ("value", 1, field_type.TYPE_DOUBLE, None, False),
            ("timestamp", 2, field_type.TYPE_INT64, None, False))
    message("TimeSeries", ("labels", 1, field_type.TYPE_MESSAGE, ".prometheus.Label", True),
            ("samples", 2, field_type.TYPE_MESSAGE, ".prometheus.Sample", True))
    message("MetricMetadata", ("type", 1, field_type.TYPE_INT32, None, False),
            ("metric_family_name", 2, field_type.TYPE_STRING, None, False),
            ("help", 4, field_type.TYPE_STRING, None, False),
            ("unit", 5, field_type.TYPE_STRING, None, False))
    message("WriteRequest",
            ("timeseries", 1, field_type.TYPE_MESSAGE, ".prometheus.TimeSeries", True),
            ("metadata", 3, field_type.TYPE_MESSAGE, ".prometheus.MetricMetadata", True))
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("prometheus.WriteRequest"))


def decompress(body: bytes) -> bytes:
    """The snappy block's content; InvalidData for a corrupt or oversized block."""
    inflated_size(body)
    try:
        return bytes(cramjam.snappy.decompress_raw(body))
    except cramjam.DecompressionError as exc:
        raise InvalidData(f"not a snappy block: {exc}", field="body") from None


def inflated_size(body: bytes) -> int:
    """The length the snappy block announces; InvalidData above the limit, or for a block
    too corrupt to announce one."""
    try:
        size = int(cramjam.snappy.decompress_raw_len(body))
    except cramjam.DecompressionError as exc:
        raise InvalidData(f"not a snappy block: {exc}", field="body") from None
    if size > MAX_UNCOMPRESSED:
        raise InvalidData(f"decompresses to {size} bytes, more than {MAX_UNCOMPRESSED}",
                          field="body")
    return size


def _inflate_into(body: bytes, size: int) -> bytearray:
    buf = bytearray(size)
    try:
        written = int(cramjam.snappy.decompress_raw_into(body, buf))
    except cramjam.DecompressionError as exc:
        raise InvalidData(f"not a snappy block: {exc}", field="body") from None
    if written != size:
        raise InvalidData(f"not a snappy block: {written} bytes, {size} announced",
                          field="body")
    return buf


class Decoder:
    """Decodes requests, remembering the series key of each label set it has seen.

    Prometheus sends the same series every scrape interval, so the raw bytes of a
    series' labels are looked up first: a known label set costs one dict lookup, and
    only new ones are decoded, checked and mapped. A request that repeats the series of
    one read before, in the same order, is recognised by its shape (remote_shapes) and
    read without a Python step per series. The messages are read by hand (three small
    messages); :func:`write_request_class` is kept for tests and benchmarks, which
    compare the two (docs/performance.md).
    """

    def __init__(self, *, remember: int = 1_000_000, shapes: Shapes | None = None) -> None:
        self._keys: dict[bytes, str] = {}
        self._remember = remember
        self._shapes = shapes if shapes is not None else Shapes()

    def decode(self, body: bytes) -> Columns:
        """A remote-write request body (snappy protobuf) as a columnar write batch."""
        return self.read(body)[0]

    def read(self, body: bytes) -> tuple[Columns, list[tuple[str, MetricMetadata]]]:
        """A remote-write request body's samples as a columnar write batch, and the
        metric metadata it carries (family name and metadata)."""
        shape = self._shapes.get(inflated_size(body))
        if shape is not None:  # maybe the series of a request read before (remote_shapes)
            columns = shape.read(_inflate_into(body, len(shape.skeleton)))
            if columns is not None:
                return columns, []
        buf = decompress(body)
        usual = self._usual(buf)  # only TimeSeries: no metadata
        if usual is not None:
            return usual, []
        metadata: list[tuple[str, MetricMetadata]] = []
        try:
            parsed = list(_each_timeseries(buf, metadata))
        except (_Malformed, IndexError, struct.error) as exc:
            raise InvalidData(f"not a WriteRequest protobuf: {exc or 'truncated'}",
                              field="body") from None
        series: list[str] = []
        index: list[int] = []
        stamps: list[int] = []
        values: list[float] = []
        for position, (labels, samples) in enumerate(parsed):
            if samples:
                at = len(series)
                series.append(self._key(labels, position))
                for stamp, value in samples:
                    index.append(at)
                    stamps.append(stamp)
                    values.append(value)
        return Columns(series=series, index=np.asarray(index, dtype=np.int32),
                       ts=np.asarray(stamps, dtype=np.float64) / 1000.0,
                       values=np.asarray(values, dtype=np.float64)), metadata

    def _usual(self, buf: bytes) -> Columns | None:
        """The request as Prometheus lays it out, read with one step per series and numpy
        for the samples: every TimeSeries its labels then one Sample with a 6-byte
        timestamp (milliseconds from 1971 to 2109). None for any other layout, or
        anything wrong: the general reader then reads it (or says what is wrong)."""
        layout = _usual_layout(buf)
        if layout is None:
            return None
        raws, values_at, ends = layout
        found = list(map(self._keys.get, raws))
        if None in found:  # new label sets: checked and mapped once
            for position, raw in enumerate(raws):
                if found[position] is None:
                    labels = _ascii_labels(raw) if raw.isascii() else None  # the usual
                    if labels is None and not _only_labels(raw):
                        return None
                    found[position] = self._key(raw, position, labels)
        texts = cast(list[str], found)
        where = Offsets(np.asarray(values_at, dtype=np.intp),
                        np.asarray(ends, dtype=np.intp) - STAMP_BYTES)
        samples = read_samples(buf, where)
        if samples is None:
            return None
        if not texts:
            return columns_of(texts, *samples, token=None)
        shape = Shape.of(buf, where, texts)
        self._shapes.remember(shape)
        return columns_of(texts, *samples, token=shape.token)

    def _key(self, raw: bytes, position: int, labels: list[tuple[str, str]] | None = None
             ) -> str:
        """The key of the label set ``raw`` (its labels, when already read)."""
        text = self._keys.get(raw)
        if text is None:
            try:
                labels = labels if labels is not None else _labels(raw)
            except (_Malformed, IndexError) as exc:
                raise InvalidData(f"timeseries[{position}]: bad labels: {exc or 'truncated'}",
                                  field="labels") from None
            check_order(labels, position)
            try:
                text = promlabels.key_text(labels)
            except InvalidData as exc:
                raise InvalidData(f"timeseries[{position}]: {exc}", field="labels") from None
            if len(self._keys) >= self._remember:
                self._keys.clear()
            self._keys[raw] = text
        return text


def decode(body: bytes) -> Columns:
    """A remote-write request body as a columnar batch (a fresh :class:`Decoder`)."""
    return Decoder().decode(body)


class _Malformed(Exception):
    """The bytes are not the message they should be."""


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    byte = buf[pos]
    if byte < 0x80:
        return byte, pos + 1
    result, shift = byte & 0x7F, 7
    while True:
        pos += 1
        byte = buf[pos]
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result, pos + 1
        shift += 7
        if shift > 63:
            raise _Malformed("a varint longer than 10 bytes")


def _each_timeseries(buf: bytes, metadata: list[tuple[str, MetricMetadata]]
                     ) -> Iterator[tuple[bytes, list[tuple[int, float]]]]:
    """Each TimeSeries of a WriteRequest: its labels' raw bytes and its samples; its
    MetricMetadata are appended to ``metadata``."""
    pos, end = 0, len(buf)
    stamps: dict[bytes, int] = {}  # a request's samples mostly share a few timestamps
    while pos < end:
        key, pos = _varint(buf, pos)
        if key == 0x1A:  # MetricMetadata
            size, pos = _varint(buf, pos)
            if pos + size > end:
                raise _Malformed("a MetricMetadata runs past the end")
            read = _metadata(buf, pos, pos + size)
            if read is not None:
                metadata.append(read)
            pos += size
            continue
        if key != 0x0A:  # not a TimeSeries: skipped
            pos = _skip(buf, pos, key, end)
            continue
        size = buf[pos]  # one or two bytes, inline: this loop runs per series
        if size < 0x80:
            pos += 1
        else:
            size, pos = _varint(buf, pos)
        stop = pos + size
        if stop > end:
            raise _Malformed("a TimeSeries runs past the end")
        yield _timeseries(buf, pos, stop, stamps)
        pos = stop


def _metadata(buf: bytes, pos: int, stop: int) -> tuple[str, MetricMetadata] | None:
    """A MetricMetadata's family and metadata; None without a valid family name (kept
    out, as Prometheus' API would never show it; the samples are still stored)."""
    kind, texts = 0, {0x12: "", 0x22: "", 0x2A: ""}
    while pos < stop:
        key, pos = _varint(buf, pos)
        if key == 0x08:
            kind, pos = _varint(buf, pos)
        elif key in texts:
            size, pos = _varint(buf, pos)
            try:
                texts[key] = buf[pos:pos + size].decode("utf-8")
            except UnicodeDecodeError as exc:
                raise _Malformed(f"a MetricMetadata text is not UTF-8: {exc}") from None
            pos += size
        else:
            pos = _skip(buf, pos, key, stop)
    if pos != stop:
        raise _Malformed("a MetricMetadata's fields overrun it")
    family = texts[0x12]
    if not promlabels.is_metric_name(family):
        return None
    kind_name = TYPES[kind] if 0 <= kind < len(TYPES) else "unknown"
    return family, MetricMetadata(kind_name, texts[0x22], texts[0x2A])


def _skip(buf: bytes, pos: int, key: int, end: int) -> int:
    """The position after an unknown field's value."""
    wire = key & 7
    if wire == 0:
        return _varint(buf, pos)[1]
    if wire == 1:
        pos += 8
    elif wire == 2:
        size, pos = _varint(buf, pos)
        pos += size
    elif wire == 5:
        pos += 4
    else:
        raise _Malformed(f"wire type {wire}")
    if pos > end:
        raise _Malformed("a field runs past the end")
    return pos


def _timeseries(buf: bytes, pos: int, stop: int, stamps: dict[bytes, int]
                ) -> tuple[bytes, list[tuple[int, float]]]:
    """The raw bytes of a TimeSeries' labels (their identity) and its samples."""
    first = last = -1
    pieces: list[bytes] = []
    samples: list[tuple[int, float]] = []
    start = pos
    while pos < stop and buf[pos] == 0x0A and buf[pos + 1] < 0x80:  # the usual labels: fast
        pos += 2 + buf[pos + 1]
    if pos > start:
        first, last = start, pos
    while pos < stop:
        at = pos
        key, pos = _varint(buf, pos)
        if key == 0x0A:  # Label
            size, pos = _varint(buf, pos)
            pos += size
            if first < 0:
                first = at
            elif at != last:  # labels interleaved with other fields: keep them apart
                pieces.append(buf[first:last])
                first = at
            last = pos
        elif key == 0x12:  # Sample
            size, pos = _varint(buf, pos)
            samples.append(_sample(buf, pos, pos + size, stamps))
            pos += size
        else:  # exemplars, native histograms: not read
            pos = _skip(buf, pos, key, stop)
    if pos != stop:
        raise _Malformed("a TimeSeries' fields overrun it")
    raw = buf[first:last] if first >= 0 else b""
    return (b"".join([*pieces, raw]) if pieces else raw), samples


def _sample(buf: bytes, pos: int, stop: int, stamps: dict[bytes, int]) -> tuple[int, float]:
    if stop - pos > 10 and buf[pos] == 0x09 and buf[pos + 9] == 0x10:  # the usual layout
        raw = buf[pos + 1:pos + 9]
        varint = buf[pos + 10:stop]
        stamp = stamps.get(varint)
        if stamp is None:
            stamp, end = _varint(buf, pos + 10)
            if end != stop or stamp >= 1 << 63:
                return _sample_fields(buf, pos, stop)
            stamps[varint] = stamp
        return stamp, struct.unpack("<d", raw)[0]
    return _sample_fields(buf, pos, stop)


def _sample_fields(buf: bytes, pos: int, stop: int) -> tuple[int, float]:
    value, stamp = 0.0, 0
    while pos < stop:
        key, pos = _varint(buf, pos)
        if key == 0x09:
            (value,) = struct.unpack("<d", buf[pos:pos + 8])
            pos += 8
        elif key == 0x10:
            stamp, pos = _varint(buf, pos)
            if stamp >= 1 << 63:
                stamp -= 1 << 64
        else:
            pos = _skip(buf, pos, key, stop)
    if pos != stop:
        raise _Malformed("a Sample's fields overrun it")
    return stamp, value


def _usual_layout(buf: bytes) -> tuple[list[bytes], list[int], list[int]] | None:
    """Each TimeSeries' label bytes, the offset of its one Sample's value (-1 for a
    value of 0, which the sender leaves out) and its end, when every TimeSeries is laid
    out as :meth:`Decoder._usual` wants; else None."""
    raws: list[bytes] = []
    values_at: list[int] = []
    ends: list[int] = []
    pos, end = 0, len(buf)
    try:
        while pos < end and buf[pos] == 0x0A:
            size = buf[pos + 1]
            if size < 0x80:
                pos += 2
            elif buf[pos + 2] < 0x80:
                size, pos = (size & 0x7F) | buf[pos + 2] << 7, pos + 3
            else:
                break
            stop = pos + size
            if stop > end:
                break
            if buf[stop - 18:stop - 15] == b"\x12\x10\x09" and stop - 18 >= pos:
                raws.append(buf[pos:stop - 18])
                values_at.append(stop - 15)
            elif buf[stop - 9:stop - 6] == b"\x12\x07\x10" and stop - 9 >= pos:
                raws.append(buf[pos:stop - 9])
                values_at.append(-1)
            else:
                break
            ends.append(stop)
            pos = stop
    except IndexError:
        return None
    return (raws, values_at, ends) if pos == end else None


def _only_labels(raw: bytes) -> bool:
    """Whether ``raw`` is a run of Label fields and nothing else."""
    pos, end = 0, len(raw)
    try:
        while pos < end:
            if raw[pos] != 0x0A:
                return False
            size, pos = _varint(raw, pos + 1)
            pos += size
    except (IndexError, _Malformed):
        return False
    return pos == end


def _labels(raw: bytes) -> list[tuple[str, str]]:
    """The (name, value) pairs of a run of Label messages."""
    if raw.isascii():
        usual = _ascii_labels(raw)
        if usual is not None:
            return usual
    out = []
    pos, end = 0, len(raw)
    try:
        while pos < end:
            _, pos = _varint(raw, pos)  # the Label field's key (0x0A)
            size, pos = _varint(raw, pos)
            stop = pos + size
            name = value = ""
            while pos < stop:
                key, pos = _varint(raw, pos)
                if key in (0x0A, 0x12):
                    length, pos = _varint(raw, pos)
                    text = raw[pos:pos + length].decode("utf-8")
                    pos += length
                    if key == 0x0A:
                        name = text
                    else:
                        value = text
                else:
                    pos = _skip(raw, pos, key, stop)
            if pos != stop:
                raise _Malformed("a Label's fields overrun it")
            out.append((name, value))
    except UnicodeDecodeError as exc:
        raise _Malformed(f"a label is not UTF-8: {exc}") from None
    return out


def _ascii_labels(raw: bytes) -> list[tuple[str, str]] | None:
    """The labels of an ASCII run (every length one byte), each its name then its value,
    read without a varint decoder (new series are read so); else None."""
    text = raw.decode("ascii")
    out = []
    pos, end = 0, len(raw)
    try:
        while pos < end:
            stop = pos + 2 + raw[pos + 1]
            name_end = pos + 4 + raw[pos + 3]
            if raw[pos] != 0x0A or raw[pos + 2] != 0x0A or raw[name_end] != 0x12 \
                    or name_end + 2 + raw[name_end + 1] != stop:
                return None
            out.append((text[pos + 4:name_end], text[name_end + 2:stop]))
            pos = stop
    except IndexError:
        return None
    return out if pos == end else None


def check_order(labels: list[tuple[str, str]], position: int) -> None:
    """InvalidData unless label names are strictly ascending (sorted, no duplicate)."""
    for (before, _), (after, _) in itertools.pairwise(labels):
        if not before < after:
            what = "duplicated" if before == after else "out of order"
            raise InvalidData(f"timeseries[{position}]: label {after!r} {what} after "
                              f"{before!r}", field="labels", value=after)
