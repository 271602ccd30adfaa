"""The in-memory head: latest write wins per timestamp, through merges, takes and drops."""

from __future__ import annotations

import random

import numpy as np
import pytest

from watchkeeper.archive.backends._head import FANOUT, NO_SEQ, Head, latest


def ids(*values: int) -> np.ndarray:
    return np.array(values, dtype=np.int32)


def ms(*values: int) -> np.ndarray:
    return np.array(values, dtype=np.int64)


def test_points_sorted_with_the_latest_write_per_timestamp() -> None:
    head = Head(np.float64)
    head.append(1, ids(7, 3, 7), ms(20, 5, 10), np.array([1.0, 2.0, 3.0]))
    head.append(2, ids(7), ms(20), np.array([4.0]))

    ts, values = head.points(7)

    assert (ts.tolist(), values.tolist()) == ([10, 20], [3.0, 4.0])
    assert head.points(3)[1].tolist() == [2.0]
    assert head.points(99)[0].tolist() == []
    assert (len(head), head.counts[7], head.counts[3]) == (4, 3, 1)


def test_take_and_drop_some_series() -> None:
    """take() groups without changing the head; drop() forgets only the given series."""
    head = Head(np.float64)
    head.append(1, ids(1, 2, 3), ms(10, 10, 10), np.array([1.0, 2.0, 3.0]))
    head.append(2, ids(3, 1), ms(5, 10), np.array([30.0, 10.0]))

    grouped = head.take(ids(1, 3, 42))
    head.drop(ids(1, 3, 42))

    assert grouped.sids.tolist() == [1, 3]
    assert [grouped.series(i)[1].tolist() for i in range(2)] == [[10], [5, 10]]
    assert [grouped.series(i)[2].tolist() for i in range(2)] == [[10.0], [30.0, 3.0]]
    assert (head.points(1)[0].tolist(), head.points(2)[1].tolist()) == ([], [2.0])
    assert (len(head), head.counts[1], head.counts[2]) == (1, 0, 1)


def test_min_seq_is_the_oldest_row_still_needed() -> None:
    head = Head(object)
    assert head.min_seq() == NO_SEQ
    head.append(4, ids(1), ms(1), np.array([{"a": 1}], dtype=object))
    head.append(5, ids(2), ms(1), np.array([{"b": 1}], dtype=object))
    head.append(6, ids(1), ms(2), np.array([{"c": 1}], dtype=object))

    assert (head.min_seq(), head.min_seq(ids(1)), head.min_seq(ids(1, 2))) == (4, 5, NO_SEQ)
    head.drop(ids(1))
    assert head.min_seq() == 5
    head.drop()
    assert (head.min_seq(), len(head), head.take().sids.tolist()) == (NO_SEQ, 0, [])


@pytest.mark.parametrize("seed", range(5))
def test_many_small_writes_match_a_model(seed: int) -> None:
    """Hundreds of appends (merging segments), with partial flushes, agree with a dict."""
    rng = random.Random(seed)
    head = Head(np.float64)
    model: dict[int, dict[int, float]] = {}
    for seq in range(1, 400):
        n = rng.choice([1, 1, 2, 5, 30])
        sids = [rng.randrange(6) for _ in range(n)]
        ts = [rng.randrange(50) for _ in range(n)]
        values = [float(rng.randrange(100)) for _ in range(n)]
        head.append(seq, ids(*sids), ms(*ts), np.array(values))
        for sid, t, v in zip(sids, ts, values, strict=True):
            model.setdefault(sid, {})[t] = v
        if rng.random() < 0.05:
            flushed = ids(*rng.sample(range(6), 2))
            grouped = head.take(flushed)
            for i in range(len(grouped.sids)):
                sid, got_ts, got_values = grouped.series(i)
                got = dict(zip(got_ts.tolist(), got_values.tolist(), strict=True))
                assert got == model.pop(sid)
            head.drop(flushed)
    for sid in range(6):
        ts_out, values_out = head.points(sid)
        assert list(zip(ts_out.tolist(), values_out.tolist(), strict=True)) == sorted(
            model.get(sid, {}).items()
        )
    everything = head.take()
    assert everything.sids.tolist() == sorted(model)


def test_latest_keeps_the_last_of_equal_timestamps() -> None:
    ts, values = latest(ms(3, 1, 3, 2, 1), np.array([1.0, 2.0, 3.0, 4.0, 5.0]))

    assert (ts.tolist(), values.tolist()) == ([1, 2, 3], [5.0, 4.0, 3.0])


def test_many_writes_merge_size_tiered_and_lose_nothing() -> None:
    """After 200 writes a series reads back whole and latest-wins, the head keeps few
    segments, and dropping some series keeps the others' points."""
    head = Head(np.float64)
    rng = random.Random(7)
    expected: dict[int, dict[int, float]] = {}
    for seq in range(1, 201):
        sids = [rng.randrange(20) for _ in range(rng.randrange(1, 30))]
        stamps = [rng.randrange(400) for _ in sids]  # rewrites are frequent
        values = [rng.random() for _ in sids]
        head.append(seq, ids(*sids), ms(*stamps), np.array(values))
        for sid, stamp, value in zip(sids, stamps, values, strict=True):
            expected.setdefault(sid, {})[stamp] = value

    def check(sid: int) -> None:
        ts, values = head.points(sid)
        want = sorted(expected.get(sid, {}).items())
        assert list(zip(ts.tolist(), values.tolist(), strict=True)) == want

    for sid in range(21):
        check(sid)
    # 200 writes: at most FANOUT - 1 segments per level, three levels (8, 64, 512).
    assert len(head._segments) <= (FANOUT - 1) * 3
    head.drop(ids(*range(0, 20, 2)))
    for sid in range(1, 20, 2):
        check(sid)
    assert head.points(4)[0].tolist() == []
    head.append(201, ids(4), ms(1), np.array([0.5]))  # levels still line up after a drop
    assert head.points(4)[1].tolist() == [0.5]


@pytest.mark.parametrize("dropped", [
    range(40),  # the first series of every segment: what is left is a view
    range(60, 100),  # the last ones: also a view
    range(30, 50),  # in the middle: copied
    [0, 3, 99],  # scattered: copied
    [5, 1000],  # one id beyond every series
])
def test_drop_keeps_the_other_series_whichever_ids_go(dropped: range | list[int]) -> None:
    """Dropping a slice of ids gives the points a one-by-one model keeps, whether the
    rest of a segment is a view (the ids go first or last) or a copy."""
    head = Head(np.float64)
    model: dict[int, list[tuple[int, float]]] = {}
    rng = random.Random(1)
    for seq in range(1, 12):  # several segments, some merged
        sids = ids(*rng.sample(range(100), 60))
        ts = ms(*(seq * 10 for _ in range(60)))
        values = np.array([float(seq * 1000 + s) for s in sids.tolist()])
        head.append(seq, sids, ts, values)
        for sid, t, v in zip(sids.tolist(), ts.tolist(), values.tolist(), strict=True):
            model.setdefault(sid, []).append((t, v))
    head.drop(ids(*dropped))
    for sid in range(100):
        ts, values = head.points(sid)
        expected = [] if sid in dropped else model.get(sid, [])
        assert list(zip(ts.tolist(), values.tolist(), strict=True)) == expected
    assert len(head) == sum(len(p) for sid, p in model.items() if sid not in dropped)


def test_dropping_the_first_ids_copies_no_segment() -> None:
    """A compaction's slices take ascending ids: what each leaves of a segment is a view
    of it, not a copy of the rest of the head."""
    head = Head(np.float64)
    head.append(1, ids(*range(1000)), ms(*range(1000)), np.arange(1000.0))
    (before,) = head._segments

    head.drop(ids(*range(300)))

    (after,) = head._segments
    assert np.shares_memory(after.ts, before.ts)
    assert after.sids[0] == 300
    assert len(head) == 700
