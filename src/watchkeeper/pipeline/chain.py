"""The engine chain: validated at start-up, run on a bus, drained on shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from contextlib import AsyncExitStack

from watchkeeper.errors import PipelineError
from watchkeeper.model import Event
from watchkeeper.pipeline.abc import Bus
from watchkeeper.pipeline.engine import Engine

log = logging.getLogger(__name__)


def check_chain(engines: Sequence[Engine]) -> list[str]:
    """Validate names and ``next`` links; return the engines in topological order.

    Raises :class:`PipelineError` for duplicate names, unknown ``next`` targets and cycles.
    """
    names = [e.name for e in engines]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise PipelineError(f"engine names must be unique: {', '.join(duplicates)}")
    by_name = {e.name: e for e in engines}
    for engine in engines:
        for target in engine.next_engines:
            if target not in by_name:
                raise PipelineError(f"engine {engine.name!r}: next engine {target!r} is not "
                                    f"defined (engines: {', '.join(names)})")
    order: list[str] = []
    marks: dict[str, int] = {}

    def visit(name: str, path: list[str]) -> None:
        if marks.get(name) == 2:
            return
        if marks.get(name) == 1:
            cycle = [*path[path.index(name):], name]
            raise PipelineError(f"engine chain has a cycle: {' -> '.join(cycle)}")
        marks[name] = 1
        for target in by_name[name].next_engines:
            visit(target, [*path, name])
        marks[name] = 2
        order.append(name)

    for name in names:
        visit(name, [])
    return order[::-1]


class Pipeline:
    """Runs a chain of engines on a bus.

    Events enter at the roots (engines no other engine lists in ``next``). On
    shutdown, queues drain in chain order and every engine gets a last beat, so
    buffered work (such as the archive writer's batch) is flushed.
    """

    def __init__(self, engines: Sequence[Engine], bus: Bus) -> None:
        self._order = check_chain(engines)
        self._engines = {e.name: e for e in engines}
        targets = {t for e in engines for t in e.next_engines}
        self.roots = tuple(n for n in self._order if n not in targets)
        self._bus = bus
        self._beats: list[asyncio.Task[None]] = []
        self._accepting = False

    @property
    def engines(self) -> dict[str, Engine]:
        return dict(self._engines)

    async def start(self, exit_stack: AsyncExitStack) -> None:
        for name in self._order:
            engine = self._engines[name]
            await self._bus.consume(name, self._handler(engine), workers=engine.workers)
            if engine.beat_task is not None:
                self._beats.append(asyncio.create_task(self._beat_loop(engine),
                                                       name=f"beat:{name}"))
        self._accepting = True
        exit_stack.push_async_callback(self.stop)

    async def publish(self, events: Sequence[Event]) -> None:
        """Send events into the chain (at every root)."""
        if not self._accepting:
            raise PipelineError("the pipeline is not running")
        for root in self.roots:
            await self._bus.publish(root, events)

    def _handler(self, engine: Engine):  # type: ignore[no-untyped-def]
        async def handle(batch: list[Event]) -> None:
            out = await engine.process(batch)
            if out:
                for target in engine.next_engines:
                    await self._bus.publish(target, out)

        return handle

    async def _beat_loop(self, engine: Engine) -> None:
        clock = engine.services.clock
        while True:
            await clock.sleep_until(clock.time() + engine.beat_interval)
            await engine.beat()

    async def stop(self) -> None:
        """Stop taking events, drain every queue in chain order, flush, stop consumers."""
        self._accepting = False
        for task in self._beats:
            task.cancel()
        for task in self._beats:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._beats.clear()
        for name in self._order:
            await self._bus.drain(name)
            await self._engines[name].beat()
        for name in self._order:
            await self._bus.stop_consuming(name)
