"""Between the collector's values and the wire shapes of ``/api/v1/collect``. Pure."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import msgspec

from watchkeeper.collect.abc import PollResult
from watchkeeper.collect.scheduler import PollOutcome
from watchkeeper.model import (
    CheckResult,
    Device,
    Families,
    Measurement,
    Message,
    MetricMetadata,
    SeriesKey,
    Status,
)
from watchkeeper.model.families import METRIC_TYPES
from watchkeeper.model.promlabels import is_metric_name
from watchkeeper.settings import CollectorSettings
from watchkeeper.wire import (
    CollectCollector,
    CollectConfig,
    CollectDevice,
    CollectFamily,
    CollectMessage,
    CollectResult,
    WirePoint,
)


def result_to_wire(outcome: PollOutcome) -> CollectResult:
    points: list[WirePoint] = []
    units: dict[str, str] = {}
    for m in outcome.result.measurements:
        series = str(m.key)
        value = m.value if m.value is not None else (m.histogram or {})
        points.append(WirePoint(series, m.ts, value))
        if m.unit:
            units[series] = m.unit
    return CollectResult(
        plugin=outcome.plugin, job=outcome.job_id, device=outcome.device.name,
        scheduled=outcome.scheduled, started=outcome.started, finished=outcome.finished,
        status=outcome.result.status.value,
        messages=[CollectMessage(m.ts, m.text) for m in outcome.result.check.messages],
        points=points, units=units,
        families={name: CollectFamily(meta.type, meta.help, meta.unit)
                  for name, meta in outcome.result.families},
    )


def result_from_wire(result: CollectResult) -> PollOutcome:
    """The outcome a server files; raises InvalidData / ValueError on a bad series or status."""
    measurements = []
    for point in result.points:
        key = SeriesKey.parse(point.series)
        unit = result.units.get(point.series, "")
        if isinstance(point.value, dict):
            measurements.append(Measurement(key=key, ts=point.ts, histogram=point.value,
                                            unit=unit))
        else:
            measurements.append(Measurement(key=key, ts=point.ts, value=point.value, unit=unit))
    check = CheckResult(status=Status(result.status),
                        messages=tuple(Message(ts=m.ts, text=m.text) for m in result.messages))
    return PollOutcome(
        plugin=result.plugin, job_id=result.job, device=Device(name=result.device),
        scheduled=result.scheduled, started=result.started, finished=result.finished,
        result=PollResult(check=check, measurements=tuple(measurements),
                          families=_families_from_wire(result.families)),
    )


def _families_from_wire(families: dict[str, CollectFamily]) -> Families:
    """The families as a local poll has them: by name, in name order. A family whose name
    Prometheus would not accept is left out (its samples are still stored), and a type it
    does not know is ``unknown``, as remote write's metadata is read."""
    return tuple(
        (name, MetricMetadata(family.type if family.type in METRIC_TYPES else "unknown",
                              family.help, family.unit))
        for name, family in sorted(families.items()) if is_metric_name(name))


def config_to_wire(devices: Sequence[Device], specs: Sequence[CollectorSettings], *,
                   refresh: float) -> CollectConfig:
    """The configuration for remote collectors; its version is a hash of its content."""
    wire_devices = [CollectDevice(name=d.name, address=d.address, tags=list(d.tags),
                                  groups=list(d.groups), interval=d.interval,
                                  connections=d.connections) for d in devices]
    wire_specs = [CollectCollector(name=s.name, plugin=s.plugin, interval=s.interval,
                                   timeout=s.timeout, devices=list(s.devices), options=s.options)
                  for s in specs]
    body = msgspec.json.encode([wire_devices, wire_specs, refresh], order="deterministic")
    version = hashlib.sha256(body).hexdigest()[:16]
    return CollectConfig(version=version, devices=wire_devices, collectors=wire_specs,
                         refresh=refresh)


def config_from_wire(config: CollectConfig) -> tuple[list[Device], list[CollectorSettings]]:
    devices = [Device(name=d.name, address=d.address, tags=tuple(d.tags), groups=tuple(d.groups),
                      interval=d.interval, connections=d.connections) for d in config.devices]
    specs = [CollectorSettings(name=c.name, plugin=c.plugin, interval=c.interval,
                               timeout=c.timeout, devices=list(c.devices), options=c.options)
             for c in config.collectors]
    return devices, specs
