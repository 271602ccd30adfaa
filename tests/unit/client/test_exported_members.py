"""The public surface of watchkeeper.client and of the esmond compatibility module."""

from __future__ import annotations

import watchkeeper.client
import watchkeeper.client.esmond


def test_client_exports() -> None:
    exported = sorted(name for name in dir(watchkeeper.client) if not name.startswith("_")
                      and name not in {"annotations"})
    assert sorted(watchkeeper.client.__all__) == watchkeeper.client.__all__
    assert set(watchkeeper.client.__all__) <= set(exported)


def test_inventory_client_has_a_public_import_path() -> None:
    """`from watchkeeper.client import InventoryClient`, not the private module."""
    from watchkeeper.client import InventoryClient
    from watchkeeper.client._inventory import InventoryClient as Private

    assert "InventoryClient" in watchkeeper.client.__all__
    assert InventoryClient is Private


def test_esmond_module_has_what_scripts_import() -> None:
    for name in ("ApiConnect", "ApiFilters", "MetadataPost", "EventTypePost",
                 "EventTypeBulkPost", "MetadataPostException", "EventTypePostException",
                 "EventTypeBulkPostException", "ApiConnectWarning", "DataPayload",
                 "DataPoint", "DataHistogram", "Metadata", "EventType", "Summary"):
        assert name in watchkeeper.client.esmond.__all__
        assert hasattr(watchkeeper.client.esmond, name)
