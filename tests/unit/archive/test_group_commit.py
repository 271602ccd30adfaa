"""Group commit in the embedded archive: concurrent writes share one durable commit."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack, contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from watchkeeper.archive.abc import Columns
from watchkeeper.archive.backends._writer import Writer
from watchkeeper.archive.backends.embedded import EmbeddedArchive
from watchkeeper.clock import FakeClock
from watchkeeper.errors import ArchiveError, InvalidData
from watchkeeper.model import Measurement, SeriesKey
from watchkeeper.telemetry import SelfMetrics

T0 = 1_700_000_000.0


def _columns(texts: list[str], ts: float) -> Columns:
    n = len(texts)
    return Columns(series=texts, index=np.arange(n, dtype=np.int32), ts=np.full(n, ts),
                   values=np.arange(n, dtype=np.float64))


async def _open(path: Path, stack: AsyncExitStack) -> EmbeddedArchive:
    archive = EmbeddedArchive(data_dir=path, options=EmbeddedArchive.Options(),
                              clock=FakeClock(T0), metrics=SelfMetrics())
    await archive.start(stack)
    return archive


@pytest.fixture
async def archive(tmp_path: Path) -> AsyncIterator[EmbeddedArchive]:
    async with AsyncExitStack() as stack:
        yield await _open(tmp_path, stack)


def _writer(archive: EmbeddedArchive) -> Writer:
    core = archive._core
    assert isinstance(core, Writer)
    return core


@contextmanager
def _counted_commits(writer: Writer) -> Iterator[list[int]]:
    """Counts the store's write transactions (one per durable commit)."""
    commits: list[int] = []
    real = writer.store.transaction

    @contextmanager
    def counting() -> Iterator[None]:
        with real():
            yield
        commits.append(1)

    writer.store.transaction = counting  # type: ignore[method-assign]
    try:
        yield commits
    finally:
        writer.store.transaction = real  # type: ignore[method-assign]


async def _with_archive_thread_held(archive: EmbeddedArchive, writes: list[Any]) -> list[Any]:
    """Start ``writes`` while the archive's thread is busy, so they queue up together."""
    release = threading.Event()
    assert archive._executor is not None
    blocker = archive._executor.submit(release.wait, 30)
    tasks = [asyncio.create_task(write) for write in writes]
    for _ in range(5):
        await asyncio.sleep(0)  # every write is queued behind the held thread
    release.set()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    blocker.result()
    return results


async def test_concurrent_writes_share_one_commit(archive: EmbeddedArchive) -> None:
    """Sixteen writes arriving together take two commits: the first, which found no
    commit in flight, and one for the fifteen that waited for it; each is answered with
    its own count, and every point is there."""
    texts = [f"h/p/m{i}" for i in range(16)]
    with _counted_commits(_writer(archive)) as commits:
        results = await _with_archive_thread_held(
            archive, [archive.write_columns(_columns([text], T0)) for text in texts])

    assert results == [1] * 16
    assert len(commits) == 2
    for text in texts:
        points = await archive.read(SeriesKey.parse(text), T0 - 1, T0 + 1)
        assert points.ts.tolist() == [T0]


async def test_a_refused_write_leaves_the_rest_of_its_group(archive: EmbeddedArchive) -> None:
    """A malformed write in a group gets its own error; the others are stored, including
    a series that an earlier write of the same group created."""
    a = SeriesKey.make("h", "p", "a")
    results = await _with_archive_thread_held(archive, [
        archive.write_columns(_columns(["h/p/a", "h/p/b"], T0)),
        archive.write_columns(_columns(["not a series"], T0)),
        archive.write([Measurement(key=a, ts=T0 + 10, value=5.0)]),
        archive.write([Measurement(key=a, ts=T0 + 20, histogram={"1": 1})]),  # a holds numbers
    ])

    assert results[0] == 2
    assert results[2] == 1
    assert isinstance(results[1], InvalidData)
    assert isinstance(results[3], InvalidData)
    assert (await archive.read(a, T0, T0 + 30)).values.tolist() == [0.0, 5.0]


async def test_a_failed_commit_stores_nothing_and_the_next_write_works(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """When the commit fails, every write of the group fails, the series it would have
    created are unknown, and later writes (and a restart) see a consistent archive."""
    async with AsyncExitStack() as stack:
        archive = await _open(tmp_path, stack)
        store = _writer(archive).store

        def full_disk(seq: int, blob: bytes) -> None:
            raise sqlite3.OperationalError("database or disk is full")

        monkeypatch.setattr(store, "append_log", full_disk)
        results = await _with_archive_thread_held(archive, [
            archive.write_columns(_columns(["h/p/new1"], T0)),
            archive.write_columns(_columns(["h/p/new2"], T0)),
        ])
        assert all(isinstance(result, ArchiveError) for result in results)
        assert (await archive.list_series())[1] == 0
        monkeypatch.undo()

        assert await archive.write_columns(_columns(["h/p/new2", "h/p/new3"], T0)) == 2
    async with AsyncExitStack() as stack:
        archive = await _open(tmp_path, stack)
        metas, _total = await archive.list_series()
        assert [str(m.key) for m in metas] == ["h/p/new2", "h/p/new3"]
        points = await archive.read(SeriesKey.parse("h/p/new3"), T0 - 1, T0 + 1)
        assert points.values.tolist() == [1.0]


async def test_a_group_joins_the_heads_in_write_order(tmp_path: Path) -> None:
    """The batches of a group reach the heads in one append: for the same series and
    time the later write wins, each write keeps its log row until its points are in
    chunks, and a restart (which replays the log) reads the same."""
    key = SeriesKey.make("h", "p", "m")
    writes = [[Measurement(key=key, ts=T0 + t, value=float(10 * i + t)) for t in range(3)]
              for i in range(6)]  # six writes of the same three points
    async with AsyncExitStack() as stack:
        archive = await _open(tmp_path, stack)
        writer = _writer(archive)
        with _counted_commits(writer) as commits:
            results = await _with_archive_thread_held(
                archive, [archive.write(points) for points in writes])
        assert results == [3] * 6
        assert len(commits) == 2  # the first write alone, then the five that waited
        points = await archive.read(key, T0, T0 + 2)  # after the heads took the group
        assert points.values.tolist() == [50.0, 51.0, 52.0]
        assert [seq for seq, _ in writer._log] == list(range(1, 7))
        assert writer.heads["float"].counts[writer.catalog.ids[key]] == 18
    async with AsyncExitStack() as stack:
        archive = await _open(tmp_path, stack)
        assert (await archive.read(key, T0, T0 + 2)).values.tolist() == [50.0, 51.0, 52.0]
