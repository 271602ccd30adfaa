"""A flush of many float series in one pass (_flushmany) makes the chunks, byte for byte,
that the series-at-a-time Flush makes, and the archive reads the same points back."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from watchkeeper.archive.abc import Columns
from watchkeeper.archive.backends import _writer as _writer_module
from watchkeeper.archive.backends._chunks import ChunkColumns, ChunkRow, Flush, Tail
from watchkeeper.archive.backends._flushmany import flush_floats, in_order, subset
from watchkeeper.archive.backends._head import Grouped, grouped
from watchkeeper.archive.backends._store import Store
from watchkeeper.archive.backends._tails import TailArrays
from watchkeeper.archive.backends._writer import Writer
from watchkeeper.archive.codec import decode_floats_ms, encode_float_chunks, encode_floats_ms
from watchkeeper.model import SeriesKey

CHUNK = 16
STALE = np.array([0x7FF0000000000002], dtype=np.uint64).view(np.float64)[0]  # Prometheus'
T0_MS = 1_700_000_000_000
CORPUS_DIGEST = "03ddbf95404d39661eaa592e827420341a9c19f39748bb0bb27d8f080355886f"

Floats = npt.NDArray[np.float64]


def _values(rng: np.random.Generator, shape: int, n: int) -> Floats:
    """Series values of one of several shapes (counters, gauges, noise, NaNs...)."""
    if shape == 0:  # an integer counter, with a reset
        values = np.cumsum(rng.integers(0, 2_000_000, n)).astype(np.float64) + 1e9
        values[n // 2:] -= values[n // 2]
        return values
    if shape == 1:  # a gauge with two decimals
        return np.round(rng.uniform(0, 100, n), 2)
    if shape == 2:  # full-precision noise
        return rng.normal(0, 1, n)
    if shape == 3:  # NaNs and stale markers among small integers
        values = rng.integers(-5, 5, n).astype(np.float64)
        values[rng.random(n) < 0.3] = np.nan
        values[rng.random(n) < 0.2] = STALE
        return values
    if shape == 4:  # a constant, -0.0 and infinities
        values = np.full(n, 7.0)
        values[rng.random(n) < 0.2] = -0.0
        values[rng.random(n) < 0.1] = np.inf
        return values
    return rng.integers(-(2**40), 2**40, n).astype(np.float64)  # wide integers


def _timestamps(rng: np.random.Generator, first: int, n: int) -> npt.NDArray[np.int64]:
    """Ascending ms: a regular grid with jitter, or irregular gaps."""
    if rng.random() < 0.5:
        return first + np.arange(n) * 10_000 + rng.integers(-20, 21, n)
    return first + np.cumsum(rng.integers(1, 100_000, n))


def _case(seed: int, series: int) -> tuple[Grouped, TailArrays, list[list[ChunkRow]]]:
    """New points of ``series`` float series, each with no chunk, a full last chunk or a
    partial one (stored as the encoder stores it)."""
    rng = np.random.default_rng(seed)
    sids, ts_parts, value_parts = [], [], []
    starts, ends, ns, olds = [], [], [], []
    for i in range(series):
        sid = 3 * i + 1
        shape = int(rng.integers(0, 6))
        old_n = int(rng.choice([0, 0, CHUNK, 1, 5, CHUNK - 1]))
        new_n = int(rng.integers(1, 3 * CHUNK + 2))
        ts = _timestamps(rng, T0_MS + int(rng.integers(0, 10_000)), old_n + new_n)
        values = _values(rng, shape, old_n + new_n)
        if old_n:
            blob = encode_floats_ms(ts[:old_n], values[:old_n])
            olds.append([ChunkRow(sid, int(ts[0]), int(ts[old_n - 1]), old_n, blob)])
            starts.append(int(ts[0]))
            ends.append(int(ts[old_n - 1]))
        else:
            olds.append([])
            starts.append(0)
            ends.append(0)
        ns.append(old_n)
        sids.append(np.full(new_n, sid, dtype=np.int32))
        ts_parts.append(ts[old_n:])
        value_parts.append(values[old_n:])
    group = grouped(np.concatenate(sids), np.concatenate(ts_parts), np.concatenate(value_parts))
    tails = TailArrays(*(np.array(column, dtype=np.int64) for column in (starts, ends, ns)))
    return group, tails, olds


def _one_at_a_time(group: Grouped, tails: TailArrays, olds: list[list[ChunkRow]]
                   ) -> tuple[ChunkColumns, list[tuple[int, int]], dict[int, Tail]]:
    flush = Flush("float", CHUNK)
    for i in range(len(group.sids)):
        sid, ts, values = group.series(i)
        flush.add(sid, ts, values, tails.tail(i), [row for row in olds[i] if row.n < CHUNK])
    return flush.columns(), flush.deleted, flush.tails


@pytest.mark.parametrize("seed", range(6))
def test_the_batched_flush_makes_the_chunks_of_the_series_at_a_time_flush(seed: int) -> None:
    """Chunks, summaries, deleted tails and new tails are equal, and each blob is what the
    one-chunk encoder gives for its points (NaN payloads and -0.0 kept bit for bit)."""
    group, tails, olds = _case(seed, 120)
    assert in_order(group, tails).all()
    topped = [i for i, rows in enumerate(olds) if rows and rows[0].n < CHUNK]
    old_counts = np.zeros(len(olds), dtype=np.int64)
    old_counts[topped] = [olds[i][0].n for i in topped]
    decoded = [decode_floats_ms(olds[i][0].blob) for i in topped]
    old_ts = np.concatenate([ts for ts, _ in decoded])
    old_values = np.concatenate([values for _, values in decoded])

    columns, new_tails = flush_floats(group, old_counts, old_ts, old_values, CHUNK)

    expected, deleted, expected_tails = _one_at_a_time(group, tails, olds)
    assert columns.rows() == expected.rows()
    assert deleted == [(olds[i][0].sid, olds[i][0].start_ms) for i in topped]
    assert {int(sid): new_tails.tail(i) for i, sid in enumerate(group.sids)} == expected_tails
    for row in columns.rows():
        ts, values = decode_floats_ms(row.blob)
        assert row.blob == encode_floats_ms(ts, values)
        assert (len(ts), int(ts[0]), int(ts[-1])) == (row.n, row.start_ms, row.end_ms)
    stale = [row for row in columns.rows() if np.isnan(decode_floats_ms(row.blob)[1]).any()]
    assert any((decode_floats_ms(row.blob)[1].view(np.uint64) == STALE.view(np.uint64)).any()
               for row in stale)


def test_subset_keeps_the_points_of_the_series_picked() -> None:
    group, _, _ = _case(9, 10)
    picked = np.arange(10) % 3 == 1
    part = subset(group, picked)
    assert part.sids.tolist() == group.sids[picked].tolist()
    for j, i in enumerate(np.flatnonzero(picked).tolist()):
        _, ts, values = part.series(j)
        _, want_ts, want_values = group.series(i)
        assert ts.tolist() == want_ts.tolist()
        assert values.view(np.uint64).tolist() == want_values.view(np.uint64).tolist()


# -- through the writer: the same file, batched or not ------------------------------------

N = 60


def _writes(rng: np.random.Generator, r: int) -> Columns:
    """Round ``r``: every series a point or two (a duplicate timestamp now and then, a
    late point reaching back into stored chunks every few rounds), shapes mixed."""
    ts = (T0_MS + r * 10_000 + rng.integers(-20, 21, N)) / 1000.0
    index = np.arange(N, dtype=np.int32)
    values = np.where(index % 3 == 0, np.round(rng.uniform(0, 10, N), 2),
                      np.where(index % 3 == 1, float(r * 1000), rng.normal(0, 1, N)))
    values[index % 7 == 0] = STALE if r % 2 else np.nan
    extra = index[index % 5 == 0]
    if r % 4 == 3:  # out of order: reaching back into stored chunks
        again = (T0_MS + r * 10_000 - 95_000 + extra.astype(np.int64)) / 1000.0
    else:  # a duplicate timestamp: the later value wins
        again = ts[extra]
    ts = np.concatenate((ts, again))
    values = np.concatenate((values, rng.normal(0, 1, len(extra))))
    return Columns(series=[f'd/p/m{{if="{i}"}}' for i in range(N)],
                   index=np.concatenate((index, extra)), ts=ts, values=values)


def _archive(path: Path) -> list[tuple[object, ...]]:
    """Write, compact, restart and write again; the chunk and summary rows in id order."""
    rng = np.random.default_rng(5)
    writer = Writer(Store.open(path, writer=True), chunk_points=CHUNK, max_log_points=10**9)
    writer.load()
    for r in range(40):
        writer.write_columns(_writes(rng, r))
        writer.settle()
        if r % 6 == 5:
            writer.compact()
        if r == 20:  # every tail unknown after a start: looked up in one statement
            writer.close()
            writer = Writer(Store.open(path, writer=True), chunk_points=CHUNK,
                            max_log_points=10**9)
            writer.load()
    writer.compact()
    conn = writer.store._conn
    rows = conn.execute("SELECT id, series_id, start_ts, end_ts, n, blob FROM chunks"
                        " ORDER BY id").fetchall()
    rows += conn.execute("SELECT series_id, start_ts, end_ts, n, blob FROM summaries"
                         " ORDER BY series_id, start_ts").fetchall()
    points = writer.read(SeriesKey.parse('d/p/m{if="35"}'), 0, 2e9)
    rows.append((points.ts.tolist(), points.values.view(np.uint64).tolist()))
    writer.close()
    return rows


def test_the_writer_stores_the_same_rows_with_or_without_the_batched_flush(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Flushing a series at a time (every series taken as out of order) and in one pass
    leave the same chunk rows, ids and summaries, and read back the same points."""
    batched = _archive(tmp_path / "batched.sqlite3")
    monkeypatch.setattr(_writer_module, "in_order",
                        lambda group, tails: np.zeros(len(group.sids), dtype=np.bool_))
    apart = _archive(tmp_path / "apart.sqlite3")
    assert batched == apart
    assert len(batched[-1][0]) == 40 + 10  # 40 rounds, 10 with a late point more


def _corpus_digest() -> str:
    """sha256 of every chunk encode_float_chunks makes of a generated corpus: many chunks
    of 0-59 points of each shape at once, as a flush encodes them."""
    rng = np.random.default_rng(11)
    digest = hashlib.sha256()
    for trial in range(15):
        counts = rng.integers(0, 60, int(rng.integers(1, 300)))
        ts = T0_MS + np.cumsum(rng.integers(1, 20_000, int(counts.sum())))
        values = _values(rng, trial % 6, len(ts))
        for blob in encode_float_chunks(ts, values, np.concatenate(([0], np.cumsum(counts)))):
            digest.update(blob)
    return digest.hexdigest()


def test_the_encoder_writes_the_bytes_it_wrote_before_the_batched_flush() -> None:
    """The stored format is unchanged: the digest is that of the encoder before D50."""
    assert _corpus_digest() == CORPUS_DIGEST
