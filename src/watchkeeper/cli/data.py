"""``watchkeeper query`` and ``watchkeeper series``: read the archive through the REST API."""

from __future__ import annotations

import argparse
import os
from datetime import UTC, datetime
from typing import Any

from watchkeeper.cli.render import FORMATS, table
from watchkeeper.client import Client
from watchkeeper.client._native import DEFAULT_URL


def add_commands(commands: Any) -> None:
    query = commands.add_parser("query", help="print the points of a series",
                                description="Print the points of a series.")
    query.add_argument("series", help="series key, e.g. localhost/system/cpu.percent")
    query.add_argument("--since", default="1h", help="how far back (5m, 2h, 1d; default 1h)")
    query.add_argument("--start", help="start time (epoch, ISO 8601); overrides --since")
    query.add_argument("--end", help="end time (default now)")
    query.add_argument("--step", type=float, help="aggregate into buckets of STEP seconds")
    query.add_argument("--agg", help="aggregation for --step: avg min max sum count first last")
    _common(query)
    query.set_defaults(handler=_query)

    series = commands.add_parser("series", help="list series",
                                 description="List the series in the archive.")
    series.add_argument("prefix", nargs="?", default="", help="only series starting with this")
    series.add_argument("--limit", type=int)
    _common(series)
    series.set_defaults(handler=_series)


def _common(cmd: argparse.ArgumentParser) -> None:
    cmd.add_argument("--server", default=os.environ.get("WATCHKEEPER_URL", DEFAULT_URL),
                     help="watchkeeper API URL (default $WATCHKEEPER_URL or %(default)s)")
    cmd.add_argument("--format", "-f", choices=FORMATS, default="human")


def _when(ts: float | None) -> str:
    if ts is None:
        return ""
    return datetime.fromtimestamp(ts, tz=UTC).strftime("%Y-%m-%d %H:%M:%S")


def _query(args: argparse.Namespace) -> int:
    with Client(args.server) as client:
        result = client.query(args.series, start=args.start, end=args.end,
                              since=None if args.start else args.since, step=args.step,
                              agg=args.agg)
    value_header = f"value ({result.unit})" if result.unit else "value"
    if args.format == "human":
        rows: list[list[object]] = [[_when(ts), v] for ts, v in result.points]
        table(["time (UTC)", value_header], rows, fmt="human",
              title=f"{result.series} ({len(result.points)} points)")
    else:
        table(["ts", "value"], [[ts, v] for ts, v in result.points], fmt=args.format)
    return 0


def _series(args: argparse.Namespace) -> int:
    with Client(args.server) as client:
        listing = client.list_series(args.prefix, limit=args.limit)
    rows = [[s.series, s.unit, s.kind, _when(s.last_ts)] for s in listing.series]
    table(["series", "unit", "kind", "last (UTC)"], rows, fmt=args.format,
          title=f"{listing.total} series")
    return 0
