"""The inventory_notify engine: forwards events to the live inventory as notifications.

Events whose ``event_type`` matches one of ``event_types`` (regexes matched from the
start; by default ``inventory.``) and, when ``components`` is given, whose component
matches one of those, become notifications handed to ``Services.notify``, which the
runtime lends; the pipeline never imports the inventory, so a notification is plain
data::

    {"publisher_id": "pipeline.<engine>", "event_type": "device.created",
     "payload": {**event.attrs, "component": ..., "resource": ..., "state": ...,
                 "output": ..., "tags": [...]},
     "priority": "info" | "warn" | "error" | "critical", "timestamp": ..., "message_id": event.id}

``strip_prefix`` (``inventory.`` by default) is removed from the event type, so the event
``inventory.device.created`` reaches endpoints filtering on ``device\\.created``. Every
event passes on down the chain unchanged unless ``forward`` is false (then the matching
ones stop here).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import Any

import msgspec

from watchkeeper.model import Event
from watchkeeper.pipeline.abc import EngineDefinition
from watchkeeper.pipeline.engine import Engine

log = logging.getLogger(__name__)

_PRIORITY = {0: "info", 1: "warn", 2: "error", 3: "critical"}


class InventoryNotifyOptions(msgspec.Struct, frozen=True, forbid_unknown_fields=True,
                             kw_only=True):
    event_types: tuple[str, ...] = (r"inventory\.",)
    components: tuple[str, ...] = ()
    publisher_id: str | None = None  # default: pipeline.<engine name>
    strip_prefix: str = "inventory."
    forward: bool = True

    def __post_init__(self) -> None:
        for pattern in (*self.event_types, *self.components):
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"invalid regex {pattern!r}: {exc}") from None


class _State:
    def __init__(self, engine: Engine) -> None:
        options: InventoryNotifyOptions = engine.options
        self.options = options
        self.event_types = [re.compile(p) for p in options.event_types]
        self.components = [re.compile(p) for p in options.components]
        self.publisher_id = options.publisher_id or f"pipeline.{engine.name}"
        self.matches: dict[str, bool] = {}  # event type -> matches a rule (few distinct)

    def wanted(self, event: Event) -> bool:
        hit = self.matches.get(event.event_type)
        if hit is None:
            if len(self.matches) >= 4096:
                self.matches.clear()
            hit = self.matches[event.event_type] = any(
                p.match(event.event_type) for p in self.event_types)
        if not hit:
            return False
        return not self.components or any(p.match(event.component) for p in self.components)

    def notification(self, event: Event) -> Mapping[str, Any]:
        event_type = event.event_type
        prefix = self.options.strip_prefix
        if prefix and event_type.startswith(prefix):
            event_type = event_type[len(prefix):]
        payload: dict[str, Any] = {
            **event.attrs, "component": event.component, "resource": event.resource,
            "state": event.state, "output": event.output, "tags": list(event.tags),
        }
        return {"publisher_id": self.publisher_id, "event_type": event_type,
                "payload": payload, "priority": _PRIORITY.get(event.state, "info"),
                "timestamp": event.timestamp, "message_id": event.id}


def _state(engine: Engine) -> _State:
    state = engine.state.get("inventory_notify")
    if not isinstance(state, _State):
        state = engine.state["inventory_notify"] = _State(engine)
    return state


async def notify_batch(engine: Engine, batch: list[Event]) -> list[Event]:
    state = _state(engine)
    wanted = [e for e in batch if state.wanted(e)]
    if wanted:
        notify = engine.services.notify
        if notify is None:
            if not engine.state.get("warned"):
                engine.state["warned"] = True
                log.warning("engine %s: no inventory to notify; events pass unchanged",
                            engine.name)
        else:
            await notify([state.notification(e) for e in wanted])
    if state.options.forward or not wanted:
        return batch
    return [e for e in batch if not state.wanted(e)]


async def notify_event(engine: Engine, event: Event) -> Event | None:
    passed = await notify_batch(engine, [event])
    return passed[0] if passed else None


ENGINE = EngineDefinition(
    event_task=notify_event,
    batch_task=notify_batch,
    options=InventoryNotifyOptions,
)
