"""The runtime side: model collectors from settings, and scheduler jobs that follow the
inventory (devices appear and disappear within one refresh, without a restart)."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterable
from contextlib import AsyncExitStack
from pathlib import Path

import pytest

from tests.unit.inventory.fakes import until
from watchkeeper.clock import FakeClock
from watchkeeper.collect.scheduler import Job, Scheduler
from watchkeeper.errors import ConfigError
from watchkeeper.inventory import InventoryManager, StaticInventory
from watchkeeper.runtime.assemble import build_collectors, devices_from, plan_jobs
from watchkeeper.runtime.inventory import JobReconciler, build_inventory
from watchkeeper.settings import load_settings
from watchkeeper.telemetry import SelfMetrics

SETTINGS = """\
inventory:
  file: {file}
  devices:
    - {{name: localhost, address: 127.0.0.1, tags: [self]}}
collectors:
  - {{name: reach, plugin: tcp, options: {{port: 22}}, devices: ["*"], interval: 60}}
  - {{name: core-only, plugin: tcp, options: {{port: 179}}, devices: ["tag:core"]}}
"""


class Recorder:
    """Forwards to the real scheduler and remembers every job set it was given."""

    def __init__(self, scheduler: Scheduler) -> None:
        self.scheduler = scheduler
        self.sets: list[list[str]] = []

    def reconcile(self, jobs: Iterable[Job]) -> None:
        jobs = list(jobs)
        self.scheduler.reconcile(jobs)
        self.sets.append(sorted(j.spec.job_id for j in jobs))


def touch(path: Path, text: str) -> None:
    """Write ``text`` and make sure the mtime moves even on a coarse clock."""
    before = path.stat().st_mtime_ns if path.exists() else 0
    path.write_text(text)
    if path.stat().st_mtime_ns <= before:
        os.utime(path, ns=(before + 1_000_000, before + 1_000_000))


async def test_jobs_follow_devices_in_the_inventory_file(tmp_path: Path,
                                                         clock: FakeClock) -> None:
    inventory_file = tmp_path / "inventory.yaml"
    touch(inventory_file, "devices: [{name: r1, tags: [core]}, {name: r2}]\n")
    settings, locator = load_settings(SETTINGS.format(file=inventory_file))
    manager = build_inventory(settings, locator, clock=clock)
    assert manager.names() == ["static"]
    collectors = build_collectors(settings, locator)
    static_devices = StaticInventory(devices_from(settings))
    scheduler = Scheduler(clock=clock, metrics=SelfMetrics(), sink=_discard)
    recorder = Recorder(scheduler)
    recorder.reconcile(plan_jobs(collectors, locator, static_devices))
    assert recorder.sets[-1] == ["reach:localhost"]
    async with AsyncExitStack() as stack:
        await manager.start(stack)
        await JobReconciler(manager, recorder, collectors, base=static_devices.devices(),
                            clock=clock).start(stack)
        await until(lambda: len(recorder.sets) == 2)  # the first build brings the file
        assert recorder.sets[-1] == ["core-only:r1", "reach:localhost", "reach:r1", "reach:r2"]
        assert scheduler.stats().jobs == 4

        touch(inventory_file, "devices: [{name: r1}, {name: r3, tags: [core]}]\n")
        await clock.advance(10)  # one refresh of the static model (its period)
        await until(lambda: len(recorder.sets) == 3)
        assert recorder.sets[-1] == ["core-only:r3", "reach:localhost", "reach:r1", "reach:r3"]
        assert scheduler.stats().jobs == 4

        await clock.advance(10)  # nothing changed: no new job set
        await asyncio.sleep(0.05)
        assert len(recorder.sets) == 3


async def test_a_model_built_before_the_reconciler_starts_is_applied(
        tmp_path: Path, clock: FakeClock) -> None:
    """`up` on the AMQP bus starts polling seconds after the inventory: the model built
    meanwhile still brings its devices (they were never polled, issue 16)."""
    inventory_file = tmp_path / "inventory.yaml"
    touch(inventory_file, "devices: [{name: r1}]\n")
    settings, locator = load_settings(SETTINGS.format(file=inventory_file))
    manager = build_inventory(settings, locator, clock=clock)
    collectors = build_collectors(settings, locator)
    recorder = Recorder(Scheduler(clock=clock, metrics=SelfMetrics(), sink=_discard))
    async with AsyncExitStack() as stack:
        await manager.start(stack)
        await until(lambda: manager.get("static").latest().version > 0)
        await JobReconciler(manager, recorder, collectors,
                            base=devices_from(settings), clock=clock).start(stack)
        await until(lambda: len(recorder.sets) == 1)
        assert recorder.sets[-1] == ["reach:localhost", "reach:r1"]


async def test_a_broken_file_keeps_the_jobs(tmp_path: Path, clock: FakeClock) -> None:
    """A bad edit marks the model stale; the devices (and their jobs) stay."""
    inventory_file = tmp_path / "inventory.yaml"
    touch(inventory_file, "devices: [{name: r1}]\n")
    settings, locator = load_settings(SETTINGS.format(file=inventory_file))
    manager = build_inventory(settings, locator, clock=clock)
    collectors = build_collectors(settings, locator)
    recorder = Recorder(Scheduler(clock=clock, metrics=SelfMetrics(), sink=_discard))
    async with AsyncExitStack() as stack:
        await manager.start(stack)
        await JobReconciler(manager, recorder, collectors,
                            base=devices_from(settings), clock=clock).start(stack)
        await until(lambda: len(recorder.sets) == 1)
        touch(inventory_file, "devices: [{name: r1, upstream: [nobody]}]\n")
        await clock.advance(10)
        await until(lambda: manager.get("static").latest().stale)
        await clock.advance(10)
        assert len(recorder.sets) == 1
        assert recorder.sets[-1] == ["reach:localhost", "reach:r1"]


def test_model_collectors_from_settings(tmp_path: Path) -> None:
    settings, locator = load_settings("""\
inventory:
  collectors:
    system: {period: 120, processes: false}
    lab-snmp:
      plugin: snmp
      targets: [{device: agent, address: 127.0.0.1, port: 16161}]
""")
    manager = build_inventory(settings, locator, clock=FakeClock())
    assert manager.names() == ["static", "system", "lab-snmp"]
    assert manager.get("system").collector.options.period == 120
    assert isinstance(manager, InventoryManager)


@pytest.mark.parametrize(("text", "message"), [
    ("inventory: {collectors: {nope: {}}}",
     r"wk\.yaml:1: inventory\.collectors\.nope: plugin 'nope' .*no such plugin"),
    ("inventory:\n  collectors:\n    system: {period: -1}",
     r"wk\.yaml:3: inventory\.collectors\.system\.period: `period` must be a positive"),
    ("inventory:\n  collectors:\n    system: {colour: red}",
     r"inventory\.collectors\.system\.colour: unknown option"),
    ("inventory:\n  collectors:\n    x: {plugin: snmp, targets: [{device: a}]}",
     r"inventory\.collectors\.x\.targets\[0\]: required option is missing|address"),
])
def test_bad_model_collector_settings_fail_at_start(text: str, message: str) -> None:
    settings, locator = load_settings(text, source="wk.yaml")
    with pytest.raises(ConfigError, match=message):
        build_inventory(settings, locator, clock=FakeClock())


async def _discard(outcome: object) -> None:
    return None
