"""Several ``watchkeeper serve`` processes on one PostgreSQL database (the scaled layout).

Each test gets an archive schema and an esmond schema of its own in the database that
``scripts/services up`` starts (or ``WATCHKEEPER_TEST_PG_DSN``); both are dropped after.
Every server has its own data directory and configuration file, as on separate hosts.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.support.serve import free_port

REPO = Path(__file__).resolve().parents[2]
WATCHKEEPER = [sys.executable, "-m", "watchkeeper.cli.main"]
PG_DSN = os.environ.get("WATCHKEEPER_TEST_PG_DSN",
                        "host=127.0.0.1 user=postgres dbname=watchkeeper_test")


@dataclass(frozen=True)
class Database:
    """Where the servers keep their data: an archive schema and an esmond schema."""

    archive_schema: str
    esmond_schema: str

    @property
    def esmond_dsn(self) -> str:
        return f"{PG_DSN} options='-c search_path={self.esmond_schema}'"

    def config(self, path: Path, data_dir: Path, **archive_options: object) -> Path:
        """Write a configuration file for one server on this database (JSON is YAML)."""
        settings = {
            "data_dir": str(data_dir),
            "archive": {"backend": "postgres", "options": {
                "dsn": PG_DSN, "schema": self.archive_schema, **archive_options}},
            "esmond": {"store": "postgres", "dsn": self.esmond_dsn},
        }
        path.write_text(json.dumps(settings))
        return path


@contextmanager
def database() -> Iterator[Database]:
    """Fresh schemas for one test, dropped when it ends."""
    import psycopg

    tag = uuid.uuid4().hex[:12]
    db = Database(archive_schema=f"wk_test_{tag}", esmond_schema=f"esmond_test_{tag}")
    with psycopg.connect(PG_DSN, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{db.esmond_schema}"')
    try:
        yield db
    finally:
        with psycopg.connect(PG_DSN, autocommit=True) as conn:
            for schema in (db.archive_schema, db.esmond_schema):
                conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@dataclass
class Server:
    """One ``watchkeeper serve`` process."""

    url: str
    proc: subprocess.Popen[str]

    def stop(self) -> str:
        """Stop it as an operator does (SIGINT) and return what it wrote to stderr."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        try:
            _, err = self.proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            _, err = self.proc.communicate()
        return err


def launch(config: Path) -> Server:
    """Start a server (not waiting for it: see :func:`wait_ready`)."""
    port = free_port()
    proc = subprocess.Popen(
        [*WATCHKEEPER, "serve", "-c", str(config), "--listen", f"127.0.0.1:{port}",
         "--log-level", "warning"],
        cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"})
    return Server(f"http://127.0.0.1:{port}", proc)


def ready(server: Server) -> bool:
    """Whether the server answers its health check now."""
    try:
        return httpx.get(f"{server.url}/api/v1/health", timeout=1).status_code == 200
    except httpx.TransportError:
        return False


def wait_ready(server: Server, *, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not ready(server):
        if time.monotonic() > deadline or server.proc.poll() is not None:
            raise AssertionError(f"server did not start: {server.stop()}")
        time.sleep(0.05)


@contextmanager
def servers(configs: Sequence[Path]) -> Iterator[list[Server]]:
    """Servers on the given configurations, started one after another, stopped at the end.

    (One after another: the token store's tables are not yet safe to create from two
    processes at once.)
    """
    started: list[Server] = []
    try:
        for config in configs:
            started.append(launch(config))
            wait_ready(started[-1])
        yield started
    finally:
        for server in started:
            server.stop()


def token(config: Path) -> str:
    """A write token created with ``watchkeeper token create`` where the servers read."""
    done = subprocess.run([*WATCHKEEPER, "token", "create", "--user", "test", "--write",
                           "-c", str(config)], cwd=REPO, capture_output=True, text=True,
                          timeout=60, check=True)
    return done.stdout.split()[-1]
