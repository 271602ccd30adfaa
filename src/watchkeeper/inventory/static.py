"""The static inventory: devices declared in the configuration."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from watchkeeper.errors import InventoryError
from watchkeeper.model import Device


class StaticInventory:
    """A fixed set of devices, selectable by name, ``tag:NAME``, ``group:NAME`` or ``*``."""

    def __init__(self, devices: Iterable[Device]) -> None:
        self._devices: dict[str, Device] = {}
        for device in devices:
            if device.name in self._devices:
                raise InventoryError(f"device {device.name!r} is declared twice")
            self._devices[device.name] = device

    def devices(self) -> list[Device]:
        return list(self._devices.values())

    def get(self, name: str) -> Device:
        try:
            return self._devices[name]
        except KeyError:
            raise InventoryError(f"no device {name!r} in the inventory") from None

    def select(self, selectors: Sequence[str]) -> list[Device]:
        """Devices matching any selector, in inventory order.

        A plain name that matches no device is an error (a typo must not silently
        select nothing); tag and group selectors may match none.
        """
        for selector in selectors:
            if selector != "*" and ":" not in selector and selector not in self._devices:
                raise InventoryError(f"no device {selector!r} in the inventory "
                                     f"(devices: {', '.join(self._devices) or 'none'})")
        return [d for d in self._devices.values() if any(d.matches(s) for s in selectors)]
