"""Python clients for watchkeeper's REST API. Needs only httpx and msgspec.

``Client``/``AsyncClient`` speak the native ``/api/v1`` API (series, points, alarms, the
jobs of ``watchkeeper up`` and their reports, and, with an admin token, API tokens);
``ArchiveClient``/``AsyncArchiveClient`` the esmond (perfSONAR archive) API of watchkeeper
or of any esmond server; ``InventoryClient`` the live inventory (``/api/v1/inventory``).
``watchkeeper.client.esmond`` is a drop-in for esmond-client's query/post classes.
The native clients answer with the frozen msgspec structs of :mod:`watchkeeper.wire`
(``SeriesList``, ``CollectJobs``, ``CollectReport``, ``TokenInfo``, ``InventoryNodeDetail``...),
the very shapes the server encodes.
"""

from __future__ import annotations

from watchkeeper.client._archive import ArchiveClient, AsyncArchiveClient
from watchkeeper.client._archive_models import (
    BulkData,
    DataHistogram,
    DataPayload,
    DataPoint,
    EventType,
    Metadata,
    NewMetadata,
    Summary,
)
from watchkeeper.client._inventory import InventoryClient
from watchkeeper.client._native import AsyncClient, Client
from watchkeeper.errors import ClientError, HTTPStatusError, TransportError

__all__ = [
    "ArchiveClient",
    "AsyncArchiveClient",
    "AsyncClient",
    "BulkData",
    "Client",
    "ClientError",
    "DataHistogram",
    "DataPayload",
    "DataPoint",
    "EventType",
    "HTTPStatusError",
    "InventoryClient",
    "Metadata",
    "NewMetadata",
    "Summary",
    "TransportError",
]
