"""The inventory manager: every collector's live model, rebuilt on schedule, fed notifications.

::

    manager = InventoryManager([StaticModelCollector(options, name="static")], clock=clock)
    await manager.start(exit_stack)           # first builds start now, then every `period`
    snapshot = manager.get("static").latest()  # O(1), immutable
    await manager.notify(Notification(publisher_id="snmp-trap", event_type="link.down", ...))

Collectors are passed in (the runtime loads them from entry points); there is no global
registry and no singleton.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from contextlib import AsyncExitStack
from dataclasses import dataclass

from watchkeeper.clock import Clock
from watchkeeper.errors import InventoryError
from watchkeeper.inventory.abc import ModelCollector, Notification
from watchkeeper.inventory.live import LiveModel, Routed, Snapshot
from watchkeeper.inventory.routing import Router

log = logging.getLogger(__name__)

Subscriber = Callable[[Snapshot], None]


class UnknownCollector(InventoryError, LookupError):
    """No model collector has that name."""


@dataclass(frozen=True, slots=True)
class Delivery:
    """What became of a batch of notifications: how many there were, how many
    (notification, endpoint) pairs matched, and how many of those applied (the others'
    handlers raised and left no trace)."""

    notifications: int
    matched: int
    applied: int


class InventoryManager:
    """Owns one :class:`LiveModel` per collector, their rebuild loops and notification routing."""

    def __init__(
        self,
        collectors: Iterable[ModelCollector],
        *,
        clock: Clock,
        history: int = 64,
        replay_limit: int = 100_000,
    ) -> None:
        self._clock = clock
        self._subscribers: list[Subscriber] = []
        self._models: dict[str, LiveModel] = {}
        for collector in collectors:
            if collector.name in self._models:
                raise InventoryError(f"two model collectors are named {collector.name!r}")
            self._models[collector.name] = LiveModel(
                collector, clock=clock, history=history, replay_limit=replay_limit,
                on_change=self._changed)
        self._router = Router([(model, endpoint) for model in self._models.values()
                               for endpoint in model.collector.endpoints()])
        self._wakeups: dict[str, asyncio.Event] = {}
        self._tasks: list[asyncio.Task[None]] = []

    def names(self) -> list[str]:
        return list(self._models)

    def get(self, name: str) -> LiveModel:
        try:
            return self._models[name]
        except KeyError:
            known = ", ".join(self._models) or "none"
            raise UnknownCollector(f"no model collector {name!r} (known: {known})") from None

    def snapshots(self) -> list[Snapshot]:
        """The latest snapshot of every collector, in configuration order."""
        return [model.latest() for model in self._models.values()]

    def subscribe(self, callback: Subscriber) -> None:
        """Call ``callback(snapshot)`` after every change of any model (version or staleness).

        It runs synchronously inside the change: keep it short (set a flag, wake a task).
        """
        self._subscribers.append(callback)

    def _changed(self, snapshot: Snapshot) -> None:
        for callback in self._subscribers:
            try:
                callback(snapshot)
            except Exception:  # one subscriber's bug must not break the others
                log.exception("inventory subscriber failed")

    # ------------------------------------------------------------- notifications

    def deliver(self, notification: Notification) -> int:
        """Apply ``notification`` to every model whose endpoints match; how many applied it."""
        applied = 0
        for model, endpoint in self._router.route(notification):
            applied += model.apply(endpoint, notification)
        return applied

    def deliver_many(self, notifications: Iterable[Notification]) -> int:
        """Apply a batch in order: each model publishes one new version for all of it
        (each notification still all-or-nothing). How many (notification, endpoint)
        applications succeeded."""
        return self.deliver_batch(notifications).applied

    def deliver_batch(self, notifications: Iterable[Notification]) -> Delivery:
        """:meth:`deliver_many`, telling how many notifications matched and applied."""
        per_model: dict[LiveModel, list[Routed]] = {}
        count = matched = 0
        for notification in notifications:
            count += 1
            for model, endpoint in self._router.route(notification):
                matched += 1
                batch = per_model.get(model)
                if batch is None:
                    per_model[model] = [(endpoint, notification)]
                else:
                    batch.append((endpoint, notification))
        applied = sum(model.apply_many(batch) for model, batch in per_model.items())
        return Delivery(notifications=count, matched=matched, applied=applied)

    async def notify(self, notification: Notification) -> int:
        """:meth:`deliver`, for callers on the event loop (pipeline engines, the AMQP bus)."""
        return self.deliver(notification)

    async def notify_many(self, notifications: Iterable[Notification]) -> int:
        """:meth:`deliver_many`, for callers on the event loop that receive batches."""
        return self.deliver_many(notifications)

    # ------------------------------------------------------------- rebuilds

    def refresh(self, name: str) -> None:
        """Ask for a rebuild of ``name`` now instead of at its next period."""
        self.get(name)
        wakeup = self._wakeups.get(name)
        if wakeup is not None:
            wakeup.set()

    async def start(self, exit_stack: AsyncExitStack) -> None:
        """Start every rebuild loop (first build at once); stop them when the stack unwinds."""
        exit_stack.push_async_callback(self._stop)
        for name, model in self._models.items():
            self._wakeups[name] = asyncio.Event()
            self._tasks.append(asyncio.create_task(self._loop(model), name=f"inventory:{name}"))

    async def _loop(self, model: LiveModel) -> None:
        period = model.collector.options.period
        wakeup = self._wakeups[model.name]
        due = self._clock.time()
        while True:
            wakeup.clear()
            await model.rebuild()
            now = self._clock.time()
            if due <= now:  # else a refresh came early: the regular build stays due
                due += period
                if due <= now:  # the build overran its period: next one a period from now
                    due = now + period
            await self._sleep(due, wakeup)

    async def _sleep(self, deadline: float, wakeup: asyncio.Event) -> None:
        sleeping = asyncio.ensure_future(self._clock.sleep_until(deadline))
        woken = asyncio.ensure_future(wakeup.wait())
        try:
            await asyncio.wait({sleeping, woken}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            sleeping.cancel()
            woken.cancel()

    async def _stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        for model in self._models.values():
            try:
                await model.collector.aclose()
            except Exception:  # closing one collector must not stop the others closing
                log.exception("closing model collector %s failed", model.name)
