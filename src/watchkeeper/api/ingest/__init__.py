"""The ecosystem's ingest protocols: Prometheus remote write, InfluxDB line protocol,
Graphite plaintext, and Prometheus federation out. Series are named by
:mod:`watchkeeper.model.promlabels` (Prometheus) and the rules in ``docs/ecosystem.md``."""
from __future__ import annotations

from watchkeeper.api.ingest.metadata import FILE_NAME as METADATA_FILE
from watchkeeper.api.ingest.metadata import MetadataStore
from watchkeeper.api.ingest.routes import PATHS, IngestApi

__all__ = ["METADATA_FILE", "PATHS", "IngestApi", "MetadataStore"]
