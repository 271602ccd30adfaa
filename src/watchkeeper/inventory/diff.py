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
    for key in sorted(changed_keys(before.node_map, after.node_map)):
        old, new = before.node(key), after.node(key)
        if old is None and new is not None:
            appeared.append(new)
        elif new is None and old is not None:
            disappeared.append(old)
        elif old is not None and new is not None:
            changed.append((old, new))
    rel_appeared: list[Relation] = []
    rel_disappeared: list[Relation] = []
    rel_changed: list[tuple[Relation, Relation]] = []
    for key in sorted(changed_keys(before.relation_map, after.relation_map)):
        was, now = before.relation_map.get(key), after.relation_map.get(key)
        if was is None and now is not None:
            rel_appeared.append(now)
        elif now is None and was is not None:
            rel_disappeared.append(was)
        elif was is not None and now is not None:
            rel_changed.append((was, now))
    return GraphDiff(
        from_version=before.version, to_version=after.version,
        appeared=tuple(appeared), disappeared=tuple(disappeared), changed=tuple(changed),
        relations_appeared=tuple(rel_appeared), relations_disappeared=tuple(rel_disappeared),
        relations_changed=tuple(rel_changed),
    )
