"""Metadata: what was measured (the subject), how (free-form parameters), and which
event types and summaries it records. Frozen value types and the pure functions that
build them from a metadata POST; no I/O.

A metadata is identified twice: by its ``key`` (32 hex digits of a random UUID, used in
URLs) and by a *checksum* of its content, so that posting the same description again
returns the metadata already stored (esmond's "register, get key, write data" pattern).
"""

from __future__ import annotations

import contextlib
import hashlib
import ipaddress
import json
import uuid
from collections.abc import Iterable, Mapping
from typing import Any, Final

import msgspec

from watchkeeper.archive.esmond.types import (
    EVENT_TYPES,
    SUBJECT_TYPES,
    URL_NAME_OF,
    Summary,
    SummaryType,
    summary_allowed,
)
from watchkeeper.errors import InvalidData

SUBJECT_FIELDS: Final[Mapping[str, tuple[str, ...]]] = {
    "point-to-point": ("source", "destination", "measurement-agent", "tool-name",
                       "input-source", "input-destination"),
    "network-element": ("source", "measurement-agent", "tool-name", "input-source"),
}
"""The subject fields of each subject type, all required, in their JSON (hyphenated) names."""

ALL_SUBJECT_FIELDS: Final = SUBJECT_FIELDS["point-to-point"]
IP_FIELDS: Final = ("source", "destination", "measurement-agent")
RESERVED_KEYS: Final = frozenset({
    "url", "uri", "metadata-key", "subject-type", "event-types", "metadata-count-total",
    "metadata-previous-page", "metadata-next-page",
})
"""Output keys a free-form parameter may not take (after ``_`` becomes ``-``)."""


class EventTypeRow(msgspec.Struct, frozen=True, kw_only=True, order=True):
    """One registered (event type, summary) pair and when data was last written to it."""

    event_type: str
    summary_type: str
    summary_window: int
    time_updated: int | None = None


class Metadata(msgspec.Struct, frozen=True, kw_only=True):
    """A stored metadata. ``subject`` and ``parameters`` keep their posted order."""

    key: str
    subject_type: str
    subject: tuple[tuple[str, str], ...]
    parameters: tuple[tuple[str, str], ...]
    event_types: tuple[EventTypeRow, ...]

    def summaries(self) -> dict[str, tuple[Summary, ...]]:
        """The summaries registered per event type, base first (so every type is listed)."""
        out: dict[str, list[Summary]] = {}
        for row in sorted(self.event_types, key=_row_order):
            summary = Summary(row.summary_type, row.summary_window)  # type: ignore[arg-type]
            out.setdefault(row.event_type, []).append(summary)
        return {name: tuple(rows) for name, rows in out.items()}


class MetadataSpec(msgspec.Struct, frozen=True, kw_only=True):
    """A metadata as posted, checked and normalised, before it has a key."""

    subject_type: str
    subject: tuple[tuple[str, str], ...]
    parameters: tuple[tuple[str, str], ...]
    rows: tuple[tuple[str, str, int], ...]  # (event type, summary type, window), base included

    @property
    def checksum(self) -> str:
        return checksum(self)

    def stored(self, key: str) -> Metadata:
        """The metadata this spec becomes under ``key``, before any data is written."""
        rows = tuple(EventTypeRow(event_type=e, summary_type=s, summary_window=w)
                     for e, s, w in self.rows)
        return Metadata(key=key, subject_type=self.subject_type, subject=self.subject,
                        parameters=self.parameters, event_types=rows)


def new_key() -> str:
    """A fresh metadata key: 32 lowercase hex digits of a random UUID, as esmond makes them."""
    return uuid.uuid4().hex


def checksum(spec: MetadataSpec) -> str:
    """esmond's SHA-256 over the lowercased canonical text of a metadata.

    ``subject-type::t``, then ``,field::value`` for the subject fields by their
    underscored names, ``,key::value`` for the parameters sorted by key, and
    ``,event-type::summary::window`` for the rows sorted, base rows included.
    """
    digest = hashlib.sha256(f"subject-type::{spec.subject_type.lower()}".encode())
    for name, value in sorted((n.replace("-", "_"), v) for n, v in spec.subject):
        digest.update(f",{name.lower()}::{value.lower()}".encode())
    for name, value in sorted(spec.parameters):
        digest.update(f",{name.lower()}::{value.lower()}".encode())
    for event_type, summary_type, window in sorted(spec.rows):
        digest.update(f",{event_type.lower()}::{summary_type.lower()}::{window}".encode())
    return digest.hexdigest()


def parse_metadata(body: object) -> MetadataSpec:
    """Check a metadata POST body and normalise it; InvalidData says what is wrong.

    Error texts are esmond's where esmond has one. Unlike esmond, missing or malformed
    subject fields are refused here (esmond failed in the database with a 500).
    """
    if not isinstance(body, dict):
        raise InvalidData("Request body must be a JSON object describing one metadata")
    if "subject-type" not in body:
        raise InvalidData("Missing subject-type field in request")
    if "event-types" not in body:
        raise InvalidData("Missing event-types field in request")
    subject_type = body["subject-type"]
    if subject_type not in SUBJECT_TYPES:
        raise InvalidData(f"Invalid subject type {subject_type}")
    if "metadata-key" in body:
        raise InvalidData("metadata-key is not allowed to be specified")
    subject = _subject(subject_type, body)
    parameters = _parameters(body)
    rows = _event_type_rows(body["event-types"])
    return MetadataSpec(subject_type=subject_type, subject=subject, parameters=parameters,
                        rows=rows)


def _subject(subject_type: str, body: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
    # Subject fields another subject type has (`destination`, `input-destination` on a
    # network-element) are left out, neither subject nor parameter, as esmond keeps only
    # the subject type's own: esmond-client's MetadataPost sends all six whatever the type.
    fields = SUBJECT_FIELDS[subject_type]
    subject = []
    for name in fields:
        value = body.get(name)
        if value is None or value == "":
            raise InvalidData(f"Missing required field '{name}' for subject-type "
                              f"{subject_type}")
        if not isinstance(value, str):
            raise InvalidData(f"Field '{name}' must be a string (got {value!r})")
        subject.append((name, normalise_ip(name, value) if name in IP_FIELDS else value))
    return tuple(subject)


def normalise_ip(name: str, value: str) -> str:
    """An IP address in its canonical text (compressed IPv6); InvalidData names the field."""
    try:
        return str(ipaddress.ip_address(value.strip()))
    except ValueError:
        raise InvalidData(f"Field '{name}' must be an IP address (got {value!r})") from None


def _parameters(body: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
    out = []
    for name, value in body.items():
        if name in ("subject-type", "event-types") or name in ALL_SUBJECT_FIELDS:
            continue
        if value is None:  # MetadataPost sends unset free-form keys as null: skip them
            continue
        if name.replace("_", "-") in RESERVED_KEYS or not name:
            raise InvalidData(f"Field name '{name}' is reserved and cannot be a parameter")
        out.append((name, parameter_text(value)))
    return tuple(out)


def parameter_text(value: object) -> str:
    """How a free-form value is stored and returned: text, as esmond stores ``str(value)``.

    Numbers and booleans read as Python prints them (``20``, ``0.1``, ``True``); lists
    and objects as JSON (esmond stored their Python repr).
    """
    if isinstance(value, str):
        return value
    if isinstance(value, bool | int | float):
        return str(value)
    return json.dumps(value, separators=(", ", ": "), sort_keys=True)


def _event_type_rows(event_types: object) -> tuple[tuple[str, str, int], ...]:
    if not isinstance(event_types, list):
        raise InvalidData("event_types must be a list")
    rows: dict[tuple[str, str, int], None] = {}
    for entry in event_types:
        if not isinstance(entry, dict) or "event-type" not in entry:
            raise InvalidData("No event-type defined")
        name = entry["event-type"]
        if not isinstance(name, str) or name not in EVENT_TYPES:
            raise InvalidData(f"Invalid event-type {name}")
        rows[(name, "base", 0)] = None
        for summary in _summaries(name, entry.get("summaries")):
            rows[(name, summary.type, summary.window)] = None
    return tuple(rows)


def _summaries(event_type: str, summaries: object) -> Iterable[Summary]:
    if summaries is None:
        return
    if not isinstance(summaries, list):
        raise InvalidData(f"summaries of event-type {event_type} must be a list")
    for summary in summaries:
        if not isinstance(summary, dict) or "summary-type" not in summary:
            raise InvalidData("Summary must contain summary-type")
        kind = summary["summary-type"]
        if kind not in URL_NAME_OF:
            raise InvalidData(f"Invalid summary type '{kind}'")
        if kind == "base":
            continue
        if not summary_allowed(event_type, kind):
            raise InvalidData(f"Summary type {kind} not allowed for event-type {event_type}")
        if "summary-window" not in summary:
            raise InvalidData("Summary must contain summary-window")
        yield Summary(kind, summary_window(summary["summary-window"]))


def summary_window(value: object) -> int:
    """A summary window: a non-negative whole number of seconds (int or numeric string)."""
    window = None
    if isinstance(value, int | str) and not isinstance(value, bool):
        with contextlib.suppress(ValueError):
            window = int(value)
    if window is None:
        raise InvalidData(f"Summary window must be an integer (got {value!r})")
    if window < 0:
        raise InvalidData(f"Summary window must not be negative (got {value!r})")
    return window


def _row_order(row: EventTypeRow) -> tuple[str, int, str, int]:
    return (row.event_type, 0 if row.summary_type == "base" else 1, row.summary_type,
            row.summary_window)


def summary_rows(metadata: Metadata, event_type: str,
                 summary_type: SummaryType | None = None) -> list[EventTypeRow]:
    """The non-base rows of ``event_type`` (optionally of one type), ordered for output."""
    return sorted((row for row in metadata.event_types
                   if row.event_type == event_type and row.summary_type != "base"
                   and (summary_type is None or row.summary_type == summary_type)),
                  key=_row_order)
