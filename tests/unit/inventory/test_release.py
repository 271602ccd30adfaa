"""Old versions are dropped piecemeal; what live versions share stays intact."""

from __future__ import annotations

from watchkeeper.inventory import Graph
from watchkeeper.inventory.release import _pending, drop, release, wait_idle


def big(count: int) -> Graph:
    edit = Graph().edit()
    for index in range(count):
        edit.add("device", f"d{index}")
        if index:
            edit.relate(f"device/d{index}", "depends_on", f"device/d{index - 1}")
    return edit.commit()


def test_dropping_an_old_version_leaves_newer_ones_whole() -> None:
    old = big(5000)
    edit = old.edit()
    edit.remove("device/d7")
    edit.add("device", "new")
    new = edit.commit()
    expected = {n.id for n in new.nodes()}
    drop(old)
    del old
    assert {n.id for n in new.nodes()} == expected
    assert new.relation_count == 4997
    assert new.relation("device/d9", "depends_on", "device/d8") is not None


def test_the_releaser_runs_in_the_background() -> None:
    release(big(2000))
    assert wait_idle(timeout=5)
    assert not _pending

