"""InfluxDB line-protocol ingest: watchkeeper against InfluxDB 1.x, in the same run.

    python benchmarks/influx.py [--series 10000 100000 --hosts 1000 10000 --rounds 12
                                 --trials 5 --shapes plain cpu mix]

Workloads, as Telegraf's ``outputs.influxdb`` sends them, one point per series per round
(15 s apart), each round one ``/write?db=bench`` body built before timing:

* ``plain``: ``--series`` series of one field each (a measurement, tags
  ``host``/``cpu``/``mode``), ms timestamps;
* ``cpu``: ``--hosts`` hosts' ``cpu,cpu=cpu-total,host=H`` with Telegraf's 10 float fields
  (``usage_idle``... written with every digit, as Telegraf writes them), ns timestamps;
* ``mix``: per host, ``mem`` (10 fields: 8 integers ``123i``, 2 floats) and ``disk`` for
  two mounts (7 fields: 6 integers, 1 float): lines of different field counts, ns.

The same bytes are posted to watchkeeper (``watchkeeper serve`` in its own process,
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
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from peers import InfluxDB, PeerUnavailable, environment
from prometheus import MODES, T0_MS, Outcome, Watchkeeper, run, trials

T0_NS = T0_MS * 1_000_000
CPU_FIELDS = ("usage_user", "usage_system", "usage_idle", "usage_nice", "usage_iowait",
              "usage_irq", "usage_softirq", "usage_steal", "usage_guest", "usage_guest_nice")
MEM_INTEGERS = ("active", "available", "buffered", "cached", "free", "inactive", "total",
                "used")
DISK_INTEGERS = ("free", "inodes_free", "inodes_total", "inodes_used", "total", "used")


def body(series: int, round_no: int) -> bytes:
    """``series`` one-field lines, ms timestamps."""
    stamp = T0_MS + round_no * 15_000
    return "".join(
        f"node_{i % 50},cpu={i // 400 % 64},host=host{i // 2000},mode={MODES[i // 50 % 8]} "
        f"value={i * 7 + round_no}.5 {stamp}\n" for i in range(series)).encode()


def share(i: int, j: int, round_no: int) -> float:
    """A percentage with every digit, as Telegraf computes and writes it."""
    return ((i * 7919 + j * 104_729 + round_no * 13) % 100_000) / 1013.0


def cpu_body(hosts: int, round_no: int) -> bytes:
    """Telegraf's ``cpu`` input, total only: one line of 10 float fields per host, ns."""
    stamp = T0_NS + round_no * 15_000_000_000
    return "".join(
        f"cpu,cpu=cpu-total,host=host{i} "
        + ",".join(f"{name}={share(i, j, round_no)!r}" for j, name in enumerate(CPU_FIELDS))
        + f" {stamp}\n" for i in range(hosts)).encode()


def mix_body(hosts: int, round_no: int) -> bytes:
    """Telegraf's ``mem`` (10 fields) and ``disk`` (7 fields, two mounts) per host, ns."""
    stamp = T0_NS + round_no * 15_000_000_000
    lines = []
    for i in range(hosts):
        ints = ",".join(f"{name}={(i + 1) * 1_048_576 + j * 4096 + round_no * 512}i"
                        for j, name in enumerate(MEM_INTEGERS))
        lines.append(f"mem,host=host{i} {ints},available_percent={share(i, 1, round_no)!r},"
                     f"used_percent={share(i, 2, round_no)!r} {stamp}\n")
        for mount, device in (("/", "sda1"), ("/var", "sda2")):
            ints = ",".join(f"{name}={(i + 7) * 65_536 + j * 1024 + round_no * 8}i"
                            for j, name in enumerate(DISK_INTEGERS))
            lines.append(f"disk,device={device},fstype=ext4,host=host{i},mode=rw,path={mount} "
                         f"{ints},used_percent={share(i, 3, round_no)!r} {stamp}\n")
    return "".join(lines).encode()


def points_of(payload: bytes) -> int:
    """The points of a body: one per field."""
    return sum(line.split(b" ")[1].count(b",") + 1 for line in payload.splitlines())


SHAPES: dict[str, tuple[str, Callable[[int, int], bytes], str]] = {
    "plain": ("one field per line", body, "ms"),
    "cpu": ("Telegraf cpu, 10 float fields", cpu_body, "ns"),
    "mix": ("Telegraf mem + disk, integers and floats", mix_body, "ns"),
}


def measure(bodies: list[bytes], points: int, precision: str, count: int
            ) -> tuple[object, object]:
    def ours() -> Outcome:
        with tempfile.TemporaryDirectory(prefix="wk-bench-influx-") as tmp:
            server = Watchkeeper(Path(tmp))
            with server.running():
                def send(payload: bytes) -> None:
                    server.http.post("/write", params={"db": "bench", "precision": precision},
                                     content=payload, auth=("bench", server.token)
                                     ).raise_for_status()
                return run(send, bodies, points)

    def theirs() -> Outcome | None:
        try:
            with InfluxDB.started() as influx:
                def send(payload: bytes) -> None:
                    influx.http.post("/write", content=payload, params={
                        "db": influx.database, "precision": precision}).raise_for_status()
                return run(send, bodies, points)
        except PeerUnavailable as exc:
            print(f"InfluxDB skipped: {exc}")
            return None

    return trials(count, ours, theirs)


def main(args: argparse.Namespace) -> None:
    rows = []
    for shape in args.shapes:
        what, make, precision = SHAPES[shape]
        for size in (args.series if shape == "plain" else args.hosts):
            bodies = [make(size, r) for r in range(args.rounds)]
            points = points_of(bodies[0])
            wk, influx = measure(bodies, points, precision, args.trials)
            rows.append((what, size, points, len(bodies[0]), wk, influx))
            print(f"{what}, {points:,} points: watchkeeper {wk}, InfluxDB {influx}",
                  flush=True)
    print(f"\nPeers: {environment()}; cores: {os.cpu_count()}; {args.trials} trials of "
          f"{args.rounds} rounds; load average {os.getloadavg()[0]:.2f} at the end\n")
    print("| body | points/request (bytes) | watchkeeper first round | watchkeeper median | "
          "InfluxDB first | InfluxDB median | ratio (median) | ratio per trial |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for what, _, points, size, wk, influx in rows:
        print(f"| {what} | {points:,} ({size:,}) | {wk.first:,.0f}/s | {wk.median:,.0f}/s | "
              f"{influx.first:,.0f}/s | {influx.median:,.0f}/s | "
              f"{wk.median / influx.median:.2f}x | {wk.ratios(influx)} |")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--hosts", type=int, nargs="+", default=[1_000, 10_000])
    parser.add_argument("--shapes", nargs="+", choices=list(SHAPES), default=list(SHAPES))
    parser.add_argument("--rounds", type=int, default=12)
    parser.add_argument("--trials", type=int, default=5)
    main(parser.parse_args())
