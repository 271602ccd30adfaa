"""PromQL query latency: watchkeeper against VictoriaMetrics and Prometheus, in one run.

    python benchmarks/promql.py [--runs 20] [--hours 24] [--compare /tmp/before]

Data (issue 13 "Speed"): 1,000 node-exporter-like series over ``--hours`` of 15-s
samples: 900 counters ``x{instance, job, cpu, mode}`` (30 instances) and 100 classic
histogram buckets ``h_bucket{instance, job, le}`` (10 instances x 10 bounds). The same
snappy protobuf remote-write requests (40 samples per series each, in time order) are
posted to watchkeeper (``watchkeeper serve``, embedded archive,
``/prometheus/api/v1/write``), VictoriaMetrics (``/api/v1/write``, ``benchmarks/peers.py``)
and Debian's Prometheus (``--web.enable-remote-write-receiver``), each in its own
process on loopback; each is left until its CPU use stays under 10 % for 3 s (its
compaction after the load done) before the queries.

Queries, each ``--runs`` times per server, interleaved (the order rotating, so each system
follows each other one equally often) and each asked only once every server is idle
(under 5 % of a CPU over 50 ms, at most 2 s), through each one's Prometheus API:

1. ``sum by (instance) (rate(x[5m]))`` over the whole span at step 60 s;
2. ``histogram_quantile(0.99, sum by (le) (rate(h_bucket[5m])))`` over the span, step 60 s;
3. ``topk(10, rate(x[5m]))`` as an instant query at the span's end.

Prints p50/p99 latency (ms) per query and server over all runs, the first run apart (in
watchkeeper, the one that decodes the chunks it then keeps decoded, see D40), the ratio
of watchkeeper's median to each peer's (below 1: faster), and checks that the three
answers agree (series count, and the values of the first series within 1e-6 relative).
The machine is shared and noisy: compare figures of one run. With ``--compare DIR``, a
second ``watchkeeper serve`` running the code of ``DIR/src`` (a ``git worktree`` of an
earlier commit) is loaded and asked alongside, in the same rotation: before/after in one
run.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cramjam
import httpx
import numpy as np
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
from peers import Peer, PeerUnavailable, VictoriaMetrics, free_port

from watchkeeper.api.ingest.remote_write import write_request_class

REPO = Path(__file__).resolve().parents[1]
WATCHKEEPER = [sys.executable, "-m", "watchkeeper.cli.main"]
PROMETHEUS = "/usr/bin/prometheus"
T0_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z
STEP_MS = 15_000
PER_REQUEST = 40  # samples per series per request (10 minutes)
MODES = ("user", "system", "idle", "iowait", "irq", "softirq", "steal", "nice", "guest",
         "guest_nice")
BOUNDS = ("0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "+Inf")
BEFORE = "watchkeeper before (--compare)"
REMOTE_WRITE = {"Content-Encoding": "snappy", "Content-Type": "application/x-protobuf",
                "X-Prometheus-Remote-Write-Version": "0.1.0"}


def series_labels() -> list[list[tuple[str, str]]]:
    """The 1,000 label sets, each sorted by name as Prometheus sends them."""
    counters = [[("__name__", "x"), ("cpu", str(cpu)), ("instance", f"host{host}:9100"),
                 ("job", "node"), ("mode", mode)]
                for host in range(30) for cpu in range(3) for mode in MODES]
    buckets = [[("__name__", "h_bucket"), ("instance", f"host{host}:9100"), ("job", "node"),
                ("le", le)] for host in range(10) for le in BOUNDS]
    return counters + buckets


def series_values(count: int, samples: int) -> np.ndarray:
    """Counter values (series x samples): increments drawn per series; histogram buckets
    cumulative in ``le`` within each instance."""
    rng = np.random.default_rng(13)
    counters = np.cumsum(rng.exponential(1.0, (900, samples)) * rng.uniform(0.1, 10, (900, 1)),
                         axis=1)
    observed = rng.poisson(5.0, (10, samples, len(BOUNDS))).astype(np.float64)
    buckets = np.cumsum(np.cumsum(observed, axis=2), axis=1)  # cumulative in le, then time
    hist = buckets.transpose(0, 2, 1).reshape(100, samples)
    values = np.vstack([np.round(counters, 3), hist])
    assert values.shape[0] == count
    return values


def payloads(hours: float) -> tuple[list[bytes], int]:
    labels = series_labels()
    samples = int(hours * 3600_000 / STEP_MS)
    values = series_values(len(labels), samples)
    message = write_request_class()
    bodies = []
    for start in range(0, samples, PER_REQUEST):
        request = message()
        stop = min(samples, start + PER_REQUEST)
        stamps = [T0_MS + i * STEP_MS for i in range(start, stop)]
        for row, pairs in enumerate(labels):
            ts = request.timeseries.add()
            for name, value in pairs:
                ts.labels.add(name=name, value=value)
            for stamp, value in zip(stamps, values[row, start:stop].tolist(), strict=True):
                ts.samples.add(timestamp=stamp, value=value)
        bodies.append(bytes(cramjam.snappy.compress_raw(request.SerializeToString())))
    return bodies, samples


class Prometheus(Peer):
    """Debian's Prometheus taking remote write (its own scraping off)."""

    name = "prometheus"
    binary = PROMETHEUS

    def command(self) -> list[str]:
        config = self.workdir / "prometheus.yml"
        config.write_text("global: {scrape_interval: 1h}\n")
        return [self.binary, f"--config.file={config}",
                f"--storage.tsdb.path={self.workdir / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--web.enable-remote-write-receiver", "--storage.tsdb.retention.time=100y",
                "--log.level=warn"]

    def ready(self) -> bool:
        return self.http.get("/-/ready").status_code == 200

    def data_bytes(self) -> int:
        return 0


class Watchkeeper:
    """``watchkeeper serve`` in its own process with a write token (the code of
    ``code/src`` when given, else this tree's)."""

    def __init__(self, workdir: Path, code: Path | None = None) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None
        self.cwd = code or REPO
        self.env = dict(os.environ, PYTHONPATH=str(code / "src")) if code else None
        created = subprocess.run([*WATCHKEEPER, "token", "create", "--user", "bench", "--write",
                                  "--data-dir", str(workdir)], cwd=self.cwd, env=self.env,
                                 capture_output=True, text=True, timeout=60, check=True)
        self.http = httpx.Client(base_url=self.url, timeout=600.0, headers={
            "Authorization": f"Bearer {created.stdout.split()[-1]}"})

    @contextlib.contextmanager
    def running(self) -> Iterator[Watchkeeper]:
        log = (self.workdir / "server.log").open("wb")
        proc = subprocess.Popen([*WATCHKEEPER, "serve", "--listen", f"127.0.0.1:{self.port}",
                                 "--data-dir", str(self.workdir), "--log-level", "warning"],
                                cwd=self.cwd, env=self.env, stdout=log, stderr=subprocess.STDOUT)
        self.proc = proc
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                with contextlib.suppress(httpx.HTTPError):
                    if self.http.get("/api/v1/health").status_code == 200:
                        break
                time.sleep(0.2)
            yield self
        finally:
            proc.terminate()
            proc.wait(60)
            log.close()


def quiet(pid: int, timeout: float = 300.0) -> float:
    """Seconds until process ``pid`` stays under 10 % of a CPU for 3 s (its compaction
    after a load done), at most ``timeout``: queries then measure reading, not a backlog."""
    process = psutil.Process(pid)
    started = time.monotonic()
    calm = 0
    while time.monotonic() - started < timeout and calm < 3:
        calm = calm + 1 if process.cpu_percent(interval=1.0) < 10 else 0
    return time.monotonic() - started


def idle(pids: list[int], timeout: float = 2.0) -> None:
    """Until every process of ``pids`` used under 5 % of a CPU over 50 ms (``timeout`` at
    most): what one server does after its answer is not charged to the next one."""
    processes = [psutil.Process(pid) for pid in pids]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        before = [p.cpu_times() for p in processes]
        time.sleep(0.05)
        busy = max(sum(p.cpu_times()[:2]) - sum(b[:2])
                   for p, b in zip(processes, before, strict=True))
        if busy < 0.0025:
            return


def load(http: httpx.Client, path: str, bodies: list[bytes]) -> float:
    started = time.perf_counter()
    for body in bodies:
        http.post(path, content=body, headers=REMOTE_WRITE).raise_for_status()
    return time.perf_counter() - started


def queries(samples: int) -> list[tuple[str, str, dict[str, str]]]:
    start = T0_MS / 1000 + 600
    end = T0_MS / 1000 + (samples - 1) * STEP_MS / 1000
    span = {"start": f"{start:.0f}", "end": f"{end:.0f}", "step": "60"}
    return [
        ("sum by (instance) (rate(x[5m])), step 60 s", "query_range",
         {"query": "sum by (instance) (rate(x[5m]))", **span}),
        ("histogram_quantile(0.99, sum by (le) (rate(h_bucket[5m]))), step 60 s",
         "query_range", {"query": "histogram_quantile(0.99, sum by (le) (rate(h_bucket[5m])))",
                         **span}),
        ("topk(10, rate(x[5m])) instant", "query",
         {"query": "topk(10, rate(x[5m]))", "time": f"{end:.0f}"}),
    ]


def ask(http: httpx.Client, base: str, route: str, params: dict[str, str]) -> tuple[float, Any]:
    started = time.perf_counter()
    response = http.get(f"{base}/{route}", params=params)
    took = time.perf_counter() - started
    response.raise_for_status()
    return took * 1000, response.json()["data"]


def summary(data: Any) -> tuple[int, float]:
    result = sorted(data["result"], key=lambda s: sorted(s["metric"].items()))
    if not result:
        return 0, math.nan
    first = result[0]
    value = first["value"][1] if "value" in first else first["values"][len(first["values"]) // 2][1]
    return len(result), float(value)


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q))


def main(args: argparse.Namespace) -> None:
    bodies, samples = payloads(args.hours)
    print(f"{len(bodies)} remote-write requests, {1000 * samples:,} samples", flush=True)
    with contextlib.ExitStack() as stack:
        servers: dict[str, tuple[httpx.Client, str]] = {}
        pids: list[int] = []
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="wk-bench-promql-")))
        ours = stack.enter_context(Watchkeeper(tmp).running())
        print(f"watchkeeper loaded in {load(ours.http, '/prometheus/api/v1/write', bodies):.0f} s",
              flush=True)
        assert ours.proc is not None
        print(f"watchkeeper quiet after {quiet(ours.proc.pid):.0f} s", flush=True)
        servers["watchkeeper"] = (ours.http, "/prometheus/api/v1")
        pids.append(ours.proc.pid)
        if args.compare is not None:
            theirs_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(
                prefix="wk-bench-promql-before-")))
            theirs = stack.enter_context(Watchkeeper(theirs_dir, args.compare).running())
            took = load(theirs.http, "/prometheus/api/v1/write", bodies)
            print(f"watchkeeper ({args.compare}) loaded in {took:.0f} s", flush=True)
            assert theirs.proc is not None
            print(f"watchkeeper ({args.compare}) quiet after {quiet(theirs.proc.pid):.0f} s",
                  flush=True)
            servers[BEFORE] = (theirs.http, "/prometheus/api/v1")
            pids.append(theirs.proc.pid)
        for cls, path in ((VictoriaMetrics, "/api/v1/write"), (Prometheus, "/api/v1/write")):
            try:
                peer = stack.enter_context(cls.started())
            except PeerUnavailable as exc:
                print(f"{cls.name} skipped: {exc}")
                continue
            print(f"{cls.name} loaded in {load(peer.http, path, bodies):.0f} s", flush=True)
            if isinstance(peer, VictoriaMetrics):
                peer.flush()
            print(f"{cls.name} quiet after {quiet(peer.pid):.0f} s", flush=True)
            servers[cls.name] = (peer.http, "/api/v1")
            pids.append(peer.pid)
        rows: list[Row] = []
        for title, route, params in queries(samples):
            times: dict[str, list[float]] = {name: [] for name in servers}
            answers = {}
            order = list(servers)
            for run in range(args.runs):
                # each system after each other equally often, and only once every server
                # is idle: a Go server's collector runs on after its answer
                for name in order[run % len(order):] + order[:run % len(order)]:
                    idle(pids)
                    http, base = servers[name]
                    took, data = ask(http, base, route, params)
                    times[name].append(took)
                    answers[name] = summary(data)
            rows.append((title, {n: (percentile(t, 50), percentile(t, 99), t[0])
                                 for n, t in times.items()}, answers))
    report(rows)


Row = tuple[str, dict[str, tuple[float, float, float]], dict[str, tuple[int, float]]]


def report(rows: list[Row]) -> None:
    names = list(rows[0][1])
    print("\n| query | " + " | ".join(f"{n} p50 / p99 (first) ms" for n in names)
          + " | " + " | ".join(f"p50 ratio to {n}" for n in names[1:]) + " |")
    print("| --- |" + " --- |" * (2 * len(names) - 1))
    for title, figures, _ in rows:
        print(f"| {title} | " + " | ".join(
            f"{figures[n][0]:.0f} / {figures[n][1]:.0f} ({figures[n][2]:.0f})" for n in names)
            + " | " + " | ".join(f"{figures[names[0]][0] / figures[n][0]:.2f}x"
                                 for n in names[1:]) + " |")
    print(f"\nload average after the queries: {os.getloadavg()[0]:.1f} "
          f"({os.cpu_count()} cores)")
    print("\nanswers (series, a value of the first series):")
    for title, _, answers in rows:
        print(f"  {title}: " + "; ".join(f"{n} {a[0]} {a[1]:.6g}" for n, a in answers.items()))
        base = answers["watchkeeper"]
        for name, (count, value) in answers.items():
            same = count == base[0] and (math.isclose(value, base[1], rel_tol=1e-6)
                                         or (math.isnan(value) and math.isnan(base[1])))
            if not same:
                print(f"  !! {name} differs from watchkeeper")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--hours", type=float, default=24.0)
    parser.add_argument("--compare", type=Path, default=None,
                        help="a source tree (its src/) to run as a second watchkeeper")
    main(parser.parse_args())
