"""Prometheus metric metadata (``# TYPE``, ``# HELP``, unit) by metric family name.

Prometheus sends it in remote-write requests of their own (``WriteRequest.metadata``,
every ``metadata_config.send_interval``, by default a minute), and the ``prometheus``
collector scrapes it with its exporters' samples (its poll results carry it to the
archive writer); ``/prometheus/api/v1/metadata`` answers it (decision D46). One entry per
family, the latest sent: Prometheus lists each distinct entry its targets expose, which
for one family is one entry unless targets disagree. Kept in memory and, when the store
has a path, in one JSON file in the data directory, written atomically (a temporary file
renamed over it) whenever an entry changes; Prometheus resends the same entries every
interval, which costs a comparison and no write. Several processes share the file (the
API, and the archive writer of ``watchkeeper collect`` or ``watchkeeper engine``): each
update merges into the file as it is on disk, under a lock, and a store reads the file
again when another process replaced it.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Final

import msgspec

from watchkeeper.model import MetricMetadata
from watchkeeper.model.families import METRIC_TYPES

__all__ = ["FILE_NAME", "MAX_FAMILIES", "SUFFIXES", "TYPES", "MetadataStore", "MetricMetadata",
           "covering"]

FILE_NAME: Final = "prometheus-metadata.json"
TYPES: Final = METRIC_TYPES
"""Remote write's ``MetricMetadata.MetricType`` values in order, as the API spells them."""
SUFFIXES: Final = ("_bucket", "_sum", "_count", "_total", "_created", "_info", "_gcount",
                   "_gsum")
"""Sample-name suffixes of a family's series (``h_bucket`` belongs to family ``h``)."""
MAX_FAMILIES: Final = 100_000
"""Families kept at most; a request past the limit keeps what is already known."""

_Stamp = tuple[int, int, int, int]


class MetadataStore:
    """Metadata by family name; ``path`` (a JSON file) makes it survive a restart and
    shared with other processes. Read on first use (no I/O in the constructor), again
    when the file changed; safe from the event loop and worker threads."""

    def __init__(self, path: Path | None = None) -> None:
        self._path = path
        self._families: dict[str, MetricMetadata] | None = None
        self._stamp: _Stamp | None = None  # the file as last read
        self._lock = threading.Lock()

    def families(self) -> dict[str, MetricMetadata]:
        """Every family's metadata (a copy)."""
        with self._lock:
            return dict(self._current())

    def update(self, entries: Iterable[tuple[str, MetricMetadata]]) -> int:
        """Keep ``entries`` (family, metadata); the number that changed, written to the
        file before this returns when there is one."""
        with self._lock, _exclusive(self._path):
            families = dict(self._current())  # kept only once written: a failed write
            changed = 0                       # leaves the entries to the next update
            for family, meta in entries:
                if families.get(family) != meta and (family in families
                                                     or len(families) < MAX_FAMILIES):
                    families[family] = meta
                    changed += 1
            if changed and self._path is not None:
                _write(self._path, families)
                self._stamp = _stamp(self._path)
            self._families = families
            return changed

    def _current(self) -> dict[str, MetricMetadata]:
        """The families, read again when another process replaced the file."""
        if self._path is None:
            if self._families is None:
                self._families = {}
            return self._families
        stamp = _stamp(self._path)
        if self._families is None or stamp != self._stamp:
            self._families = _read(self._path)
            self._stamp = stamp
        return self._families


@contextlib.contextmanager
def _exclusive(path: Path | None) -> Iterator[None]:
    """Hold the lock file beside ``path`` (one writer at a time across processes)."""
    if path is None:
        yield
        return
    with open(path.with_name(path.name + ".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _stamp(path: Path) -> _Stamp | None:
    """What tells one version of the file from another: every write renames a new file
    over it."""
    try:
        info = path.stat()
    except FileNotFoundError:
        return None
    return info.st_ino, info.st_size, info.st_mtime_ns, info.st_ctime_ns


def covering(name: str, families: Mapping[str, object]) -> str | None:
    """The family a sample name belongs to (itself, or itself less a suffix), if known."""
    if name in families:
        return name
    for suffix in SUFFIXES:
        if name.endswith(suffix) and name[:-len(suffix)] in families:
            return name[:-len(suffix)]
    return None


def _read(path: Path) -> dict[str, MetricMetadata]:
    try:
        return msgspec.json.decode(path.read_bytes(), type=dict[str, MetricMetadata])
    except FileNotFoundError:
        return {}
    except msgspec.DecodeError:  # cut short by a crash mid-write of an older version:
        return {}  # Prometheus resends every family within a minute


def _write(path: Path, families: Mapping[str, MetricMetadata]) -> None:
    temporary = path.with_name(path.name + ".tmp")
    with open(temporary, "wb") as out:
        out.write(msgspec.json.encode(dict(sorted(families.items()))))
        out.flush()
        os.fsync(out.fileno())
    os.replace(temporary, path)
