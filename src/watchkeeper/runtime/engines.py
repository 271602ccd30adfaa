"""``watchkeeper engine``: one engine's workers, from the same config, on a shared bus.

The engine-launcher counterpart. With ``--workers 1`` the engine runs in this process;
with more, this process supervises that many worker processes: it restarts one that
dies (kill -9, OOM...) and, on SIGTERM or SIGINT, passes the signal on and waits for
each worker to finish and acknowledge the batch in its hands.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from contextlib import AsyncExitStack
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from watchkeeper.clock import Clock, SystemClock
from watchkeeper.errors import PipelineError
from watchkeeper.model import Device
from watchkeeper.pipeline import Pipeline, Services
from watchkeeper.pipeline.abc import Lookup
from watchkeeper.pipeline.engines import archive_writer
from watchkeeper.settings import Locator, Settings
from watchkeeper.telemetry import SelfMetrics

if TYPE_CHECKING:
    from watchkeeper.runtime.inventory import AmqpNotifyPublisher

log = logging.getLogger("watchkeeper.engine")

_RESTART_BACKOFF = (0.5, 1.0, 2.0, 5.0, 10.0)


def tune_gc() -> None:
    """Make the cyclic garbage collector cheap for an event-processing process.

    Decoding and processing allocate millions of short-lived objects; with the default
    thresholds the collector keeps rescanning everything that lives long (engine state,
    configuration), which measured as two to three times the cost of the work itself.
    What exists after start-up is frozen out of the scans, and young collections run
    less often. Events never form reference cycles, so little is left waiting.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)


def inventory_lookup(devices: Sequence[Device]) -> Lookup:
    """Attributes of each device for the enrich engine: address, tags, groups."""
    table: dict[str, Mapping[str, str]] = {}
    for device in devices:
        attrs = {"address": device.address} if device.address else {}
        if device.tags:
            attrs["tags"] = ",".join(device.tags)
        if device.groups:
            attrs["groups"] = ",".join(device.groups)
        table[device.name] = attrs
    empty: Mapping[str, str] = {}
    return lambda component: table.get(component, empty)


def engine_services(settings: Settings, services: Services) -> Services:
    """Fill what the runtime knows and the caller left out: the data directory, the
    inventory lookup (from the configured devices), and the metric metadata store the
    API reads (``prometheus-metadata.json`` in the data directory, D46)."""
    from watchkeeper.api.ingest import METADATA_FILE, MetadataStore
    from watchkeeper.runtime.assemble import devices_from

    if services.data_dir is None:
        services = replace(services, data_dir=Path(settings.data_dir))
    if services.lookup is None:
        services = replace(services, lookup=inventory_lookup(devices_from(settings)))
    if services.metadata is None:
        services = replace(services, metadata=MetadataStore(Path(settings.data_dir)
                                                            / METADATA_FILE))
    return services


def inventory_publisher(settings: Settings, name: str) -> AmqpNotifyPublisher | None:
    """Where an ``inventory_notify`` engine in this process sends notifications: the
    inventory's RabbitMQ queue, when one is configured (the inventory runs elsewhere)."""
    from watchkeeper.runtime.inventory import AmqpNotifyPublisher

    url = settings.inventory.notifications_url
    spec = next(e for e in settings.engines if e.name == name)
    if not url or spec.engine != "inventory_notify":
        return None
    return AmqpNotifyPublisher(url=url, queue=settings.inventory.notifications_queue)


async def run_engine(
    settings: Settings,
    locator: Locator,
    *,
    name: str,
    stop: asyncio.Event,
    worker: tuple[int, int] = (0, 1),
    clock: Clock | None = None,
    on_ready: Callable[[str], None] | None = None,
) -> None:
    """Run the engine ``name`` until ``stop`` is set, then finish what it holds and return."""
    from watchkeeper.runtime.assemble import build_archive, build_bus, build_engines

    index = next((i for i, e in enumerate(settings.engines) if e.name == name), None)
    if index is None:
        known = ", ".join(e.name for e in settings.engines)
        raise locator.error("engines", f"no engine named {name!r} (engines: {known})", name)
    bus = build_bus(settings, locator)
    if not bus.durable:
        raise locator.error("bus.backend", "`watchkeeper engine` needs a bus shared between "
                            "processes (backend: amqp); `watchkeeper up` runs the whole "
                            "chain in one process", settings.bus.backend)
    # the workers of a partitioned engine, started here or anywhere else, share its
    # partitions by themselves (pipeline/bus/members.py): ``worker`` only names this one
    clock = clock or SystemClock()
    metrics = SelfMetrics()
    notify = inventory_publisher(settings, name)
    services = Services(clock=clock, metrics=metrics, notify=notify)
    engines = build_engines(settings, locator, services)
    needs_archive = engines[index].commit_task is archive_writer.flush
    archive = build_archive(settings, locator, clock=clock, metrics=metrics) \
        if needs_archive else None
    if archive is not None:
        for engine in engines:
            engine.services = replace(engine.services, sink=archive)
    try:
        pipeline = Pipeline(engines, bus, run={name})
    except PipelineError as exc:
        raise locator.error("engines", str(exc)) from None
    async with AsyncExitStack() as stack:
        if archive is not None:
            await archive.start(stack)
        if notify is not None:
            await notify.start(stack)
        await bus.start(stack)
        await pipeline.start(stack)
        tune_gc()
        if on_ready is not None:
            on_ready(f"engine {name}: worker {worker[0] + 1}/{worker[1]} running")
        await stop.wait()
        log.info("engine %s: stopping (finishing the batch in hand)", name)
        await pipeline.stop(drain=False)


def supervise(argv: Sequence[str], workers: int, *,
              on_spawn: Callable[[int, int], None] | None = None) -> int:
    """Run ``workers`` processes of ``argv + [--worker-index I --worker-count N]``.

    A worker that exits while we are not stopping is restarted after a back-off. On
    SIGTERM/SIGINT every worker gets SIGTERM and we wait; the exit code is 0 when all
    of them stopped cleanly.
    """
    stopping = False

    def on_signal(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True
        for proc in procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)

    def spawn(index: int) -> subprocess.Popen[bytes]:
        command = [*argv, "--worker-index", str(index), "--worker-count", str(workers)]
        proc = subprocess.Popen(command)  # noqa: S603 - our own interpreter and module
        if on_spawn is not None:
            on_spawn(index, proc.pid)
        return proc

    procs: dict[int, subprocess.Popen[bytes]] = {}
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    for index in range(workers):
        procs[index] = spawn(index)
    restarts = dict.fromkeys(range(workers), 0)
    codes: dict[int, int] = {}
    while procs:
        for index, proc in list(procs.items()):
            code = proc.poll()
            if code is None:
                continue
            del procs[index]
            if stopping:
                codes[index] = code
                continue
            delay = _RESTART_BACKOFF[min(restarts[index], len(_RESTART_BACKOFF) - 1)]
            restarts[index] += 1
            log.warning("worker %d (pid %d) exited with %d; restarting in %.1f s",
                        index, proc.pid, code, delay)
            deadline = time.monotonic() + delay
            while time.monotonic() < deadline and not stopping:
                time.sleep(0.05)
            if not stopping:
                procs[index] = spawn(index)
        time.sleep(0.05)
    # a worker still starting when SIGTERM came dies of it, holding nothing: a clean stop
    clean = (0, -signal.SIGTERM)
    return 0 if all(code in clean for code in codes.values()) else 1


def worker_command(config: str | None, name: str, log_level: str | None, *,
                   data_dir: str | None = None) -> list[str]:
    """How a supervisor starts one worker of ``name``: this interpreter, the same config
    and data directory."""
    command = [sys.executable, "-m", "watchkeeper.cli.main", "engine", "--name", name,
               "--workers", "1"]
    if config:
        command += ["--config", config]
    if data_dir:
        command += ["--data-dir", data_dir]
    if log_level:
        command += ["--log-level", log_level]
    return command
