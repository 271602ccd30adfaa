"""Every route watchkeeper mounts, in one app built as ``watchkeeper up`` builds it.

The archive is embedded (real SQLite files), tokens and esmond metadata too; the inventory
holds a device whose connection carries an inline secret (so tests can look for it in
answers); the chain has an alarms engine, so alarms and the Canopsis importer are there.
The scheduler holds the configured jobs (so the jobs listing has them) but does not run:
nothing changes unless a request changes it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from starlette.applications import Starlette

from watchkeeper.api import create_app
from watchkeeper.api.alarms import alarm_routes, event_routes
from watchkeeper.archive import Archive
from watchkeeper.archive.esmond import EsmondArchive
from watchkeeper.archive.tokens import TokenStore
from watchkeeper.clock import FakeClock
from watchkeeper.collect.scheduler import PollOutcome, Scheduler
from watchkeeper.inventory import StaticInventory
from watchkeeper.pipeline import Pipeline, Services
from watchkeeper.pipeline.bus.local import LocalBus
from watchkeeper.pipeline.engines.alarms import Alarms
from watchkeeper.runtime.assemble import (
    build_archive,
    build_collectors,
    build_engines,
    build_pipeline,
    devices_from,
    plan_jobs,
)
from watchkeeper.runtime.collect import server_routes
from watchkeeper.runtime.esmond import build_esmond
from watchkeeper.runtime.grafolean import grafolean_routes
from watchkeeper.runtime.inventory import build_inventory
from watchkeeper.runtime.service import job_routes
from watchkeeper.settings import load_settings
from watchkeeper.telemetry import SelfMetrics

NOW = 1_700_000_000
SECRETS = ("s3cret-community", "hunter2-password")
"""Inline secrets in the configuration: no answer to anyone may contain them."""

CONFIG = """\
data_dir: {data_dir}
inventory:
  file: {data_dir}/inventory.yaml
  collectors: {{static: {{period: 0.2}}}}
  devices:
    - name: core1
      address: 127.0.0.1
      tags: [core]
      connections:
        snmp: {{community: s3cret-community, port: 16161}}
        ssh: {{username: wk, password: hunter2-password}}
collectors:
  - name: tcp
    plugin: tcp
    interval: 60
    devices: [core1]
    options: {{port: 22}}
engines:
  - name: archive
    engine: archive_writer
  - name: alarms
    engine: alarms
"""


INVENTORY_FILE = "devices: [{name: edge1, address: 127.0.0.2}]\n"
"""The static model's file (``data_dir/inventory.yaml``), rebuilt every 0.2 s."""


@dataclass
class FullApp:
    app: Starlette
    archive: Archive
    esmond: EsmondArchive
    tokens: TokenStore
    pipeline: Pipeline
    bus: LocalBus
    alarms: Alarms
    clock: FakeClock
    write_key: str
    read_key: str
    data_dir: Path

    def client(self, key: str | None = None, **kwargs: Any) -> httpx.AsyncClient:
        headers = {"Authorization": f"Token {key}"} if key else {}
        return httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app),
                                 base_url="http://wk", headers=headers, **kwargs)


async def _no_sink(outcome: PollOutcome) -> None:
    """The scheduler's sink: it never runs here."""


@asynccontextmanager
async def full_app(data_dir: Path, *, public_reads: bool = True,
                   max_body_bytes: int = 1_000_000) -> AsyncIterator[FullApp]:
    (data_dir / "inventory.yaml").write_text(INVENTORY_FILE)
    settings, locator = load_settings(CONFIG.format(data_dir=data_dir), source="wk.yaml")
    clock = FakeClock(NOW)
    metrics = SelfMetrics()
    archive = build_archive(settings, locator, clock=clock, metrics=metrics)
    parts = build_esmond(settings, locator, archive=archive, clock=clock)
    assert parts.esmond is not None
    inventory = build_inventory(settings, locator, clock=clock, metrics=metrics)
    bus = LocalBus()
    services = Services(clock=clock, metrics=metrics, sink=archive)
    pipeline = build_pipeline(build_engines(settings, locator, services), bus, locator)
    collectors = build_collectors(settings, locator)
    scheduler = Scheduler(clock=clock, metrics=metrics, sink=_no_sink)
    scheduler.reconcile(plan_jobs(collectors, locator, StaticInventory(devices_from(settings))))
    async with AsyncExitStack() as stack:
        await archive.start(stack)
        await parts.start(stack)
        await inventory.start(stack)
        await bus.start(stack)
        await pipeline.start(stack)
        alarms = Alarms(pipeline.engines["alarms"], pipeline.send)
        routes = [*server_routes(settings, locator, archive=archive, publish=pipeline.publish),
                  *event_routes(pipeline.publish, now=clock.time), *alarm_routes(alarms),
                  *grafolean_routes(settings, locator, archive=archive, tokens=parts.tokens,
                                    clock=clock),
                  *job_routes(scheduler, collectors, clock=clock)]
        app = create_app(archive, metrics=metrics, max_body_bytes=max_body_bytes,
                         inventory=inventory, extra_routes=routes, esmond=parts.esmond,
                         tokens=parts.tokens, public_reads=public_reads)
        write_key = await parts.tokens.create("admin", write=True, now=NOW)
        read_key = await parts.tokens.create("reader", write=False, now=NOW)
        yield FullApp(app, archive, parts.esmond, parts.tokens, pipeline, bus, alarms, clock,
                      write_key, read_key, data_dir)
