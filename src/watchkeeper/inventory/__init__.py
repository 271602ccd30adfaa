"""The inventory: the devices and topology watchkeeper keeps watch over.

``StaticInventory`` is the declared device list the scheduler selects from at start-up;
the live model (``InventoryManager``) keeps a versioned graph per model collector, rebuilt
on schedule and kept fresh by notifications between rebuilds.
"""

from __future__ import annotations

from watchkeeper.inventory.abc import (
    BuildContext,
    CollectorOptions,
    ModelCollector,
    Notification,
    NotificationEndpoint,
)
from watchkeeper.inventory.diff import GraphDiff, diff
from watchkeeper.inventory.graph import Graph, GraphEdit, Node, Relation, node_id
from watchkeeper.inventory.live import LiveModel, LiveStats, Snapshot, VersionGone
from watchkeeper.inventory.lookup import DeviceLookup, devices_of
from watchkeeper.inventory.manager import Delivery, InventoryManager, UnknownCollector
from watchkeeper.inventory.static import StaticInventory

__all__ = [
    "BuildContext",
    "CollectorOptions",
    "Delivery",
    "DeviceLookup",
    "Graph",
    "GraphDiff",
    "GraphEdit",
    "InventoryManager",
    "LiveModel",
    "LiveStats",
    "ModelCollector",
    "Node",
    "Notification",
    "NotificationEndpoint",
    "Relation",
    "Snapshot",
    "StaticInventory",
    "UnknownCollector",
    "VersionGone",
    "devices_of",
    "diff",
    "node_id",
]
