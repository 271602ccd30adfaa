"""Notifications from the pipeline: an event through the chain changes the live model."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.unit.inventory.fakes import FakeSource, add_device, until
from watchkeeper.archive.tokens import SqliteTokenStore
from watchkeeper.clock import FakeClock
from watchkeeper.errors import ConfigError
from watchkeeper.inventory import (
    BuildContext,
    Graph,
    GraphEdit,
    InventoryManager,
    ModelCollector,
    Notification,
    NotificationEndpoint,
)
from watchkeeper.model import Event
from watchkeeper.pipeline import Engine, Pipeline, Services
from watchkeeper.pipeline.bus.local import LocalBus
from watchkeeper.runtime import service
from watchkeeper.runtime.assemble import build_engines
from watchkeeper.runtime.inventory import notifications, pipeline_notify
from watchkeeper.settings import load_settings
from watchkeeper.telemetry import SelfMetrics

CHAIN = """\
engines:
  - name: tell
    engine: inventory_notify
    options: {publisher_id: cmdb.pipeline}
    next: [out]
  - name: out
    engine: enrich
"""


@pytest.fixture
async def stack() -> AsyncIterator[AsyncExitStack]:
    async with AsyncExitStack() as exit_stack:
        yield exit_stack


async def _manager(stack: AsyncExitStack, clock: FakeClock) -> InventoryManager:
    manager = InventoryManager([FakeSource(source=["core1"])], clock=clock)
    await manager.start(stack)
    await until(lambda: manager.get("fake").latest().ready)
    return manager


def _devices(manager: InventoryManager) -> set[str]:
    return {n.name for n in manager.get("fake").latest().graph.nodes("device")}


def _event(event_type: str, name: str, component: str = "cmdb") -> Event:
    return Event(event_type=event_type, component=component, timestamp=1000.0,
                 attrs={"name": name})


async def test_an_event_through_the_chain_changes_the_model(stack: AsyncExitStack) -> None:
    clock = FakeClock(1000.0)
    manager = await _manager(stack, clock)
    before = manager.get("fake").latest().version
    settings, locator = load_settings(CHAIN, source="wk.yaml")
    services = Services(clock=clock, metrics=SelfMetrics(), notify=pipeline_notify(manager))
    engines = build_engines(settings, locator, services)
    seen: list[Event] = []

    async def collect(engine: Engine, batch: list[Event]) -> list[Event]:
        seen.extend(batch)
        return []

    engines[1].batch_task = collect
    bus = LocalBus()
    await bus.start(stack)
    pipeline = Pipeline(engines, bus)
    await pipeline.start(stack)

    await pipeline.publish([_event("inventory.device.created", "edge9"),
                            _event("check", "ignored")])
    await bus.drain("tell")
    await bus.drain("out")
    after = manager.get("fake").latest()
    assert after.version > before
    assert _devices(manager) == {"core1", "edge9"}
    assert [e.event_type for e in seen] == ["inventory.device.created", "check"]  # forwarded

    await pipeline.publish([_event("inventory.device.deleted", "core1")])
    await bus.drain("tell")
    assert _devices(manager) == {"edge9"}
    assert manager.get("fake").latest().version > after.version


async def test_filters_and_no_forward(stack: AsyncExitStack) -> None:
    clock = FakeClock(1000.0)
    manager = await _manager(stack, clock)
    text = CHAIN.replace(
        "{publisher_id: cmdb.pipeline}",
        "{publisher_id: cmdb.x, event_types: ['cmdb\\.'], components: ['^dcim$'],"
        " strip_prefix: 'cmdb.', forward: false}")
    settings, locator = load_settings(text, source="wk.yaml")
    services = Services(clock=clock, metrics=SelfMetrics(), notify=pipeline_notify(manager))
    engines = build_engines(settings, locator, services)
    tell = engines[0]
    assert tell.batch_task is not None
    passed = await tell.batch_task(tell, [
        _event("cmdb.device.created", "a", component="dcim"),
        _event("cmdb.device.created", "b", component="other"),   # component filtered out
        _event("inventory.device.created", "c", component="dcim"),  # type filtered out
    ])
    assert [e.attrs["name"] for e in passed] == ["b", "c"]  # the notified one stops here
    assert _devices(manager) == {"core1", "a"}


async def test_without_an_inventory_events_pass() -> None:
    settings, locator = load_settings(CHAIN, source="wk.yaml")
    [tell, _] = build_engines(settings, locator, Services(clock=FakeClock(0.0),
                                                          metrics=SelfMetrics()))
    assert tell.batch_task is not None
    batch = [_event("inventory.device.created", "a")]
    assert await tell.batch_task(tell, batch) == batch


def test_bad_options_and_bad_notifications() -> None:
    text = CHAIN.replace("{publisher_id: cmdb.pipeline}", "{event_types: ['(']}")
    settings, locator = load_settings(text, source="wk.yaml")
    with pytest.raises(ConfigError, match=r"engines\[0\].options"):
        build_engines(settings, locator, Services(clock=FakeClock(0.0), metrics=SelfMetrics()))
    good = {"publisher_id": "p", "event_type": "e", "payload": {"x": 1}}
    assert [n.event_type for n in notifications([good, {"event_type": 3}, good])] == ["e", "e"]


class Cmdb(ModelCollector):
    """A model collector with notification endpoints, loaded by `module:attr` in `up`."""

    async def build(self, ctx: BuildContext) -> Graph:
        edit = Graph().edit()
        add_device(edit, "core1")
        return edit.commit()

    def endpoints(self) -> list[NotificationEndpoint]:
        return [NotificationEndpoint(handler=self._created, publisher_id=r"pipeline\.",
                                     event_type=r"device\.created$")]

    def _created(self, edit: GraphEdit, notification: Notification) -> None:
        add_device(edit, notification.payload["name"])


def _port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def test_watchkeeper_up_with_the_engine_updates_the_live_model(tmp_path: Path) -> None:
    listen = f"127.0.0.1:{_port()}"
    text = f"""\
data_dir: {tmp_path}
server: {{listen: "{listen}"}}
archive: {{backend: memory}}
collectors: []
inventory:
  collectors:
    cmdb: {{plugin: "tests.unit.inventory.test_pipeline_notify:Cmdb"}}
engines:
  - name: tell
    engine: inventory_notify
"""
    settings, locator = load_settings(text, source="wk.yaml")
    async with AsyncExitStack() as tokens_stack:  # the importer, as any write, needs a token
        tokens = SqliteTokenStore(tmp_path)
        await tokens.start(tokens_stack)
        key = await tokens.create("cmdb", write=True, now=1)
    stop = asyncio.Event()
    ready = asyncio.Event()
    running = asyncio.create_task(service.run(settings, locator, role="up", stop=stop,
                                              on_ready=lambda _: ready.set()))
    try:
        async with asyncio.timeout(20):
            await ready.wait()
        base = f"http://{listen}/api/v1"
        async with httpx.AsyncClient(base_url=base, timeout=5,
                                     headers={"Authorization": f"Token {key}"}) as client:
            async def graph() -> dict[str, Any]:
                body: dict[str, Any] = (await client.get("/inventory/cmdb")).json()
                return body

            async with asyncio.timeout(10):
                while not (await graph())["collector"]["version"]:
                    await asyncio.sleep(0.02)
            before = await graph()
            event = {"connector": "cmdb", "connector_name": "paris", "component": "cmdb",
                     "event_type": "inventory.device.created", "name": "edge7"}
            posted = await client.post("/events/canopsis", json=[event])
            assert posted.status_code == 202, posted.text
            async with asyncio.timeout(10):
                while (after := await graph())["collector"]["version"] == \
                        before["collector"]["version"]:
                    await asyncio.sleep(0.02)
        names = {n["name"] for n in after["nodes"] if n["kind"] == "device"}
        assert names == {"core1", "edge7"}
    finally:
        stop.set()
        await asyncio.wait_for(running, 30)
