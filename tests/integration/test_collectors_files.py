"""logscan and crashdumps against real files: appends, rotation, truncation, never deleting."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import msgspec
import pytest

from watchkeeper.collect.builtin.crashdumps import CrashdumpsCollector, CrashdumpsOptions
from watchkeeper.collect.builtin.logscan import LogscanCollector, LogscanOptions
from watchkeeper.collect.testing import poll_once, values
from watchkeeper.model import Status

TRACE = ('Traceback (most recent call last):\n  File "x.py", line 1, in <module>\n'
         'RuntimeError: boom\n')


def logscan(**options: Any) -> LogscanCollector:
    return LogscanCollector(msgspec.convert(options, LogscanOptions), name="logscan")


def append(path: Path, text: str) -> None:
    with path.open("a") as handle:
        handle.write(text)


async def test_only_lines_appended_since_the_last_poll_are_reported(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    log.write_text("old Traceback (most recent call last):\nValueError: old\n")
    collector = logscan(paths=[str(tmp_path / "*.log")], patterns=["ERROR"])
    state: dict[str, Any] = {}
    first = await poll_once(collector, state=state)
    assert first.status is Status.OK  # existing content is skipped on the first poll
    append(log, "INFO fine\nERROR disk\n" + TRACE)
    second = await poll_once(collector, state=state)
    assert second.status is Status.CRITICAL
    assert second.check.summary.splitlines() == [
        f"{log}: ERROR disk", f"{log}: RuntimeError: boom (traceback)"]
    assert values(second)["logscan.findings"] == 2
    third = await poll_once(collector, state=state)
    assert third.status is Status.OK
    assert values(third)["logscan.bytes"] == 0


async def test_start_at_start_reads_existing_content_with_line_numbers(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    log.write_text("a\nb\n" + TRACE)
    result = await poll_once(logscan(paths=[str(log)], start_at="start", status="warning"))
    assert result.status is Status.WARNING
    assert result.check.summary == f"{log}:3: RuntimeError: boom (traceback)"


async def test_a_partial_last_line_waits_for_its_end(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    log.write_text("")
    collector = logscan(paths=[str(log)], patterns=["ERROR disk full"])
    state: dict[str, Any] = {}
    await poll_once(collector, state=state)
    append(log, "ERROR disk")
    assert (await poll_once(collector, state=state)).status is Status.OK
    append(log, " full\n")
    assert (await poll_once(collector, state=state)).status is Status.CRITICAL


async def test_rotation_reads_the_rest_of_the_old_file_then_the_new_one(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    log.write_text("start\n")
    collector = logscan(paths=[str(log)], patterns=["ERROR"])
    state: dict[str, Any] = {}
    await poll_once(collector, state=state)
    append(log, "ERROR before rotation\n")
    log.rename(tmp_path / "app.log.1")  # logrotate's default: rename, then a new file
    log.write_text("ERROR after rotation\n")
    result = await poll_once(collector, state=state)
    assert result.check.summary.splitlines() == [
        f"{tmp_path / 'app.log.1'}: ERROR before rotation", f"{log}:1: ERROR after rotation"]
    assert (tmp_path / "app.log.1").exists()  # nothing is ever deleted


async def test_truncation_in_place_restarts_from_the_top(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    log.write_text("x" * 100 + "\n")
    collector = logscan(paths=[str(log)], patterns=["ERROR"])
    state: dict[str, Any] = {}
    await poll_once(collector, state=state)
    log.write_text("ERROR after copytruncate\n")  # same inode, shorter
    result = await poll_once(collector, state=state)
    assert result.check.summary == f"{log}:1: ERROR after copytruncate"


async def test_a_file_appearing_later_is_read_from_its_start(tmp_path: Path) -> None:
    collector = logscan(paths=[str(tmp_path / "*.log")], patterns=["ERROR"])
    state: dict[str, Any] = {}
    await poll_once(collector, state=state)
    (tmp_path / "new.log").write_text("ERROR first line\n")
    assert (await poll_once(collector, state=state)).status is Status.CRITICAL


async def test_an_unreadable_file_is_partial(tmp_path: Path) -> None:
    result = await poll_once(logscan(paths=[str(tmp_path / "missing.log")]))
    assert result.status is Status.PARTIAL
    assert "No such file" in result.check.summary


# ---------------------------------------------------------------- crashdumps


def crashdumps(**options: Any) -> CrashdumpsCollector:
    return CrashdumpsCollector(msgspec.convert(options, CrashdumpsOptions), name="cores")


def make_core(path: Path, age: float = 60.0) -> None:
    path.write_bytes(b"\x7fELF core")
    stamp = time.time() - age
    os.utime(path, (stamp, stamp))


async def test_new_cores_are_reported_once_and_never_deleted(tmp_path: Path) -> None:
    make_core(tmp_path / "core.1234")
    (tmp_path / "notes.txt").write_text("not a core")
    collector = crashdumps(directories=[str(tmp_path)])
    state: dict[str, Any] = {}
    first = await poll_once(collector, state=state)
    assert first.status is Status.CRITICAL  # report_existing, like genie
    assert str(tmp_path / "core.1234") in first.check.summary
    second = await poll_once(collector, state=state)
    assert second.status is Status.OK
    assert values(second) == {"crashdumps.new": 0, "crashdumps.present": 1,
                              "crashdumps.bytes": 9}
    make_core(tmp_path / "app.core")
    third = await poll_once(collector, state=state)
    assert third.status is Status.CRITICAL
    assert "app.core" in third.check.summary
    assert "core.1234" not in third.check.summary
    assert sorted(p.name for p in tmp_path.iterdir()) == ["app.core", "core.1234", "notes.txt"]


async def test_existing_cores_can_be_ignored_and_fresh_ones_wait_to_settle(
        tmp_path: Path) -> None:
    make_core(tmp_path / "core.1")
    collector = crashdumps(directories=[str(tmp_path)], report_existing=False)
    state: dict[str, Any] = {}
    assert (await poll_once(collector, state=state)).status is Status.OK
    make_core(tmp_path / "core.2", age=0.0)  # still being written, maybe
    assert (await poll_once(collector, state=state)).status is Status.OK
    later = await poll_once(collector, state=state, now=time.time() + 10)
    assert later.status is Status.CRITICAL
    assert "core.2" in later.check.summary


async def test_cores_are_deleted_or_moved_only_when_told(tmp_path: Path) -> None:
    cores = tmp_path / "cores"
    cores.mkdir()
    make_core(cores / "core.1")
    await poll_once(crashdumps(directories=[str(cores)], move_to=str(tmp_path / "kept")))
    assert (tmp_path / "kept" / "core.1").exists()
    assert not (cores / "core.1").exists()
    make_core(cores / "core.2")
    result = await poll_once(crashdumps(directories=[str(cores)], delete=True))
    assert result.status is Status.CRITICAL
    assert not (cores / "core.2").exists()


async def test_a_missing_directory_is_partial(tmp_path: Path) -> None:
    result = await poll_once(crashdumps(directories=[str(tmp_path / "nope")]))
    assert result.status is Status.PARTIAL


@pytest.mark.parametrize("pattern", ["core", "core.99", "x.core", "y.core.gz", "crashinfo_1"])
async def test_default_patterns(tmp_path: Path, pattern: str) -> None:
    make_core(tmp_path / pattern)
    assert (await poll_once(crashdumps(directories=[str(tmp_path)]))).status is Status.CRITICAL
