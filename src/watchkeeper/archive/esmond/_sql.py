"""SQL shared by the SQLite and PostgreSQL metadata stores (``%s`` placeholders).

The schemas differ only in types (see each store); queries and row decoding are here,
so both stores answer a search identically.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Final

from watchkeeper.archive.esmond.abc import MetadataQuery
from watchkeeper.archive.esmond.model import (
    ALL_SUBJECT_FIELDS,
    SUBJECT_FIELDS,
    EventTypeRow,
    Metadata,
    MetadataSpec,
)

COLUMNS: Final = {name: name.replace("-", "_") for name in ALL_SUBJECT_FIELDS}
"""Subject field (JSON name) to its column."""

METADATA_COLUMNS: Final = ("id", "metadata_key", "subject_type", *COLUMNS.values())

INSERT_METADATA: Final = (
    "INSERT INTO esmond_metadata (metadata_key, checksum, subject_type, "  # noqa: S608 - fixed names
    + ", ".join(COLUMNS.values()) + ") VALUES (%s, %s, %s" + ", %s" * len(COLUMNS) + ")"
)
INSERT_ROW: Final = (
    "INSERT INTO esmond_event_types (metadata_id, event_type, summary_type, summary_window, "
    "time_updated) VALUES (%s, %s, %s, %s, %s)"
)
INSERT_PARAMETER: Final = (
    "INSERT INTO esmond_parameters (metadata_id, position, name, value) VALUES (%s, %s, %s, %s)"
)
BY_CHECKSUM: Final = "SELECT metadata_key FROM esmond_metadata WHERE checksum = %s"
ID_OF_KEY: Final = "SELECT id FROM esmond_metadata WHERE metadata_key = %s"
DELETE_METADATA: Final = (
    "DELETE FROM esmond_parameters WHERE metadata_id = %s",
    "DELETE FROM esmond_event_types WHERE metadata_id = %s",
    "DELETE FROM esmond_metadata WHERE id = %s",
)
TOUCH: Final = (
    "UPDATE esmond_event_types SET time_updated = %s WHERE event_type = %s AND metadata_id = "
    "(SELECT id FROM esmond_metadata WHERE metadata_key = %s)"
)


def metadata_params(key: str, checksum: str, spec: MetadataSpec | Metadata) -> tuple[Any, ...]:
    subject = dict(spec.subject)
    return (key, checksum, spec.subject_type, *(subject.get(name) for name in COLUMNS))


def where(query: MetadataQuery) -> tuple[str, list[Any]]:
    """The WHERE clause (over ``esmond_metadata m``) of a search, and its parameters.

    Values only ever travel as ``%s`` parameters; the text holds fixed column names.
    """
    clauses: list[str] = []
    params: list[Any] = []
    if query.subject_type is not None:
        clauses.append("m.subject_type = %s")
        params.append(query.subject_type)
    if query.metadata_key is not None:
        clauses.append("m.metadata_key = %s")
        params.append(query.metadata_key)
    for field, values in query.subject:
        column = COLUMNS[field]  # KeyError for an unknown field: a caller's bug
        if not values:
            clauses.append("1 = 0")
            continue
        marks = ", ".join(["%s"] * len(values))
        clauses.append(f"m.{column} IN ({marks})")
        params.extend(values)
    row_clauses, row_params = _row_conditions(query)
    if row_clauses:
        conditions = "".join(f" AND {c}" for c in row_clauses)
        clauses.append(
            f"EXISTS (SELECT 1 FROM esmond_event_types e WHERE e.metadata_id = m.id{conditions})"  # noqa: S608 - fixed text
        )
        params.extend(row_params)
    for name, value in query.parameters:
        clauses.append("EXISTS (SELECT 1 FROM esmond_parameters p WHERE p.metadata_id = m.id "
                       "AND p.name = %s AND p.value = %s)")
        params.extend((name, value))
    return (" WHERE " + " AND ".join(clauses)) if clauses else "", params


def _row_conditions(query: MetadataQuery) -> tuple[list[str], list[Any]]:
    clauses: list[str] = []
    params: list[Any] = []
    for column, value in (("event_type", query.event_type),
                          ("summary_type", query.summary_type),
                          ("summary_window", query.summary_window)):
        if value is not None:
            clauses.append(f"e.{column} = %s")
            params.append(value)
    if query.updated is not None:
        begin, end = query.updated
        clauses.append("e.time_updated >= %s")
        params.append(begin)
        if end is not None:
            clauses.append("e.time_updated <= %s")
            params.append(end)
    return clauses, params


def page_sql(where_sql: str, limit: int | None, offset: int,
             unlimited: str) -> tuple[str, list[Any]]:
    """The page query; ``unlimited`` is the dialect's "no limit" (``-1`` or ``ALL``)."""
    columns = ", ".join("m." + c for c in METADATA_COLUMNS)
    sql = f"SELECT {columns} FROM esmond_metadata m{where_sql} ORDER BY m.metadata_key"  # noqa: S608 - see where()
    params: list[Any] = []
    if limit is not None:
        sql += " LIMIT %s OFFSET %s"
        params.extend((limit, offset))
    elif offset:
        sql += f" LIMIT {unlimited} OFFSET %s"
        params.append(offset)
    return sql, params


def count_sql(where_sql: str) -> str:
    return f"SELECT COUNT(*) FROM esmond_metadata m{where_sql}"  # noqa: S608 - see where()


def details_sql(count: int) -> tuple[str, str]:
    """Queries for the event-type rows and parameters of ``count`` metadata ids."""
    marks = ", ".join(["%s"] * count)
    rows = (
        "SELECT metadata_id, event_type, summary_type, summary_window, time_updated "  # noqa: S608 - marks only
        f"FROM esmond_event_types WHERE metadata_id IN ({marks})"
    )
    parameters = (
        "SELECT metadata_id, name, value FROM esmond_parameters "  # noqa: S608 - marks only
        f"WHERE metadata_id IN ({marks}) ORDER BY metadata_id, position"
    )
    return rows, parameters


def assemble(heads: Sequence[Sequence[Any]], rows: Iterable[Sequence[Any]],
             parameters: Iterable[Sequence[Any]]) -> list[Metadata]:
    """Metadata objects from the page's metadata rows, event-type rows and parameters."""
    rows_by_id: dict[int, list[EventTypeRow]] = {}
    for mid, event_type, summary_type, window, updated in rows:
        rows_by_id.setdefault(mid, []).append(EventTypeRow(
            event_type=event_type, summary_type=summary_type, summary_window=int(window),
            time_updated=None if updated is None else int(updated)))
    params_by_id: dict[int, list[tuple[str, str]]] = {}
    for mid, name, value in parameters:
        params_by_id.setdefault(mid, []).append((name, value))
    out = []
    for head in heads:
        mid, key, subject_type, *values = head
        subject = dict(zip(COLUMNS, values, strict=True))
        fields = SUBJECT_FIELDS.get(subject_type, ALL_SUBJECT_FIELDS)
        out.append(Metadata(
            key=key, subject_type=subject_type,
            subject=tuple((f, subject[f]) for f in fields if subject[f] is not None),
            parameters=tuple(params_by_id.get(mid, ())),
            event_types=tuple(sorted(rows_by_id.get(mid, ()))),
        ))
    return out
