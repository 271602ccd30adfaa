"""Canopsis-format events in: a pure conversion from a Canopsis JSON event to an :class:`Event`.

Existing Canopsis connectors (Nagios, Shinken, SNMP traps, scripts...) publish flat JSON
objects (reference: engines.md §A.2). This module validates one, applies the cleaner's
defaults (``event_type`` check, ``source_type`` from ``resource``, ``state`` 0,
``state_type`` hard, ``timestamp`` now) and parses Nagios ``perf_data`` once, here at
ingress, into measurements. Every error names the field and the value.

Where things go: identity fields, ``state``, ``output``, ``long_output``, ``timestamp``
and ``tags`` map one to one; perf metrics become measurements of the series
``<component>/<resource or connector>/<metric>`` (names outside the series alphabet
are replaced by ``_`` and the original kept as a label); their warn/crit/min/max and
every other scalar field (``state_type``, ``author``, ``ref_rk``, ``display_name``,
Nagios extras...) go to ``attrs`` as strings.

An event's id is derived from the message, never drawn at random: a hash of the event's
canonical JSON (sorted keys, no spaces), the ``source`` it came through and the
broker's message id when there is one. So a message redelivered and converted again
gives the same ids, and every stage that de-duplicates by id recognises it.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

import msgspec

from watchkeeper.errors import PipelineError
from watchkeeper.model import Event, Measurement, SeriesKey

SOURCE_TYPES = frozenset({"component", "resource", "connector", "service", "metaalarm"})
PERF_TYPES = frozenset({"GAUGE", "DERIVE", "COUNTER", "ABSOLUTE"})
# Canopsis' internal bookkeeping: meaningless (or misleading) outside Canopsis.
_IGNORED = frozenset({"rk", "_id", "event_id", "processing", "status"})
_MAPPED = frozenset({"connector", "connector_name", "event_type", "source_type", "component",
                     "resource", "state", "state_type", "output", "long_output", "timestamp",
                     "tags", "perf_data", "perf_data_array", "ttl"})
_BAD_NAME_CHARS = re.compile(r"[^A-Za-z0-9_.:@-]+")
_PERF_ITEM = re.compile(
    r"""\s*(?P<label>'(?:[^']|'')+'|[^'=\s][^=\s]*)=(?P<rest>\S*)""")
_PERF_VALUE = re.compile(r"^(?P<value>[-+]?(?:\d+(?:[.,]\d*)?|[.,]\d+)(?:[eE][-+]?\d+)?|U)"
                         r"(?P<unit>[a-zA-Z%]*)$")


class EventFormatError(PipelineError, ValueError):
    """An incoming event that cannot be accepted; ``field`` and ``value`` say why."""

    def __init__(self, message: str, *, field: str, value: object = None) -> None:
        self.field = field
        self.value = value
        self.reason = message
        shown = repr(value)
        shown = shown if len(shown) <= 80 else shown[:77] + "..."
        super().__init__(f"{field}: {message} (got {shown})")


class PerfMetric(msgspec.Struct, frozen=True, kw_only=True):
    """One parsed perf-data metric (Canopsis ``perf_data_array`` item)."""

    metric: str
    value: float
    unit: str = ""
    warn: str | None = None
    crit: str | None = None
    min: float | None = None
    max: float | None = None
    type: str = "GAUGE"


def parse_perf_data(text: str, *, field: str = "perf_data") -> list[PerfMetric]:
    """Parse a Nagios perf string: ``'label'=value[UOM];[warn];[crit];[min];[max] ...``.

    Unknown values (``U``) are skipped; anything unparseable raises naming ``field``.
    """
    metrics: list[PerfMetric] = []
    pos = 0
    text = text.strip()
    while pos < len(text):
        match = _PERF_ITEM.match(text, pos)
        if not match:
            raise EventFormatError("expected 'label'=value[UOM];warn;crit;min;max",
                                   field=field, value=text[pos:].strip())
        pos = match.end()
        label = match.group("label")
        if label.startswith("'"):
            label = label[1:-1].replace("''", "'")
        value_part, *limits = match.group("rest").split(";")
        if len(limits) > 4:
            raise EventFormatError("at most warn;crit;min;max follow the value",
                                   field=field, value=match.group(0).strip())
        parsed = _PERF_VALUE.match(value_part)
        if not parsed:
            raise EventFormatError(f"metric {label!r}: value is not a number",
                                   field=field, value=value_part)
        if parsed.group("value") == "U":
            continue
        warn, crit, low, high = [*limits, "", "", "", ""][:4]
        metrics.append(PerfMetric(
            metric=label,
            value=_number(parsed.group("value"), field, label),
            unit=parsed.group("unit"),
            warn=warn or None,
            crit=crit or None,
            min=_number(low, field, label) if low else None,
            max=_number(high, field, label) if high else None,
        ))
    return metrics


def _number(text: str, field: str, label: str) -> float:
    try:
        value = float(text.replace(",", "."))
    except ValueError:
        raise EventFormatError(f"metric {label!r}: not a number", field=field,
                               value=text) from None
    if not math.isfinite(value):
        raise EventFormatError(f"metric {label!r}: not a finite number", field=field, value=text)
    return value


DEFAULT_SOURCE = "canopsis"


def event_id(doc: Mapping[str, Any], *, source: str = DEFAULT_SOURCE, key: str = "") -> str:
    """The id of the event converted from ``doc``: 32 hex digits of a hash of ``source``,
    ``key`` (the broker's message id, if any) and the canonical JSON of ``doc``.

    The same message gives the same id however often it is converted. Two byte-for-byte
    equal events (same fields, timestamp included) from one source without message ids
    are one event; a connector that repeats identical events on purpose sets a message id
    or a timestamp.
    """
    canonical = json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                           default=str)
    digest = hashlib.blake2b(digest_size=16)
    for part in (source, key, canonical):
        digest.update(part.encode("utf-8", "surrogatepass"))
        digest.update(b"\0")
    return digest.hexdigest()


def from_canopsis(doc: Mapping[str, Any], *, now: float, source: str = DEFAULT_SOURCE,
                  key: str = "") -> Event:
    """One Canopsis event as an :class:`Event`; ``now`` stands in for a missing timestamp.

    Its id is :func:`event_id` of ``doc``, ``source`` and ``key``.
    """
    if not isinstance(doc, Mapping):
        raise EventFormatError("a Canopsis event is a JSON object", field="$", value=doc)
    component = _text(doc, "component", required=True)
    resource = _text(doc, "resource")
    source_type = _text(doc, "source_type") or ("resource" if resource else "component")
    if source_type not in SOURCE_TYPES:
        raise EventFormatError(f"expected one of {', '.join(sorted(SOURCE_TYPES))}",
                               field="source_type", value=source_type)
    if source_type == "resource" and not resource:
        raise EventFormatError("a resource event names its resource", field="resource",
                               value=doc.get("resource"))
    connector = _text(doc, "connector", required=True)
    timestamp = _timestamp(doc.get("timestamp"), now)
    attrs = _attrs(doc)
    state_type = _int(doc, "state_type", default=1, allowed=range(2))
    attrs["state_type"] = "hard" if state_type == 1 else "soft"
    perf = _perf(doc)
    subject, plugin = component, resource or connector
    measurements = tuple(_measurement(m, subject, plugin, timestamp) for m in perf)
    for m in perf:
        for bound in ("warn", "crit", "min", "max"):
            limit = getattr(m, bound)
            if limit is not None:
                attrs[f"perf.{m.metric}.{bound}"] = limit if isinstance(limit, str) else _fmt(limit)
        if m.type != "GAUGE":
            attrs[f"perf.{m.metric}.type"] = m.type
    ttl = doc.get("ttl")
    if ttl is not None and (isinstance(ttl, bool) or not isinstance(ttl, int | float)
                            or ttl <= 0):
        raise EventFormatError("a positive number of seconds", field="ttl", value=ttl)
    return Event(
        connector=connector,
        connector_name=_text(doc, "connector_name", required=True),
        event_type=_text(doc, "event_type") or "check",
        source_type=source_type,
        component=component,
        resource=resource if source_type != "component" else "",
        state=_int(doc, "state", default=0, allowed=range(4)),
        output=_text(doc, "output"),
        long_output=_text(doc, "long_output"),
        timestamp=timestamp,
        tags=_tags(doc.get("tags")),
        measurements=measurements,
        attrs=attrs,
        ttl=float(ttl) if ttl is not None else None,
        id=event_id(doc, source=source, key=key),
    )


def from_canopsis_json(data: bytes | str, *, now: float, source: str = DEFAULT_SOURCE,
                       key: str = "") -> list[Event]:
    """Events from a JSON body holding one Canopsis event or an array of them.

    An error in the n-th event of an array names it: ``[3].state: ...``. Ids are
    derived as :func:`from_canopsis` says; in an array with a ``key``, the n-th event's
    key is ``<key>[n]``.
    """
    try:
        doc = json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise EventFormatError(f"not JSON: {exc}", field="$",
                               value=data[:80] if data else data) from None
    if isinstance(doc, list):
        events: list[Event] = []
        for index, item in enumerate(doc):
            try:
                events.append(from_canopsis(item, now=now, source=source,
                                            key=f"{key}[{index}]" if key else ""))
            except EventFormatError as exc:
                field = f"[{index}]" if exc.field == "$" else f"[{index}].{exc.field}"
                raise EventFormatError(exc.reason, field=field, value=exc.value) from None
        return events
    return [from_canopsis(doc, now=now, source=source, key=key)]


def _text(doc: Mapping[str, Any], field: str, *, required: bool = False) -> str:
    value = doc.get(field)
    if value is None or value == "":
        if required:
            raise EventFormatError("is required", field=field, value=value)
        return ""
    if not isinstance(value, str):
        raise EventFormatError("expected a string", field=field, value=value)
    return value


def _int(doc: Mapping[str, Any], field: str, *, default: int, allowed: range) -> int:
    value = doc.get(field, default)
    if value is None:
        return default
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value not in allowed:
        raise EventFormatError(f"expected an integer from {allowed.start} to {allowed.stop - 1}",
                               field=field, value=value)
    return value


def _timestamp(value: object, now: float) -> float:
    if value is None or value == "":
        return now
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            raise EventFormatError("expected Unix seconds", field="timestamp",
                                   value=value) from None
    if isinstance(value, bool) or not isinstance(value, int | float) \
            or not math.isfinite(value) or value <= 0:
        raise EventFormatError("expected Unix seconds", field="timestamp", value=value)
    return float(value)


def _tags(value: object) -> tuple[str, ...]:
    if value is None or value == "":
        return ()
    if isinstance(value, str):
        return (value,)
    if isinstance(value, Mapping):  # Go-era Canopsis tags are {name: value}
        return tuple(f"{k}={v}" if v not in (None, "") else str(k) for k, v in value.items())
    if isinstance(value, Sequence) and all(isinstance(t, str) for t in value):
        return tuple(value)
    raise EventFormatError("expected a list of strings", field="tags", value=value)


def _attrs(doc: Mapping[str, Any]) -> dict[str, str]:
    attrs: dict[str, str] = {}
    for key, value in doc.items():
        if key in _MAPPED or key in _IGNORED or value is None:
            continue
        if isinstance(value, bool):
            attrs[key] = "true" if value else "false"
        elif isinstance(value, str | int | float):
            attrs[key] = str(value)
        elif isinstance(value, Sequence) and all(isinstance(v, str) for v in value):
            attrs[key] = ",".join(value)  # hostgroups, servicegroups
        else:
            raise EventFormatError("expected a string, a number or a list of strings",
                                   field=str(key), value=value)
    return attrs


def _perf(doc: Mapping[str, Any]) -> list[PerfMetric]:
    metrics: dict[str, PerfMetric] = {}
    text = doc.get("perf_data")
    if text not in (None, ""):
        if not isinstance(text, str):
            raise EventFormatError("expected a Nagios perf string", field="perf_data",
                                   value=text)
        metrics.update((m.metric, m) for m in parse_perf_data(text))
    array = doc.get("perf_data_array")
    if array not in (None, []):
        if not isinstance(array, Sequence) or isinstance(array, str):
            raise EventFormatError("expected a list of metrics", field="perf_data_array",
                                   value=array)
        for index, item in enumerate(array):
            metric = _perf_item(item, f"perf_data_array[{index}]")
            metrics[metric.metric] = metric  # the array wins, as in the Canopsis cleaner
    return list(metrics.values())


def _perf_item(item: object, field: str) -> PerfMetric:
    if not isinstance(item, Mapping):
        raise EventFormatError("expected an object", field=field, value=item)
    name = item.get("metric")
    if not isinstance(name, str) or not name:
        raise EventFormatError("is required", field=f"{field}.metric", value=name)
    kind = item.get("type") or "GAUGE"
    if kind not in PERF_TYPES:
        raise EventFormatError(f"expected one of {', '.join(sorted(PERF_TYPES))}",
                               field=f"{field}.type", value=kind)
    numbers: dict[str, float | None] = {}
    for key in ("value", "min", "max", "warn", "crit"):
        raw = item.get(key)
        if raw is None or raw == "":
            numbers[key] = None
            continue
        if isinstance(raw, bool) or not isinstance(raw, int | float | str):
            raise EventFormatError("expected a number", field=f"{field}.{key}", value=raw)
        try:
            number = float(raw)
        except ValueError:
            raise EventFormatError("expected a number", field=f"{field}.{key}",
                                   value=raw) from None
        if not math.isfinite(number):
            raise EventFormatError("expected a finite number", field=f"{field}.{key}",
                                   value=raw)
        numbers[key] = number
    value = numbers["value"]
    if value is None:
        raise EventFormatError("is required", field=f"{field}.value", value=item.get("value"))
    unit = item.get("unit") or ""
    if not isinstance(unit, str):
        raise EventFormatError("expected a string", field=f"{field}.unit", value=unit)
    warn, crit = numbers["warn"], numbers["crit"]
    return PerfMetric(metric=name, value=value, unit=unit, type=str(kind),
                      warn=None if warn is None else _fmt(warn),
                      crit=None if crit is None else _fmt(crit),
                      min=numbers["min"], max=numbers["max"])


def _fmt(number: float) -> str:
    return str(int(number)) if number.is_integer() else repr(number)


def _measurement(metric: PerfMetric, subject: str, plugin: str, ts: float) -> Measurement:
    labels: dict[str, str] = {}
    parts = []
    for label, name in (("component", subject), ("resource", plugin), ("metric", metric.metric)):
        clean = _BAD_NAME_CHARS.sub("_", name).strip("_") or "_"
        if clean != name:
            labels[label] = name  # the original, so nothing is lost to the cleaning
        parts.append(clean)
    key = SeriesKey.make(parts[0], parts[1], parts[2], labels)
    return Measurement(key=key, ts=ts, value=metric.value, unit=metric.unit)
