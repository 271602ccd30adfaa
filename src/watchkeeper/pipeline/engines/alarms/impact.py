"""Impact along the topology: which upstream alarm an entity's alarm is a consequence of.

The runtime lends the inventory as ``Services.lookup``; a component's ``upstream``
attribute lists the devices it depends on (comma-separated). An alarm whose component
has an upstream device with an open, non-OK alarm is caused by that alarm: the
component-level alarm of the device (``component/<device>``) if there is one, else
any of its resources' alarms (the first by entity id).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from urllib.parse import quote

from watchkeeper.pipeline.engines.alarms.model import OK, AlarmOptions, Step, Track, mark_caused_by

Lookup = Callable[[str], Mapping[str, str]]


class Causes:
    """Finds upstream alarms over some tracks; made per batch or beat, so the index of
    resource-level alarms by component is built at most once, and only when needed.
    Without a lookup (impact off, or no inventory) it does nothing."""

    def __init__(self, lookup: Lookup | None, tracks: Callable[[str], Track | None],
                 everything: Callable[[], Iterable[Track]]) -> None:
        self._lookup = lookup
        self._track = tracks
        self._everything = everything
        self._by_component: dict[str, str] | None = None

    def cause_of(self, track: Track) -> Track | None:
        """The track of an open alarm upstream of ``track``'s component, if any."""
        if self._lookup is None:
            return None
        upstream = self._lookup(track.component).get("upstream")
        if not upstream:
            return None
        for device in upstream.split(","):
            if not device or device == track.component:
                continue
            direct = self._track(f"component/{quote(device, safe='')}")
            if direct is not None and _alarming(direct):
                return direct
            found = self._index().get(device)
            if found is not None:
                indexed = self._track(found)
                if indexed is not None and _alarming(indexed):
                    return indexed
        return None

    def mark(self, track: Track, t: float | None, opts: AlarmOptions, out: list[Step]) -> bool:
        """Mark ``track``'s open alarm if it has no cause yet and one is found upstream.

        ``t``: when (an event's time); None (the beat) logs it when both troubles had
        begun, so the log does not depend on when beats run.
        """
        alarm = track.alarm
        if (self._lookup is None or alarm is None or alarm.caused_by is not None
                or alarm.state == OK):
            return False
        cause = self.cause_of(track)
        if cause is None or cause.entity_id == track.entity_id or cause.alarm is None:
            return False
        if t is None:
            upstream = cause.alarm
            t = max(alarm.nonok_since if alarm.nonok_since is not None else alarm.opened,
                    upstream.nonok_since if upstream.nonok_since is not None
                    else upstream.opened,
                    alarm.steps[-1].t if alarm.steps else alarm.opened)  # the log stays in order
        mark_caused_by(alarm, cause.entity_id, t, opts, out)
        return True

    def changed(self, track: Track, t: float, opts: AlarmOptions, out: list[Step]) -> None:
        """``track`` logged steps (in ``out``) at ``t``: index it, then mark it if caused."""
        if self._lookup is not None:
            self.note(track)
            self.mark(track, t, opts, out)

    def note(self, track: Track) -> None:
        """``track`` changed: keep the index (when built) up to date with its alarm."""
        if self._by_component is not None and _alarming(track):
            self._by_component.setdefault(track.component, track.entity_id)

    def _index(self) -> dict[str, str]:
        if self._by_component is None:
            index: dict[str, str] = {}
            for track in sorted(self._everything(), key=lambda t: t.entity_id):
                if _alarming(track):
                    index.setdefault(track.component, track.entity_id)
            self._by_component = index
        return self._by_component


def _alarming(track: Track) -> bool:
    return track.alarm is not None and track.alarm.state != OK
