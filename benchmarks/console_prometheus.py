"""The same view in watchkeeper's Explore and in Prometheus' own graph page, side by side
(``benchmarks/console.py`` runs it after its own figures; ``--no-prometheus`` skips it).

The view is the console benchmark's: 20 series x 1 day. Their points are read back from
watchkeeper (``/api/v1/query``, every raw point) and sent to Debian's Prometheus by
remote write (``--web.enable-remote-write-receiver``, in time order; the Prometheus of
``benchmarks/promql.py``), named as ``/federate`` and the PromQL API name them
(``host0000/bench/m00`` is ``m00{instance="host0000",job="bench"}``); Prometheus is left
until it is idle (its head compaction done). Prometheus holds only these 20 series,
watchkeeper all of the benchmark's: if anything that favours Prometheus.

Debian packages Prometheus' classic UI (jQuery, Rickshaw drawing SVG), at
``/classic/graph``; its view is ``g0.range_input=1d`` with ``g0.step_input=120``, the
2-minute step Explore picks for a day (721 points a series against Explore's 720
buckets; Prometheus draws the sample at each step, Explore the average with a min/max
band). Each run opens both links in a new browser context (cold), in turn:

- **open to on screen**: ms from navigation until the chart is on screen (Explore:
  ``body[data-ready-at]``, set after the frame that shows it; Prometheus: the animation
  frame after the page wrote its "Load time", which it does after drawing);
- **fetch**: the data request, from the browser's resource timing (Explore: its one
  ``/api/v1/rollup`` of the 20 series; Prometheus: its one ``query_range``);
- **drawn / on screen after the data**: from the data response's last byte (so parsing
  the JSON counts, and for Explore waiting for uPlot's script if it is still loading)
  until drawn (Explore: uPlot's canvas drawn; Prometheus: the "Load time" written), and
  until the next frame (the chart on screen);
- **page weight**: bytes of every response the page loaded (uncompressed).
"""

from __future__ import annotations

import re
import statistics
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import cramjam
import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from promql import REMOTE_WRITE, Prometheus, quiet

from watchkeeper.api.ingest.remote_write import write_request_class
from watchkeeper.model import SeriesKey
from watchkeeper.model.promlabels import to_labels

PER_REQUEST = 720  # samples per series per remote-write request (2 h at 10 s)
# Marks when the classic graph page has drawn: it writes "Load time" in .eval_stats once
# the graph is rendered (jQuery's complete after success); the next frame is on screen.
MARKS = """(() => {
  const look = () => {
    const stats = document.querySelector(".eval_stats");
    if (!window.__drawnAt && stats && stats.textContent.includes("Load time")) {
      window.__drawnAt = performance.now();
      requestAnimationFrame(() => { window.__shownAt = performance.now(); });
    }
  };
  new MutationObserver(look).observe(document, {subtree: true, childList: true,
                                                characterData: true});
})();"""
# The data requests of a page (by a part of their URL), from the browser's resource timing:
# from the first one's start to the last one's last byte.
DATA_REQUESTS = """(part) => {
  const entries = performance.getEntriesByType("resource").filter((e) => e.name.includes(part));
  const start = Math.min(...entries.map((e) => e.startTime));
  const end = Math.max(...entries.map((e) => e.responseEnd));
  return {fetch: end - start, arrived: end, drawn: window.__drawnAt, shown: window.__shownAt};
}"""


@contextmanager
def prometheus_with(wk_url: str, chosen: list[str], start: float, end: float
                    ) -> Iterator[tuple[Prometheus, int, float]]:
    """A running Prometheus holding the points of ``chosen`` in ``[start, end]``, read from
    watchkeeper: (Prometheus, samples written, seconds until idle after the load)."""
    with Prometheus.started() as prom:
        columns = []
        for name in chosen:
            answer = httpx.get(f"{wk_url}/api/v1/query", timeout=120,
                               params={"series": name, "start": start, "end": end}).json()
            labels = sorted(to_labels(SeriesKey.parse(name)).items())
            columns.append((labels, answer["points"]))
        message = write_request_class()
        longest = max(len(points) for _, points in columns)
        written = 0
        for first in range(0, longest, PER_REQUEST):
            request = message()
            for labels, points in columns:
                series = request.timeseries.add()
                for label, value in labels:
                    series.labels.add(name=label, value=value)
                for ts, value in points[first:first + PER_REQUEST]:
                    series.samples.add(timestamp=round(ts * 1000), value=value)
                    written += 1
            body = bytes(cramjam.snappy.compress_raw(request.SerializeToString()))
            prom.http.post("/api/v1/write", content=body, headers=REMOTE_WRITE
                           ).raise_for_status()
        yield prom, written, quiet(prom.pid)


def expression(chosen: list[str]) -> str:
    """PromQL selecting ``chosen`` (names, jobs and instances by regex: Prometheus holds
    only these series, so no other combination exists)."""
    labels = [to_labels(SeriesKey.parse(name)) for name in chosen]

    def any_of(label: str) -> str:
        return "|".join(sorted({re.escape(lab[label]) for lab in labels}))

    return (f'{{__name__=~"{any_of("__name__")}",job=~"{any_of("job")}",'
            f'instance=~"{any_of("instance")}"}}')


def measure(wk_url: str, prom_url: str, chosen: list[str], runs: int, browser: Any
            ) -> dict[str, Any]:
    """Both pages' figures over ``runs`` cold opens each, in turn."""
    explore = f"{wk_url}/#/explore?" + "&".join(f"s={s}" for s in chosen) + "&r=1d&live=0"
    graph = f"{prom_url}/classic/graph?" + str(httpx.QueryParams({
        "g0.expr": expression(chosen), "g0.tab": "0", "g0.range_input": "1d",
        "g0.step_input": "120"}))
    figures: dict[str, dict[str, list[float]]] = {
        system: {"open": [], "fetch": [], "drawn": [], "shown": []}
        for system in ("watchkeeper", "prometheus")}
    weight: dict[str, int] = {}
    for run in range(runs):
        for system in ("watchkeeper", "prometheus"):
            context = browser.new_context(viewport={"width": 1400, "height": 900})
            page = context.new_page()
            sizes: list[int] = []
            page.on("response", lambda r, sizes=sizes: sizes.append(len(r.body()))
                    if r.ok else None)
            mine = figures[system]
            if system == "watchkeeper":
                page.goto(explore)
                page.wait_for_selector("body[data-ready='explore']", state="attached",
                                       timeout=120_000)
                section = page.locator("#page-explore")
                assert page.locator("#chart canvas").count() >= 1
                assert section.get_attribute("data-charts") == "1"
                shown = float(page.locator("body").get_attribute("data-ready-at") or 0)
                # The page's own marks are from the data and uPlot both being there.
                drawn = shown - float(section.get_attribute("data-draw-ms") or 0) + float(
                    section.get_attribute("data-drawn-ms") or 0)
                data = page.evaluate(DATA_REQUESTS, "/api/v1/rollup")
                mine["open"].append(shown)
                mine["fetch"].append(data["fetch"])
                mine["drawn"].append(drawn - data["arrived"])
                mine["shown"].append(shown - data["arrived"])
            else:
                page.add_init_script(MARKS)
                page.goto(graph)
                page.wait_for_function("() => window.__shownAt", timeout=120_000)
                legend = page.locator(".legend .line").count()
                assert legend == len(chosen), f"Prometheus drew {legend} series"
                marks = page.evaluate(DATA_REQUESTS, "/api/v1/query_range")
                mine["open"].append(marks["shown"])
                mine["fetch"].append(marks["fetch"])
                mine["drawn"].append(marks["drawn"] - marks["arrived"])
                mine["shown"].append(marks["shown"] - marks["arrived"])
            if run == 0:
                page.wait_for_timeout(500)
                weight[system] = sum(sizes)
            context.close()
    return {"medians_ms": {s: {k: round(statistics.median(v), 1) for k, v in f.items()}
                           for s, f in figures.items()},
            "runs_ms": {s: {k: [round(x, 1) for x in v] for k, v in f.items()}
                        for s, f in figures.items()},
            "page_weight_bytes": weight}


def table(result: dict[str, Any], samples: int, idle_s: float) -> str:
    """The side-by-side figures as a Markdown table, with the ratios."""
    m = result["medians_ms"]
    rows = [("open the view's link to chart on screen (cold context)", "open"),
            ("fetch of the data", "fetch"), ("drawn after the data arrived", "drawn"),
            ("on screen after the data arrived", "shown")]
    lines = [(f"Prometheus loaded with {samples:,} samples (the 20 series), idle after "
             f"{idle_s:.0f} s"),
             ("| 20 series x 1 day, medians | watchkeeper Explore | Prometheus /classic/graph "
             "| Prometheus / watchkeeper |"), "| --- | --- | --- | --- |"]
    for label, key in rows:
        ours, theirs = m["watchkeeper"][key], m["prometheus"][key]
        ratio = f"{theirs / ours:.2f}x" if ours else "-"
        lines.append(f"| {label} | {ours} ms | {theirs} ms | {ratio} |")
    weight = result["page_weight_bytes"]
    lines.append(f"| page weight (all responses, uncompressed) | "
                 f"{weight.get('watchkeeper', 0) / 1024:.0f} KiB | "
                 f"{weight.get('prometheus', 0) / 1024:.0f} KiB | |")
    return "\n".join(lines)


def compare(wk_url: str, chosen: list[str], start: float, end: float, runs: int, *,
            chromium: str, args: list[str]) -> str:
    """Load Prometheus, time both pages in one browser (``chromium`` run with ``args``),
    and the table."""
    from playwright.sync_api import sync_playwright

    began = time.perf_counter()
    with prometheus_with(wk_url, chosen, start, end) as (prom, samples, idle_s):
        print(f"Prometheus loaded in {time.perf_counter() - began:.1f} s", flush=True)
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=chromium, args=args)
            try:
                result = measure(wk_url, prom.url, chosen, runs, browser)
            finally:
                browser.close()
    return table(result, samples, idle_s) + "\n" + str(result)
