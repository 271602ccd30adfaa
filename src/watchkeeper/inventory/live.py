"""One collector's live model: the latest snapshot, its rebuilds and its notifications.

The rebuild protocol (what Watcher got wrong, done right):

1. The build runs with no lock held. Notifications keep being applied to the current
   model (readers see them at once) and are also kept in a replay buffer.
2. When the build returns, the buffered notifications are replayed onto the new model and
   the result swapped in, all in one stretch of code without an ``await``, so no
   notification or reader can slip between replay and swap.
3. A build that raises or outlives its timeout changes nothing but the stale mark
   (since when, why): the previous model stays, never a partial one.

Every published model is a new immutable :class:`Graph`; readers holding an old one keep
a consistent view.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import msgspec

from watchkeeper.clock import Clock
from watchkeeper.errors import InventoryError
from watchkeeper.inventory.abc import (
    BuildContext,
    ModelCollector,
    Notification,
    NotificationEndpoint,
)
from watchkeeper.inventory.diff import GraphDiff, diff
from watchkeeper.inventory.graph import Graph
from watchkeeper.inventory.release import release

log = logging.getLogger(__name__)

# What a plugin may raise that ends the process, not just its build or notification.
_FATAL = (KeyboardInterrupt, SystemExit)
_INLINE_COMPARE = 20_000  # nodes: below this, comparing builds takes well under a millisecond


class Snapshot(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """A collector's model as of one moment: the graph and how fresh it is."""

    collector: str
    graph: Graph
    synced_at: float | None = None  # when the last successful build was swapped in
    stale_since: float | None = None  # first failed build since then, if any
    stale_reason: str | None = None

    @property
    def version(self) -> int:
        return self.graph.version

    @property
    def stale(self) -> bool:
        return self.stale_since is not None

    @property
    def ready(self) -> bool:
        """True once a build has succeeded."""
        return self.synced_at is not None


@dataclass(frozen=True, slots=True)
class LiveStats:
    """A model's counters since start, and whether a build is running now."""

    builds: int  # builds started
    build_failures: int  # builds that raised or timed out (the model was then marked stale)
    notifications: int  # notifications routed to this model
    notification_errors: int  # of those, the ones whose handler raised (left no trace)
    discarded_builds: int  # builds dropped: too many notifications arrived during them
    last_build_seconds: float | None
    building: bool = False  # a build is in progress


class VersionGone(InventoryError, LookupError):
    """The version asked for is no longer (or not yet) kept."""


OnChange = Callable[[Snapshot], None]
Routed = tuple[NotificationEndpoint, Notification]


class LiveModel:
    """The live model of one :class:`ModelCollector`.

    ``history`` versions are kept for diffs. At most ``replay_limit`` notifications are
    buffered during a build; past that the build is discarded (the current model, kept up
    to date by those notifications, stays) rather than a notification being lost.
    """

    def __init__(
        self,
        collector: ModelCollector,
        *,
        clock: Clock,
        history: int = 64,
        replay_limit: int = 100_000,
        on_change: OnChange | None = None,
    ) -> None:
        self.collector = collector
        self.name = collector.name
        self._clock = clock
        self._history_size = max(1, history)
        self._replay_limit = replay_limit
        self._on_change = on_change
        empty = Graph()
        self._snapshot = Snapshot(collector=self.name, graph=empty)
        self._history: OrderedDict[int, Graph] = OrderedDict({0: empty})
        self._rebuilt: set[int] = set()  # kept versions that a full build started
        # Notifications applied while a build runs, to replay onto its result; None between.
        self._buffer: list[Routed] | None = None
        self._overflowed = False
        self._building = asyncio.Lock()  # one build at a time; never held by readers
        self._builds = self._failures = self._discarded = 0
        self._notes = self._note_errors = 0
        self._last_build: float | None = None

    # ------------------------------------------------------------- reading

    def latest(self) -> Snapshot:
        """The current snapshot: an immutable graph plus its freshness. O(1)."""
        return self._snapshot

    def graph(self, version: int) -> Graph:
        """A kept version of the model."""
        graph = self._history.get(version)
        if graph is None:
            kept = f"{min(self._history)}..{max(self._history)}"
            raise VersionGone(f"{self.name}: version {version} is not kept (kept: {kept})")
        return graph

    def versions(self) -> list[int]:
        return list(self._history)

    def diff(self, before: int, after: int) -> GraphDiff:
        return diff(self.graph(before), self.graph(after))

    def stats(self) -> LiveStats:
        return LiveStats(builds=self._builds, build_failures=self._failures,
                         notifications=self._notes, notification_errors=self._note_errors,
                         discarded_builds=self._discarded, last_build_seconds=self._last_build,
                         building=self._building.locked())

    # ------------------------------------------------------------- notifications

    def apply(self, endpoint: NotificationEndpoint, notification: Notification) -> bool:
        """Apply one notification now (and keep it for replay if a build runs)."""
        return self.apply_many(((endpoint, notification),)) == 1

    def apply_many(self, batch: Sequence[Routed]) -> int:
        """Apply notifications in order, published as one new version; each one is
        all-or-nothing (a handler that raises leaves no trace). How many applied."""
        if self._buffer is not None:
            room = self._replay_limit - len(self._buffer)
            self._buffer.extend(batch[:room])
            if len(batch) > room:
                self._overflowed = True
        self._notes += len(batch)
        current = self._snapshot.graph
        graph, applied = self._apply_all(current, batch)
        if graph is not current:
            self._publish(graph)
        return applied

    def _apply_all(self, graph: Graph, batch: Sequence[Routed]) -> tuple[Graph, int]:
        edit = graph.edit()
        if len(batch) == 1:  # alone: a failure just drops the draft, no journal needed
            endpoint, notification = batch[0]
            try:
                endpoint.handler(edit, notification)
            except _FATAL:
                raise
            except BaseException as exc:  # noqa: BLE001 - a plugin's handler: anything it raises
                self._handler_failed(notification, exc)
                return graph, 0
            return edit.commit(), 1
        applied = 0
        for endpoint, notification in batch:
            mark = edit.savepoint()
            try:
                endpoint.handler(edit, notification)
            except _FATAL:
                raise
            except BaseException as exc:  # noqa: BLE001 - one bad notification must not stop others
                edit.rollback(mark)
                self._handler_failed(notification, exc)
            else:
                applied += 1
        return edit.commit(), applied

    def _handler_failed(self, notification: Notification, exc: BaseException) -> None:
        self._note_errors += 1
        log.warning("%s: handler failed for %s from %s: %s", self.name, notification.event_type,
                    notification.publisher_id, _describe(exc), exc_info=exc)

    # ------------------------------------------------------------- builds

    async def rebuild(self) -> bool:
        """Build the whole model and swap it in; False when the build failed or was dropped.

        Whatever the plugin raises marks the model stale with the reason, a CancelledError
        or another BaseException included: only the caller's own cancellation, and
        KeyboardInterrupt or SystemExit, come out of here, so a plugin cannot end a rebuild
        loop.
        """
        async with self._building:
            started = self._clock.time()
            try:
                return await self._rebuild(started)
            except asyncio.CancelledError:
                task = asyncio.current_task()
                if task is None or task.cancelling():  # the caller's cancellation: stop
                    self._buffer = None
                    raise
                reason = "CancelledError: raised inside the build, not a cancellation of it"
            except _FATAL:
                raise
            except BaseException as exc:  # noqa: BLE001 - a plugin's BaseException too
                reason = _describe(exc)
            self._failed(started, reason)
            return False

    async def _rebuild(self, started: float) -> bool:
        base = self._snapshot.graph
        self._buffer = []
        self._overflowed = False
        self._builds += 1
        try:
            built = await self._build(base, started)
            if built.node_count + base.node_count < _INLINE_COMPARE:
                unchanged = built.same_content(base)
            else:  # off the loop: comparing two independent big builds takes a while
                unchanged = await asyncio.to_thread(built.same_content, base)
        except Exception as exc:  # noqa: BLE001 - any failure of a build marks the model stale
            self._failed(started, _describe(exc))
            return False
        finally:
            self._last_build = self._clock.time() - started
        # From here to the end: no await, so replay and swap are one atomic step.
        buffered, self._buffer = self._buffer, None
        if self._overflowed:
            release(built)
            del built
            self._discarded += 1
            log.warning("%s: build dropped: more than %d notifications arrived during it; "
                        "the current model already has them", self.name, self._replay_limit)
            return False
        if unchanged:
            # Same source as the base: replaying what the current model already applied
            # to the base gives the current model, so keep it (no version bump).
            graph = self._snapshot.graph
            release(built)  # a whole model: freed piecemeal off the loop, not here
            del built
        else:
            graph, _ = self._apply_all(built, buffered)
        self._publish(graph, synced_at=self._clock.time())
        return True

    async def _build(self, base: Graph, started: float) -> Graph:
        timeout = self.collector.options.timeout
        ctx = BuildContext(collector=self.name, clock=self._clock, started=started,
                           deadline=started + timeout, previous=base)
        building = asyncio.ensure_future(self.collector.build(ctx))
        timer = asyncio.ensure_future(self._clock.sleep_until(ctx.deadline))
        try:
            await asyncio.wait({building, timer}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            timer.cancel()
            if not building.done():
                building.cancel()
                building.add_done_callback(_retrieve)
        if not building.done():
            raise TimeoutError(f"build did not finish within {timeout:g}s")
        graph = building.result()
        if not isinstance(graph, Graph):
            raise InventoryError(f"build returned {type(graph).__name__}, not a Graph")
        return graph

    def _failed(self, started: float, reason: str) -> None:
        self._failures += 1
        self._buffer = None  # the current model already has every notification
        old = self._snapshot
        log.error("%s: model build failed, keeping version %d marked stale: %s", self.name,
                  old.version, reason)
        since = old.stale_since if old.stale_since is not None else started
        self._snapshot = Snapshot(collector=self.name, graph=old.graph, synced_at=old.synced_at,
                                  stale_since=since, stale_reason=reason)
        self._changed()

    def _publish(self, graph: Graph, *, synced_at: float | None = None) -> None:
        """Swap in ``graph`` (a new version unless it is the current one).

        With ``synced_at`` it is the result of a successful build, which clears staleness.
        """
        old = self._snapshot
        if graph is not old.graph:
            if graph.version != old.version + 1:  # a build's result, or replayed onto one
                graph = graph.with_version(old.version + 1)
            self._history[graph.version] = graph
            if synced_at is not None:
                self._rebuilt.add(graph.version)
            while len(self._history) > self._history_size:
                _, oldest = self._history.popitem(last=False)
                self._rebuilt.discard(oldest.version)
                if next(iter(self._history)) in self._rebuilt:
                    release(oldest)  # the last of a build's lineage: a whole model to free
                del oldest  # else only its own few copied trie nodes go, here and now
        if synced_at is None:
            self._snapshot = Snapshot(collector=self.name, graph=graph, synced_at=old.synced_at,
                                      stale_since=old.stale_since, stale_reason=old.stale_reason)
        else:
            self._snapshot = Snapshot(collector=self.name, graph=graph, synced_at=synced_at)
        self._changed()

    def _changed(self) -> None:
        if self._on_change is not None:
            try:
                self._on_change(self._snapshot)
            except Exception:  # a subscriber's bug must not break the model
                log.exception("%s: change subscriber failed", self.name)


def _retrieve(task: asyncio.Future[Graph]) -> None:
    # An abandoned build's outcome is of no use, but must be retrieved to stay quiet.
    if not task.cancelled():
        task.exception()


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
