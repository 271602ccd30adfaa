"""Connections to PostgreSQL for engine state shared between hosts (`watchkeeper[postgres]`).

One synchronous psycopg connection per store, opened on first use and opened again after
it broke (the batch that found it broken fails and is redelivered). DDL runs under a
transaction-scoped advisory lock, so workers starting at once do not race creating
the same tables.
"""

from __future__ import annotations

from typing import Any

from watchkeeper.errors import PipelineError

DEFAULT_DSN = "host=127.0.0.1 user=postgres dbname=watchkeeper_test"
"""The database of ``scripts/services up``; a deployment names its own."""


def redact_dsn(dsn: str) -> str:
    """The DSN without its password, for messages."""
    try:
        from psycopg.conninfo import conninfo_to_dict, make_conninfo

        parts = conninfo_to_dict(dsn)
    except Exception:  # noqa: BLE001 - unparseable: say nothing of it
        return "<dsn>"
    if "password" in parts:
        parts["password"] = "***"  # noqa: S105 - a mask, not a password
    return make_conninfo(**{k: str(v) for k, v in parts.items()})


class PgConnection:
    """A lazily (re)opened connection in autocommit mode, with one schema set up once."""

    def __init__(self, dsn: str, *, schema: str, purpose: str, ddl: str) -> None:
        if not schema.isidentifier():
            raise PipelineError(f"PostgreSQL schema {schema!r} for {purpose}: expected a "
                                "plain identifier (letters, digits, _)")
        self.dsn = dsn
        self.schema = schema
        self._purpose = purpose
        self._ddl = ddl
        self._conn: Any = None

    def get(self) -> Any:
        """The open connection (``psycopg.Connection``)."""
        conn = self._conn
        if conn is not None and not conn.closed and not conn.broken:
            return conn
        try:
            import psycopg
        except ImportError:
            raise PipelineError(f"{self._purpose} on PostgreSQL needs psycopg: "
                                "pip install 'watchkeeper[postgres]'") from None
        try:
            conn = psycopg.connect(self.dsn, autocommit=True, connect_timeout=10,
                                   application_name=f"watchkeeper:{self._purpose}"[:63])
            with conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(hashtext('watchkeeper.state.ddl'))")
                conn.execute(self._ddl.format(schema=self.schema))
        except psycopg.Error as exc:
            raise PipelineError(f"{self._purpose}: cannot use PostgreSQL at "
                                f"{redact_dsn(self.dsn)}: {exc}".strip()) from None
        self._conn = conn
        return conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
        self._conn = None


def bump(conn: Any, table: str, key: tuple[str, int, int], expected: int,
         seen: int) -> int | None:
    """Move a partition row of ``table`` (``engine, layout, part, version, seen_seq``) from
    version ``expected`` to the next, counting ``seen`` more event ids; return the
    sequence number after which those ids go, or None when the partition is not at
    ``expected`` (another worker committed first: the row lock makes the second wait
    and then find the version moved).
    """
    row = conn.execute(f"UPDATE {table} SET version = version + 1, "  # noqa: S608
                       "seen_seq = seen_seq + %s WHERE engine = %s AND layout = %s "
                       "AND part = %s AND version = %s RETURNING seen_seq",
                       (seen, *key, expected)).fetchone()
    if row is None and expected == 0:  # the partition's first commit creates its row
        row = conn.execute(f"INSERT INTO {table} (engine, layout, part, version, seen_seq) "  # noqa: S608
                           "VALUES (%s, %s, %s, 1, %s) ON CONFLICT DO NOTHING "
                           "RETURNING seen_seq", (*key, seen)).fetchone()
    return None if row is None else int(row[0]) - seen
