"""Where esmond data lives in the archive: which series hold a summary, and their kinds.

Everything esmond stores is ordinary archive series, named

* ``<metadata-key>/esmond/<event-type>`` for base data, and
* ``<metadata-key>/esmond/<event-type>{summary="average",window="86400"}`` for a summary,

so the native API and ``watchkeeper query`` see them too. A summary whose state is more
than its served value keeps the rest in companion series with a ``part`` label: an
average keeps its ``count``; a percentage (base or aggregation) its ``numerator`` and
``denominator``; a statistics summary without an aggregation of the same window keeps
its merged ``histogram``. The served series is always a plain read.

Pure: builds keys, no I/O.
"""

from __future__ import annotations

import functools
from typing import Final, Literal, NamedTuple

from watchkeeper.archive.esmond.types import DataType, Summary
from watchkeeper.errors import InvalidData
from watchkeeper.model import SeriesKey

PLUGIN: Final = "esmond"
StoredKind = Literal["float", "histogram", "object"]
Part = Literal["count", "numerator", "denominator", "histogram"]


class Slot(NamedTuple):
    """One stored series of a summary (or of base data)."""

    key: SeriesKey
    kind: StoredKind


@functools.lru_cache(maxsize=65_536)
def series_key(metadata_key: str, event_type: str, summary: Summary,
               part: Part | None = None) -> SeriesKey:
    """The archive key of a base or summary series; InvalidData for names it cannot hold."""
    labels: dict[str, str] = {}
    if summary.type != "base":
        labels = {"summary": summary.type, "window": str(summary.window)}
    if part is not None:
        labels["part"] = part
    return SeriesKey.make(metadata_key, PLUGIN, event_type, labels)


def served_kind(data_type: DataType, summary: Summary) -> StoredKind:
    """The kind of the series a base or summary serves from."""
    if summary.type == "statistics" or data_type in ("json", "subinterval"):
        return "object"
    if data_type == "histogram":
        return "histogram"
    return "float"


def served_slot(metadata_key: str, event_type: str, data_type: DataType,
                summary: Summary) -> Slot | None:
    """The series ``GET .../<summary>/<window>`` reads; None if the names cannot be stored."""
    try:
        key = series_key(metadata_key, event_type, summary)
    except InvalidData:
        return None
    return Slot(key, served_kind(data_type, summary))


def parts(data_type: DataType, summary: Summary, *, has_aggregation: bool) -> tuple[Part, ...]:
    """The companion series a summary keeps besides the one it serves."""
    if summary.type == "average":
        return ("count",)
    if data_type == "percentage":
        return ("numerator", "denominator")
    if summary.type == "statistics" and summary.window > 0 and not has_aggregation:
        return ("histogram",)
    return ()


def part_kind(part: Part) -> StoredKind:
    return "histogram" if part == "histogram" else "float"
