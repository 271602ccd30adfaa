"""The engine chain: validated at start-up, run on a bus, drained on shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Collection, Sequence
from contextlib import AsyncExitStack
from pathlib import Path

from watchkeeper.errors import PipelineError
from watchkeeper.model import Event
from watchkeeper.pipeline import leftovers
from watchkeeper.pipeline.abc import INGRESS, Bus, Handler
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

    Events enter at the roots (engines no other engine lists in ``next``). ``run``
    names the engines this process works for (default: all of them); every engine's
    queue is declared anyway, so this process can publish to it. A batch's results
    are published downstream, then the engine commits, and only then does the bus
    acknowledge the batch: a crash in between means the batch comes again.

    On shutdown, queues drain in chain order and every engine gets a last beat, so
    buffered work (such as the archive writer's batch) is flushed. With ``drain_seconds``
    the drain stops after that long; what an in-process bus still holds then is written to
    ``leftovers`` and put back in its queues by the next start.
    """

    def __init__(self, engines: Sequence[Engine], bus: Bus, *,
                 run: Collection[str] | None = None, drain_seconds: float | None = None,
                 leftovers: Path | None = None) -> None:
        self._order = check_chain(engines)
        self._engines = {e.name: e for e in engines}
        unknown = sorted(set(run or ()) - set(self._engines))
        if unknown:
            raise PipelineError(f"no engine named {', '.join(map(repr, unknown))} "
                                f"(engines: {', '.join(self._order)})")
        self._run = [n for n in self._order if run is None or n in run]
        targets = {t for e in engines for t in e.next_engines}
        self.roots = tuple(n for n in self._order if n not in targets)
        self._bus = bus
        # A commit stores everything an engine did so far: with several consumers (one per
        # partition) and the beat, it must not store work whose results are not out yet.
        # So on a durable bus an engine that commits does one batch (or beat) at a time.
        self._locks = {e.name: asyncio.Lock() for e in engines
                       if bus.durable and e.commit_task is not None}
        self._beats: list[asyncio.Task[None]] = []
        self._accepting = False
        self._stopped = False
        self._drain_seconds = drain_seconds
        self._leftovers = leftovers

    @property
    def engines(self) -> dict[str, Engine]:
        return dict(self._engines)

    @property
    def bus(self) -> Bus:
        return self._bus

    async def start(self, exit_stack: AsyncExitStack) -> None:
        for name in self._order:
            engine = self._engines[name]
            await self._bus.declare(name, partitions=engine.partitions, ordered=engine.ordered)
        for name in self._run:
            engine = self._engines[name]
            await self._bus.consume(name, self._handler(engine), workers=engine.workers)
            if engine.beat_task is not None:
                self._beats.append(asyncio.create_task(self._beat_loop(engine),
                                                       name=f"beat:{name}"))
        if any(root in self._run for root in self.roots):
            clock = self._engines[self.roots[0]].services.clock
            await self._bus.consume_ingress(self._ingress, now=clock.time)
        self._accepting = True
        self._stopped = False
        exit_stack.push_async_callback(self.stop)
        if self._leftovers is not None:
            await self._replay_leftovers(self._leftovers)

    async def _replay_leftovers(self, path: Path) -> None:
        """Put back what the last stop left queued, each batch in the queue it was in."""
        queued = leftovers.load(path)
        count = 0
        for name, batches in queued.items():
            if name not in self._engines:
                log.warning("pipeline leftovers: no engine %r any more; %d batches of it "
                            "stay in %s", name, len(batches), path)
                continue
            for batch in batches:
                await self._bus.publish(name, batch)
                count += len(batch)
        kept = {n: b for n, b in queued.items() if n not in self._engines}
        leftovers.discard(path)
        if kept:
            leftovers.save(path, kept)
        if count:
            log.info("put back %d events the last stop left queued", count)

    async def _ingress(self, events: list[Event]) -> None:
        await self._bus.fan_out(self.roots, events)

    async def publish(self, events: Sequence[Event]) -> None:
        """Send events into the chain (at every root)."""
        for root in self.roots:
            await self.send(root, events)

    async def send(self, engine: str, events: Sequence[Event]) -> None:
        """Send events to one engine's queue (actions for the alarm engine, say)."""
        if not self._accepting:
            raise PipelineError("the pipeline is not running")
        if engine not in self._engines:
            raise PipelineError(f"no engine named {engine!r}")
        await self._bus.publish(engine, events)

    def _handler(self, engine: Engine) -> Handler:
        async def handle(batch: list[Event]) -> None:
            out = await engine.process(batch)
            await self._forward(engine, out)

        lock = self._locks.get(engine.name)
        if lock is None:
            return handle

        async def one_at_a_time(batch: list[Event]) -> None:
            async with lock:
                try:
                    await handle(batch)
                except BaseException:
                    # nothing of this batch is committed and it comes again: let the
                    # engine forget what it did, so the retry is done on committed state
                    engine.rollback()
                    raise

        return one_at_a_time

    async def _forward(self, engine: Engine, out: list[Event]) -> None:
        """Publish results and dead letters, then commit: the order that makes a crash safe."""
        bus = self._bus
        emitted = engine.take_emitted()
        if emitted:
            out = [*out, *emitted]
        if out and engine.next_engines:
            await bus.fan_out(engine.next_engines, out)
        letters = engine.take_dead_letters()
        if letters:
            await bus.dead_letter(engine.name, letters)
        if bus.durable:
            await engine.commit()

    async def _beat_loop(self, engine: Engine) -> None:
        clock = engine.services.clock
        while True:
            await clock.sleep_until(clock.time() + engine.beat_interval)
            await self._beat(engine)

    async def _beat(self, engine: Engine) -> None:
        lock = self._locks.get(engine.name)
        async with lock if lock is not None else contextlib.nullcontext():
            await engine.beat()
            try:
                await self._forward(engine, [])
            except Exception:  # the next beat tries again; emitted events were handed on
                log.exception("engine %s: publishing after the beat failed", engine.name)

    async def stop(self, *, drain: bool = True) -> None:
        """Stop taking events; drain (or just finish what is in flight); last beat; stop.

        ``drain=False`` is for a worker of a shared queue (``watchkeeper engine``): it
        finishes and acknowledges the batches it holds and leaves the rest queued.
        """
        if self._stopped:
            return
        self._stopped = True
        self._accepting = False
        await self._bus.stop_consuming(INGRESS)
        for task in self._beats:
            task.cancel()
        for task in self._beats:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._beats.clear()
        if drain and await self._drained():
            for name in self._run:
                await self._bus.stop_consuming(name)
        else:
            for name in self._run:
                await self._bus.stop_consuming(name)
                await self._beat(self._engines[name])
        for name in self._run:
            self._engines[name].close()
        self._spill()

    async def _drained(self) -> bool:
        """Drain every queue in chain order with its last beat, within ``drain_seconds``;
        False when the time ran out first (the caller then stops the consumers)."""
        loop = asyncio.get_running_loop()
        until = None if self._drain_seconds is None else loop.time() + self._drain_seconds
        for name in self._run:
            try:
                async with asyncio.timeout_at(until):
                    await self._bus.drain(name)
            except TimeoutError:
                log.warning("stopping: the engines did not drain within %.0f s; what is "
                            "still queued is kept for the next start", self._drain_seconds)
                return False
            await self._beat(self._engines[name])
        return True

    def _spill(self) -> None:
        queued = self._bus.take_queued()
        if not queued:
            return
        if self._leftovers is None:
            log.error("stopping: %d queued events dropped (no leftovers file)",
                      sum(len(b) for batches in queued.values() for b in batches))
            return
        count = leftovers.save(self._leftovers, queued)
        log.warning("stopping: %d queued events written to %s for the next start", count,
                    self._leftovers)
