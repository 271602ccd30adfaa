"""``watchkeeper query`` and ``watchkeeper series``: read the archive through the REST API."""

from __future__ import annotations

import argparse
from typing import Any

from watchkeeper.cli.options import (
    add_client,
    add_step,
    add_time_window,
    output_of,
    server_url,
    window,
)
from watchkeeper.cli.render import table, utc
from watchkeeper.client import Client
from watchkeeper.errors import UsageError

AGGREGATIONS = ("avg", "min", "max", "sum", "count", "first", "last")


def add_commands(commands: Any) -> None:
    query = commands.add_parser("query", help="print the points of a series",
                                description="Print the points of a series, or their "
                                            "aggregates over --step buckets.")
    query.add_argument("series", help="series key, e.g. localhost/system/cpu.percent")
    add_time_window(query)
    add_step(query)
    query.add_argument("--agg", choices=AGGREGATIONS,
                       help="aggregate of each --step bucket (default avg); needs --step")
    add_client(query)
    query.set_defaults(handler=_query)

    series = commands.add_parser("series", help="list series",
                                 description="List the series in the archive.")
    series.add_argument("prefix", nargs="?", default="", help="only series starting with this")
    series.add_argument("--limit", type=int, metavar="N",
                        help="list at most N series (default: all)")
    add_client(series)
    series.set_defaults(handler=_series)


def client_for(args: argparse.Namespace, token: str | None = None) -> Client:
    """A client for ``--server``, verifying TLS unless ``--insecure``."""
    return Client(server_url(args), token=token, verify=not args.insecure)


def _query(args: argparse.Namespace) -> int:
    if args.agg and args.step is None:
        raise UsageError("--agg needs --step (the bucket size, e.g. --step 5m)")
    start, end = window(args)
    with client_for(args) as client:
        result = client.query(args.series, start=start, end=end, step=args.step, agg=args.agg)
    fmt = output_of(args)
    value_header = f"value ({result.unit})" if result.unit and fmt == "table" else "value"
    header = "time (UTC)" if fmt == "table" else "time"
    rows: list[list[object]] = [[utc(ts), v] for ts, v in result.points]
    table([header, value_header], rows, fmt=fmt,
          title=f"{result.series} ({len(result.points)} points)",
          hint="--step 5m --agg max aggregates them")
    return 0


def _series(args: argparse.Namespace) -> int:
    with client_for(args) as client:
        listing = client.list_series(args.prefix, limit=args.limit)
    rows = [[s.series, s.unit, s.kind, utc(s.last_ts)] for s in listing.series]
    table(["series", "unit", "kind", "last (UTC)"], rows, fmt=output_of(args),
          title=f"{listing.total} series", hint="a PREFIX or --limit N lists fewer")
    return 0
