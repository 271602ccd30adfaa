"""New core dumps in directories: reported once each, never deleted unless told to.

genie's crashdumps plugin deletes every core it finds by default; here nothing is touched
unless ``delete: true`` (remove after reporting) or ``move_to: DIR`` (keep them aside) is
set. A core is identified by (path, inode, mtime), so a core overwritten under the same
name is new again. Files modified less than ``settle`` seconds before the poll's slot may
still be being written and wait for the next poll.

The first poll of a job reports the cores already present (``report_existing``, like
genie) or only takes note of them. ``poll`` is a plain ``def``: it runs in a thread.
"""

from __future__ import annotations

import fnmatch
import os
import shutil
from pathlib import Path
from typing import Literal, NamedTuple

import msgspec

from watchkeeper.collect.abc import Collector, PollContext, PollResult
from watchkeeper.model import Device, Status

DEFAULT_PATTERNS = ("core", "core.*", "*.core", "*.core.gz", "*.core.zst", "*.crash",
                    "crashinfo*")


class CrashdumpsOptions(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    directories: tuple[str, ...]
    patterns: tuple[str, ...] = DEFAULT_PATTERNS
    recursive: bool = False
    report_existing: bool = True
    status: Literal["warning", "critical"] = "critical"
    settle: float = 2.0  # seconds a file must be unchanged before it is reported
    delete: bool = False  # remove each core after reporting it: only when told
    move_to: str | None = None  # or move it here after reporting it

    def __post_init__(self) -> None:
        if not self.directories or not self.patterns:
            raise ValueError("give at least one directory and one pattern")
        if self.delete and self.move_to:
            raise ValueError("give `delete` or `move_to`, not both")


class Core(NamedTuple):
    path: str
    ino: int
    mtime_ns: int
    size: int

    @property
    def identity(self) -> tuple[str, int, int]:
        return self.path, self.ino, self.mtime_ns


class CrashdumpsCollector(Collector):
    """``crashdumps.new``, ``crashdumps.present`` and ``crashdumps.bytes`` per poll."""

    Options = CrashdumpsOptions
    options: CrashdumpsOptions

    def poll(self, device: Device, ctx: PollContext) -> PollResult:
        opts = self.options
        seen: set[tuple[str, int, int]] | None = ctx.state.get("seen")
        first = seen is None
        seen = set() if seen is None else seen
        cores, problems = self._scan(device)
        settled = [c for c in cores if c.mtime_ns / 1e9 <= ctx.now - opts.settle]
        new = [c for c in settled if c.identity not in seen]
        seen.intersection_update(c.identity for c in cores)  # forget what is gone
        seen.update(c.identity for c in new)
        ctx.state["seen"] = seen
        if first and not opts.report_existing:
            new = []
        notes = [f"{c.path} ({c.size} bytes)" for c in new]
        if new and (opts.delete or opts.move_to):
            problems.extend(self._remove(new))
        out = [ctx.measure("crashdumps.new", len(new)),
               ctx.measure("crashdumps.present", len(cores)),
               ctx.measure("crashdumps.bytes", sum(c.size for c in cores), unit="B")]
        if new:
            text = "new core dumps: " + ", ".join(notes)
            return ctx.result(out, Status(opts.status), "; ".join([text, *problems]))
        if problems:
            return ctx.result(out, Status.PARTIAL, "; ".join(problems))
        return ctx.result(out, Status.OK, f"no new core dumps ({len(cores)} present)")

    def _scan(self, device: Device) -> tuple[list[Core], list[str]]:
        cores: list[Core] = []
        problems: list[str] = []
        for directory in self.options.directories:
            root = Path(directory.replace("{name}", device.name))
            if not root.is_dir():
                problems.append(f"{root} is not a directory")
                continue
            entries = root.rglob("*") if self.options.recursive else root.iterdir()
            for entry in entries:
                if not any(fnmatch.fnmatchcase(entry.name, p) for p in self.options.patterns):
                    continue
                try:
                    stat = entry.stat()
                except OSError:
                    continue  # removed meanwhile
                if entry.is_file():
                    cores.append(Core(str(entry), stat.st_ino, stat.st_mtime_ns, stat.st_size))
        return sorted(cores), problems

    def _remove(self, cores: list[Core]) -> list[str]:
        problems: list[str] = []
        target = Path(self.options.move_to) if self.options.move_to else None
        for core in cores:
            try:
                if target is not None:
                    target.mkdir(parents=True, exist_ok=True)
                    shutil.move(core.path, target / os.path.basename(core.path))
                else:
                    os.unlink(core.path)
            except OSError as exc:
                problems.append(f"cannot {'move' if target else 'delete'} {core.path}: "
                                f"{exc.strerror or exc}")
        return problems
