"""Benchmark of the embedded archive: ingest rate, size on disk, read latency, memory.

    python benchmarks/archive_embedded.py [--series 10000 --rounds 60 --runs 3]

Ingest is poller-shaped: each round brings one point per series (10 s apart, each
series at its own phase with a few ms of jitter), written with one ``write()`` per
round, as the archive writer engine does. Measurements are built before the clock
starts; only ``write()`` (and, separately, the final compaction on close) is timed.
Values mix the shapes real collectors produce: gauges with two decimals, integer
counters and, for a tenth of the series, full-precision noise.

Reported: ingest points/s (median of ``--runs``), bytes per point on disk after the
final compaction (file size, and chunk payload alone), the codec's bytes per point by
data shape, p50/p99 latency of reading one day (8,640 points) of one series, both from
the writer and from a read-only second instance, and the peak RSS of the process.

With many series the ingest log limit (``max_log_points``) rather than full heads
decides when to compact: 10,000 series reach the default 500,000 points every 50
rounds. Try ``--rounds 480`` with and without ``--max-log-points 5000000`` to see the
steady state either way.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import shutil
import statistics
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path

import numpy as np
import numpy.typing as npt

from watchkeeper.archive import codec
from watchkeeper.archive.backends._store import Store
from watchkeeper.archive.backends.embedded import DB_NAME, EmbeddedArchive, EmbeddedOptions
from watchkeeper.clock import SystemClock
from watchkeeper.model import Measurement, SeriesKey
from watchkeeper.telemetry import SelfMetrics

T0 = 1_700_000_000.0
INTERVAL = 10.0
DAY_POINTS = 8_640


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--series", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=60)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--chunk-points", type=int, default=EmbeddedOptions().chunk_points)
    parser.add_argument("--synchronous", choices=["full", "normal"], default="full")
    parser.add_argument("--max-log-points", type=int, default=EmbeddedOptions().max_log_points)
    parser.add_argument("--reads", type=int, default=300, help="timed one-day reads")
    parser.add_argument("--dir", type=Path, default=None, help="where to put the archives")
    args = parser.parse_args()
    asyncio.run(run(args))


async def run(args: argparse.Namespace) -> None:
    options = EmbeddedOptions(chunk_points=args.chunk_points, synchronous=args.synchronous,
                              max_log_points=args.max_log_points)
    rounds = list(_rounds(args.series, args.rounds))
    points = args.series * args.rounds
    ingest, with_close, sizes = [], [], {}
    for run_no in range(args.runs):
        with _scratch(args.dir) as data_dir:
            write_s, close_s = await _ingest(data_dir, options, rounds)
            ingest.append(points / write_s)
            with_close.append(points / (write_s + close_s))
            if run_no == 0:
                sizes = _sizes(data_dir, points)
    with _scratch(args.dir) as data_dir:
        latency = await _read_latency(data_dir, options, args.reads)
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    print(f"\nembedded archive: {args.series} series x {args.rounds} rounds = {points:,} points,"
          f" chunk_points={args.chunk_points}, max_log_points={args.max_log_points:,},"
          f" synchronous={args.synchronous}\n")
    rows = [
        ("ingest, write() only (median)", f"{statistics.median(ingest):,.0f} points/s",
         " / ".join(f"{r:,.0f}" for r in ingest)),
        ("ingest incl. final compaction", f"{statistics.median(with_close):,.0f} points/s",
         " / ".join(f"{r:,.0f}" for r in with_close)),
        ("disk after compaction: file", f"{sizes['file']:.2f} bytes/point",
         f"{sizes['file_bytes'] / 1e6:.1f} MB, of which {sizes['free_pages']} free pages"),
        ("disk after compaction: in use", f"{sizes['live']:.2f} bytes/point",
         "pages in use; freed log pages are reused by later writes"),
        ("chunk payload", f"{sizes['payload']:.2f} bytes/point",
         f"{sizes['chunks']:.0f} chunks, {points / sizes['chunks']:.0f} points each on average"),
        *[(f"codec, 240-point chunks: {shape}", f"{bpp:.2f} bytes/point", "")
          for shape, bpp in _codec_sizes().items()],
        ("read 1 day (8,640 pts), writer", f"p50 {latency['writer'][0]:.2f} ms",
         f"p99 {latency['writer'][1]:.2f} ms"),
        ("read 1 day, read-only instance", f"p50 {latency['reader'][0]:.2f} ms",
         f"p99 {latency['reader'][1]:.2f} ms"),
        ("peak RSS", f"{rss_mb:,.0f} MB", "whole process, prepared batches included"),
    ]
    width = max(len(r[0]) for r in rows)
    for name, value, note in rows:
        print(f"  {name:<{width}}  {value:>22}  {note}")


# -- workloads ------------------------------------------------------------------------


def _rounds(n_series: int, n_rounds: int) -> Iterator[list[Measurement]]:
    """Poller-shaped batches: one point per series per round."""
    rng = np.random.default_rng(7)
    keys = [SeriesKey.make(f"dev{i // 50:04d}", "snmp", "if.octets", {"if": f"{i % 50}"})
            for i in range(n_series)]
    phase = rng.integers(0, int(INTERVAL * 1000), n_series) / 1000.0
    values = _values(rng, n_series, n_rounds)
    for r in range(n_rounds):
        jitter = rng.integers(-20, 21, n_series) / 1000.0
        ts = (T0 + r * INTERVAL + phase + jitter).tolist()
        yield [Measurement(key=k, ts=t, value=v)
               for k, t, v in zip(keys, ts, values[r].tolist(), strict=True)]


def _values(rng: np.random.Generator, n_series: int, n_rounds: int) -> npt.NDArray[np.float64]:
    """Rounds x series: 45 % gauges (2 decimals), 45 % counters, 10 % noise."""
    shape = (n_rounds, n_series)
    gauges = np.round(50 + np.cumsum(rng.normal(0, 0.2, shape), axis=0), 2)
    counters = np.cumsum(rng.integers(0, 2_000_000, shape), axis=0).astype(np.float64)
    noise = rng.normal(0, 1, shape)
    kind = np.arange(n_series) % 20
    out: npt.NDArray[np.float64] = np.where(kind < 9, gauges, np.where(kind < 18, counters, noise))
    return out


async def _ingest(
    data_dir: Path, options: EmbeddedOptions, rounds: list[list[Measurement]]
) -> tuple[float, float]:
    """Seconds spent in write(), and in closing (the final compaction)."""
    stack = AsyncExitStack()
    archive = _archive(data_dir, options)
    await archive.start(stack)
    write_s = 0.0
    for batch in rounds:
        began = time.perf_counter()
        await archive.write(batch)
        write_s += time.perf_counter() - began
    began = time.perf_counter()
    await stack.aclose()
    return write_s, time.perf_counter() - began


async def _read_latency(
    data_dir: Path, options: EmbeddedOptions, reads: int
) -> dict[str, tuple[float, float]]:
    """p50 and p99 in ms of reading one day of one series."""
    key = SeriesKey.make("dev0000", "system", "cpu.percent")
    rng = np.random.default_rng(3)
    values = np.round(np.clip(30 + np.cumsum(rng.normal(0, 0.5, DAY_POINTS)), 0, 100), 1)
    out = {}
    async with _opened(data_dir, options) as writer:
        for lo in range(0, DAY_POINTS, 360):  # an hour at a time
            await writer.write([Measurement(key=key, ts=T0 + i * INTERVAL, value=float(values[i]))
                                for i in range(lo, lo + 360)])
        end = T0 + DAY_POINTS * INTERVAL
        out["writer"] = await _time_reads(writer, key, end, reads)
        async with _opened(data_dir, options) as reader:
            out["reader"] = await _time_reads(reader, key, end, reads)
    return out


async def _time_reads(
    archive: EmbeddedArchive, key: SeriesKey, end: float, reads: int
) -> tuple[float, float]:
    samples = []
    for _ in range(reads):
        began = time.perf_counter()
        points = await archive.read(key, T0, end)
        samples.append((time.perf_counter() - began) * 1000)
        assert len(points) == DAY_POINTS
    cuts = statistics.quantiles(samples, n=100)
    return cuts[49], cuts[98]


def _codec_sizes() -> dict[str, float]:
    rng = np.random.default_rng(11)
    n = 240
    ts = T0 + np.arange(n) * INTERVAL + rng.integers(-20, 21, n) / 1000.0
    shapes = {
        "gauge, 2 decimals": np.round(50 + np.cumsum(rng.normal(0, 0.2, n)), 2),
        "counter": np.cumsum(rng.integers(0, 2_000_000, n)).astype(np.float64),
        "noise (float64)": rng.normal(0, 1, n),
    }
    return {name: len(codec.encode_floats(ts, v)) / n for name, v in shapes.items()}


def _sizes(data_dir: Path, points: int) -> dict[str, float]:
    file_bytes = sum(p.stat().st_size for p in data_dir.glob(f"{DB_NAME}*"))
    store = Store.open(data_dir / DB_NAME, writer=False)
    try:
        stats = store.stats()
    finally:
        store.close()
    live_bytes = (stats["pages"] - stats["free_pages"]) * stats["page_size"]
    return {
        "file": file_bytes / points,
        "live": live_bytes / points,
        "file_bytes": file_bytes,
        "payload": stats["chunk_blob_bytes"] / points,
        "chunks": stats["chunks"],
        "free_pages": stats["free_pages"],
    }


# -- plumbing -----------------------------------------------------------------------


def _archive(data_dir: Path, options: EmbeddedOptions) -> EmbeddedArchive:
    return EmbeddedArchive(data_dir=data_dir, options=options, clock=SystemClock(),
                           metrics=SelfMetrics())


@asynccontextmanager
async def _opened(data_dir: Path, options: EmbeddedOptions) -> AsyncIterator[EmbeddedArchive]:
    async with AsyncExitStack() as stack:
        archive = _archive(data_dir, options)
        await archive.start(stack)
        yield archive


class _scratch:  # noqa: N801 - used like a function: `with _scratch(root) as path`
    """A fresh directory, removed afterwards."""

    def __init__(self, root: Path | None) -> None:
        self.path = Path(tempfile.mkdtemp(prefix="wk-archive-bench-", dir=root))

    def __enter__(self) -> Path:
        return self.path

    def __exit__(self, *exc: object) -> None:
        shutil.rmtree(self.path, ignore_errors=True)


if __name__ == "__main__":
    main()
