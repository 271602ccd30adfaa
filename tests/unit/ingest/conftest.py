"""An app over a real embedded archive with tokens, for the ecosystem routes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from watchkeeper.api import create_app
from watchkeeper.archive.backends.embedded import EmbeddedArchive
from watchkeeper.archive.tokens import SqliteTokenStore
from watchkeeper.clock import FakeClock
from watchkeeper.telemetry import SelfMetrics


@dataclass
class Served:
    http: httpx.AsyncClient
    archive: EmbeddedArchive
    writer: str
    reader: str


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[Served]:
    async with AsyncExitStack() as stack:
        archive = EmbeddedArchive(data_dir=tmp_path / "data", options=EmbeddedArchive.Options(),
                                  clock=FakeClock(), metrics=SelfMetrics())
        await archive.start(stack)
        tokens = SqliteTokenStore(tmp_path / "data")
        await tokens.start(stack)
        writer = await tokens.create("prom", write=True, now=1)
        reader = await tokens.create("grafana", write=False, now=1)
        app = create_app(archive, metrics=archive.metrics, tokens=tokens)
        http = await stack.enter_async_context(httpx.AsyncClient(
            base_url="http://wk", transport=httpx.ASGITransport(app=app)))
        yield Served(http=http, archive=archive, writer=writer, reader=reader)
