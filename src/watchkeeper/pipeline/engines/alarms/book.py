"""The alarm book: every entity's track, by partition, with de-duplication and commits.

The engine owns one book. Events are de-duplicated by id within ``dedup_window``
events per partition (the ids are stored with each commit, so a batch redelivered
after a crash is recognised), applied with :mod:`.model`, and each new step becomes an
``alarm`` event for the engines downstream (the notifier, say).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field

from watchkeeper.model import Event
from watchkeeper.pipeline.engines.alarms.impact import Causes, Lookup
from watchkeeper.pipeline.engines.alarms.model import (
    ACTIONS,
    CHECK_TYPES,
    NO_DATA,
    STATE_NAMES,
    STATUS_NAMES,
    Alarm,
    AlarmOptions,
    Step,
    Track,
    apply,
    expire,
    new_track,
)
from watchkeeper.pipeline.engines.alarms.store import AlarmStore, Changes, StaleState
from watchkeeper.pipeline.partition import EntityIds, partition_of
from watchkeeper.pipeline.recent import RecentIds

log = logging.getLogger(__name__)


@dataclass
class _Partition:
    tracks: dict[str, Track] = field(default_factory=dict)
    seen: RecentIds = field(default_factory=lambda: RecentIds(1))
    version: int = 0
    dirty: dict[str, Track] = field(default_factory=dict)
    new_ids: list[str] = field(default_factory=list)
    closed: list[Alarm] = field(default_factory=list)
    logged: dict[str, int] = field(default_factory=dict)  # alarm id -> steps stored


class AlarmBook:
    """Alarm state for the partitions this worker handles."""

    def __init__(self, options: AlarmOptions, store: AlarmStore, *, partitions: int = 1,
                 durable: bool = False, source: str = "alarms",
                 lookup: Lookup | None = None) -> None:
        self.options = options
        self.lookup = lookup if options.impact else None  # the inventory, for impact
        self.store = store
        self.partitions = max(1, partitions)
        self.durable = durable
        self.source = source
        self.duplicates = 0
        self._parts: dict[int, _Partition] = {}
        self._ids = EntityIds()

    # -- partitions -----------------------------------------------------------------

    def _load(self, partition: int) -> _Partition:
        loaded = self.store.load(partition)
        part = _Partition(tracks=loaded.tracks, version=loaded.version,
                          seen=RecentIds(self.options.dedup_window, loaded.seen))
        for track in loaded.tracks.values():
            if track.alarm is not None:
                part.logged[track.alarm.id] = len(track.alarm.steps)
        self._parts[partition] = part
        return part

    def _current(self, partition: int) -> _Partition:
        """The partition, reloaded if another worker committed to it since we last did."""
        part = self._parts.get(partition)
        if part is None:
            return self._load(partition)
        if self.durable and self.store.version(partition) != part.version:
            if part.dirty or part.new_ids or part.closed:
                # uncommitted work computed on a state another worker has since changed
                del self._parts[partition]
                raise StaleState(f"alarm partition {partition} changed under uncommitted work")
            return self._load(partition)
        return part

    def partition_of(self, entity_id: str) -> int:
        return partition_of(entity_id, self.partitions)

    # -- processing -----------------------------------------------------------------

    def apply_batch(self, batch: Iterable[Event]) -> list[Event]:
        """Apply events in order; return the ``alarm`` events describing new steps."""
        events = batch if isinstance(batch, list) else list(batch)
        fresh = self._apply_fresh(events)
        if fresh is not None:
            return fresh
        opts = self.options
        durable = self.durable
        ids = self._ids
        partitions = self.partitions
        parts: dict[int, _Partition] = {}
        out: list[Event] = []
        steps: list[Step] = []
        duplicates = self.duplicates
        causes = self._causes()
        for event in events:
            entity_id = ids(event)
            p = partition_of(entity_id, partitions) if partitions > 1 else 0
            part = parts.get(p)
            if part is None:
                part = parts[p] = self._current(p)
            if not part.seen.add(event.id):
                self.duplicates += 1
                continue
            if durable:
                part.new_ids.append(event.id)
            kind = event.event_type
            if kind not in CHECK_TYPES and kind not in ACTIONS:
                continue
            track = part.tracks.get(entity_id)
            if track is None:
                track = part.tracks[entity_id] = new_track(event, entity_id)
            elif kind == "check" and _unchanged(track, event, opts):
                if durable:
                    part.dirty[entity_id] = track
                continue
            self._apply_one(part, track, event, entity_id=entity_id, steps=steps, out=out,
                            causes=causes)
        if self.duplicates > duplicates:
            log.warning("alarms %s: %d events skipped, already applied (redelivered)",
                        self.source, self.duplicates - duplicates)
        return out

    def _apply_one(self, part: _Partition, track: Track, event: Event, *, entity_id: str,
                   steps: list[Step], out: list[Event], causes: Causes) -> None:
        """Apply an event that may log steps to its entity's track."""
        opts = self.options
        closed = apply(track, event, opts, steps)
        if self.durable:
            part.dirty[entity_id] = track
        if closed is not None:
            self._closed(part, closed)
        if steps:
            causes.changed(track, event.timestamp, opts, steps)
            self._describe(track, closed, steps, out)
            steps.clear()

    def _apply_fresh(self, batch: list[Event]) -> list[Event] | None:
        """The fast path of :meth:`apply_batch`: one partition, and every id in the batch
        new (no redelivery), so ``seen`` takes them all at once; None otherwise, with
        nothing done but loading the partition."""
        if self.partitions != 1 or not batch:
            return None
        part = self._current(0)
        ids = [event.id for event in batch]
        if not part.seen.add_all(ids):
            return None
        return self._apply_new(part, batch, ids)

    def _apply_new(self, part: _Partition, batch: list[Event], ids: list[str]) -> list[Event]:
        """Apply a batch to one partition whose ``seen`` already took every id of it: the
        same as the loop of :meth:`apply_batch`, with the common case (a check that
        changes nothing but counters, as :func:`_unchanged`) inlined. If an event fails,
        the ids of the events after it are forgotten again, as if added one at a time."""
        durable = self.durable
        tracks = part.tracks
        dirty = part.dirty
        out: list[Event] = []
        steps: list[Step] = []
        quiet = self.options.default_ttl is None  # no TTL from the options
        causes = self._causes()
        index = -1
        try:
            if durable:
                part.new_ids.extend(ids)
            entities = self._ids.of_batch(batch)
            for index, event in enumerate(batch):
                kind = event.event_type
                if kind != "check" and kind not in CHECK_TYPES and kind not in ACTIONS:
                    continue
                entity_id = entities[index]
                track = tracks.get(entity_id)
                if track is None:
                    track = tracks[entity_id] = new_track(event, entity_id)
                elif (kind == "check" and quiet and event.state == track.state
                      and not track.soft_count and track.ttl is None and event.ttl is None):
                    alarm = track.alarm
                    t = event.timestamp
                    if alarm is None or t < alarm.due:
                        if alarm is not None:
                            alarm.events += 1
                        track.events += 1
                        if t > track.last_seen:  # noqa: PLR1730 - max() is a call, this is not
                            track.last_seen = t
                        if durable:
                            dirty[entity_id] = track
                        continue
                self._apply_one(part, track, event, entity_id=entity_id, steps=steps,
                                out=out, causes=causes)
        except BaseException:
            self._forget(part, ids[index + 1:])
            raise
        return out

    def _forget(self, part: _Partition, ids: list[str]) -> None:
        """Undo adding ``ids`` (the last ones added) to the partition's seen ids."""
        for key in ids:
            part.seen.discard(key)
        if ids and self.durable:
            del part.new_ids[-len(ids):]

    def expire(self, now: float) -> list[Event]:
        """Time-driven changes due by ``now`` (no data, ack expiry, resolution...).

        With a durable store every partition is covered, also those this worker has not
        had events for since it started (their entities may have gone silent). Two
        workers expiring the same partition compute the same steps; the second commit is
        refused and dropped.
        """
        opts = self.options
        out: list[Event] = []
        steps: list[Step] = []
        if self.durable:
            self.load_all()
        causes = self._causes()
        for p in list(self._parts):
            part = self._current(p)
            for entity_id, track in part.tracks.items():
                if track.alarm is None and track.ttl is None:
                    continue
                closed = expire(track, now, opts, steps)
                if closed is not None:
                    self._closed(part, closed)
                causes.mark(track, None, opts, steps)  # an upstream alarm opened since
                if steps:
                    if self.durable:
                        part.dirty[entity_id] = track
                    self._describe(track, closed, steps, out)
                    steps.clear()
        return out

    def _causes(self) -> Causes:
        """Impact along the topology over the partitions in memory (inert without a lookup)."""
        parts = self._parts

        def track(entity_id: str) -> Track | None:
            part = parts.get(self.partition_of(entity_id))
            return None if part is None else part.tracks.get(entity_id)

        def everything() -> Iterable[Track]:
            for part in list(parts.values()):
                yield from part.tracks.values()

        return Causes(self.lookup, track, everything)

    def _closed(self, part: _Partition, alarm: Alarm) -> None:
        if self.durable:
            part.closed.append(alarm)
        else:
            self.store.commit(0, Changes(closed=[alarm]), expected=0)

    def commit(self) -> None:
        """Write every partition's changes since the last commit (durable stores only).

        Raises :class:`StaleState` if another worker committed to one of them meanwhile.
        """
        if not self.durable:
            return
        for p, part in list(self._parts.items()):
            if not (part.dirty or part.new_ids or part.closed):
                continue
            changes = Changes(seen=part.new_ids, closed=part.closed,
                              tracks=list(part.dirty.values()))
            for track in part.dirty.values():
                if track.alarm is not None:
                    self._new_steps(part, track.alarm, changes)
            for alarm in part.closed:
                self._new_steps(part, alarm, changes)
                part.logged.pop(alarm.id, None)
            try:
                part.version = self.store.commit(p, changes, expected=part.version)
            except StaleState:
                # Someone else moved the partition on: forget ours; the batch that made
                # these changes fails, comes again, and is applied to the fresh state.
                del self._parts[p]
                raise
            part.dirty, part.new_ids, part.closed = {}, [], []

    def rollback(self) -> None:
        """Forget the partitions with uncommitted work (durable stores only: they reload
        on next use, and the failed batch is applied again, its alarm events emitted
        again). Without a durable store there is nothing to go back to."""
        if not self.durable:
            return
        for p, part in list(self._parts.items()):
            if part.dirty or part.new_ids or part.closed:
                del self._parts[p]

    @staticmethod
    def _new_steps(part: _Partition, alarm: Alarm, changes: Changes) -> None:
        start = part.logged.get(alarm.id, 0)
        changes.steps.extend((alarm.id, i, alarm.steps[i]) for i in range(start, len(alarm.steps)))
        part.logged[alarm.id] = len(alarm.steps)

    def _describe(self, track: Track, closed: Alarm | None, steps: list[Step],
                  out: list[Event]) -> None:
        # The steps up to a resolve belong to the alarm it closed, later ones to the open
        # one; each alarm's new steps are the last ones of its log (ids stay stable).
        segments: list[tuple[Alarm, list[Step]]] = []
        rest = steps
        if closed is not None:
            cut = next((i for i, s in enumerate(steps) if s.type == "resolve"), len(steps)) + 1
            segments.append((closed, steps[:cut]))
            rest = steps[cut:]
        if rest and track.alarm is not None:
            segments.append((track.alarm, rest))
        for alarm, segment in segments:
            base = len(alarm.steps) - len(segment)
            out.extend(_alarm_event(track, alarm, step, base + j, self.source)
                       for j, step in enumerate(segment))

    # -- reading --------------------------------------------------------------------

    def tracks(self) -> Iterable[Track]:
        for p in list(self._parts):
            yield from self._current(p).tracks.values()

    def load_all(self) -> None:
        """Load every partition (a reader process that serves the API, say)."""
        for p in range(self.partitions):
            self._current(p)

    def track(self, entity_id: str) -> Track | None:
        return self._current(self.partition_of(entity_id)).tracks.get(entity_id)


def _unchanged(track: Track, event: Event, opts: AlarmOptions) -> bool:
    """The common case, short-cut: a check that changes nothing but the counters."""
    if (event.state != track.state or track.soft_count or track.ttl is not None
            or event.ttl is not None or opts.default_ttl is not None):
        return False
    alarm = track.alarm
    if alarm is not None:
        if event.timestamp >= alarm.due:
            return False
        alarm.events += 1
    track.events += 1
    track.last_seen = max(track.last_seen, event.timestamp)
    return True


def _alarm_event(track: Track, alarm: Alarm, step: Step, index: int, source: str) -> Event:
    attrs = {"alarm": alarm.id, "step": step.type, "status": STATUS_NAMES[alarm.status],
             "alarm_state": STATE_NAMES[alarm.state], "author": step.author}
    if step.val is not None:
        attrs["val"] = f"{step.val:g}"
    return Event(
        event_type="alarm", connector="watchkeeper", connector_name=source,
        source_type="resource" if track.resource else "component",
        component=track.component, resource=track.resource, timestamp=step.t,
        state=min(alarm.state, NO_DATA - 1), output=step.message or step.type, attrs=attrs,
        id=f"{alarm.id}#{index}",
    )
