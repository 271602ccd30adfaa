"""Benchmark: esmond single-point POSTs (``EventTypePost``) against ``watchkeeper serve``.

Starts ``watchkeeper serve`` on the embedded archive (``synchronous=full``: every
acknowledged write is fsynced) in a temporary data directory, creates a write token with
``watchkeeper token create``, registers metadata the way pScheduler's esmond archiver does
(throughput with a daily average; OWAMP loss, counts and delay histograms with
300/3600/86400 aggregations and statistics), then drives single-point POSTs with the
exact request shape esmond-client 4.2.1 sends (``captured/lib_query_and_post``: headers,
``{"ts": <int>, "val": <value>}`` to ``.../<key>/<event-type>/base``), from several client
processes over keep-alive connections, each connection posting one point at a time and
waiting for its 201 as the client does. Like measurement hosts, each connection owns its
series and posts each one's points in time order (one per minute of measurement time).

Reports writes/s (201 answers per second of wall time) as the median of several runs.
Goal (issue 3): at least 2,000 writes/s.

    python benchmarks/esmond_post.py [--seconds 5] [--runs 3] [--connections 64]
        [--backend postgres] [--servers 2]

``--backend postgres`` puts the archive, metadata and tokens in PostgreSQL (fresh
schemas in the ``watchkeeper_test`` database, dropped after); ``--servers N`` then starts
N servers on it and spreads the connections over them (the scaled deployment).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

WATCHKEEPER = [sys.executable, "-m", "watchkeeper.cli.main"]
ARCHIVE = "/esmond/perfsonar/archive"
START_TS = 1_600_000_000

THROUGHPUT = {"event-types": [{"event-type": "throughput", "summaries": [
    {"summary-type": "average", "summary-window": 86400}]}],
    "tool-name": "pscheduler/iperf3", "ip-transport-protocol": "tcp"}
OWAMP_WINDOWS = [300, 3600, 86400]
OWAMP = {"event-types": [
    {"event-type": e, "summaries": [{"summary-type": "aggregation", "summary-window": w}
                                    for w in OWAMP_WINDOWS]}
    for e in ("packet-loss-rate", "packet-count-sent", "packet-count-lost")
] + [{"event-type": "histogram-owdelay", "summaries": [
    {"summary-type": "aggregation", "summary-window": w} for w in OWAMP_WINDOWS] + [
    {"summary-type": "statistics", "summary-window": w} for w in [0, *OWAMP_WINDOWS]]}],
    "tool-name": "pscheduler/powstream"}


def value(event_type: str, i: int) -> Any:
    if event_type == "throughput":
        return 9_000_000_000 + i
    if event_type == "packet-loss-rate":
        return {"numerator": i % 3, "denominator": 600}
    if event_type.startswith("packet-count"):
        return 600 - i % 3
    return {str(40 + i % 7): 300, str(41 + i % 5): 300}


def request_bytes(host: str, path: str, body: bytes, token: str) -> bytes:
    """The request esmond-client 4.2.1 (python-requests 2.27) sends for one point."""
    return (f"POST {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: python-requests/2.27.1\r\n"
            f"Accept-Encoding: gzip, deflate\r\nAccept: */*\r\nConnection: keep-alive\r\n"
            f"content-type: application/json\r\nAuthorization: Token {token}\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode() + body


async def _connection(port: int, token: str, series: list[tuple[str, str]], start: int,
                      deadline: float) -> tuple[int, int]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    ok = failed = 0
    i = 0
    try:
        while time.monotonic() < deadline:
            key, event_type = series[i % len(series)]
            ts = start + 60 * (i // len(series))
            body = json.dumps({"ts": ts, "val": value(event_type, i)}).encode()
            writer.write(request_bytes(f"127.0.0.1:{port}", f"{ARCHIVE}/{key}/{event_type}/base",
                                       body, token))
            await writer.drain()
            status = int((await reader.readline()).split()[1])
            length = 0
            while (line := await reader.readline()) not in (b"\r\n", b""):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            await reader.readexactly(length)
            ok += status == 201
            failed += status != 201
            i += 1
    finally:
        writer.close()
    return ok, failed


def _client_process(*, port: int, token: str, owned: list[list[tuple[str, str]]], start: int,
                    deadline: float, out: Any) -> None:
    async def run() -> tuple[int, int]:
        results = await asyncio.gather(*(
            _connection(port, token, mine, start, deadline) for mine in owned))
        return sum(r[0] for r in results), sum(r[1] for r in results)

    out.put(asyncio.run(run()))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _metadata(i: int, template: dict[str, Any]) -> dict[str, Any]:
    return {"subject-type": "point-to-point", "source": f"10.1.{i // 250}.{i % 250 + 1}",
            "destination": "10.2.0.1", "measurement-agent": f"10.1.{i // 250}.{i % 250 + 1}",
            "input-source": f"host{i}.example.net", "input-destination": "sink.example.net",
            **template}


def _register(url: str, token: str, count: int) -> list[tuple[str, str]]:
    series = []
    with httpx.Client(base_url=url, headers={"Authorization": f"Token {token}"}) as client:
        for i in range(count):
            template = THROUGHPUT if i % 2 == 0 else OWAMP
            response = client.post(f"{ARCHIVE}/", json=_metadata(i, template))
            response.raise_for_status()
            key = response.json()["metadata-key"]
            series += [(key, e["event-type"]) for e in template["event-types"]]
    return series


PG_DSN = "host=127.0.0.1 user=postgres dbname=watchkeeper_test"
PG_SCHEMAS = ("wk_esmond_bench", "esmond_bench")


def _pg_schemas(create: bool) -> None:
    import psycopg

    with psycopg.connect(PG_DSN, autocommit=True) as conn:
        for schema in PG_SCHEMAS:
            conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        if create:
            conn.execute(f"CREATE SCHEMA {PG_SCHEMAS[1]}")


def _where(args: argparse.Namespace, data: Path) -> list[str]:
    """The flags that tell ``serve`` and ``token create`` where the data lives."""
    if args.backend == "embedded":
        return ["--data", str(data)]
    config = data.with_suffix(".json")
    config.write_text(json.dumps({
        "data_dir": str(data),
        "archive": {"backend": "postgres", "options": {"dsn": PG_DSN, "schema": PG_SCHEMAS[0]}},
        "esmond": {"store": "postgres",
                   "dsn": f"{PG_DSN} options='-c search_path={PG_SCHEMAS[1]}'"}}))
    return ["-c", str(config)]


def bench(args: argparse.Namespace) -> list[float]:
    if args.backend == "postgres":
        _pg_schemas(create=True)
    ports = [_free_port() for _ in range(args.servers)]
    url = f"http://127.0.0.1:{ports[0]}"
    with tempfile.TemporaryDirectory(prefix="wk-esmond-bench-") as tmp:
        started: list[subprocess.Popen[str]] = []
        try:
            for n, port in enumerate(ports):
                started.append(subprocess.Popen(
                    [*WATCHKEEPER, "serve", "--listen", f"127.0.0.1:{port}",
                     *_where(args, Path(tmp) / f"var{n}"), "--log-level", "warning"],
                    stderr=subprocess.PIPE, text=True))
                _wait_healthy(f"http://127.0.0.1:{port}", started[-1])
            token = subprocess.run(
                [*WATCHKEEPER, "token", "create", "--user", "bench", "--write",
                 *_where(args, Path(tmp) / "var0")],
                capture_output=True, text=True, check=True).stdout.split()[-1]
            series = _register(url, token, args.metadata)
            rates = []
            for run in range(args.runs):
                queue: Any = multiprocessing.Queue()
                deadline = time.monotonic() + args.seconds + 0.5
                owned = [series[c::args.connections] for c in range(args.connections)]
                start = START_TS + run * 100_000_000  # each run continues later in time
                procs = [multiprocessing.Process(
                    target=_client_process,
                    kwargs={"port": ports[p % len(ports)], "token": token,
                            "owned": owned[p::args.processes],
                            "start": start, "deadline": deadline, "out": queue})
                    for p in range(args.processes)]
                cpu_before = sum(_cpu_seconds(s.pid) for s in started)
                began = time.monotonic()
                for proc in procs:
                    proc.start()
                results = [queue.get() for _ in procs]
                elapsed = time.monotonic() - began
                for proc in procs:
                    proc.join()
                ok = sum(r[0] for r in results)
                failed = sum(r[1] for r in results)
                cpu = sum(_cpu_seconds(s.pid) for s in started) - cpu_before
                rates.append(ok / elapsed)
                print(f"run {run + 1}: {ok} writes in {elapsed:.2f} s = {ok / elapsed:,.0f} "
                      f"writes/s ({failed} failed); server CPU {cpu / max(ok, 1) * 1e6:.0f} "
                      "us per write")
            return rates
        finally:
            for server in started:
                server.send_signal(signal.SIGINT)
                try:
                    server.communicate(timeout=60)
                except subprocess.TimeoutExpired:
                    server.kill()
            if args.backend == "postgres":
                _pg_schemas(create=False)


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _wait_healthy(url: str, server: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"server exited: {server.communicate()[1]}")
        try:
            if httpx.get(f"{url}/api/v1/health", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise SystemExit("server did not start")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--processes", type=int, default=min(4, os.cpu_count() or 1))
    parser.add_argument("--metadata", type=int, default=200, help="metadata registered")
    parser.add_argument("--backend", choices=["embedded", "postgres"], default="embedded")
    parser.add_argument("--servers", type=int, default=1, help="servers (postgres only)")
    args = parser.parse_args()
    if args.servers > 1 and args.backend != "postgres":
        parser.error("--servers needs --backend postgres (one process owns an embedded store)")
    rates = bench(args)
    print(f"esmond single-point POST: median {statistics.median(rates):,.0f} writes/s over "
          f"{len(rates)} runs ({args.connections} connections, {args.processes} client "
          f"processes, {args.servers} server(s), {args.backend} archive); goal 2,000")


if __name__ == "__main__":
    main()
