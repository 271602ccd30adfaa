"""The console's routes in-process: headers, and nothing outside its static folder."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from starlette.applications import Starlette

from watchkeeper.api.console import CSP, Assets, console_routes, static_dir


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    app = Starlette(routes=console_routes())
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://console") as client:
        yield client


async def test_the_page_and_its_modules_carry_the_csp(client: httpx.AsyncClient) -> None:
    for path, kind in (("/", "text/html"), ("/console/app.js", "text/javascript"),
                       ("/console/console.css", "text/css")):
        answer = await client.get(path)
        assert answer.status_code == 200, path
        assert answer.headers["content-type"].startswith(kind)
        assert answer.headers["content-security-policy"] == CSP
        assert answer.headers["x-content-type-options"] == "nosniff"
    assert "script-src 'self';" in CSP
    assert "unsafe" not in CSP


@pytest.mark.parametrize("path", ["/console/", "/console/nothing.js", "/console/vendor/.stamp",
                                  "/console/%2e%2e/__init__.py"])
async def test_nothing_else_is_served(client: httpx.AsyncClient, path: str) -> None:
    answer = await client.get(path)
    assert answer.status_code == 404
    assert answer.json()["detail"].startswith("no console file")


@pytest.mark.parametrize("path", [
    "/console/../__init__.py",  # traversals the handler must refuse # paths: ok
    "/console/pages/../../__init__.py",  # paths: ok
    "/console//etc/passwd", "/console/.hidden.js"])
def test_paths_leaving_the_folder_are_404(path: str) -> None:
    # Straight to the handler: an HTTP client would normalise the dots away.
    assert (static_dir().parent / "__init__.py").is_file()
    assert Assets(static_dir()).respond(path, "/console", "GET").status_code == 404


async def test_writes_are_refused(client: httpx.AsyncClient) -> None:
    answer = await client.post("/console/app.js")
    assert answer.status_code == 405
    assert answer.headers["allow"] == "GET, HEAD"


async def test_every_page_module_is_served(client: httpx.AsyncClient) -> None:
    pages = sorted(p.name for p in (static_dir() / "pages").glob("*.js"))
    assert pages == ["alarms.js", "collectors.js", "explore.js", "inventory.js", "overview.js",
                     "perfsonar.js", "tokens.js"]
    for name in pages:
        assert (await client.get(f"/console/pages/{name}")).status_code == 200
