"""Small writers: many collectors posting small batches, against VictoriaMetrics in one run.

    python benchmarks/small_writers.py [--senders 1,8,64 --points 1000 --requests 2000]

Each of ``--senders`` concurrent senders owns ``--points`` series and posts one point of
each per request (watchkeeper: the columnar bulk form of ``POST /api/v1/write`` to a real
uvicorn server, ``benchmarks/archive.py --serve``, every acknowledged write fsynced;
VictoriaMetrics: ``/api/v1/import`` JSON lines, acknowledged before it is on disk), and
waits for each answer before its next request. ``--requests`` requests per run, shared
among the senders; bodies are encoded before the clock starts (HTTP only). The systems
take turns run by run (``--runs``), in a rotating order, each once every server is idle;
medians reported, with each server's CPU time per request (user + system, its whole
process: on 2 cores a CPU-bound server's rate is about 2 / that, less the client's
share). ``--compare DIR`` also runs a watchkeeper server from the source tree
``DIR/src`` (e.g. the code before a change), interleaved with the others.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import psutil

sys.path.insert(0, str(Path(__file__).parent))
from archive import Ours, settle  # the folder is not a package: scripts import their neighbours
from peers import VictoriaMetrics, environment

from watchkeeper.wire import COLUMNS_CONTENT_TYPE, WriteColumns

T0 = 1_700_000_000
INTERVAL = 10


class Sender:
    """One collector: its series, and its request bodies for each system."""

    def __init__(self, no: int, points: int) -> None:
        self.series = [f"col{no:03d}/snmp/m{i % 10}{{if=\"{i // 10}\"}}" for i in range(points)]
        self.vm_prefix = [f'{{"metric":{{"__name__":"m{i % 10}","dev":"col{no:03d}",'
                          f'"if":"{i // 10}"}},"values":[' for i in range(points)]
        self.index = np.arange(points, dtype="<i4").tobytes()
        self.rng = np.random.default_rng(no)
        self.counter = self.rng.integers(0, 10**9, points).astype(np.float64)

    def bodies(self, first_round: int, count: int) -> dict[str, list[bytes]]:
        ours, vm = [], []
        for r in range(first_round, first_round + count):
            self.counter += self.rng.integers(0, 10**6, len(self.series))
            ts_ms = (T0 + r * INTERVAL) * 1000 + np.arange(len(self.series)) % 9000
            ours.append(msgspec.msgpack.encode(WriteColumns(
                series=self.series, index=self.index, ts=(ts_ms / 1000.0).tobytes(),
                values=self.counter.tobytes())))
            lines = [f'{p}{v!r}],"timestamps":[{t}]}}' for p, v, t in
                     zip(self.vm_prefix, self.counter.tolist(), ts_ms.tolist(), strict=True)]
            vm.append(("\n".join(lines) + "\n").encode())
        return {"ours": ours, "vm": vm}


async def send_all(url: str, path: str, headers: dict[str, str],
                   per_sender: list[list[bytes]]) -> float:
    """Every sender posts its bodies one after the other on its own keep-alive connection;
    seconds until all are answered. A bare HTTP/1.1 client: httpx's per-request cost
    (~1 ms of CPU) made the client, not the servers, the bottleneck at 8 senders."""
    host, port = url.removeprefix("http://").split(":")
    head = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    connections = [await asyncio.open_connection(host, int(port)) for _ in per_sender]

    async def sender(bodies: list[bytes], conn: tuple[asyncio.StreamReader,
                                                      asyncio.StreamWriter]) -> None:
        reader, writer = conn
        for body in bodies:
            writer.write(f"POST {path} HTTP/1.1\r\nHost: {host}\r\n{head}"
                         f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
            status, length = _response_head(await reader.readuntil(b"\r\n\r\n"))
            answer = await reader.readexactly(length)
            if status >= 300:
                raise RuntimeError(f"{url}{path}: {status} {answer[:200]!r}")

    began = time.perf_counter()
    try:
        await asyncio.gather(*(sender(bodies, conn)
                               for bodies, conn in zip(per_sender, connections, strict=True)))
        return time.perf_counter() - began
    finally:
        for _, writer in connections:
            writer.close()


def _response_head(head: bytes) -> tuple[int, int]:
    """Status and Content-Length of a response head (no length: no body, as for 204)."""
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            length = int(value)
        elif name.strip().lower() == "transfer-encoding":
            raise RuntimeError(f"chunked answers are not handled: {head!r}")
    return status, length


def run(args: argparse.Namespace) -> dict[str, Any]:
    root = Path(tempfile.mkdtemp(prefix="wk-bench-small-", dir=args.dir))
    results: dict[str, Any] = {
        "args": vars(args) | {"dir": str(args.dir), "compare": str(args.compare)},
        "environment": {"python": platform.python_version(), "cpus": os.cpu_count(),
                        **environment()},
        "rates": {}}
    try:
        with ExitStack() as stack:
            vm = stack.enter_context(VictoriaMetrics.started(root))
            targets: dict[str, tuple[str, str, dict[str, str], str, int]] = {}
            pids = [vm.pid]
            servers = {"watchkeeper": None}
            if args.compare:
                env = dict(os.environ, PYTHONPATH=str(args.compare / "src"))
                servers["watchkeeper (compare)"] = env  # type: ignore[assignment]
            for name, env in servers.items():
                ours = Ours(root / name.replace(" ", "_").strip("()"), "embedded", "", env=env)
                ours.workdir.mkdir()
                stack.enter_context(ours.running())
                pids.append(ours.pid)
                targets[name] = (ours.url, "/api/v1/write",
                                 {"Content-Type": COLUMNS_CONTENT_TYPE}, "ours", ours.pid)
            targets["victoria-metrics"] = (vm.url, "/api/v1/import", {}, "vm", vm.pid)
            senders = [Sender(no, args.points) for no in range(max(args.senders))]
            round_no = 0
            for count in args.senders:
                per = max(1, args.requests // count)
                for run_no in range(args.runs):
                    # Each run in another order, each system after the others are idle:
                    # VictoriaMetrics flushes and merges in the background after a run.
                    turn = list(targets.items())
                    turn = turn[run_no % len(turn):] + turn[:run_no % len(turn)]
                    for name, (url, path, headers, form, pid) in turn:
                        settle(pids)
                        bodies = [s.bodies(round_no, per)[form] for s in senders[:count]]
                        cpu0 = psutil.Process(pid).cpu_times()
                        seconds = asyncio.run(send_all(url, path, headers, bodies))
                        cpu1 = psutil.Process(pid).cpu_times()
                        rate = count * per * args.points / seconds
                        results["rates"].setdefault(str(count), {}).setdefault(
                            name, []).append(rate)
                        results.setdefault("cpu_ms", {}).setdefault(str(count), {}).setdefault(
                            name, []).append(((cpu1.user + cpu1.system) - (cpu0.user + cpu0.system))
                                             / (count * per) * 1e3)
                        print(f"senders {count} run {run_no + 1} {name}: {rate:,.0f} points/s",
                              file=sys.stderr, flush=True)
                    round_no += per
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return results


def report(results: dict[str, Any]) -> str:
    a = results["args"]
    names = list(next(iter(results["rates"].values())))
    lines = [(f"**Small writers: {a['points']:,} points per request, {a['requests']:,} requests "
             f"per run, {a['runs']} runs (medians, points/s)**"), "",
             (f"python {results['environment']['python']}, cpus {results['environment']['cpus']},"
             f" victoria-metrics {results['environment'].get('victoria-metrics')}"), "",
             "| senders | " + " | ".join(names) + " | watchkeeper ÷ VM (goal ≥ 2x) | "
             + " | ".join(f"{name} CPU ms/request" for name in names) + " |",
             "| --- | " + " | ".join("---" for _ in names) + " | --- | "
             + " | ".join("---" for _ in names) + " |"]
    for count, rates in results["rates"].items():
        medians = {name: statistics.median(values) for name, values in rates.items()}
        cpu = {name: statistics.median(values)
               for name, values in results.get("cpu_ms", {}).get(count, {}).items()}
        cells = " | ".join(f"{medians[name]:,.0f}" for name in names)
        ratio = medians["watchkeeper"] / medians["victoria-metrics"]
        cpus = " | ".join(f"{cpu.get(name, float('nan')):.2f}" for name in names)
        lines.append(f"| {count} | {cells} | {ratio:.2f}x | {cpus} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--senders", default="1,8,64")
    parser.add_argument("--points", type=int, default=1000, help="points (series) per request")
    parser.add_argument("--requests", type=int, default=2000, help="requests per run")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--compare", type=Path, default=None,
                        help="a source tree (with src/) to run as a second watchkeeper")
    parser.add_argument("--quick", action="store_true", help="a smoke run: 200 requests, 1 run")
    parser.add_argument("--dir", type=Path, default=None, help="for the temporary data")
    parser.add_argument("--json", dest="json_file", type=Path, default=None)
    args = parser.parse_args()
    args.senders = [int(s) for s in args.senders.split(",")]
    if args.quick:
        args.requests, args.runs = 200, 1
    results = run(args)
    if args.json_file:
        args.json_file.write_text(json.dumps(results, indent=2, default=str))
    print(report(results))



if __name__ == "__main__":
    main()
