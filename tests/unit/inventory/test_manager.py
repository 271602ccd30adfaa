"""The manager and live models: rebuilds on the clock, notifications, staleness, snapshots."""

from __future__ import annotations

import asyncio
import random
import threading
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack

import pytest

from tests.unit.inventory.fakes import (
    FakeSource,
    add_device,
    created,
    deleted,
    until,
    whole,
)
from watchkeeper.clock import FakeClock
from watchkeeper.errors import InventoryError
from watchkeeper.inventory import (
    Graph,
    GraphEdit,
    InventoryManager,
    ModelCollector,
    Notification,
    NotificationEndpoint,
    Snapshot,
    UnknownCollector,
    VersionGone,
    node_id,
)
from watchkeeper.inventory.abc import BuildContext, CollectorOptions


def devices(snapshot: Snapshot) -> set[str]:
    return {n.name for n in snapshot.graph.nodes("device")}


@pytest.fixture
async def stack() -> AsyncIterator[AsyncExitStack]:
    async with AsyncExitStack() as exit_stack:
        yield exit_stack


async def started(stack: AsyncExitStack, clock: FakeClock, *collectors: ModelCollector,
                  **kwargs: int) -> InventoryManager:
    manager = InventoryManager(collectors, clock=clock, **kwargs)
    await manager.start(stack)
    for collector in collectors:
        await until(lambda c=collector: manager.get(c.name).latest().ready)  # type: ignore[misc]
    return manager


async def test_first_build_at_start_then_every_period(stack: AsyncExitStack,
                                                      clock: FakeClock) -> None:
    """The model is built at once, rebuilt each period, and readers see each change."""
    source = FakeSource(period=60, source=["a"])
    manager = await started(stack, clock, source)
    first = manager.get("fake").latest()
    assert devices(first) == {"a"}
    assert first.version == 1
    assert first.synced_at == clock.time()
    source.source.append("b")
    await clock.advance(59)
    assert source.builds == 1
    await clock.advance(1)
    await until(lambda: manager.get("fake").latest().version == 2)
    assert devices(manager.get("fake").latest()) == {"a", "b"}
    assert devices(first) == {"a"}  # an old snapshot never changes


async def test_a_rebuild_that_finds_nothing_new_keeps_the_version(stack: AsyncExitStack,
                                                                   clock: FakeClock) -> None:
    source = FakeSource(period=10, source=["a", "b"])
    manager = await started(stack, clock, source)
    before = manager.get("fake").latest()
    await clock.advance(10)
    await until(lambda: source.builds == 2)
    await until(lambda: manager.get("fake").latest().synced_at == clock.time())
    after = manager.get("fake").latest()
    assert after.graph is before.graph
    assert after.version == before.version


async def test_no_notification_is_lost_during_a_rebuild(stack: AsyncExitStack,
                                                        clock: FakeClock) -> None:
    """Notifications during a slow build apply at once and survive the swap."""
    source = FakeSource(period=60, source=["a", "gone"])
    manager = await started(stack, clock, source)
    live = manager.get("fake")
    source.gate = asyncio.Event()
    source.source.append("x")
    await clock.advance(60)
    assert source.building.is_set()  # the rebuild read its source: a, gone, x
    for name in ("b", "c", "d"):
        assert await manager.notify(created(name)) == 1
    assert await manager.notify(deleted("gone")) == 1
    during = live.latest()
    assert devices(during) == {"a", "b", "c", "d"}  # readers are not blocked meanwhile
    source.gate.set()
    await until(lambda: live.latest().synced_at == clock.time())
    after = live.latest()
    assert devices(after) == {"a", "x", "b", "c", "d"}  # replayed onto the new build
    assert after.version == during.version + 1
    assert not after.stale


@pytest.mark.parametrize("read_late", [False, True])
@pytest.mark.parametrize("seed", range(6))
async def test_notifications_racing_a_rebuild_all_land(stack: AsyncExitStack, clock: FakeClock,
                                                       seed: int, read_late: bool) -> None:
    """A stream of notifications races builds that start and finish at random points in it.

    The source changes when its notification is sent; a build reads it at its start (or
    end), so without replay every change during a build would be lost at the swap.
    """
    rng = random.Random(seed)
    source = FakeSource(period=5, source=["seed"])
    source.read_late = read_late
    manager = await started(stack, clock, source)
    live = manager.get("fake")
    starts = set(rng.sample(range(300), 5))
    ends = set(rng.sample(range(300), 5))
    source.gate = asyncio.Event()
    for step in range(300):
        if rng.random() < 0.2 and len(source.source) > 1:
            name = rng.choice(source.source[1:])
            source.source.remove(name)
            await manager.notify(deleted(name))
        else:
            source.source.append(f"d{step}")
            await manager.notify(created(f"d{step}"))
        if step in starts:
            source.gate.clear()
            manager.refresh("fake")
        if step in ends:
            source.gate.set()
        await asyncio.sleep(0)
        assert devices(live.latest()) == set(source.source)
    source.gate.set()
    await until(lambda: not source.building.is_set())
    await until(lambda: devices(live.latest()) == set(source.source))
    assert whole(live.latest().graph)
    assert live.stats().builds > 1


async def test_a_failed_build_keeps_the_last_model_marked_stale(stack: AsyncExitStack,
                                                                 clock: FakeClock) -> None:
    source = FakeSource(period=10, source=["a"])
    manager = await started(stack, clock, source)
    live = manager.get("fake")
    good = live.latest()
    source.fail = RuntimeError("agent unreachable")
    failed_at = clock.time() + 10
    await clock.advance(10)
    await until(lambda: live.latest().stale)
    stale = live.latest()
    assert stale.graph is good.graph
    assert stale.stale_since == failed_at
    assert stale.stale_reason == "RuntimeError: agent unreachable"
    assert stale.synced_at == good.synced_at
    await manager.notify(created("b"))  # a stale model still takes notifications
    assert live.latest().stale
    assert devices(live.latest()) == {"a", "b"}
    source.fail = InventoryError("still down")
    await clock.advance(10)
    await until(lambda: live.latest().stale_reason == "InventoryError: still down")
    assert live.latest().stale_since == failed_at  # since the *first* failure
    source.fail = None
    await clock.advance(10)
    await until(lambda: not live.latest().stale)
    assert live.latest().stale_reason is None
    assert live.stats().build_failures == 2


async def test_a_build_past_its_timeout_is_abandoned_not_returned(stack: AsyncExitStack,
                                                                   clock: FakeClock) -> None:
    """The clock decides the timeout; the model stays the previous one, marked stale."""
    source = FakeSource(period=100, timeout=5, source=["a"])
    manager = await started(stack, clock, source)
    live = manager.get("fake")
    source.gate = asyncio.Event()
    source.source.append("partial")
    await clock.advance(100)
    assert source.building.is_set()
    await clock.advance(5)
    await until(lambda: live.latest().stale)
    assert live.latest().stale_reason == "TimeoutError: build did not finish within 5s"
    assert devices(live.latest()) == {"a"}
    await until(lambda: source.cancelled == 1)


async def test_a_build_returning_garbage_is_a_failure(stack: AsyncExitStack,
                                                      clock: FakeClock) -> None:
    class Broken(ModelCollector):
        async def build(self, ctx: BuildContext) -> Graph:
            return {"not": "a graph"}  # type: ignore[return-value]

    manager = InventoryManager([Broken(CollectorOptions(), name="broken")], clock=clock)
    await manager.start(stack)
    await until(lambda: manager.get("broken").latest().stale)
    assert manager.get("broken").latest().stale_reason == (
        "InventoryError: build returned dict, not a Graph")
    assert not manager.get("broken").latest().ready


async def test_readers_never_see_a_half_applied_change(stack: AsyncExitStack,
                                                       clock: FakeClock) -> None:
    """Every published version, and every version a reader thread catches, is whole."""
    source = FakeSource(period=1, source=[f"s{i}" for i in range(50)])
    manager = await started(stack, clock, source)
    live = manager.get("fake")
    seen: list[Snapshot] = []
    manager.subscribe(seen.append)
    broken: list[int] = []
    stop = threading.Event()

    def reader() -> None:
        while not stop.is_set():
            graph = live.latest().graph
            if not whole(graph):
                broken.append(graph.version)

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        for step in range(400):
            await manager.notify(created("poison" if step % 7 == 0 else f"n{step}"))
            if step % 3 == 0:
                await manager.notify(deleted(f"n{step - 3}"))
            if step % 50 == 0:
                await clock.advance(1)  # a rebuild races the notifications
            await asyncio.sleep(0)
    finally:
        stop.set()
        thread.join()
    assert broken == []
    assert all(whole(s.graph) for s in seen)
    assert "poison" not in devices(live.latest())
    assert live.stats().notification_errors > 0


async def test_too_many_notifications_during_a_build_drop_the_build_not_them(
        stack: AsyncExitStack, clock: FakeClock) -> None:
    source = FakeSource(period=10, source=["a"])
    manager = await started(stack, clock, source, replay_limit=3)
    live = manager.get("fake")
    source.gate = asyncio.Event()
    await clock.advance(10)
    for name in "bcde":
        await manager.notify(created(name))
    source.gate.set()
    await until(lambda: live.stats().discarded_builds == 1)
    assert devices(live.latest()) == {"a", "b", "c", "d", "e"}
    assert not live.latest().stale


async def test_versions_and_diffs(stack: AsyncExitStack, clock: FakeClock) -> None:
    source = FakeSource(source=["a"])
    manager = await started(stack, clock, source, history=3)
    live = manager.get("fake")
    for name in "bcd":
        await manager.notify(created(name))
    await manager.notify(deleted("a"))
    assert live.latest().version == 5
    assert live.versions() == [3, 4, 5]
    change = live.diff(3, 5)
    assert [n.name for n in change.appeared] == ["d", "eth0"]
    assert [n.id for n in change.disappeared] == ["device/a", "interface/a/eth0"]
    assert live.graph(5) is live.latest().graph
    with pytest.raises(VersionGone, match=r"version 1 is not kept \(kept: 3..5\)"):
        live.diff(1, 5)


async def test_routing_by_publisher_event_type_and_payload(stack: AsyncExitStack,
                                                           clock: FakeClock) -> None:
    hits: list[str] = []

    class Watcher(ModelCollector):
        async def build(self, ctx: BuildContext) -> Graph:
            return Graph()

        def endpoints(self) -> list[NotificationEndpoint]:
            return [
                NotificationEndpoint(handler=lambda e, n: hits.append("any-link"),
                                     event_type=r"link\."),
                NotificationEndpoint(handler=lambda e, n: hits.append("core-down"),
                                     publisher_id="snmp-trap", event_type=r"link\.down$",
                                     payload={"device.role": "core$", "ifindex": r"\d+$"}),
                NotificationEndpoint(handler=self._boom, event_type=r"link\.down$"),
            ]

        def _boom(self, edit: GraphEdit, notification: Notification) -> None:
            raise RuntimeError("boom")

    manager = InventoryManager([Watcher(CollectorOptions(), name="w")], clock=clock)
    core = Notification(publisher_id="snmp-trap.core1", event_type="link.down",
                        payload={"device": {"role": "core"}, "ifindex": 3})
    edge = Notification(publisher_id="snmp-trap.edge1", event_type="link.down",
                        payload={"device": {"role": "edge"}, "ifindex": 3})
    other = Notification(publisher_id="snmp-trap", event_type="fan.failed")
    assert await manager.notify(core) == 2  # the failing handler counts as not applied
    assert await manager.notify(edge) == 1
    assert await manager.notify(edge) == 1  # from the route cache
    assert await manager.notify(other) == 0
    assert hits == ["any-link", "core-down", "any-link", "any-link"]


async def test_refresh_rebuilds_now_and_keeps_the_schedule(stack: AsyncExitStack,
                                                           clock: FakeClock) -> None:
    source = FakeSource(period=60, source=["a"])
    manager = await started(stack, clock, source)
    source.source.append("b")
    manager.refresh("fake")
    await until(lambda: source.builds == 2)
    await until(lambda: devices(manager.get("fake").latest()) == {"a", "b"})
    await clock.advance(60)
    await until(lambda: source.builds == 3)


async def test_unknown_names_and_duplicates(clock: FakeClock) -> None:
    manager = InventoryManager([FakeSource("one")], clock=clock)
    assert manager.names() == ["one"]
    with pytest.raises(UnknownCollector, match="no model collector 'two' \\(known: one\\)"):
        manager.get("two")
    with pytest.raises(UnknownCollector):
        manager.refresh("two")
    with pytest.raises(InventoryError, match="two model collectors are named 'one'"):
        InventoryManager([FakeSource("one"), FakeSource("one")], clock=clock)


async def test_stopping_cancels_builds_and_closes_collectors(clock: FakeClock) -> None:
    source = FakeSource(source=["a"])
    source.gate = asyncio.Event()
    async with AsyncExitStack() as exit_stack:
        manager = InventoryManager([source], clock=clock)
        await manager.start(exit_stack)
        await until(source.building.is_set)
    assert source.cancelled == 1
    assert source.closed
    assert not manager.get("fake").latest().ready


async def test_a_failing_subscriber_does_not_break_the_model(clock: FakeClock) -> None:
    manager = InventoryManager([FakeSource()], clock=clock)

    def bad(snapshot: Snapshot) -> None:
        raise RuntimeError("subscriber bug")

    manager.subscribe(bad)
    assert manager.deliver(created("a")) == 1
    assert devices(manager.get("fake").latest()) == {"a"}


def test_options_are_validated() -> None:
    import msgspec

    with pytest.raises(msgspec.ValidationError, match="`period` must be a positive"):
        msgspec.convert({"period": 0}, CollectorOptions)
    with pytest.raises(msgspec.ValidationError, match="unknown field `perod`"):
        msgspec.convert({"perod": 5}, CollectorOptions)


def test_an_endpoint_with_a_bad_pattern_fails_when_made() -> None:
    import re

    with pytest.raises(re.error):
        NotificationEndpoint(handler=add_device_handler, event_type="(")


def add_device_handler(edit: GraphEdit, notification: Notification) -> None:
    add_device(edit, notification.payload["name"])


def test_node_ids_in_fakes() -> None:
    assert node_id("device", "a") == "device/a"


async def test_a_batch_is_one_version_and_each_notification_all_or_nothing(
        stack: AsyncExitStack, clock: FakeClock) -> None:
    source = FakeSource(source=["a"])
    manager = await started(stack, clock, source)
    live = manager.get("fake")
    seen: list[Snapshot] = []
    manager.subscribe(seen.append)
    batch = [created("b"), created("poison"), created("c"), deleted("a"),
             Notification(publisher_id="nobody", event_type="device.created")]
    assert await manager.notify_many(batch) == 3
    assert [s.version for s in seen] == [2]  # one new version for the whole batch
    assert devices(live.latest()) == {"b", "c"}  # the poisoned one left nothing behind
    assert whole(live.latest().graph)
    assert live.stats().notification_errors == 1
    assert manager.deliver_many([]) == 0


async def test_batches_during_a_rebuild_are_replayed(stack: AsyncExitStack,
                                                     clock: FakeClock) -> None:
    source = FakeSource(period=60, source=["a"])
    manager = await started(stack, clock, source)
    live = manager.get("fake")
    source.gate = asyncio.Event()
    source.source.append("x")
    await clock.advance(60)
    source.source += ["b", "c"]
    assert manager.deliver_many([created("b"), created("poison"), created("c")]) == 2
    source.gate.set()
    await until(lambda: live.latest().synced_at == clock.time())
    assert devices(live.latest()) == {"a", "x", "b", "c"}
    assert whole(live.latest().graph)


class _PluginAbort(BaseException):
    """A plugin's own BaseException (not an Exception, not KeyboardInterrupt/SystemExit)."""


class _Unruly(FakeSource):
    """Its builds end the way ``ending`` says, once each, then build normally."""

    def __init__(self) -> None:
        super().__init__("unruly", period=10, source=["a"])
        self.ending: list[str] = []

    async def build(self, ctx: BuildContext) -> Graph:
        how = self.ending.pop(0) if self.ending else None
        if how == "cancel-inner":  # a plugin cancelling its own inner task and awaiting it
            inner = asyncio.ensure_future(asyncio.sleep(3600))
            await asyncio.sleep(0)
            inner.cancel()
            await inner
        if how == "abort":
            raise _PluginAbort("plugin gave up")
        return await super().build(ctx)


@pytest.mark.parametrize(("ending", "reason"), [
    ("cancel-inner", "CancelledError: raised inside the build, not a cancellation of it"),
    ("abort", "_PluginAbort: plugin gave up"),
])
async def test_whatever_a_build_raises_marks_the_model_stale_and_the_loop_goes_on(
        stack: AsyncExitStack, clock: FakeClock, ending: str, reason: str) -> None:
    """A CancelledError or BaseException out of a plugin's build is a failed build (stale,
    with the reason), not the end of the collector's rebuild loop."""
    source = _Unruly()
    manager = await started(stack, clock, source)
    live = manager.get("unruly")
    source.ending = [ending, ending]
    await clock.advance(10)
    await until(lambda: live.latest().stale)
    assert live.latest().stale_reason == reason
    await clock.advance(10)  # the loop is still there, and fails the same way again
    await until(lambda: live.stats().build_failures == 2)
    source.source.append("b")
    await clock.advance(10)
    await until(lambda: not live.latest().stale)
    assert devices(live.latest()) == {"a", "b"}


class _Abrupt(FakeSource):
    """Its `device.created` handler raises a BaseException (or a CancelledError) for
    names starting with `abort` or `cancel`."""

    def _created(self, edit: GraphEdit, notification: Notification) -> None:
        name = notification.payload["name"]
        if name.startswith("abort"):
            raise _PluginAbort("handler gave up")
        if name.startswith("cancel"):
            raise asyncio.CancelledError
        super()._created(edit, notification)


async def test_a_handler_raising_a_base_exception_fails_that_notification_alone(
        clock: FakeClock) -> None:
    """Like an Exception: counted, no trace left, the rest of the batch applied."""
    manager = InventoryManager([_Abrupt()], clock=clock)
    assert manager.deliver(created("abort-1")) == 0
    assert manager.deliver(created("cancel-1")) == 0
    assert manager.deliver_many([created("a"), created("abort-2"), created("cancel-2"),
                                 created("b")]) == 2
    live = manager.get("fake")
    assert devices(live.latest()) == {"a", "b"}
    assert live.stats().notification_errors == 4
