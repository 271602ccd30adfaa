"""The inventory page's topology graph and node detail, against a real ``watchkeeper up``
whose static inventory file has sites, devices, interfaces, links and a service.

The shared stack (conftest.py) has two bare devices; this module starts its own
(own_stack.py) with a topology (and markup in a site's name and a device attribute),
writes series for its devices, and checks the graph and the node detail against what the
API says.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.console.conftest import IMG, SCRIPT, SHOTS, VENDOR, Console
from tests.console.own_stack import running_up, tab_on
from tests.console.test_pages import Page

pytestmark = pytest.mark.slow

TOPOLOGY = f"""\
sites:
  - {{name: par1, attrs: {{city: Paris}}}}
  - {{name: {SCRIPT!r}}}
devices:
  - name: core1
    address: 127.0.0.1
    site: par1
    interfaces: [ge-0/0/1, ge-0/0/2]
    attrs: {{vendor: juniper, note: {IMG!r}}}
  - {{name: edge1, address: 127.0.0.2, site: par1, upstream: [core1], interfaces: [eth0]}}
  - {{name: web1, address: 127.0.0.3, site: {SCRIPT!r}, interfaces: [eth0]}}
  - {{name: db1, address: 127.0.0.4}}
links:
  - {{a: "core1:ge-0/0/1", b: "edge1:eth0", attrs: {{speed: 10000}}}}
  - {{a: "core1:ge-0/0/2", b: "web1:eth0"}}
services:
  - {{name: dns, device: edge1}}
"""
IF1 = "interface/core1/ge-0%2F0%2F1"
RTT = "core1/ping/rtt"
IF1_SERIES = 'core1/snmp/if.oper_status{if="ge-0/0/1"}'
IF2_SERIES = 'core1/snmp/if.oper_status{if="ge-0/0/2"}'
OTHER = "core1x/ping/rtt"  # a device whose name starts like core1's: not core1's series


@pytest.fixture(scope="module")
def console(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Console]:
    """Overrides conftest's stack for this module: a `watchkeeper up` with a topology."""
    if not (VENDOR / "uPlot.iife.min.js").is_file():
        pytest.fail("uPlot is not in the console's static folder: run `make console`")
    tmp = tmp_path_factory.mktemp("topology")
    (tmp / "inventory.yaml").write_text(TOPOLOGY)
    with running_up(tmp, f"collectors: []\ninventory:\n  file: {tmp / 'inventory.yaml'}\n") as up:
        console = Console(up.url, up.token("console", "--write"), time.time())
        points = [[name, console.now - 30, value] for name, value in (
            (RTT, 1.5), (IF1_SERIES, 1.0), (IF2_SERIES, 2.0), (OTHER, 9.0),
            ("core1/ping/check.status", 2.0), ("edge1/ping/check.status", 0.0))]
        written = httpx.post(f"{console.url}/api/v1/write", headers=console.headers(),
                             json={"points": points}, timeout=30)
        assert written.status_code == 201, written.text
        _wait_for_model(console.url)
        yield console


def _wait_for_model(url: str) -> None:
    deadline = time.monotonic() + 30
    while True:
        models = httpx.get(f"{url}/api/v1/inventory", timeout=5).json()["collectors"]
        if models and models[0]["nodes"] == 12:
            return
        assert time.monotonic() < deadline, models
        time.sleep(0.2)


@pytest.fixture
def tab(console: Console, browser: Any) -> Iterator[Page]:
    with tab_on(browser, console.url) as page:
        yield page


def _graph(console: Console) -> dict[str, Any]:
    answer = httpx.get(f"{console.url}/api/v1/inventory/static", params={"limit": 10000},
                       timeout=5)
    assert answer.status_code == 200, answer.text
    graph: dict[str, Any] = answer.json()
    return graph


def test_the_graph_has_a_node_per_node_and_a_line_per_relation(tab: Page,
                                                                console: Console) -> None:
    graph = _graph(console)
    page = tab.open("inventory?c=static")
    nodes = page.locator("#topology svg g.node")
    drawn = {nodes.nth(i).get_attribute("data-id") for i in range(nodes.count())}
    # 2 sites, 5 devices (localhost too), 4 interfaces, 1 service
    assert nodes.count() == len(graph["nodes"]) == 12
    assert drawn == {n["id"] for n in graph["nodes"]}
    lines = page.locator("#topology svg line.edge")
    relations = {tuple(lines.nth(i).get_attribute(f"data-{end}")
                       for end in ("source", "kind", "target")) for i in range(lines.count())}
    assert lines.count() == len(graph["relations"]) == 13
    assert relations == {(r["source"], r["kind"], r["target"]) for r in graph["relations"]}
    assert ("interface/edge1/eth0", "links_to", IF1) in relations
    # health: core1's latest check is CRITICAL, edge1's OK; db1 has none
    health = {i: page.locator(f"#topology g.node[data-id='{i}']").get_attribute("data-health")
              for i in ("device/core1", "device/edge1", "device/db1")}
    assert health == {"device/core1": "critical", "device/edge1": "ok", "device/db1": ""}
    assert page.locator("#topology-cut").count() == 0  # the whole model is drawn
    assert tab.errors == []
    tab.shot("inventory-topology")


def test_a_big_model_draws_its_first_nodes_and_says_so(tab: Page) -> None:
    page = tab.open("inventory?c=static&max=5")
    kinds = page.locator("#topology g.node")
    assert kinds.count() == 5
    # sites first, then devices, by id
    assert [kinds.nth(i).get_attribute("data-id") for i in range(5)] == [
        "site/%3Cscript%3Ewindow.__xss%3D2%3C%2Fscript%3E", "site/par1", "device/core1",
        "device/db1", "device/edge1"]
    assert page.locator("#topology-cut").inner_text().startswith("showing 5 of 12 nodes")
    # only relations between drawn nodes: in_site of core1 and edge1, depends_on
    assert page.locator("#topology line.edge").count() == 3


def test_clicking_a_node_shows_its_relations_and_its_series(tab: Page) -> None:
    page = tab.open("inventory?c=static")
    page.click("#topology g.node[data-id='device/core1']")
    page.wait_for_url("**n=device%2Fcore1*", timeout=10_000)
    page.wait_for_selector("body[data-ready='inventory'] #node-detail", state="attached")
    detail = page.locator("#node-detail")
    assert detail.get_attribute("data-node") == "device/core1"
    assert "vendor\tjuniper" in detail.inner_text()
    out = page.locator("#node-out tbody tr").all_inner_texts()
    assert out == ["has_interface\tge-0/0/1 interface\t", "has_interface\tge-0/0/2 interface\t",
                   "in_site\tpar1 site\t"]
    assert page.locator("#node-in tbody tr").all_inner_texts() == ["edge1 device\tdepends_on\t"]
    series = [a.get_attribute("data-series")
              for a in page.locator("#node-series a[data-series]").all()]
    assert sorted(series) == sorted([RTT, IF1_SERIES, IF2_SERIES, "core1/ping/check.status"])
    assert OTHER not in series
    # the selected node is marked in the graph
    assert "selected" in (page.locator("#topology g.node[data-id='device/core1']")
                          .get_attribute("class") or "")
    tab.shot("inventory-node")
    SHOTS.mkdir(parents=True, exist_ok=True)  # the pictures docs/console.md shows
    page.locator("#topology").screenshot(path=str(SHOTS / "inventory-topology-card.png"))
    page.locator("#node-detail").screenshot(path=str(SHOTS / "inventory-node-card.png"))
    # a relation leads to the neighbour
    page.click("#node-in a[data-node='device/edge1']")
    page.wait_for_selector("#node-detail[data-node='device/edge1']", state="attached",
                           timeout=10_000)
    assert page.locator("#node-out tbody tr").all_inner_texts() == [
        "depends_on\tcore1 device\t", "has_interface\teth0 interface\t", "in_site\tpar1 site\t"]
    assert "dns service" in page.locator("#node-in").inner_text()
    # a series leads to Explore
    page.goto(f"{tab.url}/#/inventory?c=static&n=device%2Fcore1")
    page.wait_for_selector("#node-detail[data-node='device/core1']", state="attached",
                           timeout=10_000)
    page.click(f"#node-series a[data-series='{RTT}']")
    page.wait_for_selector("body[data-ready='explore'] #chart canvas", state="attached",
                           timeout=15_000)
    assert page.locator("#series-chips").inner_text().startswith(RTT)
    assert tab.errors == []


def test_an_interface_lists_its_links_and_only_its_own_series(tab: Page) -> None:
    page = tab.open(f"inventory?c=static&n={IF1.replace('%', '%25').replace('/', '%2F')}")
    detail = page.locator("#node-detail")
    assert detail.get_attribute("data-node") == IF1
    assert page.locator("#node-out tbody tr").all_inner_texts() == [
        'links_to\teth0 interface\t{"speed":10000}']
    into = page.locator("#node-in tbody tr").all_inner_texts()
    assert into == ["core1 device\thas_interface\t", 'eth0 interface\tlinks_to\t{"speed":10000}']
    series = [a.get_attribute("data-series")
              for a in page.locator("#node-series a[data-series]").all()]
    assert series == [IF1_SERIES]


def test_an_unknown_node_says_so(tab: Page) -> None:
    page = tab.open("inventory?c=static&n=device%2Fnosuch")
    assert "no node 'device/nosuch' in model 'static'" in page.locator(
        "#node-detail .error").inner_text()
    assert page.locator("#topology g.node").count() == 12


def test_markup_in_names_and_attributes_stays_text(tab: Page) -> None:
    site = "site/%3Cscript%3Ewindow.__xss%3D2%3C%2Fscript%3E"
    page = tab.open("inventory?c=static&n=device%2Fcore1")
    assert IMG in page.locator("#node-detail").inner_text()  # core1's `note` attribute
    label = page.locator(f"#topology g.node[data-id='{site}'] text").text_content() or ""
    assert label.startswith("<script>window.__x")  # shortened in the graph, as text
    page.click(f"#topology g.node[data-id='{site}']")
    page.wait_for_selector(f"#node-detail[data-node='{site}']", state="attached",
                           timeout=10_000)
    assert f"site {SCRIPT}" in page.locator("#node-detail h3").first.inner_text()
    assert page.locator("main img, main script, svg script").count() == 0
    assert page.evaluate("() => window.__xss") is None
    assert tab.errors == []
