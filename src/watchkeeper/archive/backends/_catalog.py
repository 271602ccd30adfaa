"""The series a writing backend knows: ids, kinds, units and time ranges, held in memory.

Ids are small integers handed out in order, so per-series state elsewhere (head
counts, chunk tails) lives in numpy arrays indexed by id instead of dicts.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Final, NamedTuple, TypeVar, overload

import numpy as np
import numpy.typing as npt

from watchkeeper.archive.abc import KINDS, Kind, SeriesMeta
from watchkeeper.model import SeriesKey

NO_FIRST: Final = np.iinfo(np.int64).max  # first_ms of a series without points
NO_LAST: Final = np.iinfo(np.int64).min
KIND_CODES: Final[dict[Kind, int]] = {kind: code for code, kind in enumerate(KINDS)}
"""Each kind's small integer, as per-series arrays hold it (``KINDS[code]`` goes back)."""

_T = TypeVar("_T", bound=np.generic)


class NewSeries(NamedTuple):
    """A series a write creates."""

    sid: int
    key: SeriesKey
    text: str
    unit: str
    kind: Kind


class NewSeriesBlock(Sequence[NewSeries]):
    """Float series a columnar write creates, held as columns: ids ``first`` on, one per
    text, in order. A :class:`NewSeries` (and its key) is built only when one is read by
    index or iteration; the embedded archive reads the columns (D52)."""

    def __init__(self, first: int, texts: list[str], units: list[str] | None,
                 key_of: Callable[[str], SeriesKey]) -> None:
        self.first = first
        self.texts = texts  # canonical text forms, each once
        self.units = units  # by text, or None when none has a unit
        self._key_of = key_of

    @property
    def stop(self) -> int:
        """One past the last id."""
        return self.first + len(self.texts)

    def __len__(self) -> int:
        return len(self.texts)

    @overload
    def __getitem__(self, index: int) -> NewSeries: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[NewSeries]: ...
    def __getitem__(self, index: int | slice) -> NewSeries | Sequence[NewSeries]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        i = range(len(self.texts))[index]  # IndexError as a list gives it
        text = self.texts[i]
        return NewSeries(self.first + i, self._key_of(text), text,
                         self.units[i] if self.units is not None else "", "float")


def new_ids(series: Sequence[NewSeries]) -> npt.NDArray[np.int64]:
    """The ids of new series."""
    if isinstance(series, NewSeriesBlock):
        return np.arange(series.first, series.stop, dtype=np.int64)
    return np.fromiter((s.sid for s in series), dtype=np.int64, count=len(series))


class KeyIds:
    """The catalog's ids looked up by :class:`SeriesKey` (through the key's text form)."""

    def __init__(self, by_text: dict[str, int]) -> None:
        self._by_text = by_text

    def get(self, key: object, default: int | None = None) -> int | None:
        if not isinstance(key, SeriesKey):
            hash(key)  # an unhashable key raises TypeError, as a dict lookup would
            return default
        return self._by_text.get(str(key), default)

    def __getitem__(self, key: SeriesKey) -> int:
        sid = self.get(key)
        if sid is None:
            raise KeyError(key)
        return sid

    def __contains__(self, key: object) -> bool:
        return self.get(key) is not None


class Catalog:
    """Series by text and by id, with each one's kind, unit and first/last timestamp (ms).

    A series costs its text form, one dict entry and a few array slots: keys are not
    kept (:meth:`key` parses the text again, and ``SeriesKey.parse`` remembers recent
    answers), units only when not empty. A million series: ~200 MB as SeriesKey objects
    in four dicts, ~190 bytes a series this way (docs/performance.md).
    """

    def __init__(self) -> None:
        self.ids_by_text: dict[str, int] = {}
        self.ids = KeyIds(self.ids_by_text)
        self._texts: list[str | None] = []  # by series id
        self._units: dict[int, str] = {}  # series with a unit only
        self.kinds = np.zeros(0, dtype=np.int8)  # KIND_CODES by series id
        self.first_ms = np.zeros(0, dtype=np.int64)
        self.last_ms = np.zeros(0, dtype=np.int64)
        self.next_id = 0
        self.forgotten = 0  # how many times forget() ran: ids may have been reused since
        self._count = 0

    def __len__(self) -> int:
        return self._count

    def add(
        self, series: NewSeries, first_ms: int | None = None, last_ms: int | None = None
    ) -> None:
        """Register a series (ids must be unique; they need not be contiguous)."""
        self.add_text(series.sid, series.text, series.unit, series.kind, first_ms, last_ms)

    def add_text(  # noqa: PLR0917  (the columns of a series row, as they are read)
        self, sid: int, text: str, unit: str, kind: Kind, first_ms: int | None = None,
        last_ms: int | None = None,
    ) -> None:
        """:meth:`add` from a series' canonical text form (no key is built)."""
        self._grow(sid + 1)
        if len(self._texts) <= sid:
            self._texts.extend([None] * (sid + 1 - len(self._texts)))
        self.ids_by_text[text] = sid
        if unit:
            self._units[sid] = unit
        self.kinds[sid] = KIND_CODES[kind]
        self.first_ms[sid] = NO_FIRST if first_ms is None else first_ms
        self.last_ms[sid] = NO_LAST if last_ms is None else last_ms
        self.next_id = max(self.next_id, sid + 1)
        if self._texts[sid] is None:
            self._count += 1
        self._texts[sid] = text

    def add_new(self, series: Sequence[NewSeries]) -> None:
        """:meth:`add` of the series a write creates (ids above every known one), at once:
        a write creating 100,000 series spent ~1 s adding them one by one."""
        if not series:
            return
        if isinstance(series, NewSeriesBlock):
            self._add_block(series)
            return
        sids = new_ids(series)
        top = int(sids.max()) + 1
        self._grow(top)
        if len(self._texts) < top:
            self._texts.extend([None] * (top - len(self._texts)))
        texts = [s.text for s in series]
        self.ids_by_text.update(zip(texts, sids.tolist(), strict=True))
        for s in series:
            self._texts[s.sid] = s.text
            if s.unit:
                self._units[s.sid] = s.unit
        self.kinds[sids] = [KIND_CODES[s.kind] for s in series]
        self.first_ms[sids] = NO_FIRST
        self.last_ms[sids] = NO_LAST
        self.next_id = max(self.next_id, top)
        self._count += len(series)

    def _add_block(self, block: NewSeriesBlock) -> None:
        first, stop = block.first, block.stop
        self._grow(stop)
        if len(self._texts) < stop:
            self._texts.extend([None] * (stop - len(self._texts)))
        self._texts[first:stop] = block.texts
        self.ids_by_text.update(zip(block.texts, range(first, stop), strict=True))
        if block.units is not None:
            self._units.update((sid, unit) for sid, unit in enumerate(block.units, first) if unit)
        self.kinds[first:stop] = KIND_CODES["float"]
        self.first_ms[first:stop] = NO_FIRST
        self.last_ms[first:stop] = NO_LAST
        self.next_id = max(self.next_id, stop)
        self._count += len(block)

    def forget(self, added: Sequence[NewSeries]) -> None:
        """Undo :meth:`add` of the series a write created, in order, when it failed."""
        if isinstance(added, NewSeriesBlock):
            self._forget_block(added)
            return
        for series in added:
            del self.ids_by_text[series.text]
            self._texts[series.sid] = None
            self._units.pop(series.sid, None)
            self.kinds[series.sid] = 0
            self.first_ms[series.sid] = NO_FIRST
            self.last_ms[series.sid] = NO_LAST
            self._count -= 1
        if added:
            self.next_id = min(self.next_id, added[0].sid)
            self.forgotten += 1

    def _forget_block(self, block: NewSeriesBlock) -> None:
        first, stop = block.first, block.stop
        if not len(block):
            return
        for text in block.texts:
            del self.ids_by_text[text]
        self._texts[first:stop] = [None] * len(block)
        for sid in range(first, stop) if block.units is not None else ():
            self._units.pop(sid, None)
        self.kinds[first:stop] = 0
        self.first_ms[first:stop] = NO_FIRST
        self.last_ms[first:stop] = NO_LAST
        self._count -= len(block)
        self.next_id = min(self.next_id, first)
        self.forgotten += 1

    def text(self, sid: int) -> str:
        text = self._texts[sid]
        if text is None:
            raise KeyError(sid)
        return text

    def text_of(self, sid: int) -> str | None:
        """The series' text form, None for an id without a series."""
        return self._texts[sid] if sid < len(self._texts) else None

    def key(self, sid: int) -> SeriesKey:
        return SeriesKey.parse(self.text(sid))

    def kind(self, sid: int) -> Kind:
        return KINDS[int(self.kinds[sid])]

    def widen(self, sids: npt.NDArray[np.int32], ts_ms: npt.NDArray[np.int64]) -> None:
        """Stretch the series' time ranges to cover these points."""
        np.minimum.at(self.first_ms, sids, ts_ms)
        np.maximum.at(self.last_ms, sids, ts_ms)

    def set_range(self, sid: int, first_ms: int | None, last_ms: int | None) -> None:
        self.first_ms[sid] = NO_FIRST if first_ms is None else first_ms
        self.last_ms[sid] = NO_LAST if last_ms is None else last_ms

    def range(self, sid: int) -> tuple[int | None, int | None]:
        """The series' first and last timestamp in ms, None when it has no points."""
        first, last = int(self.first_ms[sid]), int(self.last_ms[sid])
        return (None, None) if first == NO_FIRST else (first, last)

    def ranges(self, sids: npt.NDArray[np.int32]) -> list[tuple[int | None, int | None, int]]:
        """``(first_ms, last_ms, sid)`` of each series, as :meth:`range` gives them."""
        first, last = self.first_ms[sids], self.last_ms[sids]
        if (first == NO_FIRST).any():
            return [(*self.range(sid), sid) for sid in sids.tolist()]
        return list(zip(first.tolist(), last.tolist(), sids.tolist(), strict=True))

    def unit(self, sid: int) -> str:
        return self._units.get(sid, "")

    def meta(self, sid: int, key: SeriesKey | None = None) -> SeriesMeta:
        """What a listing says of a series (``key``: its key, if the caller has it)."""
        first, last = self.range(sid)
        return SeriesMeta(
            key=self.key(sid) if key is None else key,
            unit=self.unit(sid),
            kind=self.kind(sid),
            first_ts=None if first is None else first / 1000.0,
            last_ts=None if last is None else last / 1000.0,
        )

    def _grow(self, size: int) -> None:
        if size <= len(self.kinds):
            return
        capacity = max(size, 2 * len(self.kinds), 64)
        self.kinds = _resized(self.kinds, capacity, fill=0)
        self.first_ms = _resized(self.first_ms, capacity, fill=NO_FIRST)
        self.last_ms = _resized(self.last_ms, capacity, fill=NO_LAST)


def _resized(arr: npt.NDArray[_T], size: int, *, fill: object) -> npt.NDArray[_T]:
    out = np.full(size, fill, dtype=arr.dtype)
    out[: len(arr)] = arr
    return out
