"""Letting go of old model versions a little at a time, off the event loop.

CPython frees an object graph the moment its last reference goes, in one C-level cascade
that holds the interpreter: dropping the last reference to a 100,000-node model stalls
the dropping thread (the event loop, if it swapped the model) for hundreds of
milliseconds. :func:`release` hands versions to a background thread that drops them one
trie node at a time, so the loop can run between the pieces. Structure still shared with
live versions is untouched: only references are dropped, nothing is ever mutated.
"""

from __future__ import annotations

import sys
import threading
import time
from collections import deque
from typing import Any

from watchkeeper.inventory.graph import Graph

_PERIOD = 0.05  # seconds between the releaser's looks at its queue

_pending: deque[Graph] = deque()
_started = threading.Lock()
_thread: threading.Thread | None = None
_idle = threading.Event()  # set while nothing is queued or being dropped
_idle.set()


def release(graph: Graph) -> None:
    """Drop ``graph`` (the caller's last use of it) from the background releaser."""
    global _thread  # noqa: PLW0603 - one releaser per process, started on first use
    _idle.clear()
    _pending.append(graph)
    if _thread is None:
        with _started:
            if _thread is None:
                _thread = threading.Thread(target=_run, name="inventory-release", daemon=True)
                _thread.start()


def drop(graph: Graph) -> None:
    """Drop ``graph`` here, a trie node at a time (what the releaser does)."""
    pending: list[Any] = list(graph.roots())
    del graph
    while pending:
        node = pending.pop()
        # A branch only we hold: take its children one by one instead of all at once.
        # (getrefcount sees `node` and its own argument.)
        if type(node) is list and sys.getrefcount(node) == 2:
            pending.extend(node)
        del node


def wait_idle(timeout: float | None = None) -> bool:
    """Wait until every released model has been dropped (benchmarks and tests use it to
    keep the releaser's work out of what they time); False on timeout."""
    return _idle.wait(timeout)


def _run() -> None:
    while True:
        while _pending:
            drop(_pending.popleft())
        if not _pending:  # a release() between the loop's check and here clears it again
            _idle.set()
            if _pending:
                _idle.clear()
        time.sleep(_PERIOD)
