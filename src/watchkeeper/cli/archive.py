"""``watchkeeper archive ...`` and the ``esmond-ps-*`` commands: esmond's client tools.

=====================  ===========================  ==========================================
watchkeeper archive    installed as                 does
=====================  ===========================  ==========================================
get-endpoints          esmond-ps-get-endpoints      list the tests (metadata) of an archive
get-metadata           esmond-ps-get-metadata       show their metadata (``-M``: every key)
get                    esmond-ps-get                print one event type's data
get-bulk               esmond-ps-get-bulk           every series into files, resumable
load-gridftp           esmond-ps-load-gridftp       load GridFTP transfer logs, resumable
pipe                   esmond-ps-pipe               load bwctl/iperf3 results from stdin
=====================  ===========================  ==========================================

The ``esmond-ps-*`` commands accept the original options (long and short forms) and print
the original layouts (human output as esmond's ``key: value`` text); ``watchkeeper
archive`` takes watchkeeper's vocabulary (``--server``, ``--token``, ``-o/--output``,
``--start/--end``, TLS verified unless ``--insecure``; see ``archive_options``), prints
human output as a Rich table, and exits through the CLI's one exit-code path.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

from watchkeeper.cli import archive_options as native
from watchkeeper.cli.archive_bulk import get_bulk
from watchkeeper.cli.archive_load import (
    CommandFailed,
    add_load_gridftp_options,
    add_pipe_options,
    load_gridftp,
    pipe,
)
from watchkeeper.cli.archive_query import (
    Context,
    add_query_options,
    get,
    get_endpoints,
    get_metadata,
)
from watchkeeper.cli.exits import exit_code, explain
from watchkeeper.cli.options import Parser
from watchkeeper.errors import ClientError, UsageError

Handler = Callable[[argparse.Namespace, Context], int]
Options = Callable[[argparse.ArgumentParser], None]


class Tool(NamedTuple):
    legacy: str
    summary: str
    esmond_options: Options  # esmond's flags, for esmond-ps-*
    options: Options  # watchkeeper's vocabulary, for watchkeeper archive
    handler: Handler


TOOLS: dict[str, Tool] = {
    "get-endpoints": Tool("esmond-ps-get-endpoints", "list the tests stored in an archive",
                          add_query_options, native.add_query, get_endpoints),
    "get-metadata": Tool("esmond-ps-get-metadata", "show the metadata of the tests",
                         add_query_options, native.add_query, get_metadata),
    "get": Tool("esmond-ps-get", "print the data of one event type between two hosts",
                add_query_options, native.add_query, get),
    "get-bulk": Tool("esmond-ps-get-bulk", "write every matching series to csv/json files",
                     lambda cmd: add_query_options(cmd, bulk=True),
                     lambda cmd: native.add_query(cmd, bulk=True), get_bulk),
    "load-gridftp": Tool("esmond-ps-load-gridftp", "load a GridFTP transfer log into an archive",
                         add_load_gridftp_options, native.add_load_gridftp, load_gridftp),
    "pipe": Tool("esmond-ps-pipe", "load bwctl/iperf3 output (stdin) into an archive",
                 add_pipe_options, native.add_pipe, pipe),
}


def add_commands(commands: Any) -> None:
    """Register ``watchkeeper archive <tool>``."""
    archive = commands.add_parser(
        "archive", help="esmond (perfSONAR archive) client tools",
        description="esmond's client tools: query, bulk export and loaders.")
    tools = archive.add_subparsers(dest="tool", required=True, metavar="TOOL")
    for name, tool in TOOLS.items():
        cmd = tools.add_parser(name, help=tool.summary,
                               description=f"{tool.summary} (as {tool.legacy})")
        tool.options(cmd)
        cmd.set_defaults(handler=_handler(tool.handler, f"watchkeeper archive {name}"))


def _handler(handler: Handler, prog: str) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        return dispatch(handler, args, Context(), prog)

    return run


def dispatch(handler: Handler, args: argparse.Namespace, ctx: Context, prog: str) -> int:
    """Run a tool; every failure is one line on stderr and a non-zero status: esmond's
    (2 usage, 1 failure) for ``esmond-ps-*``, the CLI's exit codes otherwise."""
    if not ctx.compat:
        native.resolve(args)
    try:
        return handler(args, ctx)
    except CommandFailed as exc:
        ctx.stderr.write(f"{prog}: {exc}\n")
        return exc.code
    except (UsageError, ClientError, KeyboardInterrupt) as exc:
        if isinstance(exc, KeyboardInterrupt):
            ctx.stderr.write(f"{prog}: interrupted\n")
        elif ctx.compat:
            ctx.stderr.write(f"{prog}: {exc}\n")
        else:
            ctx.stderr.write(f"{prog}: {explain(exc)}\n")
        if ctx.compat and not isinstance(exc, KeyboardInterrupt):
            return 2 if isinstance(exc, UsageError) else 1
        return exit_code(exc)


def run_tool(name: str, argv: Sequence[str] | None = None, ctx: Context | None = None,
             *, compat: bool = True) -> int:
    """Run one tool as its ``esmond-ps-*`` command (``compat``) or as ``watchkeeper archive``."""
    tool = TOOLS[name]
    prog = tool.legacy if compat else f"watchkeeper archive {name}"
    parser = (argparse.ArgumentParser if compat else Parser)(prog=prog,
                                                               description=tool.summary)
    (tool.esmond_options if compat else tool.options)(parser)
    args = parser.parse_args(argv)
    ctx = ctx or Context()
    ctx.compat = compat
    return dispatch(handler=tool.handler, args=args, ctx=ctx, prog=prog)


def _entry(name: str) -> Callable[[], None]:
    def main() -> None:
        sys.exit(run_tool(name, sys.argv[1:]))

    main.__doc__ = f"The ``{TOOLS[name].legacy}`` command."
    return main


esmond_ps_get_endpoints = _entry("get-endpoints")
esmond_ps_get_metadata = _entry("get-metadata")
esmond_ps_get = _entry("get")
esmond_ps_get_bulk = _entry("get-bulk")
esmond_ps_load_gridftp = _entry("load-gridftp")
esmond_ps_pipe = _entry("pipe")
