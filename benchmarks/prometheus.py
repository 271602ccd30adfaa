"""Prometheus remote-write ingest: watchkeeper against VictoriaMetrics, in the same run.

    python benchmarks/prometheus.py [--series 10000 100000 --rounds 12 --trials 5]

Workload, as Prometheus sends it: ``--series`` node-exporter-like series (``__name__``,
``instance``, ``job``, ``cpu``, ``mode``), one sample per series per round (15 s apart),
each round one snappy-compressed protobuf ``WriteRequest`` built before timing, the same
bytes posted to watchkeeper's ``POST /prometheus/api/v1/write`` (``watchkeeper serve`` in
its own process, embedded archive, Bearer token) and to VictoriaMetrics'
``/api/v1/write`` (``benchmarks/peers.py``). Measured:

1. samples/s per round (request sent until its 2xx), the first round (every series
   new) apart, the median of the others, and the ratio to VictoriaMetrics'; the whole
   is repeated ``--trials`` times on fresh servers, the two systems taking turns to go
   first, and the medians taken over every trial's rounds (the ratio of each trial's
   medians is shown too: the shared machine's load drifts);
2. freshness: after the last round's 2xx, how long until a query answers its point
   (watchkeeper ``GET /api/v1/query``; VictoriaMetrics ``/api/v1/query``);
3. the decoding choices (decisions in docs/decisions.md): a 10,000-series request parsed
   by the ``protobuf`` package (upb, descriptor built in code) against the small
   hand-written decoder watchkeeper uses, which remembers each label set's key and the
   shape of the requests it read (``remote_shapes``).

Prints a Markdown table. The machine is shared and noisy: compare figures of one run.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import NamedTuple

import cramjam
import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from peers import PeerUnavailable, VictoriaMetrics, environment, free_port

from watchkeeper.api.ingest.remote_shapes import Shapes
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
    time, with it knowing them but not the request's shape (series in another order),
    and knowing the shape too (the same series as a request before, in order)."""
    warm = Decoder(shapes=Shapes(count=0))
    warm.decode(bodies[0])
    shaped = Decoder()
    shaped.decode(bodies[0])
    times: dict[str, list[float]] = {"protobuf (upb)": [], "hand-written, new series": [],
                                     "hand-written, known series": [],
                                     "hand-written, known shape": []}
    for i in range(repeat):
        body = bodies[1 + i % (len(bodies) - 1)]
        for name, fn in (("protobuf (upb)", upb_decode),
                         ("hand-written, new series", Decoder().decode),
                         ("hand-written, known series", warm.decode),
                         ("hand-written, known shape", shaped.decode)):
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


class Outcome(NamedTuple):
    """One system's rounds of one trial: samples/s of the first round (every series new)
    and of each other round, and seconds from the last 2xx to a query answering it."""

    first: float
    rates: list[float]
    visible_after: float


def run(write: Callable[[bytes], None], bodies: list[bytes], series: int,
        visible: Callable[[int, int], bool] | None = None) -> Outcome:
    rates = []
    for body in bodies:
        started = time.perf_counter()
        write(body)
        rates.append(series / (time.perf_counter() - started))
    acknowledged = time.perf_counter()
    waited = float("nan")
    if visible is not None:
        while not visible(series, len(bodies) - 1):
            if time.perf_counter() - acknowledged > 30:
                waited = float("inf")
                break
            time.sleep(0.005)
        else:
            waited = time.perf_counter() - acknowledged
    return Outcome(rates[0], rates[1:], waited)


class Summary(NamedTuple):
    """Trials of one system: medians of the first rounds and of every other round, the
    longest wait for visibility, and the steady medians of each trial."""

    first: float
    median: float
    visible_after: float
    per_trial: list[float]

    @classmethod
    def of(cls, outcomes: list[Outcome]) -> Summary:
        if not outcomes:
            return cls(math.nan, math.nan, math.nan, [])
        return cls(statistics.median(o.first for o in outcomes),
                   statistics.median(r for o in outcomes for r in o.rates),
                   max(o.visible_after for o in outcomes),
                   [statistics.median(o.rates) for o in outcomes])

    def ratios(self, peer: Summary) -> str:
        """The trials' ratios of steady medians, lowest to highest."""
        pairs = [a / b for a, b in zip(self.per_trial, peer.per_trial, strict=False)]
        return f"{min(pairs):.2f}x to {max(pairs):.2f}x" if pairs else "-"


def trials(count: int, ours: Callable[[], Outcome], theirs: Callable[[], Outcome | None]
           ) -> tuple[Summary, Summary]:
    """``count`` trials of both systems, each on a fresh server, taking turns to go
    first (the shared machine's load drifts); None from ``theirs``: the peer is missing."""
    mine: list[Outcome] = []
    peer: list[Outcome] = []
    for trial in range(count):
        for side in ((0, 1) if trial % 2 == 0 else (1, 0)):
            if side == 0:
                mine.append(ours())
            else:
                outcome = theirs()
                if outcome is not None:
                    peer.append(outcome)
    return Summary.of(mine), Summary.of(peer)


def main(args: argparse.Namespace) -> None:
    rows = []
    small = [payload(10_000, r) for r in range(3)]
    decoding = decode_figures(small)
    print(f"decode 10,000 series ({len(small[0]):,} bytes snappy): " + ", ".join(
        f"{name} {ms:.1f} ms" for name, ms in decoding.items()), flush=True)
    for series in args.series:
        bodies = [payload(series, r) for r in range(args.rounds)]

        def ours(bodies: list[bytes] = bodies, series: int = series) -> Outcome:
            with tempfile.TemporaryDirectory(prefix="wk-bench-prom-") as tmp:
                server = Watchkeeper(Path(tmp))
                with server.running():
                    return run(server.write, bodies, series, server.visible)

        def theirs(bodies: list[bytes] = bodies, series: int = series) -> Outcome | None:
            try:
                with VictoriaMetrics.started() as vm:
                    return run(lambda b: vm_write(vm, b), bodies, series,
                               lambda count, last: vm_visible(vm, count, last))
            except PeerUnavailable as exc:
                print(f"VictoriaMetrics skipped: {exc}")
                return None

        wk, vm = trials(args.trials, ours, theirs)
        rows.append((series, wk, vm))
        print(f"{series} series: watchkeeper {wk}, VictoriaMetrics {vm}", flush=True)
    print(f"\nPeers: {environment()}; cores: {os.cpu_count()}; {args.trials} trials of "
          f"{args.rounds} rounds\n")
    print("| series/request | watchkeeper first round | watchkeeper median | "
          "VictoriaMetrics first | VictoriaMetrics median | ratio (median) | "
          "ratio per trial | visible after 2xx wk / VM (longest) |")
    print("|---:|---:|---:|---:|---:|---:|---:|---|")
    for series, wk, vm in rows:
        print(f"| {series:,} | {wk.first:,.0f}/s | {wk.median:,.0f}/s | {vm.first:,.0f}/s | "
              f"{vm.median:,.0f}/s | {wk.median / vm.median:.2f}x | {wk.ratios(vm)} | "
              f"{wk.visible_after * 1000:.0f} ms / {vm.visible_after * 1000:.0f} ms |")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--rounds", type=int, default=12)
    parser.add_argument("--trials", type=int, default=5)
    main(parser.parse_args())
