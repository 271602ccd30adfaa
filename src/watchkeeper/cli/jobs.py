"""``watchkeeper jobs list|report``: what the scheduler of a ``watchkeeper up`` runs, and how
its latest polls went, through ``/api/v1/collect/jobs`` and ``/api/v1/collect/report``.

A group of its own rather than a verb of ``collect``: ``collect`` is a process (it runs
collectors, and ``collect --server`` is a remote collector), while this reads another
process' state, as ``alarms`` and ``inventory`` do (docs/cli.md, "Command groups").
Jobs live in ``up`` (and in ``collect`` daemons, which serve no API); ``serve`` has none,
and asking it says so.
"""

from __future__ import annotations

import argparse
from datetime import datetime
from typing import Any

from watchkeeper.cli.exits import name_flags
from watchkeeper.cli.options import add_client, output_of
from watchkeeper.cli.render import Level, table, utc
from watchkeeper.cli.series import client_for
from watchkeeper.errors import HTTPStatusError
from watchkeeper.wire import CollectJob, CollectReport

STATUSES = ("ok", "partial", "warning", "critical", "errored", "unknown", "pending")
ALL = 100_000  # the server's largest page: `jobs list` without --limit asks for every job
_FLAGS = {"status": "--status", "collector": "--collector", "device": "--device",
          "limit": "--limit"}


def add_commands(commands: Any) -> None:
    text = "list the scheduled collector jobs of `up`, and their latest reports"
    jobs = commands.add_parser("jobs", help=text, description=text + ".")
    sub = jobs.add_subparsers(dest="jobs_command", required=True, metavar="ACTION")

    listing = sub.add_parser(
        "list", help="every job: interval, latest status and reason, timing; worst first",
        description="List the scheduled (device, collector) jobs, worst latest status first "
                    "(pending: not polled yet), with their latest poll's reason, start, "
                    "duration and lateness, next run, skipped slots and ERRORED polls in "
                    "a row.")
    listing.add_argument("--status", action="append", choices=STATUSES, default=[],
                         help="only jobs whose latest status is this (pending: not polled "
                              "yet); repeatable: any of them")
    listing.add_argument("--collector", action="append", default=[], metavar="NAME",
                         help="only this collector's jobs (its name in the configuration); "
                              "repeatable: any of them")
    listing.add_argument("--device", action="append", default=[], metavar="NAME",
                         help="only jobs on this device; repeatable: any of them")
    listing.add_argument("--limit", type=int, metavar="N",
                         help=f"list at most N jobs (default: all, up to {ALL:,})")
    add_client(listing)
    listing.set_defaults(handler=_list)

    report = sub.add_parser(
        "report", help="the latest poll of a device's jobs: statuses, messages, measurements",
        description="The report of the latest poll of DEVICE's jobs (the shape `collect "
                    "--report` writes, one run named latest): one row per collector, or "
                    "one per measurement with --measurements.")
    report.add_argument("device", metavar="DEVICE", help="the device's name, e.g. web1")
    report.add_argument("--collector", metavar="NAME",
                        help="only this collector's jobs on DEVICE")
    report.add_argument("--measurements", action="store_true",
                        help="one row per measurement (series, value, unit), not per result")
    add_client(report)
    report.set_defaults(handler=_report)




def _not_here(exc: HTTPStatusError) -> HTTPStatusError:
    # A 404 from the router (not "no job of ...") means this server schedules nothing.
    if exc.status == 404 and exc.detail.strip().lower() == "not found":
        return HTTPStatusError(404, "this server runs no collectors: jobs live in "
                               "`watchkeeper up`, not in `watchkeeper serve`", url=exc.url)
    return name_flags(exc, _FLAGS)


def _list(args: argparse.Namespace) -> int:
    limit = ALL if args.limit is None else args.limit
    with client_for(args) as client:
        try:
            found = client.jobs(statuses=args.status, collectors=args.collector,
                                devices=args.device, limit=limit)
        except HTTPStatusError as exc:
            raise _not_here(exc) from None
    fmt = output_of(args)
    plain = fmt == "table"
    headers = ["device", "collector", "plugin", "status", "last (UTC)" if plain else "last",
               "duration (s)" if plain else "duration", "lateness (s)" if plain else "lateness",
               "next (UTC)" if plain else "next", "skipped", "failures", "reason"]
    counts = ", ".join(f"{n} {status}" for status, n in found.statuses.items())
    shown = (f"{len(found.jobs)} of {found.total}" if len(found.jobs) < found.total
             else f"{found.total}")
    table(headers, [_job_row(job) for job in found.jobs], fmt=fmt,
          title=f"{shown} jobs (of every job: {counts or 'none'})",
          hint="--status critical or --device NAME lists fewer", important=10)
    return 0


def _job_row(job: CollectJob) -> list[object]:
    return [job.device, job.collector, job.plugin, Level(job.status or "pending"),
            utc(job.last_started), job.last_duration, job.lateness, utc(job.next_run),
            job.skipped, job.failures, job.reason]


def _report(args: argparse.Namespace) -> int:
    with client_for(args) as client:
        try:
            found = client.job_report(args.device, collector=args.collector)
        except HTTPStatusError as exc:
            raise _not_here(exc) from None
    fmt = output_of(args)
    if not found.runs:
        title = f"{args.device}: no poll has ended yet"
    else:
        title = f"{args.device}: {found.status.upper()} (latest polls)"
    if args.measurements:
        table(["collector", "device", "series", "value", "unit"], _measurement_rows(found),
              fmt=fmt, title=title, important=2)
    else:
        plain = fmt == "table"
        table(["collector", "device", "status", "started (UTC)" if plain else "started",
               "duration (ms)" if plain else "duration_ms", "measurements", "message"],
              _result_rows(found, data=fmt == "json"), fmt=fmt, title=title, important=6)
    return 0


def _result_rows(report: CollectReport, *, data: bool) -> list[list[object]]:
    """One row per (collector, device); JSON keeps each message's time."""
    rows: list[list[object]] = []
    for run in report.runs.values():
        for collector, by_device in run.results.items():
            for device, result in by_device.items():
                messages: object = ([{"ts": m.ts, "text": m.text} for m in result.messages]
                                    if data else "; ".join(m.text for m in result.messages))
                rows.append([collector, device, Level(result.status),
                             datetime.fromisoformat(result.started),
                             result.duration_ms, len(result.measurements), messages])
    return rows


def _measurement_rows(report: CollectReport) -> list[list[object]]:
    return [[collector, device, m.series, m.value, m.unit]
            for run in report.runs.values()
            for collector, by_device in run.results.items()
            for device, result in by_device.items()
            for m in result.measurements]
