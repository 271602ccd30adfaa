"""The REST API: native ``/api/v1`` and, with the archive, esmond-compatible routes."""

from __future__ import annotations

from watchkeeper.api.app import create_app

__all__ = ["create_app"]
