"""esmond compatibility: the perfSONAR measurement archive's data model on watchkeeper's archive.

* :mod:`.types`: the 49 event types, data types and allowed summaries;
* :mod:`.values`: checking posted values; :mod:`.summaries`: summary math (both pure);
* :mod:`.model`: metadata value types, metadata POST parsing and checksums (pure);
* :mod:`.series`: which archive series hold base data and summaries (pure);
* :mod:`.abc`: the metadata store contract, with :mod:`.sqlite` and :mod:`.postgres`;
* :mod:`.service`: :class:`EsmondArchive`, writes with summaries, reads;
* :mod:`.fixtures`: loading esmond's Django fixtures and test data.

The REST routes are in :mod:`watchkeeper.api.esmond`.
"""

from __future__ import annotations

from watchkeeper.archive.esmond.abc import MetadataQuery, MetadataStore
from watchkeeper.archive.esmond.model import Metadata, MetadataSpec, parse_metadata
from watchkeeper.archive.esmond.service import EsmondArchive, RawPoint
from watchkeeper.archive.esmond.types import EVENT_TYPES, Summary

__all__ = [
    "EVENT_TYPES",
    "EsmondArchive",
    "Metadata",
    "MetadataQuery",
    "MetadataSpec",
    "MetadataStore",
    "RawPoint",
    "Summary",
    "parse_metadata",
]
