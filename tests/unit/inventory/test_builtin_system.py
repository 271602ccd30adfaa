"""The system model collector: this host through psutil, as a graph."""

from __future__ import annotations

import psutil  # type: ignore[import-untyped]

from watchkeeper.clock import FakeClock
from watchkeeper.inventory import Graph
from watchkeeper.inventory.abc import BuildContext
from watchkeeper.inventory.builtin.system import (
    HostFacts,
    Listener,
    SystemModelCollector,
    SystemOptions,
    system_graph,
)
from watchkeeper.inventory.graph import HAS_INTERFACE, PROVIDED_BY, RUNS_ON


def test_facts_become_a_graph() -> None:
    facts = HostFacts(
        host={"hostname": "h1", "os": "Linux"},
        interfaces={"lo": {"addresses": ["127.0.0.1"], "up": True},
                    "eth0": {"addresses": ["192.0.2.2"], "up": True, "mtu": 1500}},
        listeners=[Listener(proto="tcp", address="0.0.0.0", port=22, pid=10),
                   Listener(proto="tcp6", address="::", port=22, pid=10),
                   Listener(proto="udp", address="127.0.0.1", port=161, pid=None)],
        processes={10: {"name": "sshd", "username": "root"}, 11: {"name": "cron"}},
    )
    graph = system_graph("localhost", facts)
    host = graph.node("device/localhost")
    assert host is not None
    assert host.attrs == {"hostname": "h1", "os": "Linux"}
    assert host.labels == {"self"}
    assert sorted(n.name for n in graph.neighbours(host.id, HAS_INTERFACE)) == ["eth0", "lo"]
    ssh = graph.node("service/localhost/tcp%3A22")
    assert ssh is not None
    assert ssh.attrs == {"proto": "tcp", "port": 22, "addresses": ["0.0.0.0", "::"],
                         "pids": [10]}
    assert [n.name for n in graph.neighbours(ssh.id, PROVIDED_BY)] == ["sshd"]
    assert [n.name for n in graph.neighbours(ssh.id, RUNS_ON)] == ["localhost"]
    assert graph.neighbours("service/localhost/udp%3A161", PROVIDED_BY) == []
    on_host = sorted(n.name for n in graph.neighbours(host.id, RUNS_ON, "in"))
    assert on_host == ["cron", "sshd", "tcp:22", "udp:161"]


def test_the_same_host_twice_is_the_same_model() -> None:
    """Only stable facts: reading twice gives equal graphs, so a rebuild bumps no version."""
    facts = HostFacts(host={"hostname": "h"}, processes={1: {"name": "init"}})
    assert system_graph("h", facts).same_content(system_graph("h", facts))


async def test_this_host(clock: FakeClock) -> None:
    """The real host: its interfaces and this test's own process are in the model."""
    options = SystemOptions(device="me")
    ctx = BuildContext(collector="system", clock=clock, started=clock.time(),
                       deadline=clock.time() + 60, previous=Graph())
    graph = await SystemModelCollector(options, name="system").build(ctx)
    ifaces = {n.name for n in graph.neighbours("device/me", HAS_INTERFACE)}
    assert ifaces == set(psutil.net_if_stats()) | set(psutil.net_if_addrs())
    me = graph.node(f"process/me/{psutil.Process().pid}")
    assert me is not None
    assert me.attrs["pid"] == psutil.Process().pid
