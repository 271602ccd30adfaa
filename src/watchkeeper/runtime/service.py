"""Running watchkeeper: ``serve`` (archive + API) and ``up`` (everything in one process)."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import socket
from collections.abc import Callable, Sequence
from contextlib import AsyncExitStack
from functools import partial
from pathlib import Path
from typing import Literal

import uvicorn
from starlette.routing import BaseRoute

from watchkeeper.api import create_app
from watchkeeper.api.alarms import alarm_routes, event_routes
from watchkeeper.api.ingest import METADATA_FILE, MetadataStore
from watchkeeper.api.jobs import JobsApi
from watchkeeper.archive.promql import Limits
from watchkeeper.clock import Clock, SystemClock
from watchkeeper.collect.errorlog import ErrorLog
from watchkeeper.collect.saturation import SELF_CHECK
from watchkeeper.collect.scheduler import Job, Scheduler
from watchkeeper.errors import ConfigError, InventoryError
from watchkeeper.inventory import DeviceLookup, InventoryManager, StaticInventory
from watchkeeper.model import Device
from watchkeeper.pipeline import Pipeline, Services
from watchkeeper.pipeline.bus.local import LocalBus
from watchkeeper.pipeline.engines.alarms import Alarms
from watchkeeper.runtime.assemble import (
    BoundCollector,
    build_archive,
    build_bus,
    build_collectors,
    build_engines,
    build_pipeline,
    build_scheduler,
    devices_from,
    plan_jobs,
)
from watchkeeper.runtime.bridge import outcome_sink
from watchkeeper.runtime.collect import exit_unhindered, observed, server_routes
from watchkeeper.runtime.esmond import build_esmond
from watchkeeper.runtime.grafolean import grafolean_routes
from watchkeeper.runtime.graphite import start_graphite
from watchkeeper.runtime.inventory import (
    AmqpNotifications,
    JobReconciler,
    build_inventory,
    pipeline_notify,
)
from watchkeeper.settings import Locator, Settings, parse_listen
from watchkeeper.telemetry import SelfMetrics

log = logging.getLogger("watchkeeper")

Role = Literal["serve", "up"]
KEEP_ALIVE_SECONDS = 75
"""How long an idle client connection is kept open. Longer than clients' own pool expiry
(httpx 5 s, aiohttp 15 s, Go 90 s is the exception): a server that closes first races a
client reusing the connection at that moment, and the client sees a reset (uvicorn's
default, 5 s, equals httpx's exactly). nginx's default, 75 s; D-number in decisions.md."""
STOP_GRACE_SECONDS = 5
"""On stop, how long running API requests, and each collector's close, may take before
they are cut: ``up`` ends within seconds of Ctrl-C whatever its load (issue 17 §4)."""


class _ApiServer(uvicorn.Server):
    """uvicorn without its own signal handling: the runtime owns signals and shutdown order."""

    @contextlib.contextmanager
    def capture_signals(self):  # type: ignore[no-untyped-def]
        yield


def bind(listen: str) -> socket.socket:
    """Bind the API socket now, so a taken port is a clear error before anything starts."""
    host, port = parse_listen(listen)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY only on sockets whose proto says TCP;
    # with 0, Nagle's algorithm holds each response's body behind the client's delayed ACK
    # (about 40 ms per request on Linux).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
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
    exit_unhindered()  # a plugin stuck in to_thread must not hold up the exit
    clock = clock or SystemClock()
    metrics = SelfMetrics()
    inventory = _static_inventory(settings, locator)
    live_inventory = build_inventory(settings, locator, clock=clock, metrics=metrics)
    archive = build_archive(settings, locator, clock=clock, metrics=metrics)
    esmond = build_esmond(settings, locator, archive=archive, clock=clock)
    collectors = build_collectors(settings, locator) if role == "up" else []
    jobs = plan_jobs(collectors, locator, inventory)
    metadata = MetadataStore(Path(settings.data_dir) / METADATA_FILE)  # D46: one per process
    if role == "up":
        bus = build_bus(settings, locator)
        services = Services(clock=clock, metrics=metrics, sink=archive,
                            lookup=DeviceLookup(live_inventory),
                            notify=pipeline_notify(live_inventory),
                            metadata=metadata)
        pipeline = build_pipeline(build_engines(settings, locator, services), bus, locator,
                                  data_dir=Path(settings.data_dir))
    # Remote collectors' config and results endpoints (results: pipeline in `up`, archive else).
    collect_routes = server_routes(settings, locator, archive=archive,
                                   publish=pipeline.publish if role == "up" else None,
                                   metadata=metadata)
    sock = bind(settings.server.listen)
    async with AsyncExitStack() as stack:
        stack.callback(sock.close)
        await archive.start(stack)
        await esmond.start(stack)
        await start_graphite(stack, settings, locator, archive=archive, clock=clock)
        await live_inventory.start(stack)
        if settings.inventory.notifications_url:  # the scaled deployment's notifications
            await AmqpNotifications(live_inventory, url=settings.inventory.notifications_url,
                                    queue=settings.inventory.notifications_queue).start(stack)
        if role == "up":
            await bus.start(stack)
            await pipeline.start(stack)
            if isinstance(bus, LocalBus):  # an AMQP queue's depth is the broker's to report
                for name in pipeline.engines:
                    metrics.queue_depth.labels(name).set_function(partial(bus.depth, name))
            scheduler = await _start_polling(
                stack, settings, clock=clock, metrics=metrics, pipeline=pipeline,
                collectors=collectors, jobs=jobs, inventory=live_inventory,
                base=inventory.devices())
        routes = [*collect_routes, *(_pipeline_routes(settings, pipeline) if role == "up" else []),
                  *(job_routes(scheduler, collectors, clock=clock) if role == "up" else []),
                  *grafolean_routes(settings, locator, archive=archive, tokens=esmond.tokens,
                                    clock=clock)]
        app = create_app(archive, metrics=metrics, max_body_bytes=settings.server.max_body_bytes,
                         inventory=live_inventory, extra_routes=routes,
                         esmond=esmond.esmond, tokens=esmond.tokens,
                         public_reads=settings.server.public_reads,
                         promql_limits=Limits(max_series=settings.server.promql.max_series,
                                              max_samples=settings.server.promql.max_samples,
                                              timeout=settings.server.promql.timeout),
                         health=_poller_health(scheduler) if role == "up" else None,
                         metric_metadata=metadata)
        # A bounded graceful stop: requests still running after it are cut (Ctrl-C under
        # any load ends within seconds, not when the last writer gives up).
        config = uvicorn.Config(app, log_level=_uvicorn_level(settings.log_level),
                                access_log=False, lifespan="off",
                                timeout_keep_alive=KEEP_ALIVE_SECONDS,
                                timeout_graceful_shutdown=STOP_GRACE_SECONDS)
        server = _ApiServer(config)
        serving = asyncio.create_task(server.serve(sockets=[sock]), name="api")
        stack.push_async_callback(_stop_server, server, serving)
        while not server.started and not serving.done():  # noqa: ASYNC110 - uvicorn has no event
            await asyncio.sleep(0.01)
        if serving.done():
            serving.result()  # surfaces the server's failure
        _freeze_startup_objects()
        if on_ready is not None:
            on_ready(f"http://{settings.server.listen}")
        waiting = asyncio.create_task(stop.wait())
        await asyncio.wait({waiting, serving}, return_when=asyncio.FIRST_COMPLETED)
        waiting.cancel()
        log.info("shutting down")


def _static_inventory(settings: Settings, locator: Locator) -> StaticInventory:
    """The configured devices, as jobs are planned from them at start-up."""
    try:
        return StaticInventory(devices_from(settings))
    except InventoryError as exc:
        raise locator.error("inventory.devices", str(exc)) from None


def _freeze_startup_objects() -> None:
    """Take what start-up built (it lives as long as the process) out of the cyclic
    collector's sight: a full collection walked it on every pass, ~25 ms over the objects
    of a loaded archive and its API on the benchmark VM, paid by whichever request was
    running (D23). Garbage is collected first, so only live objects are frozen."""
    gc.collect()
    gc.freeze()


async def _start_polling(stack: AsyncExitStack, settings: Settings, *, clock: Clock,
                         metrics: SelfMetrics, pipeline: Pipeline,
                         collectors: Sequence[BoundCollector], jobs: Sequence[Job],
                         inventory: InventoryManager, base: Sequence[Device]) -> Scheduler:
    """Start the scheduler on the jobs, feeding the pipeline; jobs then follow the inventory.

    The scheduler also runs its self-check on this host (``<host>/watchkeeper/...``)."""
    scheduler = build_scheduler(settings, clock=clock, metrics=metrics,
                                self_device=Device(name=socket.gethostname(),
                                                   address="127.0.0.1", tags=("self",)),
                                sink=observed(outcome_sink(pipeline.publish),
                                              errors=ErrorLog(clock)))  # ERRORED reasons logged
    scheduler.reconcile(jobs)
    polling = asyncio.create_task(scheduler.run(), name="scheduler")
    stack.push_async_callback(_close_collectors, collectors)
    stack.push_async_callback(_cancel, polling)
    # Devices appear and go without a restart.
    await JobReconciler(inventory, scheduler, collectors, base=base, clock=clock).start(stack)
    return scheduler


def _poller_health(scheduler: Scheduler) -> Callable[[], tuple[str, ...]]:
    """Why ``/api/v1/health`` says degraded: the poller's saturation reasons, if any."""
    return lambda: scheduler.saturation().reasons


def job_routes(scheduler: Scheduler, collectors: Sequence[BoundCollector], *,
               clock: Clock) -> list[BaseRoute]:
    """The scheduler's jobs and their latest reports (``/api/v1/collect/jobs``, ``/report``),
    each job naming the plugin its collector runs."""
    plugins = {bound.spec.name: bound.spec.plugin for bound in collectors}
    plugins.setdefault(SELF_CHECK, "self-check")
    return list(JobsApi(scheduler, plugins=plugins, now=clock.time).routes())


def _pipeline_routes(settings: Settings, pipeline: Pipeline) -> list[BaseRoute]:
    """The Canopsis importer, and the alarms API over the first alarms engine of the chain."""
    routes = event_routes(pipeline.publish)
    for spec in settings.engines:
        if spec.engine == "alarms":
            routes += alarm_routes(Alarms(pipeline.engines[spec.name], pipeline.send))
            break
    return routes


async def _stop_server(server: uvicorn.Server, serving: asyncio.Task[None]) -> None:
    server.should_exit = True
    with contextlib.suppress(asyncio.CancelledError):
        await serving


async def _cancel(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def _close_collectors(jobs: Sequence[object]) -> None:
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
