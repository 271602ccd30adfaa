"""Soak: a real ``watchkeeper up`` under steady load, its RSS sampled over time.

The process polls ``--tcp-jobs`` + ``--http-jobs`` local targets (one tiny keep-alive HTTP
server process started here, answering at once) every ``--interval`` seconds, while a
writer posts ``--points`` points/s to ``/api/v1/write`` over a fixed set of series. RSS is
sampled with psutil every ``--sample`` seconds; the report prints RSS over time, the
least-squares slope (MB/min) after ``--warmup`` minutes, and what watchkeeper says of
itself at the end (``/api/v1/health`` and a few ``/metrics`` lines).

``--heap-diff`` runs the server under tracemalloc and prints the 15 allocation sites that
grew most between the end of the warm-up and the end (a side run: tracemalloc slows it).

    python benchmarks/soak.py [--minutes 60] [--tcp-jobs 200] [--http-jobs 200] [--series 100]
                              [--interval 2] [--points 2000] [--sample 30] [--heap-diff]

It is long by design, so ``run_all.py`` leaves it out: run it by itself.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import psutil  # type: ignore[import-untyped]

_ANSWER = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: text/plain\r\n\r\nok"

# Started inside the server process with --heap-diff: snapshots on SIGUSR1 / SIGUSR2.
_HEAP_BOOT = """
import signal, sys, tracemalloc
tracemalloc.start(8)
def dump(path):
    def handler(signum, frame):
        tracemalloc.take_snapshot().dump(path)
    return handler
signal.signal(signal.SIGUSR1, dump(sys.argv[1] + "/heap-start"))
signal.signal(signal.SIGUSR2, dump(sys.argv[1] + "/heap-end"))
sys.argv = ["watchkeeper", *sys.argv[2:]]
from watchkeeper.cli.main import main
sys.exit(main())
"""


class _Answer(asyncio.Protocol):
    """Answers every bodiless request on a keep-alive connection with ``200 ok``."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        self.buffer = b""

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while b"\r\n\r\n" in self.buffer:
            _, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
            self.transport.write(_ANSWER)  # type: ignore[attr-defined]


async def _serve(port_file: str) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(_Answer, "127.0.0.1", 0, backlog=4096)
    Path(port_file).write_text(str(server.sockets[0].getsockname()[1]))
    await server.serve_forever()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_for(check, what: str, seconds: float = 60) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            raise SystemExit(f"soak: {what} did not come up within {seconds:g}s")
        time.sleep(0.2)


def config_text(args: argparse.Namespace, *, data_dir: Path, api_port: int,
                target_port: int) -> str:
    """The soak's settings: one device per job, two collectors over them."""
    devices = max(args.tcp_jobs, args.http_jobs)
    lines = [f"data_dir: {data_dir}", "log_level: warning",
             *([f"archive: {{options: {{max_log_points: {args.max_log_points}}}}}"]
               if args.max_log_points else []),
             f"server: {{listen: '127.0.0.1:{api_port}'}}", "inventory:", "  devices:"]
    for i in range(devices):
        tags = [t for t, n in (("tcp", args.tcp_jobs), ("http", args.http_jobs)) if i < n]
        lines.append(f"    - {{name: dev{i:05d}, address: 127.0.0.1, tags: [{', '.join(tags)}]}}")
    lines += [
        "collectors:",
        (f"  - {{name: reach, plugin: tcp, interval: {args.interval}, timeout: 5,"
         f" devices: ['tag:tcp'], options: {{port: {target_port}}}}}"),
        (f"  - {{name: web, plugin: http, interval: {args.interval}, timeout: 5,"
         f" devices: ['tag:http'], options: {{url: 'http://127.0.0.1:{target_port}/'}}}}"),
    ]
    return "\n".join(lines) + "\n"


class Writer(threading.Thread):
    """Posts ``rate`` points/s to the write API, in one batch per second, over ``series``."""

    def __init__(self, base: str, rate: int, key: str, series: int) -> None:
        super().__init__(daemon=True)
        self.series = series
        self.base = base
        self.key = key
        self.rate = rate
        self.stop = threading.Event()
        self.written = self.failed = 0

    def run(self) -> None:
        series = [f"soak{i:05d}/writer/value" for i in range(self.series)]
        with httpx.Client(base_url=self.base, timeout=30,
                          headers={"Authorization": f"Token {self.key}"}) as client:
            while not self.stop.is_set():
                began = time.time()
                points = [[series[i % self.series], began + i / self.rate, random.random()]
                          for i in range(self.rate)]
                try:
                    client.post("/api/v1/write", json={"points": points}).raise_for_status()
                    self.written += len(points)
                except httpx.HTTPError:
                    self.failed += 1
                self.stop.wait(max(0.0, 1 - (time.time() - began)))


def slope_mb_per_min(samples: list[tuple[float, float]]) -> float:
    """Least-squares slope of (seconds, MB) samples, in MB per minute."""
    if len(samples) < 2:
        return 0.0
    n = len(samples)
    mean_t = sum(t for t, _ in samples) / n
    mean_m = sum(m for _, m in samples) / n
    var = sum((t - mean_t) ** 2 for t, _ in samples)
    cov = sum((t - mean_t) * (m - mean_m) for t, m in samples)
    return cov / var * 60 if var else 0.0


def _metric_lines(base: str) -> list[str]:
    wanted = ("watchkeeper_polls_total", "watchkeeper_polls_skipped_total",
              "watchkeeper_polls_shed_total", "watchkeeper_poller_saturated ",
              "process_resident_memory_bytes", "process_open_fds")
    text = httpx.get(f"{base}/metrics", timeout=30).text
    return [line for line in text.splitlines() if line.startswith(wanted)]


def _heap_diff(tmp: Path) -> None:
    import tracemalloc

    start = tracemalloc.Snapshot.load(str(tmp / "heap-start"))
    end = tracemalloc.Snapshot.load(str(tmp / "heap-end"))
    print("\nheap growth between the end of the warm-up and the end (top 15 sites):")
    for stat in end.compare_to(start, "traceback")[:15]:
        print(f"  {stat.size_diff / 1e6:+8.2f} MB {stat.count_diff:+8d} blocks")
        for line in stat.traceback.format(limit=4)[-8:]:
            print(f"      {line}")


def soak(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="wk-soak-") as tmp_name:
        tmp = Path(tmp_name)
        port_file = tmp / "target-port"
        target = subprocess.Popen([sys.executable, __file__, "--serve", str(port_file)])
        try:
            _soak_against(args, tmp, target, port_file)
        finally:
            target.kill()
            target.wait()


def _soak_against(args: argparse.Namespace, tmp: Path, target: subprocess.Popen[bytes],
                  port_file: Path) -> None:
    _wait_for(lambda: port_file.exists() and port_file.read_text(), "the target server")
    api_port = _free_port()
    config = tmp / "soak.yaml"
    config.write_text(config_text(args, data_dir=tmp / "data", api_port=api_port,
                                  target_port=int(port_file.read_text())))
    (tmp / "data").mkdir()
    made = subprocess.run([sys.executable, "-m", "watchkeeper.cli.main", "token", "create",
                           "--user", "soak", "--write", "-c", str(config)],
                          capture_output=True, text=True, check=True)
    key = made.stdout.split()[-1]
    cmd = (["-c", _HEAP_BOOT, str(tmp)] if args.heap_diff else
           ["-m", "watchkeeper.cli.main"])
    server = subprocess.Popen([sys.executable, *cmd, "up", "-c", str(config)])
    base = f"http://127.0.0.1:{api_port}"
    writer = Writer(base, args.points, key, args.series)
    try:
        _wait_for(lambda: _answers(base), "watchkeeper up", 600)
        proc = psutil.Process(server.pid)
        writer.start()
        _run(args, proc, server, writer, base)
    finally:
        writer.stop.set()
        server.send_signal(signal.SIGINT)
        began = time.monotonic()
        try:
            server.wait(60)
            print(f"stopped {time.monotonic() - began:.1f} s after SIGINT")
        except subprocess.TimeoutExpired:
            server.kill()
            print("did not stop within 60 s of SIGINT: killed")
    if args.heap_diff:
        _heap_diff(tmp)


def _answers(base: str) -> bool:
    try:
        return httpx.get(f"{base}/api/v1/health", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _run(args: argparse.Namespace, proc: psutil.Process, server: subprocess.Popen[bytes],
         writer: Writer, base: str) -> None:
    print(f"soak: {args.tcp_jobs} tcp + {args.http_jobs} http jobs every {args.interval:g} s "
          f"(~{(args.tcp_jobs + args.http_jobs) / args.interval:.0f} polls/s), "
          f"{args.points} points/s written, {args.minutes:g} min, pid {server.pid}")
    print(f"{'min':>6} {'RSS MB':>8} {'written':>10} {'failed':>6}")
    began = time.monotonic()
    samples: list[tuple[float, float]] = []
    warm = args.warmup * 60
    marked = False
    while (elapsed := time.monotonic() - began) < args.minutes * 60:
        if server.poll() is not None:
            raise SystemExit(f"soak: watchkeeper exited with {server.returncode}")
        rss = proc.memory_info().rss / 1e6
        print(f"{elapsed / 60:6.1f} {rss:8.1f} {writer.written:10d} {writer.failed:6d}",
              flush=True)
        if elapsed >= warm:
            samples.append((elapsed, rss))
            if args.heap_diff and not marked:
                os.kill(server.pid, signal.SIGUSR1)
                marked = True
        time.sleep(args.sample)
    if args.heap_diff:
        os.kill(server.pid, signal.SIGUSR2)
        time.sleep(10)  # the snapshot of a big heap takes a while
    first, last = (samples[0][1], samples[-1][1]) if samples else (0.0, 0.0)
    print(f"\nRSS after warm-up: {first:.1f} -> {last:.1f} MB; "
          f"slope {slope_mb_per_min(samples):+.2f} MB/min over {len(samples)} samples")
    health = httpx.get(f"{base}/api/v1/health", timeout=30)
    print(f"health: {health.status_code} {json.dumps(health.json())}")
    for line in _metric_lines(base):
        print(f"  {line}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=60.0)
    parser.add_argument("--tcp-jobs", type=int, default=200)
    parser.add_argument("--http-jobs", type=int, default=200)
    parser.add_argument("--interval", type=float, default=2.0, help="seconds between polls")
    parser.add_argument("--points", type=int, default=2000, help="points/s written")
    parser.add_argument("--series", type=int, default=100, help="series the writer spreads over")
    parser.add_argument("--max-log-points", type=int, default=0,
                        help="the embedded archive's max_log_points (0: its default)")
    parser.add_argument("--sample", type=float, default=30.0, help="seconds between samples")
    parser.add_argument("--warmup", type=float, default=2.0, help="minutes left out of the slope")
    parser.add_argument("--heap-diff", action="store_true", help="tracemalloc side run")
    parser.add_argument("--serve", help=argparse.SUPPRESS)  # internal: the target server
    args = parser.parse_args()
    if args.serve:
        asyncio.run(_serve(args.serve))
        return
    soak(args)


if __name__ == "__main__":
    main()
