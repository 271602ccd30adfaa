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


def test_transient_edits_in_place_then_publishes() -> None:
    """A draft sees its own edits; the base map stays as it was."""
    base = PMap.from_items((i, str(i)) for i in range(100))
    draft = base.mutate()
    draft[1000] = "new"
    del draft[5]
    draft.discard(6)
    draft.discard(12345)
    assert draft.get(1000) == "new"
    assert 5 not in draft
    result = draft.finish()
    assert len(result) == 99
    assert result.get(5) is None
    assert result[1000] == "new"
    assert len(base) == 100
    assert base[5] == "5"
    assert 1000 not in base


def test_missing_keys() -> None:
    empty: PMap[str, int] = PMap()
    assert empty.get("x") is None
    assert empty.get("x", 3) == 3
    assert empty.remove("x") is empty
    with pytest.raises(KeyError):
        empty["x"]
    draft = empty.mutate()
    with pytest.raises(KeyError):
        del draft["x"]


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
