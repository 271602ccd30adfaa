"""The in-process bus: bounded asyncio queues of event batches, no serialisation."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from contextlib import AsyncExitStack

from watchkeeper.model import Event
from watchkeeper.pipeline.abc import Bus, Handler

log = logging.getLogger(__name__)


class LocalBus(Bus):
    """Batches pass by reference between engines of one process.

    A handler that raises gets the same batch again after ``retry_delay`` (the
    engine decides, per event, what to retry or dead-letter; this is the last net).
    """

    def __init__(self, *, max_batches: int = 1024, retry_delay: float = 1.0) -> None:
        self._max_batches = max_batches
        self._retry_delay = retry_delay
        self._queues: dict[str, asyncio.Queue[list[Event]]] = {}
        self._workers: dict[str, list[asyncio.Task[None]]] = {}

    async def start(self, exit_stack: AsyncExitStack) -> None:
        exit_stack.push_async_callback(self._stop_all)

    def _queue(self, name: str) -> asyncio.Queue[list[Event]]:
        queue = self._queues.get(name)
        if queue is None:
            queue = self._queues[name] = asyncio.Queue(self._max_batches)
        return queue

    def depth(self, queue: str) -> int:
        return self._queue(queue).qsize()

    async def publish(self, queue: str, events: Sequence[Event]) -> None:
        if events:
            await self._queue(queue).put(list(events))

    async def consume(self, queue: str, handler: Handler, *, workers: int = 1) -> None:
        q = self._queue(queue)
        tasks = self._workers.setdefault(queue, [])
        for index in range(workers):
            tasks.append(asyncio.create_task(self._work(q, handler), name=f"{queue}[{index}]"))

    async def _work(self, queue: asyncio.Queue[list[Event]], handler: Handler) -> None:
        while True:
            batch = await queue.get()
            try:
                while True:
                    try:
                        await handler(batch)
                        break
                    except Exception:
                        log.exception("handler failed; retrying the batch")
                        await asyncio.sleep(self._retry_delay)
            finally:
                queue.task_done()

    async def drain(self, queue: str) -> None:
        await self._queue(queue).join()

    async def stop_consuming(self, queue: str) -> None:
        tasks = self._workers.pop(queue, [])
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _stop_all(self) -> None:
        for queue in list(self._workers):
            await self.stop_consuming(queue)
