"""``watchkeeper collect``: run the checks once (exit code from the roll-up), or as a daemon
that writes locally or sends to a server."""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from watchkeeper.cli.options import (
    add_config,
    add_data_dir,
    add_log_level,
    add_token,
    settings_overrides,
)
from watchkeeper.cli.run import (
    plugins_from_cwd,
    settings_from_args,
    setup_logging,
    stop_on_signals,
)
from watchkeeper.model import Status

_STYLES = {Status.OK: "green", Status.PARTIAL: "yellow", Status.WARNING: "yellow",
           Status.CRITICAL: "bold red", Status.ERRORED: "magenta", Status.UNKNOWN: "dim"}
WORST_SHOWN = 10  # problems repeated in the closing summary


def add_commands(commands: Any) -> None:
    text = "run collectors: once (--once) or as a daemon (locally, or for a --server)"
    cmd = commands.add_parser("collect", help=text, description=text)
    add_config(cmd)
    cmd.add_argument("--once", action="store_true",
                     help="run every selected collector once and exit 0/1/2/3 "
                          "(OK/WARNING/CRITICAL/ERRORED)")
    cmd.add_argument("--report", metavar="PATH",
                     help="write a .yaml/.json report (and a .html next to it): with --once "
                          "at the end, as a daemon the latest results every 10 s")
    cmd.add_argument("--plugin", "-p", action="append", metavar="NAME",
                     help="with --once: only this collector (by its config name); repeatable")
    cmd.add_argument("--device", "-d", action="append", metavar="SELECTOR",
                     help="with --once: only devices matching (name, tag:X, group:X)")
    cmd.add_argument("--genietelemetry", metavar="FILE",
                     help="also run the plugins of this genie.telemetry configuration, on "
                          "the inventory (a pyATS testbed may be inventory.file); see "
                          "docs/genie.md")
    cmd.add_argument("--server", metavar="URL",
                     help="fetch jobs from and send results to this watchkeeper server "
                          "(without it: run locally)")
    add_token(cmd)
    cmd.add_argument("--spool", metavar="DIR",
                     help="where results wait while the server is unreachable")
    add_data_dir(cmd)
    add_log_level(cmd)
    cmd.set_defaults(handler=_collect, listen=None)


def _collect(args: argparse.Namespace) -> int:
    code = _run(args)
    from watchkeeper.runtime.collect import leave_promptly

    return leave_promptly(code)  # never held up by threads a plugin left behind


def _run(args: argparse.Namespace) -> int:
    if args.server:
        return _remote(args)
    settings, locator = settings_from_args(args)
    setup_logging(settings.log_level)
    from watchkeeper.runtime import collect

    if args.genietelemetry:
        from watchkeeper.collect.genie.config import with_genie_plugins

        settings = with_genie_plugins(settings, args.genietelemetry)
    if args.once:
        manager = asyncio.run(collect.run_once(settings, locator, report=args.report,
                                               plugins=args.plugin, devices=args.device))
        _print_summary(manager)
        return collect.exit_code(manager.status())
    asyncio.run(_daemon(lambda stop: collect.run_local(settings, locator, stop=stop,
                                                       report=args.report)))
    return 0


def _remote(args: argparse.Namespace) -> int:
    plugins_from_cwd()
    from watchkeeper.runtime import collect

    settings, _ = collect.remote_settings(args.config, settings_overrides(args))
    setup_logging(settings.log_level)
    asyncio.run(_daemon(lambda stop: collect.run_remote(
        settings, server=args.server, token=args.token, spool=args.spool, stop=stop)))
    return 0


async def _daemon(body: Any) -> None:
    stop = stop_on_signals()
    print("watchkeeper collect: running; Ctrl-C stops", flush=True)
    await body(stop)
    print("watchkeeper collect stopped", flush=True)


def _print_summary(manager: Any) -> None:
    console = Console(highlight=False)
    for uid in manager.results:
        table = Table(title=f"run {uid}: {manager.status(uid).value.upper()}")
        table.add_column("plugin", overflow="fold")
        table.add_column("device", overflow="fold")
        table.add_column("status")
        table.add_column("message", overflow="fold")
        for plugin, device, result in _results(manager, uid):
            # Text, not markup: check messages may contain [brackets].
            table.add_row(plugin, device, _status_text(result.status), Text(_text(result)))
        console.print(table)
    print_closing_summary(console, manager)


def print_closing_summary(console: Console, manager: Any) -> None:
    """After the per-result tables: counts per status and the worst results, so the end of
    a long run says how it went."""
    found = [item for uid in manager.results for item in _results(manager, uid)]
    counts: dict[Status, int] = {}
    for _, _, result in found:
        counts[result.status] = counts.get(result.status, 0) + 1
    order = sorted(counts, key=lambda s: -s.severity)
    line = Text(f"{len(found)} results: ")
    for index, status in enumerate(order):
        if index:
            line.append(", ")
        line.append(f"{counts[status]} ")
        line.append_text(_status_text(status))
    overall = Status.rollup(r.status for _, _, r in found)
    line.append("; overall ")
    line.append_text(_status_text(overall, upper=True))
    console.print(line)
    worst = sorted((item for item in found if item[2].status.severity > Status.OK.severity),
                   key=lambda item: -item[2].status.severity)
    for plugin, device, result in worst[:WORST_SHOWN]:
        row = Text("  ")
        row.append_text(_status_text(result.status))
        row.append(f" {device} {plugin}: {_text(result)}")
        console.print(row)
    if len(worst) > WORST_SHOWN:
        console.print(Text(f"  ... and {len(worst) - WORST_SHOWN} more (above, or --report "
                           "PATH for the report)"))


def _results(manager: Any, uid: Any) -> list[tuple[str, str, Any]]:
    return [(plugin, device, result) for plugin, by_device in manager.results[uid].items()
            for device, result in by_device.items()]


def _text(result: Any) -> str:
    return "; ".join(m.text for m in result.messages)


def _status_text(status: Status, *, upper: bool = False) -> Text:
    word = status.value.upper() if upper else status.value
    return Text(word, style=_STYLES.get(status, ""))
