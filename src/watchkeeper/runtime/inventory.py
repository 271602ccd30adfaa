"""The live inventory in the running service: model collectors from settings, and the
scheduler's job set following the inventory.

* :func:`build_inventory` loads the model collectors of ``inventory.collectors`` (``static``
  is always there) and validates their options and notification patterns, before anything
  starts (``config check`` runs it too); :class:`ModelMetrics` puts each model's counters
  on ``/metrics``.
* :class:`JobReconciler` re-derives the collectors' jobs from the latest snapshots whenever
  a model's version changes and hands the whole set to ``scheduler.reconcile``: devices
  (or interfaces) that appear get jobs, those that disappear lose them, without a restart.
* :func:`pipeline_notify` is what the pipeline's ``inventory_notify`` engine calls
  (``Services.notify``): plain mappings in, :class:`Notification` batches to the manager.
* :class:`AmqpNotifications` reads JSON notifications from a RabbitMQ queue
  (``inventory.notifications_url``/``notifications_queue``, the scaled deployment) and
  applies each message's batch with ``manager.notify_many`` before acknowledging it;
  :class:`AmqpNotifyPublisher` is the other end, ``Services.notify`` in a separate
  ``watchkeeper engine`` process.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import AsyncExitStack
from typing import Any, Final, Protocol

import msgspec
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from watchkeeper import plugins
from watchkeeper.clock import Clock
from watchkeeper.collect.scheduler import Job
from watchkeeper.errors import ConfigError, PluginError, WatchkeeperError
from watchkeeper.inventory import InventoryManager, ModelCollector, Snapshot, devices_of
from watchkeeper.inventory.abc import CollectorOptions, Notification
from watchkeeper.inventory.builtin.static import StaticModelCollector
from watchkeeper.model import Device
from watchkeeper.pipeline.abc import Notify
from watchkeeper.runtime.assemble import BoundCollector, convert_options
from watchkeeper.settings import Locator, Settings
from watchkeeper.telemetry import SelfMetrics

log = logging.getLogger("watchkeeper.inventory")


def build_inventory(settings: Settings, locator: Locator, *, clock: Clock,
                    metrics: SelfMetrics | None = None) -> InventoryManager:
    """The inventory manager with every configured model collector; ConfigError when one
    cannot be loaded or set up, or its options are wrong (naming
    ``inventory.collectors.<name>`` and the key). With ``metrics``, each model's counters
    are on ``/metrics`` (:class:`ModelMetrics`)."""
    sections: dict[str, dict[str, Any]] = {"static": {}, **settings.inventory.collectors}
    collectors = [_collector(name, section or {}, settings, locator)
                  for name, section in sections.items()]
    for key in ("history", "replay_limit"):
        value = getattr(settings.inventory, key)
        if value < 1:
            raise locator.error(f"inventory.{key}", "must be at least 1", value)
    manager = InventoryManager(collectors, clock=clock, history=settings.inventory.history,
                               replay_limit=settings.inventory.replay_limit)
    if metrics is not None:
        metrics.add_source(ModelMetrics(manager))
    return manager


def _collector(name: str, section: dict[str, Any], settings: Settings,
               locator: Locator) -> ModelCollector:
    path = f"inventory.collectors.{name}"
    raw = dict(section)
    ref = str(raw.pop("plugin", name))
    try:
        cls = plugins.load(plugins.INVENTORY_COLLECTORS, ref, plugins.subclass_of(ModelCollector))
    except PluginError as exc:
        raise locator.error(f"{path}.plugin" if "plugin" in section else path,
                            str(exc), ref) from None
    if not (isinstance(cls.Options, type) and issubclass(cls.Options, CollectorOptions)):
        raise locator.error(path, f"plugin {ref!r}: its Options must subclass "
                                  "watchkeeper.inventory.CollectorOptions")
    if issubclass(cls, StaticModelCollector):
        # The declared inventory: the settings' devices and the inventory file.
        raw.setdefault("devices", msgspec.to_builtins(settings.inventory.devices))
        raw.setdefault("file", settings.inventory.file)
    options = convert_options(raw, cls.Options, locator, path)
    try:
        collector: ModelCollector = cls(options, name=name)
        collector.endpoints()  # its patterns compile here: a bad one is a config error
    except re.error as exc:
        held = next((k for k, v in raw.items() if v == exc.pattern), None)
        raise locator.error(f"{path}.{held}" if held else path,
                            f"plugin {ref!r}: not a valid regex: {exc}", exc.pattern) from None
    except Exception as exc:  # noqa: BLE001 - whatever a plugin raises, a config error
        raise locator.error(path, f"plugin {ref!r} could not be set up: "
                                  f"{type(exc).__name__}: {exc}") from None
    return collector


_COUNTERS: Final = (  # (metric name suffix, help, LiveStats field)
    ("builds", "Model builds started.", "builds"),
    ("build_failures", "Builds that raised or timed out (model marked stale).",
     "build_failures"),
    ("builds_discarded", "Builds dropped: too many notifications arrived during them.",
     "discarded_builds"),
    ("notifications", "Notifications routed to the model.", "notifications"),
    ("handler_errors", "Notifications whose handler raised (not applied).",
     "notification_errors"),
)


class ModelMetrics:
    """Each model's counters and state, read from the live models at every scrape of
    ``/metrics`` (a prometheus_client custom collector): nothing to keep in step."""

    def __init__(self, manager: InventoryManager) -> None:
        self._manager = manager

    def collect(self) -> Iterator[Metric]:
        models = [self._manager.get(name) for name in self._manager.names()]
        stats = {model.name: model.stats() for model in models}
        for suffix, text, field in _COUNTERS:
            family = CounterMetricFamily(f"watchkeeper_inventory_{suffix}", text,
                                         labels=["collector"])
            for name, values in stats.items():
                family.add_metric([name], getattr(values, field))
            yield family
        version = GaugeMetricFamily("watchkeeper_inventory_version",
                                    "The model's current version.", labels=["collector"])
        building = GaugeMetricFamily("watchkeeper_inventory_building",
                                     "1 while a build runs.", labels=["collector"])
        stale = GaugeMetricFamily("watchkeeper_inventory_stale",
                                  "1 while builds fail (the model is the last good one), "
                                  "with the reason.", labels=["collector", "reason"])
        for model in models:
            snapshot = model.latest()
            version.add_metric([model.name], snapshot.version)
            building.add_metric([model.name], int(stats[model.name].building))
            stale.add_metric([model.name, (snapshot.stale_reason or "")[:200]],
                             int(snapshot.stale))
        yield from (version, building, stale)


def notifications(items: Iterable[Mapping[str, Any]]) -> list[Notification]:
    """Plain mappings (from the pipeline or a queue) as notifications; one that is not a
    valid notification is logged and left out, the others go on."""
    out: list[Notification] = []
    for item in items:
        try:
            out.append(msgspec.convert(item, Notification))
        except msgspec.ValidationError as exc:
            log.warning("invalid inventory notification left out: %s", exc)
    return out


def pipeline_notify(manager: InventoryManager) -> Notify:
    """``Services.notify`` over ``manager``: each batch is applied as one (one version per
    model for the whole batch)."""

    async def notify(items: Sequence[Mapping[str, Any]]) -> None:
        batch = notifications(items)
        if batch:
            await manager.notify_many(batch)

    return notify


class AmqpNotifications:
    """Consumes ``queue`` (durable) at ``url``: each message is one JSON notification or an
    array of them, applied as one batch, then acknowledged. A message that is not JSON is
    rejected (not requeued); invalid notifications in it are logged and left out."""

    def __init__(self, manager: InventoryManager, *, url: str,
                 queue: str = "watchkeeper.inventory", prefetch: int = 100,
                 connect_timeout: float = 10.0) -> None:
        self._manager = manager
        self.url = url
        self.queue = queue
        self._prefetch = prefetch
        self._connect_timeout = connect_timeout
        self.applied = 0  # messages applied (for tests and logs)
        self.rejected = 0

    async def start(self, exit_stack: AsyncExitStack) -> None:
        """Connect and start consuming; stop and disconnect when the stack unwinds."""
        connection = await _connect(self.url, connect_timeout=self._connect_timeout,
                                    name="watchkeeper inventory")
        exit_stack.push_async_callback(connection.close)
        channel = await connection.channel()
        await channel.set_qos(prefetch_count=self._prefetch)
        queue = await channel.declare_queue(self.queue, durable=True)
        tag = await queue.consume(self._on_message)

        async def cancel() -> None:
            with contextlib.suppress(Exception):
                await queue.cancel(tag)

        exit_stack.push_async_callback(cancel)
        from watchkeeper.pipeline.bus.amqp import redact

        log.info("inventory notifications from %s queue %s", redact(self.url), self.queue)

    async def _on_message(self, message: Any) -> None:
        try:
            items = msgspec.json.decode(message.body)
        except msgspec.DecodeError as exc:
            log.warning("inventory queue %s: a message that is not JSON rejected: %s",
                        self.queue, exc)
            self.rejected += 1
            await message.reject(requeue=False)
            return
        batch = notifications(items if isinstance(items, list) else [items])
        if batch:
            await self._manager.notify_many(batch)
        self.applied += 1
        await message.ack()


class AmqpNotifyPublisher:
    """``Services.notify`` for an engine process without the inventory: each batch goes to
    ``queue`` as one persistent JSON message (confirmed by the broker), for
    :class:`AmqpNotifications` in the process that runs the inventory."""

    def __init__(self, *, url: str, queue: str = "watchkeeper.inventory",
                 connect_timeout: float = 10.0) -> None:
        self.url = url
        self.queue = queue
        self._connect_timeout = connect_timeout
        self._channel: Any = None
        self._persistent: Any = None

    async def start(self, exit_stack: AsyncExitStack) -> None:
        connection = await _connect(self.url, connect_timeout=self._connect_timeout,
                                    name="watchkeeper inventory notify")
        exit_stack.push_async_callback(connection.close)
        self._channel = await connection.channel(publisher_confirms=True)
        await self._channel.declare_queue(self.queue, durable=True)
        from aio_pika import DeliveryMode  # importable: _connect checked it

        self._persistent = DeliveryMode.PERSISTENT

    async def __call__(self, items: Sequence[Mapping[str, Any]]) -> None:
        if self._channel is None:
            raise WatchkeeperError("the inventory notification publisher is not started")
        import aio_pika

        message = aio_pika.Message(body=msgspec.json.encode(list(items)),
                                   content_type="application/json",
                                   delivery_mode=self._persistent)
        await self._channel.default_exchange.publish(message, routing_key=self.queue)


class JobSink(Protocol):
    """What the reconciler drives: the scheduler's ``reconcile``."""

    def reconcile(self, jobs: Iterable[Job]) -> None: ...


class JobReconciler:
    """Keeps ``scheduler``'s job set equal to the jobs of ``collectors`` over the inventory.

    The configured devices (``base``) always stay; every device node of every model joins
    them. Changes are coalesced: after reconciling, the reconciler waits ``min_interval``
    on the clock before looking again, so a burst of notifications costs one pass.
    """

    def __init__(
        self,
        manager: InventoryManager,
        scheduler: JobSink,
        collectors: Sequence[BoundCollector],
        *,
        base: Sequence[Device],
        clock: Clock,
        min_interval: float = 1.0,
    ) -> None:
        self._manager = manager
        self._scheduler = scheduler
        self._collectors = list(collectors)
        self._base = list(base)
        self._clock = clock
        self._min_interval = min_interval
        self._changed = asyncio.Event()
        self._versions: tuple[int, ...] = ()  # none reconciled yet
        self._devices: dict[str, Device] | None = None
        self.passes = 0

    async def start(self, exit_stack: AsyncExitStack) -> None:
        self._manager.subscribe(self._on_change)
        if any(s.version for s in self._manager.snapshots()):
            # built before we listened (`up` on the AMQP bus starts polling only after the
            # bus and its partition sharing, seconds later): its devices were never applied
            self._changed.set()
        task = asyncio.create_task(self._run(), name="inventory-jobs")
        exit_stack.push_async_callback(_cancel, task)

    def _on_change(self, snapshot: Snapshot) -> None:
        self._changed.set()

    async def _run(self) -> None:
        while True:
            await self._changed.wait()
            self._changed.clear()
            self.reconcile_now()
            await self._clock.sleep_until(self._clock.time() + self._min_interval)

    def reconcile_now(self) -> bool:
        """Reconcile if any model changed version and the devices differ; True if it did."""
        snapshots = self._manager.snapshots()
        versions = tuple(s.version for s in snapshots)
        if versions == self._versions:
            return False  # only staleness changed
        self._versions = versions
        devices = {d.name: d for d in devices_of(snapshots)}
        for device in self._base:
            devices.setdefault(device.name, device)
        if devices == self._devices:
            return False
        self._devices = devices
        jobs = self.jobs(list(devices.values()))
        try:
            self._scheduler.reconcile(jobs)
        except ConfigError as exc:
            log.error("inventory change not applied to the scheduler: %s", exc)
            return False
        self.passes += 1
        log.info("inventory version %s: %d devices, %d jobs", versions, len(devices), len(jobs))
        return True

    def jobs(self, devices: list[Device]) -> list[Job]:
        """Every collector's jobs over ``devices``; a device a collector refuses (bad
        connection settings) is left out of that collector, with a log line."""
        jobs: list[Job] = []
        for item in self._collectors:
            spec = item.spec
            for device in devices:
                if not any(device.matches(s) for s in spec.devices):
                    continue
                try:
                    jobs.extend(Job(collector=item.collector, spec=job, timeout=spec.timeout)
                                for job in item.collector.jobs([device], (spec.interval,)))
                except WatchkeeperError as exc:
                    log.error("collector %s: device %s from the inventory left out: %s",
                              spec.name, device.name, exc)
            try:  # jobs of no device: a prometheus collector's file_sd targets
                jobs.extend(Job(collector=item.collector, spec=job, timeout=spec.timeout)
                            for job in item.collector.jobs([], (spec.interval,)))
            except WatchkeeperError as exc:
                log.error("collector %s: targets left out: %s", spec.name, exc)
        return jobs


async def _cancel(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def _connect(url: str, *, connect_timeout: float, name: str) -> Any:
    """A robust connection to the notifications broker; errors name the setting."""
    from watchkeeper.pipeline.bus.amqp import redact

    try:
        import aio_pika
    except ImportError:
        raise ConfigError("inventory notifications over RabbitMQ need aio-pika: "
                          "pip install 'watchkeeper[amqp]'",
                          key="inventory.notifications_url") from None
    try:
        return await aio_pika.connect_robust(url, timeout=connect_timeout,
                                             client_properties={"connection_name": name})
    except (OSError, TimeoutError, aio_pika.exceptions.AMQPError) as exc:
        raise ConfigError(f"cannot connect to the AMQP broker at {redact(url)}: {exc!r}",
                          key="inventory.notifications_url") from None
