"""``watchkeeper up``, ``serve`` and ``config check``: commands that run the stack."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from typing import Any

from rich.console import Console
from rich.logging import RichHandler

from watchkeeper import runtime
from watchkeeper.runtime.assemble import build_engines, build_jobs, devices_from, self_watch
from watchkeeper.runtime.service import Role
from watchkeeper.settings import Locator, Settings


def add_commands(commands: Any) -> None:
    for name, role, text in (
        ("up", "up", "run everything: collectors, engines, archive and API, in one process"),
        ("serve", "serve", "run the archive and its REST API alone"),
    ):
        cmd = commands.add_parser(name, help=text, description=text)
        _stack_flags(cmd)
        cmd.set_defaults(handler=_run_role, role=role)
    config = commands.add_parser("config", help="work with configuration files")
    sub = config.add_subparsers(dest="config_command", required=True, metavar="ACTION")
    check = sub.add_parser("check", help="validate a configuration file without starting "
                                         "anything")
    check.add_argument("file", help="the YAML configuration file")
    check.set_defaults(handler=_config_check)


def _stack_flags(cmd: argparse.ArgumentParser) -> None:
    cmd.add_argument("--config", "-c", metavar="FILE", help="YAML configuration file")
    cmd.add_argument("--listen", metavar="HOST:PORT", help="API address (default 127.0.0.1:8080)")
    cmd.add_argument("--data", metavar="DIR", help="data directory (default ./var)")
    cmd.add_argument("--log-level", choices=("debug", "info", "warning", "error"))


def settings_from_args(args: argparse.Namespace) -> tuple[Settings, Locator]:
    _plugins_from_cwd()
    overrides = {"server.listen": args.listen, "data_dir": args.data,
                 "log_level": getattr(args, "log_level", None)}
    return runtime.read_settings(args.config, overrides=overrides)


def _setup_logging(level: str) -> None:
    handler: logging.Handler
    if sys.stderr.isatty():
        handler = RichHandler(console=Console(stderr=True), show_path=False)
        handler.setFormatter(logging.Formatter("%(message)s"))
    else:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=level.upper(), handlers=[handler], force=True)
    if level.lower() != "debug":
        # httpx logs every request at info: the http collector's polls would flood the log.
        logging.getLogger("httpx").setLevel(logging.WARNING)


def _run_role(args: argparse.Namespace) -> int:
    settings, locator = settings_from_args(args)
    _setup_logging(settings.log_level)
    role: Role = args.role
    asyncio.run(_main(settings, locator, role))
    return 0


def stop_on_signals() -> asyncio.Event:
    """An event set by SIGINT or SIGTERM; a second signal cancels the running task at once."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    main_task = asyncio.current_task()

    def on_signal() -> None:
        if stop.is_set() and main_task is not None:
            main_task.cancel()  # a second Ctrl-C stops without waiting
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal)
    return stop


async def _main(settings: Settings, locator: Locator, role: Role) -> None:
    stop = stop_on_signals()

    def ready(url: str) -> None:
        what = "collectors, engines, archive and API" if role == "up" else "archive and API"
        print(f"watchkeeper {role}: {what} at {url} (data in {settings.data_dir}); "
              "Ctrl-C stops", flush=True)

    await runtime.run(settings, locator, role=role, stop=stop, on_ready=ready)
    print("watchkeeper stopped", flush=True)


def _plugins_from_cwd() -> None:
    # Like uvicorn's --app-dir: `module:Class` plugin references resolve from where you run.
    cwd = os.getcwd()
    if cwd not in sys.path:
        sys.path.insert(0, cwd)


def _config_check(args: argparse.Namespace) -> int:
    _plugins_from_cwd()
    settings, locator = runtime.read_settings(args.file, env={})
    from watchkeeper.clock import SystemClock
    from watchkeeper.inventory import StaticInventory
    from watchkeeper.pipeline import Services
    from watchkeeper.runtime.assemble import build_archive, build_bus, build_pipeline
    from watchkeeper.telemetry import SelfMetrics

    metrics = SelfMetrics()
    inventory = StaticInventory(devices_from(settings))
    build_archive(settings, locator, clock=SystemClock(), metrics=metrics)
    jobs = build_jobs(settings, locator, inventory)
    services = Services(clock=SystemClock(), metrics=metrics)
    engines = build_engines(settings, locator, services)
    build_pipeline(engines, build_bus(settings, locator), locator)
    from watchkeeper.runtime.inventory import build_inventory

    build_inventory(settings, locator, clock=SystemClock())  # model collectors, their options
    collectors = settings.collectors if settings.collectors is not None else self_watch(settings)
    print(f"{args.file}: ok ({len(inventory.devices())} devices, {len(collectors)} collectors, "
          f"{len(jobs)} jobs, {len(engines)} engines)")
    return 0
