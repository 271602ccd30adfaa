"""The notifier's durable outbox: what is still to be delivered, and what is firing.

One SQLite file in the engine's data directory (in memory when it has none, as in unit
tests). A notification is written here, and committed with ``synchronous=FULL``, before
the engine hands its batch on, so a restart delivers what was not yet delivered.

``pending`` is keyed by target and *step id* (the alarm event's id, ``<alarm>#<n>``):
an event delivered twice by the bus, or re-sent by a Canopsis connector, is one row, so
one notification. ``firing`` remembers, per Alertmanager target and alarm, the alert as
last sent, so it can be re-sent while it holds and resolved when it clears.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import NamedTuple

SCHEMA = """
CREATE TABLE IF NOT EXISTS pending (
    target TEXT NOT NULL,
    step_id TEXT NOT NULL,
    payload BLOB NOT NULL,      -- what the target sends (rendered at enqueue time)
    event BLOB NOT NULL,        -- the event, for the dead letter if delivery never works
    created REAL NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_try REAL NOT NULL,
    last_error TEXT NOT NULL DEFAULT '',
    state TEXT NOT NULL DEFAULT 'pending',   -- pending | delivered | failed
    PRIMARY KEY (target, step_id)
);
CREATE INDEX IF NOT EXISTS pending_due ON pending (state, next_try);
CREATE TABLE IF NOT EXISTS firing (
    target TEXT NOT NULL,
    alarm TEXT NOT NULL,
    alert BLOB NOT NULL,        -- the Alertmanager alert as last sent (JSON)
    PRIMARY KEY (target, alarm)
);
"""


class Pending(NamedTuple):
    """One notification waiting for delivery."""

    target: str
    step_id: str
    payload: bytes
    event: bytes
    attempts: int


class Counts(NamedTuple):
    pending: int
    delivered: int
    failed: int


class Outbox:
    """Pending notifications and firing alerts, durable across restarts."""

    def __init__(self, path: Path | None) -> None:
        self._path = path
        self._db: sqlite3.Connection | None = None

    def open(self) -> None:
        """Open (creating) the file; called on first use, never in the constructor."""
        if self._db is not None:
            return
        if self._path is not None:
            self._path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(":memory:" if self._path is None else str(self._path),
                             isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")  # a notification is promised once committed
        db.executescript(SCHEMA)
        self._db = db

    @property
    def db(self) -> sqlite3.Connection:
        self.open()
        assert self._db is not None
        return self._db

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    def add(self, rows: list[tuple[str, str, bytes, bytes]], *, now: float) -> int:
        """Queue ``(target, step_id, payload, event)`` rows; a step already known (queued,
        delivered or failed) is not queued again. Returns how many were new."""
        before = self.db.total_changes
        with self.db:
            self.db.executemany(
                "INSERT OR IGNORE INTO pending (target, step_id, payload, event, created, "
                "next_try) VALUES (?, ?, ?, ?, ?, ?)",
                [(*row, now, now) for row in rows])
        return self.db.total_changes - before

    def due(self, now: float, limit: int = 500) -> list[Pending]:
        """Pending notifications whose next try has come, oldest first."""
        rows = self.db.execute(
            "SELECT target, step_id, payload, event, attempts FROM pending "
            "WHERE state = 'pending' AND next_try <= ? ORDER BY created, rowid LIMIT ?",
            (now, limit)).fetchall()
        return [Pending(*row) for row in rows]

    def delivered(self, target: str, step_id: str) -> None:
        with self.db:
            self.db.execute("UPDATE pending SET state = 'delivered', payload = x'', "
                            "event = x'' WHERE target = ? AND step_id = ?", (target, step_id))

    def retry(self, target: str, step_id: str, *, next_try: float, error: str) -> None:
        with self.db:
            self.db.execute(
                "UPDATE pending SET attempts = attempts + 1, next_try = ?, last_error = ? "
                "WHERE target = ? AND step_id = ?", (next_try, error, target, step_id))

    def failed(self, target: str, step_id: str, error: str) -> None:
        with self.db:
            self.db.execute(
                "UPDATE pending SET state = 'failed', attempts = attempts + 1, last_error = ? "
                "WHERE target = ? AND step_id = ?", (error, target, step_id))

    def forget_before(self, cutoff: float) -> None:
        """Drop delivered and failed rows older than ``cutoff`` (their ids only guard
        against a redelivery, which comes within minutes, not days)."""
        with self.db:
            self.db.execute("DELETE FROM pending WHERE state != 'pending' AND created < ?",
                            (cutoff,))

    def counts(self) -> Counts:
        rows = dict(self.db.execute("SELECT state, count(*) FROM pending GROUP BY state"))
        return Counts(rows.get("pending", 0), rows.get("delivered", 0), rows.get("failed", 0))

    def firing(self, target: str) -> dict[str, bytes]:
        """The alerts ``target`` holds firing, by alarm id."""
        return dict(self.db.execute("SELECT alarm, alert FROM firing WHERE target = ?",
                                    (target,)))

    def set_firing(self, target: str, alarm: str, alert: bytes | None) -> None:
        """Remember ``alert`` as firing for ``alarm``; None forgets it (resolved)."""
        with self.db:
            if alert is None:
                self.db.execute("DELETE FROM firing WHERE target = ? AND alarm = ?",
                                (target, alarm))
            else:
                self.db.execute("INSERT OR REPLACE INTO firing (target, alarm, alert) "
                                "VALUES (?, ?, ?)", (target, alarm, alert))
