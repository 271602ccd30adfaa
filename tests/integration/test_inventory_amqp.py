"""Inventory notifications from RabbitMQ (the scaled deployment), against the real broker."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from typing import Any

import aio_pika
import msgspec
import pytest

from tests.unit.inventory.fakes import FakeSource, until
from watchkeeper.clock import FakeClock
from watchkeeper.errors import ConfigError
from watchkeeper.inventory import InventoryManager
from watchkeeper.runtime.engines import inventory_publisher
from watchkeeper.runtime.inventory import AmqpNotifications
from watchkeeper.settings import load_settings

pytestmark = pytest.mark.external_service

AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/"


@pytest.fixture
async def queue() -> AsyncIterator[tuple[str, Any]]:
    """A fresh queue name and a channel to publish on; the queue is deleted at the end."""
    name = f"wktest.inventory.{uuid.uuid4().hex[:8]}"
    connection = await aio_pika.connect_robust(AMQP_URL)
    try:
        channel = await connection.channel()
        yield name, channel
        await channel.queue_delete(name)
    finally:
        await connection.close()


def _devices(manager: InventoryManager) -> set[str]:
    return {n.name for n in manager.get("fake").latest().graph.nodes("device")}


async def test_notifications_from_the_queue_change_the_model(
        queue: tuple[str, Any]) -> None:
    name, channel = queue
    async with AsyncExitStack() as stack:
        manager = InventoryManager([FakeSource(source=["core1"])], clock=FakeClock(1000.0))
        await manager.start(stack)
        await until(lambda: manager.get("fake").latest().ready)
        before = manager.get("fake").latest().version
        consumer = AmqpNotifications(manager, url=AMQP_URL, queue=name)
        await consumer.start(stack)

        def body(doc: object) -> aio_pika.Message:
            return aio_pika.Message(body=msgspec.json.encode(doc))

        one = {"publisher_id": "cmdb.paris", "event_type": "device.created",
               "payload": {"name": "edge1"}}
        batch = [{"publisher_id": "cmdb.paris", "event_type": "device.created",
                  "payload": {"name": f"edge{i}"}} for i in (2, 3)]
        batch.append({"publisher_id": "cmdb.paris", "event_type": "device.deleted",
                      "payload": {"name": "core1"}})
        for message in (body(one), aio_pika.Message(body=b"not json"),
                        body([{"event_type": 5}, *batch])):
            await channel.default_exchange.publish(message, routing_key=name)
        await until(lambda: consumer.applied + consumer.rejected == 3, timeout=10)
        assert (consumer.applied, consumer.rejected) == (2, 1)
        assert _devices(manager) == {"edge1", "edge2", "edge3"}
        # one version for the single notification, one for the batch
        assert manager.get("fake").latest().version == before + 2
    # acknowledged: nothing is left in the queue
    declared = await channel.declare_queue(name, durable=True, passive=True)
    assert declared.declaration_result.message_count == 0


async def test_an_unreachable_broker_is_a_config_error() -> None:
    manager = InventoryManager([], clock=FakeClock(0.0))
    consumer = AmqpNotifications(manager, url="amqp://guest:guest@127.0.0.1:1/",
                                 connect_timeout=2)
    async with AsyncExitStack() as stack:
        with pytest.raises(ConfigError, match="cannot connect"):
            await asyncio.wait_for(consumer.start(stack), 10)


async def test_an_engine_process_publishes_to_the_inventory_process(
        queue: tuple[str, Any]) -> None:
    """The scaled deployment: `inventory_notify` in a `watchkeeper engine` process sends
    its batches to the queue; the process running the inventory applies them."""
    name, _ = queue
    async with AsyncExitStack() as stack:
        manager = InventoryManager([FakeSource(source=[])], clock=FakeClock(1000.0))
        await manager.start(stack)
        await until(lambda: manager.get("fake").latest().ready)
        consumer = AmqpNotifications(manager, url=AMQP_URL, queue=name)
        await consumer.start(stack)
        settings, _locator = load_settings(f"""\
inventory: {{notifications_url: "{AMQP_URL}", notifications_queue: {name}}}
engines:
  - {{name: tell, engine: inventory_notify}}
  - {{name: other, engine: enrich}}
""")
        assert inventory_publisher(settings, "other") is None
        publisher = inventory_publisher(settings, "tell")
        assert publisher is not None
        await publisher.start(stack)
        await publisher([{"publisher_id": "cmdb.pipeline.tell", "event_type": "device.created",
                          "payload": {"name": f"edge{i}"}} for i in range(3)])
        await until(lambda: consumer.applied == 1, timeout=10)
        assert _devices(manager) == {"edge0", "edge1", "edge2"}
