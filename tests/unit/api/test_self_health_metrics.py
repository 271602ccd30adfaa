"""watchkeeper's own health and metrics over the API: /api/v1/health says degraded with
the reasons (still 200), /metrics counts requests by route template and status class and
carries the process' RSS and open fds, and the lateness histogram reaches a minute."""

from __future__ import annotations

import httpx

from watchkeeper.api import create_app
from watchkeeper.archive.backends.memory import MemoryArchive
from watchkeeper.telemetry import SelfMetrics


def client(archive: MemoryArchive, metrics: SelfMetrics, **kwargs: object) -> httpx.AsyncClient:
    app = create_app(archive, metrics=metrics, **kwargs)  # type: ignore[arg-type]
    return httpx.AsyncClient(base_url="http://wk", transport=httpx.ASGITransport(app=app))


async def test_health_is_ok_without_reasons(archive: MemoryArchive) -> None:
    async with client(archive, SelfMetrics(), health=lambda: ()) as http:
        answer = await http.get("/api/v1/health")
    assert answer.status_code == 200
    assert answer.json()["status"] == "ok"
    assert answer.json()["reasons"] == []


async def test_health_says_degraded_with_the_reasons_and_still_200(
    archive: MemoryArchive,
) -> None:
    """Degraded is alive and serving: 200, so no probe restarts an overloaded server."""
    reasons = ("40 polls shed, their collector at capacity or every slot taken (web: 40)",)
    async with client(archive, SelfMetrics(), health=lambda: reasons) as http:
        answer = await http.get("/api/v1/health")
    assert answer.status_code == 200
    assert answer.json()["status"] == "degraded"
    assert answer.json()["reasons"] == list(reasons)


async def test_requests_are_counted_by_route_template_not_raw_path(
    archive: MemoryArchive,
) -> None:
    metrics = SelfMetrics()
    async with client(archive, metrics) as http:
        for _ in range(3):
            await http.get("/api/v1/health")
        await http.get("/api/v1/query", params={"series": "a/b/c", "start": "nope"})
        await http.get("/no/such/path/12345")
        text = (await http.get("/metrics")).text
    reg = metrics.registry
    assert reg.get_sample_value("watchkeeper_api_requests_total", {
        "method": "GET", "route": "/api/v1/health", "status": "2xx"}) == 3
    assert reg.get_sample_value("watchkeeper_api_requests_total", {
        "method": "GET", "route": "/api/v1/query", "status": "4xx"}) == 1
    assert reg.get_sample_value("watchkeeper_api_requests_total", {
        "method": "GET", "route": "<unmatched>", "status": "4xx"}) == 1
    assert "/no/such/path" not in text
    assert 'watchkeeper_api_request_seconds_count{route="/api/v1/health"} 3.0' in text


async def test_metrics_carry_rss_open_fds_and_long_lateness_buckets(
    archive: MemoryArchive,
) -> None:
    async with client(archive, SelfMetrics()) as http:
        text = (await http.get("/metrics")).text
    assert "process_resident_memory_bytes " in text
    assert "process_open_fds " in text
    assert 'watchkeeper_scheduler_lateness_seconds_bucket{le="60.0"}' in text
    assert "watchkeeper_poller_saturated " in text
