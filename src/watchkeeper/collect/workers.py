"""Worker threads for plain-``def`` polls, where a stuck poll never takes capacity from others.

A thread cannot be interrupted: a sync poll that blocks past its timeout keeps its thread
until the plugin lets go. ``asyncio.to_thread`` would keep counting that thread as part
of its pool, so a few stuck polls (each slot of a stuck job grabs another thread) starve
every other sync poll in the process, and the pool's shutdown at interpreter exit waits
for them. Here instead (D-number in docs/decisions.md):

* a poll whose caller gave up (its timeout cancelled the wait) is **abandoned**: its
  thread leaves the pool's count at once, a new worker takes its place, and the old
  thread ends as soon as the plugin returns;
* a job whose previous poll is still stuck is **refused** without a thread (so a stuck
  job holds at most one), and a collector with ``max_stuck`` polls stuck is refused
  until one returns: every collector has its own budget of stuck threads;
* every worker is a daemon thread and nothing joins them, so a stuck plugin never delays
  the process' exit.

Work is handed over through a queue; results come back to the caller's event loop with
``call_soon_threadsafe``. The pool is shared by every loop of the process
(:func:`default_workers`), created on first use.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import functools
import itertools
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

DEFAULT_SIZE = 32
"""Healthy worker threads of the shared pool: sync polls running at once."""
DEFAULT_MAX_STUCK = 8
"""Polls of one collector that may be stuck in abandoned threads before it is refused."""


class _Work:
    __slots__ = ("args", "fn", "future", "job", "loop", "owner", "started", "started_event",
                 "state")

    QUEUED, RUNNING, DONE, CANCELLED, ABANDONED = range(5)

    def __init__(self, fn: Callable[..., Any], args: tuple[Any, ...], *, owner: int, job: str,
                 loop: asyncio.AbstractEventLoop, future: asyncio.Future[Any],
                 started: threading.Event | None = None) -> None:
        self.fn = fn
        self.args = args
        self.owner = owner
        self.job = job
        self.loop = loop
        self.future = future
        self.state = _Work.QUEUED
        self.started = 0.0
        self.started_event = started


class PollWorkers:
    """A pool of daemon threads that replaces every thread a timed-out poll keeps."""

    def __init__(self, *, size: int = DEFAULT_SIZE, max_stuck: int = DEFAULT_MAX_STUCK) -> None:
        if size < 1 or max_stuck < 1:
            raise ValueError("a worker pool has at least one thread and one stuck slot")
        self._size = size
        self._max_stuck = max_stuck
        self._queue: queue.SimpleQueue[_Work] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._workers = 0  # healthy threads: idle or running work someone still waits for
        self._idle = 0
        self._names = itertools.count(1)
        self._stuck_jobs: dict[tuple[int, str], float] = {}  # (owner, job) -> started
        self._stuck_per_owner: dict[int, int] = {}

    # ---------------------------------------------------------------- the caller's side

    def refusal(self, owner: object, job: str, *, name: str = "") -> str | None:
        """Why a new poll of ``job`` (of collector ``owner``) must not start now, or None."""
        key = id(owner)
        with self._lock:
            since = self._stuck_jobs.get((key, job))
            stuck = self._stuck_per_owner.get(key, 0)
        if since is not None:
            return (f"its previous poll is still stuck in a worker thread after "
                    f"{time.monotonic() - since:.0f}s; not started again until it returns")
        if stuck >= self._max_stuck:
            return (f"collector {name or key} has {stuck} polls stuck in worker threads "
                    f"(its budget); not started until one returns")
        return None

    async def run(self, owner: object, job: str, fn: Callable[..., Any], *args: Any,
                  started: threading.Event | None = None) -> Any:
        """``fn(*args)`` in a worker thread; cancelling the wait abandons a running call.

        ``started`` is set when a thread takes the call: a wait cancelled before that
        was watchkeeper's (every thread busy), not the plugin's."""
        loop = asyncio.get_running_loop()
        work = _Work(fn, args, owner=id(owner), job=job, loop=loop, future=loop.create_future(),
                     started=started)
        self._queue.put(work)
        self._spawn_if_needed()
        try:
            return await work.future
        except asyncio.CancelledError:
            self._abandon(work)
            raise

    @property
    def size(self) -> int:
        """Healthy threads the pool keeps at most."""
        return self._size

    def stats(self) -> tuple[int, int]:
        """(healthy threads, threads stuck in abandoned polls)."""
        with self._lock:
            return self._workers, sum(self._stuck_per_owner.values())

    def _abandon(self, work: _Work) -> None:
        with self._lock:
            if work.state == _Work.QUEUED:
                work.state = _Work.CANCELLED  # a worker will skip it
                return
            if work.state != _Work.RUNNING:
                return
            work.state = _Work.ABANDONED
            self._workers -= 1  # this thread no longer counts; a new one takes its place
            self._stuck_jobs[work.owner, work.job] = work.started
            self._stuck_per_owner[work.owner] = self._stuck_per_owner.get(work.owner, 0) + 1
        self._spawn_if_needed()

    def _spawn_if_needed(self) -> None:
        with self._lock:
            if self._idle >= self._queue.qsize() or self._workers >= self._size:
                return
            self._workers += 1
            self._idle += 1
        name = f"watchkeeper-poll-{next(self._names)}"
        threading.Thread(target=self._worker, name=name, daemon=True).start()

    # ---------------------------------------------------------------- the worker's side

    def _worker(self) -> None:
        while True:
            work = self._queue.get()
            with self._lock:
                if work.state == _Work.CANCELLED:
                    continue
                self._idle -= 1
                work.state = _Work.RUNNING
                work.started = time.monotonic()
            if work.started_event is not None:
                work.started_event.set()
            try:
                outcome: tuple[bool, Any] = (True, work.fn(*work.args))
            except BaseException as exc:  # noqa: BLE001 - handed to the caller, whatever it is
                outcome = (False, exc)
            with self._lock:
                abandoned = work.state == _Work.ABANDONED
                if abandoned:
                    self._release(work)
                else:
                    work.state = _Work.DONE
                    self._idle += 1
            if abandoned:
                return  # a replacement already took this thread's place
            _deliver(work, outcome)

    def _release(self, work: _Work) -> None:
        self._stuck_jobs.pop((work.owner, work.job), None)
        left = self._stuck_per_owner.get(work.owner, 0) - 1
        if left > 0:
            self._stuck_per_owner[work.owner] = left
        else:
            self._stuck_per_owner.pop(work.owner, None)


def _deliver(work: _Work, outcome: tuple[bool, Any]) -> None:
    def settle() -> None:
        if work.future.done():
            return
        ok, value = outcome
        if ok:
            work.future.set_result(value)
        else:
            work.future.set_exception(value)

    with contextlib.suppress(RuntimeError):  # the caller's loop closed meanwhile
        work.loop.call_soon_threadsafe(settle)


_default: PollWorkers | None = None
_default_lock = threading.Lock()


def default_workers() -> PollWorkers:
    """The process' shared pool, created on first use."""
    global _default  # noqa: PLW0603 - one pool per process, made lazily (no work at import)
    with _default_lock:
        if _default is None:
            _default = PollWorkers()
        return _default


class DaemonExecutor(concurrent.futures.ThreadPoolExecutor):
    """An event loop's default executor whose threads never delay the process' exit.

    ``asyncio.to_thread`` and ``run_in_executor(None, ...)`` (a plugin's own blocking call,
    a resolver lookup) use the loop's default executor, whose threads ``asyncio.run`` and
    the interpreter join at exit: one call stuck there held ``watchkeeper collect`` up for
    as long as it stayed stuck. Here the threads are daemons and :meth:`shutdown` never
    waits; work queued behind ``max_workers`` busy threads waits its turn, as before. (A
    ThreadPoolExecutor only because ``loop.set_default_executor`` accepts nothing else:
    every method it has is replaced.)
    """

    def __init__(self, max_workers: int = DEFAULT_SIZE) -> None:
        super().__init__(max_workers)  # starts nothing: threads come with work
        self._max = max_workers
        self._queue: queue.SimpleQueue[tuple[concurrent.futures.Future[Any],
                                             Callable[[], Any]] | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._count = 0
        self._idle = 0
        self._closed = False

    def submit(self, fn: Callable[..., Any], /, *args: Any,
               **kwargs: Any) -> concurrent.futures.Future[Any]:
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()
        with self._lock:
            if self._closed:
                raise RuntimeError("cannot schedule new futures after shutdown")
            self._queue.put((future, functools.partial(fn, *args, **kwargs)))
            spawn = self._idle == 0 and self._count < self._max
            if spawn:
                self._count += 1
            else:
                self._idle -= 1  # an idle thread will take it
        if spawn:
            threading.Thread(target=self._worker, name="watchkeeper-executor",
                             daemon=True).start()
        return future

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Refuse new work and let the threads end when idle; never waits for them."""
        with self._lock:
            self._closed = True
            for _ in range(self._count):
                self._queue.put(None)

    def _worker(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            future, call = item
            if future.set_running_or_notify_cancel():
                try:
                    future.set_result(call())
                except BaseException as exc:  # noqa: BLE001 - handed to the waiter
                    future.set_exception(exc)
            with self._lock:
                self._idle += 1
