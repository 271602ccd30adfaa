"""Measurements: one value (a number, a histogram or a JSON object) of one series at one time.

A series is named by a :class:`SeriesKey`: the subject measured (a device or target),
the plugin that measured it, the metric, and optional labels. Its text form is
``subject/plugin/metric`` followed by ``{label="value",...}`` when labels exist, e.g.
``localhost/system/cpu.percent`` or ``core1/snmp/if.in_octets{if="eth0"}``.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from typing import Any

import msgspec

from watchkeeper.errors import InvalidData

SCHEMA_VERSION = 1

_NAME = re.compile(r"^[A-Za-z0-9_.:@-]+$")
_LABEL_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_LABEL = re.compile(r'([A-Za-z_][A-Za-z0-9_]*)="((?:[^"\\]|\\.)*)"')


class SeriesKey(msgspec.Struct, frozen=True, kw_only=True, order=True, gc=False,
                cache_hash=True):
    """The identity of a series."""

    subject: str
    plugin: str
    metric: str
    labels: tuple[tuple[str, str], ...] = ()

    @classmethod
    def make(
        cls, subject: str, plugin: str, metric: str, labels: Mapping[str, str] | None = None
    ) -> SeriesKey:
        """Build a validated key; labels are sorted so equal sets give equal keys."""
        for field, value in (("subject", subject), ("plugin", plugin), ("metric", metric)):
            if not _NAME.match(value):
                raise InvalidData(
                    "must be non-empty and use only letters, digits and _ . : @ -",
                    field=field,
                    value=value,
                )
        pairs = tuple(sorted((labels or {}).items()))
        for name, _ in pairs:
            if not _LABEL_NAME.match(name):
                raise InvalidData("label names are identifiers", field="labels", value=name)
        return cls(subject=subject, plugin=plugin, metric=metric, labels=pairs)

    @classmethod
    def parse(cls, text: str) -> SeriesKey:
        """Read the text form back; raises :class:`InvalidData` naming what is wrong.

        Keys are immutable, so the answers for recent texts are remembered: a poller or
        a bulk write names the same series over and over.
        """
        return _parse_key(text)

    def __str__(self) -> str:
        return _key_text(self)


@functools.lru_cache(maxsize=65_536)
def _key_text(key: SeriesKey) -> str:
    """The text form, remembered: APIs name thousands of series per answer."""
    base = f"{key.subject}/{key.plugin}/{key.metric}"
    if not key.labels:
        return base
    inner = ",".join(f'{k}="{_escape(v)}"' for k, v in key.labels)
    return f"{base}{{{inner}}}"


@functools.lru_cache(maxsize=65_536)
def _parse_key(text: str) -> SeriesKey:
    head, brace, rest = text.partition("{")
    parts = head.split("/")
    if len(parts) != 3:
        raise InvalidData("expected subject/plugin/metric[{labels}]", field="series",
                          value=text)
    labels: dict[str, str] = {}
    if brace:
        if not rest.endswith("}"):
            raise InvalidData("labels must end with '}'", field="series", value=text)
        body = rest[:-1]
        pos = 0
        while pos < len(body):
            match = _LABEL.match(body, pos)
            if not match:
                raise InvalidData(f"bad label at {body[pos:]!r}", field="series", value=text)
            labels[match.group(1)] = _unescape(match.group(2))
            pos = match.end()
            if pos < len(body):
                if body[pos] != ",":
                    raise InvalidData("labels are separated by ','", field="series", value=text)
                pos += 1
    return SeriesKey.make(parts[0], parts[1], parts[2], labels)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _unescape(value: str) -> str:
    return re.sub(r"\\(.)", lambda m: "\n" if m.group(1) == "n" else m.group(1), value)


class Measurement(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """One sample of a series: a number, a histogram ``{bucket: count}``, or an object.

    ``obj`` holds any JSON value other than null (esmond's percentage
    ``{"numerator": n, "denominator": d}``, subintervals, packet traces...): a series
    keeps one kind, number, histogram or object, for all its points.
    """

    key: SeriesKey
    ts: float
    value: float | None = None
    histogram: dict[str, int] | None = None
    obj: Any | None = None
    unit: str = ""
    v: int = SCHEMA_VERSION

    def __post_init__(self) -> None:
        given = (self.value is not None) + (self.histogram is not None) + (self.obj is not None)
        if given != 1:
            raise InvalidData(
                "a measurement has exactly one of value, histogram and obj",
                field="value",
                value=self.value,
            )
