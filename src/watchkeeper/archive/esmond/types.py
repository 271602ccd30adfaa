"""esmond's vocabulary: the 49 perfSONAR event types, their data types, and summaries.

Pure data, no I/O. The table is esmond 4.2.1's ``types.py`` (identical on master); the
names in URLs (plural) and in JSON (singular) are both here, so every other module asks
this one instead of spelling them again.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final, Literal, NamedTuple, get_args

DataType = Literal["integer", "float", "percentage", "histogram", "subinterval", "json"]
SummaryType = Literal["base", "aggregation", "average", "statistics"]
SubjectType = Literal["point-to-point", "network-element"]

DATA_TYPES: Final[tuple[DataType, ...]] = get_args(DataType)
SUMMARY_TYPES: Final[tuple[SummaryType, ...]] = get_args(SummaryType)
SUBJECT_TYPES: Final[tuple[SubjectType, ...]] = get_args(SubjectType)


def _table() -> dict[str, DataType]:
    by_type: dict[DataType, str] = {
        "integer": "throughput packet-count-lost packet-count-lost-bidir packet-count-sent "
                   "packet-duplicates packet-duplicates-bidir packet-reorders "
                   "packet-reorders-bidir packet-retransmits packet-rtt tcp-windowsize "
                   "path-mtu ntp-stratum ntp-reach",
        "float": "time-error-estimates ntp-offset ntp-jitter ntp-wander ntp-polling-interval "
                 "ntp-delay ntp-dispersion",
        "percentage": "packet-loss-rate packet-loss-rate-bidir",
        "histogram": "histogram-owdelay histogram-rtt histogram-ttl histogram-ttl-reverse",
        "subinterval": "throughput-subintervals packet-retransmits-subintervals "
                       "packet-rtt-subintervals tcp-windowsize-subintervals",
        "json": "failures packet-trace packet-trace-multi pscheduler-raw pscheduler-run-href "
                "iostat mpstat rusage tcpinfo streams-tcpinfo streams-throughput "
                "streams-throughput-subintervals streams-packet-retransmits "
                "streams-packet-retransmits-subintervals streams-packet-rtt "
                "streams-packet-rtt-subintervals streams-tcp-windowsize "
                "streams-tcp-windowsize-subintervals",
    }
    return {name: data_type for data_type, names in by_type.items() for name in names.split()}


EVENT_TYPES: Final[Mapping[str, DataType]] = MappingProxyType(_table())
"""Every event type the server accepts, with its data type."""

ALLOWED_SUMMARIES: Final[Mapping[DataType, tuple[SummaryType, ...]]] = MappingProxyType({
    "integer": ("aggregation", "average"),
    "float": ("aggregation", "average"),
    "percentage": ("aggregation",),
    "histogram": ("aggregation", "statistics"),
    "subinterval": (),
    "json": (),
})
"""The summaries a metadata may register for an event type of each data type."""

URL_NAMES: Final[Mapping[str, SummaryType]] = MappingProxyType({
    "base": "base",
    "aggregations": "aggregation",
    "averages": "average",
    "statistics": "statistics",
})
"""Summary names as they appear in URLs (plural) to their JSON names."""

URL_NAME_OF: Final[Mapping[SummaryType, str]] = MappingProxyType(
    {json_name: url_name for url_name, json_name in URL_NAMES.items()}
)


class Summary(NamedTuple):
    """One summary of an event type: its JSON name and window in seconds (0 for base)."""

    type: SummaryType
    window: int


BASE: Final = Summary("base", 0)


def data_type(event_type: str) -> DataType | None:
    """The data type of a known event type, None for any other name."""
    return EVENT_TYPES.get(event_type)


def summary_allowed(event_type: str, summary_type: str) -> bool:
    """Whether ``summary_type`` (JSON name, not base) may be registered for ``event_type``."""
    kind = EVENT_TYPES.get(event_type)
    return kind is not None and summary_type in ALLOWED_SUMMARIES[kind]
