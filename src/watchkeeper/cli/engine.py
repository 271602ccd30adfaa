"""``watchkeeper engine``: run one engine's workers against the shared (AMQP) bus."""

from __future__ import annotations

import argparse
import asyncio
import signal
from typing import Any

from watchkeeper import runtime
from watchkeeper.cli.options import add_config, add_data_dir, add_log_level, settings_overrides
from watchkeeper.cli.run import plugins_from_cwd, setup_logging
from watchkeeper.runtime.engines import run_engine, supervise, worker_command
from watchkeeper.settings import Locator, Settings


def add_commands(commands: Any) -> None:
    text = "run one engine's workers from the config, on the shared bus (bus.backend: amqp)"
    cmd = commands.add_parser("engine", help=text, description=text)
    cmd.add_argument("--name", "-n", required=True, help="the engine, as named in `engines`")
    cmd.add_argument("--workers", "-w", type=int, metavar="N",
                     help="worker processes (default: the engine's `workers` setting)")
    add_config(cmd)
    add_data_dir(cmd)
    add_log_level(cmd)
    # set by the supervisor for each worker it starts
    cmd.add_argument("--worker-index", type=int, default=None, help=argparse.SUPPRESS)
    cmd.add_argument("--worker-count", type=int, default=1, help=argparse.SUPPRESS)
    cmd.set_defaults(handler=_engine)


_early_stop: list[int] = []


def _engine(args: argparse.Namespace) -> int:
    # A stop asked for while still starting is kept and honoured once running.
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda signum, frame: _early_stop.append(signum))
    plugins_from_cwd()
    settings, locator = runtime.read_settings(args.config, overrides=settings_overrides(args))
    setup_logging(settings.log_level)
    spec = next((e for e in settings.engines if e.name == args.name), None)
    workers = args.workers or (spec.workers if spec is not None else 1)
    if workers < 1:
        raise locator.error("workers", "--workers must be at least 1", workers)
    if args.worker_index is None and workers > 1:
        return supervise(worker_command(args.config, args.name, args.log_level,
                                        data_dir=args.data_dir), workers, on_spawn=_spawned)
    worker = (args.worker_index or 0, max(args.worker_count, 1))
    asyncio.run(_run(settings, locator, args.name, worker))
    return 0


def _spawned(index: int, pid: int) -> None:
    print(f"worker {index} pid {pid}", flush=True)


async def _run(settings: Settings, locator: Locator, name: str, worker: tuple[int, int]) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    if _early_stop:
        stop.set()

    def ready(text: str) -> None:
        print(f"watchkeeper {text}; SIGTERM stops", flush=True)

    await run_engine(settings, locator, name=name, stop=stop, worker=worker, on_ready=ready)
    print(f"watchkeeper engine {name}: stopped", flush=True)
