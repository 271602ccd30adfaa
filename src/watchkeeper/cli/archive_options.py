"""The options of ``watchkeeper archive <tool>``: esmond's tools in watchkeeper's vocabulary.

The ``esmond-ps-*`` commands keep esmond's flags (``archive_query``, ``archive_load``);
``watchkeeper archive`` takes the same settings under the names of every other watchkeeper
command (``--server``, ``--token``, ``-o/--output``, ``--start/--end``, ``--insecure``) and
long names without short letters for the rest. Both fill the same ``argparse`` fields, so
the tools themselves do not know which command line they came from.

=====================================  ==================================================
esmond-ps-*                            watchkeeper archive
=====================================  ==================================================
``-u/--url``, ``-U/--url``             ``--server`` (``$WATCHKEEPER_SERVER``; the loaders
                                       add ``--script-alias``, default ``/esmond``)
``-k/--key``                           ``--token`` (``$WATCHKEEPER_TOKEN``)
``-o/--output-format``                 ``-o/--output table|csv|json``
``-S/--start-time``, ``-E/--end-time`` ``--start``, ``--end``
``--ssl-verify`` (off by default)      verified by default; ``--insecure`` to skip
``-D/--output-directory``              ``--output-dir``
short letters (``-s -d -a -e -t``...)  their long names
=====================================  ==================================================
"""

from __future__ import annotations

import argparse

from watchkeeper.cli.options import (
    add_output,
    add_server,
    add_token,
    duration,
    server_url,
    token_of,
)


def _seconds(text: str) -> int:
    return int(duration(text))


def add_query(cmd: argparse.ArgumentParser, *, bulk: bool = False) -> None:
    """``get-endpoints``, ``get-metadata``, ``get`` and ``get-bulk``."""
    add_server(cmd)
    cmd.add_argument("--src", metavar="HOST", help="host originating the test")
    cmd.add_argument("--dest", metavar="HOST", help="test endpoint")
    cmd.add_argument("--agent", metavar="HOST",
                     help="host that initiated the test (measurement agent)")
    cmd.add_argument("--event-type", metavar="EVENT", dest="type",
                     help="type of data (throughput, histogram-owdelay ...; see --list-events)")
    cmd.add_argument("--tool", metavar="TOOL",
                     help="tool of the test (bwctl/iperf3, powstream, gridftp ...)")
    cmd.add_argument("--start", metavar="TIME",
                     help="start: epoch, ISO 8601, 'January 1', or a duration ago (2h) "
                          "(default 24 hours ago)")
    cmd.add_argument("--end", metavar="TIME", help="end (default now)")
    cmd.add_argument("--filter", metavar="KEY:VALUE", action="append", default=[],
                     help="more metadata filters (repeatable): input_source:host1, or any "
                          "metadata parameter")
    cmd.add_argument("--list-events", action="store_true", dest="list_event",
                     help="list the event types and exit")
    cmd.add_argument("--metadata-extended", action="store_true", dest="metadata",
                     help="show every metadata key (not with -o csv)")
    cmd.add_argument("--summary-type", metavar="TYPE",
                     help="summary data: aggregation, average or statistics")
    cmd.add_argument("--summary-window", metavar="DURATION", type=_seconds, default=0,
                     help="window of the summary: 300, 1h, 1d (default 0 = base data)")
    add_output(cmd, dest="format")
    if bulk:
        cmd.add_argument("--output-dir", metavar="DIR", dest="output_dir", default=".",
                         help="folder for the files (default: current)")
        cmd.add_argument("--resume", action="store_true",
                         help="skip complete files and continue partial ones")
        cmd.add_argument("--page-size", type=int, default=50_000, metavar="N",
                         help="points per request (default %(default)s)")
    cmd.add_argument("--ip", action="store_true",
                     help="show addresses as given, do not resolve them to names")
    cmd.add_argument("-v", "--verbose", action="store_true", help="print the requests")
    cmd.add_argument("--timeout", metavar="DURATION", type=duration,
                     help="give up after this long without data (default: never)")


def _add_connection(cmd: argparse.ArgumentParser, tool: str) -> None:
    add_server(cmd)
    cmd.add_argument("--script-alias", metavar="PREFIX", default="/esmond",
                     help="path of the esmond API under --server (default %(default)s)")
    add_token(cmd)
    cmd.add_argument("--user", metavar="USER", default="",
                     help="user name (accepted for compatibility; the token is what counts)")
    cmd.add_argument("--log-dir", metavar="DIR", dest="logdir", default="",
                     help=f"write the log to DIR/{tool}.log instead of stdout")
    cmd.add_argument("--timeout", type=duration, default=20.0, metavar="DURATION",
                     help="HTTP timeout (default 20s)")


def add_load_gridftp(cmd: argparse.ArgumentParser) -> None:
    cmd.add_argument("-f", "--file", metavar="FILE", dest="filename",
                     help="the GridFTP log to load (required)")
    cmd.add_argument("--json", action="store_true", help="the log is the JSON format")
    cmd.add_argument("--state-file", metavar="FILE", dest="state", default="",
                     help="state file (default ./load_grid_ftp.state.json, or "
                          "./load_grid_ftp.json.state.json with --json)")
    cmd.add_argument("--dont-write", action="store_false", dest="write",
                     help="do not save the position (load by hand, tests)")
    cmd.add_argument("--single", action="store_true", help="load one record and stop")
    cmd.add_argument("--delete-state", action="store_true",
                     help="delete the state file at the end (logrotate prerotate hook)")
    cmd.add_argument("--file-attr", action="store_true",
                     help="send file names (gridftp-file); off by default for privacy")
    cmd.add_argument("--name-attr", action="store_true",
                     help="send user names (gridftp-user); off by default for privacy")
    cmd.add_argument("--volume-attr", action="store_true",
                     help="send volumes (gridftp-volume); off by default for privacy")
    cmd.add_argument("-v", "--verbose", action="count", default=0, help="more log output")
    cmd.add_argument("--no-progress", action="store_false", dest="progress",
                     help="no progress lines every 100 records")
    _add_connection(cmd, "esmond-ps-load-gridftp")


def add_pipe(cmd: argparse.ArgumentParser) -> None:
    cmd.add_argument("-f", "--file", metavar="FILE", dest="filename", default="-",
                     help="read from FILE instead of stdin")
    cmd.add_argument("--tool-name", help="tool-name of the metadata (default bwctl/<tool> "
                                         "for bwctl output, iperf3 for plain JSON)")
    cmd.add_argument("--measurement-agent", metavar="ADDRESS",
                     help="measurement-agent (default: this host's address towards the "
                          "receiver)")
    cmd.add_argument("-v", "--verbose", action="store_true", help="more log output")
    _add_connection(cmd, "esmond-ps-pipe")


def resolve(args: argparse.Namespace) -> None:
    """Fill the fields the tools read (esmond's names) from watchkeeper's flags."""
    args.url = server_url(args)
    args.ssl_verify = not args.insecure
    if hasattr(args, "token"):
        args.key = token_of(args) or ""
