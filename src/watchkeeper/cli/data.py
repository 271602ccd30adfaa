"""``watchkeeper query`` and ``watchkeeper series``: read the archive through the REST API."""

from __future__ import annotations

import argparse
import os
import sys
from datetime import UTC, datetime
from typing import Any

from watchkeeper.cli.render import FORMATS, table
from watchkeeper.client import Client
from watchkeeper.client._native import DEFAULT_URL
from watchkeeper.wire import AlarmInfo


def add_commands(commands: Any) -> None:
    query = commands.add_parser("query", help="print the points of a series",
                                description="Print the points of a series.")
    query.add_argument("series", help="series key, e.g. localhost/system/cpu.percent")
    query.add_argument("--since", default="1h", help="how far back (5m, 2h, 1d; default 1h)")
    query.add_argument("--start", help="start time (epoch, ISO 8601); overrides --since")
    query.add_argument("--end", help="end time (default now)")
    query.add_argument("--step", type=float, help="aggregate into buckets of STEP seconds")
    query.add_argument("--agg", help="aggregation for --step: avg min max sum count first last")
    common_options(query)
    query.set_defaults(handler=_query)

    series = commands.add_parser("series", help="list series",
                                 description="List the series in the archive.")
    series.add_argument("prefix", nargs="?", default="", help="only series starting with this")
    series.add_argument("--limit", type=int)
    common_options(series)
    series.set_defaults(handler=_series)

    alarms = commands.add_parser("alarms", help="list, show and act on alarms",
                                 description="List, show and act on alarms.")
    alarms.add_argument("action", nargs="?", default="list",
                        choices=("list", "show", "ack", "ackremove", "snooze", "unsnooze",
                                 "cancel", "uncancel"))
    alarms.add_argument("key", nargs="?", help="entity id (resource/COMPONENT/RESOURCE) or "
                                               "alarm id, for every action but list")
    alarms.add_argument("--status", help="list only alarms with this status (ongoing, ...)")
    alarms.add_argument("--resolved", action="store_true", help="include resolved alarms")
    alarms.add_argument("--author", default=os.environ.get("USER", "cli"))
    alarms.add_argument("--message", "-m", default="")
    alarms.add_argument("--duration", type=float, help="seconds, for snooze")
    common_options(alarms)
    alarms.set_defaults(handler=_alarms)


def common_options(cmd: argparse.ArgumentParser) -> None:
    """``--server`` and ``--format``, shared by every command that reads the API."""
    cmd.add_argument("--server", default=os.environ.get("WATCHKEEPER_URL", DEFAULT_URL),
                     help="watchkeeper API URL (default $WATCHKEEPER_URL or %(default)s)")
    cmd.add_argument("--format", "-f", choices=FORMATS, default="human")


def when(ts: float | None) -> str:
    """An epoch timestamp as UTC text for tables."""
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
        rows: list[list[object]] = [[when(ts), v] for ts, v in result.points]
        table(["time (UTC)", value_header], rows, fmt="human",
              title=f"{result.series} ({len(result.points)} points)")
    else:
        table(["ts", "value"], [[ts, v] for ts, v in result.points], fmt=args.format)
    return 0


def _series(args: argparse.Namespace) -> int:
    with Client(args.server) as client:
        listing = client.list_series(args.prefix, limit=args.limit)
    rows = [[s.series, s.unit, s.kind, when(s.last_ts)] for s in listing.series]
    table(["series", "unit", "kind", "last (UTC)"], rows, fmt=args.format,
          title=f"{listing.total} series")
    return 0


def _alarms(args: argparse.Namespace) -> int:
    with Client(args.server) as client:
        if args.action == "list":
            found = client.alarms(status=args.status, resolved=args.resolved)
            rows: list[list[object]] = [
                [a.entity_id, a.state_name, a.status_name, "yes" if a.ack else "",
                 when(a.opened), when(a.last_change)] for a in found]
            table(["entity", "state", "status", "acked", "opened (UTC)", "changed (UTC)"],
                  rows, fmt=args.format, title=f"{len(found)} alarms")
            return 0
        if not args.key:
            print(f"watchkeeper alarms {args.action}: KEY is required", file=sys.stderr)
            return 2
        if args.action == "show":
            alarm = client.alarm(args.key)
            steps = [[when(s.t), s.type, s.author, s.val, s.message] for s in alarm.steps]
            table(["time (UTC)", "step", "author", "value", "message"], steps,
                  fmt=args.format, title=_alarm_title(alarm))
            return 0
        body: dict[str, object] = {"author": args.author, "message": args.message}
        if args.duration is not None:
            body["duration"] = args.duration
        sent = client.act(args.key, args.action, **body)
        print(f"{args.action} sent for {args.key} (event {sent.ids[0]})")
    return 0


def _alarm_title(alarm: AlarmInfo) -> str:
    title = f"{alarm.entity_id}: {alarm.state_name}, {alarm.status_name}"
    return f"{title} (caused by {alarm.caused_by})" if alarm.caused_by else title
