"""The measurement archive: series of points, rollups, and the backends that store them."""

from __future__ import annotations

from watchkeeper.archive.abc import Archive, Columns, Points, Rollup, SeriesMeta, SeriesQuery

__all__ = ["Archive", "Columns", "Points", "Rollup", "SeriesMeta", "SeriesQuery"]
