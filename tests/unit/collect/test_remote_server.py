"""The runtime's server side for remote collectors: the config it serves (validated, versioned,
following the inventory file) and where results go (pipeline in ``up``, archive in ``serve``)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import httpx
import msgspec
import pytest
from starlette.applications import Starlette

from watchkeeper.api.errors import HANDLERS
from watchkeeper.errors import ConfigError
from watchkeeper.model import Event, Measurement
from watchkeeper.runtime.collect import ConfigSource, server_routes
from watchkeeper.settings import Locator, Settings, load_settings
from watchkeeper.wire import CollectBatch, CollectConfig, CollectResult, WirePoint

CONFIG = """\
inventory:
  file: {inventory}
collectors:
  - {{name: count, plugin: tests.unit.collect.plugins:Counting, interval: 5}}
collect: {{refresh: 7}}
"""


class Archive:
    def __init__(self) -> None:
        self.points: list[Measurement] = []

    async def write(self, measurements: Sequence[Measurement]) -> int:
        self.points.extend(measurements)
        return len(measurements)


@pytest.fixture
def inventory(tmp_path: Path) -> Path:
    path = tmp_path / "inventory.yaml"
    path.write_text("devices:\n  r1: {address: 127.0.0.1}\n")
    return path


def settings_for(inventory: Path) -> tuple[Settings, Locator]:
    return load_settings(CONFIG.format(inventory=inventory), source="wk.yaml")


def test_the_config_follows_the_inventory_file(inventory: Path) -> None:
    source = ConfigSource(*settings_for(inventory))
    first = source()
    assert ([d.name for d in first.devices], first.refresh) == (["r1"], 7.0)
    assert source() is first  # unchanged file: not rebuilt
    inventory.write_text("devices:\n  r1: {address: 127.0.0.1}\n  r2: {address: 127.0.0.2}\n")
    os.utime(inventory, ns=(1, 2))  # a different stamp even within the same mtime tick
    second = source()
    assert [d.name for d in second.devices] == ["r1", "r2"]
    assert second.version != first.version
    inventory.write_text("devices:\n  r3:\n    connections: {ssh: {password: plain}}\n")
    assert source() is second  # an invalid change keeps the last good configuration


def test_a_bad_config_refuses_to_start(inventory: Path) -> None:
    settings, locator = load_settings(
        f"inventory: {{file: {inventory}}}\ncollectors:\n  - {{name: x, plugin: nosuch}}\n",
        source="wk.yaml")
    with pytest.raises(ConfigError, match="no such plugin"):
        server_routes(settings, locator, archive=Archive())


def batch() -> CollectBatch:
    result = CollectResult(plugin="count", job="count:r1", device="r1", scheduled=100.0,
                           started=100.0, finished=100.1, status="warning",
                           points=[WirePoint("r1/count/polls", 100.0, 3.0)])
    return CollectBatch(collector="c1/e", seq=1, results=[result])


async def post(app: Starlette, body: CollectBatch) -> httpx.Response:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://wk") as client:
        config = await client.get("/api/v1/collect/config")
        assert msgspec.json.decode(config.content, type=CollectConfig).collectors[0].name == \
            "count"
        return await client.post("/api/v1/collect/results", content=msgspec.json.encode(body))


async def test_results_go_into_the_archive_when_serving(inventory: Path) -> None:
    archive = Archive()
    app = Starlette(routes=server_routes(*settings_for(inventory), archive=archive),
                    exception_handlers=HANDLERS)
    assert (await post(app, batch())).json() == {"accepted": 1, "duplicate": False}
    assert sorted((str(m.key), m.value) for m in archive.points) == [
        ("r1/count/check.status", 1.0), ("r1/count/polls", 3.0)]


async def test_results_go_into_the_pipeline_when_up(inventory: Path) -> None:
    published: list[Event] = []

    async def publish(events: list[Event]) -> None:
        published.extend(events)

    app = Starlette(routes=server_routes(*settings_for(inventory), archive=Archive(),
                                         publish=publish), exception_handlers=HANDLERS)
    await post(app, batch())
    (event,) = published
    assert (event.component, event.resource, event.attrs["status"]) == ("r1", "count", "warning")
