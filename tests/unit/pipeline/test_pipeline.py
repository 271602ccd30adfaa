"""The engine chain on the local bus: validation, processing, retries, drain and flush."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack
from dataclasses import replace
from pathlib import Path

import pytest

from watchkeeper.api.ingest import METADATA_FILE, MetadataStore
from watchkeeper.clock import FakeClock
from watchkeeper.errors import PipelineError, PluginError
from watchkeeper.model import Event, Measurement, MetricMetadata, SeriesKey
from watchkeeper.pipeline import Engine, Pipeline, Services, TaskRegistry, check_chain
from watchkeeper.pipeline.bus.local import LocalBus
from watchkeeper.pipeline.engines.archive_writer import ENGINE as ARCHIVE_WRITER
from watchkeeper.pipeline.engines.archive_writer import ArchiveWriterOptions
from watchkeeper.telemetry import SelfMetrics


class ListSink:
    """Collects what the archive writer writes; can be told to fail."""

    def __init__(self) -> None:
        self.written: list[Measurement] = []
        self.writes = 0
        self.fail = False

    async def write(self, measurements: Sequence[Measurement]) -> int:
        if self.fail:
            raise OSError("disk full")
        self.writes += 1
        self.written.extend(measurements)
        return len(measurements)


def _event(n: int, **kw: object) -> Event:
    m = Measurement(key=SeriesKey.make("dev", "p", "m"), ts=float(n), value=float(n))
    return Event(event_type="check", component="dev", timestamp=float(n), measurements=(m,),
                 **kw)  # type: ignore[arg-type]


def _engine(name: str, services: Services, task: object = None, *, nxt: tuple[str, ...] = (),
            **kw: object) -> Engine:
    return Engine(name=name, services=services, event_task=task, next_engines=nxt,
                  **kw)  # type: ignore[arg-type]


@pytest.fixture
def services() -> Services:
    return Services(clock=FakeClock(), metrics=SelfMetrics(), sink=ListSink())


@pytest.fixture
async def stack() -> AsyncIterator[AsyncExitStack]:
    async with AsyncExitStack() as s:
        yield s


def test_chain_order_and_roots(services: Services) -> None:
    engines = [_engine("c", services), _engine("a", services, nxt=("b", "c")),
               _engine("b", services, nxt=("c",))]
    assert check_chain(engines) == ["a", "b", "c"]
    assert Pipeline(engines, LocalBus()).roots == ("a",)


@pytest.mark.parametrize(
    ("links", "fragment"),
    [
        ({"a": ("b",), "b": ("a",)}, "cycle: a -> b -> a"),
        ({"a": ("zzz",)}, "next engine 'zzz' is not defined"),
        ({"a": ("a",)}, "cycle: a -> a"),
    ],
)
def test_chain_errors(services: Services, links: dict[str, tuple[str, ...]],
                      fragment: str) -> None:
    engines = [_engine(n, services, nxt=t) for n, t in links.items()]
    with pytest.raises(PipelineError, match=fragment.replace("(", r"\(")):
        check_chain(engines)


def test_duplicate_engine_names(services: Services) -> None:
    with pytest.raises(PipelineError, match="unique: a"):
        check_chain([_engine("a", services), _engine("a", services)])


async def test_events_flow_through_sync_and_async_tasks(services: Services,
                                                        stack: AsyncExitStack) -> None:
    seen: list[str] = []

    def tag(engine: Engine, event: Event, suffix: str = "") -> Event | None:
        if event.timestamp == 2:
            return None  # dropped
        return Event(event_type=event.event_type, component=event.component + suffix,
                     timestamp=event.timestamp)

    async def record(engine: Engine, event: Event) -> Event:
        seen.append(event.component)
        return event

    bus = LocalBus()
    await bus.start(stack)
    pipeline = Pipeline([_engine("tag", services, tag, nxt=("rec",), ctx={"suffix": "!"}),
                         _engine("rec", services, record)], bus)
    await pipeline.start(stack)
    await pipeline.publish([_event(1), _event(2), _event(3)])
    await pipeline.stop()
    assert seen == ["dev!", "dev!"]


async def test_failing_task_is_retried_then_dead_lettered(services: Services,
                                                          stack: AsyncExitStack) -> None:
    attempts: list[float] = []

    def flaky(engine: Engine, event: Event) -> Event:
        attempts.append(event.timestamp)
        if event.timestamp == 1 or len(attempts) == 2:
            raise ValueError("boom")
        return event

    engine = _engine("flaky", services, flaky, max_attempts=3)
    out = await engine.process([_event(1), _event(2)])
    assert [e.timestamp for e in out] == [2.0]
    assert attempts == [1.0, 1.0, 1.0, 2.0]
    [dead] = engine.dead_letters
    assert dead.engine == "flaky"
    assert dead.attempts == 3
    assert "ValueError: boom" in dead.error


async def test_garbage_return_is_dead_lettered(services: Services) -> None:
    engine = _engine("bad", services, lambda engine, event: 42)
    assert await engine.process([_event(1)]) == []
    assert "returned int" in engine.dead_letters[0].error


async def test_archive_writer_group_commits_and_flushes_on_stop(services: Services,
                                                                stack: AsyncExitStack) -> None:
    sink = services.sink
    assert isinstance(sink, ListSink)
    writer = Engine(name="archive", services=services, event_task=None,
                    batch_task=ARCHIVE_WRITER.batch_task, beat_task=ARCHIVE_WRITER.beat_task,
                    options=ArchiveWriterOptions(batch_size=3))
    bus = LocalBus()
    await bus.start(stack)
    pipeline = Pipeline([writer], bus)
    await pipeline.start(stack)
    await pipeline.publish([_event(n) for n in range(4)])
    await bus.drain("archive")
    assert sink.writes == 1
    assert len(sink.written) == 4
    await pipeline.publish([_event(9)])
    await pipeline.stop()
    assert [m.ts for m in sink.written] == [0.0, 1.0, 2.0, 3.0, 9.0]


async def test_archive_writer_keeps_points_when_the_archive_fails(services: Services) -> None:
    sink = services.sink
    assert isinstance(sink, ListSink)
    writer = Engine(name="archive", services=services, event_task=None,
                    batch_task=ARCHIVE_WRITER.batch_task, beat_task=ARCHIVE_WRITER.beat_task,
                    options=ArchiveWriterOptions(batch_size=100))
    await writer.process([_event(1), _event(2)])
    sink.fail = True
    await writer.beat()  # logged and counted, points kept
    sink.fail = False
    await writer.beat()
    assert [m.ts for m in sink.written] == [1.0, 2.0]


async def test_archive_writer_keeps_the_families_events_carry(tmp_path: Path) -> None:
    """Families' metadata on events reaches the metadata store at the flush, after the
    points (the latest per family); a store that fails keeps them for the next beat."""
    store = MetadataStore(tmp_path / METADATA_FILE)
    sink = ListSink()
    services = Services(clock=FakeClock(), metrics=SelfMetrics(), sink=sink, metadata=store)
    writer = Engine(name="archive", services=services, event_task=None,
                    batch_task=ARCHIVE_WRITER.batch_task, beat_task=ARCHIVE_WRITER.beat_task,
                    options=ArchiveWriterOptions(batch_size=100))
    old = MetricMetadata("gauge", "old", "")
    load = MetricMetadata("gauge", "1m load average.", "")
    cpu = MetricMetadata("counter", "Seconds the CPUs spent in each mode.", "")
    await writer.process([_event(1, families=(("node_load1", old),)),
                          _event(2, families=(("node_cpu_seconds_total", cpu),
                                              ("node_load1", load)))])
    assert store.families() == {}
    await writer.beat()
    assert len(sink.written) == 2
    assert MetadataStore(tmp_path / METADATA_FILE).families() == {
        "node_cpu_seconds_total": cpu, "node_load1": load}
    (tmp_path / (METADATA_FILE + ".tmp")).mkdir()  # the next write cannot happen
    await writer.process([_event(3, families=(("node_load1", old),))])
    await writer.beat()  # logged and counted, the family kept
    (tmp_path / (METADATA_FILE + ".tmp")).rmdir()
    await writer.beat()
    assert MetadataStore(tmp_path / METADATA_FILE).families()["node_load1"] == old


async def test_archive_writer_without_archive(stack: AsyncExitStack) -> None:
    services = Services(clock=FakeClock(), metrics=SelfMetrics())
    writer = Engine(name="archive", services=services, event_task=None,
                    batch_task=ARCHIVE_WRITER.batch_task, beat_task=ARCHIVE_WRITER.beat_task,
                    options=ArchiveWriterOptions(batch_size=1))
    with pytest.raises(PipelineError, match="needs an archive"):
        await writer.process([_event(1)])


async def test_beats_run_on_the_clock(stack: AsyncExitStack) -> None:
    clock = FakeClock()
    services = Services(clock=clock, metrics=SelfMetrics())
    beats: list[float] = []

    async def beat(engine: Engine) -> None:
        beats.append(clock.time())

    def failing_beat(engine: Engine) -> None:
        raise RuntimeError("beat broke")

    bus = LocalBus()
    await bus.start(stack)
    engines = [Engine(name="b", services=services, event_task=None, beat_task=beat,
                      beat_interval=10),
               Engine(name="f", services=services, event_task=None, beat_task=failing_beat,
                      beat_interval=10)]
    pipeline = Pipeline(engines, bus)
    await pipeline.start(stack)
    start = clock.time()
    await clock.advance(25)
    assert beats == [start + 10, start + 20]
    await pipeline.stop()
    assert len(beats) == 3  # the last beat at shutdown
    assert services.metrics.engine_errors.labels("f")._value.get() >= 2


async def test_publish_after_stop_is_refused(services: Services, stack: AsyncExitStack) -> None:
    bus = LocalBus()
    await bus.start(stack)
    pipeline = Pipeline([_engine("a", services)], bus)
    with pytest.raises(PipelineError, match="not running"):
        await pipeline.publish([_event(1)])


async def test_local_bus_back_pressure_and_retry(stack: AsyncExitStack) -> None:
    bus = LocalBus(max_batches=1, retry_delay=0)
    await bus.start(stack)
    await bus.publish("q", [_event(1)])
    blocked = asyncio.create_task(bus.publish("q", [_event(2)]))
    await asyncio.sleep(0)
    assert not blocked.done()
    assert bus.depth("q") == 1
    calls: list[int] = []

    async def handler(batch: list[Event]) -> None:
        calls.append(int(batch[0].timestamp))
        if len(calls) == 1:
            raise RuntimeError("first try fails")

    await bus.consume("q", handler)
    await blocked
    await bus.drain("q")
    assert calls == [1, 1, 2]
    await bus.publish("q", [])
    assert bus.depth("q") == 0


def test_task_registry() -> None:
    registry = TaskRegistry()

    @registry.register()
    def mytask(engine: Engine, event: Event) -> Event:
        return event

    registry.register("alias")(mytask)
    assert registry.resolve("mytask") is mytask
    assert registry.resolve("alias") is mytask
    assert registry.resolve("tests.unit.pipeline.test_pipeline:_event") is _event
    with pytest.raises(PluginError, match="already registered"):
        registry.register("mytask")(lambda engine, event: event)
    with pytest.raises(PluginError, match="known: alias, mytask"):
        registry.resolve("nope")
    with pytest.raises(PluginError, match="not callable"):
        registry.resolve("tests.unit.pipeline.test_pipeline:pytest.__name__")


async def test_engines_close_what_they_opened_when_the_pipeline_stops(
        services: Services, caplog: pytest.LogCaptureFixture) -> None:
    """Closers registered by tasks run once, last first, after the last beat; one that
    fails is logged and the others still run."""
    closed: list[str] = []

    def broken() -> None:
        closed.append("broken")
        raise OSError("disk gone")

    engine = _engine("solo", services)
    engine.on_close(lambda: closed.append("first"))
    engine.on_close(broken)
    engine.on_close(lambda: closed.append("last"))
    async with AsyncExitStack() as stack:
        bus = LocalBus()
        await bus.start(stack)
        pipeline = Pipeline([engine], bus)
        await pipeline.start(stack)
        await pipeline.stop()
    assert closed == ["last", "broken", "first"]
    assert "engine solo: closing its state failed" in caplog.text
    engine.close()  # nothing left to close
    assert len(closed) == 3


class _FlakyDurableBus(LocalBus):
    """A local bus that acts as a durable one (commit before the ack) and fails the first
    hand-off of results, as a broker refusing a publish would."""

    durable = True

    def __init__(self) -> None:
        super().__init__(retry_delay=0.01)
        self.failures = 1

    async def fan_out(self, queues: Sequence[str], events: Sequence[Event]) -> None:
        if self.failures:
            self.failures -= 1
            raise PipelineError("the broker refused the publish")
        await super().fan_out(queues, events)


async def test_a_batch_whose_results_were_not_published_is_redone_not_skipped(
        services: Services, tmp_path: Path) -> None:
    """dedup (ids stored in SQLite) takes a batch, its results fail to go out, the batch
    comes again: the uncommitted ids are forgotten, so the retry passes the events on
    instead of dropping them as duplicates; only then are the ids committed."""
    from watchkeeper.pipeline.engines import dedup

    got: list[Event] = []

    def sink(engine: Engine, event: Event) -> None:
        got.append(event)

    filtering = Engine(name="dedup", services=replace(services, data_dir=tmp_path),
                       event_task=dedup.filter_event, batch_task=dedup.filter_batch,
                       commit_task=dedup.commit, next_engines=("sink",),
                       options=dedup.DedupOptions(state="sqlite"))
    events = [_event(n) for n in range(5)]
    async with AsyncExitStack() as stack:
        bus = _FlakyDurableBus()
        await bus.start(stack)
        pipeline = Pipeline([filtering, _engine("sink", services, sink)], bus)
        await pipeline.start(stack)
        await pipeline.publish(events)
        await pipeline.publish(events[:2])  # a redelivery after the commit: dropped
        await pipeline.stop()
    assert bus.failures == 0
    assert [e.id for e in got] == [e.id for e in events]


async def test_a_stop_that_cannot_drain_keeps_the_queue_for_the_next_start(
        services: Services, tmp_path: Path) -> None:
    """Issue 17 §4: ``up`` ends within 15 s whatever the load. The drain stops after
    ``drain_seconds``; what is still queued is written down and put back by the next start,
    in the queue it was in (not at the roots, which would see it twice)."""
    leftovers = tmp_path / "leftovers.msgpack"
    stuck = asyncio.Event()

    async def wedged(engine: Engine, event: Event) -> Event:
        await stuck.wait()  # a sink that never answers in time
        return event

    seen: list[float] = []

    def record(engine: Engine, event: Event) -> Event:
        seen.append(event.timestamp)
        return event

    async with AsyncExitStack() as first:
        bus = LocalBus()
        await bus.start(first)
        pipeline = Pipeline([_engine("front", services, record, nxt=("slow",)),
                             _engine("slow", services, wedged)], bus,
                            drain_seconds=0.2, leftovers=leftovers)
        await pipeline.start(first)
        for n in range(1, 6):
            await pipeline.publish([_event(n)])
        while len(seen) < 5:
            await asyncio.sleep(0.01)
        stopping = asyncio.create_task(pipeline.stop())
        await asyncio.sleep(0.5)
        assert not stopping.done()  # the busy batch is allowed to finish, no more
        stuck.set()
        await stopping
    assert leftovers.exists()
    assert seen == [1.0, 2.0, 3.0, 4.0, 5.0]

    done: list[float] = []

    def finish(engine: Engine, event: Event) -> Event:
        done.append(event.timestamp)
        return event

    async with AsyncExitStack() as second:
        bus = LocalBus()
        await bus.start(second)
        pipeline = Pipeline([_engine("front", services, record, nxt=("slow",)),
                             _engine("slow", services, finish)], bus,
                            drain_seconds=5, leftovers=leftovers)
        await pipeline.start(second)
        await pipeline.stop()
    assert sorted(done) == [2.0, 3.0, 4.0, 5.0]  # the 1st was in the busy batch
    assert seen == [1.0, 2.0, 3.0, 4.0, 5.0]  # "front" did not see them again
    assert not leftovers.exists()
