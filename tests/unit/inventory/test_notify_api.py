"""Raw notifications over HTTP, and each model's stats over REST and on /metrics."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.support.server import serve_in_thread
from tests.unit.inventory.fakes import FakeSource, created, until
from watchkeeper.api import create_app
from watchkeeper.archive.backends.memory import MemoryArchive
from watchkeeper.archive.tokens import SqliteTokenStore
from watchkeeper.client import InventoryClient
from watchkeeper.clock import FakeClock
from watchkeeper.errors import HTTPStatusError
from watchkeeper.inventory import InventoryManager
from watchkeeper.runtime.inventory import ModelMetrics
from watchkeeper.telemetry import SelfMetrics

ROUTE = "/api/v1/inventory/notifications"


@dataclass
class Served:
    url: str
    writer: str
    reader: str
    manager: InventoryManager
    source: FakeSource


@pytest.fixture
async def served(clock: FakeClock, tmp_path: Path) -> AsyncIterator[Served]:
    source = FakeSource("cmdb", source=["a"])
    manager = InventoryManager([source], clock=clock)
    assert await manager.get("cmdb").rebuild()
    metrics = SelfMetrics()
    metrics.add_source(ModelMetrics(manager))
    async with AsyncExitStack() as stack:
        archive = MemoryArchive(data_dir=tmp_path, options=MemoryArchive.Options(),
                                clock=FakeClock(), metrics=metrics)
        await archive.start(stack)
        tokens = SqliteTokenStore(tmp_path)
        await tokens.start(stack)
        writer = await tokens.create("cmdb", write=True, now=0)
        reader = await tokens.create("viewer", write=False, now=0)
        app = create_app(archive, metrics=metrics, inventory=manager, tokens=tokens)
        with serve_in_thread(app) as url:
            yield Served(url, writer, reader, manager, source)


def test_notifications_are_applied_and_counted(served: Served) -> None:
    """A list goes in as one batch; the answer counts the received, matched and applied
    ones (a handler that raises applies nothing; a notification no endpoint wants
    matches nothing)."""
    with InventoryClient(served.url, token=served.writer) as client:
        done = client.notify([
            {"publisher_id": "cmdb.paris", "event_type": "device.created",
             "payload": {"name": "b"}},
            {"publisher_id": "cmdb.paris", "event_type": "device.created",
             "payload": {"name": "poison"}},
            {"publisher_id": "someone", "event_type": "weather.changed"},
        ])
    assert (done.notifications, done.matched, done.applied) == (3, 2, 1)
    model = served.manager.get("cmdb").latest()
    assert {n.name for n in model.graph.nodes("device")} == {"a", "b"}
    assert model.version == 2  # one batch, one version


def test_one_notification_object_is_a_batch_of_one(served: Served) -> None:
    answer = httpx.post(served.url + ROUTE, headers={"Authorization": f"Token {served.writer}"},
                        json={"publisher_id": "cmdb.lyon", "event_type": "device.created",
                              "payload": {"name": "c"}})
    assert answer.status_code == 200
    assert answer.json() == {"notifications": 1, "matched": 1, "applied": 1}


@pytest.mark.parametrize(("body", "named"), [
    ({"publisher_id": "cmdb.paris"}, "event_type"),
    ([{"publisher_id": "cmdb.paris", "event_type": 5}], "event_type"),
    ({"publisher_id": "cmdb.paris", "event_type": "x", "payload": [1]}, "payload"),
])
def test_a_malformed_notification_is_400_naming_the_field(served: Served, body: object,
                                                           named: str) -> None:
    answer = httpx.post(served.url + ROUTE, json=body,
                        headers={"Authorization": f"Token {served.writer}"})
    assert answer.status_code == 400
    assert named in answer.json()["detail"]
    assert served.manager.get("cmdb").stats().notifications == 0  # nothing half-applied


def test_notifications_need_a_write_token(served: Served) -> None:
    """Reads of the inventory stay public; sending notifications changes it."""
    with InventoryClient(served.url) as anonymous, pytest.raises(HTTPStatusError) as no:
        anonymous.notify([{"publisher_id": "cmdb.paris", "event_type": "device.created",
                           "payload": {"name": "x"}}])
    assert no.value.status == 401
    with InventoryClient(served.url, token=served.reader) as reader:
        with pytest.raises(HTTPStatusError) as refused:
            reader.notify([])
        assert refused.value.status == 403
        assert [c.name for c in reader.collectors().collectors] == ["cmdb"]


async def test_stats_over_rest_and_metrics(served: Served) -> None:
    """Handler errors, failed and discarded builds, a build in progress, the version and
    why the model is stale: in the collector listing and on /metrics."""
    served.manager.deliver(created("poison"))
    served.source.fail = RuntimeError("cmdb unreachable")
    assert not await served.manager.get("cmdb").rebuild()
    served.source.fail = None
    served.source.gate = asyncio.Event()
    building = asyncio.ensure_future(served.manager.get("cmdb").rebuild())
    await until(served.source.building.is_set)
    async with httpx.AsyncClient(base_url=served.url) as http:
        [listed] = (await http.get("/api/v1/inventory")).json()["collectors"]
        metrics = (await http.get("/metrics")).text
    served.source.gate.set()
    assert await building
    assert listed["stale_reason"] == "RuntimeError: cmdb unreachable"
    assert listed["stats"] == {
        "builds": 3, "build_failures": 1, "discarded_builds": 0, "notifications": 1,
        "handler_errors": 1, "building": True,
        "last_build_seconds": listed["stats"]["last_build_seconds"]}
    for line in ('watchkeeper_inventory_handler_errors_total{collector="cmdb"} 1.0',
                 'watchkeeper_inventory_build_failures_total{collector="cmdb"} 1.0',
                 'watchkeeper_inventory_builds_discarded_total{collector="cmdb"} 0.0',
                 'watchkeeper_inventory_builds_total{collector="cmdb"} 3.0',
                 'watchkeeper_inventory_notifications_total{collector="cmdb"} 1.0',
                 'watchkeeper_inventory_building{collector="cmdb"} 1.0',
                 'watchkeeper_inventory_version{collector="cmdb"} 1.0',
                 ('watchkeeper_inventory_stale{collector="cmdb",'
                 'reason="RuntimeError: cmdb unreachable"} 1.0')):
        assert line in metrics.splitlines()
    with InventoryClient(served.url) as client:
        [fresh] = client.collectors().collectors
    assert fresh.stale_reason is None
    assert fresh.stats is not None
    assert (fresh.stats.building, fresh.stats.builds) == (False, 3)
