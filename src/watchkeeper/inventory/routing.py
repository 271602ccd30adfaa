"""Which endpoints a notification goes to: filter rules, with a per-route cache.

Publisher and event-type rules depend only on the pair, so the endpoints matching a pair
are worked out once and cached; payload rules (rare) are checked per notification.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Generic, TypeVar

from watchkeeper.inventory.abc import Notification, NotificationEndpoint

T = TypeVar("T")

_CACHE_MAX = 4096  # distinct (publisher, event type) pairs remembered; cleared when full


class Router(Generic[T]):
    """Routes notifications to ``(target, endpoint)`` pairs, in registration order."""

    def __init__(self, routes: Sequence[tuple[T, NotificationEndpoint]]) -> None:
        self._routes = tuple(routes)
        self._cache: dict[tuple[str, str], tuple[tuple[T, NotificationEndpoint], ...]] = {}

    def __len__(self) -> int:
        return len(self._routes)

    def route(self, notification: Notification) -> list[tuple[T, NotificationEndpoint]]:
        pair = (notification.publisher_id, notification.event_type)
        candidates = self._cache.get(pair)
        if candidates is None:
            if len(self._cache) >= _CACHE_MAX:
                self._cache.clear()  # publishers with unbounded names must not grow memory
            candidates = self._cache[pair] = tuple(
                (target, endpoint) for target, endpoint in self._routes
                if endpoint.matches_route(*pair)
            )
        return [(target, endpoint) for target, endpoint in candidates
                if not endpoint.has_payload_rule or endpoint.matches_payload(notification)]
