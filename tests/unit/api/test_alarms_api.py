"""Alarms over REST: Canopsis events in, alarms listed, read with their steps, acknowledged."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path

import httpx
import pytest

from watchkeeper.api import create_app
from watchkeeper.api.alarms import alarm_routes, event_routes
from watchkeeper.archive.backends.memory import MemoryArchive
from watchkeeper.archive.tokens import SqliteTokenStore
from watchkeeper.client import AsyncClient, HTTPStatusError
from watchkeeper.clock import FakeClock
from watchkeeper.pipeline import Services
from watchkeeper.pipeline.bus.local import LocalBus
from watchkeeper.pipeline.engines.alarms import Alarms
from watchkeeper.runtime.assemble import build_engines, build_pipeline
from watchkeeper.settings import load_settings
from watchkeeper.telemetry import SelfMetrics

CONFIG = """\
engines:
  - name: archive
    engine: archive_writer
  - name: alarms
    engine: alarms
"""


@pytest.fixture
async def http(tmp_path: Path) -> AsyncIterator[tuple[httpx.AsyncClient, LocalBus]]:
    clock = FakeClock(start=1_700_000_000)
    metrics = SelfMetrics()
    settings, locator = load_settings(CONFIG + f"data_dir: {tmp_path}\n", source="wk.yaml")
    async with AsyncExitStack() as stack:
        archive = MemoryArchive(data_dir=tmp_path, options=MemoryArchive.Options(), clock=clock,
                                metrics=metrics)
        await archive.start(stack)
        bus = LocalBus()
        await bus.start(stack)
        services = Services(clock=clock, metrics=metrics, sink=archive)
        engines = build_engines(settings, locator, services)
        pipeline = build_pipeline(engines, bus, locator)
        await pipeline.start(stack)
        alarms = Alarms(pipeline.engines["alarms"], pipeline.send)
        routes = [*alarm_routes(alarms), *event_routes(pipeline.publish, now=clock.time)]
        app = create_app(archive, metrics=metrics, extra_routes=routes)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                     base_url="http://wk") as client:
            yield client, bus


def canopsis(state: int, ts: int, *, component: str = "web1") -> dict[str, object]:
    return {"connector": "nagios", "connector_name": "nagios1", "event_type": "check",
            "source_type": "resource", "component": component, "resource": "http",
            "state": state, "output": f"HTTP state {state}", "timestamp": ts}


async def test_canopsis_events_open_an_alarm_that_can_be_acked(
        http: tuple[httpx.AsyncClient, LocalBus]) -> None:
    client, bus = http
    body = [canopsis(0, 1_700_000_000, component="db1"), canopsis(2, 1_700_000_010)]
    imported = await client.post("/api/v1/events/canopsis", content=json.dumps(body))
    assert imported.status_code == 202
    assert imported.json()["accepted"] == 2
    await bus.drain("alarms")

    listed = (await client.get("/api/v1/alarms")).json()
    assert [a["entity_id"] for a in listed] == ["resource/web1/http"]
    assert listed[0]["state_name"] == "major"

    acked = await client.post("/api/v1/alarms/resource/web1/http/ack",
                              content=json.dumps({"author": "alice", "message": "on it"}))
    assert acked.status_code == 202
    await bus.drain("alarms")
    one = (await client.get("/api/v1/alarms/resource/web1/http")).json()
    assert one["ack"]["author"] == "alice"
    assert [s["type"] for s in one["steps"]][:1] == ["stateinc"]


@pytest.mark.parametrize(
    ("method", "url", "body", "status", "fragment"),
    [
        ("POST", "/api/v1/events/canopsis", "{not json", 400, "not JSON"),
        ("POST", "/api/v1/events/canopsis", '[{"event_type": "check"}]', 400, "[0]."),
        ("GET", "/api/v1/alarms/resource/none/x", None, 404, "no alarm"),
        ("POST", "/api/v1/alarms/resource/none/x/ack", None, 404, "no open alarm"),
        ("POST", "/api/v1/alarms/resource/web1/http/explode", None, 400, "action: must be"),
        ("GET", "/api/v1/alarms?limit=lots", None, 400, "limit"),
    ],
)
async def test_bad_requests(http: tuple[httpx.AsyncClient, LocalBus], method: str, url: str,
                            body: str | None, status: int, fragment: str) -> None:
    client, _ = http
    response = await client.request(method, url, content=body)
    assert response.status_code == status
    assert fragment in response.json()["detail"]


async def test_the_python_client_reads_and_acts(http: tuple[httpx.AsyncClient, LocalBus]) -> None:
    raw, bus = http
    await raw.post("/api/v1/events/canopsis", content=json.dumps([canopsis(3, 1_700_000_000)]))
    await bus.drain("alarms")
    client = AsyncClient("http://wk", transport=raw._transport)  # type: ignore[arg-type]
    [alarm] = await client.alarms()
    assert (alarm.entity_id, alarm.state_name) == ("resource/web1/http", "critical")
    sent = await client.act(alarm.entity_id, "snooze", author="bob", duration=600)
    assert sent.accepted == 1
    await bus.drain("alarms")
    assert (await client.alarm(alarm.id)).snoozed
    with pytest.raises(HTTPStatusError, match="no alarm"):
        await client.alarm("resource/nope/x")


@pytest.mark.parametrize(
    "url", ["/api/v1/alarms/resource/web1/http/ack", "/api/v1/events/canopsis",
            "/api/v1/collect/results", "/api/v1/write"])
async def test_writes_need_a_write_token(tmp_path: Path, url: str) -> None:
    metrics = SelfMetrics()
    async with AsyncExitStack() as stack:
        archive = MemoryArchive(data_dir=tmp_path, options=MemoryArchive.Options(),
                                clock=FakeClock(), metrics=metrics)
        tokens = SqliteTokenStore(tmp_path)
        await tokens.start(stack)
        reader = await tokens.create("reader", write=False, now=0)
        app = create_app(archive, metrics=metrics, tokens=tokens)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                     base_url="http://wk") as client:
            anonymous = await client.post(url, content="{}")
            assert anonymous.status_code == 401
            assert anonymous.json()["detail"] == "Authentication credentials were not provided."
            read_only = await client.post(url, content="{}",
                                          headers={"Authorization": f"Token {reader}"})
            assert read_only.status_code == 403


@pytest.mark.parametrize("body", [{"state": 99}, {"state": -1}, {"state": 4}, {}])
async def test_changestate_takes_only_settable_states(
        http: tuple[httpx.AsyncClient, LocalBus], body: dict[str, int]) -> None:
    """changestate refuses any state but 0-3 (no data is the engine's), naming them."""
    client, bus = http
    await client.post("/api/v1/events/canopsis", content=json.dumps([canopsis(2, 1_700_000_000)]))
    await bus.drain("alarms")
    refused = await client.post("/api/v1/alarms/resource/web1/http/changestate", json=body)
    assert refused.status_code == 400
    assert refused.json()["detail"].startswith("state: changestate needs a state, one of 0 (ok)")
    accepted = await client.post("/api/v1/alarms/resource/web1/http/changestate",
                                 json={"state": 3})
    assert accepted.status_code == 202
    await bus.drain("alarms")
    assert (await client.get("/api/v1/alarms/resource/web1/http")).json()["state_name"] == (
        "critical")


async def test_deep_canopsis_body_is_refused(http: tuple[httpx.AsyncClient, LocalBus]) -> None:
    """The importer and the actions bound nesting as every JSON route does."""
    client, _ = http
    for url in ("/api/v1/events/canopsis", "/api/v1/alarms/resource/web1/http/ack"):
        response = await client.post(url, content=b"[" * 5000 + b"]" * 5000)
        assert response.status_code == 400
        assert "deeper than 64 levels" in response.json()["detail"]


async def test_url_passwords_in_outputs_are_hidden(
        http: tuple[httpx.AsyncClient, LocalBus]) -> None:
    """A check output quoting a URL with a password shows in alarm steps without it."""
    client, bus = http
    event = canopsis(2, 1_700_000_000)
    event["output"] = "GET http://bob:pa55w0rd@web1/health: HTTP 500"
    await client.post("/api/v1/events/canopsis", content=json.dumps([event]))
    await bus.drain("alarms")
    one = await client.get("/api/v1/alarms/resource/web1/http")
    assert "pa55w0rd" not in one.text
    assert "http://bob:<redacted>@web1/health" in one.text
    assert "pa55w0rd" not in (await client.get("/api/v1/alarms")).text
