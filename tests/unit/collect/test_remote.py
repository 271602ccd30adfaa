"""Remote collectors without a network: the spool, the server routes, and the daemon driven by a
fake clock against a fake server that can go away."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest
from starlette.applications import Starlette
from starlette.requests import Request

from tests.unit.collect.fakes import START
from watchkeeper.api.collect import CollectApi, token_of
from watchkeeper.api.errors import HANDLERS
from watchkeeper.clock import FakeClock
from watchkeeper.collect.credentials import Credential
from watchkeeper.collect.remote import RemoteCollector, RemoteServer, ServerUnavailable, Spool
from watchkeeper.collect.remote.convert import config_to_wire, result_from_wire
from watchkeeper.errors import AuthError
from watchkeeper.model import Device, MetricMetadata, Status
from watchkeeper.settings import CollectorSettings
from watchkeeper.telemetry import SelfMetrics
from watchkeeper.wire import (
    CollectAck,
    CollectBatch,
    CollectConfig,
    CollectFamily,
    CollectResult,
)

COUNTING = "tests.unit.collect.plugins:Counting"

# ---------------------------------------------------------------- spool


def test_spool_keeps_order_and_survives_reopening(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "s.db", max_items=10)
    spool.open()
    spool.append([b"a", b"b", b"c"])
    rows = spool.peek(2)
    assert [body for _, body in rows] == [b"a", b"b"]
    spool.remove_through(rows[-1][0])
    epoch = spool.epoch
    spool.close()
    again = Spool(tmp_path / "s.db", max_items=10)
    again.open()
    assert (len(again), again.epoch) == (1, epoch)
    again.append([b"d"])
    assert [body for _, body in again.peek(10)] == [b"c", b"d"]
    assert again.peek(10)[0][0] > rows[-1][0]  # sequence numbers only grow
    again.close()


def test_spool_bound_drops_the_oldest_and_counts_them(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "s.db", max_items=3)
    spool.open()
    assert spool.append([b"1", b"2"]) == 0
    assert spool.append([b"3", b"4", b"5"]) == 2
    assert [body for _, body in spool.peek(10)] == [b"3", b"4", b"5"]
    assert (len(spool), spool.dropped) == (3, 2)
    spool.close()
    reopened = Spool(tmp_path / "s.db", max_items=3)
    reopened.open()
    assert reopened.dropped == 2
    reopened.close()


# ---------------------------------------------------------------- server routes

DEVICE = Device(name="d1", address="127.0.0.1")


def config(*devices: Device, interval: float = 1.0, refresh: float = 5.0) -> CollectConfig:
    specs = [CollectorSettings(name="count", plugin=COUNTING, interval=interval, timeout=0.5)]
    return config_to_wire(list(devices) or [DEVICE], specs, refresh=refresh)


class Intake:
    def __init__(self) -> None:
        self.batches: list[CollectBatch] = []

    async def __call__(self, batch: CollectBatch) -> int:
        self.batches.append(batch)
        return len(batch.results)


def only_token(expected: str) -> Callable[[Request], None]:
    def authorize(request: Request) -> None:
        if token_of(request) != expected:
            raise AuthError("a valid token is required")
    return authorize


@pytest.fixture
async def http() -> AsyncIterator[tuple[httpx.AsyncClient, Intake]]:
    intake = Intake()
    api = CollectApi(config=config, accept=intake, authorize=only_token("k3y"))
    app = Starlette(routes=list(api.routes()), exception_handlers=HANDLERS)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://wk") as client:
        yield client, intake


async def test_config_is_one_request_with_an_etag(
        http: tuple[httpx.AsyncClient, Intake]) -> None:
    client, _ = http
    auth = {"Authorization": "Token k3y"}
    first = await client.get("/api/v1/collect/config", headers=auth)
    assert first.status_code == 200
    body = msgspec.json.decode(first.content, type=CollectConfig)
    assert first.headers["etag"] == f'"{body.version}"'
    assert [d.name for d in body.devices] == ["d1"]
    assert body.collectors[0].plugin == COUNTING
    again = await client.get("/api/v1/collect/config",
                             headers={**auth, "If-None-Match": first.headers["etag"]})
    assert again.status_code == 304


async def test_tokens_are_checked_by_the_injected_authorize(
        http: tuple[httpx.AsyncClient, Intake]) -> None:
    client, _ = http
    assert (await client.get("/api/v1/collect/config")).status_code == 401
    wrong = {"Authorization": "Token nope"}
    assert (await client.get("/api/v1/collect/config", headers=wrong)).status_code == 401
    assert (await client.get("/api/v1/collect/config?b=k3y")).status_code == 401  # never in URLs


async def test_results_are_accepted_once(http: tuple[httpx.AsyncClient, Intake]) -> None:
    client, intake = http
    server = RemoteServer("http://wk", Credential("k3y", source="inline"),
                          transport=client._transport)
    result = CollectResult(plugin="count", job="count:d1", device="d1", scheduled=START,
                           started=START, finished=START, status="ok")
    batch = CollectBatch(collector="c1/e", seq=7, results=[result])
    assert await server.send(batch) == CollectAck(accepted=1)
    assert await server.send(batch) == CollectAck(accepted=0, duplicate=True)  # re-sent
    assert len(intake.batches) == 1
    bad = await client.post("/api/v1/collect/results", content=b'{"collector": 1}',
                            headers={"Authorization": "Token k3y"})
    assert bad.status_code == 400
    await server.aclose()


def test_results_round_trip_through_the_wire() -> None:
    from watchkeeper.collect.abc import PollResult
    from watchkeeper.collect.remote.convert import result_to_wire
    from watchkeeper.collect.scheduler import PollOutcome
    from watchkeeper.model import CheckResult, Measurement, SeriesKey

    point = Measurement(key=SeriesKey.make("d1", "count", "polls", {"if": "eth0"}), ts=START,
                        value=3.0, unit="B")
    outcome = PollOutcome(plugin="count", job_id="count:d1", device=Device(name="d1"),
                          scheduled=START, started=START + 1, finished=START + 2,
                          result=PollResult(check=CheckResult.of(Status.WARNING, "hm", ts=START),
                                            measurements=(point,),
                                            families=(("polls", MetricMetadata(
                                                "counter", "Polls made.", "")),)))
    back = result_from_wire(msgspec.json.decode(msgspec.json.encode(result_to_wire(outcome)),
                                                type=CollectResult))
    assert back == outcome


def test_families_from_the_wire_are_read_as_remote_write_metadata_is() -> None:
    """A family name Prometheus would refuse is left out, an unknown type is ``unknown``,
    and the families come in name order, as a local poll has them."""
    sent = CollectResult(plugin="p", job="p:d1", device="d1", scheduled=START, started=START,
                         finished=START, status="ok",
                         families={"z_total": CollectFamily("counter", "Z.", ""),
                                   "a": CollectFamily("tally", "A.", "seconds"),
                                   "9bad": CollectFamily("gauge", "", "")})
    assert result_from_wire(sent).result.families == (
        ("a", MetricMetadata("unknown", "A.", "seconds")),
        ("z_total", MetricMetadata("counter", "Z.", "")))


# ---------------------------------------------------------------- the daemon


class FakeServer:
    """Hands out a configuration and records batches; ``up = False`` makes it unreachable."""

    def __init__(self, cfg: CollectConfig) -> None:
        self.config = cfg
        self.up = True
        self.batches: list[CollectBatch] = []
        self.fetches = 0

    async def fetch_config(self, etag: str | None) -> tuple[CollectConfig | None, str | None]:
        if not self.up:
            raise ServerUnavailable("down")
        self.fetches += 1
        tag = f'"{self.config.version}"'
        return (None, etag) if etag == tag else (self.config, tag)

    async def send(self, batch: CollectBatch) -> CollectAck:
        if not self.up:
            raise ServerUnavailable("down")
        self.batches.append(batch)
        return CollectAck(accepted=len(batch.results))

    def values(self, job: str = "count:d1") -> list[float]:
        return [p.value for b in self.batches for r in b.results if r.job == job
                for p in r.points if isinstance(p.value, float)]

    def scheduled(self, job: str) -> list[float]:
        return [r.scheduled for b in self.batches for r in b.results if r.job == job]


async def until(check: Callable[[], bool], timeout: float = 5.0) -> None:
    """Wait in real time (spool work runs in threads) until ``check()`` holds."""
    async with asyncio.timeout(timeout):
        while not check():
            await asyncio.sleep(0.005)


class Harness:
    def __init__(self, tmp_path: Path, server: FakeServer, clock: FakeClock,
                 **kwargs: Any) -> None:
        self.spool = Spool(tmp_path / "spool.db", max_items=kwargs.pop("max_items", 1000))
        self.daemon = RemoteCollector(server, self.spool, name="c1", clock=clock,
                                      metrics=SelfMetrics(), cache=tmp_path / "config.json",
                                      flush_interval=1.0,
                                      retry=kwargs.pop("retry", (1.0, 2.0)), **kwargs)
        self.clock = clock
        self.stop = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self.task = asyncio.create_task(self.daemon.run(self.stop))
        await until(lambda: self.daemon.config is not None or self.clock.sleepers >= 2)

    async def tick(self, seconds: int) -> None:
        """Advance one second at a time, letting each second's spool work finish."""
        for _ in range(seconds):
            await self.clock.advance(1.0)
            await until(lambda: not self.daemon._pending or self.clock.sleepers >= 3)
            await asyncio.sleep(0.02)

    async def finish(self) -> None:
        self.stop.set()
        assert self.task is not None
        await self.task


async def test_results_are_delivered_in_order_across_an_outage(tmp_path: Path) -> None:
    clock = FakeClock(START)
    server = FakeServer(config())
    harness = Harness(tmp_path, server, clock)
    await harness.start()
    await harness.tick(5)
    delivered = len(server.values())
    assert delivered >= 3
    server.up = False
    await harness.tick(6)  # keeps polling on the last configuration, spooling
    assert len(server.values()) == delivered
    assert len(harness.spool) >= 5
    assert harness.daemon.stats().server_reachable is False
    server.up = True
    await harness.tick(4)
    await until(lambda: len(harness.spool) == 0)
    values = server.values()
    assert values == [float(n) for n in range(1, len(values) + 1)]  # nothing lost, in order
    scheduled = server.scheduled("count:d1")
    assert scheduled == sorted(scheduled)
    assert all(b - a == pytest.approx(1.0) for a, b in itertools.pairwise(scheduled))
    await harness.finish()


async def test_every_result_is_in_the_spool_while_sending_backs_off(tmp_path: Path) -> None:
    """During an outage's long back-off, each result reaches the on-disk spool as its poll
    ends, not at the next send attempt: a kill -9 then loses nothing that was polled."""
    clock = FakeClock(START)
    server = FakeServer(config())
    harness = Harness(tmp_path, server, clock, retry=(8.0, 60.0))
    await harness.start()
    await harness.tick(2)
    server.up = False
    await harness.tick(12)  # the send loop sleeps 8 s, then 16 s, meanwhile
    assert harness.daemon.stats().pending == 0
    spooled = [msgspec.json.decode(body, type=CollectResult)
               for _, body in harness.spool.peek(1000)]
    polls = [p.value for r in spooled for p in r.points]
    assert polls[-1] == len(server.values()) + len(polls)  # the newest poll is on disk too
    await harness.finish()


async def test_a_changed_configuration_is_reconciled_keeping_phase(tmp_path: Path) -> None:
    clock = FakeClock(START)
    server = FakeServer(config(interval=2.0, refresh=1.0))
    harness = Harness(tmp_path, server, clock)
    await harness.start()
    await harness.tick(6)
    before = server.scheduled("count:d1")
    server.config = config(DEVICE, Device(name="d2", address="127.0.0.1"), interval=2.0,
                           refresh=1.0)
    await harness.tick(8)
    after = server.scheduled("count:d1")
    assert len(after) > len(before)
    phase = before[0] % 2.0
    assert all(ts % 2.0 == pytest.approx(phase) for ts in after)  # same grid throughout
    assert server.values() == [float(n) for n in range(1, len(server.values()) + 1)]
    assert server.scheduled("count:d2")  # the new device's job started
    server.config = config(interval=2.0, refresh=1.0)  # d2 removed
    await harness.tick(3)
    gone = len(server.scheduled("count:d2"))
    await harness.tick(6)
    assert len(server.scheduled("count:d2")) == gone
    await harness.finish()


async def test_an_unreachable_server_keeps_the_cached_configuration(tmp_path: Path) -> None:
    clock = FakeClock(START)
    server = FakeServer(config())
    first = Harness(tmp_path, server, clock)
    await first.start()
    await first.tick(3)
    await first.finish()
    server.up = False
    second = Harness(tmp_path, server, clock)  # restarted while the server is down
    await second.start()
    assert second.daemon.config is not None  # from the cache
    await second.tick(4)
    assert len(second.spool) >= 3  # polling and spooling meanwhile
    await second.finish()


async def test_beyond_the_bound_the_oldest_are_dropped_and_reported(tmp_path: Path) -> None:
    clock = FakeClock(START)
    server = FakeServer(config())
    harness = Harness(tmp_path, server, clock, max_items=3)
    await harness.start()
    await harness.tick(2)
    server.up = False
    await harness.tick(8)
    assert harness.spool.dropped > 0
    server.up = True
    await harness.tick(3)
    await until(lambda: len(harness.spool) == 0)
    assert server.batches[-1].dropped == harness.spool.dropped
    values = server.values()
    assert values == sorted(values)  # what arrived is in order; the gap is counted
    await harness.finish()
