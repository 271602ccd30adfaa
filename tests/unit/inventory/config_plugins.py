"""Model collector plugins for the configuration tests, referred to as module:Class."""

from __future__ import annotations

from watchkeeper.inventory import (
    BuildContext,
    CollectorOptions,
    Graph,
    GraphEdit,
    ModelCollector,
    Notification,
    NotificationEndpoint,
)


class Watched(ModelCollector):
    """A required option, and an option that becomes a notification pattern."""

    class Options(CollectorOptions, frozen=True, kw_only=True):
        url: str
        event_type: str = r"rack\.moved$"

    options: Options

    async def build(self, ctx: BuildContext) -> Graph:
        return Graph()

    def endpoints(self) -> list[NotificationEndpoint]:
        return [NotificationEndpoint(handler=self._moved, event_type=self.options.event_type)]

    def _moved(self, edit: GraphEdit, notification: Notification) -> None:
        """Nothing to do: the tests only load it."""


class Refuses(ModelCollector):
    """Its constructor fails, as a plugin's might."""

    def __init__(self, options: CollectorOptions, *, name: str) -> None:
        raise RuntimeError("no licence file")

    async def build(self, ctx: BuildContext) -> Graph:  # pragma: no cover - never built
        return Graph()
