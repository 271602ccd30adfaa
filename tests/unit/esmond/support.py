"""Shared by the esmond tests: test-data paths, and a full app over real stores.

The esmond test data lives in ``tests/data/esmond`` (its README names each file's origin).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from starlette.applications import Starlette

from tests.support.data import ESMOND
from watchkeeper.api import create_app
from watchkeeper.archive import Archive
from watchkeeper.archive.backends.embedded import EmbeddedArchive
from watchkeeper.archive.backends.memory import MemoryArchive
from watchkeeper.archive.esmond import EsmondArchive, MetadataStore
from watchkeeper.archive.esmond.fixtures import load_fixture, load_test_data
from watchkeeper.archive.esmond.sqlite import SqliteMetadataStore
from watchkeeper.archive.tokens import SqliteTokenStore, TokenStore
from watchkeeper.clock import FakeClock
from watchkeeper.telemetry import SelfMetrics

TESTDATA = ESMOND
UPSTREAM = TESTDATA / "upstream"
CAPTURED = TESTDATA / "captured"

NOW = 1_398_990_000  # 2014-05-02 00:20 UTC: inside the captured scenarios' time windows


def read_json(path: Path) -> Any:
    return json.loads(path.read_text())


@dataclass
class Stack:
    """A running app and what it is made of."""

    app: Starlette
    esmond: EsmondArchive
    archive: Archive
    metadata: MetadataStore
    tokens: TokenStore
    clock: FakeClock
    write_key: str
    read_key: str

    def client(self, *, auth: str | None = "write") -> httpx.AsyncClient:
        headers = {}
        if auth == "write":
            headers["Authorization"] = f"Token {self.write_key}"
        elif auth == "read":
            headers["Authorization"] = f"Token {self.read_key}"
        return httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app),
                                 base_url="http://testserver", headers=headers)


Resolver = Callable[[str, int], Any]


@asynccontextmanager
async def running(tmp_path: Path, *, durable: bool = False, public_reads: bool = True,
                  metadata: MetadataStore | None = None, tokens: TokenStore | None = None,
                  resolver: Any = None, max_body_bytes: int = 1_000_000,
                  now: float = NOW) -> AsyncIterator[Stack]:
    """Archive, metadata and token stores, the esmond archive and the app, all started."""
    clock = FakeClock(now)
    async with AsyncExitStack() as stack:
        cls: type[Archive] = EmbeddedArchive if durable else MemoryArchive
        archive = cls(data_dir=tmp_path, options=cls.Options(), clock=clock,
                      metrics=SelfMetrics())
        await archive.start(stack)
        metadata = metadata or SqliteMetadataStore(tmp_path)
        await metadata.start(stack)
        tokens = tokens or SqliteTokenStore(tmp_path)
        await tokens.start(stack)
        esmond = EsmondArchive(metadata=metadata, archive=archive, clock=clock)
        await esmond.start(stack)
        write_key = await tokens.create("admin", write=True, now=NOW)
        read_key = await tokens.create("reader", write=False, now=NOW)
        app = create_app(archive, metrics=archive.metrics, max_body_bytes=max_body_bytes,
                         esmond=esmond, tokens=tokens, public_reads=public_reads)
        if resolver is not None:
            _set_resolver(app, resolver)
        yield Stack(app, esmond, archive, metadata, tokens, clock, write_key, read_key)


def _set_resolver(app: Starlette, resolver: Any) -> None:
    for route in app.routes:
        endpoint = getattr(route, "endpoint", None)
        api = getattr(endpoint, "__self__", None)
        if api is not None and hasattr(api, "resolve"):
            api.resolve = resolver


async def load_upstream(esmond: EsmondArchive, *, api_fixture: bool = True,
                        client_fixture: bool = True, test_data: bool = True) -> None:
    """esmond's fixtures and test data, loaded as esmond's own tests load them."""
    fixtures = UPSTREAM / "fixtures"
    if api_fixture:
        await load_fixture(esmond, read_json(fixtures / "perfsonar_api_metadata.json"))
    if client_fixture:
        await load_fixture(esmond, read_json(fixtures / "perfsonar_client_metadata.json"))
    if test_data:
        for path in sorted((UPSTREAM / "test_data").glob("*.json")):
            await load_test_data(esmond, read_json(path))
