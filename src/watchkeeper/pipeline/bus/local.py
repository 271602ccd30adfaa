"""The in-process bus: bounded asyncio queues of event batches, no serialisation."""

from __future__ import annotations

import asyncio
import logging
import traceback
from collections import deque
from collections.abc import Sequence
from contextlib import AsyncExitStack

from watchkeeper.errors import PipelineError
from watchkeeper.model import Event
from watchkeeper.pipeline.abc import Bus, DeadLetter, Handler
from watchkeeper.pipeline.partition import EntityIds, split

log = logging.getLogger(__name__)


class LocalBus(Bus):
    """Batches pass by reference between engines of one process.

    Each queue holds at most ``max_batches`` batches; ``publish`` waits beyond that. A
    partitioned queue is one asyncio queue per partition, each with one worker, so
    an entity's events are handled in order. A handler that raises gets the same batch
    again after ``retry_delay``: forever by default (back-pressure while, say, the
    archive is down), or ``attempts`` times before its events are dead-lettered.
    """

    def __init__(self, *, max_batches: int = 1024, retry_delay: float = 1.0,
                 attempts: int | None = None, max_dead_letters: int = 10_000) -> None:
        if max_batches < 1:
            raise PipelineError(f"max_batches must be at least 1, not {max_batches}")
        if attempts is not None and attempts < 1:
            raise PipelineError(f"attempts must be at least 1, not {attempts}")
        self._max_batches = max_batches
        self._retry_delay = retry_delay
        self._attempts = attempts
        self._queues: dict[str, list[asyncio.Queue[list[Event]]]] = {}
        self._workers: dict[str, list[asyncio.Task[None]]] = {}
        self._entity_ids = EntityIds()
        self._ordered: set[str] = set()
        self._stopping: set[str] = set()
        self._busy: set[asyncio.Task[None] | None] = set()
        self.dead_letters: deque[DeadLetter] = deque(maxlen=max_dead_letters)

    async def start(self, exit_stack: AsyncExitStack) -> None:
        exit_stack.push_async_callback(self._stop_all)

    async def declare(self, queue: str, *, partitions: int = 1, ordered: bool = False) -> None:
        if ordered:
            self._ordered.add(queue)
        existing = self._queues.get(queue)
        if existing is not None and len(existing) != partitions:
            if any(q.qsize() for q in existing) or queue in self._workers:
                raise PipelineError(f"queue {queue!r} is in use with {len(existing)} "
                                    f"partitions; cannot make it {partitions}")
            existing = None
        if existing is None:
            self._queues[queue] = [asyncio.Queue(self._max_batches)
                                   for _ in range(max(1, partitions))]

    def _partitions(self, name: str) -> list[asyncio.Queue[list[Event]]]:
        queues = self._queues.get(name)
        if queues is None:
            queues = self._queues[name] = [asyncio.Queue(self._max_batches)]
        return queues

    def depth(self, queue: str) -> int:
        """Batches waiting in ``queue`` (all partitions)."""
        return sum(q.qsize() for q in self._partitions(queue))

    async def publish(self, queue: str, events: Sequence[Event]) -> None:
        if not events:
            return
        queues = self._partitions(queue)
        if len(queues) == 1:
            await queues[0].put(list(events))
            return
        for partition, group in split(events, len(queues), self._entity_ids).items():
            await queues[partition].put(group)

    async def consume(self, queue: str, handler: Handler, *, workers: int = 1) -> None:
        queues = self._partitions(queue)
        tasks = self._workers.setdefault(queue, [])
        if len(queues) > 1:  # one worker per partition: order within an entity holds
            for index, q in enumerate(queues):
                tasks.append(asyncio.create_task(self._work(queue, q, handler),
                                                 name=f"{queue}.{index}"))
            return
        for index in range(1 if queue in self._ordered else workers):
            tasks.append(asyncio.create_task(self._work(queue, queues[0], handler),
                                             name=f"{queue}[{index}]"))

    async def _work(self, name: str, queue: asyncio.Queue[list[Event]], handler: Handler) -> None:
        task = asyncio.current_task()
        while name not in self._stopping:
            batch = await queue.get()
            self._busy.add(task)
            try:
                await self._handle(name, batch, handler)
            finally:
                self._busy.discard(task)
                queue.task_done()

    async def _handle(self, name: str, batch: list[Event], handler: Handler) -> None:
        attempt = 0
        while True:
            attempt += 1
            try:
                await handler(batch)
            except Exception as exc:
                if name in self._stopping or (self._attempts is not None
                                              and attempt >= self._attempts):
                    log.error("queue %s: handler failed %d times; dead-lettering %d events",
                              name, attempt, len(batch))
                    error = "".join(traceback.format_exception(exc))
                    self.dead_letters.extend(
                        DeadLetter(engine=name, event=e, error=error, attempts=attempt)
                        for e in batch)
                    return
                log.exception("queue %s: handler failed (attempt %d); retrying the batch",
                              name, attempt)
                await asyncio.sleep(self._retry_delay)
            else:
                return

    async def drain(self, queue: str) -> None:
        for q in self._partitions(queue):
            await q.join()

    async def stop_consuming(self, queue: str) -> None:
        """Idle workers stop at once; busy ones finish their batch first."""
        tasks = self._workers.pop(queue, [])
        self._stopping.add(queue)
        try:
            for task in tasks:
                if task not in self._busy:
                    task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        finally:
            self._stopping.discard(queue)

    def take_queued(self) -> dict[str, list[list[Event]]]:
        taken: dict[str, list[list[Event]]] = {}
        for name, queues in self._queues.items():
            for q in queues:
                while not q.empty():
                    taken.setdefault(name, []).append(q.get_nowait())
                    q.task_done()
        return taken

    async def dead_letter(self, queue: str, letters: Sequence[DeadLetter]) -> None:
        for letter in letters:
            log.warning("engine %s gave up on event %s after %d attempts",
                        letter.engine, letter.event.id, letter.attempts)
        self.dead_letters.extend(letters)

    async def _stop_all(self) -> None:
        for queue in list(self._workers):
            await self.stop_consuming(queue)
