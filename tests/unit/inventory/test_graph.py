"""The immutable graph: edits, cascades, versions and diffs."""

from __future__ import annotations

import pytest

from watchkeeper.errors import InventoryError
from watchkeeper.inventory import Graph, Node, Relation, diff, node_id
from watchkeeper.inventory.graph import HAS_INTERFACE, IN_SITE, LINKS_TO


def small() -> Graph:
    edit = Graph().edit()
    edit.add("site", "par1")
    for name in ("core1", "edge1"):
        dev = edit.add("device", name, attrs={"address": f"10.0.0.{len(name)}"},
                       labels=("core",) if name == "core1" else ())
        edit.relate(dev.id, IN_SITE, node_id("site", "par1"))
        iface = edit.add("interface", name, "eth0")
        edit.relate(dev.id, HAS_INTERFACE, iface.id)
    a, b = node_id("interface", "core1", "eth0"), node_id("interface", "edge1", "eth0")
    edit.relate(a, LINKS_TO, b)
    edit.relate(b, LINKS_TO, a)
    return edit.commit()


def test_node_ids_quote_their_parts() -> None:
    assert node_id("interface", "core1", "ge-0/0/1") == "interface/core1/ge-0%2F0%2F1"
    assert node_id("device", "a/b") != node_id("device", "a", "b")


def test_build_and_read() -> None:
    graph = small()
    assert graph.version == 1
    assert graph.node_count == 5
    assert graph.relation_count == 6
    assert {n.name for n in graph.nodes("device")} == {"core1", "edge1"}
    assert [n.name for n in graph.nodes(label="core")] == ["core1"]
    core = node_id("device", "core1")
    assert [n.name for n in graph.neighbours(core, HAS_INTERFACE)] == ["eth0"]
    assert {n.name for n in graph.neighbours(node_id("site", "par1"), IN_SITE, "in")} == {
        "core1", "edge1"}
    assert len(graph.relations_of(core, direction="both")) == 2
    assert len(list(graph.relations(LINKS_TO))) == 2
    assert core in graph
    assert graph.node(core) is not None
    assert "Graph(version=1" in repr(graph)


def test_graph_build_from_values() -> None:
    relation = Relation(source="a", kind="depends_on", target="b")
    graph = Graph.build([Node(id="a", kind="x"), Node(id="b", kind="x")], [relation])
    assert graph.version == 0
    assert graph.relation("a", "depends_on", "b") == relation


def test_edits_make_a_new_version_and_leave_the_old_one_alone() -> None:
    before = small()
    edit = before.edit()
    edit.update(node_id("device", "core1"), attrs={"role": "core", "address": None})
    after = edit.commit()
    assert after.version == before.version + 1
    assert after.node(node_id("device", "core1")).attrs == {"role": "core"}  # type: ignore[union-attr]
    assert before.node(node_id("device", "core1")).attrs == {"address": "10.0.0.5"}  # type: ignore[union-attr]


def test_an_edit_that_changes_nothing_returns_the_same_graph() -> None:
    """Idempotent edits (equal node, existing relation, missing removal) are no version."""
    graph = small()
    edit = graph.edit()
    edit.put(graph.node(node_id("device", "core1")))  # type: ignore[arg-type]
    edit.relate(node_id("device", "core1"), IN_SITE, node_id("site", "par1"))
    assert not edit.remove("device/nope")
    assert not edit.unrelate("a", "b", "c")
    assert edit.update("device/nope", attrs={"x": 1}) is None
    assert edit.commit() is graph


def test_removing_a_node_removes_its_relations() -> None:
    graph = small()
    edit = graph.edit()
    assert edit.remove(node_id("interface", "core1", "eth0"))
    after = edit.commit()
    assert after.relation_count == 3
    assert after.neighbours(node_id("device", "core1"), HAS_INTERFACE) == []
    assert after.relations_of(node_id("interface", "edge1", "eth0")) == []
    change = diff(graph, after)
    assert [n.name for n in change.disappeared] == ["eth0"]
    assert len(change.relations_disappeared) == 3
    assert not change.appeared
    assert not change.changed


def test_relations_need_both_ends() -> None:
    edit = small().edit()
    with pytest.raises(InventoryError, match="no node 'device/ghost'"):
        edit.relate(node_id("device", "core1"), "depends_on", "device/ghost")


def test_draft_reads_see_pending_relations() -> None:
    """Adding then removing within one draft cascades correctly."""
    edit = Graph().edit()
    edit.add("device", "a")
    edit.add("device", "b")
    edit.relate("device/a", "depends_on", "device/b")
    assert [r.target for r in edit.relations_of("device/a")] == ["device/b"]
    edit.remove("device/b")
    graph = edit.commit()
    assert graph.relation_count == 0
    assert graph.relations_of("device/a") == []


def test_relation_attrs_change_is_a_change() -> None:
    graph = small()
    a, b = node_id("interface", "core1", "eth0"), node_id("interface", "edge1", "eth0")
    edit = graph.edit()
    edit.relate(a, LINKS_TO, b, {"speed": 10})
    after = edit.commit()
    change = diff(graph, after)
    changed = [(old.attrs, new.attrs) for old, new in change.relations_changed]
    assert changed == [({}, {"speed": 10})]
    assert change


def test_diff_of_independent_builds_compares_content() -> None:
    """Two separate builds of the same content differ in nothing."""
    one, two = small(), small()
    assert one.same_content(two)
    assert not diff(one, two)
    edit = two.edit()
    edit.add("device", "new1")
    edit.update(node_id("device", "core1"), labels=("core", "paris"))
    three = edit.commit()
    change = diff(one, three)
    assert [n.name for n in change.appeared] == ["new1"]
    assert [(a.labels, b.labels) for a, b in change.changed] == [
        (frozenset({"core"}), frozenset({"core", "paris"}))]
    assert (change.from_version, change.to_version) == (1, 2)


def test_savepoints_undo_part_of_a_draft() -> None:
    """Rolled-back edits leave nothing: nodes, relations and adjacency all return."""
    graph = small()
    edit = graph.edit()
    edit.add("device", "kept")
    mark = edit.savepoint()
    edit.add("device", "dropped")
    edit.relate("device/dropped", "depends_on", node_id("device", "core1"))
    edit.remove(node_id("interface", "core1", "eth0"))
    edit.unrelate(node_id("device", "edge1"), IN_SITE, node_id("site", "par1"))
    edit.rollback(mark)
    after = edit.commit()
    change = diff(graph, after)
    assert [n.name for n in change.appeared] == ["kept"]
    assert not change.disappeared
    assert not change.relations_appeared
    assert not change.relations_disappeared
    assert len(after.relations_of(node_id("device", "core1"), direction="both")) == 2
    nothing = graph.edit()
    first = nothing.savepoint()
    nothing.add("device", "x")
    nothing.rollback(first)
    assert nothing.commit() is graph
