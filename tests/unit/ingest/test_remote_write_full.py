"""Remote write into a full disk: 507 (Prometheus retries it), nothing refused is kept."""

from __future__ import annotations

import contextlib
from contextlib import AsyncExitStack
from pathlib import Path

import httpx

from tests.unit.api.test_storage_full import small_disk  # noqa: F401 - the fixture
from tests.unit.ingest.test_remote_write import payload
from watchkeeper.api import create_app
from watchkeeper.archive.backends.embedded import EmbeddedArchive
from watchkeeper.clock import SystemClock
from watchkeeper.errors import ArchiveError
from watchkeeper.model import SeriesKey
from watchkeeper.telemetry import SelfMetrics


async def test_full_disk_is_507(small_disk: Path) -> None:  # noqa: F811
    """Requests of new series until the 1 MiB disk is full: the refusal is 507, and
    every acknowledged request reads back."""
    acknowledged: list[int] = []
    status = 0
    with contextlib.suppress(ArchiveError):  # closing on a full disk may fail to compact
        async with AsyncExitStack() as stack:
            archive = EmbeddedArchive(data_dir=small_disk / "data",
                                      options=EmbeddedArchive.Options(), clock=SystemClock(),
                                      metrics=SelfMetrics())
            await archive.start(stack)
            app = create_app(archive, metrics=archive.metrics)
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                         base_url="http://wk") as client:
                pad = "x" * 200
                for i in range(400):
                    labels = [("__name__", "m"), ("batch", str(i)), ("pad", pad)]
                    body = payload(*[([*labels, ("s", str(k))], [(1_700_000_000_000 + t, 1.0)
                                                                 for t in range(50)])
                                     for k in range(20)])
                    response = await client.post("/prometheus/api/v1/write", content=body)
                    status = response.status_code
                    if status != 204:
                        break
                    acknowledged.append(i)
                assert status == 507
                for i in acknowledged[-3:]:
                    key = SeriesKey.parse(
                        f'prometheus/prometheus/m{{batch="{i}",pad="{pad}",s="0"}}')
                    assert len(await archive.read(key, 0, 2e9)) == 50
