"""Which partition an entity belongs to: the one routing rule every bus and engine shares."""

from __future__ import annotations

import zlib
from collections.abc import Sequence

from watchkeeper.model import Event

_MEMO_LIMIT = 1 << 18


class EntityIds:
    """``Event.entity_id``, memoised by identity fields (quoting costs ~1 µs per event).

    Bounded: the memo is simply cleared when it grows past its limit.
    """

    def __init__(self, limit: int = _MEMO_LIMIT) -> None:
        self._memo: dict[tuple[str, str, str], str] = {}
        self._limit = limit

    def __call__(self, event: Event) -> str:
        key = (event.source_type, event.component, event.resource)
        entity = self._memo.get(key)
        if entity is None:
            if len(self._memo) >= self._limit:
                self._memo.clear()
            entity = self._memo[key] = event.entity_id
        return entity

    def of_batch(self, events: Sequence[Event]) -> list[str]:
        """``[self(e) for e in events]``, without a Python call per event."""
        memo = self._memo
        out: list[str] = []
        append = out.append
        for event in events:
            key = (event.source_type, event.component, event.resource)
            entity = memo.get(key)
            if entity is None:
                if len(memo) >= self._limit:
                    memo.clear()
                entity = memo[key] = event.entity_id
            append(entity)
        return out


def partition_of(entity_id: str, partitions: int) -> int:
    """A stable partition number in ``range(partitions)``; crc32 is the same in every process."""
    if partitions <= 1:
        return 0
    return zlib.crc32(entity_id.encode()) % partitions


def split(events: Sequence[Event], partitions: int,
          entity_ids: EntityIds | None = None) -> dict[int, list[Event]]:
    """The events of a batch grouped by partition, order kept within each group."""
    if partitions <= 1:
        return {0: list(events)}
    ids = entity_ids or EntityIds()
    groups: dict[int, list[Event]] = {}
    for event in events:
        groups.setdefault(partition_of(ids(event), partitions), []).append(event)
    return groups
