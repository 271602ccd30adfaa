"""The Alarms page's impact tree and changestate, in Debian's chromium against a
``watchkeeper up`` of its own: its inventory file declares who depends on whom
(``upstream``), and the alarms come as Canopsis events through the API, cause first, so
the engine marks the consequences ``caused_by`` their cause."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.console.conftest import IMG, SCRIPT
from tests.console.own_stack import Own, running_up, tab_on, use_token
from tests.console.test_pages import Page

pytestmark = pytest.mark.slow

# leaf1 depends on edge1 and edge2 on core1; other1 on nothing.
INVENTORY = """\
devices:
  - {name: core1, address: 127.0.0.1}
  - {name: edge1, address: 127.0.0.2, upstream: [core1]}
  - {name: edge2, address: 127.0.0.3, upstream: [core1]}
  - {name: leaf1, address: 127.0.0.4, upstream: [edge1]}
  - {name: other1, address: 127.0.0.5}
"""
CORE = "component/core1"
EDGE1 = "resource/edge1/http"
EDGE2 = "resource/edge2/ping"
LEAF = "resource/leaf1/disk"
OTHER = "resource/other1/x"


class Seeded:
    def __init__(self, own: Own, writer: str) -> None:
        self.own = own
        self.writer = writer

    def alarm(self, key: str) -> dict[str, Any]:
        answer = httpx.get(f"{self.own.url}/api/v1/alarms/{key}", timeout=10)
        return answer.json() if answer.status_code == 200 else {}

    def post(self, *events: dict[str, object]) -> None:
        sent = httpx.post(f"{self.own.url}/api/v1/events/canopsis", json=list(events),
                          headers={"Authorization": f"Token {self.writer}"}, timeout=10)
        assert sent.status_code == 202, sent.text

    def wait(self, key: str, what: str, check: Any) -> dict[str, Any]:
        deadline = time.monotonic() + 30
        while not check(found := self.alarm(key)):
            assert time.monotonic() < deadline, f"{key}: {what} never happened: {found}"
            time.sleep(0.2)
        return found


def event(component: str, resource: str, state: int, output: str) -> dict[str, object]:
    return {"connector": "nagios", "connector_name": "n1", "event_type": "check",
            "source_type": "resource" if resource else "component", "component": component,
            "resource": resource, "state": state, "output": output,
            "timestamp": int(time.time())}


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Seeded]:
    tmp = tmp_path_factory.mktemp("alarms")
    (tmp / "inventory.yaml").write_text(INVENTORY)
    config = (f"collectors: []\ninventory:\n  file: {tmp / 'inventory.yaml'}\n"
              "  collectors: {static: {period: 1}}\n")
    with running_up(tmp, config) as own:
        seeded = Seeded(own, own.token("seeder", "--write"))
        deadline = time.monotonic() + 30  # the engine reads upstream from the built model
        while "leaf1" not in httpx.get(f"{own.url}/api/v1/inventory/static", timeout=10).text:
            assert time.monotonic() < deadline, "the inventory file was never built"
            time.sleep(0.2)
        seeded.post(event("core1", "", 3, "core1 unreachable"))
        seeded.wait(CORE, "open", bool)
        seeded.post(event("edge1", "http", 2, f"http down {IMG} {SCRIPT}"),
                    event("edge2", "ping", 1, "ping slow"), event("other1", "x", 1, "unrelated"))
        for key in (EDGE1, EDGE2):
            seeded.wait(key, "caused by core1", lambda a: a.get("caused_by") == CORE)
        seeded.post(event("leaf1", "disk", 1, "disk slow"))
        seeded.wait(LEAF, "caused by edge1", lambda a: a.get("caused_by") == EDGE1)
        assert seeded.alarm(OTHER).get("caused_by") is None
        yield seeded


@pytest.fixture
def tab(seeded: Seeded, browser: Any) -> Iterator[Page]:
    with tab_on(browser, seeded.own.url) as page:
        yield page


def tree(page: Any) -> list[tuple[str, int, str | None]]:
    """The list's rows in order: (entity, depth, cause)."""
    rows = page.locator("#alarm-scroll tbody tr")
    return [(r.get_attribute("data-key"), int(r.get_attribute("data-depth")),
             r.get_attribute("data-cause")) for r in rows.all()]


def test_the_tree_shows_each_consequence_under_its_cause(tab: Page) -> None:
    page = tab.open("alarms")
    page.wait_for_selector(f"#alarm-scroll tr[data-key='{LEAF}']")
    rows = tree(page)
    assert {(key, depth) for key, depth, _ in rows} == {
        (CORE, 0), (EDGE1, 1), (EDGE2, 1), (LEAF, 2), (OTHER, 0)}
    for i, (key, depth, cause) in enumerate(rows):  # a preorder walk: each row sits in
        if depth:                                    # its cause's subtree
            assert depth <= rows[i - 1][1] + 1, rows
            parent = next(k for k, d, _ in reversed(rows[:i]) if d == depth - 1)
            assert parent == cause, (key, rows)
    core = page.locator(f"#alarm-scroll tr[data-key='{CORE}']")
    assert core.locator(".tree-toggle").inner_text() == "▾ 2"
    tab.shot("alarms-impact-tree")

    core.locator(".tree-toggle").click()  # collapse core1: its whole subtree goes
    page.wait_for_selector(f"#alarm-scroll tr[data-key='{EDGE1}']", state="detached")
    assert [key for key, _, _ in tree(page)].count(LEAF) == 0
    assert {key for key, _, _ in tree(page)} == {CORE, OTHER}
    assert core.locator(".tree-toggle").inner_text() == "▸ 2"
    assert page.evaluate("() => location.hash") == "#/alarms"  # the toggle selects nothing
    core.locator(".tree-toggle").click()
    page.wait_for_selector(f"#alarm-scroll tr[data-key='{LEAF}']")
    assert len(tree(page)) == 5
    assert tab.errors == []


def test_the_detail_links_cause_and_consequences(tab: Page) -> None:
    page = tab.open(f"alarms?key={EDGE1}")
    page.wait_for_selector("#alarm-cause")
    assert page.locator("#alarm-cause").inner_text() == f"caused by {CORE}"
    assert page.locator("#alarm-consequences").inner_text() == f"consequences: {LEAF}"
    page.locator("#alarm-cause a").click()
    page.wait_for_selector(f"#alarm-detail h3:text-is('{CORE}')")
    consequences = page.locator("#alarm-consequences a").all_inner_texts()
    assert sorted(consequences) == sorted([EDGE1, EDGE2])
    assert page.locator("#alarm-cause").count() == 0  # the root cause has none
    assert tab.errors == []


def test_markup_in_a_consequence_stays_text(tab: Page) -> None:
    page = tab.open(f"alarms?key={EDGE1}")
    page.wait_for_selector("#alarm-detail td.pre")
    shown = page.locator("main").inner_text()
    assert IMG in shown
    assert SCRIPT in shown
    assert page.locator("main img, main script").count() == 0
    assert page.evaluate("() => window.__xss") is None
    assert tab.errors == []


def test_changestate_from_the_page_changes_the_alarm(tab: Page, seeded: Seeded) -> None:
    """Picked 3 (critical) on the page for a minor alarm: the API shows state 3 and a
    changestate step by the console, and so does the list."""
    assert seeded.alarm(OTHER)["state"] == 1
    page = tab.open(f"alarms?key={OTHER}")
    page.click("#act-changestate")  # without a token: refused by the page, nothing sent
    assert page.locator("#act-outcome").inner_text() == "enter a write token first (top right)"
    use_token(page, seeded.own.token("operator", "--write"), "alarms")
    page.select_option("#act-state", "3")
    page.fill("#act-message", "escalated")
    page.click("#act-changestate")
    page.wait_for_selector("#act-outcome:has-text('changestate: done')")
    alarm = seeded.wait(OTHER, "state 3", lambda a: a.get("state") == 3)
    [step] = [s for s in alarm["steps"] if s["type"] == "changestate"]
    assert (step["author"], step["message"], step["val"]) == ("console", "escalated", 3)
    page.wait_for_selector(f"#alarm-scroll tr[data-key='{OTHER}'] .badge:text-is('critical')")
    assert tab.errors == []
