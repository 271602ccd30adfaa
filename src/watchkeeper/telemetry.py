"""watchkeeper's own metrics, exposed in Prometheus text format at ``/metrics``.

One :class:`SelfMetrics` is created by the runtime and handed to every component;
tests make their own, so nothing touches a global registry. The process' own figures
(``process_resident_memory_bytes``, ``process_open_fds``, CPU seconds) come from
prometheus_client's process collector, registered on the same registry.
"""

from __future__ import annotations

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.registry import Collector

# Start lateness: the top buckets reach a minute, so an overloaded poller shows how late.
LATENESS_BUCKETS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0)
API_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class SelfMetrics:
    """The counters, gauges and histograms watchkeeper keeps about itself."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        reg = self.registry
        self.points_ingested = Counter(
            "watchkeeper_points_ingested", "Points made durable in the archive.", registry=reg)
        self.ingest_batches = Counter(
            "watchkeeper_ingest_batches", "Write batches committed to the archive.", registry=reg)
        self.polls = Counter(
            "watchkeeper_polls", "Polls finished, by plugin and status.",
            ["plugin", "status"], registry=reg)
        self.poll_errors = Counter(
            "watchkeeper_poll_errors", "Polls that raised, timed out or returned garbage.",
            ["plugin"], registry=reg)
        self.polls_skipped = Counter(
            "watchkeeper_polls_skipped", "Polls skipped because the previous one still ran.",
            ["plugin"], registry=reg)
        self.scheduler_lateness = Histogram(
            "watchkeeper_scheduler_lateness_seconds", "How late polls started.",
            buckets=LATENESS_BUCKETS, registry=reg)
        self.polls_shed = Counter(
            "watchkeeper_polls_shed", "Polls not started because every concurrency slot was "
            "taken (the poller's overload), by plugin.", ["plugin"], registry=reg)
        self.local_faults = Counter(
            "watchkeeper_poll_local_faults", "Polls failed by a local resource of watchkeeper "
            "(a connection pool, threads), by plugin and resource.", ["plugin", "resource"],
            registry=reg)
        self.poller_saturated = Gauge(
            "watchkeeper_poller_saturated", "1 while the poller is saturated (its own overload).",
            registry=reg)
        self.scheduled_jobs = Gauge(
            "watchkeeper_scheduled_jobs", "Jobs the scheduler runs.", registry=reg)
        self.queue_depth = Gauge(
            "watchkeeper_engine_queue_depth", "Event batches waiting, by engine.",
            ["engine"], registry=reg)
        self.events = Counter(
            "watchkeeper_engine_events", "Events processed, by engine and outcome.",
            ["engine", "outcome"], registry=reg)
        self.engine_errors = Counter(
            "watchkeeper_engine_errors", "Task failures, by engine.", ["engine"], registry=reg)
        self.engine_latency = Histogram(
            "watchkeeper_engine_batch_seconds", "Time an engine took over one batch, by engine.",
            ["engine"], buckets=(0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0),
            registry=reg)
        self.api_requests = Counter(
            "watchkeeper_api_requests", "API requests answered, by method, route template and "
            "status class (2xx...).", ["method", "route", "status"], registry=reg)
        self.api_latency = Histogram(
            "watchkeeper_api_request_seconds", "Time to answer an API request, by route template.",
            ["route"], buckets=API_BUCKETS, registry=reg)
        ProcessCollector(registry=reg)

    def add_source(self, source: Collector) -> None:
        """Metrics a component reads from its own state at each scrape (a prometheus_client
        custom collector, such as the inventory's ``ModelMetrics``)."""
        self.registry.register(source)

    def exposition(self) -> bytes:
        """The Prometheus text exposition of every metric."""
        return generate_latest(self.registry)
