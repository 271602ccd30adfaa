"""``get-bulk``: every series of the matching metadata into files, streamed and resumable.

One file per metadata and event type, ``<source>_<dest>_<event-type>_<start>_<end>.csv``
(or ``.json``; dates as ``YYYY-MM-DD``), in esmond's layouts. Points are requested page by
page and written as they arrive, so a series never sits in memory whole. The file grows
as ``<name>.part`` next to ``<name>.part.json`` (bytes written and where to go on); it
gets its name only when complete. ``--resume`` skips complete files and continues a
partial one from its last page. The output directory is created if missing. On a
terminal a Rich bar shows files done of all, points and time, then vanishes, leaving a
line per file and a summary (no spinner glyphs); elsewhere a log line per file.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import io
import json
import logging
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from watchkeeper.cli.archive_format import (
    CsvWriter,
    columns,
    kind_of,
    rows,
)
from watchkeeper.cli.archive_query import (
    Context,
    Query,
    common_columns,
    connect,
    list_events,
    prepare,
    series_uri,
)
from watchkeeper.client import ArchiveClient, Metadata
from watchkeeper.client._archive_models import WirePoint
from watchkeeper.errors import UsageError

log = logging.getLogger("watchkeeper.cli.archive")


def _day(ts: int) -> str:
    return datetime.fromtimestamp(ts, tz=UTC).strftime("%Y-%m-%d")


@dataclass
class Target:
    """One output file: a metadata's event type (or its summary)."""

    meta: Metadata
    event_type: str
    uri: str
    path: Path


class _Progress:
    """Overall progress: files done of all, points written, elapsed time, the file being
    written. On a terminal a Rich bar (on stderr) that vanishes at the end, leaving one
    plain line per file and a summary; elsewhere no display at all, a log line per file."""

    def __init__(self, ctx: Context, files: int) -> None:
        self.files = files
        self.points = 0
        self.outcomes: dict[str, int] = {}
        self._started = time.monotonic()
        self._progress: Progress | None = None
        self._task: TaskID | None = None
        if ctx.stderr.isatty():
            self._progress = Progress(
                TextColumn("[bold]{task.completed}/{task.total} files"), BarColumn(),
                TextColumn("{task.fields[points]:,} points"), TimeElapsedColumn(),
                TextColumn("{task.description}"),
                console=Console(file=ctx.stderr), transient=True)

    def __enter__(self) -> _Progress:
        if self._progress is not None:
            self._progress.start()
            self._task = self._progress.add_task("", total=self.files, points=0)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()  # transient: the bar goes, the printed lines stay

    def start(self, name: str, done: int) -> None:
        self.points += done
        self._update(description=name)

    def advance(self, points: int) -> None:
        self.points += points
        self._update()

    def finish(self, name: str, points: int, status: str) -> None:
        self.outcomes[status] = self.outcomes.get(status, 0) + 1
        line = f"{name}: {status} ({points:,} points)"
        if self._progress is not None and self._task is not None:
            self._progress.console.print(line, markup=False, highlight=False)
            self._progress.advance(self._task)
        else:
            log.info("%s", line)

    def summary(self, outdir: Path) -> str:
        done = ", ".join(f"{count} {status}" for status, count in self.outcomes.items())
        return (f"{self.files} file{'s' if self.files != 1 else ''} ({done or 'none'}), "
                f"{self.points:,} points in {outdir}, "
                f"{time.monotonic() - self._started:.1f} s")

    def _update(self, **fields: Any) -> None:
        if self._progress is not None and self._task is not None:
            self._progress.update(self._task, points=self.points, **fields)


def get_bulk(args: argparse.Namespace, ctx: Context) -> int:
    if args.list_event:
        return list_events(ctx.stdout)
    query = prepare(args, ctx, bulk=True)
    outdir = _output_dir(Path(args.output_dir), "-D" if ctx.compat else "--output-dir")
    with connect(query, args, ctx, page_size=args.page_size) as client:
        targets = list(_targets(client, query, outdir))
        with _Progress(ctx, len(targets)) as progress:
            for target in targets:
                _write_target(client, query, target, resume=args.resume, progress=progress)
        summary = progress.summary(outdir)
    if ctx.stderr.isatty():
        ctx.stderr.write(summary + "\n")
    else:
        log.info("%s", summary)
    return 0


def _output_dir(outdir: Path, flag: str) -> Path:
    """The output directory, created if missing; a UsageError that says what to do."""
    try:
        outdir.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise UsageError(f"output path {outdir.resolve()} is a file, not a directory: "
                         f"choose a directory with {flag} DIR") from None
    except OSError as exc:
        raise UsageError(f"cannot create the output directory {outdir.resolve()}: "
                         f"{exc.strerror}; create it (mkdir -p {outdir}) or choose another "
                         f"with {flag} DIR") from None
    return outdir


def _targets(client: ArchiveClient, query: Query, outdir: Path) -> Iterator[Target]:
    seen: dict[str, int] = {}
    for meta in client.metadata(**query.params):
        names = [query.event_type] if query.event_type else meta.event_types
        for event_type in names:
            uri = series_uri(meta, event_type, query.summary_type, query.summary_window)
            if uri is None:
                continue
            parts = [str(query.names.name(meta.source)), str(query.names.name(meta.destination)),
                     event_type, _day(query.time_start), _day(query.time_end)]
            stem = "_".join(p.replace("/", "-") for p in parts)
            seen[stem] = seen.get(stem, 0) + 1
            if seen[stem] > 1:  # two metadata with the same endpoints: never overwrite
                stem = f"{stem}-{seen[stem]}"
            yield Target(meta, event_type, uri, outdir / f"{stem}.{query.fmt}")


@dataclass
class _Partial:
    bytes: int
    next_start: int
    points: int


def _read_partial(part: Path, marker: Path) -> _Partial | None:
    try:
        data = json.loads(marker.read_text())
        found = _Partial(int(data["bytes"]), int(data["next_start"]), int(data["points"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not part.exists() or part.stat().st_size < found.bytes:
        return None
    return found


def _save_partial(marker: Path, state: _Partial) -> None:
    tmp = marker.with_name(marker.name + ".tmp")
    tmp.write_text(json.dumps({"bytes": state.bytes, "next_start": state.next_start,
                               "points": state.points}))
    os.replace(tmp, marker)


def _write_target(client: ArchiveClient, query: Query, target: Target, *, resume: bool,
                  progress: _Progress) -> int:
    final = target.path
    part = final.with_name(final.name + ".part")
    marker = final.with_name(final.name + ".part.json")
    if resume and final.exists():
        progress.finish(final.name, 0, "complete, skipped")
        return 0
    partial = _read_partial(part, marker) if resume else None
    if partial is None:
        partial = _Partial(0, query.time_start, 0)
    kind = kind_of(target.event_type)
    common = query.names.convert(common_columns(target.meta, target.event_type, query))
    cols = columns(kind, query.summary_type)
    progress.start(final.name, partial.points)
    with open(part, "r+b" if partial.bytes else "wb") as handle:
        handle.truncate(partial.bytes)
        handle.seek(partial.bytes)
        writer = _Writer(handle, query.fmt, cols, first=partial.points == 0,
                         fast_prefix=_numeric_prefix(kind, common, cols))
        if partial.points == 0:
            writer.begin()
        for page in client.iter_pages(target.uri, time_start=partial.next_start,
                                      time_end=query.time_end):
            writer.points(page, lambda page=page: rows(  # type: ignore[misc]
                kind, common, page, summary_type=query.summary_type,
                bucket=target.meta.sample_bucket_width))
            handle.flush()
            partial = _Partial(handle.tell(), page[-1].ts + 1, partial.points + len(page))
            _save_partial(marker, partial)
            progress.advance(len(page))
        if partial.points:
            writer.end()
    with contextlib.suppress(FileNotFoundError):
        marker.unlink()
    if not partial.points:
        part.unlink()
        progress.finish(final.name, 0, "no data, skipped")
        return 0
    os.replace(part, final)
    progress.finish(final.name, partial.points, "written")
    return partial.points


def _numeric_prefix(kind: str, common: dict[str, Any], cols: list[str]) -> str | None:
    """For numeric series in CSV: the columns before ``timestamp``, quoted once."""
    if kind != "numeric" or cols[-2:] != ["timestamp", "value"]:
        return None
    out = io.StringIO()
    CsvWriter(out, cols[:-2]).write([common])
    return out.getvalue()[:-2] + ","


@functools.lru_cache(maxsize=64)
def _day_text(day: int) -> str:
    return datetime.fromtimestamp(day * 86400, tz=UTC).strftime("%Y-%m-%d")


def _fast_numeric_lines(prefix: str, page: list[WirePoint]) -> str:
    """The CSV lines of a numeric page, as CsvWriter writes them, without a dict per row."""
    parts = []
    for point in page:
        day, rest = divmod(point.ts, 86400)
        hours, rest = divmod(rest, 3600)
        minutes, seconds = divmod(rest, 60)
        value = "" if point.val is None else str(point.val)
        parts.append(f"{prefix}{_day_text(day)} {hours:02d}:{minutes:02d}:{seconds:02d},"
                     f"{value}\r\n")
    return "".join(parts)


class _Writer:
    """esmond's file layouts, written incrementally."""

    def __init__(self, handle: BinaryIO, fmt: str, cols: list[str], *, first: bool,
                 fast_prefix: str | None = None) -> None:
        self.handle = handle
        self.fmt = fmt
        self.cols = cols
        self.first = first
        self.fast_prefix = fast_prefix
        self._text = _TextSink(handle)
        self._csv = CsvWriter(self._text, cols)  # type: ignore[arg-type]

    def begin(self) -> None:
        if self.fmt == "csv":
            self._csv.header()
        else:
            self.handle.write(b"[")
        self._text.flush()

    def points(self, page: list[WirePoint],
               data: Callable[[], Iterator[dict[str, Any]]]) -> None:
        if self.fmt == "csv" and self.fast_prefix is not None and all(
                isinstance(p.val, (int, float)) and p.ts >= 0 for p in page):
            self._text.write(_fast_numeric_lines(self.fast_prefix, page))
        elif self.fmt == "csv":
            self._csv.write(data())
        else:
            for row in data():
                if not self.first:
                    self._text.write(", ")
                self.first = False
                self._text.write(json.dumps(row))
        self._text.flush()

    def end(self) -> None:
        if self.fmt == "json":
            self.handle.write(b"]")


class _TextSink:
    """A text stream over a binary file, buffered per page (UTF-8)."""

    def __init__(self, handle: BinaryIO) -> None:
        self._handle = handle
        self._parts: list[str] = []

    def write(self, text: str) -> int:
        self._parts.append(text)
        return len(text)

    def flush(self) -> None:
        if self._parts:
            self._handle.write("".join(self._parts).encode())
            self._parts.clear()
