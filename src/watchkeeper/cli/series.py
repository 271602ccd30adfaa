"""``watchkeeper query`` and ``watchkeeper series [list]``: read the archive through the REST API.

``series`` lists series by name prefix and, with ``--subject --plugin --metric --label
--match --kind``, finds them as ``GET /api/v1/series`` does (docs/api.md, "Finding
series"). The verb ``list`` may be left out, as ``alarms``' may: ``series web1/`` is
``series list web1/`` (so a prefix spelled ``list`` is given as ``series list list``).
"""

from __future__ import annotations

import argparse
from typing import Any

from watchkeeper.cli.exits import name_flags
from watchkeeper.cli.options import (
    add_client,
    add_step,
    add_time_window,
    output_of,
    server_url,
    token_of,
    window,
)
from watchkeeper.cli.render import table, utc
from watchkeeper.client import Client
from watchkeeper.errors import HTTPStatusError, UsageError

AGGREGATIONS = ("avg", "min", "max", "sum", "count", "first", "last")
KINDS = ("float", "histogram", "object")
LIST = "list"
# The API's parameters, as the flags that set them (its 400s name the parameter).
SERIES_FLAGS = {"subject": "--subject", "plugin": "--plugin", "metric": "--metric",
                "label": "--label", "match": "--match", "kind": "--kind", "limit": "--limit"}


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

    series = commands.add_parser(
        "series", help="list series: by prefix, subject, plugin, metric, label, text, kind",
        description="List the series in the archive, in name order: those starting with "
                    "PREFIX and passing every filter given. `series list` and `series` are "
                    "one command.")
    series.add_argument("verb", nargs="?", metavar=LIST,
                        help="the action: list (the default, may be left out)")
    series.add_argument("prefix", nargs="?", metavar="PREFIX",
                        help="only series whose name starts with this")
    series.add_argument("--subject", metavar="NAME",
                        help="only series of this subject (the device), exactly")
    series.add_argument("--plugin", metavar="NAME",
                        help="only series of this plugin (the collector's name), exactly")
    series.add_argument("--metric", metavar="NAME", help="only series of this metric, exactly")
    series.add_argument("--label", action="append", type=label_pair, default=[],
                        metavar="NAME=VALUE",
                        help="only series carrying this label with this value (NAME= for an "
                             "empty one); repeatable: all of them")
    series.add_argument("--match", action="append", type=text, default=[], metavar="TEXT",
                        help="only series whose name contains TEXT (case-sensitive); "
                             "repeatable: all of them")
    series.add_argument("--kind", choices=KINDS, help="only series of this kind")
    series.add_argument("--limit", type=int, metavar="N",
                        help="list at most N series (default: all)")
    add_client(series)
    series.set_defaults(handler=_series)


def label_pair(value: str) -> tuple[str, str]:
    """``NAME=VALUE`` as a pair (argparse type of ``--label``)."""
    name, equals, rest = value.partition("=")
    if not equals or not name:
        raise argparse.ArgumentTypeError(f"{value!r} is not NAME=VALUE (e.g. host=web1)")
    return name, rest


def text(value: str) -> str:
    """A text to look for: not empty (argparse type of ``--match``)."""
    if not value:
        raise argparse.ArgumentTypeError("give a text to look for, not an empty one")
    return value


def client_for(args: argparse.Namespace) -> Client:
    """A client for ``--server`` with ``--token`` if given, verifying TLS unless
    ``--insecure``."""
    return Client(server_url(args), token=token_of(args), verify=not args.insecure)


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


def _prefix(args: argparse.Namespace) -> str:
    """PREFIX from ``series [list] [PREFIX]``."""
    if args.verb in (None, LIST):
        return str(args.prefix or "")
    if args.prefix is not None:
        raise UsageError(f"series takes one PREFIX, not {args.verb!r} and {args.prefix!r} "
                         f"({args.verb!r} is no action; the action is list)")
    return str(args.verb)


def _labels(pairs: list[tuple[str, str]]) -> dict[str, str]:
    labels: dict[str, str] = {}
    for name, value in pairs:
        if labels.setdefault(name, value) != value:
            raise UsageError(f"--label {name} is given twice ({labels[name]!r} and {value!r}): "
                             "a series carries one value for each label")
    return labels


def _series(args: argparse.Namespace) -> int:
    prefix = _prefix(args)
    with client_for(args) as client:
        try:
            listing = client.list_series(
                prefix, subject=args.subject, plugin=args.plugin, metric=args.metric,
                labels=_labels(args.label), matches=args.match, kind=args.kind,
                limit=args.limit)
        except HTTPStatusError as exc:
            raise name_flags(exc, SERIES_FLAGS) from None
    rows = [[s.series, s.unit, s.kind, utc(s.last_ts)] for s in listing.series]
    table(["series", "unit", "kind", "last (UTC)"], rows, fmt=output_of(args),
          title=f"{listing.total} series",
          hint="a PREFIX, --plugin, --label NAME=VALUE or --limit N lists fewer")
    return 0
