"""The runtime's server side for remote collectors: the config it serves (validated, versioned,
following the inventory file) and where results go (pipeline in ``up``, archive in ``serve``)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest
from starlette.applications import Starlette

from watchkeeper.api.collect import allow_all
from watchkeeper.api.errors import HANDLERS
from watchkeeper.archive.backends.memory import MemoryArchive
from watchkeeper.archive.tokens import Token
from watchkeeper.clock import FakeClock
from watchkeeper.errors import ConfigError
from watchkeeper.model import Event, Measurement
from watchkeeper.runtime.collect import ConfigSource, recall_seq, server_routes
from watchkeeper.settings import Locator, Settings, load_settings
from watchkeeper.telemetry import SelfMetrics
from watchkeeper.wire import CollectBatch, CollectConfig, CollectResult, WirePoint

CONFIG = """\
inventory:
  file: {inventory}
collectors:
  - {{name: count, plugin: tests.unit.collect.plugins:Counting, interval: 5}}
collect: {{refresh: 7}}
"""


class Archive(MemoryArchive):
    """The in-memory archive, remembering every write in order."""

    def __init__(self) -> None:
        super().__init__(data_dir=Path("."), options=None, clock=FakeClock(),
                         metrics=SelfMetrics())
        self.points: list[Measurement] = []

    async def write(self, measurements: Sequence[Measurement]) -> int:
        self.points.extend(measurements)
        return await super().write(measurements)


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
    app = Starlette(routes=server_routes(*settings_for(inventory), archive=archive,
                                         authorize=allow_all), exception_handlers=HANDLERS)
    assert (await post(app, batch())).json() == {"accepted": 1, "duplicate": False}
    assert sorted((str(m.key), m.value) for m in archive.points) == [
        ("r1/count/check.status", 1.0), ("r1/count/polls", 3.0),
        ('watchkeeper/remote-collect/batch.seq{collector="c1/e"}', 1.0)]


async def test_results_go_into_the_pipeline_when_up(inventory: Path) -> None:
    published: list[Event] = []

    async def publish(events: list[Event]) -> None:
        published.extend(events)

    app = Starlette(routes=server_routes(*settings_for(inventory), archive=Archive(),
                                         publish=publish, authorize=allow_all),
                    exception_handlers=HANDLERS)
    await post(app, batch())
    event, marker = published
    assert (event.component, event.resource, event.attrs["status"]) == ("r1", "count", "warning")
    assert [(str(m.key), m.value) for m in marker.measurements] == [
        ('watchkeeper/remote-collect/batch.seq{collector="c1/e"}', 1.0)]  # after the batch


async def test_a_batch_resent_after_a_restart_is_still_a_duplicate(inventory: Path) -> None:
    """The last seq lives in the archive with the results: a new server process (new routes
    over the same archive) still recognises a re-sent batch, and takes the next one."""
    archive = Archive()
    start = 1_700_000_000.0
    first = Starlette(routes=server_routes(*settings_for(inventory), archive=archive,
                                           authorize=allow_all, clock=FakeClock(start)),
                      exception_handlers=HANDLERS)
    assert (await post(first, batch())).json()["accepted"] == 1
    restarted = Starlette(routes=server_routes(*settings_for(inventory), archive=archive,
                                               authorize=allow_all, clock=FakeClock(start)),
                          exception_handlers=HANDLERS)
    assert (await post(restarted, batch())).json() == {"accepted": 0, "duplicate": True}
    later = msgspec.structs.replace(batch(), seq=2)
    assert (await post(restarted, later)).json() == {"accepted": 1, "duplicate": False}
    assert await recall_seq(archive, "c1/e", now=start + 100 * 86_400) == 2  # found far back
    assert await recall_seq(archive, "c1/e", now=start - 86_400) == -1  # none before then
    assert await recall_seq(archive, "nobody/e", now=start) == -1


class WithToken:
    """Stands in for the auth middleware: puts a token (or none) into the request's state."""

    def __init__(self, app: Starlette, token: Token | None) -> None:
        self.app = app
        self.token = token

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        scope.setdefault("state", {})["token"] = self.token
        await self.app(scope, receive, send)


@pytest.mark.parametrize(("token", "status"), [
    (None, 401), (Token(user="reader", write=False, created=0), 403),
    (Token(user="collector", write=True, created=0), 200)])
async def test_the_config_needs_a_token_allowed_to_collect(
        inventory: Path, token: Token | None, status: int) -> None:
    """Device connections may hold secrets: no token, or a read-only one, gets none of it."""
    inventory.write_text("devices:\n  r1:\n    connections: {x: {bearer: s3cret-sentinel}}\n")
    app = Starlette(routes=server_routes(*settings_for(inventory), archive=Archive()),
                    exception_handlers=HANDLERS)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=WithToken(app, token)),
                                 base_url="http://wk") as client:
        answer = await client.get("/api/v1/collect/config")
        posted = await client.post("/api/v1/collect/results",
                                   content=msgspec.json.encode(batch()))
    assert (answer.status_code, posted.status_code) == (status, status)
    assert ("s3cret-sentinel" in answer.text) is (status == 200)
