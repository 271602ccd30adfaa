"""Inventory notifications through a real ``watchkeeper serve`` process: the route needs a
write token made by ``watchkeeper token create``, and what it applied shows in the model,
in its stats and on ``/metrics``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.serve import serving, write_token
from watchkeeper.client import InventoryClient
from watchkeeper.errors import HTTPStatusError

pytestmark = pytest.mark.slow

RACK = {"publisher_id": "operator.test", "event_type": "node.updated",
        "payload": {"id": "device/localhost", "attrs": {"rack": "B2"}}}


def _ready(url: str) -> bool:
    try:
        answer = httpx.get(f"{url}/api/v1/inventory", timeout=1)
    except httpx.TransportError:
        return False
    return answer.status_code == 200 and all(
        c["synced_at"] is not None for c in answer.json()["collectors"])


@pytest.fixture
def server(tmp_path: Path) -> Iterator[str]:
    with serving("--data-dir", str(tmp_path), ready=_ready) as url:
        yield url


def test_notifications_over_http_to_a_real_server(server: str, tmp_path: Path) -> None:
    """Refused without a token; applied with one; counted in the REST stats and on
    /metrics (the server wires the inventory's metrics in)."""
    with InventoryClient(server) as anonymous, pytest.raises(HTTPStatusError) as refused:
        anonymous.notify([RACK])
    assert refused.value.status == 401
    with InventoryClient(server, token=write_token(tmp_path, "cmdb")) as client:
        done = client.notify([RACK, {**RACK, "publisher_id": "stranger"}])
        assert (done.notifications, done.matched, done.applied) == (2, 1, 1)
        graph = client.graph("static", kinds=["device"])
        [static] = [c for c in client.collectors().collectors if c.name == "static"]
    [localhost] = [n for n in graph.nodes if n.name == "localhost"]
    assert localhost.attrs["rack"] == "B2"
    assert static.stats is not None
    assert (static.stats.notifications, static.stats.handler_errors) == (1, 0)
    metrics = httpx.get(f"{server}/metrics", timeout=10).text.splitlines()
    assert 'watchkeeper_inventory_notifications_total{collector="static"} 1.0' in metrics
    assert 'watchkeeper_inventory_stale{collector="static",reason=""} 0.0' in metrics
