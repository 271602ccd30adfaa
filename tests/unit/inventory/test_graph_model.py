"""The graph against a reference model: random edits, savepoints and rollbacks, checked
after every commit (nodes, relations, both directions, counts, diffs)."""

from __future__ import annotations

import random
from typing import Any

import pytest

from watchkeeper.inventory import Graph, GraphEdit, Node, Relation, diff

Ref = tuple[dict[str, Node], dict[tuple[str, str, str], Relation]]


def _check(graph: Graph, ref: Ref) -> None:
    nodes, rels = ref
    assert graph.node_count == len(nodes)
    assert {n.id: n for n in graph.nodes()} == nodes
    assert graph.relation_count == len(rels)
    assert {(r.source, r.kind, r.target): r for r in graph.relations()} == rels
    for node_id in nodes:
        out = {(r.source, r.kind, r.target) for r in graph.relations_of(node_id)}
        into = {(r.source, r.kind, r.target) for r in graph.relations_of(node_id, direction="in")}
        assert out == {k for k in rels if k[0] == node_id}
        assert into == {k for k in rels if k[2] == node_id}
    for (source, kind, target), relation in rels.items():
        assert graph.relation(source, kind, target) == relation


def _diff_against(before: Ref, after: Ref, graph_before: Graph, graph_after: Graph) -> None:
    change = diff(graph_before, graph_after)
    (n0, r0), (n1, r1) = before, after
    assert {n.id for n in change.appeared} == n1.keys() - n0.keys()
    assert {n.id for n in change.disappeared} == n0.keys() - n1.keys()
    assert {b.id for _, b in change.changed} == {k for k in n0.keys() & n1.keys()
                                                 if n0[k] != n1[k]}
    key = lambda r: (r.source, r.kind, r.target)  # noqa: E731
    assert {key(r) for r in change.relations_appeared} == r1.keys() - r0.keys()
    assert {key(r) for r in change.relations_disappeared} == r0.keys() - r1.keys()
    assert {key(b) for _, b in change.relations_changed} == {
        k for k in r0.keys() & r1.keys() if r0[k] != r1[k]}


def _step(rng: random.Random, edit: GraphEdit, ref: Ref, ids: list[str]) -> None:
    nodes, rels = ref
    roll = rng.random()
    node_id = rng.choice(ids)
    if roll < 0.25:
        node = Node(id=node_id, kind="device", name=node_id,
                    attrs={"v": rng.randint(0, 3)} if rng.random() < 0.7 else {})
        edit.put(node)
        old = nodes.get(node_id)
        nodes[node_id] = node if old is None else Node(
            id=node_id, kind="device", name=node_id, attrs=node.attrs, labels=node.labels)
    elif roll < 0.35:
        attrs: dict[str, Any] = {"v": rng.randint(0, 3)}
        updated = edit.update(node_id, attrs=attrs)
        assert (updated is None) == (node_id not in nodes)
        if updated is not None:
            nodes[node_id] = updated
    elif roll < 0.45 and node_id != ids[0]:
        assert edit.remove(node_id) == (node_id in nodes)
        nodes.pop(node_id, None)
        for key in [k for k in rels if node_id in (k[0], k[2])]:
            del rels[key]
    elif roll < 0.9:
        # A hub takes many relations, so entries cross from dict to PMap and back.
        target = ids[0] if rng.random() < 0.6 else rng.choice(ids)
        kind = rng.choice(("links_to", "depends_on", "runs_on"))
        if node_id in nodes and target in nodes:
            attrs = {"w": rng.randint(0, 2)} if rng.random() < 0.3 else {}
            relation = edit.relate(node_id, kind, target, attrs)
            rels[(node_id, kind, target)] = relation
        else:
            with pytest.raises(Exception, match="no node"):
                edit.relate(node_id, kind, target)
    else:
        candidates = [k for k in rels if k[0] == node_id]
        key = rng.choice(candidates) if candidates and rng.random() < 0.8 else (
            node_id, "links_to", rng.choice(ids))
        assert edit.unrelate(*key) == (key in rels)
        rels.pop(key, None)


@pytest.mark.parametrize("seed", range(6))
def test_random_edits_match_a_reference_model(seed: int) -> None:
    rng = random.Random(seed)
    ids = [f"device/d{i}" for i in range(60)]
    ref: Ref = ({}, {})
    graph = Graph()
    history = [(graph, ({}, {}))]
    for _ in range(60):
        edit = graph.edit()
        journaled = rng.random() < 0.5
        for _ in range(rng.randint(1, 40)):
            if journaled:
                mark = edit.savepoint()
                saved = (dict(ref[0]), dict(ref[1]))
                _step(rng, edit, ref, ids)
                if rng.random() < 0.3:
                    edit.rollback(mark)
                    ref = saved
            else:
                _step(rng, edit, ref, ids)
        new = edit.commit()
        _check(new, ref)
        assert new.version in (graph.version, graph.version + 1)
        history.append((new, (dict(ref[0]), dict(ref[1]))))
        graph = new
    for (old_graph, old_ref), (new_graph, new_ref) in zip(history, history[3:], strict=False):
        _check(old_graph, old_ref)  # old versions untouched by later edits
        _diff_against(old_ref, new_ref, old_graph, new_graph)
    rebuilt = Graph.build(graph.nodes(), graph.relations())
    assert rebuilt.same_content(graph)
    assert not diff(graph, rebuilt)


def test_a_draft_goes_on_after_commit() -> None:
    edit = Graph().edit()
    edit.add("device", "a")
    first = edit.commit()
    edit.add("device", "b")
    edit.relate("device/a", "depends_on", "device/b")
    second = edit.commit()
    assert (first.version, second.version) == (1, 2)
    assert first.node_count == 1
    assert second.relation("device/a", "depends_on", "device/b") is not None
