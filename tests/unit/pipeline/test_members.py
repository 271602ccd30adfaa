"""How the workers of a partitioned engine split its partitions (pure logic of bus/members)."""

from __future__ import annotations

from dataclasses import dataclass

from watchkeeper.pipeline.bus.members import Members, share


def test_the_live_members_split_the_partitions_evenly_and_completely() -> None:
    """Each partition goes to exactly one member; shares differ by at most one."""
    members = ["c", "a", "b"]
    shares = {m: share(members, m, 8) for m in members}
    assert shares == {"a": [0, 3, 6], "b": [1, 4, 7], "c": [2, 5]}
    assert share([], "solo", 4) == [0, 1, 2, 3]  # alone, a worker takes everything
    assert share(["x"], "y", 2) == [1]  # a worker counts itself even if unheard


@dataclass
class _Message:
    body: bytes


async def test_members_are_heard_and_forgotten_when_silent_or_leaving() -> None:
    """A heartbeat adds a member, silence beyond the timeout or a goodbye removes it; each
    change is signalled."""
    now = [100.0]
    members = Members(None, "wk.members.alarms", heartbeat=0.5, timeout=2.0,
                      now=lambda: now[0])
    members.me = "m"
    await members._on_beat(_Message(b'{"member": "z"}'))
    await members._on_beat(_Message(b'{"member": "a"}'))
    await members._on_beat(_Message(b'{"member": "m"}'))  # its own echo
    await members._on_beat(_Message(b"not json"))
    assert members.alive() == ["a", "m", "z"]
    assert members.changed.is_set()
    members.changed.clear()
    now[0] += 1.5
    await members._on_beat(_Message(b'{"member": "a"}'))
    assert not members.changed.is_set()  # a known member: nothing changed
    now[0] += 1.0
    assert members.alive() == ["a", "m"]  # z fell silent
    assert members.changed.is_set()
    members.changed.clear()
    await members._on_beat(_Message(b'{"member": "a", "leaving": true}'))
    assert members.alive() == ["m"]
    assert members.changed.is_set()
