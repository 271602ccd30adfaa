"""The live inventory in the running service: model collectors from settings, and the
scheduler's job set following the inventory.

* :func:`build_inventory` loads the model collectors of ``inventory.collectors`` (``static``
  is always there) and validates their options, before anything starts.
* :class:`JobReconciler` re-derives the collectors' jobs from the latest snapshots whenever
  a model's version changes and hands the whole set to ``scheduler.reconcile``: devices
  (or interfaces) that appear get jobs, those that disappear lose them, without a restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable, Sequence
from contextlib import AsyncExitStack
from typing import Any, Protocol

import msgspec

from watchkeeper import plugins
from watchkeeper.clock import Clock
from watchkeeper.collect.scheduler import Job
from watchkeeper.errors import ConfigError, PluginError, WatchkeeperError
from watchkeeper.inventory import InventoryManager, ModelCollector, Snapshot, devices_of
from watchkeeper.inventory.abc import CollectorOptions
from watchkeeper.inventory.builtin.static import StaticModelCollector
from watchkeeper.model import Device
from watchkeeper.runtime.assemble import BoundCollector, convert_options
from watchkeeper.settings import Locator, Settings

log = logging.getLogger("watchkeeper.inventory")


def build_inventory(settings: Settings, locator: Locator, *, clock: Clock) -> InventoryManager:
    """The inventory manager with every configured model collector; ConfigError when one
    cannot be loaded or its options are wrong (naming ``inventory.collectors.<name>``)."""
    sections: dict[str, dict[str, Any]] = {"static": {}, **settings.inventory.collectors}
    collectors: list[ModelCollector] = []
    for name, section in sections.items():
        path = f"inventory.collectors.{name}"
        raw = dict(section or {})
        ref = str(raw.pop("plugin", name))
        try:
            cls = plugins.load(plugins.INVENTORY_COLLECTORS, ref,
                               plugins.subclass_of(ModelCollector))
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
        collectors.append(cls(options, name=name))
    return InventoryManager(collectors, clock=clock)


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
        self._versions: tuple[int, ...] = tuple(s.version for s in manager.snapshots())
        self._devices: dict[str, Device] | None = None
        self.passes = 0

    async def start(self, exit_stack: AsyncExitStack) -> None:
        self._manager.subscribe(self._on_change)
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
        return jobs


async def _cancel(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
