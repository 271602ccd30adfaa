"""A bounded, ordered, durable queue of encoded results: one SQLite file in the spool dir.

Results are appended in poll order and read back oldest first; only an acknowledged batch
is removed, so a crash or a lost answer never loses anything (the server recognises a
re-sent batch by its ``seq``). Beyond ``max_items`` the *oldest* results are dropped and
counted; the count is persisted and travels with every batch so the loss is reported.

``epoch`` is a random id made with the file: a new spool is a new sender to the server,
whose sequence numbers start again. Methods block briefly (SQLite in WAL mode); call them
through ``asyncio.to_thread``: a lock makes that safe.
"""

from __future__ import annotations

import sqlite3
import threading
import uuid
from collections.abc import Sequence
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS results (seq INTEGER PRIMARY KEY AUTOINCREMENT, body BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


class Spool:
    """Oldest-first queue of ``bytes`` with a bound; ``open`` before use, ``close`` after."""

    def __init__(self, path: Path, *, max_items: int = 100_000) -> None:
        if max_items < 1:
            raise ValueError("a spool holds at least one result")
        self.path = path
        self.max_items = max_items
        self._db: sqlite3.Connection | None = None
        self._lock = threading.Lock()
        self._count = 0
        self.dropped = 0
        self.epoch = ""

    def open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")  # survives a process crash; WAL keeps order
        db.executescript(SCHEMA)
        with self._lock:
            self._db = db
            meta = dict(db.execute("SELECT key, value FROM meta").fetchall())
            if "epoch" not in meta:
                meta["epoch"] = uuid.uuid4().hex[:12]
                db.execute("INSERT INTO meta VALUES ('epoch', ?)", (meta["epoch"],))
            self.epoch = meta["epoch"]
            self.dropped = int(meta.get("dropped", 0))
            self._count = db.execute("SELECT COUNT(*) FROM results").fetchone()[0]

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None

    def __len__(self) -> int:
        return self._count

    def append(self, items: Sequence[bytes]) -> int:
        """Add ``items`` at the end; returns how many of the oldest had to be dropped."""
        if not items:
            return 0
        with self._lock:
            db = self._need()
            db.execute("BEGIN IMMEDIATE")
            try:
                db.executemany("INSERT INTO results (body) VALUES (?)", [(i,) for i in items])
                excess = self._count + len(items) - self.max_items
                if excess > 0:
                    db.execute("DELETE FROM results WHERE seq IN "
                               "(SELECT seq FROM results ORDER BY seq LIMIT ?)", (excess,))
                    db.execute("INSERT OR REPLACE INTO meta VALUES ('dropped', ?)",
                               (str(self.dropped + excess),))
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
            excess = max(excess, 0)
            self.dropped += excess
            self._count += len(items) - excess
            return excess

    def peek(self, limit: int) -> list[tuple[int, bytes]]:
        """Up to ``limit`` oldest ``(seq, body)``, left in place."""
        with self._lock:
            rows = self._need().execute(
                "SELECT seq, body FROM results ORDER BY seq LIMIT ?", (limit,)).fetchall()
        return [(int(seq), bytes(body)) for seq, body in rows]

    def remove_through(self, seq: int) -> None:
        """Forget every result up to and including ``seq`` (they were delivered)."""
        with self._lock:
            cur = self._need().execute("DELETE FROM results WHERE seq <= ?", (seq,))
            self._count -= cur.rowcount

    def _need(self) -> sqlite3.Connection:
        if self._db is None:
            raise RuntimeError("the spool is not open")
        return self._db
