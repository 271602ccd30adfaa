"""A write batch in columnar form, validated the same way by every backend.

:func:`columnize` checks measurements against a :class:`Catalog` and turns them into
numpy columns (series id, timestamp in ms, value), raising InvalidData before anything
is stored, so a write is all or nothing. Python touches each measurement only to read
its fields; everything after that is vectorised.

:func:`encode_batch` and :func:`decode_batch` give the ingest-log form of a batch:
``version:u8 | zstd(n_float:u32 | n_hist:u32 | ids:int32[] | ts:int64[] | values:f64[]
| hist_ids:int32[] | hist_ts:int64[] | msgpack(histograms))``.
"""

from __future__ import annotations

import struct
import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

import msgspec
import numpy as np
import numpy.typing as npt
import zstandard

from watchkeeper.archive.abc import Kind
from watchkeeper.archive.backends._catalog import Catalog, NewSeries
from watchkeeper.archive.backends._points import object_array
from watchkeeper.archive.codec import MAX_SECONDS, to_millis
from watchkeeper.errors import ArchiveError, InvalidData
from watchkeeper.model import Measurement, SeriesKey

Ids = npt.NDArray[np.int32]
Int64Array = npt.NDArray[np.int64]
Float64Array = npt.NDArray[np.float64]
ObjectArray = npt.NDArray[np.object_]

LOG_VERSION: Final = 1
_COUNTS = struct.Struct("<II")
_MAX_SERIES: Final = 2**31 - 1
_NOT_A_KEY: Final = "must be a SeriesKey (see SeriesKey.make)"


@dataclass(frozen=True, eq=False)
class Batch:
    """Float points and histogram points of a write, as parallel columns in write order."""

    new_series: tuple[NewSeries, ...]
    f_sids: Ids
    f_ts: Int64Array
    f_values: Float64Array
    h_sids: Ids
    h_ts: Int64Array
    h_values: ObjectArray

    def __len__(self) -> int:
        return len(self.f_sids) + len(self.h_sids)


def columnize(measurements: Sequence[Measurement], catalog: Catalog) -> Batch:
    """Validate ``measurements`` and give their columns; new series get the next free ids."""
    get = catalog.ids.get
    try:
        sids = np.array([get(m.key, -1) for m in measurements], dtype=np.int64)
    except TypeError:  # unhashable, e.g. labels given as lists
        bad = next(m.key for m in measurements if not _hashable(m.key))
        raise InvalidData(_NOT_A_KEY, field="key", value=bad) from None
    unknown = np.flatnonzero(sids < 0)
    new_series = _resolve_new(measurements, unknown, sids, catalog) if len(unknown) else ()
    ts = _timestamps(measurements)
    values = [m.value for m in measurements]
    if None not in values:  # the common case: no histograms at all
        _check_kinds(measurements, sids, np.zeros(len(sids), np.bool_), catalog, new_series)
        return Batch(new_series, sids.astype(np.int32), ts, _floats(values),
                     *_no_histograms())
    is_hist = np.array([v is None for v in values], dtype=np.bool_)
    _check_kinds(measurements, sids, is_hist, catalog, new_series)
    floats = np.flatnonzero(~is_hist)
    hists = np.flatnonzero(is_hist)
    return Batch(
        new_series,
        sids[floats].astype(np.int32),
        ts[floats],
        _floats([values[i] for i in floats.tolist()]),
        sids[hists].astype(np.int32),
        ts[hists],
        _histograms([measurements[i] for i in hists.tolist()]),
    )


def encode_batch(batch: Batch) -> bytes:
    """The ingest-log row of a batch (new series are stored in their own table)."""
    parts = (
        _COUNTS.pack(len(batch.f_sids), len(batch.h_sids)),
        batch.f_sids.astype("<i4").tobytes(),
        batch.f_ts.astype("<i8").tobytes(),
        batch.f_values.astype("<f8").tobytes(),
        batch.h_sids.astype("<i4").tobytes(),
        batch.h_ts.astype("<i8").tobytes(),
        msgspec.msgpack.encode(batch.h_values.tolist()),
    )
    return bytes([LOG_VERSION]) + _zstd.compressor.compress(b"".join(parts))


def decode_batch(blob: bytes) -> Batch:
    """Read an ingest-log row back."""
    if not blob or blob[0] != LOG_VERSION:
        raise ArchiveError(f"ingest log row has unknown format {blob[:1]!r}")
    try:
        body = memoryview(_zstd.decompressor.decompress(blob[1:]))
        n_f, n_h = _COUNTS.unpack_from(body)
        reader = _Reader(body, _COUNTS.size)
        f_sids = reader.take("<i4", n_f)
        f_ts = reader.take("<i8", n_f)
        f_values = reader.take("<f8", n_f)
        h_sids = reader.take("<i4", n_h)
        h_ts = reader.take("<i8", n_h)
        hists = msgspec.msgpack.decode(body[reader.pos :], type=list[dict[str, int]])
    except (zstandard.ZstdError, struct.error, ValueError, msgspec.DecodeError) as exc:
        raise ArchiveError(f"corrupt ingest log row: {exc}") from exc
    if len(hists) != n_h:
        raise ArchiveError(f"corrupt ingest log row: {n_h} histogram points, {len(hists)} values")
    return Batch((), f_sids, f_ts, f_values, h_sids, h_ts, object_array(hists))


# -- validation ---------------------------------------------------------------------------


def _resolve_new(
    measurements: Sequence[Measurement],
    unknown: npt.NDArray[np.intp],
    sids: Int64Array,
    catalog: Catalog,
) -> tuple[NewSeries, ...]:
    """Give ids to keys the catalog does not know (fills ``sids`` in place)."""
    created: dict[SeriesKey, NewSeries] = {}
    for i in unknown.tolist():
        m = measurements[i]
        series = created.get(m.key)
        if series is None:
            kind: Kind = "float" if m.histogram is None else "histogram"
            series = NewSeries(catalog.next_id + len(created), m.key, _text(m.key), m.unit, kind)
            created[m.key] = series
        sids[i] = series.sid
    if catalog.next_id + len(created) > _MAX_SERIES:
        raise InvalidData("the archive holds as many series as it can", field="key")
    return tuple(created.values())


def _text(key: object) -> str:
    """The text form of a new series' key, which must be the canonical one.

    Keys built by SeriesKey.make or parse are; one built directly with unsorted labels
    or a '/' in a name is not, and its text could collide with another series'.
    """
    if not isinstance(key, SeriesKey):
        raise InvalidData(_NOT_A_KEY, field="key", value=key)
    text = str(key)
    try:
        canonical = SeriesKey.parse(text) == key
    except InvalidData:
        canonical = False
    if not canonical:
        raise InvalidData("is not canonical: build it with SeriesKey.make", field="key",
                          value=text)
    return text


def _hashable(key: object) -> bool:
    try:
        hash(key)
    except TypeError:
        return False
    return True


def _check_kinds(
    measurements: Sequence[Measurement],
    sids: Int64Array,
    is_hist: npt.NDArray[np.bool_],
    catalog: Catalog,
    new_series: tuple[NewSeries, ...],
) -> None:
    """Refuse a batch that sends numbers to a histogram series or the reverse."""
    size = max(catalog.next_id, len(catalog.histogram)) + len(new_series)
    expected = np.zeros(size, dtype=np.bool_)
    expected[: len(catalog.histogram)] = catalog.histogram
    for series in new_series:
        expected[series.sid] = series.kind == "histogram"
    wrong = np.flatnonzero(expected[sids] != is_hist)
    if len(wrong):
        m = measurements[int(wrong[0])]
        sid = int(sids[wrong[0]])
        kind = "histogram" if expected[sid] else "float"
        got = "a histogram" if m.histogram is not None else "a number"
        raise InvalidData(f"series {m.key} holds {kind} points, got {got}",
                          field="series", value=str(m.key))


def _timestamps(measurements: Sequence[Measurement]) -> Int64Array:
    raw = [m.ts for m in measurements]
    seconds = _numbers(raw)
    if seconds is None or not (np.abs(seconds) <= MAX_SECONDS).all():  # also catches NaN
        bad = next(ts for ts in raw if not _is_number(ts) or not abs(ts) <= MAX_SECONDS)
        message = f"must be finite seconds since the epoch within ±{MAX_SECONDS:.0f}"
        raise InvalidData(message, field="ts", value=bad)
    return to_millis(seconds)


def _floats(values: list[Any]) -> Float64Array:
    floats = _numbers(values)
    if floats is None:
        bad = next(v for v in values if not _is_number(v))
        raise InvalidData("must be a number", field="value", value=bad)
    return floats


def _numbers(items: list[Any]) -> Float64Array | None:
    """``items`` as float64, or None if one is not a number (numpy would parse strings)."""
    arr = np.array(items)
    if arr.ndim == 1 and arr.dtype.kind in "biuf":
        return arr.astype(np.float64)
    if all(_is_number(item) for item in items):
        return np.array([float(item) for item in items], dtype=np.float64)  # beyond int64
    return None


def _is_number(item: object) -> bool:
    return isinstance(item, float) or (isinstance(item, int) and abs(item) <= sys.float_info.max)


def _histograms(measurements: list[Measurement]) -> ObjectArray:
    copies = []
    for m in measurements:
        histogram = m.histogram
        if not isinstance(histogram, dict) or not all(
            isinstance(bucket, str) and _is_count(count) for bucket, count in histogram.items()
        ):
            raise InvalidData("must map bucket names to counts (integers from 0 to 2**63-1)",
                              field="histogram", value=histogram)
        copies.append(dict(histogram))  # ours: the caller may change theirs later
    return object_array(copies)


def _is_count(count: object) -> bool:
    return isinstance(count, int) and not isinstance(count, bool) and 0 <= count < 2**63


def _no_histograms() -> tuple[Ids, Int64Array, ObjectArray]:
    return np.empty(0, np.int32), np.empty(0, np.int64), np.empty(0, dtype=object)


class _Reader:
    """Consecutive little-endian arrays out of one buffer."""

    def __init__(self, body: memoryview, pos: int) -> None:
        self.body = body
        self.pos = pos

    def take(self, dtype: str, count: int) -> Any:
        arr = np.frombuffer(self.body, dtype=dtype, count=count, offset=self.pos)
        self.pos += arr.nbytes
        return arr.astype(dtype[1:])  # native order, and writable


class _Zstd(threading.local):
    """Per-thread contexts; level 1 because log rows are short-lived and on the hot path."""

    def __init__(self) -> None:
        self.compressor = zstandard.ZstdCompressor(level=1)
        self.decompressor = zstandard.ZstdDecompressor()


_zstd = _Zstd()
