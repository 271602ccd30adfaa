"""InfluxDB line-protocol ingest: watchkeeper against InfluxDB 1.x, in the same run.

    python benchmarks/influx.py [--series 10000 100000 --rounds 6]

Workload, as Telegraf's ``outputs.influxdb`` sends it: ``--series`` series (a
measurement, tags ``host``/``cpu``/``mode``, one field), one point per series per round
(15 s apart), each round one ``/write?db=bench&precision=ms`` body built before timing;
the same bytes posted to watchkeeper (``watchkeeper serve`` in its own process,
embedded archive, basic auth with the token as password) and to InfluxDB
(``benchmarks/peers.py``: WAL fsynced on every write). Measured: points/s per round
(request sent until its 204), the first round (every series new) apart, the median of
the others, and the ratio. Prints a Markdown table; compare figures of one run only.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from peers import InfluxDB, PeerUnavailable, environment
from prometheus import MODES, T0_MS, Watchkeeper


def body(series: int, round_no: int) -> bytes:
    stamp = T0_MS + round_no * 15_000
    return "".join(
        f"node_{i % 50},cpu={i // 400 % 64},host=host{i // 2000},mode={MODES[i // 50 % 8]} "
        f"value={i * 7 + round_no}.5 {stamp}\n" for i in range(series)).encode()


def run(send: Callable[[bytes], None], bodies: list[bytes], series: int) -> tuple[float, float]:
    """(first round points/s, median points/s of the other rounds)."""
    rates = []
    for payload in bodies:
        started = time.perf_counter()
        send(payload)
        rates.append(series / (time.perf_counter() - started))
    return rates[0], statistics.median(rates[1:])


def main(args: argparse.Namespace) -> None:
    rows = []
    for series in args.series:
        bodies = [body(series, r) for r in range(args.rounds)]
        with tempfile.TemporaryDirectory(prefix="wk-bench-influx-") as tmp:
            ours = Watchkeeper(Path(tmp))
            with ours.running():
                def send(payload: bytes, wk: Watchkeeper = ours) -> None:
                    wk.http.post("/write", params={"db": "bench", "precision": "ms"},
                                 content=payload, auth=("bench", wk.token)).raise_for_status()
                wk_rates = run(send, bodies, series)
        try:
            with InfluxDB.started() as influx:
                influx_rates = run(influx.ingest, bodies, series)
        except PeerUnavailable as exc:
            print(f"InfluxDB skipped: {exc}")
            influx_rates = (float("nan"), float("nan"))
        rows.append((series, wk_rates, influx_rates))
        print(f"{series} series: watchkeeper {wk_rates}, InfluxDB {influx_rates}", flush=True)
    print(f"\nPeers: {environment()}; cores: {os.cpu_count()}\n")
    print("| points/request | watchkeeper first round | watchkeeper median | InfluxDB first | "
          "InfluxDB median | ratio (median) |")
    print("|---:|---:|---:|---:|---:|---:|")
    for series, wk, influx in rows:
        print(f"| {series:,} | {wk[0]:,.0f}/s | {wk[1]:,.0f}/s | {influx[0]:,.0f}/s | "
              f"{influx[1]:,.0f}/s | {wk[1] / influx[1]:.2f}x |")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--rounds", type=int, default=6)
    main(parser.parse_args())
