"""Remote collectors: jobs fetched from a server in one request, results sent in batches,
spooled on disk while the server is unreachable."""

from __future__ import annotations

from watchkeeper.collect.remote.client import RemoteServer, ServerUnavailable
from watchkeeper.collect.remote.daemon import RemoteCollector
from watchkeeper.collect.remote.spool import Spool

__all__ = ["RemoteCollector", "RemoteServer", "ServerUnavailable", "Spool"]
