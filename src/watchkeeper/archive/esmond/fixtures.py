"""Reading esmond's own data: Django fixtures of metadata, and Cassandra test-data rows.

Pure parsing (the caller reads the files) plus two loaders onto an :class:`EsmondArchive`.
Metadata keep their keys, checksums and ``time_updated``; points are stored as given,
summaries included (esmond's daily histogram aggregation in its test data is not
bin-aligned, so it could not be recomputed; reference §7).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from watchkeeper.archive.esmond.model import ALL_SUBJECT_FIELDS, EventTypeRow, Metadata
from watchkeeper.archive.esmond.service import EsmondArchive
from watchkeeper.archive.esmond.types import BASE, EVENT_TYPES, Summary
from watchkeeper.errors import InvalidData

SeriesPoints = dict[tuple[str, str, Summary], list[tuple[int, Any]]]


def parse_fixture(records: Iterable[Mapping[str, Any]]) -> list[tuple[Metadata, str]]:
    """Metadata and their checksums from a Django fixture (``api.ps*`` models)."""
    heads: dict[int, Mapping[str, Any]] = {}
    subjects: dict[int, tuple[tuple[str, str], ...]] = {}
    rows: dict[int, list[EventTypeRow]] = {}
    params: dict[int, list[tuple[int, str, str]]] = {}
    for record in records:
        model, pk, fields = record["model"], int(record["pk"]), record["fields"]
        if model == "api.psmetadata":
            heads[pk] = fields
        elif model in ("api.pspointtopointsubject", "api.psnetworkelementsubject"):
            given = {name.replace("_", "-"): value for name, value in fields.items()}
            subjects[int(fields["metadata"])] = tuple(
                (name, str(given[name])) for name in ALL_SUBJECT_FIELDS
                if given.get(name) is not None)
        elif model == "api.pseventtypes":
            rows.setdefault(int(fields["metadata"]), []).append(EventTypeRow(
                event_type=fields["event_type"], summary_type=fields["summary_type"],
                summary_window=int(fields["summary_window"]),
                time_updated=_epoch(fields.get("time_updated"))))
        elif model == "api.psmetadataparameters":
            params.setdefault(int(fields["metadata"]), []).append(
                (pk, fields["parameter_key"], str(fields["parameter_value"])))
    out = []
    for pk, head in sorted(heads.items()):
        metadata = Metadata(
            key=head["metadata_key"], subject_type=head["subject_type"],
            subject=subjects.get(pk, ()),
            parameters=tuple((k, v) for _, k, v in sorted(params.get(pk, []))),
            event_types=tuple(sorted(rows.get(pk, []))))
        out.append((metadata, head["checksum"]))
    return out


def _epoch(text: str | None) -> int | None:
    if text is None:
        return None
    return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp())


def parse_test_data(rows: Iterable[Mapping[str, Any]]) -> SeriesPoints:
    """Points by (metadata key, event type, summary) from esmond's test-data rows.

    A row is ``{"path": ["ps", "<event_type>", "<key>"[, "<summary>", "<window>"]],
    "ts": <ms>, "val": ...}``; the event type is written with ``_`` for ``-``.
    """
    out: SeriesPoints = {}
    for row in rows:
        path = row["path"]
        event_type = str(path[1]).replace("_", "-")
        if event_type not in EVENT_TYPES:
            raise InvalidData(f"unknown event type in test data path {path}", field="path")
        summary = BASE if len(path) < 5 else Summary(path[3], int(path[4]))
        ts = int(row["ts"]) // 1000
        out.setdefault((str(path[2]), event_type, summary), []).append((ts, row["val"]))
    return out


async def load_fixture(esmond: EsmondArchive, records: Iterable[Mapping[str, Any]]) -> int:
    """Store every metadata of a fixture; returns how many."""
    loaded = parse_fixture(records)
    for metadata, checksum in loaded:
        await esmond.metadata.load(metadata, checksum)
    return len(loaded)


async def load_test_data(esmond: EsmondArchive, rows: Iterable[Mapping[str, Any]]) -> int:
    """Store test-data points as given (integers served as floats); returns how many."""
    stored = 0
    for (key, event_type, summary), points in parse_test_data(rows).items():
        numeric = EVENT_TYPES[event_type] in ("integer", "float")
        values = [(ts, float(v) if numeric else v) for ts, v in points]
        stored += await esmond.import_points(key, event_type, summary, values)
    return stored
