"""watchkeeper keeps watch over networks and services.

The public surface for plugin authors is re-exported here; subsystems live in
``watchkeeper.collect``, ``.pipeline``, ``.inventory`` and ``.archive``.
"""

from __future__ import annotations

from watchkeeper._version import __version__

__all__ = ["__version__"]
