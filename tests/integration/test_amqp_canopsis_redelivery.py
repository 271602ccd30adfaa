"""Exactly-once for Canopsis events: a consumer killed before its ack, the message redelivered.

A separate process takes Canopsis JSON messages off the ingress queue, converts them,
publishes the events on to the alarms queue and is killed with SIGKILL before it
acknowledges. RabbitMQ redelivers the messages to a second consumer (this process),
which converts them again and publishes them again. Because the ids are derived from
the message, the alarm book recognises the copies: the entity ends with exactly the
30 events that were sent, not 31.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from contextlib import AsyncExitStack
from pathlib import Path

import pytest

from watchkeeper.model import Event
from watchkeeper.pipeline.abc import INGRESS
from watchkeeper.pipeline.bus.amqp import AmqpBus
from watchkeeper.pipeline.engines.alarms import AlarmBook, AlarmOptions
from watchkeeper.pipeline.engines.alarms.store import MemoryStore

pytestmark = [pytest.mark.external_service, pytest.mark.timeout(90)]

AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/"
T0 = 1_700_000_000.0
MESSAGES = 30

# The consumer that dies: converts, publishes on, then hangs before its ack.
VICTIM = """
import asyncio, sys, time
from contextlib import AsyncExitStack
from watchkeeper.pipeline.bus.amqp import AmqpBus

async def main(url, prefix, exchange):
    async with AsyncExitStack() as stack:
        bus = AmqpBus(url=url, prefix=prefix, canopsis_exchange=exchange, prefetch=4)
        await bus.start(stack)
        await bus.declare("alarms")

        async def handler(events):
            await bus.publish("alarms", events)
            print("published", " ".join(e.id for e in events), flush=True)
            await asyncio.Event().wait()  # killed here, before the ack

        await bus.consume_ingress(handler, now=time.time)
        print("ready", flush=True)
        await asyncio.Event().wait()

asyncio.run(main(*sys.argv[1:4]))
"""


def _message(n: int) -> bytes:
    return json.dumps({"connector": "nagios", "connector_name": "n1", "component": "web1",
                       "resource": "HTTP", "state": 2 if n % 7 == 3 else 0,
                       "timestamp": T0 + n}).encode()


async def _wait_for(check: object, what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


async def test_a_redelivered_canopsis_message_is_applied_once(tmp_path: Path) -> None:
    """Kill -9 the ingress consumer after it published the converted events but before its
    ack: the redelivered messages, converted again, carry the same ids and are applied once."""
    import aio_pika

    prefix = f"wkredeliver.{uuid.uuid4().hex[:8]}"
    exchange_name = f"{prefix}.canopsis.events"
    log = tmp_path / "victim.log"
    with log.open("wb") as out:
        victim = subprocess.Popen([sys.executable, "-c", VICTIM, AMQP_URL, prefix,
                                   exchange_name],
                                  stdout=out, stderr=subprocess.STDOUT)
    book = AlarmBook(AlarmOptions(), MemoryStore())
    again: list[str] = []
    async with AsyncExitStack() as stack:
        bus = AmqpBus(url=AMQP_URL, prefix=prefix, canopsis_exchange=exchange_name)
        await bus.start(stack)
        await bus.declare("alarms")
        connection = await aio_pika.connect(AMQP_URL)
        stack.push_async_callback(connection.close)
        try:
            await _wait_for(lambda: "ready" in log.read_text(), "the victim to start")
            channel = await connection.channel()
            exchange = await channel.get_exchange(exchange_name)
            for n in range(MESSAGES):
                await exchange.publish(aio_pika.Message(_message(n)), routing_key="nagios")
            await _wait_for(lambda: "published" in log.read_text(), "the victim's publish")
            os.kill(victim.pid, signal.SIGKILL)
            victim.wait(timeout=10)
            first = {i for line in log.read_text().splitlines()
                     if line.startswith("published") for i in line.split()[1:]}
            assert first

            async def forward(events: list[Event]) -> None:
                again.extend(e.id for e in events)
                await bus.publish("alarms", events)

            async def apply(events: list[Event]) -> None:
                book.apply_batch(events)

            await bus.consume_ingress(forward, now=time.time)
            await bus.consume("alarms", apply)
            await _wait_for(lambda: len(again) >= MESSAGES, "every message again")
            await bus.drain(INGRESS)
            await bus.drain("alarms")
            assert first <= set(again), "the redelivered messages got new ids"
            assert book.duplicates >= len(first)
            track = book.track("resource/web1/HTTP")
            assert track is not None
            assert track.events == MESSAGES
        finally:
            if victim.poll() is None:
                victim.kill()
            await bus.stop_consuming(INGRESS)
            await bus.stop_consuming("alarms")
            await bus.delete_queues()
            channel = await connection.channel()
            await channel.exchange_delete(exchange_name)
