"""Alarm state in PostgreSQL: one store shared by the engine's workers on every host.

The same model as the SQLite store (:mod:`.store`), in tables keyed by engine name and
``layout`` (the partition count, so changing ``partitions`` starts a fresh layout):

- ``alarm_partitions``: each partition's version (grows with every commit) and the
  sequence number of its last remembered event id. A commit moves the partition's row on
  only from the version it computed from (a conditional ``UPDATE``, whose row lock
  holds to the commit), else :class:`StaleState`: the same optimistic rule as SQLite's,
  across hosts.
- ``alarm_tracks``: each entity's track (its open alarm without the steps).
- ``alarm_steps``: the append-only step log, by alarm id and index.
- ``alarm_resolved``: closed alarms (their steps stay in ``alarm_steps``).
- ``alarm_seen``: the ids of the last ``dedup_window`` events applied per partition, so
  a batch redelivered to a worker on another host is recognised.
"""

from __future__ import annotations

from typing import Any

import msgspec

from watchkeeper.pipeline.engines.alarms.model import Alarm, Step, Track
from watchkeeper.pipeline.engines.alarms.store import Changes, Loaded, StaleState, without_steps
from watchkeeper.pipeline.pgconnect import PgConnection, bump

_encoder = msgspec.msgpack.Encoder()
_track = msgspec.msgpack.Decoder(Track)
_alarm = msgspec.msgpack.Decoder(Alarm)
_step = msgspec.msgpack.Decoder(Step)

_DDL = """
CREATE SCHEMA IF NOT EXISTS {schema};
CREATE TABLE IF NOT EXISTS {schema}.alarm_partitions (
    engine text NOT NULL, layout integer NOT NULL, part integer NOT NULL,
    version bigint NOT NULL DEFAULT 0, seen_seq bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (engine, layout, part));
CREATE TABLE IF NOT EXISTS {schema}.alarm_tracks (
    engine text NOT NULL, layout integer NOT NULL, part integer NOT NULL,
    entity_id text NOT NULL, doc bytea NOT NULL,
    PRIMARY KEY (engine, layout, part, entity_id));
CREATE TABLE IF NOT EXISTS {schema}.alarm_steps (
    engine text NOT NULL, layout integer NOT NULL, alarm_id text NOT NULL,
    idx integer NOT NULL, doc bytea NOT NULL,
    PRIMARY KEY (engine, layout, alarm_id, idx));
CREATE TABLE IF NOT EXISTS {schema}.alarm_resolved (
    engine text NOT NULL, layout integer NOT NULL, alarm_id text NOT NULL,
    entity_id text NOT NULL, at double precision NOT NULL, doc bytea NOT NULL,
    PRIMARY KEY (engine, layout, alarm_id));
CREATE INDEX IF NOT EXISTS alarm_resolved_by_entity
    ON {schema}.alarm_resolved (engine, layout, entity_id, at);
CREATE TABLE IF NOT EXISTS {schema}.alarm_seen (
    engine text NOT NULL, layout integer NOT NULL, part integer NOT NULL,
    seq bigint NOT NULL, id text NOT NULL,
    PRIMARY KEY (engine, layout, part, seq));
"""


class PostgresStore:
    """The alarm state of engine ``engine`` with ``partitions`` partitions, in ``schema``."""

    def __init__(self, dsn: str, engine: str, partitions: int, *, dedup_window: int,
                 schema: str = "watchkeeper") -> None:
        self._pg = PgConnection(dsn, schema=schema, purpose=f"alarm store {engine}",
                                ddl=_DDL)
        self._key = (engine, partitions)
        self._partitions = partitions
        self._window = dedup_window
        self._s = schema

    def load(self, partition: int) -> Loaded:
        conn = self._pg.get()
        s, key = self._s, (*self._key, partition)
        with conn.transaction():  # one snapshot: tracks, steps and version agree
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            tracks: dict[str, Track] = {}
            for (doc,) in conn.execute(f"SELECT doc FROM {s}.alarm_tracks "  # noqa: S608
                                       "WHERE engine = %s AND layout = %s AND part = %s", key):
                track = _track.decode(doc)
                tracks[track.entity_id] = track
            open_ids = [t.alarm.id for t in tracks.values() if t.alarm is not None]
            steps: dict[str, list[Step]] = {}
            if open_ids:
                for alarm_id, doc in conn.execute(
                        f"SELECT alarm_id, doc FROM {s}.alarm_steps "  # noqa: S608
                        "WHERE engine = %s AND layout = %s AND alarm_id = ANY(%s) "
                        "ORDER BY alarm_id, idx", (*self._key, open_ids)):
                    steps.setdefault(alarm_id, []).append(_step.decode(doc))
            for track in tracks.values():
                if track.alarm is not None:
                    track.alarm.steps = steps.get(track.alarm.id, [])
            seen = [row[0] for row in conn.execute(
                f"SELECT id FROM {s}.alarm_seen "  # noqa: S608
                "WHERE engine = %s AND layout = %s AND part = %s "
                "ORDER BY seq DESC LIMIT %s", (*key, self._window))]
            seen.reverse()
            version = self._version(conn, partition)
        return Loaded(tracks=tracks, seen=seen, version=version)

    def version(self, partition: int) -> int:
        return self._version(self._pg.get(), partition)

    def _version(self, conn: Any, partition: int) -> int:
        row = conn.execute(f"SELECT version FROM {self._s}.alarm_partitions "  # noqa: S608
                           "WHERE engine = %s AND layout = %s AND part = %s",
                           (*self._key, partition)).fetchone()
        return int(row[0]) if row else 0

    def commit(self, partition: int, changes: Changes, *, expected: int) -> int:
        conn = self._pg.get()
        with conn.transaction():
            seq = bump(conn, f"{self._s}.alarm_partitions", (*self._key, partition),
                        expected, len(changes.seen))
            if seq is None:
                raise StaleState(f"alarm partition {partition} changed since it was loaded")
            with conn.pipeline():  # the writes go out together: one round trip, not one each
                self._write(conn, (*self._key, partition), changes, seq)
        return expected + 1

    def _write(self, conn: Any, key: tuple[str, int, int], changes: Changes, seq: int) -> None:
        s = self._s
        # one statement per table over arrays (%b: sent binary, nothing to escape)
        if changes.tracks:
            conn.execute(
                f"INSERT INTO {s}.alarm_tracks (engine, layout, part, entity_id, doc) "  # noqa: S608
                "SELECT %s, %s, %s, e, d FROM unnest(%b::text[], %b::bytea[]) AS u(e, d) "
                "ON CONFLICT (engine, layout, part, entity_id) DO UPDATE SET doc = EXCLUDED.doc",
                (*key, [t.entity_id for t in changes.tracks],
                 [_encoder.encode(without_steps(t)) for t in changes.tracks]))
        if changes.dropped:
            conn.execute(f"DELETE FROM {s}.alarm_tracks WHERE engine = %s "  # noqa: S608
                         "AND layout = %s AND part = %s AND entity_id = ANY(%b::text[])",
                         (*key, changes.dropped))
        if changes.steps:
            conn.execute(
                f"INSERT INTO {s}.alarm_steps (engine, layout, alarm_id, idx, doc) "  # noqa: S608
                "SELECT %s, %s, a, i, d FROM unnest(%b::text[], %b::int4[], %b::bytea[]) "
                "AS u(a, i, d) ON CONFLICT (engine, layout, alarm_id, idx) "
                "DO UPDATE SET doc = EXCLUDED.doc",
                (*self._key, [a for a, _, _ in changes.steps],
                 [i for _, i, _ in changes.steps],
                 [_encoder.encode(step) for _, _, step in changes.steps]))
        if changes.closed:
            conn.execute(
                f"INSERT INTO {s}.alarm_resolved "  # noqa: S608
                "(engine, layout, alarm_id, entity_id, at, doc) "
                "SELECT %s, %s, a, e, t, d "
                "FROM unnest(%b::text[], %b::text[], %b::float8[], %b::bytea[]) AS u(a, e, t, d) "
                "ON CONFLICT (engine, layout, alarm_id) DO UPDATE SET doc = EXCLUDED.doc, "
                "at = EXCLUDED.at",
                (*self._key, [a.id for a in changes.closed],
                 [a.entity_id for a in changes.closed],
                 [float(a.resolved or 0.0) for a in changes.closed],
                 [_encoder.encode(msgspec.structs.replace(a, steps=[])) for a in changes.closed]))
        if changes.seen:
            conn.execute(
                f"INSERT INTO {s}.alarm_seen (engine, layout, part, seq, id) "  # noqa: S608
                "SELECT %s, %s, %s, %s + n, id FROM unnest(%b::text[]) WITH ORDINALITY "
                "AS u(id, n)", (*key, seq, changes.seen))
            conn.execute(f"DELETE FROM {s}.alarm_seen WHERE engine = %s "  # noqa: S608
                         "AND layout = %s AND part = %s AND seq <= %s",
                         (*key, seq + len(changes.seen) - self._window))

    def resolved(self, entity_id: str | None, limit: int) -> list[Alarm]:
        conn = self._pg.get()
        s = self._s
        where = "engine = %s AND layout = %s"
        params: tuple[Any, ...] = self._key
        if entity_id is not None:
            where += " AND entity_id = %s"
            params = (*params, entity_id)
        found: list[Alarm] = []
        rows = conn.execute(f"SELECT doc FROM {s}.alarm_resolved WHERE {where} "  # noqa: S608
                            "ORDER BY at DESC LIMIT %s", (*params, limit)).fetchall()
        for (doc,) in rows:
            alarm = _alarm.decode(doc)
            alarm.steps = [_step.decode(d) for (d,) in conn.execute(
                f"SELECT doc FROM {s}.alarm_steps WHERE engine = %s "  # noqa: S608
                "AND layout = %s AND alarm_id = %s ORDER BY idx", (*self._key, alarm.id))]
            found.append(alarm)
        return found

    def close(self) -> None:
        self._pg.close()
