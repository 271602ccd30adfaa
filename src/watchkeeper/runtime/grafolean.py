"""``/grafolean/api``: Grafolean bots' view of the configuration remote collectors get."""

from __future__ import annotations

from starlette.routing import BaseRoute

from watchkeeper.api.grafolean import GrafoleanApi
from watchkeeper.archive import Archive
from watchkeeper.archive.tokens import TokenStore
from watchkeeper.clock import Clock
from watchkeeper.runtime.collect import ConfigSource
from watchkeeper.settings import Locator, Settings


def grafolean_routes(settings: Settings, locator: Locator, *, archive: Archive,
                     tokens: TokenStore | None, clock: Clock) -> list[BaseRoute]:
    """The routes, when there is a token store to check bots against (none: no routes,
    since every route but the status needs a bot token)."""
    if tokens is None:
        return []
    api = GrafoleanApi(config=ConfigSource(settings, locator), tokens=tokens,
                       write=archive.write, now=clock.time)
    return api.routes()
