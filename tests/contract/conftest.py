"""Archive fixtures: every backend behind one parametrized ``archive`` fixture.

To run the contract suite against another backend, add one line to ``BACKENDS``
(mark it ``external_service`` when it needs a server).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from watchkeeper.archive import Archive
from watchkeeper.archive.backends.embedded import EmbeddedArchive
from watchkeeper.archive.backends.memory import MemoryArchive
from watchkeeper.clock import FakeClock
from watchkeeper.telemetry import SelfMetrics


@dataclass(frozen=True)
class Backend:
    """A backend under test, and what the suite may expect of it."""

    cls: type[Archive]
    durable: bool = True  # keeps its data across instances on the same data_dir


BACKENDS = [
    pytest.param(Backend(MemoryArchive, durable=False), id="memory"),
    pytest.param(Backend(EmbeddedArchive), id="embedded"),
]

OpenArchive = Callable[..., AbstractAsyncContextManager[Archive]]


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> Backend:
    param: Backend = request.param
    return param


@pytest.fixture
def open_archive(backend: Backend, tmp_path: Path) -> OpenArchive:
    """Open (and on exit close) an instance of the backend on this test's data_dir."""

    @asynccontextmanager
    async def open_(**options: Any) -> AsyncIterator[Archive]:
        async with AsyncExitStack() as stack:
            archive = backend.cls(
                data_dir=tmp_path,
                options=backend.cls.Options(**options),
                clock=FakeClock(),
                metrics=SelfMetrics(),
            )
            await archive.start(stack)
            yield archive

    return open_


@pytest.fixture
async def archive(open_archive: OpenArchive) -> AsyncIterator[Archive]:
    async with open_archive() as opened:
        yield opened
