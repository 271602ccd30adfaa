"""The notifier: alarm changes to webhooks, Alertmanager and mail, durably and once each.

::

    engines:
      - name: notify
        engine: notifier
        options:
          targets:
            - {kind: alertmanager, name: am, urls: [http://127.0.0.1:9093]}
            - {kind: mail, name: noc, host: 127.0.0.1, port: 25, sender: wk@example.org,
               to: [noc@example.org], security: starttls, username: wk,
               password: env:SMTP_PASSWORD}
            - {kind: webhook, name: chat, url: "https://chat.example.org/hooks/x",
               template: mattermost}
          steps: [stateinc, statedec, resolve]      # default: every step

It takes the events of ``event_types`` (default: the alarm engine's ``alarm`` events,
optionally only some ``steps``). Each becomes one payload per target, rendered and
committed to a durable outbox (``<data_dir>/<path>.sqlite``) before the batch is handed
on; the outbox is keyed by target and the event's step id, so a step delivered twice by
the bus is notified once. Delivery is tried at once, then again at each beat (every
second) after a back-off of ``backoff`` seconds doubling up to ``max_backoff``; a refused
payload (4xx but 408/429, an SMTP 5xx) or one that failed ``attempts`` times is dead-
lettered with the reason. Every event passes on unchanged. The legacy ``url`` option is
one webhook target. ``/metrics`` counts delivered and failed notifications per target
(``watchkeeper_notifications``) and those waiting (``watchkeeper_notifications_pending``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from typing import Any

import httpx
import msgspec
from prometheus_client import Counter
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector as MetricsSource

from watchkeeper.model import Event
from watchkeeper.pipeline.abc import EngineDefinition
from watchkeeper.pipeline.engine import Engine
from watchkeeper.pipeline.engines.notifier.outbox import Outbox, Pending
from watchkeeper.pipeline.engines.notifier.targets import (
    AlertmanagerTarget,
    MailTarget,
    Target,
    Undelivered,
    WebhookTarget,
)

__all__ = ["ENGINE", "AlertmanagerTarget", "MailTarget", "NotifierOptions", "WebhookTarget"]

log = logging.getLogger(__name__)
KEEP_IDS = 7 * 86400.0  # how long delivered step ids are remembered against redelivery


class NotifierOptions(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    targets: list[Target] = msgspec.field(default_factory=list)
    url: str | None = None  # one plain webhook target (the original form of this option)
    headers: dict[str, str] = msgspec.field(default_factory=dict)  # ... and its headers
    event_types: tuple[str, ...] = ("alarm",)
    steps: tuple[str, ...] | None = None
    timeout: float = 10.0
    attempts: int = 5
    backoff: float = 0.5
    max_backoff: float = 30.0
    path: str = "notifier"  # the outbox: <data_dir>/<path>.sqlite

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError("attempts must be at least 1")
        if self.timeout <= 0 or self.backoff < 0 or self.max_backoff < 0:
            raise ValueError("timeout must be positive, backoffs not negative")
        if self.url is None and not self.targets:
            raise ValueError("name at least one target (or a webhook url)")
        names = [t.name for t in self.all_targets()]
        if len(names) != len(set(names)):
            raise ValueError(f"target names must be unique: {sorted(names)}")

    def all_targets(self) -> list[Target]:
        if self.url is None:
            return list(self.targets)
        legacy = WebhookTarget(name="webhook", url=self.url, headers=self.headers)
        return [legacy, *self.targets]


class _State:
    """What one notifier engine keeps between batches (in ``engine.state``)."""

    def __init__(self, engine: Engine) -> None:
        options: NotifierOptions = engine.options
        data_dir = engine.services.data_dir
        self.targets = {t.name: t for t in options.all_targets()}
        self.outbox = Outbox(None if data_dir is None else data_dir / f"{options.path}.sqlite")
        self.last_resend: dict[str, float] = {}
        self.counter = Counter("watchkeeper_notifications",
                               "Notifications by engine, target and outcome.",
                               ["engine", "target", "outcome"], registry=None)
        engine.services.metrics.add_source(_Metrics(engine.name, self))


class _Metrics(MetricsSource):
    def __init__(self, engine: str, state: _State) -> None:
        self.engine = engine
        self.state = state

    def collect(self) -> Iterator[Any]:
        yield from self.state.counter.collect()
        waiting = GaugeMetricFamily("watchkeeper_notifications_pending",
                                    "Notifications waiting for delivery, by engine.",
                                    labels=["engine"])
        waiting.add_metric([self.engine], self.state.outbox.counts().pending)
        yield waiting


def _state(engine: Engine) -> _State:
    state = engine.state.get("notifier")
    if state is None:
        state = engine.state["notifier"] = _State(engine)
    assert isinstance(state, _State)
    return state


def _wanted(options: NotifierOptions, event: Event) -> bool:
    if event.event_type not in options.event_types:
        return False
    return options.steps is None or event.attrs.get("step") in options.steps


_encode_event = msgspec.json.Encoder().encode
_decode_event = msgspec.json.Decoder(Event).decode


async def notify_batch(engine: Engine, batch: list[Event]) -> list[Event]:
    """Queue a notification per target for each wanted event, then try the due ones."""
    options: NotifierOptions = engine.options
    wanted = [e for e in batch if _wanted(options, e)]
    if wanted:
        state = _state(engine)
        now = engine.services.clock.time()
        rows = [(queue, event.id, payload, _encode_event(event))
                for event in wanted for target in state.targets.values()
                for queue, payload in target.rows(event, state.outbox, now)]
        state.outbox.add(rows, now=now)
        await deliver_due(engine)
    return batch


async def beat(engine: Engine, **_: Any) -> None:
    """Retry what is due, re-send what fires to Alertmanager, forget old step ids."""
    state = _state(engine)
    await deliver_due(engine)
    now = engine.services.clock.time()
    for target in state.targets.values():
        if isinstance(target, AlertmanagerTarget):
            await _resend(engine, state, target, now)
    state.outbox.forget_before(now - KEEP_IDS)


async def _resend(engine: Engine, state: _State, target: AlertmanagerTarget,
                  now: float) -> None:
    if now - state.last_resend.get(target.name, -1e18) < target.resend_every:
        return
    state.last_resend[target.name] = now
    body = target.resend(state.outbox, now)
    if body is None:
        return
    async with _client(engine) as client:
        for url in target.urls:
            try:
                await target.deliver(target.queue(url), body, client)
            except Undelivered as exc:  # the next resend carries the same alerts
                log.warning("engine %s: re-sending firing alerts failed: %s", engine.name, exc)


def _client(engine: Engine) -> httpx.AsyncClient:
    options: NotifierOptions = engine.options
    transport: Any = engine.state.get("transport")  # tests may lend an httpx.MockTransport
    return httpx.AsyncClient(timeout=options.timeout, transport=transport)


def _target_of(state: _State, queue: str) -> Target | None:
    return state.targets.get(queue.partition("@")[0])


async def deliver_due(engine: Engine) -> None:
    """One attempt at every notification whose time has come, each queue in order; a
    queue whose receiver is down waits for its next try without holding up the others."""
    state = _state(engine)
    now = engine.services.clock.time()
    queues: dict[str, list[Pending]] = {}
    for item in state.outbox.due(now):
        queues.setdefault(item.target, []).append(item)
    if not queues:
        return
    async with _client(engine) as client:
        await asyncio.gather(*(_deliver_queue(engine, state, client, items)
                               for items in queues.values()))


async def _deliver_queue(engine: Engine, state: _State, client: httpx.AsyncClient,
                         items: list[Pending]) -> None:
    options: NotifierOptions = engine.options
    for item in items:
        target = _target_of(state, item.target)
        if target is None:  # a target since removed from the configuration
            state.outbox.failed(item.target, item.step_id, "target no longer configured")
            continue
        try:
            await target.deliver(item.target, item.payload, client)
        except Undelivered as exc:
            attempts = item.attempts + 1
            if exc.retry and attempts < options.attempts:
                delay = min(options.backoff * 2 ** (attempts - 1), options.max_backoff)
                state.outbox.retry(item.target, item.step_id, error=str(exc),
                                   next_try=engine.services.clock.time() + delay)
                log.warning("engine %s: notification to %s failed (attempt %d/%d): %s",
                            engine.name, item.target, attempts, options.attempts, exc)
                return  # keep this queue's order: later items wait behind this one
            state.outbox.failed(item.target, item.step_id, str(exc))
            state.counter.labels(engine.name, target.name, "failed").inc()
            engine.dead_letter(_decode_event(item.event), f"{item.target}: {exc}",
                               attempts=attempts)
            continue
        state.outbox.delivered(item.target, item.step_id)
        state.counter.labels(engine.name, target.name, "delivered").inc()


ENGINE = EngineDefinition(batch_task=notify_batch, beat_task=beat, options=NotifierOptions,
                          beat_interval=1.0)
