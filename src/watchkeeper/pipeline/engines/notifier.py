"""The notifier: POSTs alarm changes to a webhook, with retries and exponential back-off.

It takes the events of ``event_types`` (default: the alarm engine's ``alarm`` events,
optionally only some ``steps``) and sends each batch as one JSON array. Connection
errors, timeouts, 429 and 5xx are retried ``attempts`` times, waiting ``backoff``
seconds, then twice that, up to ``max_backoff``; a 4xx answer is final. Events whose
notification failed are dead-lettered with the reason; every event passes on.
"""

from __future__ import annotations

import logging
from typing import Any

import httpx
import msgspec

from watchkeeper.model import Event
from watchkeeper.pipeline.abc import EngineDefinition
from watchkeeper.pipeline.engine import Engine

log = logging.getLogger(__name__)


class NotifierOptions(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    url: str
    event_types: tuple[str, ...] = ("alarm",)
    steps: tuple[str, ...] | None = None
    timeout: float = 10.0
    attempts: int = 5
    backoff: float = 0.5
    max_backoff: float = 30.0
    headers: dict[str, str] = msgspec.field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.url.startswith(("http://", "https://")):
            raise ValueError("url must start with http:// or https://")
        if self.attempts < 1:
            raise ValueError("attempts must be at least 1")
        if self.timeout <= 0 or self.backoff < 0 or self.max_backoff < 0:
            raise ValueError("timeout must be positive, backoffs not negative")


class Notification(msgspec.Struct, frozen=True, kw_only=True):
    """One event as the webhook receives it."""

    id: str
    event_type: str
    entity_id: str
    component: str
    resource: str
    state: int
    output: str
    timestamp: float
    attrs: dict[str, str]


_json = msgspec.json.Encoder()


def _wanted(options: NotifierOptions, event: Event) -> bool:
    if event.event_type not in options.event_types:
        return False
    return options.steps is None or event.attrs.get("step") in options.steps


async def notify_batch(engine: Engine, batch: list[Event]) -> list[Event]:
    """POST the wanted events of ``batch``; dead-letter them if that keeps failing."""
    options: NotifierOptions = engine.options
    wanted = [e for e in batch if _wanted(options, e)]
    if not wanted:
        return batch
    body = _json.encode([
        Notification(id=e.id, event_type=e.event_type, entity_id=e.entity_id,
                     component=e.component, resource=e.resource, state=e.state,
                     output=e.output, timestamp=e.timestamp, attrs=e.attrs)
        for e in wanted])
    error = await _post(engine, options, body)
    if error is not None:
        for event in wanted:
            engine.dead_letter(event, error, attempts=options.attempts)
    return batch


async def _post(engine: Engine, options: NotifierOptions, body: bytes) -> str | None:
    """None once delivered; otherwise why it was given up."""
    clock = engine.services.clock
    transport: Any = engine.state.get("transport")  # tests lend an httpx.MockTransport
    headers = {"content-type": "application/json", **options.headers}
    delay = options.backoff
    error = "not sent"
    async with httpx.AsyncClient(timeout=options.timeout, transport=transport) as client:
        for attempt in range(1, options.attempts + 1):
            try:
                response = await client.post(options.url, content=body, headers=headers)
            except httpx.HTTPError as exc:
                error = f"POST {options.url}: {exc!r}"
            else:
                if response.status_code < 300:
                    return None
                error = f"POST {options.url}: HTTP {response.status_code} {response.text[:200]}"
                if response.status_code < 500 and response.status_code != 429:
                    break  # the receiver refuses this payload: retrying will not help
            log.warning("engine %s: notification failed (attempt %d/%d): %s",
                        engine.name, attempt, options.attempts, error)
            if attempt < options.attempts:
                await clock.sleep_until(clock.time() + delay)
                delay = min(delay * 2, options.max_backoff)
    return error


ENGINE = EngineDefinition(batch_task=notify_batch, options=NotifierOptions)
