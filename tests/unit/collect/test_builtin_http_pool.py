"""The http collector's pool: sized from its jobs, gated, and its own exhaustion is
watchkeeper's fault (ERRORED, local), never the device's (CRITICAL)."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from tests.unit.collect.fakes import START
from watchkeeper.collect.abc import JobSpec, PollResult
from watchkeeper.collect.builtin import http
from watchkeeper.collect.builtin.http import HttpCollector, HttpOptions
from watchkeeper.collect.poll import run_poll
from watchkeeper.model import Device, Status


def spec(name: str = "web") -> JobSpec:
    return JobSpec(job_id=f"http:{name}", device=Device(name=name, address="10.0.0.7"),
                   intervals=(30.0,))


async def poll(collector: HttpCollector, name: str = "web", timeout: float = 5.0) -> PollResult:
    return await run_poll(collector, spec(name), now=START, timeout=timeout,
                          affecting_intervals=(30.0,), state={})


def test_the_pool_is_sized_from_the_jobs_within_bounds() -> None:
    """One connection per job, 4 to 16; max_connections overrides."""
    collector = HttpCollector(HttpOptions(), name="http")
    sizes, capacities = [], []
    for jobs in (1, 10, 5000):
        capacities.append(collector.plan_capacity(jobs))
        sizes.append(collector.pool_size)
    assert sizes == [4, 10, 16]
    assert capacities == [8, 20, 32]  # polls at once: a slot each, as many waiting
    fixed = HttpCollector(HttpOptions(max_connections=64), name="http")
    fixed.plan_capacity(5000)
    assert fixed.pool_size == 64


def test_max_connections_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_connections"):
        HttpOptions(max_connections=0)


async def test_an_exhausted_pool_is_errored_as_local_not_critical() -> None:
    """httpx's own PoolTimeout is our overload: ERRORED naming the pool, and the client,
    which had a free slot yet no connection, is replaced by a fresh one."""

    def pool_timeout(request: httpx.Request) -> httpx.Response:
        raise httpx.PoolTimeout("no connection", request=request)

    collector = HttpCollector(HttpOptions(), name="web",
                              transport=httpx.MockTransport(pool_timeout))
    try:
        first = collector._current().client
        result = await poll(collector)
        assert result.status is Status.ERRORED
        assert result.local_fault == "http_pool"
        assert "watchkeeper is saturated, the device was not asked" in result.check.summary
        assert collector.recycled == 1
        assert collector._current().client is not first
    finally:
        await collector.aclose()
    assert first.is_closed


async def test_no_free_slot_is_errored_as_local_and_a_stalled_pool_is_replaced(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """With every slot held by a request that does not finish, the next poll waits half its
    budget, then is ERRORED as local saturation; the stalled client is replaced."""
    monkeypatch.setattr(http, "STALL_AFTER", 0.0)
    release = asyncio.Event()

    async def hang(request: httpx.Request) -> httpx.Response:
        await release.wait()
        return httpx.Response(200, content=b"late")

    collector = HttpCollector(HttpOptions(max_connections=1), name="web",
                              transport=httpx.MockTransport(hang))
    try:
        holder = asyncio.create_task(poll(collector, "one", timeout=30.0))
        while not collector._current().gate.locked():
            await asyncio.sleep(0.01)
        result = await poll(collector, "two", timeout=0.4)
        assert result.status is Status.ERRORED
        assert result.local_fault == "http_pool"
        assert "no free connection" in result.check.summary
        assert collector.recycled == 1
        release.set()
        assert (await holder).status is Status.OK  # the held request still completes
    finally:
        release.set()
        await collector.aclose()


async def test_a_transport_error_is_still_the_devices() -> None:
    """A refused connection stays CRITICAL: the device did not answer."""

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    collector = HttpCollector(HttpOptions(), name="web", transport=httpx.MockTransport(refuse))
    try:
        result = await poll(collector)
    finally:
        await collector.aclose()
    assert result.status is Status.CRITICAL
    assert result.local_fault is None


async def test_a_poll_cut_by_its_timeout_lets_the_request_finish_and_free_its_slot() -> None:
    """The request is shielded from the poll's cancellation: it ends on its own (here,
    answered late) and only then gives its slot back, so the gate and the client's pool
    never disagree."""
    async def slow(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(0.3)
        return httpx.Response(200, content=b"late")

    collector = HttpCollector(HttpOptions(max_connections=1), name="web",
                              transport=httpx.MockTransport(slow))
    try:
        result = await poll(collector, timeout=0.1)
        assert result.status is Status.ERRORED
        assert "timed out" in result.check.summary
        gate = collector._current().gate
        assert gate.locked()  # the request still runs and holds its slot
        async with asyncio.timeout(10):
            while collector._fetching:
                await asyncio.sleep(0.01)
        assert not gate.locked()
    finally:
        await collector.aclose()
