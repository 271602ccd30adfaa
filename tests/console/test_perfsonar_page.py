"""The perfSONAR page: a grid cell opens the pair (metadata, latest base and summary values,
a day's chart), and the thresholds come from the URL. Runs on conftest's stack (which has
loss 5 % for 10.0.0.1 -> 10.0.0.2 and 0 % for -> 10.0.0.3) plus one more pair written here
with summaries, a delay histogram and markup in its metadata."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.console.conftest import IMG, SCRIPT, SHOTS, Console
from tests.console.own_stack import tab_on
from tests.console.test_pages import Page

pytestmark = pytest.mark.slow

SOURCE, RICH = "10.0.0.1", "10.0.0.4"
HOUR = 3600


@dataclass
class Rich:
    """The pair written here: its metadata key and the loss points (ts, lost of 100)."""

    key: str
    losses: list[tuple[int, int]]


@pytest.fixture(scope="module")
def rich(console: Console) -> Rich:
    archive = f"{console.url}/esmond/perfsonar/archive"
    auth = console.headers()
    created = httpx.post(f"{archive}/", headers=auth, timeout=10, json={
        "subject-type": "point-to-point", "source": SOURCE, "destination": RICH,
        "measurement-agent": SOURCE, "tool-name": SCRIPT, "input-source": IMG,
        "input-destination": RICH,
        "event-types": [
            {"event-type": "packet-loss-rate",
             "summaries": [{"summary-type": "aggregation", "summary-window": str(HOUR)}]},
            {"event-type": "histogram-owdelay",
             "summaries": [{"summary-type": "statistics", "summary-window": "0"}]}]})
    assert created.status_code == 201, created.text
    key = created.json()["metadata-key"]
    # Two points in one hour's bin, one in the next (all within the last day).
    bin_start = (int(console.now) - 3 * HOUR) // HOUR * HOUR
    losses = [(bin_start + 10, 1), (bin_start + 20, 2), (bin_start + HOUR + 10, 3)]
    for ts, lost in losses:
        posted = httpx.post(f"{archive}/{key}/packet-loss-rate/base", headers=auth, timeout=10,
                            json={"ts": ts, "val": {"numerator": lost, "denominator": 100}})
        assert posted.status_code == 201, posted.text
    posted = httpx.post(f"{archive}/{key}/histogram-owdelay/base", headers=auth, timeout=10,
                        json={"ts": bin_start + 30, "val": {"20": 3, "40": 1}})
    assert posted.status_code == 201, posted.text
    return Rich(key, losses)


@pytest.fixture
def tab(console: Console, browser: Any) -> Iterator[Page]:
    with tab_on(browser, console.url) as page:
        yield page


def _cell(page: Any, destination: str) -> Any:
    return page.locator(f"td[data-source='{SOURCE}'][data-destination='{destination}']")


def _value(page: Any, event_type: str, what: str) -> str:
    text: str = page.locator(f"td[data-event-type='{event_type}'][data-what='{what}']").inner_text()
    return text


def test_a_cell_opens_the_pair_with_the_loss_written(tab: Page, rich: Rich) -> None:
    page = tab.open("perfsonar?m=loss")
    _cell(page, "10.0.0.2").locator("a").click()
    page.wait_for_url("**src=10.0.0.1*", timeout=10_000)
    page.wait_for_selector("body[data-ready='perfsonar'] #ps-pair", state="attached",
                           timeout=15_000)
    assert page.locator("#ps-pair").inner_text() == "10.0.0.1 → 10.0.0.2"
    assert "dst=10.0.0.2" in page.url
    assert _value(page, "packet-loss-rate", "base") == "0.05"  # 5 of 100, as written
    card = page.locator(".ps-metadata")
    assert card.count() == 1
    assert "pscheduler/owping" in card.inner_text()  # the metadata, as text
    assert page.locator(".ps-chart").get_attribute("data-points") == "1"
    assert page.locator(".ps-chart canvas").count() >= 1
    # the base is a float series of the archive: the link opens it in Explore
    key = card.get_attribute("data-key")
    link = page.locator("a.ps-explore")
    assert link.inner_text() == f"{key}/esmond/packet-loss-rate in Explore"
    link.click()
    page.wait_for_selector("body[data-ready='explore'] #chart canvas", state="attached",
                           timeout=15_000)
    assert tab.errors == []


def test_the_pair_view_has_each_summary_and_a_day_of_points(tab: Page, rich: Rich) -> None:
    page = tab.open(f"perfsonar?m=loss&src={SOURCE}&dst={RICH}")
    card = page.locator(f".ps-metadata[data-key='{rich.key}']")
    assert card.count() == 1
    assert _value(page, "packet-loss-rate", "base") == "0.03"  # the latest point
    # an hour's aggregation is Σ lost / Σ sent of the points in its bin: the last bin holds 3
    assert _value(page, "packet-loss-rate", f"aggregation {HOUR} s") == "0.03"
    assert page.locator(".ps-chart").get_attribute("data-points") == str(len(rich.losses))
    # the delay histogram's statistics, shown as text
    stats = _value(page, "histogram-owdelay", "statistics 0 s")
    assert '"median":20' in stats
    tab.shot("perfsonar-pair")
    page.locator(f".ps-metadata[data-key='{rich.key}']").screenshot(
        path=str(_shots() / "perfsonar-pair-card.png"))


def test_delay_charts_the_statistics_median(tab: Page, rich: Rich) -> None:
    page = tab.open(f"perfsonar?m=delay&src={SOURCE}&dst={RICH}")
    assert page.locator(".ps-chart").get_attribute("data-points") == "1"
    assert page.locator("a.ps-explore").count() == 0  # statistics are objects, not floats


def test_thresholds_come_from_the_url(tab: Page) -> None:
    page = tab.open("perfsonar?m=loss&ok=0.1&warn=0.2")
    assert _cell(page, "10.0.0.2").get_attribute("data-grade") == "ok"  # 0.05 <= 0.1
    assert "≤ 0.1 ok, ≤ 0.2 warning" in page.locator("#ps-thresholds").inner_text()
    href = _cell(page, "10.0.0.2").locator("a").get_attribute("href") or ""
    assert "ok=0.1" in href
    assert "warn=0.2" in href  # the pair view keeps them
    page = tab.open("perfsonar?m=loss&ok=0.01&warn=0.04")
    assert _cell(page, "10.0.0.2").get_attribute("data-grade") == "critical"  # 0.05 > 0.04
    page = tab.open("perfsonar?m=loss&ok=0.01&warn=0.06")
    assert _cell(page, "10.0.0.2").get_attribute("data-grade") == "warning"
    # the form sets them
    page.fill("#th-ok", "0.07")
    page.click("#th-apply")
    page.wait_for_url("**ok=0.07*", timeout=10_000)
    page.wait_for_selector("body[data-ready='perfsonar'] td.cell", state="attached")
    assert _cell(page, "10.0.0.2").get_attribute("data-grade") == "ok"
    # not a number: said, and the default used (0.05 is critical by default)
    page = tab.open("perfsonar?m=loss&ok=lots")
    assert 'ok: expected a number, not "lots"' in page.locator("main .error").inner_text()
    assert _cell(page, "10.0.0.2").get_attribute("data-grade") == "critical"
    assert tab.errors == []


def test_markup_in_metadata_stays_text(tab: Page, rich: Rich) -> None:
    page = tab.open(f"perfsonar?m=loss&src={SOURCE}&dst={RICH}")
    shown = page.locator(f".ps-metadata[data-key='{rich.key}']").inner_text()
    assert IMG in shown
    assert SCRIPT in shown
    assert page.locator("main img, main script").count() == 0
    assert page.evaluate("() => window.__xss") is None
    assert tab.errors == []


def test_an_unknown_pair_says_so(tab: Page) -> None:
    page = tab.open("perfsonar?m=loss&src=10.9.9.9&dst=10.9.9.8")
    assert "no measurements from 10.9.9.9 to 10.9.9.8" in page.locator("main").inner_text()
    assert page.locator(".ps-metadata").count() == 0


def _shots() -> Path:
    SHOTS.mkdir(parents=True, exist_ok=True)
    return SHOTS
