"""The order full chunks are appended in: rows fill the SQLite pages they land in."""

from __future__ import annotations

import math

import numpy as np

from watchkeeper.archive.backends._chunks import ChunkRow
from watchkeeper.archive.backends._store import PAGE_SIZE, page_order

ROOM = PAGE_SIZE - 8  # a leaf page less its header
CELL = 32  # a row's bytes besides its blob (about)


def pages_filled(rows: list[ChunkRow]) -> int:
    """Pages used when each row goes to the last page if it fits, else to a new one."""
    pages, left = 0, 0
    for row in rows:
        size = len(row.blob) + CELL
        if size > left:
            pages, left = pages + 1, ROOM
        left -= size
    return pages


def rows_like_a_compaction(count: int) -> list[ChunkRow]:
    """Series in order, of sizes like gauges, counters and noise (9, 9, 2 of 20)."""
    rng = np.random.default_rng(1)
    sizes = [int(rng.normal(800 if i % 20 < 9 else 1650 if i % 20 < 18 else 3800, 40))
             for i in range(count)]
    return [ChunkRow(i, 0, 1, 480, bytes(size)) for i, size in enumerate(sizes)]


def test_page_order_is_a_permutation() -> None:
    rows = rows_like_a_compaction(1000)

    ordered = page_order(rows)

    assert sorted(row.sid for row in ordered) == list(range(1000))


def test_page_order_leaves_little_room_in_pages() -> None:
    """Appended in series order, ~7 % of each page stays empty; in page order, ~2 %."""
    rows = rows_like_a_compaction(1000)
    least = math.ceil(sum(len(row.blob) + CELL for row in rows) / ROOM)

    as_given, ordered = pages_filled(rows), pages_filled(page_order(rows))

    assert as_given > least * 1.04
    assert ordered <= least * 1.02 + 1


def test_page_order_of_nothing_and_of_huge_rows() -> None:
    huge = [ChunkRow(1, 0, 1, 2, bytes(3 * PAGE_SIZE)), ChunkRow(2, 0, 1, 2, b"x")]

    assert page_order([]) == []
    assert {row.sid for row in page_order(huge)} == {1, 2}
