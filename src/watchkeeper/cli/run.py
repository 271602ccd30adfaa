"""``watchkeeper up`` and ``serve``: the commands that run the stack, and their helpers."""

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
from watchkeeper.cli.options import (
    add_config,
    add_data_dir,
    add_listen,
    add_log_level,
    settings_overrides,
)
from watchkeeper.runtime.service import Role
from watchkeeper.settings import Locator, Settings


def add_commands(commands: Any) -> None:
    for name, role, text in (
        ("up", "up", "run everything: collectors, engines, archive and API, in one process"),
        ("serve", "serve", "run the archive and its REST API alone"),
    ):
        cmd = commands.add_parser(name, help=text, description=text)
        stack_flags(cmd)
        cmd.set_defaults(handler=_run_role, role=role)


def stack_flags(cmd: argparse.ArgumentParser) -> None:
    """The flags of the commands that run the stack, named like their settings keys."""
    add_config(cmd)
    add_listen(cmd)
    add_data_dir(cmd)
    add_log_level(cmd)


def settings_from_args(args: argparse.Namespace) -> tuple[Settings, Locator]:
    plugins_from_cwd()
    return runtime.read_settings(args.config, overrides=settings_overrides(args))


def setup_logging(level: str) -> None:
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
    setup_logging(settings.log_level)
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


def plugins_from_cwd() -> None:
    # Like uvicorn's --app-dir: `module:Class` plugin references resolve from where you run.
    cwd = os.getcwd()
    if cwd not in sys.path:
        sys.path.insert(0, cwd)
