"""The persistent map: dict semantics, untouched old versions, cheap diffs."""

from __future__ import annotations

import random

import pytest

from watchkeeper.inventory.pmap import PMap, changed_keys


class Collide:
    """A key whose hash collides with every other instance's."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __hash__(self) -> int:
        return 42

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Collide) and other.name == self.name


def test_behaves_like_a_dict_under_random_edits() -> None:
    """Thousands of random sets and removes agree with a dict, and old versions never change."""
    rng = random.Random(7)
    ref: dict[int, int] = {}
    current: PMap[int, int] = PMap()
    versions: list[tuple[PMap[int, int], dict[int, int]]] = []
    for step in range(6000):
        key = rng.randrange(3000)
        if rng.random() < 0.3:
            ref.pop(key, None)
            current = current.remove(key)
        else:
            ref[key] = step
            current = current.set(key, step)
        if step % 500 == 0:
            versions.append((current, dict(ref)))
    assert dict(current.items()) == ref
    assert len(current) == len(ref)
    for version, expected in versions:
        assert dict(version.items()) == expected
        assert all(version[k] == v for k, v in expected.items())


def test_missing_keys() -> None:
    empty: PMap[str, int] = PMap()
    assert empty.get("x") is None
    assert empty.get("x", 3) == 3
    assert empty.remove("x") is empty
    with pytest.raises(KeyError):
        empty["x"]


def test_colliding_hashes_still_work() -> None:
    """Keys with identical hashes end in one leaf that simply grows."""
    keys = [Collide(str(i)) for i in range(200)]
    pmap = PMap.from_items((k, k.name) for k in keys)
    assert len(pmap) == 200
    assert all(pmap[k] == k.name for k in keys)
    assert pmap.remove(keys[3]).get(keys[3]) is None


def test_changed_keys_skips_shared_structure() -> None:
    """Two versions a few edits apart report exactly those edits."""
    base = PMap.from_items((f"k{i}", i) for i in range(20_000))
    after = base.set("k1", -1).remove("k2").set("new", 0).set("k3", 3)  # k3: same value
    assert sorted(changed_keys(base, after)) == ["k1", "k2", "new"]
    assert list(changed_keys(after, after)) == []


def test_changed_keys_between_independent_builds() -> None:
    """Maps built separately (different layouts) compare by content."""
    a = PMap.from_items((i, i) for i in range(5000))
    b = PMap.from_items((i, i) for i in reversed(range(5000)))
    assert a == b
    small = PMap.from_items((i, i) for i in range(10))  # a leaf against a branch
    assert sorted(changed_keys(small, a)) == list(range(10, 5000))
    assert a != b.set(7, 8)
    assert (a == {}) is False


def _leaf_nodes(node: object) -> list[int]:
    """Ids of every branch and leaf of a trie."""
    found = [id(node)]
    if type(node) is list:
        for child in node:
            found += _leaf_nodes(child)
    return found


@pytest.mark.parametrize(
    ("base_size", "items", "removed"),
    [
        (0, [], []),  # nothing on nothing
        (10, [("k1", -1)], []),  # small map (one dict): one set
        (10, [], ["k1", "absent"]),  # small map: removals, one absent
        (5000, [], []),  # nothing to do: the same map
        (5000, [("k7", -7)], []),  # one set: a path copy
        (5000, [("new", 1)], []),  # one insert
        (5000, [], ["k7"]),  # one removal
        (5000, [], ["absent"]),  # one absent removal
        (5000, [("k1", -1), ("k2", -2), ("new", 3)], ["k4", "absent"]),  # a few of each
        (5000, [("k1", -1), ("k1", -2)], []),  # the same key twice: the last wins
        (5000, [("k1", -1)], ["k1"]),  # set and removed: the removal wins
        (5000, [("new", 1)], ["new"]),  # inserted and removed: absent
        (5000, [(f"n{i}", i) for i in range(3000)], [f"k{i}" for i in range(0, 5000, 3)]),
        (100_000, [(f"k{i}", -i) for i in range(0, 100_000, 7)], [f"k{i}" for i in range(50)]),
    ],
)
def test_update_table(base_size: int, items: list[tuple[str, int]], removed: list[str]) -> None:
    """update() against a dict, with the old version untouched and untouched nodes shared."""
    flat = {f"k{i}": i for i in range(base_size)}
    base = PMap.of(flat)
    before = dict(base.items())
    result = base.update(items, removed)
    expected = dict(flat)
    expected.update(items)
    for key in removed:
        expected.pop(key, None)
    assert dict(result.items()) == expected
    assert len(result) == len(expected)
    assert dict(base.items()) == before  # the old version is untouched
    assert set(changed_keys(base, result)) == {k for k in expected.keys() | flat.keys()
                                               if expected.get(k, "-") != flat.get(k, "-")}
    if not items and not removed and type(base.trie) is list:
        assert result is base
    if type(base.trie) is list and len(items) + len(removed) < 10:
        # Only the touched paths are new: everything else is the base's own nodes.
        shared = set(_leaf_nodes(base.trie))
        fresh = [n for n in _leaf_nodes(result.trie) if n not in shared]
        assert len(fresh) <= 4 * (len(items) + len(removed))


def test_update_splits_overfull_leaves() -> None:
    """A bulk insert landing many keys in one leaf splits it like single sets would."""
    keys = [Collide(str(i)) for i in range(3)]
    base = PMap.of({f"k{i}": i for i in range(2000)})
    grown = base.update([(f"x{i}", i) for i in range(500)] + [(k, k.name) for k in keys])
    assert len(grown) == 2503
    assert all(grown[f"x{i}"] == i for i in range(500))
    assert all(grown[k] == k.name for k in keys)
    assert all(len(leaf) <= 32 for leaf in _leaves_of(grown.trie))


def _leaves_of(node: object) -> list[dict[object, object]]:
    if type(node) is list:
        return [leaf for child in node for leaf in _leaves_of(child)]
    assert isinstance(node, dict)
    return [node]
