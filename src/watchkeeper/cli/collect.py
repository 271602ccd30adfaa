"""``watchkeeper collect``: run the checks once (exit code from the roll-up), or as a daemon
that writes locally or sends to a server."""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from watchkeeper.cli.run import (
    _plugins_from_cwd,
    _setup_logging,
    settings_from_args,
    stop_on_signals,
)
from watchkeeper.model import Status

_STYLES = {Status.OK: "green", Status.PARTIAL: "yellow", Status.WARNING: "yellow",
           Status.CRITICAL: "red", Status.ERRORED: "magenta", Status.UNKNOWN: "dim"}


def add_commands(commands: Any) -> None:
    text = "run collectors: once (--once) or as a daemon (locally, or for a --server)"
    cmd = commands.add_parser("collect", help=text, description=text)
    cmd.add_argument("--config", "-c", metavar="FILE", help="YAML configuration file")
    cmd.add_argument("--once", action="store_true",
                     help="run every selected collector once and exit 0/1/2/3 "
                          "(OK/WARNING/CRITICAL/ERRORED)")
    cmd.add_argument("--report", metavar="PATH",
                     help="with --once: write a .yaml/.json report (and a .html next to it)")
    cmd.add_argument("--plugin", "-p", action="append", metavar="NAME",
                     help="with --once: only this collector (by its config name); repeatable")
    cmd.add_argument("--device", "-d", action="append", metavar="SELECTOR",
                     help="with --once: only devices matching (name, tag:X, group:X)")
    cmd.add_argument("--server", metavar="URL",
                     help="fetch jobs from and send results to this watchkeeper server")
    cmd.add_argument("--token", metavar="KEY",
                     help="the server token, or a reference: env:VAR, file:/path")
    cmd.add_argument("--spool", metavar="DIR",
                     help="where results wait while the server is unreachable")
    cmd.add_argument("--data", metavar="DIR", help="data directory (default ./var)")
    cmd.add_argument("--log-level", choices=("debug", "info", "warning", "error"))
    cmd.set_defaults(handler=_collect, listen=None)


def _collect(args: argparse.Namespace) -> int:
    if args.server:
        return _remote(args)
    settings, locator = settings_from_args(args)
    _setup_logging(settings.log_level)
    from watchkeeper.runtime import collect

    if args.once:
        manager = asyncio.run(collect.run_once(settings, locator, report=args.report,
                                               plugins=args.plugin, devices=args.device))
        _print_summary(manager)
        return collect.exit_code(manager.status())
    asyncio.run(_daemon(lambda stop: collect.run_local(settings, locator, stop=stop)))
    return 0


def _remote(args: argparse.Namespace) -> int:
    _plugins_from_cwd()
    from watchkeeper.runtime import collect

    overrides = {"data_dir": args.data, "log_level": args.log_level}
    settings, _ = collect.remote_settings(args.config, overrides)
    _setup_logging(settings.log_level)
    asyncio.run(_daemon(lambda stop: collect.run_remote(
        settings, server=args.server, token=args.token, spool=args.spool, stop=stop)))
    return 0


async def _daemon(body: Any) -> None:
    stop = stop_on_signals()
    print("watchkeeper collect: running; Ctrl-C stops", flush=True)
    await body(stop)
    print("watchkeeper collect stopped", flush=True)


def _print_summary(manager: Any) -> None:
    console = Console()
    for uid in manager.results:
        table = Table(title=f"run {uid}: {manager.status(uid).value.upper()}")
        table.add_column("plugin")
        table.add_column("device")
        table.add_column("status")
        table.add_column("message", overflow="fold")
        for plugin, by_device in manager.results[uid].items():
            for device, result in by_device.items():
                style = _STYLES.get(result.status, "")
                text = "; ".join(m.text for m in result.messages)
                # Text, not markup: check messages may contain [brackets].
                table.add_row(plugin, device, Text(result.status.value, style=style), Text(text))
        console.print(table)
