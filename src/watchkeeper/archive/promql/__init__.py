"""PromQL over the archive: parsed by ``promql-parser``, evaluated in numpy with
Prometheus 2.x semantics (see docs/promql.md). Pure computation over what
:meth:`Archive.read` returns; the HTTP API is ``watchkeeper.api.prometheus_query``."""
from __future__ import annotations

from watchkeeper.archive.promql.engine import Engine, Limits, Result, parse
from watchkeeper.archive.promql.values import (
    Raw,
    Series,
    format_time,
    format_times,
    format_value,
    format_values,
)
from watchkeeper.errors import BadQuery, QueryError, QueryTimeout, QueryTooLarge

__all__ = ["BadQuery", "Engine", "Limits", "QueryError", "QueryTimeout", "QueryTooLarge",
           "Raw", "Result", "Series", "format_time", "format_times", "format_value",
           "format_values", "parse"]
