"""One running engine: its tasks, its state, and how a batch of events goes through it."""

from __future__ import annotations

import inspect
import logging
import time
import traceback
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

from watchkeeper.model import Event
from watchkeeper.pipeline.abc import (
    BatchTask,
    BeatTask,
    CommitTask,
    DeadLetter,
    EventTask,
    Services,
)

log = logging.getLogger(__name__)

__all__ = ["DeadLetter", "Engine"]


class Engine:
    """An engine instance: what its tasks receive as their first argument.

    ``state`` is the engine's own scratch space; ``options`` its typed options (or the
    raw mapping for Canopsis-style task engines, also passed to tasks as ``**ctx``).
    A task that raises is retried up to ``max_attempts`` times in all, then the event
    is dead-lettered with the traceback; the engine goes on with the next event.
    """

    def __init__(
        self,
        *,
        name: str,
        services: Services,
        event_task: EventTask | None,
        beat_task: BeatTask | None = None,
        batch_task: BatchTask | None = None,
        commit_task: CommitTask | None = None,
        beat_interval: float = 10.0,
        next_engines: tuple[str, ...] = (),
        workers: int = 1,
        partitions: int = 1,
        ordered: bool = False,
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
        self.commit_task = commit_task
        self.beat_interval = beat_interval
        self.next_engines = next_engines
        self.workers = workers
        self.partitions = partitions
        self.ordered = ordered or partitions > 1
        self.options = options
        self.ctx = dict(ctx or {})
        self.state: dict[str, Any] = {}
        self.max_attempts = max(1, max_attempts)
        self.dead_letters: deque[DeadLetter] = (
            dead_letters if dead_letters is not None else deque(maxlen=10_000)
        )
        self._pending_letters: list[DeadLetter] = []
        self._closers: list[Callable[[], None]] = []
        self._rollbacks: list[Callable[[], None]] = []
        self._emitted: list[Event] = []
        self._event_is_async = _is_async(event_task)
        self._beat_is_async = _is_async(beat_task)
        metrics = services.metrics
        # Labelled children are looked up once: .labels() costs a dict walk per call.
        self._in = metrics.events.labels(name, "in")
        self._out = metrics.events.labels(name, "out")
        self._dead = metrics.events.labels(name, "dead_lettered")
        self._errors = metrics.engine_errors.labels(name)
        self._latency = metrics.engine_latency.labels(name)

    async def process(self, batch: list[Event]) -> list[Event]:
        """Run the batch through the engine; return what goes on to the next engines."""
        started = time.perf_counter()
        try:
            if self.batch_task is not None:
                out = await self.batch_task(self, batch)
            elif self.event_task is None:
                out = batch
            else:
                out = await self._each(batch)
        except Exception:
            self._errors.inc()
            raise
        finally:
            self._latency.observe(time.perf_counter() - started)
        self._in.inc(len(batch))
        self._out.inc(len(out))
        return out

    async def _each(self, batch: list[Event]) -> list[Event]:
        task = self.event_task
        assert task is not None
        ctx = self.ctx
        out: list[Event] = []
        is_async = self._event_is_async
        for event in batch:
            try:
                result = task(self, event, **ctx)
                if is_async:
                    result = await result
            except Exception as exc:  # noqa: BLE001 - one bad event must not stop the engine
                result = await self._retry(event, exc)
            if result is None:
                continue
            if not isinstance(result, Event):
                self.dead_letter(event, f"task returned {type(result).__name__}, "
                                        "not an Event or None", attempts=1)
                continue
            out.append(result)
        return out

    async def _retry(self, event: Event, first: Exception) -> Event | None:
        task = self.event_task
        assert task is not None
        exc: Exception = first
        for attempt in range(1, self.max_attempts + 1):
            if attempt > 1:
                try:
                    result = task(self, event, **self.ctx)
                    if self._event_is_async:
                        result = await result
                except Exception as again:  # noqa: BLE001 - counted, retried, dead-lettered
                    exc = again
                else:
                    return result  # type: ignore[no-any-return]
            self._errors.inc()
            log.warning("engine %s: task failed on event %s (attempt %d/%d): %r",
                        self.name, event.id, attempt, self.max_attempts, exc)
        self.dead_letter(event, "".join(traceback.format_exception(exc)),
                         attempts=self.max_attempts)
        return None

    def dead_letter(self, event: Event, error: str, *, attempts: int) -> None:
        """Give up on ``event``: keep it with its error, to go to the bus's dead letters."""
        letter = DeadLetter(engine=self.name, event=event, error=error, attempts=attempts)
        self.dead_letters.append(letter)
        self._pending_letters.append(letter)
        self._dead.inc()

    def take_dead_letters(self) -> list[DeadLetter]:
        """The dead letters not yet handed to the bus."""
        letters, self._pending_letters = self._pending_letters, []
        return letters

    def emit(self, events: Iterable[Event]) -> None:
        """Side output (from a beat, say): sent on to the next engines after the task returns."""
        self._emitted.extend(events)

    def take_emitted(self) -> list[Event]:
        emitted, self._emitted = self._emitted, []
        return emitted

    async def beat(self) -> None:
        """Run the beat task once; failures are logged and counted, never raised."""
        if self.beat_task is None:
            return
        try:
            result = self.beat_task(self, **self.ctx)
            if self._beat_is_async:
                await result
        except Exception:  # a failing beat must not stop the engine
            self._errors.inc()
            log.exception("engine %s: beat task failed", self.name)

    def on_close(self, closer: Callable[[], None]) -> None:
        """Run ``closer`` when the engine stops (after its last beat): tasks that open a
        store on first use register its ``close`` here."""
        self._closers.append(closer)

    def on_rollback(self, rollback: Callable[[], None]) -> None:
        """Run ``rollback`` when a batch failed after processing but before its commit, on
        a durable bus (say, its results could not be published): the batch comes again,
        and a durable engine must redo it from its committed state, not skip it as seen."""
        self._rollbacks.append(rollback)

    def rollback(self) -> None:
        """Forget uncommitted work (the pipeline calls this when a batch failed); emitted
        events and dead letters not yet handed on are dropped with it."""
        self._emitted.clear()
        self._pending_letters.clear()
        for rollback in self._rollbacks:
            rollback()

    def close(self) -> None:
        """Close what the tasks opened (the pipeline calls this once it stopped)."""
        closers, self._closers = self._closers, []
        for closer in reversed(closers):
            try:
                closer()
            except Exception:  # one failing close must not keep the others open
                log.exception("engine %s: closing its state failed", self.name)

    async def commit(self) -> None:
        """Make the engine's work so far durable (before a durable bus acknowledges it)."""
        if self.commit_task is not None:
            await self.commit_task(self)


def _is_async(func: Callable[..., Any] | None) -> bool:
    return func is not None and (
        inspect.iscoroutinefunction(func)
        or inspect.iscoroutinefunction(getattr(func, "__call__", None))  # noqa: B004 - async callables
    )
