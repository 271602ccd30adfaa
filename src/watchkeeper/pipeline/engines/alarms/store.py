"""Where alarm state lives between runs: nowhere (memory), one SQLite file per partition
(one host), or PostgreSQL (:mod:`.pgstore`, workers on several hosts).

A partition's file holds its entities' tracks, the append-only step log of every alarm,
resolved alarms, the ids of the events recently applied (so a redelivered batch is
recognised after a crash) and a version that grows with every commit. A worker that finds
another version than the one it loaded reloads the partition (another worker owned it in
between), and a commit succeeds only on the version it was computed from: a stale writer
gets :class:`StaleState` and its work is done again on fresh state.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import msgspec

from watchkeeper.pipeline.engines.alarms.model import Alarm, Step, Track
from watchkeeper.pipeline.state import StaleState

__all__ = ["AlarmStore", "Changes", "Loaded", "MemoryStore", "SqliteStore", "StaleState"]

_encoder = msgspec.msgpack.Encoder()
_track = msgspec.msgpack.Decoder(Track)
_alarm = msgspec.msgpack.Decoder(Alarm)
_step = msgspec.msgpack.Decoder(Step)


@dataclass
class Loaded:
    """A partition as stored: its tracks (alarms with their steps), recent event ids."""

    tracks: dict[str, Track] = field(default_factory=dict)
    seen: list[str] = field(default_factory=list)
    version: int = 0


@dataclass
class Changes:
    """What one commit writes for one partition."""

    tracks: list[Track] = field(default_factory=list)
    steps: list[tuple[str, int, Step]] = field(default_factory=list)  # alarm id, index, step
    seen: list[str] = field(default_factory=list)
    closed: list[Alarm] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)  # entity ids no longer tracked


class AlarmStore(Protocol):
    """Durable alarm state, by partition."""

    def load(self, partition: int) -> Loaded: ...

    def version(self, partition: int) -> int: ...

    def commit(self, partition: int, changes: Changes, *, expected: int) -> int:
        """Write ``changes`` atomically if the partition is still at version ``expected``
        (else raise :class:`StaleState`); return its new version."""
        ...

    def resolved(self, entity_id: str | None, limit: int) -> list[Alarm]:
        """Resolved alarms, newest first, with their steps."""
        ...

    def close(self) -> None: ...


class MemoryStore:
    """Keeps nothing beyond the process (the default for ``watchkeeper up``)."""

    def __init__(self, keep_resolved: int = 10_000) -> None:
        self._resolved: list[Alarm] = []
        self._keep = keep_resolved

    def load(self, partition: int) -> Loaded:
        return Loaded()

    def version(self, partition: int) -> int:
        return 0

    def commit(self, partition: int, changes: Changes, *, expected: int = 0) -> int:
        if changes.closed:
            self._resolved.extend(changes.closed)
            del self._resolved[:-self._keep]
        return 0

    def resolved(self, entity_id: str | None, limit: int) -> list[Alarm]:
        found = [a for a in reversed(self._resolved)
                 if entity_id is None or a.entity_id == entity_id]
        return found[:limit]

    def close(self) -> None:
        pass


_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS tracks (entity_id TEXT PRIMARY KEY, doc BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS steps (alarm_id TEXT NOT NULL, idx INTEGER NOT NULL,
                                  doc BLOB NOT NULL, PRIMARY KEY (alarm_id, idx))
                                  WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS resolved (alarm_id TEXT PRIMARY KEY, entity_id TEXT NOT NULL,
                                     at REAL NOT NULL, doc BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS resolved_by_entity ON resolved (entity_id, at);
CREATE TABLE IF NOT EXISTS seen (seq INTEGER PRIMARY KEY, id TEXT NOT NULL);
"""


class SqliteStore:
    """One SQLite file (WAL) per partition under ``directory``.

    The files are named after the partition count too, so changing ``partitions``
    starts a fresh layout instead of mixing entities. Connections open lazily.
    """

    def __init__(self, directory: Path, partitions: int, *, dedup_window: int,
                 fsync: bool = False) -> None:
        self._dir = directory
        self._partitions = partitions
        self._window = dedup_window
        self._sync = "FULL" if fsync else "NORMAL"  # NORMAL survives a process crash
        self._conns: dict[int, sqlite3.Connection] = {}

    def path(self, partition: int) -> Path:
        return self._dir / f"alarms-{partition}-of-{self._partitions}.sqlite"

    def _conn(self, partition: int) -> sqlite3.Connection:
        conn = self._conns.get(partition)
        if conn is None:
            self._dir.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path(partition), isolation_level=None,
                                   check_same_thread=False, timeout=30)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute(f"PRAGMA synchronous={self._sync}")
            conn.executescript(_SCHEMA)
            self._conns[partition] = conn
        return conn

    def load(self, partition: int) -> Loaded:
        conn = self._conn(partition)
        steps: dict[str, list[Step]] = {}
        for alarm_id, doc in conn.execute("SELECT alarm_id, doc FROM steps "
                                          "ORDER BY alarm_id, idx"):
            steps.setdefault(alarm_id, []).append(_step.decode(doc))
        tracks: dict[str, Track] = {}
        for (doc,) in conn.execute("SELECT doc FROM tracks"):
            track = _track.decode(doc)
            if track.alarm is not None:
                track.alarm.steps = steps.get(track.alarm.id, [])
            tracks[track.entity_id] = track
        seen = [row[0] for row in conn.execute(
            "SELECT id FROM seen ORDER BY seq DESC LIMIT ?", (self._window,))]
        seen.reverse()
        return Loaded(tracks=tracks, seen=seen, version=self.version(partition))

    def version(self, partition: int) -> int:
        return self._version(self._conn(partition))

    @staticmethod
    def _version(conn: sqlite3.Connection) -> int:
        row = conn.execute("SELECT value FROM meta WHERE key = 'version'").fetchone()
        return int(row[0]) if row else 0

    def commit(self, partition: int, changes: Changes, *, expected: int) -> int:
        conn = self._conn(partition)
        headers = [(t.entity_id, _encoder.encode(without_steps(t))) for t in changes.tracks]
        closed = [(a.id, a.entity_id, a.resolved or 0.0,
                   _encoder.encode(msgspec.structs.replace(a, steps=[])))
                  for a in changes.closed]
        conn.execute("BEGIN IMMEDIATE")  # the write lock, before the version is compared
        if self._version(conn) != expected:
            conn.execute("ROLLBACK")
            raise StaleState(f"alarm partition {partition} changed since it was loaded")
        try:
            conn.executemany("INSERT OR REPLACE INTO tracks (entity_id, doc) VALUES (?, ?)",
                             headers)
            conn.executemany("DELETE FROM tracks WHERE entity_id = ?",
                             [(e,) for e in changes.dropped])
            conn.executemany("INSERT OR REPLACE INTO steps (alarm_id, idx, doc) "
                             "VALUES (?, ?, ?)",
                             [(a, i, _encoder.encode(s)) for a, i, s in changes.steps])
            conn.executemany("INSERT OR REPLACE INTO resolved (alarm_id, entity_id, at, doc) "
                             "VALUES (?, ?, ?, ?)", closed)
            if changes.seen:
                conn.executemany("INSERT INTO seen (id) VALUES (?)",
                                 [(i,) for i in changes.seen])
                conn.execute("DELETE FROM seen WHERE seq <= "
                             "(SELECT MAX(seq) FROM seen) - ?", (self._window,))
            conn.execute("INSERT INTO meta (key, value) VALUES ('version', 1) "
                         "ON CONFLICT (key) DO UPDATE SET value = value + 1")
            version = self._version(conn)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return version

    def resolved(self, entity_id: str | None, limit: int) -> list[Alarm]:
        found: list[Alarm] = []
        for partition in range(self._partitions):
            if not self.path(partition).exists():
                continue
            conn = self._conn(partition)
            if entity_id is None:
                rows = conn.execute("SELECT doc FROM resolved ORDER BY at DESC LIMIT ?",
                                    (limit,))
            else:
                rows = conn.execute("SELECT doc FROM resolved WHERE entity_id = ? "
                                    "ORDER BY at DESC LIMIT ?", (entity_id, limit))
            for (doc,) in rows.fetchall():
                alarm = _alarm.decode(doc)
                alarm.steps = [_step.decode(d) for (d,) in conn.execute(
                    "SELECT doc FROM steps WHERE alarm_id = ? ORDER BY idx", (alarm.id,))]
                found.append(alarm)
        found.sort(key=lambda a: a.resolved or 0.0, reverse=True)
        return found[:limit]

    def close(self) -> None:
        for conn in self._conns.values():
            conn.close()
        self._conns.clear()


def without_steps(track: Track) -> Track:
    """The track with its open alarm's steps left out (stored apart, append-only)."""
    # steps live in their own append-only table; the header is rewritten, never the log
    if track.alarm is None or not track.alarm.steps:
        return track
    return msgspec.structs.replace(track, alarm=msgspec.structs.replace(track.alarm, steps=[]))


def open_partitions(directory: Path, partitions: int) -> Sequence[int]:
    """The partitions that have a file under ``directory``."""
    return [p for p in range(partitions)
            if (directory / f"alarms-{p}-of-{partitions}.sqlite").exists()]
