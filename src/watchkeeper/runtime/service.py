"""Running watchkeeper: ``serve`` (archive + API) and ``up`` (everything in one process)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Callable
from contextlib import AsyncExitStack
from typing import Literal

import uvicorn
from watchkeeper.collect.scheduler import Scheduler

from watchkeeper.api import create_app
from watchkeeper.clock import Clock, SystemClock
from watchkeeper.errors import ConfigError, InventoryError
from watchkeeper.inventory import StaticInventory
from watchkeeper.pipeline import Services
from watchkeeper.runtime.assemble import (
    build_archive,
    build_bus,
    build_engines,
    build_jobs,
    build_pipeline,
    devices_from,
)
from watchkeeper.runtime.bridge import outcome_sink
from watchkeeper.settings import Locator, Settings, parse_listen
from watchkeeper.telemetry import SelfMetrics

log = logging.getLogger("watchkeeper")

Role = Literal["serve", "up"]


class _ApiServer(uvicorn.Server):
    """uvicorn without its own signal handling: the runtime owns signals and shutdown order."""

    @contextlib.contextmanager
    def capture_signals(self):  # type: ignore[no-untyped-def]
        yield


def bind(listen: str) -> socket.socket:
    """Bind the API socket now, so a taken port is a clear error before anything starts."""
    host, port = parse_listen(listen)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise ConfigError(f"cannot listen on {listen}: {exc.strerror}", key="server.listen",
                          value=listen) from None
    sock.listen(2048)
    sock.setblocking(False)
    return sock


async def run(
    settings: Settings,
    locator: Locator,
    *,
    role: Role,
    stop: asyncio.Event,
    clock: Clock | None = None,
    on_ready: Callable[[str], None] | None = None,
) -> None:
    """Build everything from ``settings`` (failing fast), start it, run until ``stop`` is set.

    Shutdown runs in reverse start order: the API stops taking requests, the scheduler
    stops polling, the pipeline drains and flushes into the archive, the archive closes.
    """
    clock = clock or SystemClock()
    metrics = SelfMetrics()
    try:
        inventory = StaticInventory(devices_from(settings))
    except InventoryError as exc:
        raise locator.error("inventory.devices", str(exc)) from None
    archive = build_archive(settings, locator, clock=clock, metrics=metrics)
    jobs = build_jobs(settings, locator, inventory) if role == "up" else []
    if role == "up":
        bus = build_bus(settings, locator)
        services = Services(clock=clock, metrics=metrics, sink=archive)
        pipeline = build_pipeline(build_engines(settings, locator, services), bus, locator)
    sock = bind(settings.server.listen)
    async with AsyncExitStack() as stack:
        stack.callback(sock.close)
        await archive.start(stack)
        if role == "up":
            await bus.start(stack)
            await pipeline.start(stack)
            scheduler = Scheduler(
                clock=clock, metrics=metrics, sink=outcome_sink(pipeline.publish),
                max_concurrency=settings.scheduler.max_concurrency,
                per_device_concurrency=settings.scheduler.per_device_concurrency,
                jitter=settings.scheduler.jitter,
            )
            scheduler.reconcile(jobs)
            metrics.scheduled_jobs.set(len(jobs))
            polling = asyncio.create_task(scheduler.run(), name="scheduler")
            stack.push_async_callback(_close_collectors, jobs)
            stack.push_async_callback(_cancel, polling)
        app = create_app(archive, metrics=metrics, max_body_bytes=settings.server.max_body_bytes)
        config = uvicorn.Config(app, log_level=_uvicorn_level(settings.log_level),
                                access_log=False, lifespan="off")
        server = _ApiServer(config)
        serving = asyncio.create_task(server.serve(sockets=[sock]), name="api")
        stack.push_async_callback(_stop_server, server, serving)
        while not server.started and not serving.done():  # noqa: ASYNC110 - uvicorn has no event
            await asyncio.sleep(0.01)
        if serving.done():
            serving.result()  # surfaces the server's failure
        if on_ready is not None:
            on_ready(f"http://{settings.server.listen}")
        waiting = asyncio.create_task(stop.wait())
        await asyncio.wait({waiting, serving}, return_when=asyncio.FIRST_COMPLETED)
        waiting.cancel()
        log.info("shutting down")


async def _stop_server(server: uvicorn.Server, serving: asyncio.Task[None]) -> None:
    server.should_exit = True
    with contextlib.suppress(asyncio.CancelledError):
        await serving


async def _cancel(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def _close_collectors(jobs: list[object]) -> None:
    seen: set[int] = set()
    for job in jobs:
        collector = getattr(job, "collector", None)
        aclose = getattr(collector, "aclose", None)
        if aclose is not None and id(collector) not in seen:
            seen.add(id(collector))
            try:
                await aclose()
            except Exception:  # closing one collector must not stop the others closing
                log.exception("closing collector %s failed", getattr(collector, "name", "?"))


def _uvicorn_level(level: str) -> str:
    # uvicorn is chatty at info; its own lines only matter from warning up.
    return "warning" if level.lower() in ("info", "warning") else level.lower()
