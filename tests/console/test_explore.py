"""Explore (issue 14) in Debian's chromium against a real ``watchkeeper up``: series found
by plugin and label, small multiples, histograms as heatmaps, markup kept as text.

Seeds of its own, written through the API (native writes, and esmond's bulk PUT for a
one-way delay histogram), on the stack ``conftest.console`` starts for this module.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.console.conftest import IMG, SCRIPT, Console
from tests.console.test_pages import Page

pytestmark = pytest.mark.slow

PROBES = ['web1/probe/loss{dst="db1",host="web1"}', 'web1/probe/rtt{dst="db1",host="web1"}',
          'web2/probe/rtt{dst="db1",host="web2"}', 'web1/other/rtt{host="web1"}']
XSS_HISTOGRAM = f'web1/xss/h{{note="{SCRIPT}"}}'
# Twelve one-way delay histograms 200 s apart in the last hour (12 columns at its 5-s
# step), over five buckets: bucket "10.0" in every one, "10.5" in every other one.
OWDELAY = [{"10.0": 50, "10.5": 3, "11.0": 1, "12.0": 1, "20.0": 1} if i % 2 == 0 else
           {"10.0": 60, "11.0": 2} for i in range(12)]


@dataclass(frozen=True)
class Seeded:
    owdelay: str  # the histogram series' name


@pytest.fixture
def tab(console: Console, browser: Any) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    try:
        yield Page(context.new_page(), console.url)
    finally:
        context.close()


@pytest.fixture(scope="module")
def seeded(console: Console) -> Seeded:
    auth = console.headers()
    now = time.time()
    points: list[list[Any]] = [[name, now - 3600 + 60 * i, float(i + n)]
                               for n, name in enumerate(PROBES) for i in range(1, 60)]
    points += [[XSS_HISTOGRAM, now - 600 + 60 * i, {"1": 1 + i, "2": 3}] for i in range(5)]
    written = httpx.post(f"{console.url}/api/v1/write", headers=auth, timeout=30,
                         json={"points": points, "units": {XSS_HISTOGRAM: IMG}})
    assert written.status_code == 201, written.text
    archive = f"{console.url}/esmond/perfsonar/archive"
    created = httpx.post(f"{archive}/", headers=auth, timeout=10, json={
        "subject-type": "point-to-point", "source": "10.0.0.1", "destination": "10.0.0.9",
        "measurement-agent": "10.0.0.1", "tool-name": "pscheduler/powstream",
        "input-source": "h1", "input-destination": "h9",
        "event-types": [{"event-type": "histogram-owdelay", "summaries": []}]})
    assert created.status_code == 201, created.text
    key = created.json()["metadata-key"]
    start = int(now) - 2400
    rows = [{"ts": start + 200 * i, "val": [{"event-type": "histogram-owdelay", "val": h}]}
            for i, h in enumerate(OWDELAY)]
    put = httpx.put(f"{archive}/{key}/", headers=auth, timeout=10, json={"data": rows})
    assert put.status_code == 201, put.text
    return Seeded(owdelay=f"{key}/esmond/histogram-owdelay")


def _view(*series: str, extra: str = "") -> str:
    return "explore?" + "&".join(f"s={httpx.QueryParams({'s': s})['s']}" for s in series) + extra


def _options(page: Any) -> list[str]:
    return [o.get_attribute("value") for o in page.locator("#series-options option").all()]


def test_search_by_plugin_and_label_finds_the_seeded_series(tab: Page, seeded: Seeded) -> None:
    page = tab.open("explore")
    page.fill("#series-input", "plugin:probe host=web1")
    page.wait_for_selector("#series-found[data-found='2']", state="attached", timeout=10_000)
    assert _options(page) == PROBES[:2]
    page.fill("#series-input", "metric:rtt dst=db1 web2")  # a label and a word
    page.wait_for_selector("#series-found[data-found='1']", state="attached", timeout=10_000)
    assert _options(page) == PROBES[2:3]
    page.fill("#series-input", "kind:histogram esmond")
    page.wait_for_selector("#series-found[data-found='1']", state="attached", timeout=10_000)
    assert _options(page) == [seeded.owdelay]
    page.fill("#series-input", "plugin:probe host=web1")  # "add" brings what a search finds
    page.wait_for_selector("#series-found[data-found='2']", state="attached", timeout=10_000)
    page.click("#series-add")
    page.wait_for_url("**s=*s=*", timeout=10_000)
    page.wait_for_selector("body[data-ready='explore']", state="attached")
    chips = page.locator("#series-chips .chip").all_inner_texts()
    assert [chip.rstrip("\u00d7") for chip in chips] == PROBES[:2]  # less the remove button
    assert page.locator("#chart canvas").count() >= 1
    assert tab.errors == []


def test_a_bad_search_shows_the_parameter_it_names(tab: Page) -> None:
    page = tab.open("explore")
    page.fill("#series-input", "plugin:a/b")
    page.wait_for_selector("#series-found.error", timeout=10_000)
    assert page.locator("#series-found").inner_text().startswith("plugin: must be non-empty")


def test_small_multiples_draw_one_chart_per_series(tab: Page, seeded: Seeded) -> None:
    page = tab.open(_view(*PROBES[:3], extra="&r=1h"))
    assert page.locator("#page-explore").get_attribute("data-charts") == "1"
    page.click("#sm-toggle")
    page.wait_for_url("**sm=1*", timeout=10_000)
    page.wait_for_selector("#page-explore[data-charts='3']", state="attached", timeout=10_000)
    boxes = page.locator("#chart .chart-small")
    assert [b.get_attribute("data-series") for b in boxes.all()] == PROBES[:3]
    for box in boxes.all():
        assert box.locator("canvas").count() >= 1  # uPlot's
    page = tab.open(_view(*PROBES[:3], seeded.owdelay, extra="&r=1h&sm=1"))
    assert page.locator("#page-explore").get_attribute("data-charts") == "3"
    assert page.locator("canvas.heatmap").count() == 1
    tab.shot("explore-small-multiples")
    assert tab.errors == []


def test_a_histogram_series_is_drawn_as_a_heatmap(tab: Page, seeded: Seeded) -> None:
    page = tab.open(_view(seeded.owdelay, extra="&r=1h"))
    canvas = page.locator(f"canvas.heatmap[data-series='{seeded.owdelay}']")
    assert canvas.get_attribute("data-columns") == str(len(OWDELAY))
    assert canvas.get_attribute("data-rows") == "5"  # 10.0, 10.5, 11.0, 12.0, 20.0
    assert canvas.get_attribute("data-cells") == str(sum(len(h) for h in OWDELAY))
    info = page.locator("#explore-info").inner_text()
    assert "1 histogram series as heatmaps" in info
    box = canvas.bounding_box()
    assert box is not None
    assert box["width"] > 400
    assert box["height"] > 50
    assert page.locator("#page-explore").get_attribute("data-charts") == "0"
    tab.shot("explore-heatmap")
    assert tab.errors == []


def test_a_histogram_name_and_unit_stay_text(tab: Page, seeded: Seeded) -> None:
    page = tab.open(_view(XSS_HISTOGRAM, extra="&r=1h"))
    title = page.locator(".heatmap-box .heat-title").inner_text()
    assert SCRIPT in title
    assert IMG in title
    assert page.locator("canvas.heatmap").get_attribute("data-columns") == "5"
    assert page.locator("main img, main script").count() == 0
    assert page.evaluate("() => window.__xss") is None
    assert tab.errors == []
