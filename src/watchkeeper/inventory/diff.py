"""What changed between two versions of a graph: nodes and relations that appeared,
disappeared or changed.

Versions that share structure (one came from the other by edits) are compared in time
proportional to the edits; two independent full builds are compared node by node.
"""

from __future__ import annotations

import msgspec

from watchkeeper.inventory.graph import Graph, Node, Relation
from watchkeeper.inventory.pmap import changed_keys


class GraphDiff(msgspec.Struct, frozen=True, kw_only=True):
    """The net change from ``from_version`` to ``to_version``, each list sorted by id."""

    from_version: int
    to_version: int
    appeared: tuple[Node, ...] = ()
    disappeared: tuple[Node, ...] = ()
    changed: tuple[tuple[Node, Node], ...] = ()  # (before, after)
    relations_appeared: tuple[Relation, ...] = ()
    relations_disappeared: tuple[Relation, ...] = ()
    relations_changed: tuple[tuple[Relation, Relation], ...] = ()

    def __bool__(self) -> bool:
        return bool(self.appeared or self.disappeared or self.changed or self.relations_appeared
                    or self.relations_disappeared or self.relations_changed)


def diff(before: Graph, after: Graph) -> GraphDiff:
    """The changes that turn ``before`` into ``after``."""
    appeared: list[Node] = []
    disappeared: list[Node] = []
    changed: list[tuple[Node, Node]] = []
    was: dict[str, Relation] = {}  # relations of the changed entries, by key, before
    now: dict[str, Relation] = {}
    old_entries, new_entries = before.entry_map, after.entry_map
    for key in sorted(changed_keys(old_entries, new_entries)):
        old, new = old_entries.get(key), new_entries.get(key)
        if old is None and new is not None:
            appeared.append(new.node)
        elif new is None and old is not None:
            disappeared.append(old.node)
        elif old is not None and new is not None and old.node != new.node:
            changed.append((old.node, new.node))
        # A relation changes both its ends' entries: reading it at its source is enough.
        if old is not None and old.rels is not (new.rels if new is not None else None):
            was.update((k, r) for k, r in old.rels.items() if r.source == key)
        if new is not None and new.rels is not (old.rels if old is not None else None):
            now.update((k, r) for k, r in new.rels.items() if r.source == key)
    rel_appeared = [now[k] for k in sorted(now.keys() - was.keys())]
    rel_disappeared = [was[k] for k in sorted(was.keys() - now.keys())]
    rel_changed = [(was[k], now[k]) for k in sorted(was.keys() & now.keys()) if was[k] != now[k]]
    return GraphDiff(
        from_version=before.version, to_version=after.version,
        appeared=tuple(appeared), disappeared=tuple(disappeared), changed=tuple(changed),
        relations_appeared=tuple(rel_appeared), relations_disappeared=tuple(rel_disappeared),
        relations_changed=tuple(rel_changed),
    )
