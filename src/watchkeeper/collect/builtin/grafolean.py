"""A sensor for Grafolean bots: configured here, polled by a bot, never by watchkeeper.

::

    collectors:
      - name: icmp              # the Grafolean sensor's name
        plugin: grafolean
        interval: 60            # the sensor's default_interval
        devices: ["*"]          # the entities that carry it
        options:
          protocol: ping        # which bots see it (``fetch_job_configs('ping')``)
          details: {}           # the sensor's details, as the bot expects them
          credential: {n_packets: "3", sleep_packets: "1.0", timeout: "1.0", retry: "0"}

Bots built on ``grafoleancollector`` read their jobs from ``/grafolean/api`` (see
``watchkeeper.api.grafolean``): each device the entry selects is an entity whose
``protocols[protocol]`` lists this sensor, and its credential is ``credential`` overlaid
with the device's ``connections.<protocol>`` from the inventory (``env:``/``file:``
references resolved, for bot tokens only). ``jobs`` yields nothing: watchkeeper's own
scheduler leaves these to the bots.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from typing import Any

import msgspec

from watchkeeper.collect.abc import Collector, JobSpec, PollContext
from watchkeeper.errors import CollectError
from watchkeeper.model import Device

_PROTOCOL = re.compile(r"^[a-z0-9][a-z0-9_-]*$")


class GrafoleanOptions(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    protocol: str
    details: dict[str, Any] = msgspec.field(default_factory=dict)
    credential: dict[str, Any] = msgspec.field(default_factory=dict)

    def __post_init__(self) -> None:
        if not _PROTOCOL.match(self.protocol):
            raise ValueError("protocol must be a Grafolean protocol slug (ping, snmp, ...)")


class GrafoleanSensor(Collector):
    """A job description for Grafolean bots; it has no jobs of watchkeeper's own."""

    Options = GrafoleanOptions
    options: GrafoleanOptions

    def jobs(self, devices: Iterable[Device], intervals: tuple[float, ...]) -> Iterator[JobSpec]:
        return iter(())

    def poll(self, device: Device, ctx: PollContext) -> Any:
        raise CollectError(f"{self.name}: a grafolean sensor is polled by Grafolean bots")
