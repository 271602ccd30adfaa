"""InfluxDB line-protocol ingest: watchkeeper against InfluxDB 1.x, in the same run.

    python benchmarks/influx.py [--series 10000 100000 --rounds 12 --trials 5]

Workload, as Telegraf's ``outputs.influxdb`` sends it: ``--series`` series (a
measurement, tags ``host``/``cpu``/``mode``, one field), one point per series per round
(15 s apart), each round one ``/write?db=bench&precision=ms`` body built before timing;
the same bytes posted to watchkeeper (``watchkeeper serve`` in its own process,
embedded archive, basic auth with the token as password) and to InfluxDB
(``benchmarks/peers.py``: WAL fsynced on every write). Measured: points/s per round
(request sent until its 204), the first round (every series new) apart, the median of
the others, and the ratio; ``--trials`` times on fresh servers, taking turns to go first
(as ``benchmarks/prometheus.py``). Prints a Markdown table; compare figures of one run
only.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from peers import InfluxDB, PeerUnavailable, environment
from prometheus import MODES, T0_MS, Outcome, Watchkeeper, run, trials


def body(series: int, round_no: int) -> bytes:
    stamp = T0_MS + round_no * 15_000
    return "".join(
        f"node_{i % 50},cpu={i // 400 % 64},host=host{i // 2000},mode={MODES[i // 50 % 8]} "
        f"value={i * 7 + round_no}.5 {stamp}\n" for i in range(series)).encode()


def main(args: argparse.Namespace) -> None:
    rows = []
    for series in args.series:
        bodies = [body(series, r) for r in range(args.rounds)]

        def ours(bodies: list[bytes] = bodies, series: int = series) -> Outcome:
            with tempfile.TemporaryDirectory(prefix="wk-bench-influx-") as tmp:
                server = Watchkeeper(Path(tmp))
                with server.running():
                    def send(payload: bytes) -> None:
                        server.http.post("/write", params={"db": "bench", "precision": "ms"},
                                         content=payload, auth=("bench", server.token)
                                         ).raise_for_status()
                    return run(send, bodies, series)

        def theirs(bodies: list[bytes] = bodies, series: int = series) -> Outcome | None:
            try:
                with InfluxDB.started() as influx:
                    return run(influx.ingest, bodies, series)
            except PeerUnavailable as exc:
                print(f"InfluxDB skipped: {exc}")
                return None

        wk, influx = trials(args.trials, ours, theirs)
        rows.append((series, wk, influx))
        print(f"{series} series: watchkeeper {wk}, InfluxDB {influx}", flush=True)
    print(f"\nPeers: {environment()}; cores: {os.cpu_count()}; {args.trials} trials of "
          f"{args.rounds} rounds\n")
    print("| points/request | watchkeeper first round | watchkeeper median | InfluxDB first | "
          "InfluxDB median | ratio (median) | ratio per trial |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for series, wk, influx in rows:
        print(f"| {series:,} | {wk.first:,.0f}/s | {wk.median:,.0f}/s | {influx.first:,.0f}/s | "
              f"{influx.median:,.0f}/s | {wk.median / influx.median:.2f}x | "
              f"{wk.ratios(influx)} |")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--rounds", type=int, default=12)
    parser.add_argument("--trials", type=int, default=5)
    main(parser.parse_args())
