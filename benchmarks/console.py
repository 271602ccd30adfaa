"""The web console in headless chromium: Overview interactive time, Explore draw time.

    python benchmarks/console.py [--series 10000] [--hours 24] [--runs 5]

A real ``watchkeeper up`` (no collectors) is loaded with ``--series`` float series of
``--hours`` of 10-s points (bulk columns), one check.status series per 50 of them, and
``--alarms`` alarms (10,000); then Debian's chromium (Playwright, never a downloaded
browser) opens:

- **Overview**, cold (new browser context each run): ms from navigation until the page
  has rendered its first answer (``body[data-ready]``, set after every table is filled),
  and until its late cards (the site roll-up over the inventory's devices, spread over
  ``--sites`` sites, and the failing jobs) are filled too;
- **Explore** with 20 series x 1 day: the page's own figures, fetch (one rollup of the 20) and
  drawn (uPlot built and its canvas drawn), on screen (the next animation frame after it),
  and click-to-on-screen (the "1d" preset pressed on a 6 h view of the same series);
- buckets per series Explore fetches for 1 year and for 1 hour (the step is chosen so
  that no series brings more than ~1,000);
- the alarm list: 30 scroll steps of 2,000 px, each timed until two frames later
  (the list keeps only the rows in view in the page);
- page weight: bytes of HTML, JS and CSS the Overview loads (uncompressed: the server
  does not compress).

Medians of ``--runs``. Then the same Explore view against Prometheus' own graph page
over the same 20 series (``benchmarks/console_prometheus.py``), ``--prometheus-runs``
cold opens of each (3; 0 skips it).
"""

from __future__ import annotations

import argparse
import json
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
import msgspec
import numpy as np

from watchkeeper.wire import COLUMNS_CONTENT_TYPE, WriteColumns

sys.path.insert(0, str(Path(__file__).resolve().parent))
from console_prometheus import compare  # the folder is not a package

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--no-first-run"]
WATCHKEEPER = [sys.executable, "-m", "watchkeeper.cli.main"]
PER_HOST = 50
STEP = 10.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def names(series: int) -> list[str]:
    return [f"host{i // PER_HOST:04d}/bench/m{i % PER_HOST:02d}" for i in range(series)]


def view_series(series: int) -> list[str]:
    """The 20 series Explore shows (spread over the hosts)."""
    return names(series)[:: max(1, series // 20)][:20]


def load(url: str, token: str, series: int, hours: float, now: float, *,
         alarms: int = 200) -> tuple[int, float]:
    """Every series, ``hours`` of 10-s points ending now: (points, seconds)."""
    keys = names(series)
    hosts = sorted({k.split("/")[0] for k in keys})
    status = [f"{h}/ping/check.status" for h in hosts]
    everything = keys + status
    rounds = int(hours * 3600 / STEP)
    per_request = max(1, 1_000_000 // len(everything))
    rng = np.random.default_rng(7)
    index = np.arange(len(everything), dtype="<i4")
    began = time.perf_counter()
    written = 0
    with httpx.Client(base_url=url, timeout=600,
                      headers={"Authorization": f"Token {token}",
                               "Content-Type": COLUMNS_CONTENT_TYPE}) as http:
        for first in range(0, rounds, per_request):
            count = min(per_request, rounds - first)
            ts = now - (rounds - first - np.arange(count)) * STEP
            values = np.concatenate([
                np.round(50 + rng.normal(0, 5, (count, len(keys))), 2),
                np.where(rng.random((count, len(status))) < 0.9, 0.0, 2.0)], axis=1)
            body = WriteColumns(series=everything, index=np.tile(index, count).tobytes(),
                                ts=np.repeat(ts, len(everything)).astype("<f8").tobytes(),
                                values=values.astype("<f8").ravel().tobytes())
            http.post("/api/v1/write", content=msgspec.msgpack.encode(body)).raise_for_status()
            written += count * len(everything)
        events = [{"connector": "bench", "connector_name": "b", "event_type": "check",
                   "source_type": "resource", "component": f"host{i:04d}", "resource": "ping",
                   "state": 1 + i % 3, "output": "bench", "timestamp": int(now)}
                  for i in range(alarms)]
        for first in range(0, len(events), 2000):
            http.post("/api/v1/events/canopsis", content=json.dumps(events[first:first + 2000]),
                      headers={"Content-Type": "application/json"}).raise_for_status()
        deadline = time.monotonic() + 300
        while len(http.get("/api/v1/alarms", params={"limit": 100_000}).json()) < alarms:
            if time.monotonic() > deadline:
                raise SystemExit(f"fewer than {alarms} alarms opened in 5 min")
            time.sleep(1)
    return written, time.perf_counter() - began


# 30 scrolls of 2,000 px through the alarm list, each until two frames later: ms per step.
SCROLL = """async (node) => {
  const times = [];
  for (let i = 0; i < 30; i++) {
    const began = performance.now();
    node.scrollTop += 2000;
    await new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)));
    times.push(performance.now() - began);
  }
  return times;
}"""


def ready(page: Any, name: str) -> dict[str, float]:
    page.wait_for_selector(f"body[data-ready='{name}']", state="attached", timeout=120_000)
    body = page.locator("body")
    return {"route": float(body.get_attribute("data-route-at") or 0),
            "ready": float(body.get_attribute("data-ready-at") or 0)}


def late_cards(page: Any) -> float | None:
    """ms from navigation until the Overview's late cards are filled (None: it has none)."""
    cards = ("#ov-sites", "#ov-failing")
    if page.locator(cards[0]).count() == 0:
        return None
    for card in cards:
        page.wait_for_selector(f"{card}[data-state='done']", state="attached", timeout=120_000)
    return max(float(page.locator(c).get_attribute("data-filled-at") or 0) for c in cards)


def inventory(series: int, sites: int, devices: int = 0) -> str:
    """The bench hosts and ``devices`` more as inventory devices, spread over ``sites``."""
    hosts = sorted({name.split("/")[0] for name in names(series)})
    hosts += [f"extra{i:06d}" for i in range(devices)]
    lines = ["sites:", *(f"  - {{name: site{i:02d}}}" for i in range(sites)), "devices:"]
    lines += [f"  - {{name: {h}, address: 127.0.0.1, site: site{i % sites:02d}}}"
              for i, h in enumerate(hosts)]
    return "\n".join(lines) + "\n"


def measure(url: str, series: int, runs: int) -> dict[str, Any]:
    from playwright.sync_api import sync_playwright

    chosen = view_series(series)
    explore = "&".join(f"s={s}" for s in chosen)
    figures: dict[str, list[float]] = {"overview": [], "overview_filled": [], "fetch": [],
                                       "drawn": [], "draw": [], "click": [], "scroll": [],
                                       "scroll_max": []}
    weight = 0
    buckets: dict[str, float] = {}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        for run in range(runs):
            context = browser.new_context(viewport={"width": 1400, "height": 900})
            page = context.new_page()
            sizes: list[int] = []
            page.on("response", lambda r, sizes=sizes: sizes.append(
                len(r.body())) if "/console/" in r.url or r.url.endswith("/") else None)
            page.goto(f"{url}/#/overview")
            figures["overview"].append(ready(page, "overview")["ready"])
            filled = late_cards(page)
            if filled is not None:
                figures["overview_filled"].append(filled)
            if run == 0:
                page.wait_for_timeout(500)
                weight = sum(sizes)
            page.goto(f"{url}/#/explore?{explore}&r=6h")
            ready(page, "explore")
            page.evaluate("() => { document.body.dataset.ready = ''; }")  # not the 6 h view's
            page.click("button[data-range='1d']")
            marks = ready(page, "explore")
            section = page.locator("#page-explore")
            figures["fetch"].append(float(section.get_attribute("data-fetch-ms") or 0))
            figures["drawn"].append(float(section.get_attribute("data-drawn-ms") or 0))
            figures["draw"].append(float(section.get_attribute("data-draw-ms") or 0))
            figures["click"].append(marks["ready"] - marks["route"])
            page.goto(f"{url}/#/alarms")
            ready(page, "alarms")
            steps = page.locator("#alarm-scroll").evaluate(SCROLL)
            figures["scroll"].append(statistics.median(steps))
            figures["scroll_max"].append(max(steps))
            if run == 0:
                for preset in ("1y", "1h"):
                    page.goto(f"{url}/#/explore?s={chosen[0]}&r={preset}")
                    ready(page, "explore")
                    buckets[preset] = float(section.get_attribute("data-points") or 0)
            context.close()
        browser.close()
    return {"medians_ms": {k: round(statistics.median(v), 1) for k, v in figures.items() if v},
            "runs_ms": {k: [round(x, 1) for x in v] for k, v in figures.items()},
            "page_weight_bytes": weight, "buckets_per_series": buckets}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--series", type=int, default=10_000)
    parser.add_argument("--hours", type=float, default=24.0)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--alarms", type=int, default=10_000)
    parser.add_argument("--prometheus-runs", type=int, default=3,
                        help="cold opens of the 20-series view in Explore and in Prometheus' "
                             "graph page, side by side (0: skip)")
    parser.add_argument("--sites", type=int, default=10,
                        help="sites the hosts are spread over in the inventory file")
    parser.add_argument("--devices", type=int, default=0,
                        help="inventory devices besides the hosts (no series of their own)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="wk-console-bench-") as tmp:
        data = Path(tmp) / "var"
        data.mkdir()
        config = Path(tmp) / "wk.yaml"
        (Path(tmp) / "inventory.yaml").write_text(inventory(args.series, args.sites,
                                                            args.devices))
        config.write_text(f"data_dir: {data}\ncollectors: []\n"
                          f"inventory: {{file: {Path(tmp) / 'inventory.yaml'}}}\n")
        token = subprocess.run([*WATCHKEEPER, "token", "create", "--user", "bench", "--write",
                                "-c", str(config)], capture_output=True, text=True, check=True,
                               timeout=60).stdout.split()[-1]
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        proc = subprocess.Popen([*WATCHKEEPER, "up", "-c", str(config), "--listen",
                                 f"127.0.0.1:{port}"], stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, text=True,
                                env={**os.environ, "PYTHONUNBUFFERED": "1"})
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    if httpx.get(f"{url}/api/v1/health", timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise SystemExit(f"watchkeeper up did not start: {proc.stderr}")
                time.sleep(0.2)
            points, seconds = load(url, token, args.series, args.hours, now := time.time(),
                                   alarms=args.alarms)
            print(f"loaded {points:,} points ({args.series:,} series + check.status, "
                  f"{args.hours:g} h at 10 s) in {seconds:.1f} s")
            result = measure(url, args.series, args.runs)
            versus = compare(url, view_series(args.series), now - args.hours * 3600, now,
                             args.prometheus_runs, chromium=CHROMIUM, args=ARGS
                             ) if args.prometheus_runs else ""
        finally:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=120)
            except subprocess.TimeoutExpired:
                proc.kill()
    m = result["medians_ms"]
    print(f"Overview interactive from navigation (cold context): {m['overview']} ms median; "
          f"late cards (sites, failing jobs) filled {m.get('overview_filled', '-')} ms")
    print(f"Explore 20 series x 1 day: fetch {m['fetch']} ms; uPlot drawn {m['drawn']} ms "
          f"after the data, on screen (next frame) {m['draw']} ms; click to on screen "
          f"{m['click']} ms (medians)")
    print(f"alarm list of {args.alarms:,}: a 2,000-px scroll step until two frames later "
          f"{m['scroll']} ms median, slowest step {m['scroll_max']} ms (medians over runs)")
    print(f"buckets per series: 1 year {result['buckets_per_series'].get('1y')}, "
          f"1 hour {result['buckets_per_series'].get('1h')}")
    print(f"Overview page weight: {result['page_weight_bytes'] / 1024:.0f} KiB uncompressed")
    load1, load5, _ = os.getloadavg()
    print(f"machine load average during the run: {load1:.1f} (1 min), {load5:.1f} (5 min) "
          f"on {os.cpu_count()} CPUs: figures on a busy machine include waiting for a CPU")
    print(json.dumps(result), versus, sep="\n")


if __name__ == "__main__":
    main()
