"""Work shared with the cores that are idle: cut into chunks that the calling thread and
helper threads take in turn (decision D55).

A compiled loop releases the GIL, so a second thread can run its chunks on a second
core. Unlike a team of threads that splits the work in equal parts up front (numba's
``parallel=True``: measured 2-3x slower than one thread on this 2-core machine when other
processes kept the cores busy, the whole answer waiting for a thread the system did not
run), a helper here takes a chunk only once it runs: when no core is free the calling
thread takes every chunk itself and waits for nobody, and at worst it waits for the one
chunk a helper took and was then stopped in.
"""

from __future__ import annotations

import itertools
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Final

CORES: Final = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1

_POOL_LOCK: Final = threading.Lock()
_pool: ThreadPoolExecutor | None = None


def share(work: Callable[[int, int], None], count: int, chunk: int) -> None:
    """``work(lo, hi)`` over ``[0, count)`` in chunks of ``chunk``, taken in turn by this
    thread and by helpers that get a core while it works; returns once every chunk is
    done. ``work`` must be safe to run on chunks at once (each writes its own part)."""
    chunks = -(-count // max(chunk, 1))
    if chunks < 2 or CORES < 2:
        work(0, count)
        return
    taken = itertools.count()  # next() is atomic: each chunk goes to one thread

    def take() -> None:
        while (i := next(taken)) < chunks:
            work(i * chunk, min(count, (i + 1) * chunk))

    turns = [_Turn(take) for _ in range(min(CORES, chunks) - 1)]
    pool = _helpers()
    futures = [pool.submit(turn.run) for turn in turns]
    try:
        take()
    finally:
        for turn, future in zip(turns, futures, strict=True):
            if turn.close():  # it took chunks: wait for the one it may still be in
                future.result()


class _Turn:
    """A helper's part in one :func:`share`: it starts only if the caller has not finished
    first (a helper that got no core before then does nothing when it does)."""

    def __init__(self, take: Callable[[], None]) -> None:
        self._take = take
        self._lock = threading.Lock()
        self._started = False
        self._closed = False

    def run(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._started = True
        self._take()

    def close(self) -> bool:
        """No start from now on; whether the helper started (its future then says when
        it is done)."""
        with self._lock:
            self._closed = True
            return self._started


def _helpers() -> ThreadPoolExecutor:
    """The helper threads, started at the first shared work (none at import)."""
    global _pool  # noqa: PLW0603  (one pool per process, made once)
    with _POOL_LOCK:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=CORES - 1,
                                       thread_name_prefix="wk-promql-helper")
        return _pool

