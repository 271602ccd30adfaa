"""Events: what flows through the engine pipeline.

The identity fields are Canopsis' (connector, connector_name, event_type, source_type,
component, resource) so Canopsis connectors can feed watchkeeper unchanged; ``ttl`` is
Riemann's. Check results and measurements from collectors travel as events.
"""

from __future__ import annotations

import uuid
from urllib.parse import quote

import msgspec

from watchkeeper.model.families import Families
from watchkeeper.model.measurement import Measurement

EVENT_SCHEMA_VERSION = 1


def _new_id() -> str:
    return uuid.uuid4().hex


class Event(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """One immutable pipeline event. Use :func:`msgspec.structs.replace` to derive another."""

    event_type: str
    component: str
    timestamp: float
    resource: str = ""
    connector: str = "watchkeeper"
    connector_name: str = "watchkeeper"
    source_type: str = "resource"
    state: int = 0
    output: str = ""
    long_output: str = ""
    measurements: tuple[Measurement, ...] = ()
    # metric families' metadata a poll read (a scraped exporter's # TYPE/# HELP), kept
    # by the archive writer beside the archive (D46); empty on nearly every event
    families: Families = ()
    tags: tuple[str, ...] = ()
    attrs: dict[str, str] = msgspec.field(default_factory=dict)
    ttl: float | None = None
    id: str = msgspec.field(default_factory=_new_id)
    v: int = EVENT_SCHEMA_VERSION

    @property
    def entity_id(self) -> str:
        """A stable identity of what the event is about; parts are escaped, never joined raw."""
        if self.source_type == "component" or not self.resource:
            return f"component/{quote(self.component, safe='')}"
        return f"resource/{quote(self.component, safe='')}/{quote(self.resource, safe='')}"
