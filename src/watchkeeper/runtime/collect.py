"""``watchkeeper collect``: the Manager run once, the local collector daemon, the remote one,
and the server side's job configuration and result intake.

* ``--once``: a :class:`Manager` runs every selected collector once; the exit code is the
  roll-up's (0 OK, 1 WARNING, 2 CRITICAL, 3 ERRORED).
* local daemon: the scheduler polls and the engine pipeline writes into the archive of
  ``data_dir``, like ``up`` without the API.
* ``--server URL --token KEY``: a remote collector (``collect.remote``).

Devices are the settings' ``inventory.devices`` plus those of ``inventory.file`` (parsed
by ``collect.testbed``; a file replaces the built-in ``localhost`` default).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextlib import AsyncExitStack
from pathlib import Path

from starlette.requests import Request
from starlette.routing import BaseRoute

from watchkeeper.api.collect import CollectApi, require_collector
from watchkeeper.archive import Archive
from watchkeeper.clock import Clock, SystemClock
from watchkeeper.collect.build import CollectorPool, build_jobs, close_collectors
from watchkeeper.collect.credentials import resolve_credential
from watchkeeper.collect.errorlog import ErrorLog
from watchkeeper.collect.genie.testbed import looks_like_pyats, read_pyats_inventory
from watchkeeper.collect.manager import LatestResults, Manager
from watchkeeper.collect.remote import RemoteCollector, RemoteServer, Spool
from watchkeeper.collect.remote.convert import config_to_wire, result_from_wire
from watchkeeper.collect.scheduler import PollOutcome
from watchkeeper.collect.testbed import parse_testbed
from watchkeeper.collect.workers import DaemonExecutor
from watchkeeper.errors import ConfigError, SeriesNotFound
from watchkeeper.model import Device, Event, Measurement, MetadataSink, SeriesKey, Status
from watchkeeper.pipeline import Services
from watchkeeper.runtime.assemble import (
    build_archive,
    build_bus,
    build_engines,
    build_pipeline,
    build_scheduler,
    devices_from,
    self_watch,
)
from watchkeeper.runtime.bridge import outcome_event, outcome_sink
from watchkeeper.runtime.config import read_settings
from watchkeeper.settings import CollectorSettings, InventorySettings, Locator, Settings
from watchkeeper.telemetry import SelfMetrics
from watchkeeper.wire import CollectBatch, CollectConfig

log = logging.getLogger("watchkeeper.collect")


def read_inventory(path: str) -> list[Device]:
    """The devices of an inventory file; errors name the file and line."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read the inventory file: {exc.strerror}", file=path,
                          key="inventory.file") from None
    except UnicodeDecodeError:
        raise ConfigError("the inventory file is not UTF-8 text", file=path) from None
    if looks_like_pyats(text):  # a pyATS testbed, read by pyATS' loader (docs/genie.md)
        return read_pyats_inventory(path)
    return parse_testbed(text, source=path)


def collect_devices(settings: Settings) -> list[Device]:
    """Settings devices plus the inventory file's; a name declared twice is refused."""
    inline = devices_from(settings)
    if not settings.inventory.file:
        return inline
    if settings.inventory.devices == InventorySettings().devices:
        inline = []  # the file replaces the built-in `localhost` default
    devices = [*inline, *read_inventory(settings.inventory.file)]
    names: set[str] = set()
    for device in devices:
        if device.name in names:
            raise ConfigError(f"device {device.name!r} is declared twice",
                              file=settings.inventory.file, key="inventory")
        names.add(device.name)
    return devices


def collector_specs(settings: Settings) -> list[CollectorSettings]:
    return settings.collectors if settings.collectors is not None else self_watch(settings)


def build_manager(settings: Settings, locator: Locator, *, clock: Clock | None = None) -> Manager:
    """A Manager over the settings' devices and collectors (validated: fails fast)."""
    return Manager(
        collect_devices(settings), collector_specs(settings), locator=locator, clock=clock,
        max_concurrency=settings.scheduler.max_concurrency,
        per_device_concurrency=settings.scheduler.per_device_concurrency,
    )


async def run_once(settings: Settings, locator: Locator, *, report: str | None = None,
                   plugins: Sequence[str] | None = None,
                   devices: Sequence[str] | None = None, uid: str = "once") -> Manager:
    """Run every selected collector once; write the report if asked. Returns the Manager."""
    exit_unhindered()
    manager = build_manager(settings, locator)
    try:
        await manager.run(uid, plugins=plugins, devices=devices)
    finally:
        await manager.aclose()
    if report:
        manager.finalize_report(report)
    return manager


def exit_unhindered() -> None:
    """Give the running loop a default executor whose threads never delay exit: a plugin's
    ``to_thread`` call stuck for good must not hold ``collect`` up (see collect.workers)."""
    asyncio.get_running_loop().set_default_executor(DaemonExecutor())


EXIT_GRACE = 3.0
"""Seconds threads a plugin started may run on once ``collect`` is done."""


def leave_promptly(code: int, *, grace: float = EXIT_GRACE) -> int:
    """``code``, once the threads a plugin may have started (not daemons, so the interpreter
    would wait for them) have ended, or after ``grace`` seconds; then, as a last resort,
    flush the logs and standard streams and end the process with ``os._exit(code)``."""
    deadline = time.monotonic() + grace
    for thread in _lingering():
        thread.join(max(0.0, deadline - time.monotonic()))
    left = _lingering()
    if not left:
        return code
    log.warning("exiting while %d threads a plugin started still run: %s", len(left),
                ", ".join(sorted(t.name for t in left)))
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _lingering() -> list[threading.Thread]:
    main = threading.main_thread()
    return [t for t in threading.enumerate() if t is not main and not t.daemon and t.is_alive()]


def exit_code(status: Status) -> int:
    """0 OK, 1 WARNING (and PARTIAL), 2 CRITICAL, 3 ERRORED."""
    return status.exit_code


REPORT_EVERY = 10.0
"""Seconds between rewrites of a daemon's ``--report``."""


def observed(sink: Callable[[PollOutcome], Awaitable[None]], *, errors: ErrorLog,
             latest: LatestResults | None = None) -> Callable[[PollOutcome], Awaitable[None]]:
    """``sink``, after logging ERRORED outcomes and keeping each job's latest one."""

    async def observe(outcome: PollOutcome) -> None:
        errors.note(outcome)
        if latest is not None:
            await latest(outcome)
        await sink(outcome)

    return observe


async def keep_report(latest: LatestResults, path: str, *, clock: Clock,
                      every: float = REPORT_EVERY) -> None:
    """Rewrite ``path`` (and its .html) from the latest results every ``every`` s, until
    cancelled; then once more. Each rewrite is atomic: readers never see half a report."""
    try:
        while True:
            await clock.sleep_until(clock.time() + every)
            await write_latest(latest, path)
    finally:
        await write_latest(latest, path)


async def write_latest(latest: LatestResults, path: str) -> None:
    """Write the latest results to ``path``; an OS error is logged, not raised."""
    latest.refresh()
    try:
        await asyncio.to_thread(latest.finalize_report, path)
    except OSError as exc:  # a full disk must not stop the collector; say so and go on
        log.error("cannot write the report %s: %s", path, exc)


async def run_local(settings: Settings, locator: Locator, *, stop: asyncio.Event,
                    clock: Clock | None = None, report: str | None = None) -> None:
    """The collector daemon writing into the local archive, until ``stop`` is set; with
    ``report``, the latest result of every job is rewritten there every few seconds."""
    exit_unhindered()
    clock = clock or SystemClock()
    metrics = SelfMetrics()
    pool = CollectorPool()
    jobs, _ = pool.build(collector_specs(settings), collect_devices(settings), locator=locator)
    archive = build_archive(settings, locator, clock=clock, metrics=metrics)
    bus = build_bus(settings, locator)
    services = Services(clock=clock, metrics=metrics, sink=archive)
    pipeline = build_pipeline(build_engines(settings, locator, services), bus, locator,
                              data_dir=Path(settings.data_dir))
    async with AsyncExitStack() as stack:
        await archive.start(stack)
        await bus.start(stack)
        await pipeline.start(stack)
        latest = LatestResults() if report else None
        sink = observed(outcome_sink(pipeline.publish), errors=ErrorLog(clock), latest=latest)
        scheduler = build_scheduler(settings, clock=clock, metrics=metrics, sink=sink)
        scheduler.reconcile(jobs)
        polling = asyncio.create_task(scheduler.run(), name="scheduler")
        stack.push_async_callback(close_collectors, pool.collectors())
        if latest is not None and report:
            reporting = asyncio.create_task(keep_report(latest, report, clock=clock))
            stack.push_async_callback(_cancel, reporting)  # after polling stopped: the last
        stack.push_async_callback(_cancel, polling)
        log.info("collecting: %d jobs into %s", len(jobs), settings.data_dir)
        await stop.wait()


async def _cancel(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


# ---------------------------------------------------------------- server side


class ConfigSource:
    """The job configuration served to remote collectors; re-read when the inventory file
    changes. A change that does not validate is logged and the last good one kept."""

    def __init__(self, settings: Settings, locator: Locator) -> None:
        self._settings = settings
        self._locator = locator
        self._stamp: tuple[int, int] | None = None
        self._config: CollectConfig | None = None

    def __call__(self) -> CollectConfig:
        stamp = self._file_stamp()
        if self._config is None or stamp != self._stamp:
            try:
                self._config = self.build()
            except (ConfigError, OSError) as exc:
                if self._config is None:
                    raise
                log.error("inventory changed but is invalid; serving the last good one: %s", exc)
            self._stamp = stamp
        return self._config

    def build(self) -> CollectConfig:
        settings = self._settings
        devices = collect_devices(settings)
        # Remote collectors run only what is configured: the built-in self-watch defaults
        # watch the server's own host and would be wrong anywhere else.
        specs = settings.collectors or []
        build_jobs(specs, devices, locator=self._locator)  # validated here, like at start-up
        return config_to_wire(devices, specs, refresh=settings.collect.refresh)

    def _file_stamp(self) -> tuple[int, int] | None:
        path = self._settings.inventory.file
        if not path:
            return None
        try:
            stat = os.stat(path)
        except OSError:
            return None
        return stat.st_mtime_ns, stat.st_size


def batch_seq_key(collector: str) -> SeriesKey:
    """The series where the server keeps each remote collector's last stored batch ``seq``."""
    return SeriesKey.make("watchkeeper", "remote-collect", "batch.seq", {"collector": collector})


_RECALL_SPANS = (3600.0, 86_400.0, 30 * 86_400.0)


async def recall_seq(archive: Archive, collector: str, *, now: float) -> int:
    """The last ``seq`` stored for ``collector`` (-1: none); recent hours are read first."""
    key = batch_seq_key(collector)
    for span in (*_RECALL_SPANS, now):
        try:
            points = await archive.read(key, now - span, now + 3600.0)
        except SeriesNotFound:
            return -1
        if len(points):
            return int(points.values.max())
    return -1


def server_routes(settings: Settings, locator: Locator, *, archive: Archive,
                  publish: Callable[[list[Event]], Awaitable[None]] | None = None,
                  metadata: MetadataSink | None = None,
                  authorize: Callable[[Request], None] | None = None,
                  clock: Clock | None = None) -> list[BaseRoute]:
    """The ``/api/v1/collect`` routes: results go to ``publish`` (the pipeline, in ``up``)
    or straight into ``archive`` (``serve``), and the metric families' metadata they carry
    into ``metadata`` once their points are stored (in ``up`` the archive writer keeps it,
    as a local poll's). ``authorize`` defaults to a write token.

    Each batch's ``seq`` is stored with its results (:func:`batch_seq_key`): in the same
    archive write when serving, as an event after the batch's through the pipeline. So a
    batch re-sent after a server restart is still recognised, and one whose results were
    lost is not mistaken for stored.
    """
    source = ConfigSource(settings, locator)
    source()  # fail fast: a bad inventory or collector config refuses to start
    clock = clock or SystemClock()

    async def accept(batch: CollectBatch) -> int:
        events = [outcome_event(result_from_wire(r)) for r in batch.results]
        now = clock.time()
        marker = Measurement(key=batch_seq_key(batch.collector), ts=now, value=float(batch.seq))
        if publish is not None:
            await publish([*events, Event(event_type="collect.batch", component="watchkeeper",
                                          resource="remote-collect", timestamp=now,
                                          measurements=(marker,))])
        else:
            await archive.write([*(m for event in events for m in event.measurements), marker])
            described = [family for event in events for family in event.families]
            if described and metadata is not None:
                await asyncio.to_thread(metadata.update, described)  # a file: not on the loop
        return len(events)

    async def recall(collector: str) -> int:
        return await recall_seq(archive, collector, now=clock.time())

    api = CollectApi(config=source, accept=accept, authorize=authorize or require_collector,
                     recall=recall)
    return list(api.routes())


# ---------------------------------------------------------------- remote collector


def remote_settings(config: str | None,
                    overrides: Mapping[str, object]) -> tuple[Settings, Locator]:
    """A remote collector's own settings (scheduler limits, spool, log level): optional."""
    return read_settings(config, overrides=overrides)


async def run_remote(settings: Settings, *, server: str, token: str | None, spool: str | None,
                     stop: asyncio.Event, name: str | None = None,
                     clock: Clock | None = None) -> None:
    """Fetch jobs from ``server``, poll, deliver results (spooled in ``spool``) until ``stop``."""
    exit_unhindered()
    credential = resolve_credential(token) if token else None
    spool_dir = Path(spool) if spool else Path(settings.data_dir) / "spool"
    remote = RemoteServer(server, credential)
    collector = RemoteCollector(
        remote, Spool(spool_dir / "results.sqlite3", max_items=settings.collect.spool_max),
        name=name or socket.gethostname(), clock=clock or SystemClock(), metrics=SelfMetrics(),
        cache=spool_dir / "config.json", batch_size=settings.collect.batch_size,
        flush_interval=settings.collect.flush_interval,
        max_concurrency=settings.scheduler.max_concurrency,
        per_device_concurrency=settings.scheduler.per_device_concurrency,
        jitter=settings.scheduler.jitter,
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)  # not one INFO line per request
    log.info("remote collector for %s, spooling in %s", server, spool_dir)
    try:
        await collector.run(stop)
    finally:
        await remote.aclose()
