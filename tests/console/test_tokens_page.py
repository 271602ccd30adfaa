"""The Tokens page in Debian's chromium against a ``watchkeeper up`` of its own (tokens are
made and revoked here; conftest's stack is left alone): a key created from the page works
over the API, is shown once and never listed; revoked from the page, it gets 401."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.console.own_stack import Own, running_up, tab_on, use_token
from tests.console.test_pages import Page

pytestmark = pytest.mark.slow

MARKUP_USER = "<img/src=x/onerror=window.__xss=3>"  # a user name may hold no space


def refused(status: int, reason: str) -> str:
    """What chromium logs for an answer of ``status`` (an expected one, in these tests)."""
    return f"Failed to load resource: the server responded with a status of {status} ({reason})"


@pytest.fixture(scope="module")
def own(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Own]:
    with running_up(tmp_path_factory.mktemp("tokens"), "collectors: []\n") as started:
        yield started


@pytest.fixture(scope="module")
def admin(own: Own) -> str:
    return own.token("root", "--admin")


@pytest.fixture
def tab(own: Own, browser: Any) -> Iterator[Page]:
    with tab_on(browser, own.url) as page:
        yield page


def write(own: Own, key: str) -> int:
    """A one-point write with ``key``: 201 for a good write key, 401 for a revoked one."""
    return httpx.post(f"{own.url}/api/v1/write", headers={"Authorization": f"Token {key}"},
                      json={"points": [["t/page/v", 1_700_000_000, 1.0]]}, timeout=10).status_code


def listed(own: Own, admin: str) -> httpx.Response:
    answer = httpx.get(f"{own.url}/api/v1/tokens", headers={"Authorization": f"Token {admin}"},
                       timeout=10)
    assert answer.status_code == 200, answer.text
    return answer


def test_create_use_and_revoke_from_the_page(tab: Page, own: Own, admin: str) -> None:
    page = tab.open("tokens")
    page.wait_for_selector("#tok-list .error:has-text('enter an admin token')")
    use_token(page, admin, "tokens")
    page.wait_for_selector("#tok-list tr[data-id]")
    page.fill("#tok-user", "pagebot")
    page.select_option("#tok-scope", "write")
    page.click("#tok-create")
    key = page.locator("#tok-key").input_value(timeout=10_000)
    assert len(key) == 40
    assert "will not be shown again" in page.locator("#tok-new").inner_text()
    [made] = [t for t in listed(own, admin).json()["tokens"] if t["user"] == "pagebot"]
    assert made["scopes"] == ["read", "write"]
    row = page.locator(f"#tok-list tr[data-id='{made['id']}']")
    row.wait_for()
    assert "pagebot" in row.inner_text()
    assert key not in page.locator("#tok-list").inner_text()
    tab.shot("tokens-created")

    assert write(own, key) == 201  # the key works over the API at once
    assert key not in listed(own, admin).text  # the list never carries a key

    page.click("#tok-done")  # the key leaves the page for good
    assert page.locator("#tok-key").count() == 0
    assert key not in page.content()

    row.locator(".tok-ask").click()
    assert "revoke pagebot's token" in row.inner_text()
    row.locator(".tok-no").click()  # changed my mind: nothing revoked
    assert write(own, key) == 201
    row.locator(".tok-ask").click()
    tab.shot("tokens-revoke")
    row.locator(".tok-yes").click()
    row.wait_for(state="detached")
    assert page.locator("#tok-outcome").inner_text() == f"revoked pagebot's token {made['id']}"
    assert write(own, key) == 401  # refused from the next request on
    assert "pagebot" not in {t["user"] for t in listed(own, admin).json()["tokens"]}
    assert tab.errors == []


def test_a_write_token_is_not_enough(tab: Page, own: Own) -> None:
    """The page says so and shows no list; creating is refused by the API (403)."""
    writer = own.token("collector", "--write")
    page = tab.open("tokens")
    use_token(page, writer, "tokens")
    page.wait_for_selector("#tok-list .error:has-text('not an admin token')")
    page.fill("#tok-user", "sneaky")
    page.click("#tok-create")
    page.wait_for_selector("#tok-outcome:has-text('create: this token is not an admin token')")
    assert page.locator("#tok-key").count() == 0
    assert tab.errors == [refused(403, "Forbidden")] * 2  # the list, then the create


def test_user_names_show_as_text(tab: Page, own: Own, admin: str) -> None:
    made = httpx.post(f"{own.url}/api/v1/tokens", headers={"Authorization": f"Token {admin}"},
                      json={"user": MARKUP_USER}, timeout=10)
    assert made.status_code == 201, made.text
    page = tab.open("tokens")
    use_token(page, admin, "tokens")
    row = page.locator(f"#tok-list tr[data-id='{made.json()['id']}']")
    assert MARKUP_USER in row.inner_text()
    assert page.locator("main img, main script").count() == 0
    assert page.evaluate("() => window.__xss") is None
    assert made.json()["key"] not in page.content()
    assert tab.errors == []
