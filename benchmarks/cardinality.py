"""Many series on one node: the embedded archive against VictoriaMetrics in the same run.

    python benchmarks/cardinality.py [--series 1000000 --points 30,360 --batch 100000]
    python benchmarks/cardinality.py --quick            # a short smoke run

Workload: ``--series`` counters and gauges of a network (devices of 50 interfaces x 10
metrics: ``dev00042/snmp/m3{if="17"}``), one point per series per round (10 s apart, each
series at its own phase, ±20 ms jitter), sent as requests of ``--batch`` series: watchkeeper
the columnar bulk form of ``POST /api/v1/write`` (a real uvicorn server in its own
process, ``benchmarks/archive.py --serve``), VictoriaMetrics ``/api/v1/import`` JSON lines
(started by ``benchmarks/peers.py``). The two are sent every request in turn, so the noise
of the shared machine falls on both alike. Values: 50 % integer counters, 40 % gauges with
two decimals, 10 % noise.

Measured (HTTP only: bodies are encoded before the clock starts):

* ingest of round 0, when every series is new, and of every later round (sustained);
* at each of ``--points`` points per series: bytes on disk per point (watchkeeper after
  its closing compaction, VictoriaMetrics after a forced flush), then both servers are
  restarted on their data: the time until each answers (start-up holding every series);
* series listing: one device's series by prefix (``dev00042/``), the first page of all
  series (whose total counts every series), and VictoriaMetrics' ``/api/v1/series`` by
  label (``{dev="dev00042"}``) and by name (``{__name__="m3"}``, limited);
* with ``--compare DIR``, the same for a second watchkeeper server running the code of
  ``DIR/src`` (e.g. before a change), sent the same requests in turn;
* peak RSS (VmHWM) of each server, and the memory of watchkeeper's series index: the RSS
  a fresh process gains by loading the catalog of the archive, per series.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import msgspec
import numpy as np
import numpy.typing as npt
import psutil

sys.path.insert(0, str(Path(__file__).parent))
from archive import Ours  # the folder is not a package: scripts import their neighbours
from peers import VictoriaMetrics, environment, peak_rss_mb

from watchkeeper.wire import WriteColumns

T0 = 1_700_000_000
INTERVAL = 10
PER_DEVICE = 500  # 50 interfaces x 10 metrics
COMPARE = "watchkeeper (compare)"


@dataclass
class Network:
    """``n`` series, their names in both syntaxes, and their values as rounds go by."""

    n: int
    seed: int = 1
    ours: list[str] = field(init=False)
    vm_prefix: list[str] = field(init=False)

    def __post_init__(self) -> None:
        ids = range(self.n)
        self.ours = [f'dev{i // PER_DEVICE:05d}/snmp/m{i % 10}{{if="{i // 10 % 50}"}}'
                     for i in ids]
        self.vm_prefix = [f'{{"metric":{{"__name__":"m{i % 10}","dev":"dev{i // PER_DEVICE:05d}",'
                          f'"if":"{i // 10 % 50}"}},"values":[' for i in ids]
        rng = np.random.default_rng(self.seed)
        self.rng = rng
        self.phase = rng.integers(20, INTERVAL * 1000 - 20, self.n)
        self.kind = np.arange(self.n) % 10  # 0-4 counters, 5-8 gauges, 9 noise
        self.counter = rng.integers(0, 10**9, self.n).astype(np.float64)
        self.gauge = np.round(rng.uniform(0, 100, self.n), 2)

    def round(self, r: int) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
        """Timestamps (ms) and values of round ``r`` (rounds must be asked in order)."""
        rng = self.rng
        self.counter += rng.integers(0, 2_000_000, self.n)
        self.gauge = np.round(self.gauge + rng.normal(0, 0.2, self.n), 2)
        values = np.where(self.kind < 5, self.counter,
                          np.where(self.kind < 9, self.gauge, rng.normal(0, 1, self.n)))
        jitter = rng.integers(-20, 21, self.n)
        ts = (T0 + r * INTERVAL) * 1000 + self.phase + jitter
        return ts.astype(np.int64), values


class Encoders:
    """Request bodies of one batch of series, for each system."""

    def __init__(self, net: Network, lo: int, hi: int) -> None:
        self.lo, self.hi = lo, hi
        self.series = net.ours[lo:hi]
        self.vm_prefix = net.vm_prefix[lo:hi]
        self.index = np.arange(hi - lo, dtype="<i4").tobytes()

    def ours(self, ts: npt.NDArray[np.int64], values: npt.NDArray[np.float64]) -> bytes:
        body = WriteColumns(series=self.series, index=self.index,
                            ts=(ts[self.lo:self.hi] / 1000.0).tobytes(),
                            values=values[self.lo:self.hi].tobytes())
        return msgspec.msgpack.encode(body)

    def vm(self, ts: npt.NDArray[np.int64], values: npt.NDArray[np.float64]) -> bytes:
        lines = [f'{p}{v!r}],"timestamps":[{t}]}}' for p, v, t in
                 zip(self.vm_prefix, values[self.lo:self.hi].tolist(),
                     ts[self.lo:self.hi].tolist(), strict=True)]
        return ("\n".join(lines) + "\n").encode()


@dataclass
class Clocks:
    """Seconds spent sending, per system and phase."""

    spent: dict[str, dict[str, float]] = field(default_factory=dict)
    points: dict[str, int] = field(default_factory=dict)
    cpu: dict[str, dict[str, float]] = field(default_factory=dict)  # server CPU seconds

    def add(self, system: str, phase: str, seconds: float) -> None:
        self.spent.setdefault(phase, {}).setdefault(system, 0.0)
        self.spent[phase][system] += seconds

    def rate(self, phase: str, system: str) -> float:
        return self.points[phase] / self.spent[phase][system]

    def cpu_per_million(self, phase: str, system: str) -> float:
        """The server's CPU seconds (user and system, every thread) per million points."""
        return self.cpu[phase][system] / self.points[phase] * 1e6


def send_rounds(net: Network, batches: list[Encoders], rounds: range, *,
                systems: dict[str, Callable[[bytes], None]], clocks: Clocks,
                phase: str) -> None:
    """``rounds``, every batch to each system in turn; each request charged to its system
    until that is idle again (see :func:`until_idle`), before the next system's request:
    waited for after all of them, the two watchkeeper servers flushed at the same round
    side by side, and the one waited for second was found idle, its flush uncharged.
    The systems take turns at going first."""
    order = list(systems.items())
    procs = {name: psutil.Process(_PIDS[send]()) for name, send in order}
    cpu_before = {name: sum(proc.cpu_times()[:2]) for name, proc in procs.items()}
    for r in rounds:
        ts, values = net.round(r)
        turn = order[r % len(order):] + order[:r % len(order)]
        for enc in batches:
            bodies = {"ours": enc.ours(ts, values), "victoria-metrics": enc.vm(ts, values)}
            for name, send in turn:
                body = bodies.get(name) or bodies["ours"]
                began = time.perf_counter()
                send(body)
                clocks.add(name, phase, time.perf_counter() - began + until_idle(send))
        if (r + 1) % 10 == 0:
            print(f"  round {r + 1}", file=sys.stderr, flush=True)
    clocks.points[phase] = clocks.points.get(phase, 0) + net.n * len(rounds)
    for name, proc in procs.items():
        clocks.cpu.setdefault(phase, {}).setdefault(name, 0.0)
        clocks.cpu[phase][name] += sum(proc.cpu_times()[:2]) - cpu_before[name]


def until_idle(send: Callable[[bytes], None], *, busy_cpu_s: float = 0.01,
               every_s: float = 0.05, quiet_s: float = 1.0) -> float:
    """Seconds until the server behind ``send`` has used under ``busy_cpu_s`` of CPU in
    every ``every_s`` for ``quiet_s`` on end: work a server does after answering
    (watchkeeper adds a large write to its heads, and compacts, behind the answer) is
    charged to it, not hidden behind the other systems' requests. One quiet sample was
    not enough: a compaction waiting on its commit's fsync looked idle, and the rest of
    it landed in the next request (29 s) or beside another server's (an A/A run of one
    tree gave 286,000 points/s sustained to one server and 1,322,000 to the other)."""
    proc = psutil.Process(_PIDS[send]())  # servers restart: their pid as of now
    began = time.perf_counter()
    used = sum(proc.cpu_times()[:2])
    quiet_since: float | None = None
    while True:
        time.sleep(every_s)
        now = sum(proc.cpu_times()[:2])
        if now - used >= busy_cpu_s:
            quiet_since = None
        elif quiet_since is None:
            quiet_since = time.perf_counter() - every_s  # the quiet samples are not its
        used = now
        if quiet_since is not None and time.perf_counter() - quiet_since >= quiet_s:
            return max(quiet_since - began, 0.0)


_PIDS: dict[Callable[[bytes], None], Callable[[], int]] = {}


def timed_ms(fn: Callable[[], object], count: int = 20) -> float:
    """Median milliseconds of ``count`` calls (after one untimed call)."""
    fn()
    samples = []
    for _ in range(count):
        began = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - began) * 1000)
    return statistics.median(samples)


def listings(ours: Ours, vm: VictoriaMetrics, n: int) -> dict[str, float]:
    device = f"dev{min(42, (n - 1) // PER_DEVICE):05d}"

    def ours_list(params: dict[str, str]) -> Callable[[], None]:
        def call() -> None:
            response = ours.http.get("/api/v1/series", params=params)
            response.raise_for_status()
        return call

    def vm_series(match: str) -> Callable[[], None]:
        def call() -> None:
            response = vm.http.get("/api/v1/series", params={
                "match[]": match, "start": str(T0 - 86400), "end": str(T0 + 10 * 86400)})
            response.raise_for_status()
        return call

    return {
        "ours_prefix_device_ms": timed_ms(ours_list({"prefix": f"{device}/"})),
        "ours_first_page_all_ms": timed_ms(ours_list({"limit": "100"})),
        "vm_label_device_ms": timed_ms(vm_series(f'{{dev="{device}"}}')),
        "vm_name_m3_ms": _refused_as_nan(lambda: timed_ms(vm_series('{__name__="m3"}'),
                                                          count=3)),
    }


def _refused_as_nan(fn: Callable[[], float]) -> float:
    """VictoriaMetrics refuses listings of more than 30,000 series (-search.maxSeries)."""
    try:
        return fn()
    except httpx.HTTPStatusError:
        return float("nan")


def our_bytes(ours: Ours) -> int:
    return sum(p.stat().st_blocks * 512 for p in ours.workdir.glob("archive.sqlite3*"))


class Server:
    """watchkeeper's server, which the benchmark stops and starts again on its data."""

    def __init__(self, ours: Ours) -> None:
        self.ours = ours
        self._stack = ExitStack()

    def start(self) -> float:
        began = time.perf_counter()
        self._stack.enter_context(self.ours.running())
        return time.perf_counter() - began

    def stop(self) -> float:
        """Stop (the closing compaction); seconds it took."""
        seconds = self.ours.stop()
        self._stack.close()
        return seconds

    def restart(self) -> tuple[float, float]:
        """(close seconds, start-up seconds until the server answers)."""
        return self.stop(), self.start()


def restart_vm(vm: VictoriaMetrics) -> float:
    vm.stop()
    began = time.perf_counter()
    vm.start()
    return time.perf_counter() - began


def index_memory(data_dir: Path) -> dict[str, float]:
    """In a fresh process: RSS gained by loading the archive's catalog, per series."""
    code = (
        "import sys, psutil, time\n"
        "from pathlib import Path\n"
        "from watchkeeper.archive.backends._store import Store\n"
        "from watchkeeper.archive.backends._writer import Writer\n"
        "proc = psutil.Process()\n"
        "store = Store.open(Path(sys.argv[1]), writer=False)\n"
        "before = proc.memory_info().rss\n"
        "began = time.perf_counter()\n"
        "writer = Writer(store, chunk_points=480, max_log_points=4_000_000)\n"
        "writer.load_catalog()\n"
        "print(len(writer.catalog), proc.memory_info().rss - before,"
        " time.perf_counter() - began)\n"
    )
    copy = data_dir.parent / "index-copy"
    shutil.rmtree(copy, ignore_errors=True)
    copy.mkdir()
    for path in data_dir.glob("archive.sqlite3*"):
        shutil.copy(path, copy / path.name)
    out = subprocess.run([sys.executable, "-c", code, str(copy / "archive.sqlite3")],
                         capture_output=True, text=True, check=True).stdout.split()
    shutil.rmtree(copy, ignore_errors=True)
    n, grown, seconds = int(out[0]), int(out[1]), float(out[2])
    return {"series": n, "bytes_per_series": grown / max(n, 1), "load_s": seconds}


def run(args: argparse.Namespace) -> dict[str, Any]:
    root = Path(tempfile.mkdtemp(prefix="wk-bench-card-", dir=args.dir))
    net = Network(args.series)
    batches = [Encoders(net, lo, min(lo + args.batch, args.series))
               for lo in range(0, args.series, args.batch)]
    results: dict[str, Any] = {
        "args": vars(args) | {"dir": str(args.dir), "compare": str(args.compare)},
        "environment": {"python": platform.python_version(), "cpus": os.cpu_count(),
                        **environment()},
        "checkpoints": []}
    envs: dict[str, dict[str, str] | None] = {"watchkeeper": None}
    if args.compare:
        envs[COMPARE] = dict(os.environ, PYTHONPATH=str(args.compare / "src"))
    try:
        with ExitStack() as stack:
            vm = stack.enter_context(VictoriaMetrics.started(root))
            servers = {}
            for name, env in envs.items():
                ours = Ours(root / f"ours{len(servers)}", "embedded", "", env=env)
                ours.workdir.mkdir()
                servers[name] = server = Server(ours)
                stack.callback(server.stop)
                print(f"{name} up in {server.start():.1f} s", file=sys.stderr)
            systems = {name: server.ours.ingest for name, server in servers.items()}
            systems["victoria-metrics"] = vm.ingest
            for server in servers.values():
                _PIDS[server.ours.ingest] = lambda ours=server.ours: ours.pid
            _PIDS[vm.ingest] = lambda: vm.pid
            clocks = Clocks()
            print("round 0: every series new", file=sys.stderr)
            send_rounds(net, batches, range(1), systems=systems, clocks=clocks, phase="new")
            done = 1
            for target in args.points:
                print(f"rounds {done}..{target - 1}", file=sys.stderr)
                send_rounds(net, batches, range(done, target), systems=systems, clocks=clocks,
                            phase="sustained")
                done = target
                results["checkpoints"].append(checkpoint(servers, vm, net, target))
            phases = [phase for phase in ("new", "sustained") if phase in clocks.points]
            results["ingest"] = {phase: {name: clocks.rate(phase, name) for name in systems}
                                 for phase in phases}
            results["cpu_s_per_million"] = {
                phase: {name: clocks.cpu_per_million(phase, name) for name in systems}
                for phase in phases}
            # Both servers restart at each checkpoint: the peak is the highest of them.
            results["rss_mb"] = {name: max(cp["rss_before_restart_mb"][name]
                                           for cp in results["checkpoints"])
                                 for name in systems}
            results["close_s"] = servers["watchkeeper"].stop()
            results["index"] = index_memory(servers["watchkeeper"].ours.workdir)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return results


def checkpoint(servers: dict[str, Server], vm: VictoriaMetrics, net: Network, points: int
               ) -> dict[str, Any]:
    """Listing, bytes per point and restart times with ``points`` points per series."""
    print(f"checkpoint at {points} points per series", file=sys.stderr)
    ours = servers["watchkeeper"].ours
    out: dict[str, Any] = {"points_per_series": points}
    out["listing"] = listings(ours, vm, net.n)
    out["rss_before_restart_mb"] = {name: peak_rss_mb(server.ours.pid)
                                    for name, server in servers.items()}
    out["rss_before_restart_mb"]["victoria-metrics"] = peak_rss_mb(vm.pid)
    vm.flush()
    total = net.n * points
    out["bytes_per_point"] = {}
    for name, server in servers.items():
        prefix = "" if name == "watchkeeper" else f"{name} "
        out[f"{prefix}close_s"], out[f"{prefix}ours_start_s"] = server.restart()
        out["bytes_per_point"][name] = our_bytes(server.ours) / total
    out["vm_start_s"] = restart_vm(vm)
    out["bytes_per_point"]["victoria-metrics"] = vm.data_bytes() / total
    return out


def report(results: dict[str, Any]) -> str:
    a = results["args"]
    env = results["environment"]
    lines = [(f"**Cardinality: {a['series']:,} series, one point per series per round, "
             f"requests of {a['batch']:,} series**"), "",
             (f"python {env['python']}, cpus {env['cpus']}, "
             f"victoria-metrics {env.get('victoria-metrics')}"), "",
             "| measure | watchkeeper | victoria-metrics | ratio (goal) |",
             "| --- | --- | --- | --- |"]

    def row(label: str, ours: float, vm: float, fmt: str, goal: str, *, higher: bool) -> None:
        ratio = ours / vm if higher else vm / ours
        lines.append(f"| {label} | {ours:{fmt}} | {vm:{fmt}} | {ratio:.2f}x ({goal}) |")

    ing = results["ingest"]
    row("ingest, first point of new series, points/s", ing["new"]["watchkeeper"],
        ing["new"]["victoria-metrics"], ",.0f", "≥ 1.5x", higher=True)
    if "sustained" in ing:
        row("ingest, sustained, points/s", ing["sustained"]["watchkeeper"],
            ing["sustained"]["victoria-metrics"], ",.0f", "≥ 2x", higher=True)
    for phase, cpu in results["cpu_s_per_million"].items():
        row(f"server CPU seconds per million points, {phase} (VM ÷ ours)", cpu["watchkeeper"],
            cpu["victoria-metrics"], ".2f", "", higher=False)
    rss = results["rss_mb"]
    row("peak RSS, MB (ratio: VM ÷ ours)", rss["watchkeeper"], rss["victoria-metrics"], ",.0f",
        "≥ 1x", higher=False)
    for cp in results["checkpoints"]:
        bpp = cp["bytes_per_point"]
        row(f"bytes/point at {cp['points_per_series']} points/series (VM ÷ ours)",
            bpp["watchkeeper"], bpp["victoria-metrics"], ".2f", "≥ 1x", higher=False)
    for cp in results["checkpoints"]:
        lines.append(f"| start-up holding every series, s (at {cp['points_per_series']} "
                     f"points/series) | {cp['ours_start_s']:.1f} | {cp['vm_start_s']:.1f} | |")
        lines.append(f"| closing compaction, s | {cp['close_s']:.1f} | | |")
    lst = results["checkpoints"][-1]["listing"]
    lines.append(f"| list one device's 500 series, ms (ours by prefix, VM by label) | "
                 f"{lst['ours_prefix_device_ms']:.1f} | {lst['vm_label_device_ms']:.1f} | ≤ 50 |")
    lines.append(f"| first 100 of all series with their total, ms | "
                 f"{lst['ours_first_page_all_ms']:.1f} | | ≤ 50 |")
    lines.append(f"| VM: every series of one metric name ({results['args']['series'] // 10:,}), "
                 f"ms | | {lst['vm_name_m3_ms']:.1f} | |")
    if COMPARE in rss:
        lines += ["", f"{COMPARE} (the code of --compare, same run): "
                  + ", ".join(f"{phase} ingest {rates[COMPARE]:,.0f} points/s"
                              for phase, rates in ing.items())
                  + "".join(f", {phase} CPU {cpu[COMPARE]:.2f} s per million points"
                            for phase, cpu in results["cpu_s_per_million"].items())
                  + f", peak RSS {rss[COMPARE]:,.0f} MB, "
                  + ", ".join(f"{cp['bytes_per_point'][COMPARE]:.2f} B/point at "
                              f"{cp['points_per_series']}, start-up "
                              f"{cp[COMPARE + ' ours_start_s']:.1f} s, closing compaction "
                              f"{cp[COMPARE + ' close_s']:.1f} s"
                              for cp in results["checkpoints"]), ""]
    idx = results["index"]
    lines.append(f"| series index in memory, bytes/series (load {idx['load_s']:.1f} s) | "
                 f"{idx['bytes_per_series']:.0f} | | < ~1,000 |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--series", type=int, default=1_000_000)
    parser.add_argument("--points", default="30,360",
                        help="points per series at which to measure (comma-separated)")
    parser.add_argument("--batch", type=int, default=100_000, help="series per request")
    parser.add_argument("--quick", action="store_true",
                        help="a smoke run: 20,000 series, 10 points")
    parser.add_argument("--compare", type=Path, default=None,
                        help="a source tree (with src/) to run as a second watchkeeper")
    parser.add_argument("--dir", type=Path, default=None, help="for the temporary data")
    parser.add_argument("--json", dest="json_file", type=Path, default=None)
    args = parser.parse_args()
    if args.quick:
        args.series, args.points, args.batch = 20_000, "10", 10_000
    args.points = sorted(int(p) for p in args.points.split(","))
    results = run(args)
    if args.json_file:
        args.json_file.write_text(json.dumps(results, indent=2, default=str))
    print(report(results))


if __name__ == "__main__":
    main()
