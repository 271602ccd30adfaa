"""What the built-in model collectors' notification handlers share: reading payload fields.

A handler that cannot use a notification raises :class:`BadNotification`, naming the
payload field and what is wrong with it; the live model logs it, counts it and leaves
no trace of that notification (the others go on).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

from watchkeeper.errors import InventoryError
from watchkeeper.inventory.abc import CollectorOptions, Notification
from watchkeeper.inventory.graph import DEVICE, HAS_INTERFACE, INTERFACE, GraphEdit, Node, node_id

# Who may tell the built-in collectors about changes, unless their `publishers` option says
# otherwise: the pipeline's inventory_notify engine (`pipeline.<engine name>`), trap
# receivers (`snmp-trap.<agent>`) and operators' tools (`operator.<who>`).
DEFAULT_PUBLISHERS = r"(?:pipeline|snmp-?trap|operator)(?:\.|$)"


class BadNotification(InventoryError, ValueError):
    """A notification whose payload a handler cannot use; ``field`` names the culprit."""

    def __init__(self, notification: Notification, field: str, problem: str) -> None:
        self.field = field
        super().__init__(f"{notification.event_type} from {notification.publisher_id}: "
                         f"payload field {field!r} {problem}")


class NotifiedOptions(CollectorOptions, frozen=True, kw_only=True):
    """Options of a model collector that takes notifications: who may send them."""

    publishers: str = DEFAULT_PUBLISHERS  # a regex on the publisher id

    def __post_init__(self) -> None:
        super().__post_init__()
        try:
            re.compile(self.publishers)
        except re.error as exc:  # a config error naming the option
            raise ValueError(f"`publishers` is not a valid regex: {exc}") from None


def text(notification: Notification, *names: str) -> str:
    """The first of ``names`` present in the payload with a non-empty value, as text;
    BadNotification naming the field when none is there or the value is not text."""
    value = optional_text(notification, *names)
    if value is None:
        others = f" (or {', '.join(repr(n) for n in names[1:])})" if len(names) > 1 else ""
        raise BadNotification(notification, names[0], f"is missing{others}")
    return value


def optional_text(notification: Notification, *names: str) -> str | None:
    """:func:`text`, or None when no field of ``names`` is there."""
    for name, value in _present(notification, names):
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise BadNotification(notification, name,
                                  f"must be text, not {type(value).__name__}")
        return str(value)
    return None


def whole_number(notification: Notification, *names: str) -> int | None:
    """The first of ``names`` present, as a non-negative whole number (digits are fine)."""
    for name, value in _present(notification, names):
        if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            return value
        if isinstance(value, str) and value.strip().isdigit():
            return int(value)
        raise BadNotification(notification, name,
                              f"must be a whole number, not {value!r}")
    return None


def _present(notification: Notification, names: tuple[str, ...]) -> Iterator[tuple[str, Any]]:
    """The fields of ``names`` the payload holds with a value (not null, not empty), in
    order: readers take the first."""
    payload = notification.payload
    for name in names:
        value = payload.get(name)
        if value is not None and value != "":
            yield name, value


def mapping(notification: Notification, name: str) -> Mapping[str, Any] | None:
    value = notification.payload.get(name)
    if value is None:
        return None
    if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
        raise BadNotification(notification, name, "must be an object")
    return value


def device_interface(edit: GraphEdit, device: str, *, name: str | None = None,
                     index: int | None = None) -> Node | None:
    """A device's interface in the draft, by name (its id; else its ``descr``) or by
    ``index`` (its IF-MIB ifIndex attribute); None when the model has no such interface."""
    if name is not None:
        node = edit.node(node_id(INTERFACE, device, name))
        if node is not None:
            return node
    device_id = node_id(DEVICE, device)
    for relation in edit.relations_of(device_id):
        if relation.kind != HAS_INTERFACE or relation.source != device_id:
            continue
        port = edit.node(relation.target)
        if port is None:
            continue
        if name is not None and port.attrs.get("descr") == name:
            return port
        if index is not None and port.attrs.get("index") == index:
            return port
    return None

