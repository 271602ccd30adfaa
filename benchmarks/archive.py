"""Benchmark of the archive against VictoriaMetrics and InfluxDB, all in the same run.

    python benchmarks/archive.py [--series 10000 --rounds 60 --runs 3 --query-series 1000]

Workload, as a poller produces it: ``--series`` series (``--hist-series`` of them
histograms of 8 buckets) each get one point per 10-s interval, in time order; one
request per round carries one point of every series. Values are 45 % gauges with two
decimals, 45 % integer counters and 10 % full-precision noise.

Measured, for watchkeeper (a real ``uvicorn`` server in its own process, with the
embedded archive unless ``--backend postgres``) and for each peer (started here on
loopback, in temporary directories):

1. ingest, points/s: the rounds of ``--runs`` runs, each on later timestamps, the
   systems interleaved run by run; "end to end" counts client-side encoding plus the
   HTTP requests until acknowledged, "HTTP only" the requests alone. watchkeeper is
   sent the bulk columnar form of ``POST /api/v1/write`` (msgpack; its JSON form is
   timed too, for comparison), VictoriaMetrics ``/api/v1/import`` JSON lines,
   InfluxDB ``/write`` line protocol (ms precision). Histograms go to the peers as one
   series (VictoriaMetrics) or one field (InfluxDB) per bucket.
2. query latency over ``--query-series`` series holding ``--query-hours`` of 10-s data,
   loaded in time order: one series' raw points over the whole range (p50, p99 of
   ``--queries`` random series), and hourly avg/min/max of all of them (median and
   worst of ``--aggregates`` runs). watchkeeper answers the second through
   ``GET /api/v1/rollup`` (``Archive.rollup``), VictoriaMetrics
   with ``avg_over_time``/``min_over_time``/``max_over_time`` over ``[1h]`` (three
   requests), InfluxDB with one ``GROUP BY time(1h), *`` query.
3. bytes on disk per point after everything (watchkeeper after its closing
   compaction; the peers as they are, their background merges may still shrink them),
   and the peak RSS of each server process.

Prints one table (Markdown) and, with ``--json FILE``, writes the figures. The machine
is shared and noisy: compare figures from the same run only.

``--esmond-hook module:function`` calls ``function(base_url)`` while watchkeeper's
server runs (after the ingest runs); it returns ``[(name, value, note), ...]`` rows for
the table: the place for the esmond single-point POST benchmark.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import importlib
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import AsyncExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import msgspec
import numpy as np
import numpy.typing as npt
import psutil

from watchkeeper.wire import COLUMNS_CONTENT_TYPE, WirePoint, WriteBatch, WriteColumns

sys.path.insert(0, str(Path(__file__).parent))
from peers import (  # the folder is not a package: scripts import their neighbours
    InfluxDB,
    Peer,
    PeerUnavailable,
    VictoriaMetrics,
    environment,
    free_port,
    peak_rss_mb,
)

T0 = 1_700_000_000  # seconds; a multiple of 10 but not of 3600, as real data would be
INTERVAL = 10
BUCKETS = ("0.5", "1", "2", "5", "10", "20", "50", "+Inf")
Q_T0 = 1_690_000_000 // 86400 * 86400  # query data: a whole UTC day (or more)

F64 = npt.NDArray[np.float64]


# -- the workload -------------------------------------------------------------------------


@dataclass
class Workload:
    """Series names in each system's syntax, and the points of every round."""

    n_series: int
    n_hist: int
    metric: str = "if_octets"
    subject: str = "dev"
    ours: list[str] = field(init=False)
    vm_prefix: list[str] = field(init=False)
    influx_prefix: list[str] = field(init=False)

    def __post_init__(self) -> None:
        n_float = self.n_series - self.n_hist
        devs = [f"{self.subject}{i // 50:04d}" for i in range(self.n_series)]
        ifs = [str(i % 50) for i in range(self.n_series)]
        name = self.metric
        self.ours = [f'{d}/snmp/{name.replace("_", ".")}{{if="{i}"}}' if k < n_float
                     else f'{d}/ping/rtt{{if="{i}"}}'
                     for k, (d, i) in enumerate(zip(devs, ifs, strict=True))]
        self.vm_prefix = [
            f'{{"metric":{{"__name__":"{name}","dev":"{d}","if":"{i}"}},"values":['
            for d, i in zip(devs[:n_float], ifs[:n_float], strict=True)]
        self.influx_prefix = [f"{name},dev={d},if={i} value="
                              for d, i in zip(devs[:n_float], ifs[:n_float], strict=True)]
        self.hist_vm = [[f'{{"metric":{{"__name__":"rtt_bucket","dev":"{d}","if":"{i}",'
                         f'"le":"{b}"}},"values":[' for b in BUCKETS]
                        for d, i in zip(devs[n_float:], ifs[n_float:], strict=True)]
        self.hist_influx = [f"rtt,dev={d},if={i} "
                            for d, i in zip(devs[n_float:], ifs[n_float:], strict=True)]
        self.index = np.arange(n_float, dtype="<i4")
        self.index_bytes = self.index.tobytes()

    @property
    def n_float(self) -> int:
        return self.n_series - self.n_hist

    def rounds(self, first: int, count: int, seed: int, *, jitter_ms: int = 20) -> Iterator[Round]:
        """Rounds ``first`` to ``first + count``: each series at its own phase in the
        interval, give or take ``jitter_ms``."""
        rng = np.random.default_rng(seed)
        phase = rng.integers(jitter_ms, INTERVAL * 1000 - jitter_ms, self.n_series)
        values = _values(rng, self.n_float, count)
        for r in range(count):
            jitter = rng.integers(-jitter_ms, jitter_ms + 1, self.n_series)
            ts_ms = (T0 + (first + r) * INTERVAL) * 1000 + phase + jitter
            hists = rng.integers(0, 50, (self.n_hist, len(BUCKETS)))
            yield Round(ts_ms.astype(np.int64), values[r], hists)


@dataclass
class Round:
    ts_ms: npt.NDArray[np.int64]  # one per series, float series first
    values: F64  # one per float series
    hists: npt.NDArray[np.int64]  # histogram series x buckets


def _values(rng: np.random.Generator, n: int, rounds: int) -> F64:
    """Rounds x series: 45 % gauges (2 decimals), 45 % counters, 10 % noise."""
    shape = (rounds, n)
    gauges = np.round(50 + np.cumsum(rng.normal(0, 0.2, shape), axis=0), 2)
    counters = np.cumsum(rng.integers(0, 2_000_000, shape), axis=0).astype(np.float64)
    noise = rng.normal(0, 1, shape)
    kind = np.arange(n) % 20
    out: F64 = np.where(kind < 9, gauges, np.where(kind < 18, counters, noise))
    return out


# -- encoders: one request body per round, per system --------------------------------------


def encode_columns(w: Workload, r: Round) -> bytes:
    n = w.n_float
    hists = [WirePoint(w.ours[n + j], float(r.ts_ms[n + j]) / 1000,
                       dict(zip(BUCKETS, row, strict=True)))
             for j, row in enumerate(r.hists.tolist())]
    repeat = len(r.values) // max(n, 1)  # several rounds joined (query data)
    index = w.index_bytes if repeat == 1 else np.tile(w.index, repeat).tobytes()
    ts = r.ts_ms[:n] if repeat == 1 else r.ts_ms  # joined rounds hold no histograms
    body = WriteColumns(series=w.ours[:n], index=index, ts=(ts / 1000.0).tobytes(),
                        values=r.values.tobytes(), points=hists)
    return msgspec.msgpack.encode(body)


def encode_json(w: Workload, r: Round) -> bytes:
    n = w.n_float
    ts = (r.ts_ms / 1000.0).tolist()
    points = [WirePoint(s, t, v) for s, t, v in zip(w.ours, ts, r.values.tolist(), strict=False)]
    points += [WirePoint(w.ours[n + j], ts[n + j], dict(zip(BUCKETS, row, strict=True)))
               for j, row in enumerate(r.hists.tolist())]
    return msgspec.json.encode(WriteBatch(points=points))


def encode_vm(w: Workload, r: Round) -> bytes:
    n = w.n_float
    ts = r.ts_ms.tolist()
    lines = [f'{p}{v!r}],"timestamps":[{t}]}}'
             for p, v, t in zip(w.vm_prefix, r.values.tolist(), ts, strict=False)]
    for j, row in enumerate(r.hists.tolist()):
        t = ts[n + j]
        lines += [f'{p}{c}],"timestamps":[{t}]}}' for p, c in zip(w.hist_vm[j], row, strict=True)]
    return ("\n".join(lines) + "\n").encode()


def encode_influx(w: Workload, r: Round) -> bytes:
    n = w.n_float
    ts = r.ts_ms.tolist()
    lines = [f"{p}{v!r} {t}" for p, v, t in zip(w.influx_prefix, r.values.tolist(), ts,
                                                  strict=False)]
    for j, row in enumerate(r.hists.tolist()):
        fields = ",".join(f"b{b.replace('+', '')}={c}i" for b, c in zip(BUCKETS, row, strict=True))
        lines.append(f"{w.hist_influx[j]}{fields} {ts[n + j]}")
    return ("\n".join(lines) + "\n").encode()


# -- watchkeeper's server, in its own process ---------------------------------------------


class Ours:
    """``benchmarks/archive.py --serve``: uvicorn with the archive, in a subprocess."""

    name = "watchkeeper"

    def __init__(self, workdir: Path, backend: str, schema: str, *,
                 env: dict[str, str] | None = None) -> None:
        self.workdir = workdir
        self.env = env  # e.g. PYTHONPATH of another source tree, to compare two versions
        self.backend = backend
        self.schema = schema
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.http = httpx.Client(base_url=self.url, timeout=300.0)
        self.proc: subprocess.Popen[bytes] | None = None

    @contextmanager
    def running(self) -> Iterator[Ours]:
        log = (self.workdir / "server.log").open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--serve", "--dir", str(self.workdir),
             "--port", str(self.port), "--backend", self.backend, "--schema", self.schema],
            stdout=log, stderr=subprocess.STDOUT, env=self.env)
        try:
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    raise RuntimeError((self.workdir / "server.log").read_text()[-3000:])
                try:
                    if self.http.get("/api/v1/health").status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(0.1)
            yield self
        finally:
            self.stop()

    def stop(self) -> float:
        """Stop (the archive compacts as it closes); seconds it took."""
        if self.proc is None or self.proc.poll() is not None:
            return 0.0
        began = time.perf_counter()
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=600)
        return time.perf_counter() - began

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def ingest(self, body: bytes) -> None:
        response = self.http.post("/api/v1/write", content=body,
                                  headers={"Content-Type": COLUMNS_CONTENT_TYPE})
        response.raise_for_status()

    def ingest_json(self, body: bytes) -> None:
        response = self.http.post("/api/v1/write", content=body,
                                  headers={"Content-Type": "application/json"})
        response.raise_for_status()


def serve(args: argparse.Namespace) -> None:
    """The server process: the archive behind the REST API, until SIGTERM."""
    import uvicorn

    from watchkeeper.api import create_app
    from watchkeeper.archive.backends.embedded import EmbeddedArchive
    from watchkeeper.clock import SystemClock
    from watchkeeper.telemetry import SelfMetrics

    async def main() -> None:
        async with AsyncExitStack() as stack:
            metrics = SelfMetrics()
            if args.backend == "postgres":
                from watchkeeper.archive.backends.postgres import PostgresArchive
                archive: Any = PostgresArchive(
                    data_dir=args.dir, options=PostgresArchive.Options(schema=args.schema),
                    clock=SystemClock(), metrics=metrics)
            else:
                # Sizes on disk are measured after the whole closing compaction; the default
                # budget (3 s, D47) would leave points in the ingest log, uncompressed.
                archive = EmbeddedArchive(data_dir=args.dir,
                                          options=EmbeddedArchive.Options(close_seconds=3600.0),
                                          clock=SystemClock(), metrics=metrics)
            await archive.start(stack)

            app = create_app(archive, metrics=metrics, max_body_bytes=512 * 1024 * 1024)
            gc.collect()
            gc.freeze()  # as `watchkeeper serve` does once started (runtime/service.py)
            config = uvicorn.Config(app, host="127.0.0.1", port=args.port, loop="none",
                                    http="httptools", log_level="warning", access_log=False,
                                    lifespan="off")
            server = _Server(config)
            asyncio.get_running_loop().add_signal_handler(
                signal.SIGTERM, lambda: setattr(server, "should_exit", True))
            await server.serve()  # then the stack closes the archive: the final compaction

    class _Server(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            yield  # uvicorn would re-raise SIGTERM after serving, before the archive closes

    import uvloop

    uvloop.run(main())


# -- measuring ------------------------------------------------------------------------------


@dataclass
class IngestRun:
    points: int
    encode_s: float
    send_s: float

    @property
    def end_to_end(self) -> float:
        return self.points / (self.encode_s + self.send_s)

    @property
    def http_only(self) -> float:
        return self.points / self.send_s


def timed_ingest(encode: Callable[[Round], bytes], send: Callable[[bytes], None],
                 rounds: list[Round], points: int) -> IngestRun:
    began = time.perf_counter()
    bodies = [encode(r) for r in rounds]
    encode_s = time.perf_counter() - began
    began = time.perf_counter()
    for body in bodies:
        send(body)
    return IngestRun(points, encode_s, time.perf_counter() - began)


def load(encode: Callable[[Round], bytes], send: Callable[[bytes], None],
         rounds: Iterator[Round]) -> None:
    for r in rounds:
        send(encode(r))


def settle(pids: list[int], *, idle_percent: float = 3.0, timeout: float = 120.0) -> float:
    """Wait until every process of ``pids`` uses under ``idle_percent`` of a CPU over one
    second (at most ``timeout`` seconds); how long it took."""
    procs = [psutil.Process(pid) for pid in pids]
    began = time.perf_counter()
    while time.perf_counter() - began < timeout:
        for proc in procs:
            proc.cpu_percent(None)
        time.sleep(1.0)
        if all(proc.cpu_percent(None) < idle_percent for proc in procs):
            break
    return time.perf_counter() - began


def percentiles(samples: list[float]) -> tuple[float, float]:
    cuts = statistics.quantiles(samples, n=100, method="inclusive")
    return cuts[49], cuts[98]


def time_queries(fn: Callable[[int, bool], None], count: int, seed: int,
                 n: int) -> list[float]:
    """Milliseconds per query, the body received but not parsed (the first, untimed,
    query of each system is checked)."""
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, n, count).tolist()
    fn(picks[0], True)  # warm the connection, check the answer
    out = []
    for pick in picks:
        began = time.perf_counter()
        fn(pick, False)
        out.append((time.perf_counter() - began) * 1000)
    return out


# -- the run ------------------------------------------------------------------------------


def run(args: argparse.Namespace) -> dict[str, Any]:
    root = Path(tempfile.mkdtemp(prefix="wk-bench-archive-", dir=args.dir))
    w = Workload(args.series, args.hist_series)
    points_per_round = w.n_series
    results: dict[str, Any] = {"args": vars(args) | {"dir": str(args.dir)}, "peers": {},
                               "ingest": {}, "query": {}, "disk": {}, "rss_mb": {}}
    results["environment"] = {"python": platform.python_version(), "cpus": os.cpu_count(),
                              **environment()}
    ours = Ours(root / "ours", args.backend, f"wk_bench_{os.getpid()}")
    ours.workdir.mkdir()
    try:
        with ours.running(), _peers(args, root) as peers:
            systems: list[tuple[str, Callable[[Round], bytes], Callable[[bytes], None]]] = [
                ("watchkeeper", lambda r: encode_columns(w, r), ours.ingest)]
            if args.json_path:
                systems.append(("watchkeeper (JSON)", lambda r: encode_json(w, r),
                                ours.ingest_json))
            for peer in peers:
                encoder = encode_vm if isinstance(peer, VictoriaMetrics) else encode_influx
                systems.append((peer.name, lambda r, e=encoder: e(w, r), peer.ingest))
            written = {name: 0 for name, _, _ in systems}
            for run_no in range(args.runs):
                print(f"ingest run {run_no + 1}/{args.runs}", file=sys.stderr)
                for offset, (name, encode, send) in enumerate(systems):
                    first = (run_no * len(systems) + offset) * args.rounds
                    rounds = list(w.rounds(first, args.rounds, seed=run_no))
                    result = timed_ingest(encode, send, rounds, points_per_round * args.rounds)
                    results["ingest"].setdefault(name, []).append(vars(result) | {
                        "end_to_end": result.end_to_end, "http_only": result.http_only})
                    written[name] += points_per_round * args.rounds
            if args.esmond_hook:
                module, _, fn = args.esmond_hook.partition(":")
                results["esmond"] = getattr(importlib.import_module(module), fn)(ours.url)
            query_results(args, results, ours, peers, written)
            for peer in peers:
                results["rss_mb"][peer.name] = peak_rss_mb(peer.pid)
                results["disk"][peer.name] = {"bytes": peer.data_bytes(),
                                              "points": written[peer.name] + query_points(args)}
            results["rss_mb"]["watchkeeper"] = peak_rss_mb(ours.pid)
            results["close_s"] = ours.stop()
        results["disk"]["watchkeeper"] = {
            "bytes": _our_bytes(args, ours),
            "points": written["watchkeeper"] + written.get("watchkeeper (JSON)", 0)
            + query_points(args)}
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return results


def query_points(args: argparse.Namespace) -> int:
    return args.query_series * args.query_hours * 360


@contextmanager
def _peers(args: argparse.Namespace, root: Path) -> Iterator[list[Any]]:
    started: list[Peer] = []
    with contextlib_exit_stack() as stack:
        for cls, wanted in ((VictoriaMetrics, args.vm), (InfluxDB, args.influx)):
            if not wanted:
                continue
            try:
                started.append(stack.enter_context(cls.started(root)))
            except PeerUnavailable as exc:
                print(f"skipping {cls.name}: {exc}", file=sys.stderr)
        yield started


def contextlib_exit_stack() -> Any:
    import contextlib

    return contextlib.ExitStack()


def query_results(args: argparse.Namespace, results: dict[str, Any], ours: Ours,
                  peers: list[Any], written: dict[str, int]) -> None:
    qw = Workload(args.query_series, 0, metric="q_octets", subject="qdev")
    rounds = args.query_hours * 360
    first = (Q_T0 - T0) // INTERVAL
    start, end = Q_T0, Q_T0 + rounds * INTERVAL - 0.001  # every point is inside
    per_request = max(1, 10_000 // qw.n_series)

    def batched(encode: Callable[[Workload, Round], bytes]) -> Callable[[list[Round]], bytes]:
        return lambda rs: b"".join(encode(qw, r) for r in rs)

    loaders: dict[str, tuple[Callable[[bytes], None], Callable[[list[Round]], bytes]]] = {
        "watchkeeper": (ours.ingest, lambda rs: encode_columns(qw, _join(rs)))}
    for peer in peers:
        encoder = encode_vm if isinstance(peer, VictoriaMetrics) else encode_influx
        loaders[peer.name] = (peer.ingest, batched(encoder))
    for name, (send, encode) in loaders.items():
        print(f"loading {qw.n_series} x {rounds} points into {name}", file=sys.stderr)
        began = time.perf_counter()
        group: list[Round] = []
        for r in qw.rounds(first, rounds, seed=99):
            group.append(r)
            if len(group) == per_request:
                send(encode(group))
                group = []
        if group:
            send(encode(group))
        results["query"].setdefault(name, {})["load_points_per_s"] = (
            qw.n_series * rounds / (time.perf_counter() - began))
    for peer in peers:
        if isinstance(peer, VictoriaMetrics):
            peer.flush()
    time_the_queries(args, results, ours, peers, qw=qw, span=(start, end, rounds))


def time_the_queries(args: argparse.Namespace, results: dict[str, Any], ours: Ours,
                     peers: list[Any], *, qw: Workload, span: tuple[int, float, int]) -> None:
    start, end, rounds = span

    def ours_one(i: int, check: bool) -> None:
        r = ours.http.get("/api/v1/query", params={"series": qw.ours[i], "start": start,
                                                    "end": end})
        r.raise_for_status()
        if check:
            got = len(r.json()["points"])
            assert got == rounds, (got, rounds, r.url)

    def ours_agg(check: bool) -> None:
        r = ours.http.get("/api/v1/rollup", params={"prefix": "qdev", "start": start,
                                                      "end": end, "step": 3600,
                                                      "aggs": "avg,min,max"})
        r.raise_for_status()
        if check:
            assert len(r.json()["series"]) == qw.n_series

    one: dict[str, Callable[[int, bool], None]] = {"watchkeeper": ours_one}
    agg: dict[str, Callable[[bool], None]] = {"watchkeeper": ours_agg}
    for peer in peers:
        if isinstance(peer, VictoriaMetrics):
            one[peer.name], agg[peer.name] = _vm_queries(peer, qw, start, end, rounds)
        else:
            one[peer.name], agg[peer.name] = _influx_queries(peer, qw, start, end, rounds)
    pids = [ours.pid, *(peer.pid for peer in peers)]
    for name, query_one in one.items():
        # The servers loaded the query data just before: whichever is timed first would
        # share the CPUs with the others' background compaction. Wait until they rest.
        settle(pids)
        print(f"querying {name}", file=sys.stderr)
        samples = time_queries(query_one, args.queries, seed=5, n=qw.n_series)
        p50, p99 = percentiles(samples)
        results["query"][name]["one_series_ms"] = {"p50": p50, "p99": p99}
        agg_samples = []
        agg[name](True)  # warm, and check
        for _ in range(args.aggregates):
            began = time.perf_counter()
            agg[name](False)
            agg_samples.append((time.perf_counter() - began) * 1000)
        results["query"][name]["aggregate_ms"] = {
            "median": statistics.median(agg_samples), "max": max(agg_samples)}


def _join(rounds: list[Round]) -> Round:
    return Round(np.concatenate([r.ts_ms for r in rounds]),
                 np.concatenate([r.values for r in rounds]),
                 np.concatenate([r.hists for r in rounds]))


def _vm_queries(vm: VictoriaMetrics, qw: Workload, start: int, end: float,
                rounds: int) -> tuple[Callable[[int, bool], None], Callable[[bool], None]]:
    def one(i: int, check: bool) -> None:
        match = f'q_octets{{dev="{qw.ours[i].split("/")[0]}",if="{i % 50}"}}'
        r = vm.http.get("/api/v1/export", params={"match[]": match, "start": start,
                                                   "end": end})
        r.raise_for_status()
        if check:
            assert len(json.loads(r.text)["values"]) == rounds

    def agg(check: bool) -> None:
        for fn in ("avg_over_time", "min_over_time", "max_over_time"):
            r = vm.http.get("/api/v1/query_range", params={
                "query": f"{fn}(q_octets[1h])", "start": start + 3600, "end": round(end),
                "step": "1h"})
            r.raise_for_status()
            if check:
                assert len(r.json()["data"]["result"]) == qw.n_series

    return one, agg


def _influx_queries(influx: InfluxDB, qw: Workload, start: int, end: float,
                    rounds: int) -> tuple[Callable[[int, bool], None], Callable[[bool], None]]:
    def one(i: int, check: bool) -> None:
        dev = qw.ours[i].split("/")[0]
        r = influx.query(f"SELECT value FROM q_octets WHERE dev='{dev}' AND \"if\"='{i % 50}'"
                         f" AND time >= {start}s AND time <= {round(end * 1000)}ms")
        if check:
            assert len(r.json()["results"][0]["series"][0]["values"]) == rounds

    def agg(check: bool) -> None:
        r = influx.query(f"SELECT mean(value), min(value), max(value) FROM q_octets"
                         f" WHERE time >= {start}s AND time <= {round(end * 1000)}ms"
                         " GROUP BY time(1h), *")
        if check:
            assert len(r.json()["results"][0]["series"]) == qw.n_series

    return one, agg


def _our_bytes(args: argparse.Namespace, ours: Ours) -> int:
    if args.backend == "postgres":
        import psycopg

        with psycopg.connect("host=127.0.0.1 user=postgres dbname=watchkeeper_test",
                             autocommit=True) as conn:
            row = conn.execute(
                "SELECT sum(pg_total_relation_size(c.oid)) FROM pg_class c JOIN pg_namespace n"
                " ON n.oid = c.relnamespace WHERE n.nspname = %s AND c.relkind = 'r'",
                (ours.schema,)).fetchone()
            conn.execute(f"DROP SCHEMA IF EXISTS {ours.schema} CASCADE")
        return int(row[0]) if row and row[0] else 0
    return sum(p.stat().st_blocks * 512 for p in ours.workdir.glob("archive.sqlite3*"))


# -- the report ---------------------------------------------------------------------------


def report(results: dict[str, Any]) -> str:
    args = results["args"]
    ingest = results["ingest"]
    med = {name: {k: statistics.median(r[k] for r in runs) for k in ("end_to_end", "http_only")}
           for name, runs in ingest.items()}
    lines = [
        (f"### Archive benchmark: {args['series']:,} series ({args['hist_series']} histograms)"
         f" x {args['rounds']} rounds x {args['runs']} runs; queries over"
         f" {args['query_series']:,} series x {args['query_hours']} h of 10-s points"),
        "",
        f"backend: {args['backend']}; "
        + ", ".join(f"{k} {v}" for k, v in results["environment"].items()),
        "",
        "| measure | " + " | ".join(med) + " |",
        "| --- |" + " --- |" * len(med),
    ]

    def row(label: str, cells: list[str]) -> None:
        lines.append(f"| {label} | " + " | ".join(cells) + " |")

    ours = med["watchkeeper"]
    row("ingest end to end, points/s (median)", [f"{m['end_to_end']:,.0f}" for m in med.values()])
    row("ingest HTTP only, points/s (median)", [f"{m['http_only']:,.0f}" for m in med.values()])
    row("watchkeeper ÷ system, end to end",
        [f"{ours['end_to_end'] / m['end_to_end']:.2f}x" for m in med.values()])
    row("watchkeeper ÷ system, HTTP only",
        [f"{ours['http_only'] / m['http_only']:.2f}x" for m in med.values()])
    row("ingest runs, end to end", [" / ".join(f"{r['end_to_end'] / 1e3:,.0f}k" for r in runs)
                                    for runs in ingest.values()])
    query = results["query"]
    names = list(med)

    def q(name: str, fmt: Callable[[dict[str, Any]], str]) -> str:
        return fmt(query[name]) if name in query else "-"

    row("bulk load of the query data, points/s",
        [q(n, lambda x: f"{x['load_points_per_s']:,.0f}") for n in names])
    row("one series, all points, p50 / p99 ms",
        [q(n, lambda x: f"{x['one_series_ms']['p50']:.1f} / {x['one_series_ms']['p99']:.1f}")
         for n in names])
    row("hourly avg+min+max of all series, median / max ms",
        [q(n, lambda x: f"{x['aggregate_ms']['median']:.0f} / {x['aggregate_ms']['max']:.0f}")
         for n in names])
    disk = results["disk"]
    row("bytes on disk per point",
        [f"{disk[n]['bytes'] / disk[n]['points']:.2f}" if n in disk else "-" for n in names])
    row("peak RSS of the server, MB",
        [f"{results['rss_mb'][n]:,.0f}" if n in results["rss_mb"] else "-" for n in names])
    for name, value, note in results.get("esmond", []):
        lines.append(f"| {name} | {value} | {note} |")
    lines += ["", f"watchkeeper's closing compaction took {results.get('close_s', 0):.1f} s."]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--series", type=int, default=10_000)
    parser.add_argument("--hist-series", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=60)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--query-series", type=int, default=1_000)
    parser.add_argument("--query-hours", type=int, default=24)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--aggregates", type=int, default=15)
    parser.add_argument("--backend", choices=["embedded", "postgres"], default="embedded")
    parser.add_argument("--no-vm", dest="vm", action="store_false")
    parser.add_argument("--no-influx", dest="influx", action="store_false")
    parser.add_argument("--json-path", action="store_true",
                        help="also time watchkeeper's JSON write form")
    parser.add_argument("--esmond-hook", default="")
    parser.add_argument("--json", type=Path, default=None, help="write the figures here")
    parser.add_argument("--dir", type=Path, default=None)
    # the server process (internal)
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--schema", default="wk_bench", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args)
        return
    results = run(args)
    print(report(results))
    if args.json:
        args.json.write_text(json.dumps(results, indent=1, default=str))


if __name__ == "__main__":
    main()
