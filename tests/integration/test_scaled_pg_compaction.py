"""The PostgreSQL archive compacts its ingest log by itself, and never at start-up's cost.

A bulk load of short series (no series fills a chunk, so size never triggers a
compaction) is left in the log by a server killed with SIGKILL. A new server starts while
this test holds every shard's compaction lock: it must answer (exact reads included)
with the backlog still there, then drain it once the locks go, and drain what it is sent
later, by age, vacuuming what it compacted.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import psycopg
import pytest

from tests.integration import scaled_servers as scaled

pytestmark = [pytest.mark.slow, pytest.mark.external_service]

SERIES = 200
POINTS = 30
START = 1_700_000_000


def _load(url: str, token: str, first: int) -> None:
    """POINTS points of SERIES series, one request per round, from round ``first``."""
    with httpx.Client(base_url=url, headers={"Authorization": f"Token {token}"},
                      timeout=30) as client:
        for r in range(first, first + POINTS):
            points = [[f"dev{i}/load/value", START + 10 * r, float(i + r)]
                      for i in range(SERIES)]
            assert client.post("/api/v1/write", json={"points": points}).status_code == 201


def _read(url: str, series: int) -> list[list[float]]:
    response = httpx.get(f"{url}/api/v1/query", params={
        "series": f"dev{series}/load/value", "start": START, "end": START + 10**6})
    assert response.status_code == 200
    points: list[list[float]] = response.json()["points"]
    return points


def _scalar(db: scaled.Database, query: str) -> int:
    with psycopg.connect(scaled.PG_DSN, autocommit=True) as conn:
        conn.execute("SELECT pg_stat_clear_snapshot()")
        row = conn.execute(query.format(s=db.archive_schema)).fetchone()
    return int(row[0]) if row and row[0] is not None else 0


def _until(condition: Callable[[], bool], what: str, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s: {what}")
        time.sleep(0.2)


def test_restart_answers_before_compacting_and_the_log_drains_by_itself(
        tmp_path: Path) -> None:
    """Start-up does not wait for the backlog; the backlog, and later writes, drain to
    zero by age; the log table is vacuumed after."""
    with scaled.database() as db:
        slow = db.config(tmp_path / "slow.json", tmp_path / "a", compact_after=3600)
        loader = scaled.launch(slow)
        try:
            scaled.wait_ready(loader)
            token = scaled.token(slow)
            _load(loader.url, token, 0)
        finally:
            loader.proc.send_signal(signal.SIGKILL)  # no compaction at close either
            loader.stop()
        backlog = "SELECT count(*) FROM {s}.ingest_log"
        assert _scalar(db, backlog) > 0

        with psycopg.connect(scaled.PG_DSN, autocommit=True) as locks:
            # The archive's compaction lock of every shard: nothing can be compacted.
            locks.execute("SELECT pg_advisory_lock(hashtext(%s), s) FROM"
                          " generate_series(0, 63) AS s", (db.archive_schema,))
            server = scaled.launch(db.config(tmp_path / "b.json", tmp_path / "b",
                                             compact_after=0.5))
            try:
                scaled.wait_ready(server)
                assert _scalar(db, backlog) > 0
                assert [p[1] for p in _read(server.url, 7)] == [7.0 + r for r in range(POINTS)]
                locks.execute("SELECT pg_advisory_unlock_all()")
                _until(lambda: _scalar(db, backlog) == 0, "the backlog drained")
                _load(server.url, token, POINTS)
                _until(lambda: _scalar(db, backlog) == 0, "the later writes drained")
                _until(lambda: _scalar(db, "SELECT vacuum_count FROM pg_stat_user_tables"
                                           " WHERE schemaname = '{s}'"
                                           " AND relname = 'ingest_log'") > 0,
                       "the log was vacuumed")
                assert [p[1] for p in _read(server.url, 7)] == [
                    7.0 + r for r in range(2 * POINTS)]
            finally:
                server.stop()
