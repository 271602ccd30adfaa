"""The inventory: the devices and topology watchkeeper keeps watch over."""

from __future__ import annotations

from watchkeeper.inventory.static import StaticInventory

__all__ = ["StaticInventory"]
