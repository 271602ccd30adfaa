"""The Collectors page and the Overview's site roll-up and failing jobs, in Debian's
chromium, against a real ``watchkeeper up`` of this module's own that polls nginx
(``scripts/services up``: 127.0.0.1:28480) with real collectors: a tcp connect, an http
check whose URL carries a password, and an http check answered 503 (CRITICAL). The
devices come from an inventory file (web1 in site par1, db1 in no site, site lon1 with no
device) and from the settings: core1, whose connections hold an inline password (the
inventory file refuses those; the settings take them)."""

from __future__ import annotations

import os
import re
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.console.conftest import WATCHKEEPER
from tests.console.test_pages import Page
from tests.e2e.test_up import Stack, free_port
from tests.support.services import HOST, NGINX_HTTP

pytestmark = pytest.mark.slow

URL_PASSWORD = "pa55-in-url"
DEVICE_PASSWORD = "hunter2-password"
INTERVAL = 10
RANK = {"ERRORED": 5, "CRITICAL": 4, "WARNING": 3, "PARTIAL": 2, "OK": 1, "UNKNOWN": 0,
        "PENDING": -1}  # the jobs API's order: its Status severity
SITE_RANK = {"CRITICAL": 2, "ERRORED": 2.5, "WARNING": 1, "OK": 0}  # the Overview's order
JOBS = ("port:web1", "page:web1", "broken:web1", "reach:core1")



def config_text(tmp: Path) -> str:
    """``up`` with three collectors on the devices tagged web (the inventory file's) and one
    on core1, a device of the settings whose connections hold an inline password."""
    return f"""\
data_dir: {tmp}/var
inventory:
  file: {tmp}/inventory.yaml
  collectors: {{static: {{period: 1}}}}
  devices:
    - name: core1
      address: {HOST}
      connections: {{ssh: {{username: wk, password: {DEVICE_PASSWORD}}}}}
collectors:
  - {{name: reach, plugin: tcp, interval: {INTERVAL}, devices: [core1],
     options: {{port: {NGINX_HTTP}}}}}
  - {{name: port, plugin: tcp, interval: {INTERVAL}, devices: ["tag:web"],
     options: {{port: {NGINX_HTTP}}}}}
  - {{name: page, plugin: http, interval: {INTERVAL}, devices: ["tag:web"],
     options: {{url: "http://wk:{URL_PASSWORD}@{{address}}:{NGINX_HTTP}/"}}}}
  - {{name: broken, plugin: http, interval: {INTERVAL}, devices: ["tag:web"],
     options: {{url: "http://{{address}}:{NGINX_HTTP}/status/503"}}}}
"""


INVENTORY = f"""\
sites:
  - {{name: par1, attrs: {{city: Paris}}}}
  - {{name: lon1}}
devices:
  - name: web1
    address: {HOST}
    tags: [web]
    site: par1
  - {{name: db1, address: 127.0.0.2}}
"""


@dataclass
class Polling:
    """The running ``up``: where it answers."""

    url: str


def _wait_polled(url: str, timeout: float = 90) -> None:
    """Until each job has polled and its check.status reached the archive."""
    deadline = time.monotonic() + timeout
    while True:
        jobs = httpx.get(f"{url}/api/v1/collect/jobs", timeout=5).json()["jobs"]
        polled = {j["job"] for j in jobs if j["status"] is not None}
        series = httpx.get(f"{url}/api/v1/rollup", timeout=5, params={
            "metric": "check.status", "start": "900s", "step": 900, "aggs": "last"}).json()
        stored = {s["series"] for s in series["series"]}
        wanted = {"{1}/{0}/check.status".format(*job.split(":")) for job in JOBS}
        if set(JOBS) <= polled and wanted <= stored:
            return
        assert time.monotonic() < deadline, (polled, stored)
        time.sleep(0.5)


@pytest.fixture(scope="module")
def polling(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Polling]:
    try:
        httpx.get(f"http://{HOST}:{NGINX_HTTP}/", timeout=2)
    except httpx.TransportError:
        pytest.fail(f"nginx is not answering on {HOST}:{NGINX_HTTP}: run scripts/services up")
    tmp = tmp_path_factory.mktemp("collectors-page")
    (tmp / "var").mkdir()
    (tmp / "inventory.yaml").write_text(INVENTORY)
    config = tmp / "wk.yaml"
    config.write_text(config_text(tmp))
    port = free_port()
    log = (tmp / "up.log").open("w")
    proc = subprocess.Popen([*WATCHKEEPER, "up", "-c", str(config), "--listen",
                             f"127.0.0.1:{port}"], stdout=log, stderr=subprocess.STDOUT,
                            text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    stack = Stack(proc, f"http://127.0.0.1:{port}")
    try:
        stack.wait_ready(timeout=60)
        _wait_polled(stack.url)
        yield Polling(stack.url)
    finally:
        if proc.poll() is None:
            proc.send_signal(2)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
        log.close()


@pytest.fixture
def tab(polling: Polling, browser: Any) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    try:
        yield Page(context.new_page(), polling.url)
    finally:
        context.close()


def _row(page: Any, job: str) -> list[str]:
    text: str = page.locator(f"#job-list tr[data-job='{job}']").inner_text()
    return text.split("\t")


def test_each_job_shows_its_interval_next_run_and_latest_status(tab: Page) -> None:
    page = tab.open("collectors")
    header = page.locator("#job-list thead tr").inner_text().split("\t")
    assert header[:6] == ["status", "device", "collector", "interval", "next run", "last run"]
    port = dict(zip(header, _row(page, "port:web1"), strict=True))
    assert (port["status"], port["device"], port["collector"]) == ("OK", "web1", "port")
    assert port["interval"] == f"{INTERVAL} s"
    assert re.fullmatch(r"in \d+ s|now|running", port["next run"]), port["next run"]
    assert re.fullmatch(r"\d+ s ago", port["last run"]), port["last run"]
    assert port["reason"].startswith(f"connected to {HOST}:{NGINX_HTTP} in ")
    broken = dict(zip(header, _row(page, "broken:web1"), strict=True))
    assert broken["status"] == "CRITICAL"
    assert "HTTP 503" in broken["reason"]
    statuses = [row.split("\t")[0] for row in page.locator("#job-list tbody tr").all_inner_texts()]
    assert [RANK[s] for s in statuses] == sorted((RANK[s] for s in statuses), reverse=True)
    assert "Polls since start, by collector and status" in page.locator("main").inner_text()
    assert tab.errors == []


def test_clicking_a_job_shows_its_last_run_report(tab: Page) -> None:
    page = tab.open("collectors")
    page.click("#job-list tr[data-job='port:web1']")
    page.wait_for_selector("body[data-ready='collectors'] #job-report", state="attached")
    assert "report=port%2Fweb1" in page.url or "report=port/web1" in page.url
    report = page.locator("#job-report")
    text = report.inner_text()
    assert "Last run of port on web1" in text
    assert f"connected to {HOST}:{NGINX_HTTP} in " in text
    [series] = report.locator("table:last-of-type tbody tr").all_inner_texts()
    name, value, unit = series.split("\t")
    assert (name, unit) == ("web1/port/connect.latency", "ms")
    assert float(value) >= 0
    assert report.locator("table").first.inner_text().startswith("status\tOK")
    assert page.locator("#job-list tr.selected").get_attribute("data-job") == "port:web1"
    tab.shot("collectors")
    assert tab.errors == []


def test_filters_by_status_and_collector(tab: Page) -> None:
    page = tab.open("collectors")
    page.click("#job-filters button[data-status='critical']")
    page.wait_for_url(re.compile(r"status=critical"))
    page.wait_for_selector("body[data-ready='collectors'] #job-list", state="attached")
    jobs = page.locator("#job-list tbody tr").evaluate_all(
        "rows => rows.map((r) => r.dataset.job)")
    assert jobs == ["broken:web1"]
    page = tab.open("collectors")
    page.select_option("#job-collector", "page")
    page.wait_for_url(re.compile(r"collector=page"))
    page.wait_for_selector("body[data-ready='collectors'] #job-list", state="attached")
    jobs = page.locator("#job-list tbody tr").evaluate_all(
        "rows => rows.map((r) => r.dataset.job)")
    assert jobs == ["page:web1"]


def test_no_password_reaches_the_page(tab: Page) -> None:
    """The http check's URL password is redacted in the reason and the report; the
    device's inline password is nowhere (the jobs API names devices only)."""
    page = tab.open("collectors?report=page/web1")
    text = page.locator("main").inner_text()
    assert f"http://wk:<redacted>@{HOST}:{NGINX_HTTP}/" in text
    for view in ("collectors?report=page/web1", "overview"):
        page = tab.open(view)
        page.wait_for_timeout(300)  # the Overview's late cards too
        assert URL_PASSWORD not in page.content(), view
        assert DEVICE_PASSWORD not in page.content(), view


def test_overview_rolls_health_up_by_site_and_lists_failing_jobs(tab: Page) -> None:
    page = tab.open("overview")
    page.wait_for_selector("#ov-sites[data-state='done']", state="attached", timeout=15_000)
    page.wait_for_selector("#ov-failing[data-state='done']", state="attached", timeout=15_000)
    header = page.locator("#ov-sites thead tr").inner_text().split("\t")
    assert header == ["", "site", "devices", "OK", "WARNING", "CRITICAL", "ERRORED"]
    rows = [dict(zip(header, r.split("\t"), strict=True))
            for r in page.locator("#ov-sites tbody tr").all_inner_texts()]
    by_site = {r["site"]: r for r in rows}
    assert (by_site["par1"][""], by_site["par1"]["devices"]) == ("CRITICAL", "1")
    assert (by_site["par1"]["OK"], by_site["par1"]["CRITICAL"]) == ("2", "1")
    assert (by_site["lon1"][""], by_site["lon1"]["devices"]) == ("no data", "0")
    assert rows[-1]["site"] == "lon1"  # no data last
    # core1 and this host (the scheduler's self-check, whatever its status under load)
    assert by_site["(no site)"]["devices"] == "2"
    statuses = [r[""] for r in rows[:-1]]
    assert [SITE_RANK[s] for s in statuses] == sorted((SITE_RANK[s] for s in statuses),
                                                      reverse=True)  # worst first
    failing = [r.split("\t") for r in page.locator("#ov-failing tbody tr").all_inner_texts()]
    [broken] = [r for r in failing if r[1] == "broken"]
    assert broken[:3] == ["CRITICAL", "broken", "web1"]
    assert "HTTP 503" in broken[3]
    page.click("#ov-failing tbody a:text('broken')")
    page.wait_for_selector("body[data-ready='collectors'] #job-report", state="attached")
    assert "Last run of broken on web1" in page.locator("#job-report").inner_text()
    page = tab.open("overview")
    page.wait_for_selector("#ov-sites[data-state='done']", state="attached", timeout=15_000)
    page.wait_for_selector("#ov-failing[data-state='done']", state="attached", timeout=15_000)
    tab.shot("overview-sites")
    assert tab.errors == []

