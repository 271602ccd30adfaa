"""Compaction of many series in one process: the time of the embedded archive's flushes.

    python benchmarks/compaction.py [--cases 100000x30,1000000x3 --runs 3]
    python benchmarks/compaction.py --compare /tmp/before   # the code of /tmp/before/src too
    python benchmarks/compaction.py --profile 100000x30     # cProfile of one compaction

Each case ``NxP`` writes P rounds of one point per series for N series (the workload of
``benchmarks/cardinality.py``: counters, gauges with two decimals, noise; 10 s apart,
each series at its own phase, ±20 ms jitter) through ``Writer.write_columns`` into a
fresh archive with compaction held off, then times ``compact()`` of every head (the
closing compaction, no chunks yet); a ``+`` case (``100000x30+30``) first compacts P
points per series, then writes the second number of rounds and times the compaction
that tops up every series' partial last chunk (a full flush of a running server).

Each run is a fresh process per source tree (``--compare``: this tree's and DIR's in
turn, interleaved), so one tree's memory cannot slow the other; the report gives each
run's seconds, the medians and their ratio, and the load average.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import numpy.typing as npt

T0_MS = 1_700_000_000_000
INTERVAL_MS = 10_000
HERE = Path(__file__).resolve().parent


def rounds(n: int, count: int, first: int = 0, seed: int = 1
           ) -> list[tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]]:
    """``count`` rounds from round ``first`` on: (ts in seconds, values) per round."""
    rng = np.random.default_rng(seed)
    phase = rng.integers(20, INTERVAL_MS - 20, n)
    kind = np.arange(n) % 10  # 0-4 counters, 5-8 gauges, 9 noise
    counter = rng.integers(0, 10**9, n).astype(np.float64)
    gauge = np.round(rng.uniform(0, 100, n), 2)
    out = []
    for r in range(first + count):
        counter += rng.integers(0, 2_000_000, n)
        gauge = np.round(gauge + rng.normal(0, 0.2, n), 2)
        values = np.where(kind < 5, counter, np.where(kind < 9, gauge, rng.normal(0, 1, n)))
        ts = T0_MS + r * INTERVAL_MS + phase + rng.integers(-20, 21, n)
        if r >= first:
            out.append((ts / 1000.0, values))
    return out


def one_run(case: str, profile: bool) -> float:
    """Seconds of the timed compaction of ``case`` in this process's source tree."""
    # Imported here: the parent imports nothing of the trees it times.
    from watchkeeper.archive.abc import Columns
    from watchkeeper.archive.backends._store import Store
    from watchkeeper.archive.backends._writer import Writer

    size, _, points = case.partition("x")
    n = int(size)
    first, _, more = points.partition("+")
    series = [f'dev{i // 500:05d}/snmp/m{i % 10}{{if="{i // 10 % 50}"}}' for i in range(n)]
    index = np.arange(n, dtype=np.int32)
    with tempfile.TemporaryDirectory() as tmp:
        store = Store.open(Path(tmp) / "archive.sqlite3", writer=True, synchronous="normal")
        writer = Writer(store, chunk_points=480, max_log_points=2**62)
        writer.load()

        def write(rows: list[tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]]) -> None:
            for ts, values in rows:
                writer.write_columns(Columns(series=series, index=index, ts=ts, values=values,
                                             series_token=b"all"))
            writer.settle()

        write(rounds(n, int(first)))
        if more:
            writer.compact()
            write(rounds(n, int(more), first=int(first)))
        profiler = cProfile.Profile() if profile else None
        began = time.perf_counter()
        if profiler:
            profiler.enable()
        writer.compact()
        if profiler:
            profiler.disable()
        seconds = time.perf_counter() - began
        store.close()
    if profiler:
        pstats.Stats(profiler, stream=sys.stderr).sort_stats("cumulative").print_stats(40)
        pstats.Stats(profiler, stream=sys.stderr).sort_stats("tottime").print_stats(25)
    return seconds


def child(tree: Path, case: str) -> float:
    env = {**os.environ, "PYTHONPATH": str(tree / "src")}
    out = subprocess.run([sys.executable, __file__, "--one", case], env=env, check=True,
                         capture_output=True, text=True).stdout
    return float(json.loads(out.strip().splitlines()[-1])["seconds"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", default="100000x30,1000000x3")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--compare", type=Path, default=None,
                        help="another source tree (its src/) run in turn with this one")
    parser.add_argument("--profile", metavar="CASE", help="cProfile one compaction here")
    parser.add_argument("--one", metavar="CASE", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps({"seconds": one_run(args.one, False)}))
        return
    if args.profile:
        print(f"{args.profile}: {one_run(args.profile, True):.2f} s")
        return
    trees = {"this": HERE.parent}
    if args.compare:
        trees["compare"] = args.compare.resolve()
    for case in args.cases.split(","):
        seconds: dict[str, list[float]] = {name: [] for name in trees}
        for _ in range(args.runs):
            for name, tree in trees.items():  # interleaved
                seconds[name].append(child(tree, case))
        medians = {name: statistics.median(runs) for name, runs in seconds.items()}
        line = "  ".join(f"{name} {medians[name]:.2f} s ({', '.join(f'{s:.2f}' for s in runs)})"
                         for name, runs in seconds.items())
        ratio = (f"  compare/this {medians['compare'] / medians['this']:.2f}x"
                 if "compare" in medians else "")
        print(f"{case}: {line}{ratio}  load {os.getloadavg()[0]:.2f}", flush=True)


if __name__ == "__main__":
    main()
