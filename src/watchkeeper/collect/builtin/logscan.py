"""Tracebacks and other patterns in log files, since the last poll; rotation-safe, read-only.

Unlike genie's tracebackcheck, which clears the device log after every run, this keeps a
read cursor per file (device, inode, offset) in the job's state and never writes,
truncates or deletes anything. Each poll reads what was appended since the last one:

* a file whose inode changed was rotated: the rest of the old file is read first (found
  by inode among its siblings, e.g. ``app.log.1``), then the new file from its start;
* a file that shrank under the same inode was truncated (copytruncate): read from 0;
* an incomplete last line is left for the next poll;
* on a job's first poll, existing content is skipped (``start_at: end``, the default) or
  read (``start_at: start``); files that appear later are read from their start.

A Python traceback is one finding (reported by its final exception line), not one per
frame. ``poll`` is a plain ``def``: file reads run in a worker thread.
"""

from __future__ import annotations

import glob
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Literal, NamedTuple

import msgspec

from watchkeeper.collect.abc import Collector, PollContext, PollResult
from watchkeeper.collect.thresholds import check_regex
from watchkeeper.model import Device, Status

TRACEBACK = "Traceback (most recent call last):"
_CONTINUATION = ("During handling of the above exception",
                 "The above exception was the direct cause")


class LogscanOptions(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    paths: tuple[str, ...]  # files or globs; ``{name}`` is the device's name
    patterns: tuple[str, ...] = ()  # regular expressions; a line matching any is a finding
    tracebacks: bool = True  # a Python traceback block is a finding
    exclude: tuple[str, ...] = ()  # findings matching any of these are ignored
    status: Literal["warning", "critical"] = "critical"
    start_at: Literal["end", "start"] = "end"
    max_reported: int = 10  # findings quoted per poll (all are counted)
    max_bytes: int = 16 * 1024 * 1024  # read per file per poll; the rest waits
    encoding: str = "utf-8"

    def __post_init__(self) -> None:
        if not self.paths:
            raise ValueError("give at least one path")
        if not self.patterns and not self.tracebacks:
            raise ValueError("nothing to look for: give `patterns` or keep `tracebacks`")
        for pattern in (*self.patterns, *self.exclude):
            check_regex(pattern)
        if self.max_bytes < 1024 or self.max_reported < 0:
            raise ValueError("max_bytes must be at least 1024 and max_reported >= 0")


class Cursor(NamedTuple):
    """Where reading of one file stopped."""

    dev: int
    ino: int
    offset: int
    line: int | None  # lines consumed so far; None when reading began mid-file


class Finding(NamedTuple):
    path: str
    line: int | None
    text: str

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line is not None else self.path
        return f"{where}: {self.text}"


def scan_lines(lines: list[str], patterns: list[re.Pattern[str]],
               exclude: list[re.Pattern[str]], *,
               tracebacks: bool = True) -> Iterator[tuple[int, str]]:
    """``(index, text)`` of each finding in ``lines``; a traceback block is one finding."""
    index = 0
    while index < len(lines):
        line = lines[index]
        if tracebacks and TRACEBACK in line:
            end = _traceback_end(lines, index)
            text = lines[end].strip() if end > index else line.strip()
            found = f"{text} (traceback)" if end > index else text
            if not any(p.search(found) for p in exclude):
                yield index, found
            index = end + 1
            continue
        if any(p.search(line) for p in patterns) and not any(p.search(line) for p in exclude):
            yield index, line.strip()
        index += 1


def _traceback_end(lines: list[str], start: int) -> int:
    """The index of the exception line closing the traceback that starts at ``start``."""
    index = start + 1
    while index < len(lines):
        line = lines[index]
        if not line.strip() or line[:1].isspace() or TRACEBACK in line:
            index += 1  # a frame, its source line, a blank line, a chained traceback's head
            continue
        following = index + 1
        while following < len(lines) and not lines[following].strip():
            following += 1
        if following < len(lines) and lines[following].startswith(_CONTINUATION):
            index = following + 1  # a chained exception: the block goes on
            continue
        return index
    return len(lines) - 1


class LogscanCollector(Collector):
    """``logscan.findings`` and ``logscan.bytes`` per poll; a finding makes ``status``."""

    Options = LogscanOptions
    options: LogscanOptions

    def poll(self, device: Device, ctx: PollContext) -> PollResult:
        opts = self.options
        patterns = [re.compile(p) for p in opts.patterns]
        exclude = [re.compile(p) for p in opts.exclude]
        cursors: dict[str, Cursor] = ctx.state.setdefault("cursors", {})
        first_poll = not ctx.state.get("primed", False)
        findings: list[Finding] = []
        read = 0
        errors: list[str] = []
        for path in self._files(device):
            try:
                chunks = self._read(path, cursors, first_poll)
            except OSError as exc:
                errors.append(f"{path}: {exc.strerror or exc}")
                continue
            for name, before, text in chunks:
                read += len(text.encode(opts.encoding, errors="replace"))
                lines = text.splitlines()
                findings.extend(Finding(name, None if before is None else before + i + 1, found)
                                for i, found in scan_lines(lines, patterns, exclude,
                                                          tracebacks=opts.tracebacks))
        ctx.state["primed"] = True
        out = [ctx.measure("logscan.findings", len(findings)),
               ctx.measure("logscan.bytes", read, unit="B")]
        if errors and not findings:
            return ctx.result(out, Status.PARTIAL, "; ".join(errors))
        if not findings:
            return ctx.result(out, Status.OK, f"no findings in {len(cursors)} files")
        quoted = [str(f) for f in findings[:opts.max_reported]]
        more = len(findings) - len(quoted)
        if more:
            quoted.append(f"... and {more} more")
        return ctx.result(out, Status(opts.status), "\n".join(quoted))

    def _files(self, device: Device) -> list[str]:
        found: list[str] = []
        for template in self.options.paths:
            pattern = template.replace("{name}", device.name)
            found.extend(sorted(glob.glob(pattern)) if glob.has_magic(pattern) else [pattern])
        return list(dict.fromkeys(found))

    def _read(self, path: str, cursors: dict[str, Cursor],
              first_poll: bool) -> list[tuple[str, int | None, str]]:
        """New text of ``path`` as ``(file, lines before it, text)`` chunks; updates cursors."""
        stat = os.stat(path)
        cursor = cursors.get(path)
        chunks: list[tuple[str, int | None, str]] = []
        if cursor is None:
            skip = first_poll and self.options.start_at == "end"
            cursor = Cursor(stat.st_dev, stat.st_ino, stat.st_size if skip else 0,
                            None if skip else 0)
        elif (cursor.dev, cursor.ino) != (stat.st_dev, stat.st_ino):
            rotated = _find_rotated(path, cursor)
            if rotated is not None:  # finish the old file where we left off
                chunks.append(self._chunk(rotated, cursor)[0])
            cursor = Cursor(stat.st_dev, stat.st_ino, 0, 0)
        elif stat.st_size < cursor.offset:
            cursor = Cursor(stat.st_dev, stat.st_ino, 0, 0)  # truncated in place
        chunk, cursor = self._chunk(path, cursor)
        chunks.append(chunk)
        cursors[path] = cursor
        return [c for c in chunks if c[2]]

    def _chunk(self, path: str, cursor: Cursor) -> tuple[tuple[str, int | None, str], Cursor]:
        with open(path, "rb") as handle:
            handle.seek(cursor.offset)
            data = handle.read(self.options.max_bytes)
        cut = data.rfind(b"\n") + 1
        if cut == 0 and len(data) >= self.options.max_bytes:
            cut = len(data)  # one enormous line: take it in pieces rather than never
        data = data[:cut]  # an unfinished last line waits for the next poll
        text = data.decode(self.options.encoding, errors="replace")
        line = None if cursor.line is None else cursor.line + text.count("\n")
        new = Cursor(cursor.dev, cursor.ino, cursor.offset + len(data), line)
        return (path, cursor.line, text), new


def _find_rotated(path: str, cursor: Cursor) -> str | None:
    """The sibling that is now the file we were reading (same device and inode), if any."""
    directory, base = os.path.split(path)
    for candidate in Path(directory or ".").glob(f"{glob.escape(base)}*"):
        try:
            stat = candidate.stat()
        except OSError:
            continue
        if (stat.st_dev, stat.st_ino) == (cursor.dev, cursor.ino):
            return str(candidate)
    return None
