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
archive`` prints human output as a Rich table. Both take ``-o json`` and ``-o csv``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from typing import Any

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
    UsageError,
    add_query_options,
    get,
    get_endpoints,
    get_metadata,
)
from watchkeeper.errors import ClientError

Handler = Callable[[argparse.Namespace, Context], int]

TOOLS: dict[str, tuple[str, str, Callable[[argparse.ArgumentParser], None], Handler]] = {
    "get-endpoints": ("esmond-ps-get-endpoints", "list the tests stored in an archive",
                      add_query_options, get_endpoints),
    "get-metadata": ("esmond-ps-get-metadata", "show the metadata of the tests",
                     add_query_options, get_metadata),
    "get": ("esmond-ps-get", "print the data of one event type between two hosts",
            add_query_options, get),
    "get-bulk": ("esmond-ps-get-bulk", "write every matching series to csv/json files",
                 lambda cmd: add_query_options(cmd, bulk=True), get_bulk),
    "load-gridftp": ("esmond-ps-load-gridftp", "load a GridFTP transfer log into an archive",
                     add_load_gridftp_options, load_gridftp),
    "pipe": ("esmond-ps-pipe", "load bwctl/iperf3 output (stdin) into an archive",
             add_pipe_options, pipe),
}


def add_commands(commands: Any) -> None:
    """Register ``watchkeeper archive <tool>``."""
    archive = commands.add_parser(
        "archive", help="esmond (perfSONAR archive) client tools",
        description="esmond's client tools: query, bulk export and loaders.")
    tools = archive.add_subparsers(dest="tool", required=True, metavar="TOOL")
    for name, (legacy, summary, add_options, handler) in TOOLS.items():
        cmd = tools.add_parser(name, help=summary, description=f"{summary} (as {legacy})")
        add_options(cmd)
        cmd.set_defaults(handler=_handler(handler, f"watchkeeper archive {name}"))


def _handler(handler: Handler, prog: str) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        return dispatch(handler, args, Context(), prog)

    return run


def dispatch(handler: Handler, args: argparse.Namespace, ctx: Context, prog: str) -> int:
    """Run a tool; every failure is one line on stderr and a non-zero status."""
    try:
        return handler(args, ctx)
    except UsageError as exc:
        ctx.stderr.write(f"{prog}: {exc}\n")
        return 2
    except CommandFailed as exc:
        ctx.stderr.write(f"{prog}: {exc}\n")
        return exc.code
    except ClientError as exc:
        ctx.stderr.write(f"{prog}: {exc}\n")
        return 1
    except KeyboardInterrupt:
        ctx.stderr.write(f"{prog}: interrupted\n")
        return 130


def run_tool(name: str, argv: Sequence[str] | None = None, ctx: Context | None = None,
             *, compat: bool = True) -> int:
    """Run one tool as its ``esmond-ps-*`` command (``compat``) or as ``watchkeeper archive``."""
    legacy, summary, add_options, handler = TOOLS[name]
    prog = legacy if compat else f"watchkeeper archive {name}"
    parser = argparse.ArgumentParser(prog=prog, description=summary)
    add_options(parser)
    args = parser.parse_args(argv)
    ctx = ctx or Context()
    ctx.compat = compat
    return dispatch(handler, args, ctx, prog)


def _entry(name: str) -> Callable[[], None]:
    def main() -> None:
        sys.exit(run_tool(name, sys.argv[1:]))

    main.__doc__ = f"The ``{TOOLS[name][0]}`` command."
    return main


esmond_ps_get_endpoints = _entry("get-endpoints")
esmond_ps_get_metadata = _entry("get-metadata")
esmond_ps_get = _entry("get")
esmond_ps_get_bulk = _entry("get-bulk")
esmond_ps_load_gridftp = _entry("load-gridftp")
esmond_ps_pipe = _entry("pipe")
