"""The composition root: turns settings into objects. Plugins are loaded here and nowhere else."""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec

from watchkeeper import plugins
from watchkeeper.archive import Archive
from watchkeeper.clock import Clock
from watchkeeper.collect import Collector
from watchkeeper.collect.build import check_name
from watchkeeper.collect.scheduler import Job, PollOutcome, Scheduler
from watchkeeper.errors import InventoryError, PipelineError, PluginError
from watchkeeper.inventory import StaticInventory
from watchkeeper.model import Device
from watchkeeper.pipeline import TASKS, Bus, Engine, EngineDefinition, Pipeline, Services, leftovers
from watchkeeper.pipeline.engine import DeadLetter
from watchkeeper.pipeline.tasks import TaskRegistry
from watchkeeper.runtime.engines import engine_services
from watchkeeper.settings import (
    CollectorSettings,
    EngineSettings,
    Locator,
    Settings,
    parse_listen,
)
from watchkeeper.telemetry import SelfMetrics


def convert_options(options: dict[str, Any], model: type[Any], locator: Locator,
                    path: str) -> Any:
    """Validate a plugin's options against its model; errors point at the config line."""
    try:
        return msgspec.convert(options, model, str_keys=True)
    except msgspec.ValidationError as exc:
        text = str(exc)
        message, _, where = text.partition(" - at `$")
        sub = where.rstrip("`").lstrip(".")
        if message.startswith("Object contains unknown field"):
            sub = message.split("`")[1] if "`" in message else sub
            message = "unknown option"
        elif message.startswith("Object missing required field"):
            sub = message.split("`")[1] if "`" in message else sub
            message = "required option is missing"
        elif exc.__cause__ is not None:  # the model's own check (__post_init__)
            sub = _named_option(options, sub, message)
        full = f"{path}.{sub}" if sub else path
        value = options.get(sub) if sub and "." not in sub and "[" not in sub else None
        raise locator.error(full, message, value) from None


def _named_option(options: dict[str, Any], sub: str, message: str) -> str:
    """Where a model's own check points: at the option it names in backticks (``two
    `targets` ...``) when that option was given at ``sub``, else at ``sub`` itself."""
    named = re.search(r"`([\w-]+)`", message)
    section: Any = options
    for part in re.findall(r"[^.\[\]]+", sub):
        if isinstance(section, list) and part.isdigit() and int(part) < len(section):
            section = section[int(part)]
        elif isinstance(section, dict):
            section = section.get(part)
    if named is None or not isinstance(section, dict) or named[1] not in section:
        return sub
    return f"{sub}.{named[1]}" if sub else named[1]


def devices_from(settings: Settings) -> list[Device]:
    return [
        Device(name=d.name, address=d.address, tags=tuple(d.tags), groups=tuple(d.groups),
               interval=d.interval, connections=d.connections)
        for d in settings.inventory.devices
    ]


def self_watch(settings: Settings) -> list[CollectorSettings]:
    """The collectors that watch this machine and watchkeeper's own API out of the box."""
    host, port = parse_listen(settings.server.listen)
    if host in ("0.0.0.0", "::", ""):  # noqa: S104 - comparing, not binding
        host = "127.0.0.1"
    url_host = f"[{host}]" if ":" in host else host
    local = ["tag:self"]
    return [
        CollectorSettings(name="system", plugin="system", interval=10, devices=local),
        CollectorSettings(name="api-tcp", plugin="tcp", interval=10, devices=local,
                          options={"host": host, "port": port}),
        CollectorSettings(name="api-http", plugin="http", interval=10, devices=local,
                          options={"url": f"http://{url_host}:{port}/api/v1/health"}),
        CollectorSettings(name="ping", plugin="ping", interval=10, devices=local,
                          options={"tcp_port": port}),
    ]


def build_archive(settings: Settings, locator: Locator, *, clock: Clock,
                  metrics: SelfMetrics) -> Archive:
    cls = _load(plugins.ARCHIVES, settings.archive.backend, plugins.subclass_of(Archive),
                locator, "archive.backend")
    options = convert_options(settings.archive.options, cls.Options, locator, "archive.options")
    archive: Archive = cls(data_dir=Path(settings.data_dir), options=options, clock=clock,
                           metrics=metrics)
    return archive


def build_bus(settings: Settings, locator: Locator) -> Bus:
    cls = _load(plugins.BUSES, settings.bus.backend, plugins.subclass_of(Bus), locator,
                "bus.backend")
    try:
        bus: Bus = cls(**settings.bus.options)
    except TypeError as exc:
        raise locator.error("bus.options", f"invalid bus options: {exc}") from None
    return bus


@dataclass(frozen=True)
class BoundCollector:
    """A configured collector, built once; its jobs are derived from the devices (again
    whenever the inventory changes)."""

    spec: CollectorSettings
    collector: Collector
    path: str  # where it is configured, for errors: collectors[N]


def build_collectors(settings: Settings, locator: Locator) -> list[BoundCollector]:
    """Every configured collector, loaded and with options validated against its plugin."""
    specs = settings.collectors if settings.collectors is not None else self_watch(settings)
    bound: list[BoundCollector] = []
    names: set[str] = set()
    for index, spec in enumerate(specs):
        path = f"collectors[{index}]"
        if spec.name in names:
            raise locator.error(f"{path}.name", "collector names must be unique", spec.name)
        names.add(spec.name)
        check_name(spec, locator, path)  # the name is in every series key it writes
        cls = _load(plugins.COLLECTORS, spec.plugin, plugins.subclass_of(Collector), locator,
                    f"{path}.plugin")
        options = convert_options(spec.options, cls.Options, locator, f"{path}.options")
        if spec.interval <= 0 or spec.timeout <= 0:
            raise locator.error(f"{path}.interval", "interval and timeout must be positive",
                                spec.interval)
        bound.append(BoundCollector(spec=spec, collector=cls(options, name=spec.name),
                                    path=path))
    return bound


def plan_jobs(bound: list[BoundCollector], locator: Locator,
              inventory: StaticInventory) -> list[Job]:
    """One Job per (collector, selected device); a selector naming no device is an error."""
    jobs: list[Job] = []
    for item in bound:
        try:
            devices = inventory.select(item.spec.devices)
        except InventoryError as exc:
            raise locator.error(f"{item.path}.devices", str(exc), item.spec.devices) from None
        jobs.extend(Job(collector=item.collector, spec=job, timeout=item.spec.timeout)
                    for job in item.collector.jobs(devices, (item.spec.interval,)))
    return jobs


def build_jobs(settings: Settings, locator: Locator, inventory: StaticInventory) -> list[Job]:
    """One Job per (collector, device), with options validated against each plugin."""
    return plan_jobs(build_collectors(settings, locator), locator, inventory)


def build_engines(settings: Settings, locator: Locator, services: Services,
                  registry: TaskRegistry = TASKS) -> list[Engine]:
    dead_letters: deque[DeadLetter] = deque(maxlen=10_000)
    services = engine_services(settings, services)
    shared = shared_state(settings, locator)
    return [
        _engine(spec, f"engines[{index}]", locator, services, registry=registry,
                dead_letters=dead_letters, shared=shared)
        for index, spec in enumerate(settings.engines)
    ]


STATE_KEYS = ("state", "store")
"""The option naming where a stateful engine keeps its state: ``state`` (threshold,
dedup, any engine on ``pipeline.state``), ``store`` (alarms)."""


def shared_state(settings: Settings, locator: Locator) -> dict[str, Any]:
    """Where stateful engines keep their state when their options do not say (decision
    D45): with the archive in PostgreSQL, in its database and schema (``dsn``,
    ``schema``), so that a deployment on several hosts fails over with the state of an
    uninterrupted run without asking for it; otherwise nowhere (memory, the engines'
    own default: 3.2x faster than SQLite on the local chain)."""
    if settings.archive.backend != "postgres":
        return {}
    cls = _load(plugins.ARCHIVES, settings.archive.backend, plugins.subclass_of(Archive),
                locator, "archive.backend")
    options = convert_options(settings.archive.options, cls.Options, locator, "archive.options")
    return {"dsn": options.dsn, "schema": options.schema}


def with_shared_state(options: dict[str, Any], model: type[Any],
                      shared: dict[str, Any]) -> dict[str, Any]:
    """``options`` of an engine whose options are ``model``, with its state in the shared
    store (:func:`shared_state`) unless they name another; the shared ``dsn`` and
    ``schema`` fill in for a PostgreSQL state that names none."""
    if not shared or not isinstance(model, type) or not issubclass(model, msgspec.Struct):
        return options
    fields = {field.name for field in msgspec.structs.fields(model)}
    key = next((key for key in STATE_KEYS if key in fields), None)
    if key is None or not {"dsn", "schema"} <= fields:
        return options
    merged = {key: "postgres", **options}
    return {**shared, **merged} if merged[key] == "postgres" else merged


DRAIN_SECONDS = 4
"""On stop, how long the chain may drain; what is still queued then waits on disk for the
next start (pipeline/leftovers.py), so ``up`` ends within 15 s of Ctrl-C (issue 17 §4)."""


def build_pipeline(engines: list[Engine], bus: Bus, locator: Locator, *,
                   data_dir: Path | None = None) -> Pipeline:
    """The chain on ``bus``; with ``data_dir``, its stop is bounded and spills there."""
    try:
        if data_dir is None:
            return Pipeline(engines, bus)
        return Pipeline(engines, bus, drain_seconds=DRAIN_SECONDS,
                        leftovers=data_dir / leftovers.FILE_NAME)
    except PipelineError as exc:
        raise locator.error("engines", str(exc)) from None


def _engine(spec: EngineSettings, path: str, locator: Locator, services: Services, *,
            registry: TaskRegistry, dead_letters: deque[DeadLetter],
            shared: dict[str, Any]) -> Engine:
    definition = EngineDefinition()
    if spec.engine:
        definition = _load(plugins.ENGINES, spec.engine, plugins.instance_of(EngineDefinition),
                           locator, f"{path}.engine")
    event_task = definition.event_task
    beat_task = definition.beat_task
    batch_task = definition.batch_task
    try:
        if spec.event_processing:
            event_task, batch_task = registry.resolve(spec.event_processing), None
        if spec.beat_processing:
            beat_task = registry.resolve(spec.beat_processing)
    except PluginError as exc:
        key = "event_processing" if spec.event_processing and not event_task else "beat_processing"
        raise locator.error(f"{path}.{key}", str(exc)) from None
    if event_task is None and batch_task is None and beat_task is None:
        raise locator.error(path, "an engine needs `engine`, `event_processing` or "
                                  "`beat_processing`")
    for key in ("workers", "partitions", "attempts"):
        value = getattr(spec, key)
        if value is not None and value < 1:
            raise locator.error(f"{path}.{key}", "must be at least 1", value)
    if spec.engine:
        options = convert_options(with_shared_state(spec.options, definition.options, shared),
                                  definition.options, locator, f"{path}.options")
        ctx: dict[str, Any] = {}
    else:
        options, ctx = spec.options, dict(spec.options)
    return Engine(
        name=spec.name, services=services, event_task=event_task, beat_task=beat_task,
        batch_task=batch_task, next_engines=tuple(spec.next), workers=spec.workers,
        beat_interval=spec.beat_interval or definition.beat_interval, options=options, ctx=ctx,
        dead_letters=dead_letters, commit_task=definition.commit_task,
        ordered=definition.partitioned, max_attempts=spec.attempts,
        partitions=spec.partitions or (spec.workers if definition.partitioned else 1),
    )


def _load(group: str, ref: str, check: plugins.Check, locator: Locator, path: str) -> Any:
    try:
        return plugins.load(group, ref, check)
    except PluginError as exc:
        raise locator.error(path, str(exc), ref) from None


@dataclass
class Plan:
    """Everything built from the settings, not yet started."""

    settings: Settings
    metrics: SelfMetrics
    archive: Archive
    inventory: StaticInventory
    jobs: list[Job]
    bus: Bus | None = None
    pipeline: Pipeline | None = None


def build_scheduler(settings: Settings, *, clock: Clock, metrics: SelfMetrics,
                    sink: Callable[[PollOutcome], Awaitable[None]],
                    self_device: Device | None = None) -> Scheduler:
    """The collectors' scheduler with the configured limits (and its self-check on
    ``self_device``)."""
    return Scheduler(
        clock=clock, metrics=metrics, sink=sink, self_device=self_device,
        max_concurrency=settings.scheduler.max_concurrency,
        per_device_concurrency=settings.scheduler.per_device_concurrency,
        jitter=settings.scheduler.jitter,
    )
