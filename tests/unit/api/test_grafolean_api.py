"""/grafolean/api: the mapping from the collect configuration to Grafolean's accounts,
entities, credentials and sensors, bot-token auth, and the three forms of posted values."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from watchkeeper.api.grafolean import GrafoleanApi, stable_id
from watchkeeper.archive.backends.memory import MemoryArchive
from watchkeeper.archive.tokens import SqliteTokenStore
from watchkeeper.model import SeriesKey
from watchkeeper.wire import CollectCollector, CollectConfig, CollectDevice

NOW = 1_700_000_000.0
CONFIG = CollectConfig(version="v1", devices=[
    CollectDevice(name="r1", address="192.0.2.1", tags=["core"],
                  connections={"ping": {"n_packets": "5"}, "snmp": {"community": "env:WK_C"},
                               "intervals": {"icmp": 30}}),
    CollectDevice(name="r2", address="192.0.2.2")],
    collectors=[
        CollectCollector(name="icmp", plugin="grafolean", interval=60, devices=["*"],
                         options={"protocol": "ping", "credential": {"n_packets": "3",
                                                                     "timeout": "1.0"}}),
        CollectCollector(name="traffic", plugin="grafolean", interval=300, devices=["tag:core"],
                         options={"protocol": "snmp", "details": {"oids": [
                             {"oid": "1.3.6.1.2.1.2.2.1.10", "fetch_method": "walk"}]}}),
        CollectCollector(name="cpu", plugin="system", devices=["*"])])
R1, R2 = stable_id("entity", "r1"), stable_id("entity", "r2")


@pytest.fixture
async def client(tmp_path: Path,
                 archive: MemoryArchive) -> AsyncIterator[tuple[httpx.AsyncClient, str, str]]:
    async with AsyncExitStack() as stack:
        tokens = SqliteTokenStore(tmp_path)
        await tokens.start(stack)
        writer = await tokens.create("pingbot", write=True, now=0)
        reader = await tokens.create("viewer", write=False, now=0)
        api = GrafoleanApi(config=lambda: CONFIG, tokens=tokens, write=archive.write,
                           now=lambda: NOW)
        transport = httpx.ASGITransport(app=Starlette(routes=api.routes()))
        async with httpx.AsyncClient(transport=transport,
                                     base_url="http://t/grafolean/api") as http:
            yield http, writer, reader


async def get(http: httpx.AsyncClient, path: str, key: str) -> Any:
    answer = await http.get(path, params={"b": key})
    assert answer.status_code == 200, answer.text
    return answer.json()


async def test_the_bot_library_calls_map_the_configuration(
        client: tuple[httpx.AsyncClient, str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    """What fetch_job_configs reads, route by route, with and without a trailing slash:
    only grafolean entries are sensors, the device's connections overlay the sensor's
    credential (references resolved), per-device intervals override the default."""
    http, key, _ = client
    monkeypatch.setenv("WK_C", "s3cret")
    assert (await get(http, "/profile/", key))["user_id"] == stable_id("bot", "pingbot")
    assert await get(http, "/accounts/", key) == {"list": [{"id": 1, "name": "watchkeeper"}]}
    entities = (await get(http, "/accounts/1/entities/", key))["list"]
    assert {(e["id"], e["entity_type"]) for e in entities} == {(R1, "device"), (R2, "device")}
    r1 = await get(http, f"/accounts/1/entities/{R1}", key)
    assert r1["details"] == {"ipv4": "192.0.2.1"}
    ping, snmp = r1["protocols"]["ping"], r1["protocols"]["snmp"]
    assert ping["sensors"] == [{"sensor": stable_id("sensor", "icmp"), "interval": 30}]
    assert snmp["sensors"] == [{"sensor": stable_id("sensor", "traffic"), "interval": None}]
    assert ping["bot"] is None
    credential = await get(http, f"/accounts/1/credentials/{ping['credential']}/", key)
    assert credential["details"] == {"n_packets": "5", "timeout": "1.0"}
    secret = await get(http, f"/accounts/1/credentials/{snmp['credential']}", key)
    assert secret["details"] == {"community": "s3cret"}
    sensor = await get(http, f"/accounts/1/sensors/{stable_id('sensor', 'traffic')}", key)
    assert (sensor["protocol"], sensor["default_interval"]) == ("snmp", 300)
    assert sensor["details"]["oids"][0]["fetch_method"] == "walk"
    r2 = await get(http, f"/accounts/1/entities/{R2}/", key)
    assert set(r2["protocols"]) == {"ping"}


@pytest.mark.parametrize(("body", "params"), [
    ([{"p": f"entity.{R1}.ping.p1.rtt", "v": 1.5}, {"p": "custom.a%2eb", "v": "7"}], {}),
    ({f"entity.{R1}.ping.p1.rtt": 1.5, "custom.a%2eb": 7}, {}),
])
async def test_values_in_list_and_dict_form_become_series(
        client: tuple[httpx.AsyncClient, str, str], archive: MemoryArchive,
        body: Any, params: dict[str, str]) -> None:
    """A known entity's path is <device>/<protocol>/<rest>; any other is grafolean/values;
    every value of the batch shares the request's time."""
    http, key, _ = client
    answer = await http.post("/accounts/1/values/", params={"b": key, **params}, json=body)
    assert answer.status_code == 204, answer.text
    rtt = await archive.read(SeriesKey.parse("r1/ping/p1.rtt"), NOW - 1, NOW + 1)
    other = await archive.read(SeriesKey.parse("grafolean/values/custom.a.b"), NOW - 1, NOW + 1)
    assert (list(rtt.ts), list(rtt.values)) == ([NOW], [1.5])
    assert list(other.values) == [7.0]


async def test_values_by_query_and_with_their_own_time(
        client: tuple[httpx.AsyncClient, str, str], archive: MemoryArchive) -> None:
    """?p=&v= (no body) and a "t" per item are taken too."""
    http, key, _ = client
    assert (await http.post("/accounts/1/values", params={"b": key, "p": "x.y", "v": "2"})
            ).status_code == 204
    assert (await http.post("/accounts/1/values", params={"b": key},
                            json=[{"p": "x.y", "v": 3, "t": NOW - 60}])).status_code == 204
    points = await archive.read(SeriesKey.parse("grafolean/values/x.y"), NOW - 120, NOW + 1)
    assert list(zip(points.ts, points.values, strict=True)) == [(NOW - 60, 3.0), (NOW, 2.0)]


@pytest.mark.parametrize(("body", "message"), [
    ([{"p": "ok.path", "v": 1}, {"p": "bad path", "v": 1}], "values[1].p"),
    ([{"p": "ok.path", "v": "abc"}], "values[0].v: 'abc' is not a number"),
    ([{"p": "ok.path", "v": True}], "values[0].v"),
    ([{"p": "ok.path", "v": "nan"}], "not a finite number"),
    ([5], "values[0]: expected an object"),
    ("text", "a JSON list"),
])
async def test_a_bad_item_refuses_the_whole_batch(
        client: tuple[httpx.AsyncClient, str, str], archive: MemoryArchive, body: Any,
        message: str) -> None:
    """400 naming the item and field; nothing of the batch is stored."""
    http, key, _ = client
    answer = await http.post("/accounts/1/values", params={"b": key}, json=body)
    assert answer.status_code == 400
    assert message in answer.json()["detail"]
    assert (await archive.list_series(prefix="grafolean"))[1] == 0


async def test_tokens_accounts_and_unknown_ids(client: tuple[httpx.AsyncClient, str, str]) -> None:
    """No token 401, a read-only token 403 (credentials go to collect tokens only), a bad
    one 401; other accounts and unknown ids 404; the status needs no token."""
    http, key, reader = client
    assert (await http.get("/accounts/")).status_code == 401
    assert (await http.get("/accounts/", params={"b": "nope"})).status_code == 401
    assert (await http.get("/accounts/", params={"b": reader})).status_code == 403
    assert (await http.get("/accounts/", headers={"Authorization": f"Token {key}"})
            ).status_code == 200
    assert (await http.get("/accounts/2/entities/", params={"b": key})).status_code == 404
    assert (await http.get("/accounts/1/entities/12", params={"b": key})).status_code == 404
    assert (await http.get("/accounts/1/sensors/12", params={"b": key})).status_code == 404
    assert (await http.get("/accounts/1/credentials/12", params={"b": key})).status_code == 404
    info = await http.get("/status/info")
    assert info.json()["db_migration_needed"] is False
