"""Durable per-partition state of the small stateful engines (threshold's held levels, dedup's
recent ids): nowhere (memory), one SQLite file (one host), or PostgreSQL (several hosts).

A partition's state is a map of entries (key -> bytes, the engine's own encoding), the
ids of the last ``window`` events it took, and a version that grows with every commit.
As in the alarm store, a worker reloads a partition whose version moved (another worker
owned it in between), and a commit succeeds only on the version it was computed from,
else :class:`StaleState` and the batch is done again on fresh state. So whichever
worker, on whichever host, takes a partition over continues from exactly what was
committed, and every commit happens before the bus acknowledges the batch.

Layout: SQLite ``<data_dir>/<path>/<engine>-of-<partitions>.sqlite`` (tables ``parts``,
``entries``, ``seen``); PostgreSQL tables ``engine_state_parts``, ``engine_state_entries``,
``engine_state_seen`` in ``schema``, keyed by engine name and partition count.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

import msgspec

from watchkeeper.errors import PipelineError
from watchkeeper.pipeline.pgconnect import PgConnection, bump
from watchkeeper.pipeline.recent import RecentIds

log = logging.getLogger(__name__)


class StaleState(PipelineError):
    """Another worker committed to the partition since this one loaded it."""


class StateOptions(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """Where an engine keeps its per-partition state (options shared by several engines)."""

    state: Literal["memory", "sqlite", "postgres"] = "memory"
    state_path: str = "state"
    dsn: str | None = None
    schema: str = "watchkeeper"

    def __post_init__(self) -> None:
        if self.state == "postgres" and not self.dsn:
            raise ValueError("state: postgres needs a dsn (a libpq connection string)")


@dataclass
class Snapshot:
    """A partition as committed."""

    entries: dict[str, bytes] = field(default_factory=dict)
    seen: list[str] = field(default_factory=list)
    version: int = 0


class PartitionStore(Protocol):
    """Durable state by partition."""

    def load(self, partition: int) -> Snapshot: ...

    def version(self, partition: int) -> int: ...

    def commit(self, partition: int, *, entries: Mapping[str, bytes], seen: Sequence[str],
               expected: int) -> int:
        """Write atomically if the partition is at version ``expected`` (else raise
        :class:`StaleState`); return its new version."""
        ...

    def close(self) -> None: ...


_SQLITE = """
CREATE TABLE IF NOT EXISTS parts (part INTEGER PRIMARY KEY, version INTEGER NOT NULL,
                                  seen_seq INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS entries (part INTEGER NOT NULL, key TEXT NOT NULL,
                                    value BLOB NOT NULL, PRIMARY KEY (part, key)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS seen (part INTEGER NOT NULL, seq INTEGER NOT NULL, id TEXT NOT NULL,
                                 PRIMARY KEY (part, seq)) WITHOUT ROWID;
"""


class SqlitePartitionStore:
    """All partitions of one engine in one SQLite file (WAL), shared by its workers on a host."""

    def __init__(self, path: Path, *, window: int) -> None:
        self.path = path
        self._window = window
        self._conn: sqlite3.Connection | None = None

    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False,
                                   timeout=30)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")  # survives a crash of the process
            conn.executescript(_SQLITE)
            self._conn = conn
        return self._conn

    def load(self, partition: int) -> Snapshot:
        db = self._db()
        db.execute("BEGIN")
        try:
            entries = dict(db.execute("SELECT key, value FROM entries WHERE part = ?",
                                      (partition,)).fetchall())
            seen = [row[0] for row in db.execute(
                "SELECT id FROM seen WHERE part = ? ORDER BY seq DESC LIMIT ?",
                (partition, self._window))]
            version = self.version(partition)
        finally:
            db.execute("COMMIT")
        seen.reverse()
        return Snapshot(entries=entries, seen=seen, version=version)

    def version(self, partition: int) -> int:
        row = self._db().execute("SELECT version FROM parts WHERE part = ?",
                                 (partition,)).fetchone()
        return int(row[0]) if row else 0

    def commit(self, partition: int, *, entries: Mapping[str, bytes], seen: Sequence[str],
               expected: int) -> int:
        db = self._db()
        db.execute("BEGIN IMMEDIATE")  # the write lock, before the version is compared
        try:
            row = db.execute("SELECT version, seen_seq FROM parts WHERE part = ?",
                             (partition,)).fetchone()
            version, seq = row if row else (0, 0)
            _check_version(version, expected, f"state partition {partition} in {self.path}")
            db.executemany("INSERT OR REPLACE INTO entries (part, key, value) VALUES (?, ?, ?)",
                           [(partition, k, v) for k, v in entries.items()])
            if seen:
                db.executemany("INSERT INTO seen (part, seq, id) VALUES (?, ?, ?)",
                               [(partition, n, i) for n, i in enumerate(seen, start=seq + 1)])
                db.execute("DELETE FROM seen WHERE part = ? AND seq <= ?",
                           (partition, seq + len(seen) - self._window))
            db.execute("INSERT OR REPLACE INTO parts (part, version, seen_seq) VALUES (?, ?, ?)",
                       (partition, version + 1, seq + len(seen)))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return int(version) + 1

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
        self._conn = None


def _check_version(version: int, expected: int, what: str) -> None:
    if version != expected:
        raise StaleState(f"{what} changed since it was loaded")


_PG = """
CREATE SCHEMA IF NOT EXISTS {schema};
CREATE TABLE IF NOT EXISTS {schema}.engine_state_parts (
    engine text NOT NULL, layout integer NOT NULL, part integer NOT NULL,
    version bigint NOT NULL DEFAULT 0, seen_seq bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (engine, layout, part));
CREATE TABLE IF NOT EXISTS {schema}.engine_state_entries (
    engine text NOT NULL, layout integer NOT NULL, part integer NOT NULL,
    key text NOT NULL, value bytea NOT NULL, PRIMARY KEY (engine, layout, part, key));
CREATE TABLE IF NOT EXISTS {schema}.engine_state_seen (
    engine text NOT NULL, layout integer NOT NULL, part integer NOT NULL,
    seq bigint NOT NULL, id text NOT NULL, PRIMARY KEY (engine, layout, part, seq));
"""


class PostgresPartitionStore:
    """All partitions of one engine in PostgreSQL, shared by its workers on every host."""

    def __init__(self, dsn: str, engine: str, partitions: int, *, window: int,
                 schema: str = "watchkeeper") -> None:
        self._pg = PgConnection(dsn, schema=schema, purpose=f"engine state {engine}", ddl=_PG)
        self._key = (engine, partitions)
        self._window = window
        self._s = schema

    def load(self, partition: int) -> Snapshot:
        conn = self._pg.get()
        s, key = self._s, (*self._key, partition)
        where = "WHERE engine = %s AND layout = %s AND part = %s"
        with conn.transaction():
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            entries = {k: bytes(v) for k, v in conn.execute(
                f"SELECT key, value FROM {s}.engine_state_entries {where}", key)}  # noqa: S608
            seen = [row[0] for row in conn.execute(
                f"SELECT id FROM {s}.engine_state_seen {where} "  # noqa: S608
                "ORDER BY seq DESC LIMIT %s", (*key, self._window))]
            version = self.version(partition)
        seen.reverse()
        return Snapshot(entries=entries, seen=seen, version=version)

    def version(self, partition: int) -> int:
        row = self._pg.get().execute(
            f"SELECT version FROM {self._s}.engine_state_parts "  # noqa: S608
            "WHERE engine = %s AND layout = %s AND part = %s",
            (*self._key, partition)).fetchone()
        return int(row[0]) if row else 0

    def commit(self, partition: int, *, entries: Mapping[str, bytes], seen: Sequence[str],
               expected: int) -> int:
        conn = self._pg.get()
        key = (*self._key, partition)
        with conn.transaction():
            seq = bump(conn, f"{self._s}.engine_state_parts", key, expected, len(seen))
            if seq is None:
                raise StaleState(f"state partition {partition} of engine {self._key[0]} "
                                 "changed since it was loaded")
            with conn.pipeline():  # the writes go out together: one round trip, not one each
                self._write(conn, key, entries, seen, seq)
        return expected + 1

    def _write(self, conn: Any, key: tuple[str, int, int], entries: Mapping[str, bytes],
               seen: Sequence[str], seq: int) -> None:
        s = self._s
        if entries:  # one statement over arrays (%b: sent binary, nothing to escape)
            conn.execute(
                f"INSERT INTO {s}.engine_state_entries (engine, layout, part, key, value) "  # noqa: S608
                "SELECT %s, %s, %s, k, v FROM unnest(%b::text[], %b::bytea[]) AS u(k, v) "
                "ON CONFLICT (engine, layout, part, key) DO UPDATE SET value = EXCLUDED.value",
                (*key, list(entries), list(entries.values())))
        if seen:
            conn.execute(
                f"INSERT INTO {s}.engine_state_seen (engine, layout, part, seq, id) "  # noqa: S608
                "SELECT %s, %s, %s, %s + n, id FROM unnest(%b::text[]) WITH ORDINALITY "
                "AS u(id, n)", (*key, seq, list(seen)))
            conn.execute(f"DELETE FROM {s}.engine_state_seen WHERE engine = %s "  # noqa: S608
                         "AND layout = %s AND part = %s AND seq <= %s",
                         (*key, seq + len(seen) - self._window))

    def close(self) -> None:
        self._pg.close()


def open_store(options: StateOptions, *, engine: str, partitions: int, data_dir: Path | None,
               window: int) -> PartitionStore | None:
    """The store ``options`` name (nothing is opened yet); None for ``state: memory``."""
    if options.state == "sqlite":
        base = Path(options.state_path)
        if not base.is_absolute():
            base = (data_dir or Path()) / base
        return SqlitePartitionStore(base / f"{engine}-of-{partitions}.sqlite", window=window)
    if options.state == "postgres":
        assert options.dsn is not None  # checked with the options
        return PostgresPartitionStore(options.dsn, engine, partitions, window=window,
                                      schema=options.schema)
    return None


@dataclass
class Part:
    """One partition in a worker's memory: as committed, plus what is not committed yet."""

    entries: dict[str, bytes]
    seen: RecentIds
    version: int
    put: dict[str, bytes] = field(default_factory=dict)
    new_ids: list[str] = field(default_factory=list)


class PartitionedState:
    """An engine's durable state, partition by partition, over a :class:`PartitionStore`."""

    def __init__(self, store: PartitionStore, *, window: int) -> None:
        self.store = store
        self._window = window
        self._parts: dict[int, Part] = {}

    def part(self, partition: int) -> tuple[Part, bool]:
        """The partition, and True when it was (re)loaded from the store just now: first
        use, or another worker committed to it since (then the caller refreshes what it
        derived from the entries)."""
        part = self._parts.get(partition)
        if part is not None:
            if self.store.version(partition) == part.version:
                return part, False
            if part.put or part.new_ids:
                del self._parts[partition]
                raise StaleState(f"state partition {partition} changed under uncommitted work")
        loaded = self.store.load(partition)
        part = self._parts[partition] = Part(
            entries=loaded.entries, seen=RecentIds(self._window, loaded.seen),
            version=loaded.version)
        return part, True

    def commit(self) -> None:
        """Write every partition's uncommitted work; :class:`StaleState` if another worker
        moved one on meanwhile (its work is forgotten: the batch comes again)."""
        for p, part in list(self._parts.items()):
            if not (part.put or part.new_ids):
                continue
            try:
                part.version = self.store.commit(p, entries=part.put, seen=part.new_ids,
                                                 expected=part.version)
            except StaleState:
                del self._parts[p]
                raise
            part.entries.update(part.put)
            part.put, part.new_ids = {}, []

    def rollback(self) -> None:
        """Forget the partitions with uncommitted work; they reload on next use."""
        for p, part in list(self._parts.items()):
            if part.put or part.new_ids:
                del self._parts[p]

    def close(self) -> None:
        self.store.close()


def commit_on_beat(durable: PartitionedState | None, engine: str) -> None:
    """The beat's commit (on the local bus nothing else commits); a partition another
    worker moved on meanwhile is left to it: the batch comes again there."""
    if durable is None:
        return
    try:
        durable.commit()
    except StaleState:
        log.info("engine %s: another worker moved a partition on; its work is dropped", engine)
