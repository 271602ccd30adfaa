"""The API's own request metrics: counts and latencies by route template, not raw path.

Labels come from the route Starlette matched (``/api/v1/inventory/{collector}``), so a
scan of made-up paths cannot grow the label set; an unmatched request counts under
``<unmatched>``. Status is the class (``2xx``...), which is what an alert needs.
"""

from __future__ import annotations

import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from watchkeeper.telemetry import SelfMetrics

UNMATCHED = "<unmatched>"


class RequestMetrics:
    """Outermost middleware: times each HTTP request and counts it once answered."""

    def __init__(self, app: ASGIApp, metrics: SelfMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        began = time.perf_counter()
        status = 500  # an answer never started is a server error

        async def counting_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, counting_send)
        finally:
            route = getattr(scope.get("route"), "path", None) or UNMATCHED
            self.metrics.api_requests.labels(scope["method"], route, f"{status // 100}xx").inc()
            self.metrics.api_latency.labels(route).observe(time.perf_counter() - began)
