"""What the token middleware costs per request, with and without the revocation read.

    python benchmarks/token_auth.py [--requests 20000 --runs 5 --dsn "host=127.0.0.1 ..."]

``TokenAuth`` over an app that answers at once, called directly (no HTTP), with a key it
has cached, on the SQLite store and (with PostgreSQL running) on a schema of its own that
is dropped after. "cache only" gives the middleware a store whose revision costs nothing:
the cost of the key cache alone, as before D25; "revision read" is the real store.
Reported: microseconds per request, the median of ``--runs``, one request at a time and
16 concurrent.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
import uuid
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

from watchkeeper.api.auth import TokenAuth
from watchkeeper.archive.tokens import PostgresTokenStore, SqliteTokenStore, TokenStore


class FreeRevision:
    """The store, except that the revision is never read (the key cache alone)."""

    def __init__(self, inner: TokenStore) -> None:
        self._inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    async def revision(self) -> int:
        return 0


async def ok(scope: Any, receive: Any, send: Any) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


async def per_request(auth: TokenAuth, key: str, requests: int, concurrency: int) -> float:
    scope = {"type": "http", "path": "/api/v1/write", "method": "POST",
             "headers": [(b"authorization", f"Token {key}".encode())]}

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b""}

    async def send(message: Any) -> None:
        return None

    async def worker(count: int) -> None:
        for _ in range(count):
            await auth(dict(scope), receive, send)

    await worker(50)  # warm: the key is cached, last use written
    started = time.perf_counter()
    await asyncio.gather(*(worker(requests // concurrency) for _ in range(concurrency)))
    return (time.perf_counter() - started) / requests * 1e6


async def measure(name: str, store: TokenStore, args: argparse.Namespace) -> None:
    key = await store.create("bench", write=True, now=int(time.time()))
    for concurrency in (1, 16):
        result = {}
        for label, used in (("cache only", FreeRevision(store)), ("revision read", store)):
            runs = [await per_request(TokenAuth(ok, used), key, args.requests,  # type: ignore[arg-type]
                                      concurrency) for _ in range(args.runs)]
            result[label] = statistics.median(runs)
        print(f"{name:10} concurrency {concurrency:2}: "
              + ", ".join(f"{label} {us:.1f} µs" for label, us in result.items()))


async def main(args: argparse.Namespace) -> None:
    async with AsyncExitStack() as stack:
        sqlite = SqliteTokenStore(Path(stack.enter_context(tempfile.TemporaryDirectory())))
        await sqlite.start(stack)
        await measure("SQLite", sqlite, args)
    try:
        import psycopg
    except ImportError:
        return
    schema = f"bench_tokens_{uuid.uuid4().hex[:8]}"
    try:
        async with AsyncExitStack() as stack:
            postgres = PostgresTokenStore(args.dsn, schema=schema)
            await postgres.start(stack)
            await measure("PostgreSQL", postgres, args)
    finally:
        with psycopg.connect(args.dsn, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--dsn", default="host=127.0.0.1 user=postgres dbname=watchkeeper_test")
    asyncio.run(main(parser.parse_args()))
