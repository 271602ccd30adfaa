"""Benchmark of the esmond tools: get-bulk streaming to CSV, load-gridftp parsing.

    python benchmarks/tools.py [--points 300000 --page-size 10000 --lines 200000 --runs 3]

get-bulk: a local watchkeeper server (embedded archive, esmond API, composed as
``watchkeeper serve`` does, uvicorn on a loopback port, in its own process) holds one
throughput series of ``--points`` points; ``watchkeeper archive get-bulk -o csv`` pulls
it over HTTP into a file, page by page. Reported: points/s from the first request to the
file being complete (goal: >= 200,000 points/s), and the file size.

load-gridftp: ``--lines`` synthetic transfer-log lines (classic key=value, and the JSON
log) parsed into archive writes (metadata + points), without sending them. Reported:
lines/s (goal: >= 50,000 lines/s). Sending is bounded by the server's write path and is
measured by the archive's own benchmarks.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import AsyncExitStack, contextmanager
from pathlib import Path

import uvicorn

from watchkeeper.api import create_app
from watchkeeper.cli.archive import run_tool
from watchkeeper.cli.archive_query import Context
from watchkeeper.client import AsyncArchiveClient, BulkData, NewMetadata
from watchkeeper.clock import SystemClock
from watchkeeper.loaders.gridftp import Options, parse_line
from watchkeeper.runtime.assemble import build_archive
from watchkeeper.runtime.esmond import build_esmond
from watchkeeper.settings import load_settings
from watchkeeper.telemetry import SelfMetrics


class Server:
    """The esmond stack with uvicorn on its own loop in a thread."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.stop = asyncio.Event()
        self.url = ""
        self.token = ""

    def __enter__(self) -> Server:
        self.thread.start()
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        ready = threading.Event()

        async def main() -> None:
            settings, locator = load_settings(overrides={"data_dir": str(self.data_dir)})
            clock, metrics = SystemClock(), SelfMetrics()
            archive = build_archive(settings, locator, clock=clock, metrics=metrics)
            parts = build_esmond(settings, locator, archive=archive, clock=clock)
            async with AsyncExitStack() as stack:
                await archive.start(stack)
                await parts.start(stack)
                self.token = await parts.tokens.create("bench", write=True, now=int(time.time()))
                app = create_app(archive, metrics=metrics, esmond=parts.esmond,
                                 tokens=parts.tokens)
                server = uvicorn.Server(uvicorn.Config(app, log_level="warning",
                                                       lifespan="off", access_log=False))
                serving = asyncio.create_task(server.serve(sockets=[sock]))
                while not server.started:
                    await asyncio.sleep(0.01)
                ready.set()
                await self.stop.wait()
                server.should_exit = True
                await serving

        self.done = asyncio.run_coroutine_threadsafe(main(), self.loop)
        ready.wait(30)
        return self

    def __exit__(self, *exc: object) -> None:
        self.loop.call_soon_threadsafe(self.stop.set)
        self.done.result(60)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


async def fill(url: str, token: str, points: int, t0: int) -> None:
    async with AsyncArchiveClient(url, token=token, timeout=120) as client:
        meta = NewMetadata(source="10.0.0.1", destination="10.0.0.2",
                           measurement_agent="10.0.0.1", tool_name="bwctl/iperf3",
                           input_source="a", input_destination="b")
        meta.add_event_type("throughput")
        key = (await client.create_metadata(meta)).metadata_key
        assert key
        for first in range(0, points, 20_000):
            bulk = BulkData()
            for i in range(first, min(first + 20_000, points)):
                bulk.add("throughput", t0 + i, 9_000_000_000 + i * 1000)
            await client.post_bulk(key, bulk)


def serve(data_dir: str) -> None:
    """``--serve DIR``: run the server, print its URL and a token, stop at end of stdin."""
    with Server(Path(data_dir)) as server:
        print(server.url, server.token, flush=True)
        sys.stdin.read()


@contextmanager
def server_process(data_dir: Path) -> Iterator[tuple[str, str]]:
    """The server in its own process, as in production (the client has its own CPU)."""
    child = subprocess.Popen([sys.executable, __file__, "--serve", str(data_dir)],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None
    assert child.stdin is not None
    try:
        url, token = child.stdout.readline().split()
        yield url, token
    finally:
        child.stdin.close()
        child.wait(60)


def bench_bulk(points: int, page_size: int, runs: int) -> None:
    with tempfile.TemporaryDirectory() as tmp, server_process(Path(tmp) / "server") as server:
        # The query tools' time range filters metadata by last write (server clock) and
        # data by timestamp alike, so the series ends now.
        t0 = int(time.time()) - points - 60
        started = time.perf_counter()
        asyncio.run(fill(server[0], server[1], points, t0))
        print(f"loaded {points:,} points in {time.perf_counter() - started:.1f} s")
        rates, cpu_rates = [], []
        for run in range(runs):
            out = Path(tmp) / f"out{run}"
            out.mkdir()
            err = io.StringIO()
            cpu = time.process_time()
            started = time.perf_counter()
            code = run_tool("get-bulk", [
                "-u", server[0], "-I", "-o", "csv", "-D", str(out), "--page-size",
                str(page_size), "-S", str(t0), "-E", "now"],
                Context(stdout=io.StringIO(), stderr=err))
            elapsed = time.perf_counter() - started
            cpu = time.process_time() - cpu
            assert code == 0, err.getvalue()
            [written] = list(out.iterdir())
            rows = written.read_bytes().count(b"\r\n") - 1
            assert rows == points, (rows, points)
            rates.append(points / elapsed)
            cpu_rates.append(points / cpu)
            print(f"  run {run + 1}: {points:,} points in {elapsed:.2f} s = "
                  f"{points / elapsed:,.0f} points/s ({written.stat().st_size / 1e6:.1f} MB; "
                  f"client: {points / cpu:,.0f} points per CPU-second)")
        print(f"get-bulk to CSV: median {statistics.median(rates):,.0f} points/s "
              f"(goal >= 200,000), page size {page_size}")


NETLOGGER = ("DATE=2015040714{m:02d}{s:02d}.113944 HOST=10.0.{a}.{b} PROG=globus-gridftp-server "
             "NL.EVNT=FTP_INFO START=2015040714{m:02d}{s:02d}.000000 USER=anonymous "
             "FILE=/data1/file{n}.dat BUFFER=87380 BLOCK=262144 NBYTES={n}00000 VOLUME=/ "
             "STREAMS=4 STRIPES=1 DEST=[10.1.{a}.{b}] TYPE={t} CODE={c} TASKID=none "
             "retrans=1,2,3,4")


def netlogger_lines(count: int) -> list[str]:
    return [NETLOGGER.format(m=n // 60 % 60, s=n % 60, a=n // 250 % 250, b=n % 250, n=n,
                             t="RETR" if n % 3 else "STOR", c=226 if n % 10 else 426)
            for n in range(count)]


def json_lines(count: int) -> list[str]:
    record = {"event_type": "Transfer-End", "host": "10.0.0.1", "dest": "10.0.0.2",
              "cmd_type": "RETR", "start_timestamp": "1428418776.596363",
              "end_timestamp": "1428418785.113944", "nbytes": 100000000, "nstreams": 2,
              "prog": "globus-gridftp-server", "globus_blocksize": 262144,
              "tcp_bufsize": 87380, "mpstat": {"%usr": 1.5, "%idle": 94.8},
              "iostat": {"Dev": "sda", "Blk_read/s": 100.0},
              "getrusage": {"ru_utime": 0.12, "ru_maxrss": 10240},
              "streams": [{"stream": s, "stripe": 0, "TCPinfo": {"rtt": 1200,
                                                                "total_retrans": s}}
                          for s in range(2)]}
    return [json.dumps({**record, "transferID": f"t{n}"}) for n in range(count)]


def _literal(host: str, family: int) -> str:
    return host


def bench_parse(count: int, runs: int) -> None:
    for name, lines, options in (("classic", netlogger_lines(count), Options()),
                                 ("JSON", json_lines(count), Options(json=True))):
        rates, cpu_rates = [], []
        for _ in range(runs):
            cpu = time.process_time()
            started = time.perf_counter()
            parsed = 0
            for line in lines:  # as the loader does: one plan at a time, then let it go
                if parse_line(line, options, _literal) is not None:
                    parsed += 1
            elapsed = time.perf_counter() - started
            cpu = time.process_time() - cpu
            assert parsed == count
            rates.append(count / elapsed)
            cpu_rates.append(count / cpu)
        print(f"load-gridftp parse, {name} log: median {statistics.median(rates):,.0f} "
              f"lines/s, {statistics.median(cpu_rates):,.0f} lines per CPU-second, over "
              f"{count:,} lines (goal >= 50,000)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=300_000)
    parser.add_argument("--page-size", type=int, default=50_000)
    parser.add_argument("--lines", type=int, default=200_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--serve", metavar="DIR", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve)
        return
    bench_parse(args.lines, args.runs)
    bench_bulk(args.points, args.page_size, args.runs)


if __name__ == "__main__":
    main()
