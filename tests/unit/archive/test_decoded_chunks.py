"""The embedded writer's cache of decoded float chunks: a byte budget, least recently read
dropped first, entries forgotten when their chunk is replaced, read-only copies."""

from __future__ import annotations

import numpy as np
import pytest

from watchkeeper.archive.backends._decoded import DecodedChunks


def _chunk(n: int, value: float) -> tuple[np.ndarray, np.ndarray]:
    return np.arange(n, dtype=np.int64), np.full(n, value)


def test_the_least_recently_read_go_first_past_the_budget() -> None:
    one = 100 * 16 + 200  # 100 points and the entry
    cache = DecodedChunks(3 * one)
    for start in range(3):
        cache.put((1, start), *_chunk(100, float(start)))
    assert cache.get((1, 0)) is not None  # read again: now the most recent
    cache.put((1, 3), *_chunk(100, 3.0))
    assert cache.get((1, 1)) is None
    assert [cache.get((1, s)) is not None for s in (0, 2, 3)] == [True, True, True]
    assert cache.size == 3 * one
    cache.put((2, 0), *_chunk(1000, 9.0))  # larger than the budget: not kept
    assert cache.get((2, 0)) is None
    assert len(cache) == 3


def test_forgotten_chunks_are_gone_and_kept_ones_cannot_be_changed() -> None:
    cache = DecodedChunks(1 << 20)
    ts, values = _chunk(10, 1.0)
    cache.put((5, 0), ts, values)
    values[:] = 2.0  # the caller's array, not the kept copy
    found = cache.get((5, 0))
    assert found is not None
    assert found[1].tolist() == [1.0] * 10
    with pytest.raises(ValueError, match="read-only"):
        found[1][0] = 3.0
    cache.forget([(5, 0), (6, 0)])
    assert cache.get((5, 0)) is None
    assert cache.size == 0


def test_a_run_answers_reads_from_its_start_until_its_series_changes() -> None:
    cache = DecodedChunks(1 << 20)
    cache.put((5, 0), *_chunk(10, 1.0))
    cache.put((5, 10), *_chunk(10, 2.0))
    ts, values = np.arange(20, dtype=np.int64), np.arange(20.0)
    cache.keep_run(5, 3, ts, values, [(5, 0), (5, 10)])
    assert cache.get((5, 0)) is None  # its chunks are in the run now
    assert cache.runs([5], 2)[0] is None  # from before the run's start: the run may miss some
    found = cache.runs([5], 3)[0]
    assert found is not None
    assert found[1].tolist() == list(range(20))
    with pytest.raises(ValueError, match="read-only"):
        found[1][0] = 3.0
    assert cache.runs([6], 3)[0] is None
    cache.forget([], series=[5])  # the series got a new chunk
    assert cache.runs([5], 3)[0] is None
    assert cache.size == 0
    cache.keep_run(5, 0, np.arange(4, dtype=np.int64), np.zeros(4), [])
    cache.forget([(5, 99)])  # one of its chunks replaced
    assert cache.runs([5], 0)[0] is None


def test_a_run_past_the_budget_goes_like_a_chunk() -> None:
    one = 100 * 16 + 200
    cache = DecodedChunks(2 * one)
    cache.keep_run(1, 0, *_chunk(100, 1.0), [])
    cache.put((2, 0), *_chunk(100, 2.0))
    cache.put((3, 0), *_chunk(100, 3.0))  # the run was read least recently
    assert cache.runs([1], 0)[0] is None
    cache.keep_run(1, 0, *_chunk(1000, 1.0), [])  # larger than the budget: not kept
    assert cache.runs([1], 0)[0] is None
    assert cache.size == 2 * one
