"""A bounded memory of recently seen ids, O(1) per id: the tool for at-least-once dedup."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence


class RecentIds:
    """Remembers at least the last ``window`` ids added (and at most twice that).

    Two generations of sets: when the current one fills up it becomes the previous one
    and the oldest generation is forgotten at once. (Evicting one by one from an ordered
    dict looks cheaper but is not: deleted slots at its front make each eviction slower.)
    """

    __slots__ = ("_current", "_previous", "_size")

    def __init__(self, window: int, ids: Iterable[str] = ()) -> None:
        self._size = max(1, window)
        self._current: set[str] = set()
        self._previous: set[str] = set()
        for key in ids:
            self.add(key)

    def add(self, key: str) -> bool:
        """Remember ``key``; False when it was already known (a duplicate)."""
        if key in self._current or key in self._previous:
            return False
        current = self._current
        current.add(key)
        if len(current) >= self._size:
            self._previous, self._current = current, set()
        return True

    def add_all(self, keys: Sequence[str]) -> bool:
        """Remember every key of ``keys`` at once, when that is exactly what :meth:`add`
        one by one would do with each returning True: all are new, none repeats, and the
        current generation does not fill up on the way. True when done; False, with
        nothing changed, otherwise (then add them one by one). A few set operations in C
        instead of a Python call per key: the fast path of de-duplicating a batch.
        """
        current = self._current
        size = len(current)
        if (size + len(keys) >= self._size or not current.isdisjoint(keys)
                or not self._previous.isdisjoint(keys)):
            return False
        current.update(keys)
        if len(current) != size + len(keys):  # a key repeats within ``keys``: undo
            current.difference_update(keys)
            return False
        return True

    def discard(self, key: str) -> None:
        """Forget ``key`` (undo an :meth:`add` whose work did not happen)."""
        self._current.discard(key)
        self._previous.discard(key)

    def __contains__(self, key: object) -> bool:
        return key in self._current or key in self._previous

    def __len__(self) -> int:
        return len(self._current) + len(self._previous)

    def __iter__(self) -> Iterator[str]:
        yield from self._previous
        yield from self._current
