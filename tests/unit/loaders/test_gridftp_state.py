"""load-gridftp's position: resume exactly, never twice, rotation by inode, interruptions."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.unit.loaders.fakes import FakeArchive
from watchkeeper.client import HTTPStatusError
from watchkeeper.loaders.gridftp import Options
from watchkeeper.loaders.gridftp_load import GridftpLoader, LoadReport
from watchkeeper.loaders.state import (
    LoadState,
    StateError,
    read_state,
    resume_points,
    write_state,
)


def line(n: int, code: int = 226) -> str:
    start = f"20150407{10 + n // 3600:02d}{n // 60 % 60:02d}{n % 60:02d}.000000"
    end = f"20150407{10 + n // 3600:02d}{n // 60 % 60:02d}{n % 60:02d}.500000"
    return (f"DATE={end} HOST=10.0.0.1 PROG=globus-gridftp-server NL.EVNT=FTP_INFO "
            f"START={start} USER=u FILE=/f{n} BUFFER=1 BLOCK=1 NBYTES={1000 + n} VOLUME=/ "
            f"STREAMS=1 STRIPES=1 DEST=[10.0.0.2] TYPE=RETR CODE={code}\n")


def stamp(n: int) -> int:
    return 1428400800 + n


class Runner:
    """Runs the loader like the CLI does: state read before, saved after every record."""

    def __init__(self, tmp: Path, archive: FakeArchive) -> None:
        self.state_path = tmp / "state.json"
        self.archive = archive

    def run(self, log: Path, *, single: bool = False) -> LoadReport:
        previous = read_state(self.state_path)
        loader = GridftpLoader(self.archive, Options(), resolve=lambda h, f: h,  # type: ignore[arg-type]
                               single=single, save=lambda s: write_state(self.state_path, s))
        return loader.run(resume_points(log, previous), previous)


@pytest.fixture
def archive() -> FakeArchive:
    return FakeArchive()


def test_second_run_loads_only_new_lines(tmp_path: Path, archive: FakeArchive) -> None:
    log = tmp_path / "gridftp.log"
    log.write_text("".join(line(n) for n in range(3)))
    runner = Runner(tmp_path, archive)
    assert runner.run(log).loaded == 3
    assert runner.run(log).loaded == 0
    with log.open("a") as handle:
        handle.write(line(3) + line(4))
    assert runner.run(log).loaded == 2
    assert archive.throughput_stamps() == [stamp(n) for n in range(5)]


def test_identical_lines_are_both_loaded_once(tmp_path: Path, archive: FakeArchive) -> None:
    """esmond searched for the last record's text; a repeated line fooled it. Offsets do not."""
    log = tmp_path / "gridftp.log"
    log.write_text(line(0) + line(1, code=426) + line(1, code=426))
    runner = Runner(tmp_path, archive)
    assert runner.run(log, single=True).loaded == 1
    assert runner.run(log, single=True).loaded == 1
    assert runner.run(log).loaded == 1
    assert runner.run(log).loaded == 0


def test_partial_last_line_waits_for_the_next_run(tmp_path: Path, archive: FakeArchive) -> None:
    log = tmp_path / "gridftp.log"
    full = line(1)
    log.write_text(line(0) + full[:40])
    runner = Runner(tmp_path, archive)
    assert runner.run(log).loaded == 1
    with log.open("a") as handle:
        handle.write(full[40:])
    assert runner.run(log).loaded == 1
    assert archive.throughput_stamps() == [stamp(0), stamp(1)]


def test_unreachable_server_stops_and_resumes_at_the_failed_record(
        tmp_path: Path, archive: FakeArchive) -> None:
    log = tmp_path / "gridftp.log"
    log.write_text("".join(line(n) for n in range(5)))
    runner = Runner(tmp_path, archive)
    archive.fail_at = 5  # 2 calls per record: fails on record 3's metadata
    report = runner.run(log)
    assert report.loaded == 2
    assert report.aborted is not None
    assert "cannot reach" in report.aborted
    archive.fail_at = None
    assert runner.run(log).loaded == 3
    assert archive.throughput_stamps() == [stamp(n) for n in range(5)]


def test_failure_between_metadata_and_data_repeats_the_record_harmlessly(
        tmp_path: Path, archive: FakeArchive) -> None:
    log = tmp_path / "gridftp.log"
    log.write_text("".join(line(n) for n in range(3)))
    runner = Runner(tmp_path, archive)
    archive.fail_at = 4  # record 2: metadata posted, bulk fails
    assert runner.run(log).loaded == 1
    archive.fail_at = None
    report = runner.run(log)
    assert (report.loaded, report.duplicates) == (2, 0)
    assert archive.throughput_stamps() == [stamp(n) for n in range(3)]


def test_interrupt_keeps_the_position(tmp_path: Path, archive: FakeArchive) -> None:
    log = tmp_path / "gridftp.log"
    log.write_text("".join(line(n) for n in range(4)))
    runner = Runner(tmp_path, archive)
    archive.fail_at = 3
    archive.fail_with = KeyboardInterrupt()  # type: ignore[assignment]
    report = runner.run(log)
    assert report.interrupted
    assert report.loaded == 1
    archive.fail_at = None
    assert runner.run(log).loaded == 3
    assert archive.throughput_stamps() == [stamp(n) for n in range(4)]


def test_bad_lines_are_counted_and_never_hide_good_ones(tmp_path: Path,
                                                        archive: FakeArchive) -> None:
    log = tmp_path / "gridftp.log"
    log.write_text(line(0) + "this is not a record\n" + line(1) + "DATE=x TYPE=RETR\n" + line(2))
    report = Runner(tmp_path, archive).run(log)
    assert (report.loaded, report.bad) == (3, 2)
    assert "not a KEY=VALUE" in report.bad_examples[0]
    assert archive.throughput_stamps() == [stamp(n) for n in range(3)]


def test_rejected_records_are_counted_and_skipped(tmp_path: Path, archive: FakeArchive) -> None:
    log = tmp_path / "gridftp.log"
    log.write_text("".join(line(n) for n in range(3)))
    archive.fail_at, archive.fail_with = 3, HTTPStatusError(400, "Invalid subject type")
    report = Runner(tmp_path, archive).run(log)
    assert (report.loaded, report.rejected, report.aborted) == (1, 2, None)


def test_rotation_finishes_the_old_file_then_reads_the_new(tmp_path: Path,
                                                           archive: FakeArchive) -> None:
    log = tmp_path / "gridftp.log"
    log.write_text(line(0) + line(1))
    runner = Runner(tmp_path, archive)
    assert runner.run(log).loaded == 2
    with log.open("a") as handle:  # written after the last run, before rotation
        handle.write(line(2))
    os.rename(log, tmp_path / "gridftp.log.1")
    log.write_text(line(3) + line(4))
    assert runner.run(log).loaded == 3
    assert archive.throughput_stamps() == [stamp(n) for n in range(5)]
    assert runner.run(log).loaded == 0


def test_rotation_with_the_old_file_gone_reads_the_new_from_the_start(
        tmp_path: Path, archive: FakeArchive) -> None:
    log = tmp_path / "gridftp.log"
    log.write_text(line(0))
    runner = Runner(tmp_path, archive)
    runner.run(log)
    log.unlink()
    log.write_text(line(1) + line(2))
    assert runner.run(log).loaded == 2


def test_copytruncate_starts_again(tmp_path: Path, archive: FakeArchive) -> None:
    log = tmp_path / "gridftp.log"
    log.write_text(line(0) + line(1))
    runner = Runner(tmp_path, archive)
    runner.run(log)
    with log.open("w") as handle:  # same inode, truncated, new content
        handle.write(line(5))
    assert runner.run(log).loaded == 1
    assert stamp(5) in archive.throughput_stamps()


def test_state_file_is_json_and_written_atomically(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    write_state(path, LoadState(path="/x", inode=1, device=2, offset=3, last_line="l"),
                fsync=True)
    assert read_state(path) == LoadState(path="/x", inode=1, device=2, offset=3, last_line="l")
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"]


@pytest.mark.parametrize(("content", "message"), [
    (b"\x80\x02}q\x00.", "pickle state"),
    (b"(dp0\nS'date'\n", "pickle state"),
    (b"{not json", "not a valid state file"),
    (b'{"version": 9}', "unknown state version"),
])
def test_unusable_state_files_say_what_to_do(tmp_path: Path, content: bytes,
                                             message: str) -> None:
    path = tmp_path / "state"
    path.write_bytes(content)
    with pytest.raises(StateError, match=message):
        read_state(path)
