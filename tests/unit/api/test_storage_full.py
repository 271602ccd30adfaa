"""A full disk is 507 with no server path in the answer, and nothing refused is kept.

The disk is real: a 1 MiB tmpfs mounted for the test (root only; skipped otherwise), under
the embedded archive, so the error comes up SQLite's own ``SQLITE_FULL`` path.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import AsyncExitStack
from pathlib import Path

import httpx
import pytest

from watchkeeper.api import create_app
from watchkeeper.api.errors import scrub_paths, storage_full
from watchkeeper.archive.backends.embedded import EmbeddedArchive
from watchkeeper.clock import SystemClock
from watchkeeper.errors import ArchiveError
from watchkeeper.telemetry import SelfMetrics

POINTS = 2000


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a small tmpfs needs root")
    where = tmp_path / "small"
    where.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(where)],
                             capture_output=True, check=False)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


async def test_full_disk_is_507_and_keeps_what_it_acknowledged(small_disk: Path) -> None:
    """Write until the disk is full: the refusal is 507 naming no path; every
    acknowledged series reads back whole and the refused one is not there."""
    acknowledged: list[str] = []
    refused: httpx.Response | None = None
    with contextlib.suppress(ArchiveError):  # closing on a full disk may fail to compact
        async with AsyncExitStack() as stack:
            archive = EmbeddedArchive(data_dir=small_disk / "data",
                                      options=EmbeddedArchive.Options(), clock=SystemClock(),
                                      metrics=SelfMetrics())
            await archive.start(stack)
            app = create_app(archive, metrics=archive.metrics)
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                         base_url="http://wk") as client:
                for i in range(200):
                    series = f"host{i}/p/m"
                    response = await client.post("/api/v1/write", json={
                        "points": [[series, 1.7e9 + k, float(k)] for k in range(POINTS)]})
                    if response.status_code != 201:
                        refused = response
                        break
                    acknowledged.append(series)
                assert refused is not None, "the disk never filled"
                assert refused.status_code == 507
                detail = refused.json()["detail"]
                assert "storage is full" in detail
                assert str(small_disk) not in refused.text
                assert "/tmp" not in refused.text
                assert acknowledged
                for series in acknowledged:
                    read = await client.get("/api/v1/query", params={
                        "series": series, "start": "0", "end": "2e9"})
                    assert read.status_code == 200
                    assert len(read.json()["points"]) == POINTS
                gone = await client.get("/api/v1/query", params={
                    "series": f"host{len(acknowledged)}/p/m", "start": "0", "end": "2e9"})
                assert gone.status_code == 404 or gone.json()["points"] == []


def test_storage_full_follows_the_cause_chain() -> None:
    """SQLITE_FULL, ENOSPC and PostgreSQL's disk_full are recognised through causes."""
    import errno
    import sqlite3

    full = sqlite3.OperationalError("database or disk is full")
    full.sqlite_errorcode = sqlite3.SQLITE_FULL
    wrapped = ArchiveError("x")
    wrapped.__cause__ = full
    assert storage_full(wrapped)
    assert storage_full(OSError(errno.ENOSPC, "No space left on device"))
    disk_full = Exception("pg")
    disk_full.sqlstate = "53100"  # type: ignore[attr-defined]
    assert storage_full(disk_full)
    assert not storage_full(ArchiveError("something else"))


def test_scrub_paths_keeps_url_paths() -> None:
    """Server paths go, URL paths stay."""
    assert scrub_paths("/var/lib/wk/archive.sqlite3: disk I/O error") == (
        "<path>: disk I/O error")
    assert scrub_paths("see /api/v1/write and /esmond/perfsonar/archive/") == (
        "see /api/v1/write and /esmond/perfsonar/archive/")
