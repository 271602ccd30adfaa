"""A persistent hash map: every update returns a new map sharing all untouched structure.

The map is a hash trie with 32-way branches (lists) and small dict leaves. An update copies
the path from the root to one leaf (three 32-slot lists and one dict of a few entries at
100,000 keys), so old versions stay valid and cost nothing to keep while a new one is
made. Taking a snapshot is keeping a reference.

Many updates at once (one notification touching several keys, a batch of them) go
through :meth:`PMap.update`: it copies each touched branch or leaf the first time a key
reaches it and changes its own copies in place after that, so a batch costs one copy per
touched node instead of one path copy per key (the root, shared by every key, is copied
once).

Nothing here is ever mutated once reachable from a :class:`PMap`; branches are lists only
because an update fills its own fresh copies in place.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any, Generic, TypeVar, cast

K = TypeVar("K")
V = TypeVar("V")

_BITS = 5
_WIDTH = 1 << _BITS
_MASK = _WIDTH - 1
_LEAF_MAX = 32  # a leaf splits when an insert takes it past this
_MAX_SHIFT = 60  # past 64 hash bits every key collides: leaves then just grow
# Bulk builds aim at leaves of at most this many keys on average (half the split size, so
# inserts rarely split them). Small leaves keep each update's copy (and the old version's
# release) cheap; bigger ones would build a little faster.
_BULK_LEAF = 16

# A trie node is a leaf (dict key -> value) or a branch (list of _WIDTH children).
_Node = dict[Any, Any] | list[Any]


class PMap(Generic[K, V]):
    """An immutable mapping; :meth:`set`, :meth:`remove` and :meth:`update` make new ones."""

    __slots__ = ("_len", "_root")

    def __init__(self, root: _Node | None = None, length: int = 0) -> None:
        self._root: _Node = {} if root is None else root
        self._len = length

    @classmethod
    def of(cls, mapping: dict[K, V]) -> PMap[K, V]:
        """A map of ``mapping``'s items (copied: the dict stays the caller's)."""
        return cls(_grow(mapping if len(mapping) > _LEAF_MAX else dict(mapping), 0),
                   len(mapping))

    @classmethod
    def from_items(cls, items: Iterable[tuple[K, V]]) -> PMap[K, V]:
        flat = dict(items)
        return cls(_grow(flat, 0), len(flat))

    # ------------------------------------------------------------- reading

    def get(self, key: K, default: V | None = None) -> V | None:
        node = self._root
        h = hash(key)
        while type(node) is list:
            node = node[h & _MASK]
            h >>= _BITS
        return cast(dict[K, V], node).get(key, default)

    def __getitem__(self, key: K) -> V:
        node = self._root
        h = hash(key)
        while type(node) is list:
            node = node[h & _MASK]
            h >>= _BITS
        return cast(dict[K, V], node)[key]

    def __contains__(self, key: object) -> bool:
        node = self._root
        h = hash(key)
        while type(node) is list:
            node = node[h & _MASK]
            h >>= _BITS
        return key in node

    def __len__(self) -> int:
        return self._len

    @property
    def trie(self) -> dict[Any, Any] | list[Any]:
        """The root node of the trie (read-only; for releasing old versions piecemeal)."""
        return self._root

    def __bool__(self) -> bool:
        return self._len > 0

    def __iter__(self) -> Iterator[K]:
        for leaf in _leaves(self._root):
            yield from leaf

    def keys(self) -> Iterator[K]:
        return iter(self)

    def values(self) -> Iterator[V]:
        for leaf in _leaves(self._root):
            yield from leaf.values()

    def items(self) -> Iterator[tuple[K, V]]:
        for leaf in _leaves(self._root):
            yield from leaf.items()

    def __repr__(self) -> str:
        return f"PMap({dict(self.items())!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, PMap):
            return NotImplemented
        return self._root is other._root or (
            self._len == other._len and not any(True for _ in changed_keys(self, other))
        )

    __hash__ = None  # type: ignore[assignment]  # equal maps may differ in layout

    # ------------------------------------------------------------- updating

    def set(self, key: K, value: V) -> PMap[K, V]:
        """A map with ``key`` set: copies the root-to-leaf path, shares everything else."""
        h = hash(key)
        branches: list[list[Any]] = []
        node = self._root
        shift = 0
        while type(node) is list:
            branches.append(node)
            node = node[(h >> shift) & _MASK]
            shift += _BITS
        leaf = cast(dict[Any, Any], node).copy()
        size = self._len + (key not in leaf)
        leaf[key] = value
        new: _Node = _grow(leaf, shift) if len(leaf) > _LEAF_MAX else leaf
        while branches:
            shift -= _BITS
            copy = branches.pop().copy()
            copy[(h >> shift) & _MASK] = new
            new = copy
        return PMap(new, size)

    def remove(self, key: K) -> PMap[K, V]:
        """A map without ``key`` (the same map when it is absent)."""
        h = hash(key)
        path: list[tuple[list[Any], int]] = []
        node = self._root
        shift = 0
        while type(node) is list:
            slot = (h >> shift) & _MASK
            path.append((node, slot))
            node = node[slot]
            shift += _BITS
        if key not in node:
            return self
        leaf = cast(dict[Any, Any], node).copy()
        del leaf[key]
        return PMap(_rebuild_path(path, leaf), self._len - 1)

    def update(self, items: Iterable[tuple[K, V]] = (), removed: Iterable[K] = ()) -> PMap[K, V]:
        """A map with ``items`` set and ``removed`` keys gone (a removal wins over a set).

        Each touched branch or leaf is copied once, however many of the keys land under it.
        """
        items = items if isinstance(items, list) else list(items)
        removed = removed if isinstance(removed, list) else list(removed)
        root = self._root
        if type(root) is dict:  # an empty or small map: one dict, then built bottom-up
            flat = dict(root)
            flat.update(items)
            for key in removed:
                flat.pop(key, None)
            return PMap(_grow(flat, 0), len(flat))
        if not removed:
            if not items:
                return self
            if len(items) == 1:
                key, value = items[0]
                return self.set(key, value)
        elif not items and len(removed) == 1:
            return self.remove(removed[0])
        return PMap(*_update(cast(list[Any], root), items, removed, self._len))


def _grow(flat: dict[Any, Any], shift: int) -> _Node:
    """The trie holding ``flat`` (a dict nobody else holds) below ``shift``, in one pass.

    The depth is chosen from the size so leaves average at most ``_BULK_LEAF`` keys; each
    key goes straight to its leaf, then the branches are assembled over the leaves.
    """
    size = len(flat)
    if size <= _LEAF_MAX or shift > _MAX_SHIFT:
        return flat
    depth = 1
    while size > _BULK_LEAF << (_BITS * depth) and shift + _BITS * depth <= _MAX_SHIFT:
        depth += 1
    mask = (1 << (_BITS * depth)) - 1
    leaves: list[dict[Any, Any]] = [{} for _ in range(mask + 1)]
    for key, value in flat.items():
        leaves[(hash(key) >> shift) & mask][key] = value
    return _assemble(leaves, 0, 1, depth)


def _assemble(leaves: list[dict[Any, Any]], offset: int, stride: int, depth: int) -> _Node:
    # The leaf at path (c0, c1, ...) sits at index c0 + 32*c1 + 1024*c2 ...
    if depth == 0:
        return leaves[offset]
    return [_assemble(leaves, offset + stride * child, stride * _WIDTH, depth - 1)
            for child in range(_WIDTH)]


def _update(root: list[Any], items: list[tuple[Any, Any]], removed: list[Any],
            size: int) -> tuple[_Node, int]:
    """A copy of the trie under ``root`` (shared by published maps: never changed) with
    ``items`` set and then ``removed`` deleted, and the new key count.

    Each touched branch and leaf is copied the first time a key reaches it and changed in
    place after that (``owned`` remembers the copies by id; they stay alive, so no id is
    reused while it matters), so a batch costs one copy per touched node.
    """
    root = root.copy()
    owned = {id(root)}
    for key, value in items:
        h = hash(key)
        branch = root
        shift = 0
        while True:
            slot = (h >> shift) & _MASK
            child = branch[slot]
            if id(child) not in owned:
                child = branch[slot] = child.copy()
                owned.add(id(child))
            shift += _BITS
            if type(child) is dict:
                break
            branch = child
        if key in child:
            child[key] = value
            continue
        size += 1
        child[key] = value
        if len(child) > _LEAF_MAX and shift <= _MAX_SHIFT:
            grown = branch[slot] = _grow(child, shift)
            owned.add(id(grown))  # its leaves are new too, but copying one again is harmless
    for key in removed:
        h = hash(key)
        branch = root
        shift = 0
        while True:
            slot = (h >> shift) & _MASK
            child = branch[slot]
            if type(child) is dict:
                break
            if id(child) not in owned:
                child = branch[slot] = child.copy()
                owned.add(id(child))
            branch = child
            shift += _BITS
        if key in child:
            if id(child) not in owned:
                child = branch[slot] = child.copy()
                owned.add(id(child))
            del child[key]
            size -= 1
    return root, size


def _rebuild_path(path: list[tuple[list[Any], int]], node: _Node) -> _Node:
    """Copies of the branches on ``path`` (root first) leading to the new ``node``."""
    for branch, slot in reversed(path):
        copy = branch.copy()
        copy[slot] = node
        node = copy
    return node


def _leaves(node: _Node) -> Iterator[dict[Any, Any]]:
    if type(node) is list:
        for child in node:
            yield from _leaves(child)
    else:
        yield cast(dict[Any, Any], node)


def changed_keys(a: PMap[K, V], b: PMap[K, V]) -> Iterator[K]:
    """Keys whose presence or value differs between ``a`` and ``b``.

    Shared subtrees are skipped by identity, so two versions a few edits apart compare
    in time proportional to the edits, not to the size of the maps.
    """
    return _changed(a._root, b._root, 0)


def _changed(x: _Node, y: _Node, shift: int) -> Iterator[Any]:
    if x is y:
        return
    if type(x) is list and type(y) is list:
        for cx, cy in zip(x, y, strict=True):
            if cx is not cy:
                yield from _changed(cx, cy, shift + _BITS)
        return
    if x == y:  # equal leaves (or subtrees) from independent builds: one C-level compare
        return
    # A leaf against a leaf or against a branch (one side split later): compare flat.
    dx = _flatten(x)
    dy = _flatten(y)
    for key, value in dx.items():
        if key not in dy or (dy[key] is not value and dy[key] != value):
            yield key
    for key in dy:
        if key not in dx:
            yield key


def _flatten(node: _Node) -> dict[Any, Any]:
    if type(node) is list:
        flat: dict[Any, Any] = {}
        for leaf in _leaves(node):
            flat.update(leaf)
        return flat
    return cast(dict[Any, Any], node)
