"""Work shared between the calling thread and the helper threads that get a core: every
chunk done once, nobody waited for when no helper runs, errors raised to the caller."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from watchkeeper.archive.promql import kernels, sharing

pytestmark = pytest.mark.skipif(sharing.CORES < 2, reason="one core: nothing to share")


def test_every_chunk_is_done_once_by_someone() -> None:
    for count, chunk in ((0, 4), (1, 4), (10, 3), (100, 7), (64, 64), (65, 64)):
        seen = np.zeros(count, dtype=np.int64)
        lock = threading.Lock()

        def work(lo: int, hi: int, seen: np.ndarray = seen, lock: threading.Lock = lock
                 ) -> None:
            with lock:
                seen[lo:hi] += 1

        sharing.share(work, count, chunk)
        assert seen.tolist() == [1] * count


def test_a_helper_with_no_core_holds_up_nothing() -> None:
    """Helpers all busy elsewhere (as when other work has the cores): the caller takes
    every chunk itself and returns without waiting for them."""
    release = threading.Event()
    pool = sharing._helpers()
    blocked = [pool.submit(release.wait) for _ in range(sharing.CORES - 1)]
    try:
        caller = threading.get_ident()
        threads: set[int] = set()
        sharing.share(lambda lo, hi: threads.add(threading.get_ident()), 50, 5)
        assert threads == {caller}
    finally:
        release.set()
        for future in blocked:
            future.result()


def test_an_error_in_any_chunk_reaches_the_caller() -> None:
    def work(lo: int, hi: int) -> None:
        if lo <= 42 < hi:
            raise ValueError("chunk 42")

    for _ in range(20):  # whichever thread takes the chunk
        with pytest.raises(ValueError, match="chunk 42"):
            sharing.share(work, 100, 3)


def test_rate_shared_is_the_one_thread_answer_bit_for_bit(
        monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(5)
    lengths = rng.integers(0, 400, 300)  # empty series and long ones, in chunks of 7
    ts = np.concatenate([np.sort(rng.choice(np.arange(5000, dtype=np.int64) * 9, n,
                                            replace=False)) for n in lengths])
    values = rng.random(len(ts)) * 10 + np.cumsum(rng.random(len(ts)) < 0.1) * 40.0
    bounds = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=bounds[1:])
    ref = np.arange(0, 45_000, 200, dtype=np.int64)
    for counter in (True, False):
        monkeypatch.setattr(kernels, "_CHUNK_WINDOWS", 7 * len(ref))
        shared, shared_ok = kernels.extrapolated(ts, values, bounds, ref=ref, range_ms=3000,
                                                 counter=counter, per_second=counter)
        monkeypatch.setattr(kernels, "_CHUNK_WINDOWS", 10**18)
        alone, alone_ok = kernels.extrapolated(ts, values, bounds, ref=ref, range_ms=3000,
                                               counter=counter, per_second=counter)
        assert shared_ok.tolist() == alone_ok.tolist()
        assert alone_ok.sum() > len(ref)
        assert np.array_equal(shared, alone, equal_nan=True)
