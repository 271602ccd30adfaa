"""The esmond archive: metadata in a :class:`MetadataStore`, points in the :class:`Archive`.

Reads are plain series reads. Writes run as esmond defines them (reference §3.4): each
point is stored in its base series and folded into every summary its metadata
registered, at write time, by the pure functions of :mod:`.summaries`.

**Group commit.** Writers hand checked points to one committer task, which takes every
request waiting, applies them one after the other to a scratch copy of the bins they
touch, and makes all of them durable with one archive write and one metadata
transaction. A request that conflicts (a numeric point already stored at that time) is
refused alone with nothing of it applied; the others proceed. A request's points are
all stored or none (bulk writes included), and each request sees the ones before it:
two histograms for one bin in one PUT are both merged (esmond lost one).

**Several writers, exact summaries.** Folding a point into a bin reads the bin's state
and writes it back, so two processes writing one metadata at once would lose each
other's points (esmond does). Each commit therefore runs as a *turn* over the event
types of the metadata it writes (:meth:`MetadataStore.writing`): on PostgreSQL a lock
per metadata and event type, held across processes while the bins are read, folded and
stored. Any number of servers on one store give the summaries one server gives, and a
numeric timestamp stored through one is refused (409) through every other. A store
that only one process writes through (the embedded deployment) takes no lock.

**Bin cache.** The state of recently written summary bins stays in memory, and so does
the newest stored ts of each series written: a point later than that cannot be a
duplicate and a bin later than that is empty, so a write of points arriving in time
order reads nothing from the archive. It holds because this process is the only one
that wrote the event type since it cached it: the turn counter says so (a turn one more
than this process's last), and when another process had a turn in between, everything
cached of that event type is dropped and read again under the lock. In the embedded
deployment one process owns the store, so the cache is always current (unless esmond
series are also written through the native API). ``cache_bins=0`` turns it off.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import math
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from typing import Any, Final, NamedTuple

from watchkeeper.archive.abc import Archive, Points
from watchkeeper.archive.esmond import series as slots
from watchkeeper.archive.esmond.abc import MetadataQuery, MetadataStore
from watchkeeper.archive.esmond.model import Metadata, MetadataSpec
from watchkeeper.archive.esmond.series import Part, StoredKind
from watchkeeper.archive.esmond.summaries import (
    Mean,
    Ratio,
    State,
    base_value,
    bin_start,
    fold,
    histogram_statistics,
    unfold_histogram,
)
from watchkeeper.archive.esmond.types import (
    ALLOWED_SUMMARIES,
    BASE,
    EVENT_TYPES,
    DataType,
    Summary,
)
from watchkeeper.archive.esmond.values import Percentage, Value, coerce, timestamp
from watchkeeper.clock import Clock
from watchkeeper.errors import (
    ArchiveError,
    Conflict,
    InvalidData,
    NotFound,
    SeriesNotFound,
    WatchkeeperError,
)
from watchkeeper.model import Measurement, SeriesKey

log = logging.getLogger(__name__)

DEFAULT_CACHE_BINS: Final = 200_000
READ_SPAN: Final = 3600  # seconds of data a limited read starts with


class RawPoint(NamedTuple):
    """A point as posted, before checking: ``where`` names it in error messages."""

    ts: object
    event_type: str
    value: object
    where: str


class Point(NamedTuple):
    """A checked point of a registered event type."""

    event_type: str
    data_type: DataType
    ts: int
    value: Value


class EsmondArchive:
    """esmond's perfSONAR archive over a metadata store and the archive."""

    def __init__(
        self,
        *,
        metadata: MetadataStore,
        archive: Archive,
        clock: Clock,
        cache_bins: int = DEFAULT_CACHE_BINS,
    ) -> None:
        self.metadata = metadata
        self.archive = archive
        self.clock = clock
        self._registered: dict[str, dict[str, tuple[Summary, ...]]] = {}
        self._bins: _BinCache = _BinCache(cache_bins)
        # per (metadata key, event type): the turn count at this process's last turn
        self._turns: dict[tuple[str, str], int] = {}
        self._touched: dict[tuple[str, str], int] = {}
        self._pending: list[_Request] = []
        self._wakeup = asyncio.Event()
        self._committer: asyncio.Task[None] | None = None
        self._closing = False

    async def start(self, exit_stack: AsyncExitStack) -> None:
        """Start the committer; on unwinding, finish the writes already accepted."""
        self._committer = asyncio.create_task(self._commit_loop(), name="esmond-commit")
        exit_stack.push_async_callback(self._stop)

    # -- metadata -----------------------------------------------------------------------

    async def create(self, spec: MetadataSpec) -> tuple[Metadata, bool]:
        metadata, created = await self.metadata.create(spec)
        self._registered[metadata.key] = metadata.summaries()
        return metadata, created

    async def search(self, query: MetadataQuery, *, limit: int | None,
                     offset: int = 0) -> tuple[list[Metadata], int]:
        return await self.metadata.search(query, limit=limit, offset=offset)

    async def get(self, key: str) -> Metadata | None:
        return await self.metadata.get(key)

    async def registered(self, key: str) -> dict[str, tuple[Summary, ...]] | None:
        """The summaries per event type of metadata ``key`` (rows never change once made)."""
        found = self._registered.get(key)
        if found is None:
            metadata = await self.metadata.get(key)
            if metadata is None:
                return None
            found = self._registered[key] = metadata.summaries()
        return found

    # -- writes -------------------------------------------------------------------------

    async def write(self, key: str, points: Sequence[RawPoint]) -> int:
        """Check and store ``points`` of metadata ``key``, all or none; how many were stored.

        Points of event types the metadata did not register are accepted and dropped,
        as esmond does. Raises NotFound (unknown key), InvalidData, Conflict.
        """
        registered = await self.registered(key)
        if registered is None:
            raise NotFound(f"metadata-key: no metadata with key {key!r}")
        checked = check_points(points, registered)
        if not checked:
            return 0
        if self._closing or self._committer is None or self._committer.done():
            raise ArchiveError("the esmond archive is not accepting writes (not started "
                               "or shutting down)")
        request = _Request(key, registered, checked,
                           asyncio.get_running_loop().create_future())
        self._pending.append(request)
        self._wakeup.set()
        await request.done
        return len(checked)

    async def import_points(self, key: str, event_type: str, summary: Summary,
                            points: Iterable[tuple[int, Any]]) -> int:
        """Store points of one base or summary series as given (no summaries computed).

        For loading existing data, such as esmond's test data whose summary points are
        not bin-aligned. Values are stored in the form the series serves.
        """
        data_type = EVENT_TYPES[event_type]
        slot = slots.served_slot(key, event_type, data_type, summary)
        if slot is None:
            raise InvalidData(f"metadata-key {key!r} cannot name an archive series")
        out = _Output()
        for ts, value in points:
            out.put(slot.key, ts, slot.kind, value)
        async with self.metadata.writing([(key, event_type)]) as turns:
            self._take_turns(turns)
            await self._store(out, touched=[])
        self._bins.forget((key, event_type))  # what was cached of it may be stale now
        return len(out.values)

    # -- reads --------------------------------------------------------------------------

    async def read(self, key: str, event_type: str, summary: Summary, *, begin: int,
                   end: int, limit: int | None = None) -> list[tuple[int, Any]]:
        """Points of a base or summary series in ``[begin, end]``, ascending, at most ``limit``.

        An unknown metadata key, event type or summary gives no points.
        """
        data_type = EVENT_TYPES.get(event_type)
        slot = None if data_type is None else slots.served_slot(key, event_type, data_type,
                                                                 summary)
        if slot is None:
            return []
        metas, _ = await self.archive.list_series(prefix=str(slot.key), limit=1)
        meta = metas[0] if metas and metas[0].key == slot.key else None
        if meta is None or meta.first_ts is None or meta.last_ts is None:
            return []
        begin = max(begin, math.floor(meta.first_ts))
        end = min(end, math.ceil(meta.last_ts))
        if limit is None:
            return await _read(self.archive, slot.key, begin, end)
        # Pages are read from the start in growing windows, so a client paging through
        # a long series 1000 points at a time reads each point about once, not every
        # point up to the end for every page.
        rows: list[tuple[int, Any]] = []
        span = READ_SPAN
        while begin <= end and len(rows) < limit:
            upto = min(end, begin + span - 1)
            rows += await _read(self.archive, slot.key, begin, upto)
            begin, span = upto + 1, span * 4
        return rows[:limit]

    # -- the committer ------------------------------------------------------------------

    async def _commit_loop(self) -> None:
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            requests, self._pending = self._pending, []
            if requests:
                await self._commit(requests)
            elif self._closing:
                return

    async def _commit(self, requests: list[_Request]) -> None:
        live = [r for r in requests if not r.done.done()]  # else the client went away
        if not live:
            return
        series = {(r.key, p.event_type) for r in live for p in r.points}
        try:
            async with self.metadata.writing(sorted(series)) as turns:
                self._take_turns(turns)
                await self._commit_turn(live)
        except Exception as exc:  # taking the turn failed: nothing was stored
            log.exception("esmond writes to %d series could not take their turn",
                          len(series))
            for request in live:
                if not request.done.done():
                    request.done.set_exception(exc)

    def _take_turns(self, turns: Mapping[tuple[str, str], int]) -> None:
        """Drop what is cached of event types another process wrote since our last turn."""
        for pair, count in turns.items():
            if self._turns.get(pair) != count - 1:
                self._bins.forget(pair)
            self._turns[pair] = count

    async def _commit_turn(self, requests: list[_Request]) -> None:
        scratch = _Scratch(self._bins)
        accepted: list[_Request] = []
        for request in requests:
            if request.done.done():  # the client went away while the turn was taken
                continue
            try:
                await self._prefetch(scratch, request)
                _apply(scratch, request)
            except WatchkeeperError as exc:
                request.done.set_exception(exc)
                continue
            except Exception as exc:  # fail this request, keep committing the others
                log.exception("esmond write to %s failed", request.key)
                request.done.set_exception(exc)
                continue
            accepted.append(request)
        if not accepted:
            return
        touched = sorted({(r.key, p.event_type) for r in accepted for p in r.points})
        try:
            await self._store(scratch.output, touched)
        except Exception as exc:
            log.exception("storing %d esmond writes failed", len(accepted))
            for request in accepted:
                for point in request.points:  # whatever was stored, read it again
                    self._bins.forget((request.key, point.event_type))
                if not request.done.done():
                    request.done.set_exception(exc)
            return
        scratch.keep()
        for request in accepted:
            if not request.done.done():
                request.done.set_result(None)

    async def _store(self, out: _Output, touched: Sequence[tuple[str, str]]) -> None:
        measurements = out.measurements()
        now = int(self.clock.time())
        stale = [pair for pair in touched if self._touched.get(pair) != now]
        # Different files (or databases): both commits run at once.
        await asyncio.gather(self.archive.write(measurements) if measurements else _nothing(),
                             self.metadata.touch(stale, now))
        if stale:
            self._touched.update((pair, now) for pair in stale)
            if len(self._touched) > 100_000:
                self._touched.clear()

    async def _prefetch(self, scratch: _Scratch, request: _Request) -> None:
        """Read what applying ``request`` needs; raise Conflict for a numeric duplicate."""
        stamps: dict[SeriesKey, list[int]] = {}
        for point in request.points:
            if point.data_type not in ("json", "subinterval"):
                stamps.setdefault(_base_key(request.key, point.event_type), []).append(point.ts)
        for key, wanted in stamps.items():
            await scratch.load_bases(self.archive, key, wanted)
        seen: set[tuple[str, int]] = set()
        for point in request.points:
            if point.data_type in ("integer", "float", "percentage"):
                stored = scratch.bases[(_base_key(request.key, point.event_type), point.ts)]
                if stored is not None or (point.event_type, point.ts) in seen:
                    raise Conflict("Time series value already exists with event type "
                                   f"{point.event_type} at time {point.ts}")
                seen.add((point.event_type, point.ts))
            for summary in request.registered[point.event_type]:
                state = _state_key(request, point, summary)
                if state is not None:
                    await scratch.load_state(self.archive, *state,
                                             bin_start(point.ts, summary.window))

    async def _stop(self) -> None:
        self._closing = True
        self._wakeup.set()
        if self._committer is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._committer


async def _nothing() -> None:
    return None


def check_points(points: Sequence[RawPoint],
                 registered: Mapping[str, tuple[Summary, ...]]) -> list[Point]:
    """The points of registered event types, checked; InvalidData for the first bad one."""
    out = []
    for raw in points:
        data_type = EVENT_TYPES.get(raw.event_type)
        if data_type is None:
            raise InvalidData(f"Invalid event type {raw.event_type} ({raw.where})")
        ts = timestamp(raw.ts, where=raw.where)
        if raw.event_type not in registered:
            continue  # esmond accepts and drops them; esmond-ps-load-gridftp relies on it
        value = coerce(data_type, raw.value, where=raw.where)
        out.append(Point(raw.event_type, data_type, ts, value))
    return out


# -- applying a request -------------------------------------------------------------------


@dataclass
class _Request:
    key: str
    registered: Mapping[str, tuple[Summary, ...]]
    points: list[Point]
    done: asyncio.Future[None]


def _base_key(metadata_key: str, event_type: str) -> SeriesKey:
    return slots.series_key(metadata_key, event_type, BASE)


def _state_key(request: _Request, point: Point,
               summary: Summary) -> tuple[str, SeriesKey] | None:
    """The state a summary of ``point`` folds into (its kind and series), if it keeps one."""
    if summary.type == "base" or not _allowed(point.data_type, summary):
        return None
    if point.data_type == "histogram":
        return _histogram_state(request, point, summary)
    key = slots.series_key(request.key, point.event_type, summary)
    if summary.type == "average":
        return "mean", key
    return ("ratio" if point.data_type == "percentage" else "sum"), key


def _histogram_state(request: _Request, point: Point,
                     summary: Summary) -> tuple[str, SeriesKey] | None:
    """An aggregation's own series; a statistics summary of window W > 0 shares the
    aggregation of W or, when none is registered, keeps a hidden merged histogram."""
    if summary.type == "aggregation":
        return "histogram", slots.series_key(request.key, point.event_type, summary)
    aggregation = Summary("aggregation", summary.window)
    if summary.window == 0 or aggregation in request.registered[point.event_type]:
        return None
    return "histogram", slots.series_key(request.key, point.event_type, summary, "histogram")


def _allowed(data_type: DataType, summary: Summary) -> bool:
    return summary.type in ALLOWED_SUMMARIES[data_type]


def _apply(scratch: _Scratch, request: _Request) -> None:
    """Fold the request's points into the scratch bins (everything was prefetched)."""
    for point in request.points:
        base = _base_key(request.key, point.event_type)
        old = scratch.base_value(base, point.ts) if point.data_type == "histogram" else None
        _put_base(scratch.output, base, point)
        scratch.bases[(base, point.ts)] = point.value
        aggregations: dict[int, dict[str, int]] = {}
        for summary in request.registered[point.event_type]:
            bin_ts = bin_start(point.ts, summary.window)
            found = _state_key(request, point, summary)
            if found is not None:
                key = found[1]
                state = scratch.state(key, bin_ts)
                if old is not None and isinstance(state, dict):
                    state = unfold_histogram(state, old)
                state = fold(point.data_type, summary.type, state, point.value)
                scratch.set_state(key, bin_ts, state)
                _put_state(scratch.output, key, bin_ts, state)
                if isinstance(state, dict) and summary.type == "aggregation":
                    aggregations[summary.window] = state
            if point.data_type == "histogram" and summary.type == "statistics":
                merged = _statistics_source(scratch, request, point, summary, aggregations)
                key = slots.series_key(request.key, point.event_type, summary)
                scratch.output.put(key, bin_ts, "object", histogram_statistics(merged))


def _statistics_source(scratch: _Scratch, request: _Request, point: Point, summary: Summary,
                       aggregations: Mapping[int, dict[str, int]]) -> Mapping[str, int]:
    """The histogram a statistics summary describes: the point itself for window 0,
    else the bin's merged histogram (the aggregation's, or the hidden one)."""
    if summary.window == 0:
        assert isinstance(point.value, dict)
        return point.value
    if summary.window in aggregations:
        return aggregations[summary.window]
    hidden = slots.series_key(request.key, point.event_type, summary, "histogram")
    state = scratch.state(hidden, bin_start(point.ts, summary.window))
    return state if isinstance(state, dict) else {}


def _put_base(out: _Output, base: SeriesKey, point: Point) -> None:
    value = point.value
    if isinstance(value, Percentage):
        out.put(base, point.ts, "float", value.ratio)
        for part in ("numerator", "denominator"):
            out.put(_part_key(base, part), point.ts, "float", float(getattr(value, part)))
        return
    kind = slots.served_kind(point.data_type, BASE)
    out.put(base, point.ts, kind, base_value(point.data_type, value))


def _put_state(out: _Output, key: SeriesKey, bin_ts: int, state: State) -> None:
    if isinstance(state, dict):
        out.put(key, bin_ts, "histogram", state)
    elif isinstance(state, Mean):
        out.put(key, bin_ts, "float", state.value)
        out.put(_part_key(key, "count"), bin_ts, "float", float(state.points))
    elif isinstance(state, Ratio):
        out.put(key, bin_ts, "float", state.value)
        out.put(_part_key(key, "numerator"), bin_ts, "float", float(state.numerator))
        out.put(_part_key(key, "denominator"), bin_ts, "float", float(state.denominator))
    else:
        out.put(key, bin_ts, "float", float(state))


@functools.lru_cache(maxsize=65_536)
def _part_key(key: SeriesKey, part: Part) -> SeriesKey:
    """The companion ``part`` series of a served series."""
    labels = dict(key.labels)
    labels["part"] = part
    return SeriesKey.make(key.subject, key.plugin, key.metric, labels)


# -- scratch state of one commit ----------------------------------------------------------


class _BinCache:
    """Summary states of recent bins, ``(series, bin) -> state``, least recently used out;
    and the newest stored ts of each series written, so that a point (or bin) after it
    needs no read: nothing can be stored there (the usual case, as points arrive in time
    order).

    Entries carry the *generation* of their event type of their metadata (a series'
    subject is its metadata key, its metric the event type); :meth:`forget` moves one to
    the next generation, so all it had cached is ignored at once, and ages out as the
    cache turns over.
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self._states: OrderedDict[tuple[SeriesKey, int], tuple[int, State]] = OrderedDict()
        self._last: dict[SeriesKey, tuple[int, float]] = {}
        self._generations: dict[tuple[str, str], int] = {}

    def forget(self, series: tuple[str, str]) -> None:
        """Ignore everything cached of one ``(metadata key, event type)``."""
        if self.size:
            self._generations[series] = self._generations.get(series, 0) + 1

    def _generation(self, key: SeriesKey) -> int:
        return self._generations.get((key.subject, key.metric), 0)

    async def last_ts(self, archive: Archive, key: SeriesKey) -> float | None:
        """The newest stored ts of series ``key`` (-inf: none); None when the cache is off."""
        if not self.size:
            return None
        generation = self._generation(key)
        cached = self._last.get(key)
        if cached is not None and cached[0] == generation:
            return cached[1]
        metas, _ = await archive.list_series(prefix=str(key), limit=1)
        found = metas[0] if metas and metas[0].key == key else None
        last = found.last_ts if found and found.last_ts is not None else -math.inf
        self._last[key] = (generation, last)
        return last

    def stored(self, stamps: Mapping[SeriesKey, int]) -> None:
        """Points up to these ts are now stored."""
        if len(self._last) > self.size:
            self._last.clear()
        for key, ts in stamps.items():
            cached = self._last.get(key)
            if cached is not None and cached[0] == self._generation(key):
                self._last[key] = (cached[0], max(cached[1], ts))

    def get(self, key: tuple[SeriesKey, int]) -> State | None:
        cached = self._states.get(key)
        if cached is None or cached[0] != self._generation(key[0]):
            return None
        self._states.move_to_end(key)
        return cached[1]

    def update(self, states: Mapping[tuple[SeriesKey, int], State]) -> None:
        if not self.size:
            return
        for key, state in states.items():
            self._states[key] = (self._generation(key[0]), state)
            self._states.move_to_end(key)
        while len(self._states) > self.size:
            self._states.popitem(last=False)


@dataclass
class _Output:
    """The latest value per (series, ts) a commit writes, and its kind."""

    values: dict[tuple[SeriesKey, int], tuple[StoredKind, Any]] = field(default_factory=dict)

    def put(self, key: SeriesKey, ts: int, kind: StoredKind, value: Any) -> None:
        self.values[(key, ts)] = (kind, value)

    def measurements(self) -> list[Measurement]:
        out: list[Measurement] = []
        for (key, ts), (kind, value) in self.values.items():
            if kind == "float":
                out.append(Measurement(key=key, ts=ts, value=value))
            elif kind == "histogram":
                out.append(Measurement(key=key, ts=ts, histogram=value))
            else:
                out.append(Measurement(key=key, ts=ts, obj=value))
        return out


@dataclass
class _Scratch:
    """Bin states and base points as one commit sees them, over the cache and the archive."""

    cache: _BinCache
    states: dict[tuple[SeriesKey, int], State | None] = field(default_factory=dict)
    bases: dict[tuple[SeriesKey, int], Any] = field(default_factory=dict)
    output: _Output = field(default_factory=_Output)

    async def load_bases(self, archive: Archive, key: SeriesKey, stamps: Sequence[int]) -> None:
        """Learn which of ``stamps`` already hold a base point (one read per series)."""
        unknown = sorted({ts for ts in stamps if (key, ts) not in self.bases})
        if not unknown:
            return
        last = await self.cache.last_ts(archive, key)
        taken = unknown if last is None else [ts for ts in unknown if ts <= last]
        stored = dict(await _read(archive, key, taken[0], taken[-1])) if taken else {}
        for ts in unknown:
            self.bases[(key, ts)] = stored.get(ts)

    def base_value(self, key: SeriesKey, ts: int) -> Any:
        return self.bases.get((key, ts))

    async def load_state(self, archive: Archive, kind: str, series: SeriesKey,
                         bin_ts: int) -> None:
        key = (series, bin_ts)
        if key in self.states:
            return
        cached = self.cache.get(key)
        if cached is None:
            last = await self.cache.last_ts(archive, series)
            if last is None or bin_ts <= last:
                cached = await _read_state(archive, kind, series, bin_ts)
        self.states[key] = cached

    def state(self, key: SeriesKey, bin_ts: int) -> State | None:
        return self.states.get((key, bin_ts))

    def set_state(self, key: SeriesKey, bin_ts: int, state: State) -> None:
        self.states[(key, bin_ts)] = state

    def keep(self) -> None:
        """The commit is durable: remember its bin states and newest base points."""
        self.cache.update({k: v for k, v in self.states.items() if v is not None})
        newest: dict[SeriesKey, int] = {}
        for key, ts in self.output.values:
            if ts > newest.get(key, ts - 1):
                newest[key] = ts
        self.cache.stored(newest)


async def _read(archive: Archive, key: SeriesKey, begin: int, end: int) -> list[tuple[int, Any]]:
    try:
        points = await archive.read(key, begin, end)
    except SeriesNotFound:
        return []
    return _rows(points, None)


async def _read_one(archive: Archive, key: SeriesKey, ts: int) -> Any:
    rows = await _read(archive, key, ts, ts)
    return rows[-1][1] if rows else None


async def _read_state(archive: Archive, kind: str, key: SeriesKey, bin_ts: int) -> State | None:
    """A bin's state as stored (served value and parts), None for an empty bin."""
    served = await _read_one(archive, key, bin_ts)
    if served is None:
        return None
    if kind == "histogram":
        return dict(served)
    if kind == "mean":
        count = await _read_one(archive, _part_key(key, "count"), bin_ts)
        return Mean(float(served) * (count or 1), int(count or 1))
    if kind == "ratio":
        numerator = await _read_one(archive, _part_key(key, "numerator"), bin_ts)
        denominator = await _read_one(archive, _part_key(key, "denominator"), bin_ts)
        if numerator is None or not denominator:
            return None
        return Ratio(int(numerator), int(denominator))
    return float(served)


def _rows(points: Points, limit: int | None) -> list[tuple[int, Any]]:
    stamps = [round(t) for t in points.ts.tolist()]
    if points.kind == "float":
        values: Sequence[Any] = points.values.tolist()
    elif points.kind == "histogram":
        values = points.histograms
    else:
        values = points.objects
    rows = list(zip(stamps, values, strict=True))
    return rows if limit is None else rows[:limit]
