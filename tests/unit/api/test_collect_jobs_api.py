"""``GET /api/v1/collect/jobs`` and ``/api/v1/collect/report`` over a scheduler that really
polled: a tcp collector on a device whose connections hold inline secrets (against a
listening socket of the test), a check quoting a URL with a password, and a measurement
whose object value has a secret-named key. No answer may carry any of those secrets."""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from watchkeeper.api import create_app
from watchkeeper.archive.backends.memory import MemoryArchive
from watchkeeper.clock import FakeClock
from watchkeeper.collect import Collector, PollContext, PollResult
from watchkeeper.collect.scheduler import PollOutcome, Scheduler
from watchkeeper.inventory import StaticInventory
from watchkeeper.model import CheckResult, Device, Measurement, Message, SeriesKey, Status
from watchkeeper.runtime.assemble import build_collectors, devices_from, plan_jobs
from watchkeeper.runtime.service import job_routes
from watchkeeper.settings import load_settings
from watchkeeper.telemetry import SelfMetrics

NOW = 1_700_000_000.0
SECONDS = 61  # polled for: every job's first slot comes within its interval (60 s at most)
SECRETS = ("s3cret-community", "hunter2-password", "url-pa55word", "tok-5ecret")
CONFIG = """\
data_dir: {data_dir}
inventory:
  devices:
    - name: core1
      address: 127.0.0.1
      connections:
        snmp: {{community: s3cret-community}}
        ssh: {{username: wk, password: hunter2-password}}
    - {{name: web1, address: 127.0.0.1}}
    - {{name: db1, address: 127.0.0.1}}
collectors:
  - {{name: port, plugin: tcp, interval: 30, timeout: 5, devices: [core1],
     options: {{port: {port}}}}}
  - {{name: probe, plugin: "tests.unit.collect.plugins:Fixed", interval: 60, devices: [web1],
     options: {{status: critical,
               text: "GET http://wk:url-pa55word@127.0.0.1/ answered 500"}}}}
  - {{name: rows, plugin: "tests.unit.api.test_collect_jobs_api:Rows", interval: 60,
     devices: [web1, db1]}}
"""


class Rows(Collector):
    """A measurement whose value is an object with a secret-named key."""

    async def poll(self, device: Device, ctx: PollContext) -> PollResult:
        key = SeriesKey.make(device.name, ctx.plugin, "table")
        table = Measurement(key=key, ts=ctx.now, obj={"rows": 3, "api_token": "tok-5ecret"})
        return PollResult(check=CheckResult(status=Status.OK, messages=(
            Message(ts=ctx.now, text="3 rows"),)), measurements=(table,))


@dataclass
class Polled:
    client: httpx.AsyncClient
    scheduler: Scheduler
    outcomes: list[PollOutcome]


async def _listen() -> asyncio.Server:
    async def drop(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()

    return await asyncio.start_server(drop, "127.0.0.1", 0)


@pytest.fixture
async def polled(tmp_path: Path, archive: MemoryArchive) -> AsyncIterator[Polled]:
    """Every job but ``rows:db1`` polled once (rows on db1 is held back: still pending)."""
    server = await _listen()
    port = server.sockets[0].getsockname()[1]
    settings, locator = load_settings(CONFIG.format(data_dir=tmp_path, port=port), source="wk")
    collectors = build_collectors(settings, locator)
    jobs = plan_jobs(collectors, locator, StaticInventory(devices_from(settings)))
    clock = FakeClock(NOW)
    outcomes: list[PollOutcome] = []

    async def sink(outcome: PollOutcome) -> None:
        outcomes.append(outcome)

    scheduler = Scheduler(clock=clock, metrics=SelfMetrics(), sink=sink)
    scheduler.reconcile([j for j in jobs if j.spec.job_id != "rows:db1"])
    running = asyncio.create_task(scheduler.run())
    ids = [key[2] for key in scheduler.job_keys()]
    async with asyncio.timeout(20):
        for _ in range(SECONDS):  # a second at a time, each poll done before the next
            await clock.advance(1)
            while any(s.running for s in scheduler.job_states(ids)):
                await asyncio.sleep(0.005)
    scheduler.reconcile(jobs)  # rows:db1 joins, its first slot still to come
    app = create_app(archive, metrics=SelfMetrics(),
                     extra_routes=job_routes(scheduler, collectors, clock=clock))
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                     base_url="http://wk") as client:
            yield Polled(client, scheduler, outcomes)
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)
        server.close()
        await server.wait_closed()


async def _jobs(polled: Polled, **params: Any) -> dict[str, Any]:
    answer = await polled.client.get("/api/v1/collect/jobs", params=params)
    assert answer.status_code == 200, answer.text
    for secret in SECRETS:
        assert secret not in answer.text, secret
    body: dict[str, Any] = answer.json()
    return body


async def test_every_job_with_its_interval_next_run_and_latest_poll(polled: Polled) -> None:
    body = await _jobs(polled)
    assert body["now"] == NOW + SECONDS
    assert body["total"] == 4
    assert [(j["status"], j["device"], j["collector"]) for j in body["jobs"]] == [
        ("critical", "web1", "probe"), ("ok", "core1", "port"), ("ok", "web1", "rows"),
        (None, "db1", "rows")]  # worst first, then by device; not polled yet last
    assert body["statuses"] == {"critical": 1, "ok": 2, "pending": 1}
    assert body["collectors"] == {"port": 1, "probe": 1, "rows": 2}
    port = body["jobs"][1]
    assert (port["job"], port["plugin"], port["interval"], port["intervals"]) == (
        "port:core1", "tcp", 30.0, [30.0])
    assert port["reason"].startswith("connected to 127.0.0.1:")
    assert NOW + SECONDS < port["next_run"] <= NOW + SECONDS + 30
    assert math.isclose(port["next_run"] % 30, port["last_scheduled"] % 30)  # its phase
    assert port["last_started"] >= port["last_scheduled"]
    assert port["last_duration"] >= 0
    assert port["lateness"] >= 0
    assert (port["running"], port["skipped"], port["failures"]) == (False, 0, 0)
    probe = body["jobs"][0]
    assert probe["plugin"] == "tests.unit.collect.plugins:Fixed"
    assert probe["reason"] == "GET http://wk:<redacted>@127.0.0.1/ answered 500"
    pending = body["jobs"][3]
    assert pending["last_started"] is None
    assert pending["lateness"] is None
    assert NOW + SECONDS < pending["next_run"] <= NOW + SECONDS + 60


async def test_filters_and_pages(polled: Polled) -> None:
    failing = await _jobs(polled, status=["critical", "errored"])
    assert [j["job"] for j in failing["jobs"]] == ["probe:web1"]
    assert failing["statuses"]["ok"] == 2  # the counts are of every job, filters aside
    rows = await _jobs(polled, collector="rows")
    assert [j["device"] for j in rows["jobs"]] == ["web1", "db1"]
    pending = await _jobs(polled, status="pending")
    assert [j["job"] for j in pending["jobs"]] == ["rows:db1"]
    web1 = await _jobs(polled, device="web1", collector=["probe", "rows"])
    assert [j["job"] for j in web1["jobs"]] == ["probe:web1", "rows:web1"]
    second = await _jobs(polled, limit=2, offset=1)
    assert (second["total"], second["limit"], second["offset"]) == (4, 2, 1)
    assert [j["job"] for j in second["jobs"]] == ["port:core1", "rows:web1"]


@pytest.mark.parametrize(("params", "field"), [
    ({"status": "red"}, "status"), ({"limit": "0"}, "limit"), ({"limit": "1e9"}, "limit"),
    ({"offset": "-1"}, "offset")])
async def test_bad_parameters_are_a_400_naming_them(polled: Polled, params: dict[str, str],
                                                    field: str) -> None:
    answer = await polled.client.get("/api/v1/collect/jobs", params=params)
    assert answer.status_code == 400
    assert answer.json()["detail"].startswith(f"{field}: ")


async def test_the_report_of_a_job_is_the_genie_style_report(polled: Polled) -> None:
    answer = await polled.client.get("/api/v1/collect/report",
                                     params={"device": "core1", "collector": "port"})
    assert answer.status_code == 200, answer.text
    for secret in SECRETS:
        assert secret not in answer.text, secret
    report = answer.json()
    assert (report["version"], report["status"], report["generated"]) == (
        1, "ok", "2023-11-14T22:14:21.000Z")
    assert report["devices"] == {"core1": "ok"}
    result = report["runs"]["latest"]["results"]["port"]["core1"]
    assert result["status"] == "ok"
    assert result["messages"][0]["text"].startswith("connected to 127.0.0.1:")
    [latency] = result["measurements"]
    assert (latency["series"], latency["unit"]) == ("core1/port/connect.latency", "ms")
    assert latency["value"] >= 0


async def test_a_device_report_holds_every_collector_and_redacts(polled: Polled) -> None:
    answer = await polled.client.get("/api/v1/collect/report", params={"device": "web1"})
    assert answer.status_code == 200, answer.text
    for secret in SECRETS:
        assert secret not in answer.text, secret
    report = answer.json()
    assert report["plugins"] == {"probe": "critical", "rows": "ok"}
    results = report["runs"]["latest"]["results"]
    assert results["probe"]["web1"]["messages"][0]["text"] == (
        "GET http://wk:<redacted>@127.0.0.1/ answered 500")
    assert results["rows"]["web1"]["measurements"][0]["value"] == {
        "rows": 3, "api_token": "<redacted>"}


async def test_a_pending_job_reports_no_run_and_an_unknown_one_is_404(polled: Polled) -> None:
    pending = await polled.client.get("/api/v1/collect/report",
                                      params={"device": "db1", "collector": "rows"})
    assert pending.status_code == 200
    assert (pending.json()["status"], pending.json()["runs"]) == ("unknown", {})
    for params in ({"device": "db1", "collector": "port"}, {"device": "nowhere"}):
        missing = await polled.client.get("/api/v1/collect/report", params=params)
        assert missing.status_code == 404
        assert params["device"] in missing.json()["detail"]
    no_device = await polled.client.get("/api/v1/collect/report", params={"collector": "port"})
    assert no_device.status_code == 400
    assert no_device.json()["detail"].startswith("device: ")
