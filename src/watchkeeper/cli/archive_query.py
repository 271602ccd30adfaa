"""``get-endpoints``, ``get-metadata``, ``get`` and ``get-bulk``: esmond's query tools.

Same options (long and short) and requests as esmond-client's ``esmond-ps-get*``: the
metadata search goes to ``<url>/esmond/perfsonar/archive/`` with ``time-start`` /
``time-end`` (default: the last 24 hours), data is read in pages from each event type's
``base-uri`` (or the ``-T/-W`` summary). Times are free-form (epoch, ISO 8601,
'January 1', '2h ago').
"""

from __future__ import annotations

import argparse
import ipaddress
import logging
import os
import socket
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TextIO
from urllib.parse import urlsplit

import httpx

from watchkeeper.cli.archive_format import (
    ENTRY_DELIM,
    EVENT_MAP,
    HEADER_BASE,
    TRACE_FIELDS,
    columns,
    kind_of,
    render,
    rows,
    text_output,
)
from watchkeeper.cli.archive_py2 import py2_str
from watchkeeper.cli.archive_time import TimeParseError, parse_time
from watchkeeper.client import ArchiveClient, Metadata
from watchkeeper.errors import UsageError

log = logging.getLogger("watchkeeper.cli.archive")

SUMMARY_TYPES = ("aggregation", "average", "statistics")
OUTPUT_FORMATS = ("human", "json", "csv", "text", "table")
FILTER_NAMES = ("metadata_key", "source", "destination", "measurement_agent",
                "input_source", "input_destination", "tool_name", "event_type",
                "subject_type", "summary_type", "summary_window", "time", "time_start",
                "time_end", "time_range", "dns_match_rule")
DAY = 86400




@dataclass
class Context:
    """Where a command writes and how it connects (tests inject a transport)."""

    stdin: TextIO = field(default_factory=lambda: sys.stdin)
    stdout: TextIO = field(default_factory=lambda: sys.stdout)
    stderr: TextIO = field(default_factory=lambda: sys.stderr)
    transport: httpx.BaseTransport | None = None
    compat: bool = False
    now: datetime | None = None


def add_query_options(cmd: argparse.ArgumentParser, *, bulk: bool = False) -> None:
    """esmond-client's ``perfsonar_client_opts``, long and short forms."""
    cmd.add_argument("-u", "--url", metavar="URL",
                     default=os.environ.get("WATCHKEEPER_SERVER"),
                     help="archive to ask, scheme://host[:port] (default $WATCHKEEPER_SERVER)")
    cmd.add_argument("-s", "--src", metavar="SRC", help="host originating the test")
    cmd.add_argument("-d", "--dest", metavar="DEST", help="test endpoint")
    cmd.add_argument("-a", "--agent", metavar="AGENT",
                     help="host that initiated the test (measurement agent)")
    cmd.add_argument("-e", "--event-type", metavar="EVENT", dest="type",
                     help="type of data (throughput, histogram-owdelay ...; see -L)")
    cmd.add_argument("-t", "--tool", metavar="TOOL",
                     help="tool of the test (bwctl/iperf3, powstream, gridftp ...)")
    cmd.add_argument("-S", "--start-time", metavar="START", dest="start",
                     help="start of the query: epoch, ISO 8601, 'January 1', '2h ago' "
                          "(default: 24 hours ago)")
    cmd.add_argument("-E", "--end-time", metavar="END", dest="end",
                     help="end of the query (default: now)")
    cmd.add_argument("-F", "--filter", metavar="KEY:VALUE", action="append", default=[],
                     help="more metadata filters (repeatable): a filter name "
                          "(input_source:host1) or any metadata parameter")
    cmd.add_argument("-L", "--list-events", action="store_true", dest="list_event",
                     help="list the event types and exit")
    cmd.add_argument("-M", "--metadata-extended", action="store_true", dest="metadata",
                     help="show every metadata key (not with -o csv)")
    cmd.add_argument("-T", "--summary-type", metavar="SUMMARY_TYPE",
                     help="summary data: aggregation, average or statistics")
    cmd.add_argument("-W", "--summary-window", metavar="SECONDS", type=int, default=0,
                     help="window of the summary in seconds (default: 0)")
    cmd.add_argument("-o", "--output-format", metavar="FORMAT", dest="format",
                     default="human",
                     help="human, json or csv (default human; also text = esmond's "
                          "key: value layout, table = a Rich table)")
    if bulk:
        cmd.add_argument("-D", "--output-directory", metavar="DIR", dest="output_dir",
                         default=".", help="folder for the files (default: current)")
        cmd.add_argument("--resume", action="store_true",
                         help="skip complete files and continue partial ones")
        cmd.add_argument("--page-size", type=int, default=50_000,
                         help="points per request (default: %(default)s; esmond's own "
                              "client asked 1000)")
    cmd.add_argument("-I", "--ip", action="store_true",
                     help="show addresses as given, do not resolve them to names")
    cmd.add_argument("-v", "--verbose", action="store_true", help="print the requests")
    cmd.add_argument("--ssl-verify", action="store_true", help="verify TLS certificates")
    cmd.add_argument("--timeout", metavar="SECONDS", type=float,
                     help="give up after this long without data (default: none)")


@dataclass
class Query:
    """The checked options of one query command."""

    url: str
    params: dict[str, Any]
    time_start: int
    time_end: int
    event_type: str | None
    summary_type: str | None
    summary_window: int
    fmt: str
    names: HostNames


class HostNames:
    """Addresses to names (``socket.getfqdn``, cached), unless ``--ip``."""

    FIELDS = ("source", "destination", "ip", "measurement_agent")

    def __init__(self, keep_ip: bool) -> None:
        self.keep_ip = keep_ip
        self._cache: dict[str, str] = {}

    def name(self, address: Any) -> Any:
        if self.keep_ip or not isinstance(address, str) or not address:
            return address
        if address not in self._cache:
            self._cache[address] = socket.getfqdn(address)
        return self._cache[address]

    def convert(self, row: dict[str, Any]) -> dict[str, Any]:
        if not self.keep_ip:
            for key in self.FIELDS:
                if row.get(key):
                    row[key] = self.name(row[key])
        return row


def list_events(stream: TextIO) -> int:
    stream.write("\nValid event types:\n")
    for name in EVENT_MAP:
        stream.write(f"    {name}\n")
    return 0


def _clean_url(url: str | None, ctx: Context) -> str:
    option = "--url" if ctx.compat else "--server"
    if not url:
        raise UsageError("--url is required (e.g. -u http://ma.example.net)")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise UsageError(f"{option} {url!r} is not an http(s) URL")
    if parts.path.startswith("/esmond/perfsonar/archive"):
        ctx.stderr.write(f"not necessary to add /esmond/perfsonar/archive to {option} - "
                         "trimming\n")
        return f"{parts.scheme}://{parts.netloc}"
    return url.rstrip("/")


def _check_host(option: str, value: str | None) -> None:
    if not value:
        return
    try:
        ipaddress.ip_address(value)
    except ValueError:
        try:
            socket.getaddrinfo(value, None)
        except OSError:
            raise UsageError(f"--{option} arg had invalid hostname: {value}") from None


def _times(args: argparse.Namespace, now: datetime, compat: bool) -> tuple[int, int]:
    first, last = ("--start-time", "--end-time") if compat else ("--start", "--end")
    try:
        start = parse_time(args.start, now=now) if args.start else int(now.timestamp()) - DAY
        end = parse_time(args.end, now=now) if args.end else int(now.timestamp())
    except TimeParseError as exc:
        raise UsageError(f"could not parse {first}/{last}: {exc}") from None
    if end < start:
        raise UsageError(f"{last} is before {first}")
    return start, end


def _filters(items: list[str]) -> dict[str, str]:
    found: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition(":")
        if not sep or not key:
            raise UsageError(f"--filter {item!r} should be of the format key:value")
        normal = key.replace("-", "_")
        found[normal.replace("_", "-") if normal in FILTER_NAMES else key] = value
    return found


def prepare(args: argparse.Namespace, ctx: Context, *, need_src_dest: bool = False,
            need_event: bool = False, bulk: bool = False) -> Query:
    """esmond's option checks, in its order; raises UsageError with its messages."""
    url = _clean_url(args.url, ctx)
    if need_src_dest and not (args.src and (args.dest or (args.type or "").startswith("ntp-"))):
        raise UsageError("--src and --dest args are both required (ntp-* event types only "
                         "require --src)")
    fmt = args.format
    if fmt not in OUTPUT_FORMATS:
        raise UsageError(f"{fmt} is not a valid --output-format arg (one of: human, json, csv)")
    if bulk and fmt not in ("json", "csv"):
        raise UsageError("please specify either json or csv --output-format for bulk output")
    for option, value in (("src", args.src), ("dest", args.dest), ("agent", args.agent)):
        _check_host(option, value)
    listing = "-L" if ctx.compat else "--list-events"
    if args.type and args.type not in EVENT_MAP:
        raise UsageError(f"{args.type} is not a valid event type (see {listing})")
    if need_event and not args.type:
        raise UsageError(f"the --event-type arg is required; use {listing} to see a list")
    if args.summary_type and args.summary_type not in SUMMARY_TYPES:
        raise UsageError(f"{args.summary_type} is not a valid --summary-type arg (one of: "
                         f"{', '.join(SUMMARY_TYPES)})")
    if fmt == "csv" and args.metadata:
        raise UsageError("--output-format csv can not be used with --metadata-extended")
    if fmt == "human":
        fmt = "text" if ctx.compat else "table"
    start, end = _times(args, ctx.now or datetime.now(tz=UTC), ctx.compat)
    params: dict[str, Any] = {
        "source": args.src, "destination": args.dest, "measurement-agent": args.agent,
        "event-type": args.type, "tool-name": args.tool, "summary-type": args.summary_type,
        "summary-window": args.summary_window or None,
        "time-start": start, "time-end": end, **_filters(args.filter)}
    return Query(url, {k: v for k, v in params.items() if v is not None}, start, end,
                 args.type, args.summary_type, args.summary_window, fmt,
                 HostNames(args.ip))


def connect(query: Query, args: argparse.Namespace, ctx: Context,
            page_size: int = 1000) -> ArchiveClient:
    if args.verbose:
        logging.getLogger("httpx").setLevel(logging.INFO)
    return ArchiveClient(query.url, timeout=args.timeout, verify=args.ssl_verify,
                         page_size=page_size, transport=ctx.transport)


# -- get-endpoints / get-metadata ---------------------------------------------------------

ENDPOINT_COLUMNS = ["source", "destination", "measurement_agent", "tool_name", "event_type"]
METADATA_COLUMNS = ["source", "destination", "measurement_agent", "input_source",
                    "input_destination", "tool_name"]
EXCLUDED = ("event-types", "uri", "metadata-key")


def get_endpoints(args: argparse.Namespace, ctx: Context) -> int:
    if args.list_event:
        return list_events(ctx.stdout)
    query = prepare(args, ctx)
    with connect(query, args, ctx) as client:
        data = [query.names.convert({
            "source": m.source, "destination": m.destination,
            "measurement_agent": m.measurement_agent, "tool_name": m.tool_name,
            "event_type": m.event_types}) for m in client.metadata(**query.params)]
    render(query.fmt, data, ENDPOINT_COLUMNS, ctx.stdout, title=f"{len(data)} endpoints")
    return 0


def get_metadata(args: argparse.Namespace, ctx: Context) -> int:
    if args.list_event:
        return list_events(ctx.stdout)
    query = prepare(args, ctx)
    data: list[dict[str, Any]] = []
    with connect(query, args, ctx) as client:
        for meta in client.metadata(**query.params):
            if args.metadata:
                raw = {k.replace("-", "_"): v for k, v in meta.raw.items() if k not in EXCLUDED}
                data.append(query.names.convert(dict(sorted(raw.items()))))
            else:
                data.append(query.names.convert({c: meta.get(c.replace("_", "-"))
                                                 for c in METADATA_COLUMNS}))
    render(query.fmt, data, METADATA_COLUMNS, ctx.stdout, extended=args.metadata,
           title=f"{len(data)} metadata")
    return 0


# -- get ----------------------------------------------------------------------------------


def series_uri(meta: Metadata, event_type: str, summary_type: str | None,
               window: int) -> str | None:
    """The data URI of the event type, or of its ``summary_type``/``window`` summary."""
    etype = meta.get_event_type(event_type)
    if etype is None:
        return None
    if not summary_type:
        return etype.base_uri
    summary = etype.get_summary(summary_type, window)
    return summary.uri if summary is not None else None


def common_columns(meta: Metadata, event_type: str, query: Query) -> dict[str, Any]:
    return {"source": meta.source, "destination": meta.destination,
            "event_type": event_type, "tool": meta.tool_name,
            "summary_type": query.summary_type or "base",
            "summary_window": query.summary_window}


def get(args: argparse.Namespace, ctx: Context) -> int:
    if args.list_event:
        return list_events(ctx.stdout)
    query = prepare(args, ctx, need_src_dest=True, need_event=True)
    assert query.event_type is not None
    kind = kind_of(query.event_type)
    data: list[dict[str, Any]] = []
    with connect(query, args, ctx) as client:
        for meta in client.metadata(**query.params):
            uri = series_uri(meta, query.event_type, query.summary_type, query.summary_window)
            if uri is None:
                continue
            common = common_columns(meta, query.event_type, query)
            pages = client.iter_pages(uri, time_start=query.time_start,
                                      time_end=query.time_end)
            points = (point for page in pages for point in page)
            data.extend(query.names.convert(r) for r in rows(
                kind, common, points, summary_type=query.summary_type,
                bucket=meta.sample_bucket_width))
    cols = columns(kind, query.summary_type)
    if kind == "packet_trace" and query.fmt == "text":
        _print_trace_text(data, ctx.stdout)
        return 0
    render(query.fmt, data, cols, ctx.stdout, title=f"{query.event_type} ({len(data)} rows)")
    return 0


def _print_trace_text(data: list[dict[str, Any]], stream: TextIO) -> None:
    """esmond's human layout for packet-trace: a header block per trace, then its hops."""
    if not data:
        stream.write(text_output([], []) + "\n")
        return
    out: list[str] = []
    last = None
    for row in data:
        key = tuple(row.get(c) for c in HEADER_BASE)
        if key != last:
            out.append("".join(f"{c}: {py2_str(row.get(c))}\n" for c in HEADER_BASE))
            last = key
        out.append("".join(f"{c}: {py2_str(row.get(c))}\n" for c in TRACE_FIELDS))
    text = ENTRY_DELIM.join(out)
    stream.write(text + "\n")
