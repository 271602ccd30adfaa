"""The series a writing backend knows: ids, kinds, units and time ranges, held in memory.

Ids are small integers handed out in order, so per-series state elsewhere (head
counts, chunk tails) lives in numpy arrays indexed by id instead of dicts.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final, NamedTuple, TypeVar

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


class Catalog:
    """Series by key and by id, with each one's kind, unit and first/last timestamp (ms)."""

    def __init__(self) -> None:
        self.ids: dict[SeriesKey, int] = {}
        self.ids_by_text: dict[str, int] = {}
        self._keys: dict[int, SeriesKey] = {}
        self._units: dict[int, str] = {}
        self.kinds = np.zeros(0, dtype=np.int8)  # KIND_CODES by series id
        self.first_ms = np.zeros(0, dtype=np.int64)
        self.last_ms = np.zeros(0, dtype=np.int64)
        self.next_id = 0

    def __len__(self) -> int:
        return len(self._keys)

    def add(
        self, series: NewSeries, first_ms: int | None = None, last_ms: int | None = None
    ) -> None:
        """Register a series (ids must be unique; they need not be contiguous)."""
        self._grow(series.sid + 1)
        self.ids[series.key] = series.sid
        self.ids_by_text[series.text] = series.sid
        self._keys[series.sid] = series.key
        self._units[series.sid] = series.unit
        self.kinds[series.sid] = KIND_CODES[series.kind]
        self.first_ms[series.sid] = NO_FIRST if first_ms is None else first_ms
        self.last_ms[series.sid] = NO_LAST if last_ms is None else last_ms
        self.next_id = max(self.next_id, series.sid + 1)

    def forget(self, added: Sequence[NewSeries]) -> None:
        """Undo :meth:`add` of the series a write created, in order, when it failed."""
        for series in added:
            del self.ids[series.key], self.ids_by_text[series.text]
            del self._keys[series.sid], self._units[series.sid]
            self.kinds[series.sid] = 0
            self.first_ms[series.sid] = NO_FIRST
            self.last_ms[series.sid] = NO_LAST
        if added:
            self.next_id = min(self.next_id, added[0].sid)

    def key(self, sid: int) -> SeriesKey:
        return self._keys[sid]

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

    def unit(self, sid: int) -> str:
        return self._units[sid]

    def meta(self, sid: int) -> SeriesMeta:
        first, last = self.range(sid)
        return SeriesMeta(
            key=self._keys[sid],
            unit=self._units[sid],
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
