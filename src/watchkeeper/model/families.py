"""Prometheus metric metadata: what a family's ``# TYPE``, ``# HELP`` and ``# UNIT`` say.

Remote write sends it (``WriteRequest.metadata``) and the ``prometheus`` collector scrapes
it; ``/prometheus/api/v1/metadata`` answers it (decision D46).
"""

from __future__ import annotations

import msgspec


class MetricMetadata(msgspec.Struct, frozen=True):
    """One family's metadata, as Prometheus' ``/api/v1/metadata`` shows it."""

    type: str
    help: str
    unit: str


Families = tuple[tuple[str, MetricMetadata], ...]
"""Metadata by family name, in name order."""
