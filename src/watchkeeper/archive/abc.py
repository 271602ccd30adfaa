"""The archive contract: every backend (embedded, PostgreSQL, memory) implements :class:`Archive`.

Backends do storage only. Rollup arithmetic lives in :mod:`watchkeeper.archive.rollup`,
which is pure and shared, so every backend answers a query with the same numbers.
"""

from __future__ import annotations

import itertools
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

import msgspec
import numpy as np
import numpy.typing as npt

from watchkeeper.archive.rollup import AGGREGATIONS, bucketize, step_ms
from watchkeeper.clock import Clock
from watchkeeper.errors import InvalidData, SeriesNotFound
from watchkeeper.model import Measurement, SeriesKey
from watchkeeper.telemetry import SelfMetrics

Kind = Literal["float", "histogram", "object"]
KINDS: tuple[Kind, ...] = ("float", "histogram", "object")


class SeriesMeta(msgspec.Struct, frozen=True, kw_only=True):
    """What the archive knows about one series."""

    key: SeriesKey
    unit: str
    kind: Kind
    first_ts: float | None
    last_ts: float | None


class SeriesQuery(msgspec.Struct, frozen=True, kw_only=True):
    """Which series :meth:`Archive.find_series` keeps: those meeting every condition
    given (an empty query keeps every series)."""

    prefix: str = ""
    """The key's text form starts with it."""
    subject: str = ""
    """Empty: any; else the key's subject is exactly this (likewise plugin and metric)."""
    plugin: str = ""
    metric: str = ""
    labels: tuple[tuple[str, str], ...] = ()
    """``(name, value)`` pairs the key carries, each exactly."""
    match: tuple[str, ...] = ()
    """Substrings of the key's text form, each one (case-sensitive)."""
    kind: Kind | None = None

    @property
    def only_prefix(self) -> bool:
        """Whether the query is a plain prefix listing (:meth:`Archive.list_series`)."""
        return not (self.subject or self.plugin or self.metric or self.labels or self.match
                    or self.kind)

    def matches(self, key: SeriesKey, kind: Kind) -> bool:
        text = str(key)
        return (text.startswith(self.prefix)
                and (not self.subject or key.subject == self.subject)
                and (not self.plugin or key.plugin == self.plugin)
                and (not self.metric or key.metric == self.metric)
                and all(pair in key.labels for pair in self.labels)
                and all(part in text for part in self.match)
                and (self.kind is None or kind == self.kind))


@dataclass(frozen=True)
class Points:
    """Points of one series in ascending time order.

    ``ts`` holds seconds since the epoch. Float series fill ``values``; histogram
    series fill ``histograms`` (one ``{bucket: count}`` per timestamp); object series
    fill ``objects`` (JSON values: dicts, lists, strings, numbers, booleans).
    """

    kind: Kind
    ts: npt.NDArray[np.float64]
    values: npt.NDArray[np.float64] = field(default_factory=lambda: np.empty(0))
    histograms: tuple[dict[str, int], ...] = ()
    objects: tuple[Any, ...] = ()
    unit: str = ""  # the series' unit, so a query needs no second lookup to label them

    def __len__(self) -> int:
        return int(self.ts.shape[0])


@dataclass(frozen=True)
class Columns:
    """A write batch in columnar form: number points of many series, plus other points.

    Point ``i`` of the number columns belongs to series ``series[index[i]]`` (a
    :class:`SeriesKey` text form), at ``ts[i]`` (seconds) with value ``values[i]``.
    ``units`` gives units of series the batch creates. ``others`` holds the batch's
    histogram and object points (and may hold numbers too); within the batch they come
    before the number columns (for equal series and time, the columns win). The bulk
    write API sends
    batches in this form, so a backend can store them without building a
    :class:`Measurement` per point.
    """

    series: Sequence[str]
    index: npt.NDArray[np.int32]
    ts: npt.NDArray[np.float64]
    values: npt.NDArray[np.float64]
    units: Mapping[str, str] = field(default_factory=dict)
    others: Sequence[Measurement] = ()
    series_token: bytes | None = None
    """Optional: equal tokens mean equal ``series`` lists (the bulk API passes the list's
    encoded form), so a backend may remember how it resolved a list it has seen."""

    def __len__(self) -> int:
        return int(self.index.shape[0]) + len(self.others)

    def measurements(self) -> list[Measurement]:
        """The same points as measurements (``others`` first, then the number columns).

        Raises :class:`~watchkeeper.errors.InvalidData` for a series text that does not
        parse, or an index outside ``series``.
        """
        keys = []
        for i, text in enumerate(self.series):
            try:
                keys.append(SeriesKey.parse(text))
            except InvalidData as exc:
                raise InvalidData(str(exc), field=f"series[{i}]", value=text) from None
        index, ts, values = self.checked()
        numbers = [
            Measurement(key=keys[i], ts=t, value=v, unit=self.units.get(self.series[i], ""))
            for i, t, v in zip(index.tolist(), ts.tolist(), values.tolist(), strict=True)
        ]
        return [*self.others, *numbers]

    def checked(
        self,
    ) -> tuple[npt.NDArray[np.int32], npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        """The three number columns as 1-d arrays of equal length, the indexes in range.

        Raises :class:`~watchkeeper.errors.InvalidData` naming the column otherwise.
        """
        index = np.asarray(self.index)
        ts = np.asarray(self.ts, dtype=np.float64)
        values = np.asarray(self.values, dtype=np.float64)
        if not (index.ndim == ts.ndim == values.ndim == 1) or not (
            len(index) == len(ts) == len(values)
        ):
            raise InvalidData(f"index {index.shape}, ts {ts.shape} and values {values.shape}"
                              " must be 1-d and of equal length", field="index")
        n_series = len(self.series)
        if index.dtype.kind not in "iu" or (len(index) and not (
            int(index.min()) >= 0 and int(index.max()) < n_series
        )):
            raise InvalidData(f"must hold positions in series (0 to {n_series - 1})",
                              field="index")
        return index.astype(np.int32, copy=False), ts, values


@dataclass(frozen=True)
class FloatRuns:
    """Float points of many series, one run after another: the run of key ``i`` of a
    :meth:`Archive.read_floats` is rows ``bounds[i]:bounds[i + 1]`` of ``ts`` (int64
    milliseconds, ascending) and ``values``. ``found[i]`` is False for a key that names no
    float series (its run is empty)."""

    ts: npt.NDArray[np.int64]
    values: npt.NDArray[np.float64]
    bounds: npt.NDArray[np.int64]
    found: npt.NDArray[np.bool_]

    def __len__(self) -> int:
        return int(self.found.shape[0])

    def run(self, i: int) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
        lo, hi = int(self.bounds[i]), int(self.bounds[i + 1])
        return self.ts[lo:hi], self.values[lo:hi]


@dataclass(frozen=True)
class FloatPieces:
    """Float points of many series, each in arrays of its own: key ``i`` of a
    :meth:`Archive.read_float_pieces` has ``ts[i]`` (int64 milliseconds, ascending) and
    ``values[i]``, as :meth:`Archive.read_floats` reads them. They may be views of what
    a backend keeps decoded: read them, never write them. ``found`` as in FloatRuns."""

    ts: list[npt.NDArray[np.int64]]
    values: list[npt.NDArray[np.float64]]
    found: npt.NDArray[np.bool_]

    def __len__(self) -> int:
        return int(self.found.shape[0])

    @classmethod
    def of(cls, runs: FloatRuns) -> FloatPieces:
        """Each key's run of ``runs`` as its own views."""
        bounds = runs.bounds.tolist()
        return cls([runs.ts[lo:hi] for lo, hi in itertools.pairwise(bounds)],
                   [runs.values[lo:hi] for lo, hi in itertools.pairwise(bounds)], runs.found)


@dataclass(frozen=True)
class Rollup:
    """A float series aggregated into buckets: ``values[agg][i]`` belongs to bucket ``ts[i]``.

    Buckets are named by their start (seconds); buckets without points are left out.
    """

    key: SeriesKey
    ts: npt.NDArray[np.float64]
    values: dict[str, npt.NDArray[np.float64]]


class NoOptions(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A backend without options."""


class Archive(ABC):
    """A durable store of series and their points.

    Construction does no I/O; :meth:`start` opens storage and registers its closing
    on the exit stack. In a durable backend (all but the in-memory one) a write that
    returned survives a crash of the process (SIGKILL) and is visible to every later
    read, in this or another process.
    A point with the same series and timestamp as a stored one replaces it.
    """

    Options: ClassVar[type[msgspec.Struct]] = NoOptions

    def __init__(
        self,
        *,
        data_dir: Path,
        options: Any,
        clock: Clock,
        metrics: SelfMetrics,
    ) -> None:
        self.data_dir = data_dir
        self.options = options
        self.clock = clock
        self.metrics = metrics

    @abstractmethod
    async def start(self, exit_stack: AsyncExitStack) -> None:
        """Open (creating if needed) the storage; close it when the stack unwinds."""

    @abstractmethod
    async def write(self, measurements: Sequence[Measurement]) -> int:
        """Store all measurements durably, all or nothing; return how many were stored.

        Raises :class:`~watchkeeper.errors.InvalidData` when a measurement's kind does not
        match its series (a histogram sent to a float series), without storing any.
        """

    async def write_columns(self, columns: Columns) -> int:
        """Store a columnar batch, exactly as :meth:`write` stores the same measurements.

        The default converts to measurements; backends override it to go faster.
        """
        return await self.write(columns.measurements())

    @abstractmethod
    async def list_series(
        self, *, prefix: str = "", limit: int | None = None, offset: int = 0
    ) -> tuple[list[SeriesMeta], int]:
        """Series whose text key starts with ``prefix``, sorted by key, and the total count."""

    async def series_count(self) -> int:
        """How many series there are: :meth:`list_series`' total. The default lists none to
        learn it; a backend that counts its series in memory answers without a trip (the
        PromQL engine asks at every query whether its index of series is still whole)."""
        _, total = await self.list_series(limit=0)
        return total

    async def find_series(
        self, query: SeriesQuery, *, limit: int | None = None, offset: int = 0
    ) -> tuple[list[SeriesMeta], int]:
        """A page of the series meeting ``query``, sorted by key like :meth:`list_series`,
        and how many meet it. The default tests every series under the query's prefix;
        a backend with an index of its series overrides it."""
        metas, _ = await self.list_series(prefix=query.prefix)
        kept = [meta for meta in metas if query.matches(meta.key, meta.kind)]
        return kept[offset:None if limit is None else offset + limit], len(kept)

    @abstractmethod
    async def read(self, key: SeriesKey, start: float, end: float) -> Points:
        """Points with ``start <= ts <= end``; raises SeriesNotFound for an unknown key."""

    async def read_floats(self, keys: Sequence[SeriesKey], start_ms: int, end_ms: int
                          ) -> FloatRuns:
        """The points with ``start_ms <= ts <= end_ms`` of each float series of ``keys``, in
        order, in one trip (PromQL reads every series a selector matches so). An unknown key
        or one naming a histogram or object series reads as not found. The default reads
        key by key; backends override it to read and decode all the keys' chunks at once.
        """
        runs: list[tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]] | None] = []
        for key in keys:
            try:
                points = await self.read(key, start_ms / 1000.0, end_ms / 1000.0)
            except SeriesNotFound:
                points = None
            if points is None or points.kind != "float":
                runs.append(None)
            else:
                runs.append((np.rint(points.ts * 1000.0).astype(np.int64), points.values))
        return float_runs(runs)

    async def read_float_pieces(self, keys: Sequence[SeriesKey], start_ms: int, end_ms: int
                                ) -> FloatPieces:
        """What :meth:`read_floats` reads, each key's points in arrays of their own: a
        backend that keeps series decoded hands out views of them, where copying every
        key's points into one pair of arrays would cost more than the query that reads
        them (PromQL's ``rate`` over a day). The default splits read_floats' answer."""
        return FloatPieces.of(await self.read_floats(keys, start_ms, end_ms))

    @abstractmethod
    async def delete(self, key: SeriesKey, start: float, end: float) -> int:
        """Remove points with ``start <= ts <= end``; return how many were removed."""

    async def rollup(
        self,
        keys: Sequence[SeriesKey],
        *,
        start: float,
        end: float,
        step: float,
        aggs: Sequence[str] = ("avg",),
    ) -> list[Rollup]:
        """Aggregate float series over ``[start, end]`` into epoch-aligned ``step``-second
        buckets, one :class:`Rollup` per key in order, with every aggregation of ``aggs``.

        The numbers are those of :func:`~watchkeeper.archive.rollup.bucketize` over the
        points :meth:`read` returns (sums, hence averages, may differ in the last bits
        where a backend adds up stored partial sums). Raises SeriesNotFound for an
        unknown key and InvalidData for a series that does not hold numbers. The
        default reads every series; backends override it to use stored summaries.
        """
        check_rollup(step, aggs)
        return [rollup_points(key, await self.read(key, start, end), start=start, end=end,
                              step=step, aggs=aggs)
                for key in keys]


def float_runs(runs: Sequence[tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]] | None]
               ) -> FloatRuns:
    """:class:`FloatRuns` of one ``(ts, values)`` per key, or None for a key not found."""
    counts = [0 if run is None else len(run[0]) for run in runs]
    bounds = np.zeros(len(runs) + 1, dtype=np.int64)
    np.cumsum(counts, out=bounds[1:])
    found = np.array([run is not None for run in runs], dtype=np.bool_)
    kept = [run for run in runs if run is not None]
    if not kept:
        return FloatRuns(np.empty(0, np.int64), np.empty(0), bounds, found)
    return FloatRuns(np.concatenate([ts for ts, _ in kept]).astype(np.int64, copy=False),
                     np.concatenate([v for _, v in kept]).astype(np.float64, copy=False),
                     bounds, found)


def require_numbers(key: SeriesKey, kind: Kind) -> None:
    """InvalidData unless series ``key`` (of ``kind``) holds numbers: only they roll up."""
    if kind != "float":
        raise InvalidData(f"series {key} holds {kind} points, not numbers", field="series",
                          value=str(key))


def rollup_points(key: SeriesKey, points: Points, *, start: float, end: float, step: float,
                  aggs: Sequence[str]) -> Rollup:
    """The rollup of one series from its points (InvalidData unless they are numbers)."""
    require_numbers(key, points.kind)
    values = {}
    ts = np.empty(0)
    for agg in aggs:
        ts, values[agg] = bucketize(points.ts, points.values, start=start, end=end, step=step,
                                    agg=agg)
    return Rollup(key=key, ts=ts, values=values)


def check_rollup(step: float, aggs: Sequence[str]) -> int:
    """Refuse a bad step or aggregation (InvalidData); the step in milliseconds."""
    for agg in aggs:
        if agg not in AGGREGATIONS:
            raise InvalidData(f"must be one of {', '.join(AGGREGATIONS)}", field="agg",
                              value=agg)
    if not aggs:
        raise InvalidData("name at least one aggregation", field="agg")
    return step_ms(step)
