"""The enrich engine: adds the inventory's attributes of an event's component.

The runtime lends a lookup (``Services.lookup``: component name -> attributes such as
site, role, address, tags), so the pipeline never imports the inventory. ``keys``
limits what is copied; ``prefix`` names the copies; an attribute the event already has
wins unless ``overwrite``. A comma-separated ``tags`` attribute is added to the
event's tags.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

import msgspec

from watchkeeper.model import Event
from watchkeeper.pipeline.abc import EngineDefinition
from watchkeeper.pipeline.engine import Engine

log = logging.getLogger(__name__)


class EnrichOptions(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    keys: tuple[str, ...] | None = None
    prefix: str = ""
    tags_key: str | None = "tags"
    overwrite: bool = False


class _Addition(msgspec.Struct, frozen=True):
    attrs: dict[str, str]
    tags: tuple[str, ...]


_NOTHING = _Addition({}, ())


def _addition(options: EnrichOptions, found: Mapping[str, str]) -> _Addition:
    if not found:
        return _NOTHING
    keys = options.keys if options.keys is not None else tuple(found)
    attrs = {options.prefix + k: found[k] for k in keys if k in found}
    tags: tuple[str, ...] = ()
    if options.tags_key and found.get(options.tags_key):
        tags = tuple(t for t in found[options.tags_key].split(",") if t)
    return _Addition(attrs, tags)


class _State:
    def __init__(self, engine: Engine) -> None:
        self.options: EnrichOptions = engine.options
        self.lookup = engine.services.lookup
        self.cache: dict[str, _Addition] = {}

    def addition(self, component: str) -> _Addition:
        found = self.cache.get(component)
        if found is None:
            assert self.lookup is not None
            found = self.cache[component] = _addition(self.options, self.lookup(component))
        return found


def _state(engine: Engine) -> _State | None:
    state = engine.state.get("enrich")
    if isinstance(state, _State):
        return state
    if engine.services.lookup is None:
        if not engine.state.get("warned"):
            engine.state["warned"] = True
            log.warning("engine %s: no inventory lookup; events pass unchanged", engine.name)
        return None
    made = engine.state["enrich"] = _State(engine)
    return made


def _enrich(state: _State, event: Event) -> Event:
    addition = state.addition(event.component)
    if addition is _NOTHING:
        return event
    current = event.attrs
    tags = event.tags
    if addition.tags:
        tags = tags + tuple(t for t in addition.tags if t not in tags)
    if not current:
        # The attributes dict is shared by every event of the component: events are
        # values, and no engine mutates an event's attrs in place.
        attrs = addition.attrs
    elif state.options.overwrite:
        attrs = {**current, **addition.attrs}
    else:
        attrs = {**addition.attrs, **current}
    if attrs == current and tags is event.tags:
        return event
    return msgspec.structs.replace(event, attrs=attrs, tags=tags)


def enrich_event(engine: Engine, event: Event) -> Event:
    state = _state(engine)
    return event if state is None else _enrich(state, event)


async def enrich_batch(engine: Engine, batch: list[Event]) -> list[Event]:
    """:func:`enrich_event` over a batch, with the common case inlined: an event with no
    attributes and no tags of its own simply takes its component's addition."""
    state = _state(engine)
    if state is None:
        return batch
    cache = state.cache
    addition = state.addition
    replace = msgspec.structs.replace
    out: list[Event] = []
    append = out.append
    for event in batch:
        found = cache.get(event.component)
        if found is None:
            found = addition(event.component)
        if found is _NOTHING:
            append(event)
        elif event.attrs or event.tags:
            append(_enrich(state, event))
        elif found.attrs or found.tags:
            append(replace(event, attrs=found.attrs, tags=found.tags))
        else:
            append(event)
    return out


def forget(engine: Engine) -> None:
    """The beat: drop the cache, so inventory changes show up within a beat interval."""
    state = engine.state.get("enrich")
    if isinstance(state, _State):
        state.cache.clear()


ENGINE = EngineDefinition(
    event_task=enrich_event,
    batch_task=enrich_batch,
    beat_task=forget,
    options=EnrichOptions,
    beat_interval=60.0,
)
