"""``Archive.read_floats`` (many float series in one trip, as PromQL reads a selector's
series), run against every backend of ``conftest.BACKENDS``: each key's run is checked
against :meth:`Archive.read` of that key, over points in chunks, in the head or log, and
rewritten out of order; ``read_float_pieces`` (each key's points apart) against
``read_floats`` at every read."""

from __future__ import annotations

import math
import random
from pathlib import Path

import numpy as np
import pytest

from tests.contract.conftest import Backend, OpenArchive
from watchkeeper.archive import Archive
from watchkeeper.archive.abc import FloatRuns
from watchkeeper.archive.backends._reader import Reader
from watchkeeper.archive.backends._store import Store
from watchkeeper.archive.backends.embedded import DB_NAME
from watchkeeper.model import Measurement, SeriesKey

T0 = 1_700_000_000.0
KEYS = [SeriesKey.make(f"web{i % 3}", "system", "cpu", {"core": str(i)}) for i in range(7)]
HIST = SeriesKey.make("web1", "esmond", "histogram-owdelay")
NOPE = SeriesKey.make("web9", "system", "cpu")


def _runs(runs: FloatRuns) -> list[tuple[list[int], list[float]] | None]:
    out: list[tuple[list[int], list[float]] | None] = []
    for i in range(len(runs)):
        ts, values = runs.run(i)
        out.append((ts.tolist(), values.tolist()) if runs.found[i] else None)
    return out


async def _expected(archive: Archive, keys: list[SeriesKey], lo_ms: int, hi_ms: int
                    ) -> list[tuple[list[int], list[float]] | None]:
    """What :meth:`Archive.read` answers for each key (None: not a float series)."""
    out: list[tuple[list[int], list[float]] | None] = []
    known = {meta.key: meta.kind for meta in (await archive.list_series())[0]}
    for key in keys:
        if known.get(key) != "float":
            out.append(None)
            continue
        points = await archive.read(key, lo_ms / 1000.0, hi_ms / 1000.0)
        out.append((np.rint(points.ts * 1000).astype(np.int64).tolist(),
                    points.values.tolist()))
    return out


async def _write(archive: Archive, rng: random.Random, rounds: int) -> None:
    """Rounds of one point per series (30 s apart, with ms), then some points rewritten
    (the same timestamps, new values) and some added between the old ones."""
    for r in range(rounds):
        await archive.write([Measurement(key=key, ts=T0 + 30 * r + 0.001 * i,
                                         value=float(r * 10 + i)) for i, key in enumerate(KEYS)])
    later = []
    for i in range(6):
        k, r = rng.randrange(4), rng.randrange(rounds)
        later.append(Measurement(key=KEYS[k], ts=T0 + 30 * r + 0.001 * k + (i % 2) * 7,
                                 value=-1.0 - i))
    await archive.write(later)


async def _read(archive: Archive, keys: list[SeriesKey], lo_ms: int, hi_ms: int
                ) -> FloatRuns:
    """read_floats' answer, after checking that read_float_pieces answers the same
    points, each key's in 1-d contiguous arrays of its own."""
    runs = await archive.read_floats(keys, lo_ms, hi_ms)
    pieces = await archive.read_float_pieces(keys, lo_ms, hi_ms)
    assert len(pieces) == len(runs)
    assert pieces.found.tolist() == runs.found.tolist()
    for i in range(len(runs)):
        ts, values = runs.run(i)
        assert pieces.ts[i].dtype == np.int64
        assert pieces.values[i].dtype == np.float64
        assert pieces.ts[i].ndim == pieces.values[i].ndim == 1
        assert pieces.ts[i].flags.c_contiguous
        assert pieces.values[i].flags.c_contiguous
        assert pieces.ts[i].tolist() == ts.tolist()
        assert pieces.values[i].view(np.uint64).tolist() == values.view(np.uint64).tolist()
    return runs


def _compare(got: FloatRuns, want: list[tuple[list[int], list[float]] | None]) -> None:
    assert got.bounds[0] == 0
    assert got.bounds[-1] == len(got.ts) == len(got.values)
    assert got.ts.dtype == np.int64
    assert got.values.dtype == np.float64
    assert _runs(got) == want


@pytest.mark.parametrize("rounds", [5, 1500])
async def test_read_floats_is_read_of_each_key(archive: Archive, rounds: int) -> None:
    """1,500 rounds put most points in chunks (the embedded archive compacts a series at
    480 points) and the rest in the head; the rewritten points overlay them."""
    rng = random.Random(rounds)
    await _write(archive, rng, rounds)
    await archive.write([Measurement(key=HIST, ts=T0, histogram={"1": 2})])
    keys = [KEYS[3], NOPE, KEYS[0], HIST, KEYS[3], *KEYS[4:]]  # KEYS[3] twice
    end_ms = int((T0 + 30 * rounds) * 1000)
    for lo_ms, hi_ms in [(int(T0 * 1000), end_ms), (int(T0 * 1000) + 30_001, end_ms - 45_000),
                         (int(T0 * 1000) + 60_002, int(T0 * 1000) + 60_002),
                         (end_ms + 1, end_ms + 10)]:
        got = await _read(archive, keys, lo_ms, hi_ms)
        _compare(got, await _expected(archive, keys, lo_ms, hi_ms))
    assert _runs(await _read(archive, [], 0, end_ms)) == []


async def test_read_floats_keeps_every_value_bit_for_bit(archive: Archive) -> None:
    values = [1.5, -0.0, math.inf, -math.inf, 5e-324, 1.7976931348623157e308]
    await archive.write([Measurement(key=KEYS[0], ts=T0 + i, value=v)
                         for i, v in enumerate(values)])
    got = await _read(archive, [KEYS[0]], int(T0 * 1000), int(T0 * 1000) + 10_000)
    assert got.values.view(np.uint64).tolist() == \
        np.array(values).view(np.uint64).tolist()
    assert got.ts.tolist() == [int(T0 * 1000) + 1000 * i for i in range(len(values))]


async def test_read_floats_from_a_second_instance(backend: Backend,
                                                  open_archive: OpenArchive) -> None:
    """An instance that did not write the points (the embedded archive's read-only
    reader; another PostgreSQL writer) reads the same runs, chunks and log alike."""
    if not backend.durable:
        pytest.skip("the memory archive has no second instance")
    async with open_archive() as writer:
        await _write(writer, random.Random(7), 1200)
        lo_ms, hi_ms = int(T0 * 1000) + 15_000, int((T0 + 30 * 1100) * 1000)
        want = await _expected(writer, KEYS, lo_ms, hi_ms)
        async with open_archive() as other:
            _compare(await _read(other, KEYS, lo_ms, hi_ms), want)
            if backend.several_writers:  # its own points join the other's
                await other.write([Measurement(key=KEYS[1], ts=T0 + 15, value=99.0)])
                want = await _expected(other, KEYS, lo_ms, hi_ms)
                _compare(await _read(writer, KEYS, lo_ms, hi_ms), want)
                _compare(await _read(other, KEYS, lo_ms, hi_ms), want)


async def test_read_floats_sees_rewrites_and_deletes_after_a_read(archive: Archive) -> None:
    """A read, then points rewritten into old chunks (merged into them once the heads fill
    again) and a delete: the next read answers the new points, not the ones read before
    (the embedded writer keeps chunks it read decoded)."""
    for r in range(1000):
        await archive.write([Measurement(key=key, ts=T0 + 30 * r + 0.001 * i, value=float(r))
                             for i, key in enumerate(KEYS)])
    lo_ms, hi_ms = int(T0 * 1000), int((T0 + 30 * 2000) * 1000)
    _compare(await _read(archive, KEYS, lo_ms, hi_ms),
             await _expected(archive, KEYS, lo_ms, hi_ms))
    await archive.write([Measurement(key=KEYS[k], ts=T0 + 30 * r + 0.001 * k, value=-5.0)
                         for k in range(4) for r in (0, 10, 500, 999)])
    for r in range(1000, 1600):  # fills the heads: out-of-order points join their chunks
        await archive.write([Measurement(key=key, ts=T0 + 30 * r + 0.001 * i, value=float(r))
                             for i, key in enumerate(KEYS)])
    got = await _read(archive, KEYS, lo_ms, hi_ms)
    _compare(got, await _expected(archive, KEYS, lo_ms, hi_ms))
    assert got.run(0)[1][[0, 10, 500, 999]].tolist() == [-5.0] * 4
    assert await archive.delete(KEYS[2], T0 + 30 * 100, T0 + 30 * 1200) == 1100
    got = await _read(archive, KEYS, lo_ms, hi_ms)
    _compare(got, await _expected(archive, KEYS, lo_ms, hi_ms))
    assert len(got.run(2)[0]) == 1600 - 1100


async def test_read_floats_near_the_newest_point_then_new_chunks(archive: Archive) -> None:
    """Reads that end a little before the newest point (as a dashboard's last step does),
    the heads flushed into new chunks between them, and a read from earlier on: each
    answers what :meth:`Archive.read` does (the embedded writer keeps such series' chunks
    as one run until they change)."""
    rounds = 0
    for more in (700, 500, 10):
        for r in range(rounds, rounds + more):
            await archive.write([Measurement(key=key, ts=T0 + 30 * r + 0.001 * i,
                                             value=float(r + i)) for i, key in enumerate(KEYS)])
        rounds += more
        newest_ms = int((T0 + 30 * (rounds - 1)) * 1000)
        for lo_ms in (int(T0 * 1000) + 600_000, int(T0 * 1000) + 300_000):
            hi_ms = newest_ms - 45_000
            _compare(await _read(archive, KEYS, lo_ms, hi_ms),
                     await _expected(archive, KEYS, lo_ms, hi_ms))
            _compare(await _read(archive, KEYS, lo_ms + 1, newest_ms),
                     await _expected(archive, KEYS, lo_ms + 1, newest_ms))


def test_read_floats_of_an_embedded_file_not_made_yet(tmp_path: Path) -> None:
    """A read-only reader of a file whose writer has not made its tables answers that no
    key is found (it does not fail on the missing tables)."""
    store = Store.open(tmp_path / DB_NAME, writer=False)
    try:
        got = Reader(store).read_floats(KEYS[:2], 0, 10**12)
    finally:
        store.close()
    assert got.found.tolist() == [False, False]
    assert got.bounds.tolist() == [0, 0, 0]
