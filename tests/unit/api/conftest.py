"""The archive every API test serves: in memory, on a fake clock."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path

import pytest

from watchkeeper.archive.backends.memory import MemoryArchive
from watchkeeper.clock import FakeClock
from watchkeeper.telemetry import SelfMetrics


@pytest.fixture
async def archive(tmp_path: Path) -> AsyncIterator[MemoryArchive]:
    async with AsyncExitStack() as stack:
        store = MemoryArchive(data_dir=tmp_path, options=MemoryArchive.Options(),
                              clock=FakeClock(), metrics=SelfMetrics())
        await store.start(stack)
        yield store
