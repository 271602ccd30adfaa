"""esmond's query parameters: time filters, paging, and metadata search filters.

Time filters (reference §2.4), evaluated in this order, all integers, both ends inclusive:
``time``; ``time-start`` + ``time-end``; ``time-start`` + ``time-range``; ``time-end`` +
``time-range``; ``time-start`` alone (open end); ``time-end`` alone (from 0);
``time-range`` alone (the last ``range`` seconds, open end). An open end means no end
for metadata and ``now + 3600`` for data; no filter at all means no condition for
metadata and ``0 .. now`` for data.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final, NamedTuple

from watchkeeper.api.esmond.dns import Resolver, resolve_rule
from watchkeeper.api.limits import MAX_WHOLE, whole_param
from watchkeeper.archive.esmond.abc import MetadataQuery
from watchkeeper.archive.esmond.model import ALL_SUBJECT_FIELDS, IP_FIELDS
from watchkeeper.errors import InvalidData

DEFAULT_LIMIT: Final = 1500
OPEN_END_SLACK: Final = 3600
RESERVED: Final = frozenset({"format", "limit", "offset", "dns-match-rule", "time",
                             "time-start", "time-end", "time-range"})


class TimeRange(NamedTuple):
    begin: int
    end: int | None


def time_filter(params: Mapping[str, str], now: int) -> TimeRange | None:
    """The time filter the parameters ask for, or None when they name none."""
    def get(name: str) -> int | None:
        raw = params.get(name)
        return None if raw is None else _time_value(raw, name)

    at, start, end, span = get("time"), get("time-start"), get("time-end"), get("time-range")
    if at is not None:
        found = TimeRange(at, at)
    elif start is not None and end is not None:
        found = TimeRange(start, end)
    elif start is not None and span is not None:
        found = TimeRange(start, start + span)
    elif end is not None and span is not None:
        found = TimeRange(end - span, end)
    elif start is not None:
        found = TimeRange(start, None)
    elif end is not None:
        found = TimeRange(0, end)
    elif span is not None:
        found = TimeRange(now - span, None)
    else:
        return None
    if found.end is not None and found.end < found.begin:
        raise InvalidData("Requested start time must be less than end time "
                          f"(begin {found.begin}, end {found.end})")
    return found


def data_range(params: Mapping[str, str], now: int) -> tuple[int, int]:
    """The inclusive ``ts`` range of a data query."""
    found = time_filter(params, now)
    if found is None:
        return 0, now
    return found.begin, now + OPEN_END_SLACK if found.end is None else found.end


def _time_value(raw: str, name: str) -> int:
    """An integer time (seconds) within ±2**53, so sums and differences of two stay
    inside the store's 64-bit integers."""
    try:
        value = int(raw.strip())
    except ValueError:
        raise InvalidData(f"Time parameter must be an integer (got {name}={raw[:40]!r})",
                          value=raw[:40]) from None
    if abs(value) > MAX_WHOLE:
        raise InvalidData(f"Time parameter out of range: at most {MAX_WHOLE} in absolute "
                          f"value (got {name}={raw[:40]!r})", value=raw[:40])
    return value


def paging(params: Mapping[str, str]) -> tuple[int, int]:
    """``(limit, offset)``: junk, zero, negative or out-of-range limits fall back to 1500
    and such offsets to 0, as in DRF (whose paginator ignores what it cannot parse)."""
    limit = _lenient(params.get("limit"), "limit")
    offset = _lenient(params.get("offset"), "offset")
    return (limit if limit else DEFAULT_LIMIT), offset


def _lenient(raw: str | None, field: str) -> int:
    try:
        return whole_param(raw, field=field, default=0)
    except InvalidData:
        return 0


def window_value(raw: str) -> int:
    """A summary window from a URL or a filter (seconds, within 0..2**53)."""
    try:
        return whole_param(raw.strip(), field="summary-window", default=0)
    except InvalidData:
        raise InvalidData(f"Summary window parameter must be an integer from 0 to "
                          f"{MAX_WHOLE} (got {raw[:40]!r})") from None


async def metadata_query(params: Mapping[str, str], now: int,
                         resolve: Resolver) -> MetadataQuery:
    """The metadata search the GET parameters ask for (reference §2.3).

    Host names in ``source``, ``destination`` and ``measurement-agent`` are resolved by
    ``dns-match-rule``; any parameter not known to esmond is a free-form parameter
    filter (an unknown name matches nothing).
    """
    rule = params.get("dns-match-rule")
    subject: list[tuple[str, tuple[str, ...]]] = []
    parameters: list[tuple[str, str]] = []
    for name, value in params.items():
        if name in RESERVED or name in ("event-type", "summary-type", "summary-window",
                                        "subject-type", "metadata-key"):
            continue
        if name in ALL_SUBJECT_FIELDS:
            values = await resolve_rule(value, rule, resolve) if name in IP_FIELDS else [value]
            subject.append((name, tuple(values)))
        else:
            parameters.append((name, value))
    window = params.get("summary-window")
    return MetadataQuery(
        subject_type=params.get("subject-type"),
        metadata_key=params.get("metadata-key"),
        subject=tuple(subject),
        parameters=tuple(parameters),
        event_type=params.get("event-type"),
        summary_type=params.get("summary-type"),
        summary_window=None if window is None else window_value(window),
        updated=time_filter(params, now),
    )
