"""One contract for every bus: the local one always, RabbitMQ against the real server.

Each AMQP test uses its own queue prefix and deletes its queues afterwards.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from typing import Any

import pytest

from watchkeeper.clock import FakeClock
from watchkeeper.errors import PipelineError
from watchkeeper.model import Event
from watchkeeper.pipeline import Bus, DeadLetter, Engine, Pipeline, Services
from watchkeeper.pipeline.bus.local import LocalBus
from watchkeeper.telemetry import SelfMetrics

AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/"

BusFactory = Callable[..., Awaitable[Bus]]


def _event(n: int, component: str = "dev", resource: str = "") -> Event:
    return Event(event_type="check", component=component, resource=resource,
                 timestamp=float(n), state=n % 4)


@pytest.fixture(params=["local", pytest.param("amqp", marks=pytest.mark.external_service)])
async def make_bus(request: pytest.FixtureRequest) -> AsyncIterator[BusFactory]:
    """Builds started buses of one kind; AMQP ones share a fresh prefix, deleted at the end."""
    kind: str = request.param
    prefix = f"wktest.{uuid.uuid4().hex[:8]}"
    buses: list[Bus] = []
    async with AsyncExitStack() as stack:

        async def make(**options: Any) -> Bus:
            bus: Bus
            if kind == "local":
                local = {k: v for k, v in options.items()
                         if k in ("max_batches", "retry_delay", "attempts")}
                if "max_length" in options:
                    local["max_batches"] = options["max_length"]
                bus = LocalBus(**local)
            else:
                from watchkeeper.pipeline.bus.amqp import AmqpBus

                options.pop("max_batches", None)
                bus = AmqpBus(url=AMQP_URL, prefix=prefix, standby_delay=0.2, **options)
            await bus.start(stack)
            buses.append(bus)
            return bus

        yield make
        for bus in buses:  # every consumer stops before the queues go
            for queue in list(getattr(bus, "_consumers", getattr(bus, "_workers", {}))):
                await bus.stop_consuming(queue)
        if kind == "amqp" and buses:
            await buses[0].delete_queues()  # type: ignore[attr-defined]


async def _dead_letters(bus: Bus, queue: str) -> list[DeadLetter]:
    if isinstance(bus, LocalBus):
        return list(bus.dead_letters)
    letters: list[DeadLetter] = await bus.read_dead_letters(queue)  # type: ignore[attr-defined]
    return letters


async def _eventually(check: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)


async def test_publish_consume_drain(make_bus: BusFactory) -> None:
    """Everything published is handled, in order for one consumer; drain waits for it."""
    bus = await make_bus()
    await bus.declare("q")
    seen: list[float] = []

    async def handler(batch: list[Event]) -> None:
        await asyncio.sleep(0.001)
        seen.extend(e.timestamp for e in batch)

    for start in range(0, 300, 30):
        await bus.publish("q", [_event(n) for n in range(start, start + 30)])
    await bus.publish("q", [])  # nothing to send, nothing sent
    await bus.consume("q", handler)
    await bus.drain("q")
    assert seen == [float(n) for n in range(300)]


async def test_events_survive_the_hop_unchanged(make_bus: BusFactory) -> None:
    """Every field comes out as it went in (the AMQP bus encodes once per hop)."""
    from watchkeeper.model import Measurement, SeriesKey

    bus = await make_bus()
    await bus.declare("a")
    await bus.declare("b")
    m = Measurement(key=SeriesKey.make("d", "p", "m", {"if": "eth0"}), ts=1.0, value=2.5,
                    unit="ms")
    sent = Event(event_type="check", component="web 1", resource="disk/var", timestamp=1.5,
                 state=2, output="out", tags=("x",), attrs={"k": "v"}, measurements=(m,),
                 ttl=60.0)
    got: dict[str, list[Event]] = defaultdict(list)
    for queue in ("a", "b"):
        async def handler(batch: list[Event], queue: str = queue) -> None:
            got[queue].extend(batch)

        await bus.consume(queue, handler)
    await bus.fan_out(("a", "b"), [sent])
    await bus.drain("a")
    await bus.drain("b")
    assert got["a"] == [sent]
    assert got["b"] == [sent]


async def test_back_pressure_when_the_queue_is_full(make_bus: BusFactory) -> None:
    """A full queue makes publish wait until a consumer makes room; nothing is dropped."""
    bus = await make_bus(max_length=2, prefetch=1)
    await bus.declare("q")
    sent = 0
    blocked = None
    while blocked is None:  # quorum queues enforce their limit a little late
        sent += 1
        assert sent <= 5, "publish never waited"
        publishing = asyncio.create_task(bus.publish("q", [_event(sent)]))
        await asyncio.sleep(0.3)
        if not publishing.done():
            blocked = publishing
    seen: list[float] = []

    async def handler(batch: list[Event]) -> None:
        seen.extend(e.timestamp for e in batch)

    await bus.consume("q", handler)
    await asyncio.wait_for(blocked, 10)
    await bus.drain("q")
    assert sorted(seen) == [float(n) for n in range(1, sent + 1)]


@pytest.mark.external_service
async def test_amqp_prefetch_bounds_what_a_worker_holds() -> None:
    """A consumer holds at most ``prefetch`` unacknowledged batches; the rest stay queued."""
    from watchkeeper.pipeline.bus.amqp import AmqpBus

    async with AsyncExitStack() as stack:
        bus = AmqpBus(url=AMQP_URL, prefix=f"wktest.{uuid.uuid4().hex[:8]}", prefetch=2)
        await bus.start(stack)
        await bus.declare("q")
        release = asyncio.Event()
        try:
            for n in range(6):
                await bus.publish("q", [_event(n)])

            async def handler(batch: list[Event]) -> None:
                await release.wait()

            await bus.consume("q", handler)
            await _eventually(lambda: sum(c.held for c in bus._consumers["q"]) == 2)
            await asyncio.sleep(0.2)
            assert await bus.depth("q") == 4
            release.set()
            await bus.drain("q")
            assert await bus.depth("q") == 0
        finally:
            release.set()
            await bus.stop_consuming("q")
            await bus.delete_queues()


async def test_a_batch_whose_handler_raised_comes_again(make_bus: BusFactory) -> None:
    """At least once: the same events are handled again after a failure."""
    bus = await make_bus(retry_delay=0.01)
    await bus.declare("q")
    calls: list[list[float]] = []

    async def handler(batch: list[Event]) -> None:
        calls.append([e.timestamp for e in batch])
        if len(calls) == 1:
            raise RuntimeError("first try fails")

    await bus.publish("q", [_event(1), _event(2)])
    await bus.consume("q", handler)
    await bus.drain("q")
    assert calls == [[1.0, 2.0], [1.0, 2.0]]


async def test_a_batch_that_keeps_failing_is_dead_lettered(make_bus: BusFactory) -> None:
    """After ``attempts`` tries the events go to the dead letters with the traceback."""
    bus = await make_bus(retry_delay=0.01, attempts=3)
    await bus.declare("q")
    calls = 0

    async def handler(batch: list[Event]) -> None:
        nonlocal calls
        calls += 1
        if any(e.timestamp == 1 for e in batch):
            raise ValueError("poison")

    await bus.publish("q", [_event(1)])
    await bus.consume("q", handler)
    await bus.drain("q")
    await bus.publish("q", [_event(2)])  # the queue keeps going
    await bus.drain("q")
    assert calls == 4
    [letter] = await _dead_letters(bus, "q")
    assert letter.event.timestamp == 1.0
    assert letter.attempts == 3
    assert "ValueError: poison" in letter.error
    assert "Traceback" in letter.error


async def test_stop_finishes_the_batch_in_hand_and_loses_nothing(make_bus: BusFactory) -> None:
    """Stopping waits for the running handler; what is left is there for the next consumer."""
    bus = await make_bus(prefetch=1)
    await bus.declare("q")
    entered = asyncio.Event()
    release = asyncio.Event()
    seen: list[float] = []

    async def slow(batch: list[Event]) -> None:
        entered.set()
        await release.wait()
        seen.extend(e.timestamp for e in batch)

    for n in range(5):
        await bus.publish("q", [_event(n)])
    await bus.consume("q", slow)
    await asyncio.wait_for(entered.wait(), 10)
    stopping = asyncio.create_task(bus.stop_consuming("q"))
    await asyncio.sleep(0.05)
    assert not stopping.done()  # the batch in hand is finished first
    release.set()
    await asyncio.wait_for(stopping, 10)
    assert seen == [0.0]

    async def fast(batch: list[Event]) -> None:
        seen.extend(e.timestamp for e in batch)

    await bus.consume("q", fast)
    await bus.drain("q")
    assert seen == [0.0, 1.0, 2.0, 3.0, 4.0]


async def test_partitions_keep_each_entity_in_order(make_bus: BusFactory) -> None:
    """Many entities, several partitions (and two consumers on AMQP): per-entity order holds,
    nothing is lost, and one entity is never handled by two workers at once."""
    first = await make_bus(prefetch=4)
    second = first if isinstance(first, LocalBus) else await make_bus(prefetch=4)
    if second is not first:  # (ignored now: the two share the partitions by themselves)
        first.prefer_partitions(0, 2)  # type: ignore[attr-defined]
        second.prefer_partitions(1, 2)  # type: ignore[attr-defined]
    for bus in {id(first): first, id(second): second}.values():
        await bus.declare("q", partitions=4)
    rng = random.Random(7)
    entities = [f"host{n}" for n in range(20)]
    counters: dict[str, int] = defaultdict(int)
    sent: list[Event] = []
    for _ in range(60):
        batch = []
        for _ in range(25):
            component = rng.choice(entities)
            counters[component] += 1
            batch.append(_event(counters[component], component=component))
        sent.extend(batch)
    got: dict[str, list[float]] = defaultdict(list)
    busy: set[str] = set()
    clashes: list[str] = []

    async def handler(batch: list[Event]) -> None:
        mine = {e.component for e in batch}
        clashes.extend(sorted(mine & busy))
        busy.update(mine)
        await asyncio.sleep(rng.random() * 0.003)
        for event in batch:
            got[event.component].append(event.timestamp)
        busy.difference_update(mine)

    await first.consume("q", handler)
    if second is not first:
        await second.consume("q", handler)
    for start in range(0, len(sent), 25):
        await first.publish("q", sent[start:start + 25])
    await _eventually(lambda: sum(map(len, got.values())) >= len(sent), timeout=30)
    await first.drain("q")
    assert clashes == []
    for component, stamps in got.items():
        assert stamps == [float(n) for n in range(1, counters[component] + 1)], component


async def test_pipeline_runs_on_the_bus(make_bus: BusFactory) -> None:
    """A two-engine chain: results flow on, failing events are dead-lettered, the rest go on."""
    bus = await make_bus(retry_delay=0.01)
    services = Services(clock=FakeClock(), metrics=SelfMetrics())
    out: list[Event] = []
    commits: list[int] = []

    def double(engine: Engine, event: Event) -> Event:
        if event.timestamp == 13:
            raise ZeroDivisionError("unlucky")
        return Event(event_type="check", component=event.component,
                     timestamp=event.timestamp * 2, id=event.id)

    async def collect(engine: Engine, batch: list[Event]) -> list[Event]:
        out.extend(batch)
        return []

    async def commit(engine: Engine) -> None:
        commits.append(len(out))

    engines = [
        Engine(name="double", services=services, event_task=double, next_engines=("sink",),
               max_attempts=2),
        Engine(name="sink", services=services, event_task=None, batch_task=collect,
               commit_task=commit),
    ]
    pipeline = Pipeline(engines, bus)
    async with AsyncExitStack() as stack:
        await pipeline.start(stack)
        await pipeline.publish([_event(n) for n in range(20)])
        await pipeline.send("sink", [_event(100)])
        with pytest.raises(PipelineError, match="no engine named 'nope'"):
            await pipeline.send("nope", [_event(1)])
        await pipeline.stop()
    assert sorted(e.timestamp for e in out) == sorted(
        [n * 2.0 for n in range(20) if n != 13] + [100.0])
    [letter] = await _dead_letters(bus, "double")
    assert letter.event.timestamp == 13.0
    assert "ZeroDivisionError: unlucky" in letter.error
    assert (commits != []) == bus.durable  # committed before acknowledging, when that means


@pytest.mark.external_service
async def test_amqp_takes_canopsis_events_from_their_exchange() -> None:
    """Canopsis connectors publish JSON to a topic exchange; the roots get Events, and a
    body that is not a Canopsis event is dead-lettered with the reason."""
    import json

    import aio_pika

    from watchkeeper.pipeline.bus.amqp import AmqpBus

    prefix = f"wktest.{uuid.uuid4().hex[:8]}"
    exchange_name = f"{prefix}.canopsis.events"
    got: list[Event] = []

    async def collect(engine: Engine, batch: list[Event]) -> list[Event]:
        got.extend(batch)
        return []

    services = Services(clock=FakeClock(), metrics=SelfMetrics())
    async with AsyncExitStack() as stack:
        bus = AmqpBus(url=AMQP_URL, prefix=prefix, canopsis_exchange=exchange_name)
        await bus.start(stack)
        pipeline = Pipeline([Engine(name="root", services=services, event_task=None,
                                    batch_task=collect)], bus)
        await pipeline.start(stack)
        connection = await aio_pika.connect(AMQP_URL)
        try:
            channel = await connection.channel()
            exchange = await channel.get_exchange(exchange_name)
            good = [{"connector": "nagios", "connector_name": "n1", "component": "web1",
                     "resource": "HTTP", "state": 2, "perf_data": "time=0.5s;1;2"},
                    {"connector": "nagios", "connector_name": "n1", "component": "web2"}]
            await exchange.publish(aio_pika.Message(json.dumps(good).encode()),
                                   routing_key="nagios.n1.check.resource.web1.HTTP")
            await exchange.publish(aio_pika.Message(b'{"connector": "x", "state": 9}'),
                                   routing_key="x")
            await _eventually(lambda: len(got) == 2)
            assert [(e.entity_id, e.state, len(e.measurements)) for e in got] == [
                ("resource/web1/HTTP", 2, 1), ("component/web2", 0, 0)]
            assert got[0].timestamp == services.clock.time()  # `now` for a missing timestamp
            dead = await channel.get_queue(f"{prefix}.dead.ingress")
            message = None
            for _ in range(100):
                message = await dead.get(fail=False, no_ack=True)
                if message is not None:
                    break
                await asyncio.sleep(0.05)
            assert message is not None
            assert message.headers["x-error"].startswith("component: is required")
        finally:
            await pipeline.stop()
            await bus.delete_queues()
            channel = await connection.channel()
            await channel.exchange_delete(exchange_name)
            await connection.close()
