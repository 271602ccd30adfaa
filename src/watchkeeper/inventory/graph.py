"""The inventory graph: typed nodes and relations, immutable, with a version number.

A :class:`Graph` never changes. :meth:`Graph.edit` opens a :class:`GraphEdit` draft;
:meth:`GraphEdit.commit` returns a new graph (version + 1) that shares every untouched
part with the old one (see :mod:`watchkeeper.inventory.pmap`), so keeping a snapshot is
keeping a reference and one change costs a few microseconds whatever the size.

Storage is one persistent map, node id -> :class:`Entry`: the node and every relation
touching it (each relation sits in both ends' entries, the same object). One map and not
three (nodes, relations, adjacency) because each copied trie path costs a cache miss per
sibling it references: a link coming up now copies two paths instead of four, and
reading a relation is one lookup.

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


# An entry's relations: while few, a plain dict (holding only strings and untracked
# structs, the garbage collector never looks at it); past _SMALL a PMap, so a site with
# 50,000 devices does not copy 50,000 relations per change. Both are never changed once
# published, and both answer get/items/values/len.
Rels = dict[RelKey, Relation] | PMap[RelKey, Relation]
_SMALL = 32
_NO_RELS: dict[RelKey, Relation] = {}
_NO_ATTRS: dict[str, Any] = {}  # shared by every node and relation without attributes


class Entry(msgspec.Struct, frozen=True, gc=False):
    """A node and the relations touching it, either direction (the map's value)."""

    node: Node
    rels: Rels


class Graph:
    """An immutable graph of :class:`Node` and :class:`Relation`; readers share it freely."""

    __slots__ = ("_entries", "_relation_count", "version")

    def __init__(self, entries: PMap[str, Entry] | None = None, relation_count: int = 0,
                 version: int = 0) -> None:
        self._entries: PMap[str, Entry] = entries if entries is not None else PMap()
        self._relation_count = relation_count
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
        return Graph(self._entries, self._relation_count, version)

    # ------------------------------------------------------------- reading

    def node(self, node_id: str) -> Node | None:
        entry = self._entries.get(node_id)
        return None if entry is None else entry.node

    def __contains__(self, node_id: object) -> bool:
        return node_id in self._entries

    def nodes(self, kind: str | None = None, label: str | None = None) -> Iterator[Node]:
        """Every node, optionally only of one kind and/or carrying one label."""
        for entry in self._entries.values():
            node = entry.node
            if (kind is None or node.kind == kind) and (label is None or label in node.labels):
                yield node

    def relations(self, kind: str | None = None) -> Iterator[Relation]:
        """Every relation once (from its source's entry)."""
        for entry in self._entries.values():
            source = entry.node.id
            for relation in entry.rels.values():
                if relation.source == source and (kind is None or relation.kind == kind):
                    yield relation

    def relation(self, source: str, kind: str, target: str) -> Relation | None:
        entry = self._entries.get(source)
        return None if entry is None else entry.rels.get(relation_key(source, kind, target))

    def relations_of(self, node_id: str, kind: str | None = None,
                     direction: Direction = "out") -> list[Relation]:
        """Relations leaving (``out``), entering (``in``) or touching (``both``) a node."""
        entry = self._entries.get(node_id)
        if entry is None:
            return []
        return [relation for relation in entry.rels.values()
                if (kind is None or relation.kind == kind)
                and (direction == "both" or (direction == "out" and relation.source == node_id)
                     or (direction == "in" and relation.target == node_id))]

    def neighbours(self, node_id: str, kind: str | None = None,
                   direction: Direction = "out") -> list[Node]:
        """Nodes at the other end of :meth:`relations_of`."""
        ends = []
        for relation in self.relations_of(node_id, kind, direction):
            other = relation.target if relation.source == node_id else relation.source
            node = self.node(other)
            if node is not None:
                ends.append(node)
        return ends

    @property
    def entry_map(self) -> PMap[str, Entry]:
        """The entries by node id, as the persistent map itself (for diffs and bulk reads)."""
        return self._entries

    @property
    def node_count(self) -> int:
        return len(self._entries)

    @property
    def relation_count(self) -> int:
        return self._relation_count

    def roots(self) -> tuple[Any, ...]:
        """The trie's root (see :mod:`watchkeeper.inventory.release`)."""
        return (self._entries.trie,)

    def same_content(self, other: Graph) -> bool:
        """True when both hold equal nodes and relations (cheap when they share structure)."""
        return self._entries == other._entries

    def __repr__(self) -> str:
        return (f"Graph(version={self.version}, nodes={self.node_count}, "
                f"relations={self.relation_count})")


class GraphEdit:
    """A draft of the next version of a graph. Nothing is visible until :meth:`commit`.

    Edits are idempotent where they can be (putting an equal node, removing a missing
    one, relating twice), so replaying a notification on a model that already reflects
    it changes nothing. The draft keeps its changes in plain dicts over the base graph;
    ``commit`` folds them in (a build from scratch becomes one bulk construction) and the
    draft goes on from the committed graph.

    :meth:`savepoint` and :meth:`rollback` undo part of a draft, so many notifications can
    share one draft (and one commit) while each stays all-or-nothing.
    """

    __slots__ = ("_base", "_changed", "_count", "_dropped", "_empty", "_journal", "_nodes",
                 "_rels", "_seen")

    def __init__(self, base: Graph) -> None:
        self._start(base)
        # (dict, key, previous value) for every write since the first savepoint.
        self._journal: list[tuple[dict[Any, Any], Any, Any]] | None = None

    def _start(self, base: Graph) -> None:
        self._base = base
        self._empty = not base._entries  # a build from scratch: no base lookups at all
        self._nodes: dict[str, Node | None] = {}  # changed nodes; None marks a removal
        # Changed relations per node (both ends): key -> relation, or None when removed.
        self._rels: dict[str, dict[RelKey, Relation | None]] = {}
        # The base's entries read so far: each trie walk happens once per draft, not at
        # every read and again at commit.
        self._seen: dict[str, Entry | None] = {}
        self._count = base._relation_count
        self._changed = False
        self._dropped = False  # any node or relation removed (else commits take a fast path)

    def savepoint(self) -> tuple[int, bool, bool, int]:
        """A mark to :meth:`rollback` to; the draft journals its writes from now on."""
        if self._journal is None:
            self._journal = []
        return len(self._journal), self._changed, self._dropped, self._count

    def rollback(self, mark: tuple[int, bool, bool, int]) -> None:
        """Undo every edit since ``mark``."""
        journal = self._journal
        size, self._changed, self._dropped, self._count = mark
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
        if node is _UNTOUCHED:
            entry = self._entry(node_id)
            return None if entry is None else entry.node
        return node

    def _entry(self, node_id: str) -> Entry | None:
        """The base's entry for a node (None when the base has no such node)."""
        entry: Entry | None = self._seen.get(node_id, _UNTOUCHED)
        if entry is _UNTOUCHED:
            entry = self._seen[node_id] = self._base._entries.get(node_id)
        return entry

    def __contains__(self, node_id: object) -> bool:
        if self._empty:
            return self._nodes.get(node_id) is not None  # type: ignore[call-overload]
        node = self._nodes.get(node_id, _UNTOUCHED)  # type: ignore[call-overload]
        if node is _UNTOUCHED:
            return self._entry(node_id) is not None  # type: ignore[arg-type]
        return node is not None

    def _relation(self, key: RelKey, source: str) -> Relation | None:
        changes = self._rels.get(source)
        if changes is not None:
            relation: Relation | None = changes.get(key, _UNTOUCHED)
            if relation is not _UNTOUCHED:
                return relation
        if self._empty:
            return None
        entry = self._entry(source)
        return None if entry is None else entry.rels.get(key)

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
                             attrs=dict(attrs) if attrs else _NO_ATTRS,
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
        for relation in self.relations_of(node_id):
            self._drop(relation.key, relation.source, relation.target)
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
        if key.count(_SEP) != 2:
            raise InventoryError(f"ids and relation kinds cannot contain \\x00: {key!r}")
        relation = Relation(source=source, kind=kind, target=target,
                            attrs=dict(attrs) if attrs else _NO_ATTRS)
        old = self._relation(key, source)
        if old is not None and old == relation:
            return old
        if old is None:
            self._count += 1
        self._changed = True
        if self._journal is not None:
            self._set(source, key, relation)
            if target != source:
                self._set(target, key, relation)
        else:  # unjournaled: straight into the dicts (the bulk of a build)
            self._put_relation(source, key, relation)
            if target != source:
                self._put_relation(target, key, relation)
        return relation

    def _put_relation(self, node: str, key: RelKey, relation: Relation) -> None:
        changes = self._rels.get(node)
        if changes is None:
            self._rels[node] = {key: relation}
        else:
            changes[key] = relation

    def _missing_end(self, source: str, kind: str, target: str) -> None:
        missing = target if source in self else source
        raise InventoryError(f"cannot relate {source!r} -{kind}-> {target!r}: "
                             f"no node {missing!r}")

    def unrelate(self, source: str, kind: str, target: str) -> bool:
        key = relation_key(source, kind, target)
        if self._relation(key, source) is None:
            return False
        self._drop(key, source, target)
        return True

    def relations_of(self, node_id: str) -> list[Relation]:
        """Every relation touching a node, as this draft has it."""
        entry = None if self._empty else self._entry(node_id)
        base: Rels = _NO_RELS if entry is None else entry.rels
        changes = self._rels.get(node_id)
        if not changes:
            return list(base.values())
        found = [r for k, r in base.items() if k not in changes]
        found += [r for r in changes.values() if r is not None]
        return found

    def _drop(self, key: RelKey, source: str, target: str) -> None:
        self._set(source, key, None)
        if target != source:
            self._set(target, key, None)
        self._count -= 1
        self._changed = self._dropped = True

    def _set(self, node: str, key: RelKey, relation: Relation | None) -> None:
        changes = self._rels.get(node)
        if changes is None:
            changes = {}
            self._write(self._rels, node, changes)
        self._write(changes, key, relation)

    def commit(self) -> Graph:
        """The new graph, version + 1 (the base graph itself when nothing changed).

        The draft carries on from the new graph: later edits make the version after it.
        """
        if not self._changed:
            return self._base
        base = self._base
        if self._empty and not self._dropped:
            # A build from scratch: every change is an addition, so the draft's dicts
            # become the entries directly.
            rels = self._rels
            graph = Graph(PMap.of({
                node_id: Entry(node, _frozen(rels.get(node_id, _NO_RELS)))  # type: ignore[arg-type]
                for node_id, node in self._nodes.items()
            }), self._count, base.version + 1)
        else:
            graph = Graph(self._fold(), self._count, base.version + 1)
        self._start(graph)
        if self._journal is not None:
            self._journal = []
        return graph

    def _fold(self) -> PMap[str, Entry]:
        entries = self._base._entries
        changed: list[tuple[str, Entry]] = []
        gone: list[str] = []
        nodes, rels, empty, seen = self._nodes, self._rels, self._empty, self._seen
        for node_id in (nodes.keys() | rels.keys()) if rels else nodes:
            old = None if empty else seen.get(node_id, _UNTOUCHED)
            if old is _UNTOUCHED:
                old = entries.get(node_id)
            node = nodes.get(node_id, _UNTOUCHED)
            if node is None:
                if old is not None:
                    gone.append(node_id)
                continue
            if node is _UNTOUCHED:
                if old is None:
                    continue  # relations changed on a node added and removed in this draft
                node = old.node
            before = _NO_RELS if old is None else old.rels
            changes = rels.get(node_id)
            after = _apply(before, changes) if changes else before
            if old is None or node is not old.node or after is not before:
                changed.append((node_id, Entry(node, after)))
        return entries.update(changed, gone)


_UNTOUCHED: Any = object()
_NO_LABELS: frozenset[str] = frozenset()


def _frozen(rels: dict[RelKey, Relation]) -> Rels:
    """A draft's relation dict as an entry's (the dict itself while small)."""
    return rels if len(rels) <= _SMALL else PMap.of(rels)


def _apply(rels: Rels, changes: dict[RelKey, Relation | None]) -> Rels:
    """An entry's relations after a draft's additions (relations) and removals (None)."""
    if type(rels) is dict:
        new = dict(rels)
        for key, relation in changes.items():
            if relation is None:
                new.pop(key, None)
            else:
                new[key] = relation
        return _frozen(new) if new else _NO_RELS
    assert isinstance(rels, PMap)
    big = rels.update([(k, r) for k, r in changes.items() if r is not None],
                      [k for k, r in changes.items() if r is None])
    return dict(big.items()) if len(big) <= _SMALL // 2 else big
