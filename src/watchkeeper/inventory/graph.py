"""The inventory graph: typed nodes and relations, immutable, with a version number.

A :class:`Graph` never changes. :meth:`Graph.edit` opens a :class:`GraphEdit` draft;
:meth:`GraphEdit.commit` returns a new graph (version + 1) that shares every untouched
part with the old one (see :mod:`watchkeeper.inventory.pmap`), so keeping a snapshot is
keeping a reference and one change costs a few microseconds whatever the size.

Node kinds and relation kinds are open strings; the built-in ones are constants below.
Node ids are ``kind/part[/part...]`` with each part URL-quoted (:func:`node_id`), so a
name containing ``/`` can never collide with another node's id.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, Literal
from urllib.parse import quote

import msgspec

from watchkeeper.errors import InventoryError
from watchkeeper.inventory.pmap import PMap

DEVICE = "device"
INTERFACE = "interface"
SERVICE = "service"
SITE = "site"
PROCESS = "process"
LINK = "link"

HAS_INTERFACE = "has_interface"  # device -> interface
LINKS_TO = "links_to"  # interface -> interface, one relation each way
RUNS_ON = "runs_on"  # service or process -> device
IN_SITE = "in_site"  # device -> site
DEPENDS_ON = "depends_on"  # device -> its upstream device
PROVIDED_BY = "provided_by"  # service -> process

RelKey = str
"""A relation's identity, ``source NUL kind NUL target`` (:func:`relation_key`).

Strings, not tuples: the garbage collector ignores strings and containers holding only
strings and untracked values, so a model of millions of relations costs no GC pauses."""

_SEP = "\x00"

Direction = Literal["out", "in", "both"]


_PLAIN = re.compile(r"[A-Za-z0-9_.~-]*")  # what quote() leaves alone


def node_id(kind: str, *parts: str) -> str:
    """The id of a node: ``node_id("interface", "core1", "ge-0/0/1")`` is
    ``interface/core1/ge-0%2F0%2F1``."""
    plain = _PLAIN.fullmatch
    return "/".join([kind, *[p if plain(p) else quote(p, safe="") for p in parts]])


def relation_key(source: str, kind: str, target: str) -> RelKey:
    return f"{source}{_SEP}{kind}{_SEP}{target}"


def split_key(key: RelKey) -> tuple[str, str, str]:
    """(source, kind, target) of a relation key."""
    source, kind, target = key.split(_SEP)
    return source, kind, target


class Node(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """One thing in the inventory. ``attrs`` must be treated as read-only: it is shared."""

    id: str
    kind: str
    name: str = ""
    attrs: Mapping[str, Any] = msgspec.field(default_factory=dict)
    labels: frozenset[str] = frozenset()


class Relation(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """A directed, typed relation between two nodes; at most one per (source, kind, target)."""

    source: str
    kind: str
    target: str
    attrs: Mapping[str, Any] = msgspec.field(default_factory=dict)

    @property
    def key(self) -> RelKey:
        return relation_key(self.source, self.kind, self.target)


# A node's relation keys: while few, one string of keys joined by _LIST (strings are no
# work for the garbage collector, where tuples of 100,000 nodes would be until it has
# looked at each once); past _SMALL a PMap (a site with 50,000 devices must not copy
# 50,000 keys per change).
Keys = str | PMap[RelKey, None]
_LIST = "\x01"
_NO_KEYS = ""
_SMALL = 32


def _key_list(keys: Keys) -> list[RelKey] | PMap[RelKey, None]:
    if type(keys) is str:
        return keys.split(_LIST) if keys else []
    return keys  # type: ignore[return-value]


class Graph:
    """An immutable graph of :class:`Node` and :class:`Relation`; readers share it freely."""

    __slots__ = ("_adj", "_nodes", "_relations", "version")

    def __init__(
        self,
        nodes: PMap[str, Node] | None = None,
        relations: PMap[RelKey, Relation] | None = None,
        adjacency: PMap[str, Keys] | None = None,
        version: int = 0,
    ) -> None:
        self._nodes: PMap[str, Node] = nodes if nodes is not None else PMap()
        self._relations: PMap[RelKey, Relation] = relations if relations is not None else PMap()
        # node id -> keys of every relation touching it, either direction (for cascades).
        self._adj: PMap[str, Keys] = adjacency if adjacency is not None else PMap()
        self.version = version

    @classmethod
    def build(cls, nodes: Iterable[Node], relations: Iterable[Relation] = ()) -> Graph:
        """A graph from scratch (version 0); relations must join nodes given here."""
        edit = GraphEdit(cls())
        for node in nodes:
            edit.put(node)
        for relation in relations:
            edit.relate(relation.source, relation.kind, relation.target, relation.attrs)
        return edit.commit().with_version(0)

    def edit(self) -> GraphEdit:
        return GraphEdit(self)

    def with_version(self, version: int) -> Graph:
        """The same content under another version number (shares everything)."""
        return Graph(self._nodes, self._relations, self._adj, version)

    # ------------------------------------------------------------- reading

    def node(self, node_id: str) -> Node | None:
        return self._nodes.get(node_id)

    def __contains__(self, node_id: object) -> bool:
        return node_id in self._nodes

    def nodes(self, kind: str | None = None, label: str | None = None) -> Iterator[Node]:
        """Every node, optionally only of one kind and/or carrying one label."""
        for node in self._nodes.values():
            if (kind is None or node.kind == kind) and (label is None or label in node.labels):
                yield node

    def relations(self, kind: str | None = None) -> Iterator[Relation]:
        for relation in self._relations.values():
            if kind is None or relation.kind == kind:
                yield relation

    def relation(self, source: str, kind: str, target: str) -> Relation | None:
        return self._relations.get(relation_key(source, kind, target))

    def relations_of(self, node_id: str, kind: str | None = None,
                     direction: Direction = "out") -> list[Relation]:
        """Relations leaving (``out``), entering (``in``) or touching (``both``) a node."""
        found: list[Relation] = []
        relations = self._relations
        for key in _key_list(self._adj.get(node_id, _NO_KEYS)):  # type: ignore[arg-type]
            relation = relations[key]
            if kind is not None and relation.kind != kind:
                continue
            if (direction == "both" or (direction == "out" and relation.source == node_id)
                    or (direction == "in" and relation.target == node_id)):
                found.append(relation)
        return found

    def neighbours(self, node_id: str, kind: str | None = None,
                   direction: Direction = "out") -> list[Node]:
        """Nodes at the other end of :meth:`relations_of`."""
        ends = []
        for relation in self.relations_of(node_id, kind, direction):
            other = relation.target if relation.source == node_id else relation.source
            node = self._nodes.get(other)
            if node is not None:
                ends.append(node)
        return ends

    @property
    def node_map(self) -> PMap[str, Node]:
        """The nodes by id, as the persistent map itself (for diffs and bulk reads)."""
        return self._nodes

    @property
    def relation_map(self) -> PMap[RelKey, Relation]:
        return self._relations

    @property
    def node_count(self) -> int:
        return len(self._nodes)

    @property
    def relation_count(self) -> int:
        return len(self._relations)

    def roots(self) -> tuple[Any, Any, Any]:
        """The tries' roots (see :mod:`watchkeeper.inventory.release`)."""
        return (self._nodes.trie, self._relations.trie, self._adj.trie)

    def same_content(self, other: Graph) -> bool:
        """True when both hold equal nodes and relations (cheap when they share structure)."""
        return self._nodes == other._nodes and self._relations == other._relations

    def __repr__(self) -> str:
        return (f"Graph(version={self.version}, nodes={self.node_count}, "
                f"relations={self.relation_count})")


class GraphEdit:
    """A draft of the next version of a graph. Nothing is visible until :meth:`commit`.

    Edits are idempotent where they can be (putting an equal node, removing a missing
    one, relating twice), so replaying a notification on a model that already reflects
    it changes nothing. The draft keeps its changes in plain dicts over the base graph;
    ``commit`` folds them in (a build from scratch becomes one bulk construction).

    :meth:`savepoint` and :meth:`rollback` undo part of a draft, so many notifications can
    share one draft (and one commit) while each stays all-or-nothing.
    """

    __slots__ = ("_adj_delta", "_base", "_changed", "_dropped", "_empty", "_journal",
                 "_nodes", "_relations")

    def __init__(self, base: Graph) -> None:
        self._base = base
        self._empty = not base._nodes  # a build from scratch: no base lookups at all
        # Changed nodes and relations; None marks a removal.
        self._nodes: dict[str, Node | None] = {}
        self._relations: dict[RelKey, Relation | None] = {}
        # Pending adjacency changes per node: key -> True (added) or False (removed).
        self._adj_delta: dict[str, dict[RelKey, bool]] = {}
        self._changed = False
        self._dropped = False  # any node or relation removed (else commits take a fast path)
        # (dict, key, previous value) for every write since the first savepoint.
        self._journal: list[tuple[dict[Any, Any], Any, Any]] | None = None

    def savepoint(self) -> tuple[int, bool, bool]:
        """A mark to :meth:`rollback` to; the draft journals its writes from now on."""
        if self._journal is None:
            self._journal = []
        return len(self._journal), self._changed, self._dropped

    def rollback(self, mark: tuple[int, bool, bool]) -> None:
        """Undo every edit since ``mark``."""
        journal = self._journal
        size, self._changed, self._dropped = mark
        assert journal is not None, "rollback() without savepoint()"
        while len(journal) > size:
            where, key, old = journal.pop()
            if old is _UNTOUCHED:
                del where[key]
            else:
                where[key] = old

    def _write(self, where: dict[Any, Any], key: Any, value: Any) -> None:
        if self._journal is not None:
            self._journal.append((where, key, where.get(key, _UNTOUCHED)))
        where[key] = value

    def node(self, node_id: str) -> Node | None:
        """The node as this draft has it."""
        if self._empty:
            return self._nodes.get(node_id)
        node: Node | None = self._nodes.get(node_id, _UNTOUCHED)
        return self._base._nodes.get(node_id) if node is _UNTOUCHED else node

    def __contains__(self, node_id: object) -> bool:
        if self._empty:
            return self._nodes.get(node_id) is not None  # type: ignore[call-overload]
        node = self._nodes.get(node_id, _UNTOUCHED)  # type: ignore[call-overload]
        return node_id in self._base._nodes if node is _UNTOUCHED else node is not None

    def _relation(self, key: RelKey) -> Relation | None:
        if self._empty:
            return self._relations.get(key)
        relation: Relation | None = self._relations.get(key, _UNTOUCHED)
        if relation is _UNTOUCHED:
            return self._base._relations.get(key)
        return relation

    def put(self, node: Node) -> Node:
        """Add ``node`` or replace the node with its id (relations are kept)."""
        old = self._nodes.get(node.id) if self._empty else self.node(node.id)
        if old is None or old != node:
            if self._journal is None:
                self._nodes[node.id] = node
            else:
                self._write(self._nodes, node.id, node)
            self._changed = True
        return node

    def add(self, kind: str, *parts: str, name: str | None = None,
            attrs: Mapping[str, Any] | None = None, labels: Iterable[str] = ()) -> Node:
        """Put a node of ``kind`` whose id is built from ``parts`` (the last is its name)."""
        return self.put(Node(id=node_id(kind, *parts), kind=kind,
                             name=parts[-1] if name is None else name,
                             attrs=dict(attrs) if attrs else {},
                             labels=frozenset(labels) if labels else _NO_LABELS))

    def update(self, node_id: str, *, attrs: Mapping[str, Any] | None = None,
               labels: Iterable[str] | None = None) -> Node | None:
        """Merge ``attrs`` into a node's attributes and/or replace its labels.

        An attribute set to None is removed. Returns the new node, or None when there is
        no such node.
        """
        old = self.node(node_id)
        if old is None:
            return None
        merged: Mapping[str, Any] = old.attrs
        if attrs:
            merged = {**old.attrs, **attrs}
            if None in merged.values():
                merged = {k: v for k, v in merged.items() if v is not None}
        new_labels = old.labels if labels is None else frozenset(labels)
        node = msgspec.structs.replace(old, attrs=merged, labels=new_labels)
        if node != old:
            self._write(self._nodes, node_id, node)
            self._changed = True
        return node

    def remove(self, node_id: str) -> bool:
        """Remove a node and every relation touching it; False when there was none."""
        if node_id not in self:
            return False
        for key in list(self._keys_of(node_id)):
            self._drop_relation(key)
        self._write(self._nodes, node_id, None)
        self._changed = self._dropped = True
        return True

    def relate(self, source: str, kind: str, target: str,
               attrs: Mapping[str, Any] | None = None) -> Relation:
        """Add or replace the relation ``source -kind-> target``; both nodes must exist."""
        if self._empty:  # a build from scratch: plain dict lookups (the hot path)
            nodes = self._nodes
            if nodes.get(source) is None or nodes.get(target) is None:
                self._missing_end(source, kind, target)
        elif not (source in self and target in self):
            self._missing_end(source, kind, target)
        key = f"{source}{_SEP}{kind}{_SEP}{target}"
        if key.count(_SEP) != 2 or _LIST in key:
            raise InventoryError(f"ids and relation kinds cannot contain \\x00 or \\x01: "
                                 f"{key!r}")
        relation = Relation(source=source, kind=kind, target=target,
                            attrs=dict(attrs) if attrs else {})
        old = self._relations.get(key) if self._empty else self._relation(key)
        if self._journal is not None:  # journaled: the general (slower) path
            if old is None:
                self._adj_change(source, key, added=True)
                self._adj_change(target, key, added=True)
            if old is None or old != relation:
                self._write(self._relations, key, relation)
                self._changed = True
            return relation
        if old is None:
            delta = self._adj_delta
            for end in (source, target):
                changes = delta.get(end)
                if changes is None:
                    delta[end] = {key: True}
                else:
                    changes[key] = True
        if old is None or old != relation:
            self._relations[key] = relation
            self._changed = True
        return relation

    def _missing_end(self, source: str, kind: str, target: str) -> None:
        missing = target if source in self else source
        raise InventoryError(f"cannot relate {source!r} -{kind}-> {target!r}: "
                             f"no node {missing!r}")

    def unrelate(self, source: str, kind: str, target: str) -> bool:
        key = relation_key(source, kind, target)
        if self._relation(key) is None:
            return False
        self._drop_relation(key)
        return True

    def relations_of(self, node_id: str) -> list[Relation]:
        """Every relation touching a node, as this draft has it."""
        found = []
        for key in self._keys_of(node_id):
            relation = self._relation(key)
            if relation is not None:
                found.append(relation)
        return found

    def _drop_relation(self, key: RelKey) -> None:
        source, _, target = split_key(key)
        self._write(self._relations, key, None)
        self._adj_change(source, key, added=False)
        self._adj_change(target, key, added=False)
        self._changed = self._dropped = True

    def _adj_change(self, node: str, key: RelKey, *, added: bool) -> None:
        delta = self._adj_delta.get(node)
        if delta is None:
            delta = {}
            self._write(self._adj_delta, node, delta)
        self._write(delta, key, added)

    def _keys_of(self, node_id: str) -> Iterator[RelKey]:
        delta = self._adj_delta.get(node_id, {})
        base = _key_list(self._base._adj.get(node_id, _NO_KEYS))  # type: ignore[arg-type]
        for key in base:
            if delta.get(key, True):
                yield key
        for key, added in delta.items():
            if added and key not in base:
                yield key

    def commit(self) -> Graph:
        """The new graph, version + 1; the base graph itself when nothing changed."""
        if not self._changed:
            return self._base
        base = self._base
        if self._empty and not self._dropped:
            # A build from scratch: every change is an addition, so the drafts' dicts
            # become the maps directly.
            return Graph(PMap.of(self._nodes), PMap.of(self._relations),  # type: ignore[arg-type]
                         PMap.of({node: _keys(list(delta))
                                  for node, delta in self._adj_delta.items()}),
                         base.version + 1)
        adj = base._adj
        if self._adj_delta:
            adj_set: list[tuple[str, Keys]] = []
            adj_gone: list[str] = []
            for node, delta in self._adj_delta.items():
                old = _NO_KEYS if self._empty else adj.get(node, _NO_KEYS)
                keys = _apply(old, delta)  # type: ignore[arg-type]
                if keys:
                    adj_set.append((node, keys))
                else:
                    adj_gone.append(node)
            adj = adj.update(adj_set, adj_gone)
        return Graph(_fold(base._nodes, self._nodes), _fold(base._relations, self._relations),
                     adj, base.version + 1)


_UNTOUCHED: Any = object()
_NO_LABELS: frozenset[str] = frozenset()


def _keys(keys: list[RelKey]) -> Keys:
    if len(keys) <= _SMALL:
        return _LIST.join(keys)
    return PMap.from_items((k, None) for k in keys)


def _apply(keys: Keys, delta: dict[RelKey, bool]) -> Keys:
    """A node's relation keys after a draft's additions and removals."""
    if type(keys) is str:
        if not keys:
            fresh = [k for k, present in delta.items() if present]
        else:
            had = keys.split(_LIST)
            fresh = [k for k in had if delta.get(k, True)]
            fresh += [k for k, present in delta.items() if present and k not in had]
        return _keys(fresh)
    assert isinstance(keys, PMap)
    return keys.update([(k, None) for k, present in delta.items() if present],
                       [k for k, present in delta.items() if not present])


def _fold(base: PMap[Any, Any], changes: dict[Any, Any]) -> PMap[Any, Any]:
    """``base`` with a draft's changes (None values are removals) applied."""
    if not changes:
        return base
    return base.update([(k, v) for k, v in changes.items() if v is not None],
                       [k for k, v in changes.items() if v is None])
