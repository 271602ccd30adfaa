"""Prometheus metric metadata: what a family's ``# TYPE``, ``# HELP`` and ``# UNIT`` say.

Remote write sends it (``WriteRequest.metadata``) and the ``prometheus`` collector scrapes
it; ``/prometheus/api/v1/metadata`` answers it (decision D46).
"""

from __future__ import annotations

from typing import Final

import msgspec

METRIC_TYPES: Final = ("unknown", "counter", "gauge", "histogram", "gaugehistogram", "summary",
                       "info", "stateset")
"""The types a family can have, as Prometheus' API spells them (remote write's
``MetricMetadata.MetricType`` values in this order)."""


class MetricMetadata(msgspec.Struct, frozen=True):
    """One family's metadata, as Prometheus' ``/api/v1/metadata`` shows it."""

    type: str
    help: str
    unit: str


Families = tuple[tuple[str, MetricMetadata], ...]
"""Metadata by family name, in name order."""
