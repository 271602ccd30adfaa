"""Python clients for watchkeeper's REST API. Needs only httpx and msgspec."""

from __future__ import annotations

from watchkeeper.client._native import AsyncClient, Client
from watchkeeper.errors import ClientError, HTTPStatusError, TransportError

__all__ = ["AsyncClient", "Client", "ClientError", "HTTPStatusError", "TransportError"]
