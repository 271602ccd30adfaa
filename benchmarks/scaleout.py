"""The scaled deployment measured: 1, 2 and 4 processes of each role on one machine.

    python benchmarks/scaleout.py [--processes 1,2,4] [--quick] [--json FILE]

Two parts, each with real ``watchkeeper`` processes started as an operator starts them
(one configuration file, a data directory per process, as on separate hosts):

**Archive**: N ``watchkeeper serve`` processes on one PostgreSQL archive schema
(``archive.backend: postgres``, the local PostgreSQL, trust auth). The workload is the
archive benchmark's (``benchmarks/archive.py``: ``--series`` series, 1 % histograms,
one point per series per 10-s round, one request per round in the native bulk columnar
form); the rounds are spread over the N servers by N concurrent senders (sender k sends
rounds k, k+N, ...; as a load balancer would). Reported per N:

- ingest, points/s: *HTTP only* (bodies encoded beforehand) and *end to end* (plus the
  encoding time of one client), the median of ``--runs`` runs;
- VictoriaMetrics single node on the same rounds, the same number of senders, in the
  same run (``benchmarks/peers.py``), and the ratio;
- one-series day read, p50/p99 (ms): ``--query-series`` series x 24 h of 10-s points are
  bulk-loaded through the servers, and reads of random series (spread over the
  servers) start *the moment the load is acknowledged* and go on for ``--read-window``
  seconds (the background compaction running), then again once every process rests;
- bytes per point in PostgreSQL (every relation of the schema, TOAST and indexes
  included) after the servers stopped (they compact as they close), over every point
  written;
- CPU seconds per million points, per role: the ``serve`` processes, and the
  PostgreSQL backends serving their connections (found by client port in
  ``pg_stat_activity``), from psutil's ``cpu_times`` (user + system).

**Pipeline**: threshold -> dedup -> enrich -> alarms as N ``watchkeeper engine --name X``
processes each (``bus.backend: amqp``, the local RabbitMQ), with the scaled layout's
state: alarms ``store: postgres``, threshold and dedup ``state: postgres``, 8
partitions each; the archive writer stage runs in this process into a counting sink
(the archive's cost is the first part's). Check events of 1,000 entities
(``benchmarks/pipeline.py``'s) are published in batches of 1,000; reported per N:
events/s from the first publish until the last event reached the sink, and CPU
seconds per million events per engine role, for their PostgreSQL backends, and for the
RabbitMQ broker (``beam.smp``: machine-wide, so other work on the broker counts too).

On a 2-core machine more processes cannot go faster; the CPU seconds per million
are what say how many cores (hosts) a given rate needs. The machine is shared: compare
figures from the same run only. ``--compare DIR`` runs the archive part a second time
for each N, right after the first, with the ``serve`` processes running the code of
another source tree (``DIR/src``, e.g. a ``git worktree`` of an older commit): the
before/after of a change in one run.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import msgspec
import numpy as np
import psutil

from watchkeeper.wire import COLUMNS_CONTENT_TYPE

sys.path.insert(0, str(Path(__file__).parent))
from archive import (  # the folder is not a package: scripts import their neighbours
    INTERVAL,
    Q_T0,
    T0,
    Round,
    Workload,
    _join,
    encode_columns,
    encode_vm,
    percentiles,
    settle,
)
from peers import PeerUnavailable, VictoriaMetrics, environment, free_port
from pipeline import ENTITIES, MemorySink, make_events

WATCHKEEPER = [sys.executable, "-m", "watchkeeper.cli.main"]
PG_DSN = os.environ.get("WATCHKEEPER_TEST_PG_DSN",
                        "host=127.0.0.1 user=postgres dbname=watchkeeper_test")
AMQP_URL = os.environ.get("WATCHKEEPER_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
PARTITIONS = 8
BATCH = 1_000
ROLES = ("threshold", "dedup", "enrich", "alarms")


# -- processes and their CPU ----------------------------------------------------------------


@dataclass
class Proc:
    """One ``watchkeeper`` process with its output in a log file."""

    role: str
    proc: subprocess.Popen[bytes]
    log: Path
    url: str = ""

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=120)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()


def launch(role: str, args: Sequence[str], log: Path, cwd: Path,
           env: dict[str, str] | None = None) -> Proc:
    with log.open("wb") as out:
        proc = subprocess.Popen([*WATCHKEEPER, *args], cwd=cwd, stdout=out,
                                stderr=subprocess.STDOUT, env=env)
    return Proc(role, proc, log)


def wait_until(check: Callable[[], bool], timeout: float, what: str,
               procs: Sequence[Proc]) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        dead = [p for p in procs if p.proc.poll() is not None]
        if dead or time.monotonic() > deadline:
            tails = "\n".join(f"--- {p.log}\n{p.log.read_text()[-2000:]}" for p in procs)
            raise RuntimeError(f"{'a process exited' if dead else 'timed out'} waiting for"
                               f" {what}\n{tails}")
        time.sleep(0.05)


def cpu_seconds(pids: Sequence[int]) -> dict[int, float]:
    """user + system CPU seconds of each live process of ``pids`` and of their children
    (a serve process's compaction process)."""
    out = {}
    for pid in pids:
        with contextlib.suppress(psutil.Error):
            process = psutil.Process(pid)
            for each in [process, *process.children(recursive=True)]:
                with contextlib.suppress(psutil.Error):
                    times = each.cpu_times()
                    out[each.pid] = times.user + times.system
    return out


def spent(before: dict[int, float], after: dict[int, float]) -> float:
    """CPU seconds between two samples, over the processes present in both."""
    return sum(after[pid] - before[pid] for pid in before.keys() & after.keys())


def pg_backends(pids: Sequence[int]) -> list[int]:
    """The PostgreSQL backends serving the TCP connections of ``pids``."""
    import psycopg

    ports = set()
    for pid in pids:
        with contextlib.suppress(psutil.Error):
            for conn in psutil.Process(pid).net_connections(kind="tcp"):
                if conn.raddr and conn.raddr.port == 5432:
                    ports.add(conn.laddr.port)
    with psycopg.connect(PG_DSN, autocommit=True) as db:
        rows = db.execute("SELECT pid, client_port FROM pg_stat_activity"
                          " WHERE client_port IS NOT NULL").fetchall()
    return [pid for pid, port in rows if port in ports]


def broker_pids() -> list[int]:
    """RabbitMQ's Erlang VM (every process named beam.smp)."""
    return [p.pid for p in psutil.process_iter(["name"]) if p.info["name"] == "beam.smp"]


def drop_schema(schema: str) -> None:
    import psycopg

    with psycopg.connect(PG_DSN, autocommit=True) as db:
        db.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def schema_bytes(schema: str) -> int:
    """Bytes of every table of ``schema`` with its TOAST and indexes."""
    import psycopg

    with psycopg.connect(PG_DSN, autocommit=True) as db:
        row = db.execute(
            "SELECT sum(pg_total_relation_size(c.oid)) FROM pg_class c JOIN pg_namespace n"
            " ON n.oid = c.relnamespace WHERE n.nspname = %s AND c.relkind = 'r'",
            (schema,)).fetchone()
    return int(row[0]) if row and row[0] else 0


# -- sending in parallel --------------------------------------------------------------------


def send_spread(bodies: Sequence[bytes], senders: Sequence[Callable[[bytes], None]]) -> float:
    """Seconds for ``len(senders)`` threads to send the bodies, sender k bodies k, k+N, ..."""
    n = len(senders)

    def one(k: int) -> None:
        for body in bodies[k::n]:
            senders[k](body)

    with ThreadPoolExecutor(n) as pool:
        began = time.perf_counter()
        for future in [pool.submit(one, k) for k in range(n)]:
            future.result()
        return time.perf_counter() - began


def ours_sender(url: str, token: str) -> Callable[[bytes], None]:
    client = httpx.Client(base_url=url, timeout=300.0, headers={
        "Content-Type": COLUMNS_CONTENT_TYPE, "Authorization": f"Token {token}"})

    def send(body: bytes) -> None:
        client.post("/api/v1/write", content=body).raise_for_status()

    return send


def vm_sender(url: str) -> Callable[[bytes], None]:
    client = httpx.Client(base_url=url, timeout=300.0)

    def send(body: bytes) -> None:
        client.post("/api/v1/import", content=body).raise_for_status()

    return send


# -- part 1: the archive --------------------------------------------------------------------


@dataclass
class ArchiveRun:
    """Figures of N ``serve`` processes."""

    processes: int
    code: str = "this"  # or the --compare tree
    ingest: list[dict[str, float]] = field(default_factory=list)
    vm_ingest: list[dict[str, float]] = field(default_factory=list)
    load_points_per_s: float = 0.0
    read_after_load_ms: dict[str, float] = field(default_factory=dict)
    read_at_rest_ms: dict[str, float] = field(default_factory=dict)
    bytes_per_point: float = 0.0
    points: int = 0
    cpu_per_million: dict[str, float] = field(default_factory=dict)
    close_s: float = 0.0
    pg_backends: int = 0


def start_servers(n: int, root: Path, schema: str,
                  env: dict[str, str] | None = None) -> tuple[list[Proc], str]:
    """N servers on one schema (each its own data directory); a write token for all."""
    config = root / "wk.json"
    config.write_text(json.dumps({
        "log_level": "warning",
        "server": {"max_body_bytes": 512 * 1024 * 1024},
        "archive": {"backend": "postgres", "options": {"dsn": PG_DSN, "schema": schema}},
        "esmond": {"enabled": False}}))
    servers: list[Proc] = []
    token = ""
    for i in range(n):
        port = free_port()
        data = root / f"serve{i}"
        data.mkdir()
        server = launch("serve", ["serve", "-c", str(config), "--data-dir", str(data),
                                  "--listen", f"127.0.0.1:{port}"], root / f"serve{i}.log", root,
                        env)
        server.url = f"http://127.0.0.1:{port}"
        servers.append(server)
        wait_until(lambda s=server: _healthy(s.url), 120, f"serve {i} to answer", servers)
        if not token:  # the first server made the schema (and its token table)
            done = subprocess.run([*WATCHKEEPER, "token", "create", "--user", "bench",
                                   "--write", "-c", str(config)], capture_output=True,
                                  text=True, check=True, timeout=60, cwd=root, env=env)
            token = done.stdout.split()[-1]
    return servers, token


def _healthy(url: str) -> bool:
    try:
        return httpx.get(f"{url}/api/v1/health", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def timed_ingest(encode: Callable[[Round], bytes], senders: Sequence[Callable[[bytes], None]],
                 rounds: list[Round], points: int, *, pids: Sequence[int] = (),
                 backends: Sequence[int] = ()) -> dict[str, float]:
    began = time.perf_counter()
    bodies = [encode(r) for r in rounds]
    encode_s = time.perf_counter() - began
    cpu0, pg0 = cpu_seconds(pids), cpu_seconds(backends)
    send_s = send_spread(bodies, senders)
    cpu1, pg1 = cpu_seconds(pids), cpu_seconds(backends)
    return {"points": points, "encode_s": encode_s, "send_s": send_s,
            "http_only": points / send_s, "end_to_end": points / (encode_s + send_s),
            "serve_cpu_s": spent(cpu0, cpu1), "pg_cpu_s": spent(pg0, pg1)}


def archive_part(args: argparse.Namespace, root: Path, vm: VictoriaMetrics | None,
                 n: int, offset: int, *, compare: Path | None = None) -> ArchiveRun:
    """One configuration: n servers (running the code of ``compare`` if given).
    ``offset`` keeps each configuration (and VM's share of it) on timestamps of its own."""
    w = Workload(args.series, args.hist_series)
    code = "this" if compare is None else "compare"
    result = ArchiveRun(n, code)
    schema = f"wk_scale_{os.getpid()}_{n}_{code}"
    workdir = root / f"archive-{n}-{code}"
    workdir.mkdir()
    drop_schema(schema)
    env = None if compare is None else dict(os.environ, PYTHONPATH=str(compare / "src"))
    servers, token = start_servers(n, workdir, schema, env)
    written = 0
    try:
        pids = [s.pid for s in servers]
        senders = [ours_sender(s.url, token) for s in servers]
        # untimed: create the series, open every server's connections
        warm = list(w.rounds(offset, n, seed=100))
        send_spread([encode_columns(w, r) for r in warm], senders)
        written += n * w.n_series
        backends = pg_backends(pids)
        vm_senders = [vm_sender(vm.url) for _ in range(n)] if vm else []
        for run_no in range(args.runs):
            print(f"archive x{n}: ingest run {run_no + 1}/{args.runs}", file=sys.stderr)
            first = offset + n + run_no * 2 * args.rounds
            rounds = list(w.rounds(first, args.rounds, seed=run_no))
            points = w.n_series * args.rounds
            result.ingest.append(timed_ingest(lambda r: encode_columns(w, r), senders, rounds,
                                              points, pids=pids, backends=backends))
            written += points
            if vm is not None:
                rounds = list(w.rounds(first + args.rounds, args.rounds, seed=run_no))
                result.vm_ingest.append(timed_ingest(lambda r: encode_vm(w, r), vm_senders,
                                                     rounds, points, pids=[vm.pid]))
        serve_cpu = sum(r["serve_cpu_s"] for r in result.ingest)
        pg_cpu = sum(r["pg_cpu_s"] for r in result.ingest)
        timed = sum(r["points"] for r in result.ingest)
        result.cpu_per_million = {"serve": serve_cpu / timed * 1e6,
                                  "postgres backends": pg_cpu / timed * 1e6}
        if result.vm_ingest:
            result.cpu_per_million["victoria-metrics"] = sum(
                r["serve_cpu_s"] for r in result.vm_ingest) / timed * 1e6
        result.pg_backends = len(backends)
        written += read_part(args, result, servers, token)
        settle(pids, timeout=60)
        result.close_s = _stop_all(servers)
        result.points = written
        result.bytes_per_point = schema_bytes(schema) / written
    finally:
        _stop_all(servers)
        drop_schema(schema)
    return result


def _stop_all(procs: Sequence[Proc]) -> float:
    began = time.perf_counter()
    for proc in procs:
        if proc.proc.poll() is None:
            proc.proc.send_signal(signal.SIGTERM)
    for proc in procs:
        proc.stop()
    return time.perf_counter() - began


def read_part(args: argparse.Namespace, result: ArchiveRun, servers: Sequence[Proc],
              token: str) -> int:
    """Bulk-load the query data through the servers, then time one-series day reads
    from the moment it is acknowledged; the points loaded."""
    qw = Workload(args.query_series, 0, metric="q_octets", subject="qdev")
    rounds = args.query_hours * 360
    first = (Q_T0 - T0) // INTERVAL
    per_request = max(1, 10_000 // qw.n_series)
    all_rounds = list(qw.rounds(first, rounds, seed=99))
    bodies = [encode_columns(qw, _join(all_rounds[i:i + per_request]))
              for i in range(0, rounds, per_request)]
    senders = [ours_sender(s.url, token) for s in servers]
    print(f"archive x{len(servers)}: loading {qw.n_series} x {rounds} points",
          file=sys.stderr)
    load_s = send_spread(bodies, senders)
    loaded = qw.n_series * rounds
    result.load_points_per_s = loaded / load_s
    day = (Q_T0, Q_T0 + 86_400 - 0.001)
    clients = [httpx.Client(base_url=s.url, timeout=60.0) for s in servers]
    rng = np.random.default_rng(5)

    def read(k: int) -> float:
        i = int(rng.integers(0, qw.n_series))
        began = time.perf_counter()
        response = clients[k % len(clients)].get("/api/v1/query", params={
            "series": qw.ours[i], "start": day[0], "end": day[1]})
        elapsed = (time.perf_counter() - began) * 1000
        response.raise_for_status()
        return elapsed

    samples, k, began = [], 0, time.perf_counter()
    while time.perf_counter() - began < args.read_window:
        samples.append(read(k))
        k += 1
    result.read_after_load_ms = _summary(samples)
    settle([s.pid for s in servers], timeout=120)
    result.read_at_rest_ms = _summary([read(k) for k in range(args.queries)])
    for client in clients:
        client.close()
    return loaded


def _summary(samples: list[float]) -> dict[str, float]:
    p50, p99 = percentiles(samples)
    return {"p50": p50, "p99": p99, "max": max(samples), "n": len(samples)}


# -- part 2: the engine chain ---------------------------------------------------------------


def chain_config(prefix: str, schema: str, kind: str = "postgres") -> str:
    """The chain as one configuration file for every engine process; ``kind`` is where
    the stateful engines keep their state (``postgres``, or ``memory`` for reference)."""
    state: dict[str, str] = {"dsn": PG_DSN, "schema": schema} if kind == "postgres" else {}
    options = {
        "threshold": {"rules": [{"metric": "cpu.*", "warning": 80, "critical": 90,
                                 "hysteresis": 2}], "state": kind, **state},
        "dedup": {"state": kind, **state},
        "enrich": {"keys": ["address", "tags"]},
        "alarms": {"store": kind, **state},
        "archive": {"batch_size": 10_000},
    }
    names = [*ROLES, "archive"]
    devices = "\n".join(f"    - {{name: host{n}, address: 10.0.{n // 256}.{n % 256}, "
                        f"tags: [site{n % 7}]}}" for n in range(ENTITIES))
    engines = []
    for i, name in enumerate(names):
        spec = {"name": name, "engine": "archive_writer" if name == "archive" else name,
                "beat_interval": 3600, "options": options[name]}
        if name in ("threshold", "dedup", "alarms"):
            spec["partitions"] = PARTITIONS
        if i + 1 < len(names):
            spec["next"] = [names[i + 1]]
        engines.append("  - " + msgspec.json.encode(spec).decode())
    return (f"log_level: info\nbus:\n  backend: amqp\n  options: {{url: '{AMQP_URL}', "
            f"prefix: {prefix}}}\ninventory:\n  devices:\n{devices}\nengines:\n"
            + "\n".join(engines) + "\n")


def held(log: Path, engine: str) -> list[int] | None:
    """The partitions of ``engine`` the process said it took last."""
    found = re.findall(rf"queue {engine}: worker \w+ \(of \d+\) takes partitions "
                       r"\[([\d, ]*)\]", log.read_text())
    if not found:
        return None
    return [int(p) for p in found[-1].split(",") if p.strip()]


def shared_out(procs: Sequence[Proc]) -> bool:
    """Every partitioned engine's partitions split over all its processes, once each."""
    for role in ("threshold", "dedup", "alarms"):
        shares = [held(p.log, role) for p in procs if p.role == role]
        if any(not s for s in shares):
            return False
        if sorted(x for s in shares for x in s or []) != list(range(PARTITIONS)):
            return False
    return True


@dataclass
class ChainRun:
    processes: int
    events: int
    state: str
    seconds: float = 0.0
    pg_backends: int = 0
    cpu_per_million: dict[str, float] = field(default_factory=dict)

    @property
    def events_per_s(self) -> float:
        return self.events / self.seconds if self.seconds else 0.0


async def chain_part(args: argparse.Namespace, root: Path, n: int,
                     kind: str = "postgres") -> ChainRun:
    from watchkeeper.clock import SystemClock
    from watchkeeper.pipeline import Pipeline, Services
    from watchkeeper.pipeline.bus.amqp import AmqpBus
    from watchkeeper.runtime.assemble import build_engines
    from watchkeeper.settings import load_settings
    from watchkeeper.telemetry import SelfMetrics

    workdir = root / f"chain-{n}-{kind}"
    workdir.mkdir()
    prefix = f"wkscale.{uuid.uuid4().hex[:8]}"
    schema = f"wk_scale_state_{os.getpid()}_{n}"
    path = workdir / "wk.yaml"
    path.write_text(chain_config(prefix, schema, kind))
    settings, locator = load_settings(path.read_text(), source=str(path))
    sink = MemorySink()
    engines = build_engines(settings, locator, Services(clock=SystemClock(),
                                                        metrics=SelfMetrics(), sink=sink))
    warm = 5 * BATCH
    events = make_events(warm + args.events)
    result = ChainRun(n, args.events, kind)
    procs: list[Proc] = []
    try:
        start_engines(n, workdir, path, procs)
        async with AsyncExitStack() as stack:
            bus = AmqpBus(url=AMQP_URL, prefix=prefix)
            await bus.start(stack)
            pipeline = Pipeline(engines, bus, run={"archive"})
            await pipeline.start(stack)
            for start in range(0, warm, BATCH):
                await pipeline.publish(events[start:start + BATCH])
            await _wait_points(sink, warm, args.chain_timeout)
            pids = {role: [p.pid for p in procs if p.role == role] for role in ROLES}
            backends = pg_backends([p.pid for p in procs])
            result.pg_backends = len(backends)
            broker = broker_pids()
            everyone = [*(pid for ps in pids.values() for pid in ps), *backends, *broker]
            cpu0 = cpu_seconds(everyone)
            print(f"chain x{n}: {args.events:,} events", file=sys.stderr)
            began = time.perf_counter()
            for start in range(warm, len(events), BATCH):
                await pipeline.publish(events[start:start + BATCH])
            await _wait_points(sink, len(events), args.chain_timeout)
            result.seconds = time.perf_counter() - began
            cpu1 = cpu_seconds(everyone)
            groups = {**pids, "postgres backends": backends, "rabbitmq (machine-wide)": broker}
            result.cpu_per_million = {name: spent(_only(cpu0, ps), cpu1) * 1e6 / args.events
                                      for name, ps in groups.items()}
            await pipeline.stop(drain=False)
            _stop_all(procs)
            await bus.delete_queues()
    finally:
        _stop_all(procs)
        drop_schema(schema)
    return result


def start_engines(n: int, workdir: Path, config: Path, procs: list[Proc]) -> None:
    """N processes of every role, each with a data directory of its own ("host i"),
    appended to ``procs`` as they start; returns once the partitions are shared out."""
    for role in ROLES:
        for i in range(n):
            data = workdir / f"host{i}"
            data.mkdir(exist_ok=True)
            procs.append(launch(role, ["engine", "--name", role, "-c", str(config),
                                       "--data-dir", str(data)],
                                workdir / f"host{i}-{role}.log", workdir))
    wait_until(lambda: all("running" in p.log.read_text() for p in procs), 180,
               "every engine process to run", procs)
    wait_until(lambda: shared_out(procs), 60, "the partitions to be shared out", procs)


def _only(sample: dict[int, float], pids: Sequence[int]) -> dict[int, float]:
    return {pid: sample[pid] for pid in pids if pid in sample}


async def _wait_points(sink: MemorySink, count: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while sink.points < count:
        if time.monotonic() > deadline:
            raise RuntimeError(f"the chain delivered {sink.points:,} of {count:,} events"
                               f" in {timeout:.0f} s")
        await asyncio.sleep(0.005)


# -- the run and the report -----------------------------------------------------------------


def run(args: argparse.Namespace) -> dict[str, Any]:
    root = Path(tempfile.mkdtemp(prefix="wk-bench-scaleout-", dir=args.dir))
    results: dict[str, Any] = {"args": {k: str(v) for k, v in vars(args).items()},
                               "archive": [], "chain": [], "vm": {}}
    results["environment"] = {"python": platform.python_version(), "cpus": os.cpu_count(),
                              "load average": os.getloadavg(), **environment()}
    with contextlib.ExitStack() as stack:
        vm: VictoriaMetrics | None = None
        if args.vm:
            try:
                vm = stack.enter_context(VictoriaMetrics.started(root))
            except PeerUnavailable as exc:
                print(f"skipping VictoriaMetrics: {exc}", file=sys.stderr)
        if args.archive:
            codes = [None] if args.compare is None else [args.compare, None]
            for i, n in enumerate(args.processes):
                for j, compare in enumerate(codes):
                    offset = (i * len(codes) + j) * (2 * args.runs + 1) * args.rounds * 2
                    results["archive"].append(
                        vars(archive_part(args, root, vm, n, offset, compare=compare)))
        if vm is not None and results["archive"]:
            vm.flush()
            vm_points = sum(r["points"] for a in results["archive"] for r in a["vm_ingest"])
            results["vm"] = {"bytes_per_point": vm.data_bytes() / max(vm_points, 1),
                             "points": vm_points}
    if args.chain:
        runs = [(n, "postgres") for n in args.processes]
        if args.memory_reference:
            runs.append((1, "memory"))
        for n, kind in runs:
            try:
                chain = asyncio.run(chain_part(args, root, n, kind))
            except RuntimeError as exc:  # keep the figures of the other configurations
                print(f"chain x{n} ({kind}) failed: {exc}", file=sys.stderr)
                results.setdefault("failed", []).append(f"chain x{n} ({kind}): {exc}")
                continue
            results["chain"].append(vars(chain) | {"events_per_s": chain.events_per_s})
    import shutil

    shutil.rmtree(root, ignore_errors=True)
    return results


def _median(runs: list[dict[str, float]], key: str) -> float:
    return statistics.median(r[key] for r in runs) if runs else float("nan")


def _ratio(a: dict[str, Any], key: str) -> str:
    return f"{_median(a['ingest'], key) / _median(a['vm_ingest'], key):.2f}x"


def report(results: dict[str, Any]) -> str:
    env = results["environment"]
    lines = [f"python {env['python']}, {env['cpus']} cpus, load average at start "
             + " / ".join(f"{x:.1f}" for x in env["load average"])
             + f", victoria-metrics {env.get('victoria-metrics', '?')}", ""]
    archive = results["archive"]
    if archive:
        lines += ["| serve processes on one PostgreSQL schema | " + " | ".join(
            str(a["processes"]) + ("" if a.get("code", "this") == "this" else " (compare)")
            for a in archive) + " |",
            "| --- |" + " ---: |" * len(archive)]

        def row(label: str, fmt: Callable[[dict[str, Any]], str]) -> None:
            lines.append(f"| {label} | " + " | ".join(fmt(a) for a in archive) + " |")

        row("ingest HTTP only, points/s (median)",
            lambda a: f"{_median(a['ingest'], 'http_only'):,.0f}")
        row("VictoriaMetrics, same senders, points/s",
            lambda a: f"{_median(a['vm_ingest'], 'http_only'):,.0f}")
        row("watchkeeper ÷ VictoriaMetrics, HTTP only", lambda a: _ratio(a, "http_only"))
        row("ingest end to end, points/s (median)",
            lambda a: f"{_median(a['ingest'], 'end_to_end'):,.0f}")
        row("watchkeeper ÷ VictoriaMetrics, end to end", lambda a: _ratio(a, "end_to_end"))
        row("ingest runs, HTTP only", lambda a: " / ".join(
            f"{r['http_only'] / 1e3:,.0f}k" for r in a["ingest"]))
        row("bulk load of the day data, points/s", lambda a: f"{a['load_points_per_s']:,.0f}")
        row("one-series day read right after the load, p50 / p99 / max ms", lambda a: (
            "{p50:.1f} / {p99:.1f} / {max:.0f}".format(**a["read_after_load_ms"])))
        row("reads in that window", lambda a: f"{a['read_after_load_ms']['n']:,}")
        row("one-series day read at rest, p50 / p99 ms", lambda a: (
            "{p50:.1f} / {p99:.1f}".format(**a["read_at_rest_ms"])))
        row("bytes per point in PostgreSQL", lambda a: f"{a['bytes_per_point']:.2f}")
        row("CPU s per million points: serve", lambda a: f"{a['cpu_per_million']['serve']:.2f}")
        row("CPU s per million points: PostgreSQL backends",
            lambda a: f"{a['cpu_per_million']['postgres backends']:.2f}")
        row("CPU s per million points: VictoriaMetrics (same rounds)",
            lambda a: f"{a['cpu_per_million'].get('victoria-metrics', float('nan')):.2f}")
        row("stop (closing compaction), s", lambda a: f"{a['close_s']:.1f}")
        if results["vm"]:
            vm = results["vm"]
            lines += ["", (f"VictoriaMetrics: {vm['bytes_per_point']:.2f} bytes per point over"
                           f" its {vm['points']:,} points (after a flush; its merges may"
                           " shrink it later).")]
        lines.append("")
    chain = results["chain"]
    if chain:
        roles = list(chain[0]["cpu_per_million"])
        lines += ["| engine processes per role (RabbitMQ), engine state in | "
                  + " | ".join(f"{c['processes']}, {c['state']}" for c in chain) + " |",
                  "| --- |" + " ---: |" * len(chain),
                  "| events/s through threshold → dedup → enrich → alarms | "
                  + " | ".join(f"{c['events_per_s']:,.0f}" for c in chain) + " |"]
        for role in roles:
            lines.append(f"| CPU s per million events: {role} | " + " | ".join(
                f"{c['cpu_per_million'].get(role, float('nan')):.1f}" for c in chain) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--processes", default="1,2,4",
                        help="process counts to run, comma-separated")
    parser.add_argument("--series", type=int, default=10_000)
    parser.add_argument("--hist-series", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=60)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--query-series", type=int, default=1_000)
    parser.add_argument("--query-hours", type=int, default=24)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--read-window", type=float, default=20.0,
                        help="seconds of reads right after the bulk load")
    parser.add_argument("--events", type=int, default=30_000)
    parser.add_argument("--no-memory-reference", dest="memory_reference",
                        action="store_false",
                        help="skip the chain with its state in memory (1 process each)")
    parser.add_argument("--chain-timeout", type=float, default=900.0)
    parser.add_argument("--no-vm", dest="vm", action="store_false")
    parser.add_argument("--no-archive", dest="archive", action="store_false")
    parser.add_argument("--no-chain", dest="chain", action="store_false")
    parser.add_argument("--quick", action="store_true",
                        help="a short smoke run: 1 and 2 processes, small workloads")
    parser.add_argument("--json", type=Path, default=None, help="write the figures here")
    parser.add_argument("--dir", type=Path, default=None)
    parser.add_argument("--compare", type=Path, default=None,
                        help="also run the archive part with the serve processes on the"
                             " code of this source tree (its src/), for a before/after")
    args = parser.parse_args()
    if args.quick:
        args.processes = "1,2"
        args.series, args.hist_series, args.rounds, args.runs = 2_000, 20, 10, 1
        args.query_series, args.query_hours, args.queries = 100, 24, 50
        args.read_window, args.events = 3.0, 5_000
    args.processes = [int(p) for p in str(args.processes).split(",")]
    results = run(args)
    print(report(results))
    if args.json:
        args.json.write_text(json.dumps(results, indent=1, default=str))


if __name__ == "__main__":
    main()
