"""The JSON shapes of esmond's archive API (reference §2.7): pure functions over metadata.

Every key is hyphenated (free-form parameter names too: ``bw_ignore_first_seconds``
is listed as ``bw-ignore-first-seconds``); ``summary-window`` is a string;
``base-uri`` and summary ``uri`` are paths from the host root with the deployment prefix;
``url`` is absolute and ``uri`` is its path.
"""

from __future__ import annotations

from typing import Any

from watchkeeper.archive.esmond.model import EventTypeRow, Metadata, summary_rows
from watchkeeper.archive.esmond.types import URL_NAME_OF, SummaryType


def metadata_uri(prefix: str, key: str) -> str:
    return f"{prefix}/archive/{key}/"


def metadata_json(metadata: Metadata, *, prefix: str, origin: str) -> dict[str, Any]:
    """One metadata object; ``origin`` is ``scheme://host[:port]`` of the request."""
    uri = metadata_uri(prefix, metadata.key)
    out: dict[str, Any] = {
        "url": origin + uri,
        "uri": uri,
        "metadata-key": metadata.key,
        "subject-type": metadata.subject_type,
    }
    out.update(metadata.subject)
    for name, value in metadata.parameters:
        out[name.replace("_", "-")] = value
    out["event-types"] = [event_type_json(metadata, name, uri)
                          for name in sorted({r.event_type for r in metadata.event_types})]
    return out


def event_type_json(metadata: Metadata, event_type: str, uri: str) -> dict[str, Any]:
    """An entry of ``event-types``: base URI, base row's time-updated, and summaries."""
    base = next((r for r in metadata.event_types
                 if r.event_type == event_type and r.summary_type == "base"), None)
    return {
        "event-type": event_type,
        "base-uri": f"{uri}{event_type}/base",
        "time-updated": None if base is None else base.time_updated,
        "summaries": [summary_json(row, uri) for row in summary_rows(metadata, event_type)],
    }


def summary_json(row: EventTypeRow, uri: str) -> dict[str, Any]:
    url_name = URL_NAME_OF.get(row.summary_type, row.summary_type)  # type: ignore[call-overload]
    return {
        "summary-type": row.summary_type,
        "summary-window": str(row.summary_window),
        "time-updated": row.time_updated,
        "uri": f"{uri}{row.event_type}/{url_name}/{row.summary_window}",
    }


def summaries_json(metadata: Metadata, event_type: str, summary_type: SummaryType,
                   prefix: str) -> list[dict[str, Any]]:
    """``GET .../<event-type>/<summaries>``: the summary objects of one type."""
    uri = metadata_uri(prefix, metadata.key)
    return [summary_json(row, uri) for row in summary_rows(metadata, event_type, summary_type)]
