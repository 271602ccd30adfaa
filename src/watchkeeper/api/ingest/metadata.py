"""Prometheus metric metadata (``# TYPE``, ``# HELP``, unit) by metric family name.

Prometheus sends it in remote-write requests of their own (``WriteRequest.metadata``,
every ``metadata_config.send_interval``, by default a minute); ``/prometheus/api/v1/metadata``
answers it (decision D46). One entry per family, the latest sent: Prometheus lists each
distinct entry its targets expose, which for one family is one entry unless targets
disagree. Kept in memory and, when the store has a path, in one JSON file written
atomically (a temporary file renamed over it) whenever an entry changes; Prometheus
resends the same entries every interval, which costs a comparison and no write.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Final

import msgspec

FILE_NAME: Final = "prometheus-metadata.json"
TYPES: Final = ("unknown", "counter", "gauge", "histogram", "gaugehistogram", "summary",
                "info", "stateset")
"""Remote write's ``MetricMetadata.MetricType`` values in order, as the API spells them."""
SUFFIXES: Final = ("_bucket", "_sum", "_count", "_total", "_created", "_info", "_gcount",
                   "_gsum")
"""Sample-name suffixes of a family's series (``h_bucket`` belongs to family ``h``)."""
MAX_FAMILIES: Final = 100_000
"""Families kept at most; a request past the limit keeps what is already known."""


class MetricMetadata(msgspec.Struct, frozen=True):
    """One family's metadata, as Prometheus' ``/api/v1/metadata`` shows it."""

    type: str
    help: str
    unit: str


class MetadataStore:
    """Metadata by family name; ``path`` (a JSON file) makes it survive a restart. Read
    on first use (no I/O in the constructor); safe from the event loop and worker threads."""

    def __init__(self, path: Path | None = None) -> None:
        self._path = path
        self._families: dict[str, MetricMetadata] | None = None
        self._lock = threading.Lock()

    def families(self) -> dict[str, MetricMetadata]:
        """Every family's metadata (a copy)."""
        with self._lock:
            return dict(self._loaded())

    def update(self, entries: Iterable[tuple[str, MetricMetadata]]) -> int:
        """Keep ``entries`` (family, metadata); the number that changed, written to the
        file before this returns when there is one."""
        with self._lock:
            families = self._loaded()
            changed = 0
            for family, meta in entries:
                if families.get(family) != meta and (family in families
                                                     or len(families) < MAX_FAMILIES):
                    families[family] = meta
                    changed += 1
            if changed and self._path is not None:
                _write(self._path, families)
            return changed

    def _loaded(self) -> dict[str, MetricMetadata]:
        if self._families is None:
            self._families = _read(self._path) if self._path is not None else {}
        return self._families


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
