"""A write batch in columnar form, validated the same way by every backend.

:func:`columnize` checks measurements against a :class:`Catalog` and turns them into
numpy columns per kind (series id, timestamp in ms, value), raising InvalidData before
anything is stored, so a write is all or nothing. Python touches each measurement only
to read its fields; everything after that is vectorised.

:func:`encode_batch` and :func:`decode_batch` give the ingest-log form of a batch:
``2:u8 | zstd(body)`` or, uncompressed, ``3:u8 | body``, where body is ``n_float:u32 |
n_hist:u32 | n_obj:u32 | ids:int32[] | ts:int64[] | values:f64[] | hist_ids:int32[] |
hist_ts:int64[] | obj_ids:int32[] | obj_ts:int64[] | msgpack([histograms, objects])``.
Version 1 rows (zstd, no objects) are still read.
"""

from __future__ import annotations

import itertools
import re
import struct
import sys
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, NamedTuple, TypeGuard

import msgspec
import numpy as np
import numpy.typing as npt
import zstandard

from watchkeeper.archive.abc import KINDS, Columns, Kind
from watchkeeper.archive.backends._catalog import (
    KIND_CODES,
    Catalog,
    NewSeries,
    NewSeriesBlock,
)
from watchkeeper.archive.backends._head import latest
from watchkeeper.archive.backends._newseries import all_plain
from watchkeeper.archive.backends._points import empty_values, object_array
from watchkeeper.archive.codec import MAX_SECONDS, to_millis
from watchkeeper.errors import ArchiveError, InvalidData
from watchkeeper.model import Measurement, SeriesKey

Ids = npt.NDArray[np.int32]
Int64Array = npt.NDArray[np.int64]
Float64Array = npt.NDArray[np.float64]
ObjectArray = npt.NDArray[np.object_]
Values = npt.NDArray[Any]

LOG_VERSION: Final = 2  # zstd-compressed body
LOG_VERSION_RAW: Final = 3  # the same body, uncompressed
_COUNTS_V1 = struct.Struct("<II")
_COUNTS = struct.Struct("<III")
_MAX_SERIES: Final = 2**31 - 1
_NOT_A_KEY: Final = "must be a SeriesKey (see SeriesKey.make)"
_FLOAT, _HISTOGRAM, _OBJECT = (KIND_CODES[kind] for kind in KINDS)


class Column(NamedTuple):
    """Points of one kind: series id, timestamp (int64 ms) and value, in write order."""

    sids: Ids
    ts: Int64Array
    values: Values

    @classmethod
    def empty(cls, kind: Kind) -> Column:
        dtype = np.float64 if kind == "float" else object
        return cls(np.empty(0, np.int32), np.empty(0, np.int64), np.empty(0, dtype=dtype))


@dataclass(frozen=True, eq=False)
class Batch:
    """The points of a write as one :class:`Column` per kind (in ``KINDS`` order)."""

    new_series: Sequence[NewSeries]  # a NewSeriesBlock when a columnar write creates many
    columns: tuple[Column, Column, Column]
    series_table: Int64Array | None = None  # of a columnar batch: the ids of its series

    def __len__(self) -> int:
        return sum(len(column.sids) for column in self.columns)

    def column(self, kind: Kind) -> Column:
        return self.columns[KIND_CODES[kind]]

    @property
    def all_sids(self) -> Ids:
        return np.concatenate([column.sids for column in self.columns])

    @property
    def all_ts(self) -> Int64Array:
        return np.concatenate([column.ts for column in self.columns])


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
    if None not in values:  # the common case: numbers only
        _check_kinds(measurements, sids, np.zeros(len(sids), np.int8), catalog, new_series)
        column = Column(sids.astype(np.int32), ts, _floats(values))
        return Batch(new_series, (column, Column.empty("histogram"), Column.empty("object")))
    codes = np.array([_code(m) for m in measurements], dtype=np.int8)
    _check_kinds(measurements, sids, codes, catalog, new_series)
    rows = [np.flatnonzero(codes == code) for code in (_FLOAT, _HISTOGRAM, _OBJECT)]
    floats, hists, objs = (r.tolist() for r in rows)
    return Batch(new_series, (
        Column(sids[rows[0]].astype(np.int32), ts[rows[0]], _floats([values[i] for i in floats])),
        Column(sids[rows[1]].astype(np.int32), ts[rows[1]],
               _histograms([measurements[i] for i in hists])),
        Column(sids[rows[2]].astype(np.int32), ts[rows[2]],
               _objects([measurements[i] for i in objs])),
    ))


def columnize_columns(
    columns: Columns, catalog: Catalog, tables: Mapping[bytes, Int64Array] | None = None
) -> Batch:
    """Validate a columnar batch and give its columns, as :func:`columnize` does.

    Series are looked up by their text, so only series new to the catalog are parsed.
    ``tables`` maps the ``series_token`` of batches stored before to their series ids
    (see :attr:`Batch.series_table`), for lists of number series only: a batch with a
    known token skips the lookups and kind checks.
    """
    index, seconds, values = columns.checked()
    other = columnize(columns.others, catalog)
    known = tables.get(columns.series_token) if tables and columns.series_token else None
    if known is not None and not other.new_series:
        return _with_numbers(other, (), known, index=index, ms=_timestamps_from(seconds),
                             values=values)
    texts = list(columns.series)  # decoded once
    table = np.fromiter(map(catalog.ids_by_text.get, texts, itertools.repeat(-1)),
                        dtype=np.int64, count=len(texts))
    missing = np.flatnonzero(table < 0)
    block = (_new_block(missing, texts, table, columns, catalog)
             if len(missing) and not other.new_series else None)
    new = list(other.new_series)
    by_text = {s.text: s for s in new}
    for i in missing.tolist() if block is None else ():
        text = texts[i]
        series = by_text.get(text) or _new_float_series(i, text, columns, catalog,
                                                        new=new, by_text=by_text)
        by_text[text] = by_text[series.text] = series
        table[i] = series.sid
    created: Sequence[NewSeries] = block if block is not None else tuple(new)
    if catalog.next_id + len(created) > _MAX_SERIES:
        raise InvalidData("the archive holds as many series as it can", field="series")
    used = np.zeros(len(table), dtype=np.bool_)
    used[index] = True
    _check_number_series(columns, used, table, catalog, created)
    return _with_numbers(other, created, table, index=index,
                         ms=_timestamps_from(seconds), values=values)


def _new_block(missing: npt.NDArray[np.intp], texts: list[str], table: Int64Array,
               columns: Columns, catalog: Catalog) -> NewSeriesBlock | None:
    """The series of the texts at ``missing`` (unknown to the catalog) as one block of
    new ids, filled into ``table``; None when one of them is not plainly canonical
    (see _newseries): those take the one-by-one way, which parses them."""
    named = [texts[i] for i in missing.tolist()]
    unique = list(dict.fromkeys(named))  # a text named twice is one series
    if not all_plain(unique):
        return None
    first = catalog.next_id
    units = [columns.units.get(text, "") for text in unique] if columns.units else None
    if len(unique) == len(named):
        table[missing] = np.arange(first, first + len(unique))
    else:
        ids = dict(zip(unique, range(first, first + len(unique)), strict=True))
        table[missing] = np.fromiter(map(ids.__getitem__, named), dtype=np.int64,
                                     count=len(named))
    return NewSeriesBlock(first, unique, units, _key_of_plain)


def _key_of_plain(text: str) -> SeriesKey:
    key = canonical_key(text)
    return key if key is not None else SeriesKey.parse(text)


def _with_numbers(other: Batch, new: Sequence[NewSeries], table: Int64Array, *,
                  index: Ids, ms: Int64Array, values: Float64Array) -> Batch:
    """``other`` with the number columns added after its own numbers."""
    floats = other.columns[_FLOAT]
    merged = Column(np.concatenate((floats.sids, table[index].astype(np.int32))),
                    np.concatenate((floats.ts, ms)), np.concatenate((floats.values, values)))
    return Batch(new, (merged, other.columns[_HISTOGRAM], other.columns[_OBJECT]), table)


def _new_float_series(
    i: int, text: str, columns: Columns, catalog: Catalog, *, new: list[NewSeries],
    by_text: dict[str, NewSeries],
) -> NewSeries:
    """The series of a text the catalog does not know: parsed, found or created."""
    key = canonical_key(text)  # the common case, ~5x cheaper than parsing
    canonical = text
    if key is None:
        try:
            key = SeriesKey.parse(text)
        except InvalidData as exc:
            raise InvalidData(str(exc), field=f"series[{i}]", value=text) from None
        canonical = str(key)  # e.g. labels in another order name the same series
        sid = catalog.ids_by_text.get(canonical)
        if sid is not None:
            return NewSeries(sid, key, canonical, "", catalog.kind(sid))
        if canonical in by_text:
            return by_text[canonical]
    series = NewSeries(catalog.next_id + len(new), key, canonical, columns.units.get(text, ""),
                       "float")
    new.append(series)
    return series


_NAME_PATTERN: Final = r"[A-Za-z0-9_.:@-]+"  # as SeriesKey.make checks
_LABEL_PATTERN: Final = r'[A-Za-z_][A-Za-z0-9_]*="[^"\\\n]*"'  # a value needing no escape
_CANONICAL: Final = re.compile(
    rf"({_NAME_PATTERN})/({_NAME_PATTERN})/({_NAME_PATTERN})"
    rf"(?:\{{((?:{_LABEL_PATTERN},)*{_LABEL_PATTERN})\}})?")
_LABEL: Final = re.compile(r'([A-Za-z_][A-Za-z0-9_]*)="([^"\\\n]*)"')


def canonical_key(text: str) -> SeriesKey | None:
    """The key of a text already in canonical form with plain label values, or None.

    One regular expression instead of ``SeriesKey.parse`` (which checks each part,
    unescapes, sorts and builds the text again to compare): a write creating a million
    series spends most of its time here. None means "parse it": the text may still be
    valid, with escapes in label values or labels out of order.
    """
    match = _CANONICAL.fullmatch(text)
    if match is None:
        return None
    subject, plugin, metric, body = match.groups()
    labels: tuple[tuple[str, str], ...] = tuple(_LABEL.findall(body)) if body else ()
    for (name, _), (after, _) in itertools.pairwise(labels):
        if name >= after:  # out of order, or twice
            return None
    return SeriesKey(subject=subject, plugin=plugin, metric=metric, labels=labels)


def _check_number_series(
    columns: Columns, used: npt.NDArray[np.bool_], table: Int64Array, catalog: Catalog,
    new: Sequence[NewSeries],
) -> None:
    """Refuse numbers for series (``table[i]`` where ``used[i]``) that hold other kinds."""
    kinds = np.zeros(catalog.next_id + len(new), dtype=np.int8)
    kinds[: len(catalog.kinds)] = catalog.kinds[: len(kinds)]
    if isinstance(new, NewSeriesBlock):  # float series, without a NewSeries each
        kinds[new.first:new.stop] = _FLOAT
    else:
        for series in new:
            kinds[series.sid] = KIND_CODES[series.kind]
    wrong = np.flatnonzero(used & (kinds[table] != _FLOAT))
    if len(wrong):
        text = columns.series[int(wrong[0])]
        kind = KINDS[int(kinds[table[wrong[0]]])]
        raise InvalidData(f"series {text} holds {kind} points, got a number",
                          field="series", value=text)


def _timestamps_from(seconds: Float64Array) -> Int64Array:
    if not (np.abs(seconds) <= MAX_SECONDS).all():  # also catches NaN
        bad = seconds[~(np.abs(seconds) <= MAX_SECONDS)][0]
        message = f"must be finite seconds since the epoch within ±{MAX_SECONDS:.0f}"
        raise InvalidData(message, field="ts", value=float(bad))
    return to_millis(seconds)


def _code(m: Measurement) -> int:
    """The kind a measurement brings: a value (even a malformed one), a histogram, an object."""
    if m.value is not None:
        return _FLOAT
    return _HISTOGRAM if m.histogram is not None else _OBJECT


def encode_batch(batch: Batch, *, compress: bool = True) -> bytes:
    """The ingest-log row of a batch (new series are stored in their own table).

    ``compress=False`` skips zstd: for a log on local disk, writing the ~2.2 times
    larger row costs less than compressing it (see docs/decisions.md, D22)."""
    floats, hists, objs = batch.columns
    parts = (
        _COUNTS.pack(len(floats.sids), len(hists.sids), len(objs.sids)),
        floats.sids.astype("<i4").tobytes(),
        floats.ts.astype("<i8").tobytes(),
        floats.values.astype("<f8").tobytes(),
        hists.sids.astype("<i4").tobytes(),
        hists.ts.astype("<i8").tobytes(),
        objs.sids.astype("<i4").tobytes(),
        objs.ts.astype("<i8").tobytes(),
        msgspec.msgpack.encode((hists.values.tolist(), objs.values.tolist())),
    )
    if not compress:
        return b"".join((bytes([LOG_VERSION_RAW]), *parts))
    return bytes([LOG_VERSION]) + _zstd.compressor.compress(b"".join(parts))


def decode_batch(blob: bytes) -> Batch:
    """Read an ingest-log row back (this version's, or version 1)."""
    version = blob[0] if blob else None
    if version not in (1, LOG_VERSION, LOG_VERSION_RAW):
        raise ArchiveError(f"ingest log row has unknown format {blob[:1]!r}")
    try:
        if version == LOG_VERSION_RAW:
            body = memoryview(blob)[1:]
        else:
            body = memoryview(_zstd.decompressor.decompress(blob[1:]))
        if version == 1:
            (n_f, n_h), n_o = _COUNTS_V1.unpack_from(body), 0
            reader = _Reader(body, _COUNTS_V1.size)
        else:
            n_f, n_h, n_o = _COUNTS.unpack_from(body)
            reader = _Reader(body, _COUNTS.size)
        f_sids, f_ts, f_values = reader.take("<i4", n_f), reader.take("<i8", n_f), reader.take(
            "<f8", n_f)
        h_sids, h_ts = reader.take("<i4", n_h), reader.take("<i8", n_h)
        o_sids, o_ts = reader.take("<i4", n_o), reader.take("<i8", n_o)
        rest = body[reader.pos :]
        objs: list[Any] = []
        if version == 1:
            hists = msgspec.msgpack.decode(rest, type=list[dict[str, int]])
        else:
            hists, objs = msgspec.msgpack.decode(rest, type=tuple[list[dict[str, int]], list[Any]])
    except (zstandard.ZstdError, struct.error, ValueError, msgspec.DecodeError) as exc:
        raise ArchiveError(f"corrupt ingest log row: {exc}") from exc
    if (len(hists), len(objs)) != (n_h, n_o):
        raise ArchiveError(f"corrupt ingest log row: {n_h} histogram and {n_o} object points,"
                           f" {len(hists)} and {len(objs)} values")
    return Batch((), (Column(f_sids, f_ts, f_values),
                      Column(h_sids, h_ts, object_array(hists)),
                      Column(o_sids, o_ts, object_array(objs))))


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
            kind = KINDS[_code(m)]
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
    codes: npt.NDArray[np.int8],
    catalog: Catalog,
    new_series: tuple[NewSeries, ...],
) -> None:
    """Refuse a batch that sends a point of one kind to a series of another."""
    size = max(catalog.next_id, len(catalog.kinds)) + len(new_series)
    expected = np.zeros(size, dtype=np.int8)
    expected[: len(catalog.kinds)] = catalog.kinds
    for series in new_series:
        expected[series.sid] = KIND_CODES[series.kind]
    wrong = np.flatnonzero(expected[sids] != codes)
    if len(wrong):
        m = measurements[int(wrong[0])]
        kind = KINDS[expected[int(sids[wrong[0]])]]
        got = ("a number", "a histogram", "an object")[codes[wrong[0]]]
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
        if not _is_histogram(histogram):
            raise InvalidData("must map bucket names to counts (integers from 0 to 2**63-1)",
                              field="histogram", value=histogram)
        copies.append(dict(histogram))  # ours: the caller may change theirs later
    return object_array(copies)


_STR: Final = frozenset({str})
_INT: Final = frozenset({int})  # exactly int: a bool is no count


def _is_histogram(histogram: object) -> TypeGuard[dict[str, int]]:
    # Type sets, min and max run in C: a bulk write carries thousands of buckets.
    if not isinstance(histogram, dict):
        return False
    if not histogram:
        return True
    counts = histogram.values()
    return (_STR.issuperset(map(type, histogram)) and _INT.issuperset(map(type, counts))
            and min(counts) >= 0 and max(counts) < 2**63)


def _objects(measurements: list[Measurement]) -> ObjectArray:
    """The objects as JSON gives them back: our own deep copies, JSON types only.

    Integers must fit in 64 bits (msgpack, the stored form, holds no more).
    """
    copies = []
    for m in measurements:
        try:
            copy = msgspec.json.decode(msgspec.json.encode(m.obj))
            msgspec.msgpack.encode(copy)
            copies.append(copy)
        except (TypeError, ValueError, OverflowError, msgspec.MsgspecError) as exc:
            raise InvalidData(f"must be a JSON value ({exc})", field="obj",
                              value=repr(m.obj)[:200]) from None
    return object_array(copies)


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


def logged_points(kind: Kind, sid: int, batches: list[Batch]) -> tuple[Int64Array, Values]:
    """One series' points in log batches (in seq order): sorted, the latest per timestamp."""
    ts_parts, value_parts = [], []
    for batch in batches:
        sids, ts, values = batch.column(kind)
        mine = sids == sid
        if mine.any():
            ts_parts.append(ts[mine])
            value_parts.append(values[mine])
    if not ts_parts:
        return np.empty(0, dtype=np.int64), empty_values(kind)
    return latest(np.concatenate(ts_parts), np.concatenate(value_parts))
