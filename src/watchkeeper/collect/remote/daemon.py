"""The remote collector daemon: pull the job configuration, poll, push results in batches.

Three loops share one scheduler:

* **refresh**: ``GET /api/v1/collect/config`` with ``If-None-Match`` every ``refresh``
  seconds (the server says how often). A changed configuration rebuilds the jobs and
  reconciles the scheduler: new jobs start, removed ones stop, changed ones keep their
  phase; unchanged collectors keep their instances (and state). Unreachable server, or
  a configuration that does not validate here: keep running the last one. The last good
  configuration is cached next to the spool, so a restart while the server is down
  polls at once.
* **poll**: the scheduler's sink writes each outcome into the on-disk spool before it
  returns (results arriving together share one transaction), so a result is on disk
  before any attempt to send it, and a kill -9 at any moment loses none that finished.
* **send**: every ``flush_interval`` the spool is delivered oldest first in batches of
  ``batch_size``; a batch leaves the spool only once the server acknowledged it. While
  the server is unreachable sending backs off (``retry``) and the spool grows up to its
  bound, beyond which the oldest results are dropped, counted, and reported in every
  batch.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path
from typing import Protocol

import msgspec

from watchkeeper.clock import Clock
from watchkeeper.collect.build import CollectorPool, close_collectors
from watchkeeper.collect.errorlog import ErrorLog
from watchkeeper.collect.remote.client import ServerUnavailable
from watchkeeper.collect.remote.convert import config_from_wire, result_to_wire
from watchkeeper.collect.remote.spool import Spool
from watchkeeper.collect.scheduler import PollOutcome, Scheduler
from watchkeeper.errors import ConfigError
from watchkeeper.telemetry import SelfMetrics
from watchkeeper.wire import CollectAck, CollectBatch, CollectConfig, CollectResult

log = logging.getLogger(__name__)


class Server(Protocol):
    """What the daemon needs of a server (``RemoteServer``, or a fake in tests)."""

    async def fetch_config(self, etag: str | None) -> tuple[CollectConfig | None, str | None]:
        ...

    async def send(self, batch: CollectBatch) -> CollectAck: ...


class _Cached(msgspec.Struct, frozen=True):
    config: CollectConfig
    etag: str | None


class RemoteStats(msgspec.Struct, frozen=True, kw_only=True):
    jobs: int
    pending: int  # encoded, not yet in the spool
    spooled: int  # in the spool, not yet acknowledged
    sent: int
    dropped: int
    server_reachable: bool
    config_version: str | None


class RemoteCollector:
    """Runs the jobs a server hands out and delivers their results to it, in order."""

    def __init__(
        self,
        server: Server,
        spool: Spool,
        *,
        name: str,
        clock: Clock,
        metrics: SelfMetrics,
        cache: Path | None = None,
        batch_size: int = 500,
        flush_interval: float = 1.0,
        retry: tuple[float, float] = (1.0, 30.0),
        max_concurrency: int = 512,
        per_device_concurrency: int = 1,
        jitter: float = 0.0,
    ) -> None:
        self._server = server
        self._spool = spool
        self._name = name
        self._clock = clock
        self._cache = cache
        self._batch_size = batch_size
        self._flush_interval = flush_interval
        self._retry = retry
        self.scheduler = Scheduler(
            clock=clock, metrics=metrics, sink=self._collect, max_concurrency=max_concurrency,
            per_device_concurrency=per_device_concurrency, jitter=jitter,
        )
        self._pool = CollectorPool()
        self._errors = ErrorLog(clock)
        self._closing: set[asyncio.Task[None]] = set()  # dropped collectors being closed
        self._pending: list[bytes] = []  # encoded, waiting for the spool's next transaction
        self._flushing = asyncio.Lock()
        self._jobs = 0
        self._sent = 0
        self._reachable = False
        self._outage = False  # unreachable since it was last reached
        self.config: CollectConfig | None = None
        self._etag: str | None = None

    # ---------------------------------------------------------------- running

    async def run(self, stop: asyncio.Event) -> None:
        """Poll and deliver until ``stop`` is set; then flush what is pending to the spool."""
        await asyncio.to_thread(self._spool.open)
        try:
            self._load_cache()
            tasks = [asyncio.create_task(coro, name=name) for name, coro in (
                ("scheduler", self.scheduler.run()), ("refresh", self._refresh_loop()),
                ("send", self._send_loop()))]
            try:
                await stop.wait()
            finally:
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
                await self.flush()
                with contextlib.suppress(ServerUnavailable):  # a last try; the spool keeps it
                    async with asyncio.timeout(2.0):
                        await self.deliver()
        finally:
            await asyncio.gather(*self._closing, return_exceptions=True)
            await close_collectors(self._pool.collectors())
            await asyncio.to_thread(self._spool.close)

    def stats(self) -> RemoteStats:
        return RemoteStats(
            jobs=self._jobs, pending=len(self._pending), spooled=len(self._spool),
            sent=self._sent, dropped=self._spool.dropped, server_reachable=self._reachable,
            config_version=self.config.version if self.config else None,
        )

    # ---------------------------------------------------------------- configuration

    async def refresh(self) -> bool:
        """Ask the server for the configuration; apply it if changed. False if unreachable."""
        try:
            config, etag = await self._server.fetch_config(self._etag)
        except ServerUnavailable as exc:
            self._unreachable(exc)
            return False
        self._back()
        changed = config is not None and (self.config is None
                                          or config.version != self.config.version)
        if changed and config is not None and self.apply(config):
            self._etag = etag
            self._save_cache()
        return True

    def apply(self, config: CollectConfig) -> bool:
        """Rebuild and reconcile the jobs; False (and the old jobs kept) if it does not validate."""
        devices, specs = config_from_wire(config)
        try:
            jobs, dropped = self._pool.build(specs, devices)
            self.scheduler.reconcile(jobs)
        except ConfigError as exc:
            log.error("configuration %s refused, keeping %s: %s", config.version,
                      self.config.version if self.config else "none", exc)
            return False
        if dropped:
            task = asyncio.get_running_loop().create_task(close_collectors(dropped))
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)
        log.info("configuration %s: %d jobs", config.version, len(jobs))
        self.config = config
        self._jobs = len(jobs)
        return True

    async def _refresh_loop(self) -> None:
        failures = 0
        while True:
            if await self.refresh():
                failures = 0
                delay = self.config.refresh if self.config else self._retry[0]
            else:
                failures += 1
                delay = _backoff(self._retry, failures)
            await self._clock.sleep_until(self._clock.time() + max(delay, 0.05))

    def _load_cache(self) -> None:
        if self._cache is None or not self._cache.exists():
            return
        try:
            cached = msgspec.json.decode(self._cache.read_bytes(), type=_Cached)
        except (OSError, msgspec.DecodeError) as exc:
            log.warning("ignoring the cached configuration %s: %s", self._cache, exc)
            return
        if self.apply(cached.config):
            self._etag = cached.etag
            log.info("running the cached configuration %s until the server answers",
                     cached.config.version)

    def _save_cache(self) -> None:
        if self._cache is None or self.config is None:
            return
        tmp = self._cache.with_suffix(".tmp")
        tmp.write_bytes(msgspec.json.encode(_Cached(self.config, self._etag)))
        tmp.replace(self._cache)

    # ---------------------------------------------------------------- results

    async def _collect(self, outcome: PollOutcome) -> None:
        self._errors.note(outcome)
        self._pending.append(msgspec.json.encode(result_to_wire(outcome)))
        await self.flush()  # on disk before the poll counts as done

    async def flush(self) -> None:
        """Move pending results into the spool (one transaction).

        Callers queue up on a lock: whoever holds it commits everything pending, so results
        arriving while a transaction runs share the next one (a group commit).
        """
        async with self._flushing:
            pending, self._pending = self._pending, []
            if pending:
                dropped = await asyncio.to_thread(self._spool.append, pending)
                if dropped:
                    log.warning("spool full: dropped the %d oldest results (%d in all)",
                                dropped, self._spool.dropped)

    async def deliver(self) -> int:
        """Send the spool oldest first until it is empty; raises ServerUnavailable."""
        delivered = 0
        while True:
            rows = await asyncio.to_thread(self._spool.peek, self._batch_size)
            if not rows:
                return delivered
            batch = CollectBatch(
                collector=f"{self._name}/{self._spool.epoch}", seq=rows[-1][0],
                dropped=self._spool.dropped,
                results=[msgspec.json.decode(body, type=CollectResult) for _, body in rows],
            )
            try:
                await self._server.send(batch)
            except ServerUnavailable as exc:
                self._unreachable(exc)
                raise
            self._back()
            await asyncio.to_thread(self._spool.remove_through, batch.seq)
            delivered += len(rows)
            self._sent += len(rows)

    async def _send_loop(self) -> None:
        failures = 0
        while True:
            delay = self._flush_interval
            await self.flush()
            try:
                await self.deliver()
                failures = 0
            except ServerUnavailable:
                failures += 1
                delay = max(delay, _backoff(self._retry, failures))
            await self._clock.sleep_until(self._clock.time() + delay)

    def _unreachable(self, exc: Exception) -> None:
        if self._reachable or self.config is None:
            log.warning("server unreachable, spooling results (%d waiting): %s",
                        len(self._spool) + len(self._pending), exc)
        self._reachable = False
        self._outage = True

    def _back(self) -> None:
        if self._outage:
            log.info("server reachable again; delivering %d spooled results",
                     len(self._spool) + len(self._pending))
        self._reachable = True
        self._outage = False


def _backoff(retry: tuple[float, float], failures: int) -> float:
    base, cap = retry
    return float(min(base * 2 ** min(failures - 1, 30), cap))

