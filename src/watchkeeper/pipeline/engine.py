"""One running engine: its tasks, its state, and how a batch of events goes through it."""

from __future__ import annotations

import inspect
import logging
import traceback
from collections import deque
from collections.abc import Callable
from typing import Any

import msgspec

from watchkeeper.model import Event
from watchkeeper.pipeline.abc import BatchTask, BeatTask, EventTask, Services

log = logging.getLogger(__name__)


class DeadLetter(msgspec.Struct, frozen=True, kw_only=True):
    """An event whose task kept failing, with the error that stopped it."""

    engine: str
    event: Event
    error: str
    attempts: int


class Engine:
    """An engine instance: what its tasks receive as their first argument.

    ``state`` is the engine's own scratch space; ``options`` its typed options (or the
    raw mapping for Canopsis-style task engines, also passed to tasks as ``**ctx``).
    """

    def __init__(
        self,
        *,
        name: str,
        services: Services,
        event_task: EventTask | None,
        beat_task: BeatTask | None = None,
        batch_task: BatchTask | None = None,
        beat_interval: float = 10.0,
        next_engines: tuple[str, ...] = (),
        workers: int = 1,
        options: Any = None,
        ctx: dict[str, Any] | None = None,
        max_attempts: int = 3,
        dead_letters: deque[DeadLetter] | None = None,
    ) -> None:
        self.name = name
        self.services = services
        self.event_task = event_task
        self.beat_task = beat_task
        self.batch_task = batch_task
        self.beat_interval = beat_interval
        self.next_engines = next_engines
        self.workers = workers
        self.options = options
        self.ctx = dict(ctx or {})
        self.state: dict[str, Any] = {}
        self.max_attempts = max_attempts
        self.dead_letters: deque[DeadLetter] = (
            dead_letters if dead_letters is not None else deque(maxlen=10_000)
        )
        self._event_is_async = _is_async(event_task)
        self._beat_is_async = _is_async(beat_task)

    async def process(self, batch: list[Event]) -> list[Event]:
        """Run the batch through the engine; return what goes on to the next engines."""
        if self.batch_task is not None:
            return await self.batch_task(self, batch)
        if self.event_task is None:
            return batch
        out: list[Event] = []
        for event in batch:
            result = await self._process_one(event)
            if result is not None:
                out.append(result)
        metrics = self.services.metrics
        metrics.events.labels(self.name, "in").inc(len(batch))
        metrics.events.labels(self.name, "out").inc(len(out))
        return out

    async def _process_one(self, event: Event) -> Event | None:
        assert self.event_task is not None
        error = ""
        for attempt in range(1, self.max_attempts + 1):
            try:
                result = self.event_task(self, event, **self.ctx)
                if self._event_is_async:
                    result = await result
            except Exception as exc:  # noqa: BLE001 - one bad event must not stop the engine
                error = "".join(traceback.format_exception(exc))
                self.services.metrics.engine_errors.labels(self.name).inc()
                log.warning("engine %s: task failed on event %s (attempt %d/%d): %r",
                            self.name, event.id, attempt, self.max_attempts, exc)
                continue
            if result is not None and not isinstance(result, Event):
                error = f"task returned {type(result).__name__}, not an Event or None"
                break
            return result
        self.dead_letters.append(
            DeadLetter(engine=self.name, event=event, error=error, attempts=self.max_attempts))
        self.services.metrics.events.labels(self.name, "dead_lettered").inc()
        return None

    async def beat(self) -> None:
        """Run the beat task once; failures are logged and counted, never raised."""
        if self.beat_task is None:
            return
        try:
            result = self.beat_task(self, **self.ctx)
            if self._beat_is_async:
                await result
        except Exception:  # a failing beat must not stop the engine
            self.services.metrics.engine_errors.labels(self.name).inc()
            log.exception("engine %s: beat task failed", self.name)


def _is_async(func: Callable[..., Any] | None) -> bool:
    return func is not None and (
        inspect.iscoroutinefunction(func)
        or inspect.iscoroutinefunction(getattr(func, "__call__", None))  # noqa: B004 - async callables
    )
