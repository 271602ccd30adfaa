"""Prometheus remote-write ingest: watchkeeper against VictoriaMetrics, in the same run.

    python benchmarks/prometheus.py [--series 10000 100000 --rounds 6]

Workload, as Prometheus sends it: ``--series`` node-exporter-like series (``__name__``,
``instance``, ``job``, ``cpu``, ``mode``), one sample per series per round (15 s apart),
each round one snappy-compressed protobuf ``WriteRequest`` built before timing, the same
bytes posted to watchkeeper's ``POST /prometheus/api/v1/write`` (``watchkeeper serve`` in
its own process, embedded archive, Bearer token) and to VictoriaMetrics'
``/api/v1/write`` (``benchmarks/peers.py``). Measured:

1. samples/s per round (request sent until its 2xx), the first round (every series
   new) apart, the median of the others, and the ratio to VictoriaMetrics';
2. freshness: after the last round's 2xx, how long until a query answers its point
   (watchkeeper ``GET /api/v1/query``; VictoriaMetrics ``/api/v1/query``);
3. the decoding choice (decision in docs/decisions.md): a 10,000-series request parsed
   by the ``protobuf`` package (upb, descriptor built in code) against the small
   hand-written decoder watchkeeper uses, which remembers each label set's key.

Prints a Markdown table. The machine is shared and noisy: compare figures of one run.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import cramjam
import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from peers import PeerUnavailable, VictoriaMetrics, environment, free_port

from watchkeeper.api.ingest.remote_write import Decoder, check_order, write_request_class
from watchkeeper.model import promlabels

REPO = Path(__file__).resolve().parents[1]
WATCHKEEPER = [sys.executable, "-m", "watchkeeper.cli.main"]
MODES = ("user", "system", "idle", "iowait", "irq", "softirq", "steal", "nice")
T0_MS = 1_767_000_000_000


def labels_of(i: int) -> list[tuple[str, str]]:
    """Series ``i``'s labels, sorted by name as Prometheus sends them."""
    return [("__name__", f"node_metric_{i % 50}_total"), ("cpu", str(i // 400 % 64)),
            ("instance", f"host{i // 2000}:9100"), ("job", "node"),
            ("mode", MODES[i // 50 % 8])]


def payload(series: int, round_no: int) -> bytes:
    request = write_request_class()()
    stamp = T0_MS + round_no * 15_000
    for i in range(series):
        ts = request.timeseries.add()
        for name, value in labels_of(i):
            ts.labels.add(name=name, value=value)
        ts.samples.add(timestamp=stamp, value=float(i * 7 + round_no))
    return bytes(cramjam.snappy.compress_raw(request.SerializeToString()))


def upb_decode(body: bytes) -> int:
    """The alternative measured: the ``protobuf`` package (upb) parses the request, then
    each series' labels are checked and mapped as the hand-written decoder does."""
    request = write_request_class()()
    request.ParseFromString(bytes(cramjam.snappy.decompress_raw(body)))
    count = 0
    for position, ts in enumerate(request.timeseries):
        labels = [(label.name, label.value) for label in ts.labels]
        check_order(labels, position)
        promlabels.key_text(labels)
        count += len([(s.timestamp, s.value) for s in ts.samples])
    return count


def decode_figures(bodies: list[bytes], repeat: int = 5) -> dict[str, float]:
    """Milliseconds (median of ``repeat``, interleaved) to decode a request of ``bodies``:
    with protobuf/upb, with the hand-written decoder meeting every series for the first
    time, and with it knowing them (every request after the first)."""
    warm = Decoder()
    warm.decode(bodies[0])
    times: dict[str, list[float]] = {"protobuf (upb)": [], "hand-written, new series": [],
                                     "hand-written, known series": []}
    for i in range(repeat):
        body = bodies[1 + i % (len(bodies) - 1)]
        for name, fn in (("protobuf (upb)", upb_decode),
                         ("hand-written, new series", Decoder().decode),
                         ("hand-written, known series", warm.decode)):
            started = time.perf_counter()
            fn(body)
            times[name].append((time.perf_counter() - started) * 1000)
    return {name: statistics.median(values) for name, values in times.items()}


class Watchkeeper:
    """``watchkeeper serve`` in its own process with a write token."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        created = subprocess.run([*WATCHKEEPER, "token", "create", "--user", "bench", "--write",
                                  "--data-dir", str(workdir)], cwd=REPO, capture_output=True,
                                 text=True, timeout=60, check=True)
        self.token = created.stdout.split()[-1]
        self.http = httpx.Client(base_url=self.url, timeout=300.0,
                                 headers={"Authorization": f"Bearer {self.token}"})

    @contextlib.contextmanager
    def running(self) -> Iterator[Watchkeeper]:
        log = (self.workdir / "server.log").open("wb")
        proc = subprocess.Popen([*WATCHKEEPER, "serve", "--listen", f"127.0.0.1:{self.port}",
                                 "--data-dir", str(self.workdir), "--log-level", "warning"],
                                cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
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

    def write(self, body: bytes) -> None:
        self.http.post("/prometheus/api/v1/write", content=body, headers={
            "Content-Encoding": "snappy", "Content-Type": "application/x-protobuf",
            "X-Prometheus-Remote-Write-Version": "0.1.0"}).raise_for_status()

    def visible(self, series: int, round_no: int) -> bool:
        labels = dict(labels_of(series - 1))
        key = (f"{labels['instance']}/node/{labels['__name__']}"
               f'{{cpu="{labels["cpu"]}",mode="{labels["mode"]}"}}')
        response = self.http.get("/api/v1/query", params={
            "series": key, "start": (T0_MS + round_no * 15_000) / 1000 - 1,
            "end": (T0_MS + round_no * 15_000) / 1000 + 1})
        return response.status_code == 200 and bool(response.json()["points"])


def vm_write(vm: VictoriaMetrics, body: bytes) -> None:
    vm.http.post("/api/v1/write", content=body, headers={
        "Content-Encoding": "snappy", "Content-Type": "application/x-protobuf"}
    ).raise_for_status()


def vm_visible(vm: VictoriaMetrics, series: int, round_no: int) -> bool:
    labels = dict(labels_of(series - 1))
    query = (f'{labels["__name__"]}{{instance="{labels["instance"]}",cpu="{labels["cpu"]}",'
             f'mode="{labels["mode"]}"}}')
    response = vm.http.get("/api/v1/query", params={
        "query": query, "time": (T0_MS + round_no * 15_000) / 1000, "step": "1s",
        "nocache": "1"})
    return response.status_code == 200 and bool(response.json()["data"]["result"])


def run(write: object, visible: object, bodies: list[bytes], series: int
        ) -> tuple[float, float, float]:
    """(first round samples/s, median of the other rounds, seconds to a visible point)."""
    rates = []
    for body in bodies:
        started = time.perf_counter()
        write(body)  # type: ignore[operator]
        rates.append(series / (time.perf_counter() - started))
    acknowledged = time.perf_counter()
    while not visible(series, len(bodies) - 1):  # type: ignore[operator]
        if time.perf_counter() - acknowledged > 30:
            return rates[0], statistics.median(rates[1:]), float("inf")
        time.sleep(0.005)
    return rates[0], statistics.median(rates[1:]), time.perf_counter() - acknowledged


def main(args: argparse.Namespace) -> None:
    rows = []
    small = [payload(10_000, r) for r in range(3)]
    decoding = decode_figures(small)
    print(f"decode 10,000 series ({len(small[0]):,} bytes snappy): " + ", ".join(
        f"{name} {ms:.0f} ms" for name, ms in decoding.items()), flush=True)
    for series in args.series:
        bodies = [payload(series, r) for r in range(args.rounds)]
        with tempfile.TemporaryDirectory(prefix="wk-bench-prom-") as tmp:
            ours = Watchkeeper(Path(tmp))
            with ours.running():
                wk = run(ours.write, ours.visible, bodies, series)
        try:
            with VictoriaMetrics.started() as vm:
                theirs = run(lambda b, vm=vm: vm_write(vm, b),
                             lambda s, r, vm=vm: vm_visible(vm, s, r), bodies, series)
        except PeerUnavailable as exc:
            print(f"VictoriaMetrics skipped: {exc}")
            theirs = (float("nan"),) * 3
        rows.append((series, wk, theirs))
        print(f"{series} series: watchkeeper {wk}, VictoriaMetrics {theirs}", flush=True)
    print(f"\nPeers: {environment()}; cores: {os.cpu_count()}\n")
    print("| series/request | watchkeeper first round | watchkeeper median | "
          "VictoriaMetrics first | VictoriaMetrics median | ratio (median) | "
          "visible after 2xx wk / VM |")
    print("|---:|---:|---:|---:|---:|---:|---|")
    for series, wk, vm in rows:
        print(f"| {series:,} | {wk[0]:,.0f}/s | {wk[1]:,.0f}/s | {vm[0]:,.0f}/s | "
              f"{vm[1]:,.0f}/s | {wk[1] / vm[1]:.2f}x | {wk[2] * 1000:.0f} ms / "
              f"{vm[2] * 1000:.0f} ms |")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--rounds", type=int, default=6)
    main(parser.parse_args())
