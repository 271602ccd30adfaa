"""The HTTP collector against httpx's MockTransport: statuses, bodies, URLs, the client."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import msgspec
import pytest

from tests.unit.collect.fakes import START
from watchkeeper.collect.abc import JobSpec, PollResult
from watchkeeper.collect.builtin.http import HttpCollector, HttpOptions
from watchkeeper.collect.poll import run_poll
from watchkeeper.model import Device, Status

Handler = Callable[[httpx.Request], httpx.Response]


def answer(status: int = 200, body: bytes = b"hello world") -> Handler:
    return lambda request: httpx.Response(status, content=body)


async def check(handler: Handler, **options: Any) -> tuple[PollResult, list[httpx.Request]]:
    seen: list[httpx.Request] = []

    def record(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return handler(request)

    opts = msgspec.convert(options, HttpOptions)
    collector = HttpCollector(opts, name="http", transport=httpx.MockTransport(record))
    spec = JobSpec(job_id="http:web", device=Device(name="web", address="10.0.0.7:8080"),
                   intervals=(30.0,))
    try:
        result = await run_poll(collector, spec, now=START, timeout=5.0,
                                affecting_intervals=(30.0,), state={})
    finally:
        await collector.aclose()
    return result, seen


def values(result: PollResult) -> dict[str, float | None]:
    return {m.key.metric: m.value for m in result.measurements}


async def test_an_expected_answer_is_ok_with_its_measurements() -> None:
    result, seen = await check(answer())
    assert result.status is Status.OK
    assert str(seen[0].url) == "http://10.0.0.7:8080/"  # the {address} placeholder
    got = values(result)
    assert (got["http.status_code"], got["http.body_bytes"]) == (200, 11)
    assert got["http.latency"] is not None
    assert got["http.latency"] >= 0
    assert "tls.days_left" not in got
    assert result.check.summary.startswith("GET http://10.0.0.7:8080/: HTTP 200 in ")


async def test_an_unexpected_status_is_critical() -> None:
    result, _ = await check(answer(503))
    assert result.status is Status.CRITICAL
    assert "expected status 200" in result.check.summary
    assert values(result)["http.status_code"] == 503


async def test_several_statuses_may_be_expected() -> None:
    result, _ = await check(answer(204, b""), expect_status=[200, 204])
    assert result.status is Status.OK


async def test_the_body_must_match_when_asked() -> None:
    ok, _ = await check(answer(body=b"status: green"), body_match=r"status: (green|blue)")
    bad, _ = await check(answer(body=b"status: red"), body_match=r"status: (green|blue)")
    assert ok.status is Status.OK
    assert bad.status is Status.CRITICAL
    assert "body does not match" in bad.check.summary


async def test_method_url_and_name_placeholder_are_used() -> None:
    _, seen = await check(answer(), method="HEAD", url="https://{name}.example/health")
    assert (seen[0].method, str(seen[0].url)) == ("HEAD", "https://web.example/health")


async def test_a_refused_connection_is_critical() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("[Errno 111] Connection refused", request=request)

    result, _ = await check(refuse)
    assert result.status is Status.CRITICAL
    assert "ConnectError: [Errno 111] Connection refused" in result.check.summary


async def test_a_slow_server_is_critical_not_errored() -> None:
    def slow(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    result, _ = await check(slow)
    assert result.status is Status.CRITICAL


async def test_a_bad_scheme_is_a_broken_check() -> None:
    """httpx refuses the scheme before any connection: the check is broken, not the device."""
    collector = HttpCollector(HttpOptions(url="gopher://{address}/"), name="http")
    spec = JobSpec(job_id="http:a", device=Device(name="a", address="a"), intervals=(30.0,))
    try:
        result = await run_poll(collector, spec, now=START, timeout=5.0,
                                affecting_intervals=(), state={})
    finally:
        await collector.aclose()
    assert result.status is Status.ERRORED
    assert "UnsupportedProtocol" in result.check.summary


async def test_the_client_is_made_on_first_poll_and_closed_by_aclose() -> None:
    collector = HttpCollector(HttpOptions(), name="http", transport=httpx.MockTransport(answer()))
    assert collector._pool is None  # no I/O, nothing opened, in the constructor
    spec = JobSpec(job_id="http:a", device=Device(name="a", address="a"), intervals=(30.0,))
    await run_poll(collector, spec, now=START, timeout=5.0, affecting_intervals=(), state={})
    assert collector._pool is not None
    client = collector._pool.client
    await run_poll(collector, spec, now=START, timeout=5.0, affecting_intervals=(), state={})
    assert collector._pool.client is client  # shared across polls
    await collector.aclose()
    assert client.is_closed
    await collector.aclose()  # idempotent


def test_options_refuse_unknown_keys_and_bad_patterns() -> None:
    assert msgspec.convert({}, HttpOptions).expect_status == 200
    with pytest.raises(msgspec.ValidationError, match="body_match"):
        msgspec.convert({"body_match": "(unclosed"}, HttpOptions)
    with pytest.raises(msgspec.ValidationError, match="verify"):
        msgspec.convert({"verify": False}, HttpOptions)
