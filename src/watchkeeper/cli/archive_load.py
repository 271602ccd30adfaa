"""``load-gridftp`` and ``pipe``: esmond's loader tools, with the original options.

Both write to ``<url><script_alias>/perfsonar/archive/``; the URL normally carries the
``/esmond`` deployment prefix (``-U https://host/esmond``, alias ``/`` = none), exactly
as ``esmond-ps-load-gridftp`` and ``esmond-ps-pipe``. They log ``ts=... event=... id=...``
lines to stdout (or to ``<log_dir>/<tool>.log``); problems end in one line on stderr and
a non-zero exit status: 1 the run failed or stopped early, 3 the run finished but some
lines were malformed or refused (counted in the last log line).
"""

from __future__ import annotations

import argparse
import logging
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO

from watchkeeper.cli.archive_query import Context
from watchkeeper.client import ArchiveClient, HTTPStatusError, TransportError
from watchkeeper.errors import UsageError, WatchkeeperError
from watchkeeper.loaders import gridftp, iperf3
from watchkeeper.loaders.gridftp_load import GridftpLoader
from watchkeeper.loaders.state import (
    StateError,
    delete_state,
    read_state,
    resume_points,
    write_state,
)

EXIT_FAILED = 1
EXIT_PARTIAL = 3


class CommandFailed(WatchkeeperError):
    """The command ran but failed: one line on stderr, exit status ``code``."""

    def __init__(self, message: str, code: int = EXIT_FAILED) -> None:
        self.code = code
        super().__init__(message)


def _add_connection(cmd: argparse.ArgumentParser, tool: str) -> None:
    cmd.add_argument("-U", "--url", metavar="ESMOND_REST_URL", default="http://localhost:8000",
                     help="archive URL, usually with the /esmond prefix (default %(default)s)")
    cmd.add_argument("-u", "--user", metavar="USER", default="",
                     help="user name (accepted for compatibility; the key is what counts)")
    cmd.add_argument("-k", "--key", metavar="API_KEY",
                     default=os.environ.get("WATCHKEEPER_TOKEN", ""),
                     help="API key sent as 'Authorization: Token KEY' "
                          "(default $WATCHKEEPER_TOKEN)")
    cmd.add_argument("-s", "--script_alias", "--script-alias", metavar="URI_PREFIX",
                     dest="script_alias", default="/",
                     help="prefix before /perfsonar/archive (default %(default)s = none)")
    cmd.add_argument("-l", "--log_dir", "--log-dir", metavar="DIR", dest="logdir", default="",
                     help=f"write the log to DIR/{tool}.log instead of stdout")
    cmd.add_argument("--timeout", type=float, default=20.0, help="HTTP timeout in seconds")


def add_load_gridftp_options(cmd: argparse.ArgumentParser) -> None:
    cmd.add_argument("-f", "--file", metavar="FILE", dest="filename",
                     help="the GridFTP log to load (required)")
    cmd.add_argument("-J", "--json", action="store_true", help="the log is the JSON format")
    cmd.add_argument("-p", "--pickle_file", "--state-file", metavar="FILE", dest="state",
                     default="",
                     help="state file (JSON; default ./load_grid_ftp.state.json, or "
                          "./load_grid_ftp.json.state.json with -J)")
    cmd.add_argument("-d", "--dont_write", "--dont-write", action="store_false", dest="write",
                     help="do not save the position (load by hand, tests)")
    cmd.add_argument("-S", "--single", action="store_true", help="load one record and stop")
    cmd.add_argument("-D", "--delete_state", "--delete-state", action="store_true",
                     help="delete the state file at the end (logrotate prerotate hook)")
    cmd.add_argument("-F", "--file_attr", "--file-attr", action="store_true",
                     help="send file names (gridftp-file); off by default for privacy")
    cmd.add_argument("-N", "--name_attr", "--name-attr", action="store_true",
                     help="send user names (gridftp-user); off by default for privacy")
    cmd.add_argument("-V", "--volume_attr", "--volume-attr", action="store_true",
                     help="send volumes (gridftp-volume); off by default for privacy")
    cmd.add_argument("-v", "--verbose", action="count", default=0, help="more log output")
    cmd.add_argument("-P", "--no-progress", action="store_false", dest="progress",
                     help="no progress lines every 100 records")
    _add_connection(cmd, "esmond-ps-load-gridftp")


def add_pipe_options(cmd: argparse.ArgumentParser) -> None:
    cmd.add_argument("-f", "--file", metavar="FILE", dest="filename", default="-",
                     help="read from FILE instead of stdin")
    cmd.add_argument("--tool-name", help="tool-name of the metadata (default bwctl/<tool> "
                                         "for bwctl output, iperf3 for plain JSON)")
    cmd.add_argument("--measurement-agent", metavar="ADDRESS",
                     help="measurement-agent (default: this host's address towards the "
                          "receiver)")
    cmd.add_argument("-v", "--verbose", action="store_true", help="more log output")
    _add_connection(cmd, "esmond-ps-pipe")


@contextmanager
def _logging(name: str, logdir: str, stdout: TextIO, verbose: int) -> Iterator[None]:
    if logdir:
        if not Path(logdir).is_dir():
            raise UsageError(f"{logdir} log path does not exist")
        handler: logging.Handler = logging.FileHandler(Path(logdir) / f"{name}.log")
    else:
        handler = logging.StreamHandler(stdout)
    handler.setFormatter(logging.Formatter("ts=%(asctime)s %(message)s"))
    loggers = [logging.getLogger("watchkeeper.loaders"), logging.getLogger(f"tool.{name}")]
    for logger in loggers:
        logger.addHandler(handler)
        logger.setLevel(logging.DEBUG if verbose > 1 else logging.INFO)
        logger.propagate = False
    try:
        yield
    finally:
        for logger in loggers:
            logger.removeHandler(handler)
        handler.close()


def _log(logger: logging.Logger, event: str, msg: str, level: int = logging.INFO) -> None:
    """esmond's log line: ``event=<name> id=<unix time> <message>``."""
    logger.log(level, "event=%s id=%d %s", event, int(time.time()), msg)


def _client(args: argparse.Namespace, ctx: Context) -> ArchiveClient:
    return ArchiveClient(args.url, token=args.key or None, script_alias=args.script_alias,
                         timeout=args.timeout, verify=getattr(args, "ssl_verify", True),
                         transport=ctx.transport)


def load_gridftp(args: argparse.Namespace, ctx: Context) -> int:
    if not args.filename:
        raise UsageError("-f/--file is required")
    path = Path(os.path.normpath(args.filename))
    if not path.is_file():
        raise UsageError(f"{path} does not exist")
    default = "./load_grid_ftp.json.state.json" if args.json else "./load_grid_ftp.state.json"
    state_path = Path(os.path.normpath(args.state or default))
    options = gridftp.Options(json=args.json, file_attr=args.file_attr,
                              name_attr=args.name_attr, volume_attr=args.volume_attr)
    with _logging("esmond-ps-load-gridftp", args.logdir, ctx.stdout, args.verbose):
        tool = logging.getLogger("tool.esmond-ps-load-gridftp")
        try:
            previous = read_state(state_path)
        except StateError as exc:
            raise CommandFailed(str(exc)) from None
        _log(tool, "main.start", f"found state: {state_path} (byte {previous.offset} of "
             f"{previous.path})" if previous else "no last record found")
        save = (lambda state: write_state(state_path, state)) if args.write else None
        with _client(args, ctx) as client:
            loader = GridftpLoader(client, options, single=args.single,
                                   progress=args.progress, save=save)
            report = loader.run(resume_points(path, previous), previous)
        if args.write and loader.state is not None:
            write_state(state_path, loader.state, fsync=True)
        if args.delete_state:
            delete_state(state_path)
    if report.aborted:
        raise CommandFailed(f"load-gridftp stopped: {report.aborted} ({report.summary()})")
    if report.interrupted:
        raise CommandFailed(f"load-gridftp interrupted ({report.summary()})", 130)
    if report.bad or report.rejected:
        first = f"; first: {report.bad_examples[0]}" if report.bad_examples else ""
        raise CommandFailed(f"load-gridftp: {report.summary()}{first}", EXIT_PARTIAL)
    return 0


def pipe(args: argparse.Namespace, ctx: Context) -> int:
    if not args.key:
        option = "--key" if ctx.compat else "--token (or $WATCHKEEPER_TOKEN)"
        raise UsageError(f"{option} is required (the archive's API key)")
    with _logging("esmond-ps-pipe", args.logdir, ctx.stdout, int(args.verbose)):
        tool = logging.getLogger("tool.esmond-ps-pipe")
        _log(tool, "main.start", "reading input")
        if args.filename == "-":
            lines = ctx.stdin.readlines()
        else:
            try:
                lines = Path(args.filename).read_text(errors="replace").splitlines(True)
            except OSError as exc:
                raise UsageError(f"cannot read {args.filename}: {exc.strerror}") from None
        try:
            found = iperf3.extract(lines)
            plan = iperf3.plan(found, tool_name=args.tool_name,
                               measurement_agent=args.measurement_agent)
        except iperf3.PipeError as exc:
            _log(tool, "main.fatal", str(exc), logging.ERROR)
            raise CommandFailed(f"pipe: {exc}") from None
        _log(tool, "process_iperf3.start", "begin")
        with _client(args, ctx) as client:
            try:
                meta = client.create_metadata(plan.metadata)
                if not meta.metadata_key:
                    raise CommandFailed("pipe: the archive answered without a metadata-key")
                client.post_bulk(meta.metadata_key, plan.bulk)
            except HTTPStatusError as exc:
                if exc.status != 409:
                    raise CommandFailed(f"pipe: {exc}") from None
                _log(tool, "write.warning", f"already in the archive: {exc.detail}")
            except TransportError as exc:
                raise CommandFailed(f"pipe: {exc}") from None
        _log(tool, "process_iperf3.end", "finished")
        _log(tool, "main.exit", "success")
    return 0
