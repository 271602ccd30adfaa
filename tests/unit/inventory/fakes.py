"""A model collector whose source and builds the tests control."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from watchkeeper.inventory import (
    BuildContext,
    CollectorOptions,
    Graph,
    GraphEdit,
    ModelCollector,
    Notification,
    NotificationEndpoint,
    node_id,
)
from watchkeeper.inventory.graph import HAS_INTERFACE


async def until(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    """Wait (in real time: builds may hop to a worker thread) until ``predicate()`` holds."""
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.001)


def add_device(edit: GraphEdit, name: str) -> None:
    """A device always comes with its eth0, in one change (the invariant readers check)."""
    device = edit.add("device", name)
    iface = edit.add("interface", name, "eth0")
    edit.relate(device.id, HAS_INTERFACE, iface.id)


def whole(graph: Graph) -> bool:
    """Every device has exactly its eth0, and every interface its device."""
    for node in graph.nodes("device"):
        if [n.name for n in graph.neighbours(node.id, HAS_INTERFACE)] != ["eth0"]:
            return False
    return all(graph.neighbours(n.id, HAS_INTERFACE, "in") for n in graph.nodes("interface"))


def created(name: str) -> Notification:
    return Notification(publisher_id="cmdb.paris", event_type="device.created",
                        payload={"name": name})


def deleted(name: str) -> Notification:
    return Notification(publisher_id="cmdb.paris", event_type="device.deleted",
                        payload={"name": name})


class FakeSource(ModelCollector):
    """Builds a device per name in ``source``; builds wait on ``gate`` when one is set."""

    def __init__(self, name: str = "fake", *, period: float = 60.0, timeout: float = 30.0,
                 source: list[str] | None = None) -> None:
        super().__init__(CollectorOptions(period=period, timeout=timeout), name=name)
        self.source = list(source or [])
        self.gate: asyncio.Event | None = None
        self.building = asyncio.Event()
        self.fail: Exception | None = None
        self.read_late = False  # read the source when the build ends, not when it starts
        self.builds = 0
        self.cancelled = 0
        self.closed = False

    async def build(self, ctx: BuildContext) -> Graph:
        self.builds += 1
        names = list(self.source)  # the source as of the build's start
        self.building.set()
        try:
            if self.gate is not None:
                await self.gate.wait()
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        finally:
            self.building.clear()
        if self.fail is not None:
            raise self.fail
        if self.read_late:
            names = list(self.source)
        edit = Graph().edit()
        for name in names:
            add_device(edit, name)
        return edit.commit()

    def endpoints(self) -> list[NotificationEndpoint]:
        return [
            NotificationEndpoint(handler=self._created, publisher_id=r"cmdb\.",
                                 event_type=r"device\.created$"),
            NotificationEndpoint(handler=self._deleted, publisher_id=r"cmdb\.",
                                 event_type=r"device\.deleted$"),
        ]

    def _created(self, edit: GraphEdit, notification: Notification) -> None:
        name = notification.payload["name"]
        if name == "poison":
            edit.add("device", name)  # half done, then the handler fails
            raise ValueError("poisoned payload")
        add_device(edit, name)

    def _deleted(self, edit: GraphEdit, notification: Notification) -> None:
        name = notification.payload["name"]
        edit.remove(node_id("interface", name, "eth0"))
        edit.remove(node_id("device", name))

    async def aclose(self) -> None:
        self.closed = True
