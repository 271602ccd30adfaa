"""Archive.read_many, which PromQL reads selectors' series with: every key in order, None
for an unknown one, in the embedded archive's one trip and in the default loop."""

from __future__ import annotations

from contextlib import AsyncExitStack
from pathlib import Path

import pytest

from watchkeeper.archive import Archive
from watchkeeper.archive.backends.embedded import EmbeddedArchive
from watchkeeper.archive.backends.memory import MemoryArchive
from watchkeeper.clock import FakeClock
from watchkeeper.model import Measurement, SeriesKey
from watchkeeper.telemetry import SelfMetrics


@pytest.mark.parametrize("backend", [EmbeddedArchive, MemoryArchive])
async def test_read_many_answers_each_key_in_order(tmp_path: Path,
                                                   backend: type[Archive]) -> None:
    async with AsyncExitStack() as stack:
        archive = backend(data_dir=tmp_path, options=backend.Options(), clock=FakeClock(),
                          metrics=SelfMetrics())
        await archive.start(stack)
        a, b = SeriesKey.parse("h/p/a"), SeriesKey.parse("h/p/b")
        await archive.write([Measurement(key=a, ts=10.0, value=1.0),
                             Measurement(key=a, ts=20.0, value=2.0),
                             Measurement(key=b, ts=15.0, value=5.0)])
        got = await archive.read_many([b, SeriesKey.parse("h/p/nope"), a], 12.0, 20.0)
        assert [None if p is None else p.values.tolist() for p in got] == [[5.0], None, [2.0]]
