"""The system model collector: this host through psutil, as a graph."""

from __future__ import annotations

import asyncio
from typing import Any

import psutil  # type: ignore[import-untyped]
import pytest

from tests.unit.inventory.fakes import until
from watchkeeper.clock import FakeClock
from watchkeeper.inventory import Graph, InventoryManager, Notification
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


# ------------------------------------------------------------- notifications between builds

FACTS = HostFacts(
    host={"hostname": "h1"},
    interfaces={"eth0": {"addresses": [], "up": True}},
    listeners=[Listener(proto="tcp", address="0.0.0.0", port=22, pid=10),
               Listener(proto="tcp", address="0.0.0.0", port=22, pid=12)],
    processes={10: {"name": "sshd", "username": "root", "ppid": 1},
               12: {"name": "sshd", "username": "root", "ppid": 10}},
)


class FactsSystem(SystemModelCollector):
    """The system collector over given facts; the build may wait on ``gate``."""

    def __init__(self, **options: Any) -> None:
        super().__init__(SystemOptions(device="h1", **options), name="system")
        self.gate: asyncio.Event | None = None
        self.reading = asyncio.Event()

    async def build(self, ctx: BuildContext) -> Graph:
        self.reading.set()
        if self.gate is not None:
            await self.gate.wait()
        return system_graph(self.options.device, FACTS)


async def host_model(**options: Any) -> tuple[InventoryManager, FactsSystem]:
    collector = FactsSystem(**options)
    manager = InventoryManager([collector], clock=FakeClock(1000.0))
    assert await manager.get("system").rebuild()
    return manager, collector


def note(event_type: str, **payload: Any) -> Notification:
    return Notification(publisher_id="operator.ops", event_type=event_type, payload=payload)


def model(manager: InventoryManager) -> Graph:
    return manager.get("system").latest().graph


async def test_interface_up_and_down() -> None:
    manager, _ = await host_model()
    down = note("interface.down", device="h1", ifname="eth0")
    assert manager.deliver(down) == 1
    eth0 = model(manager).node("interface/h1/eth0")
    assert eth0 is not None
    assert eth0.attrs["up"] is False
    version = model(manager).version
    assert manager.deliver(down) == 1
    assert model(manager).version == version  # idempotent
    assert manager.deliver(note("interface.down", device="h2", ifname="eth0")) == 1  # not ours
    assert manager.deliver(note("interface.down", component="h1", ifname="eth9")) == 1  # unknown
    assert model(manager).version == version
    assert manager.deliver(Notification(publisher_id="pipeline.tell", event_type="interface.up",
                                        payload={"component": "h1", "resource": "eth0"})) == 1
    eth0 = model(manager).node("interface/h1/eth0")
    assert eth0 is not None
    assert eth0.attrs["up"] is True


async def test_processes_start_and_exit() -> None:
    manager, _ = await host_model()
    started = note("process.started", device="h1", pid=42, name="nginx", username="www",
                   ppid=1, create_time=990.5)
    assert manager.deliver(started) == 1
    proc = model(manager).node("process/h1/42")
    assert proc is not None
    assert (proc.name, dict(proc.attrs)) == ("nginx", {"pid": 42, "name": "nginx",
                                                       "username": "www", "ppid": 1,
                                                       "create_time": 990.5})
    assert [n.id for n in model(manager).neighbours(proc.id, RUNS_ON)] == ["device/h1"]
    version = model(manager).version
    assert manager.deliver(started) == 1
    assert model(manager).version == version
    # A start the build already saw keeps what the build knew.
    assert manager.deliver(note("process.started", device="h1", pid="10", name="sshd")) == 1
    sshd = model(manager).node("process/h1/10")
    assert sshd is not None
    assert sshd.attrs["username"] == "root"
    exited = note("process.exited", device="h1", pid=12)
    assert manager.deliver(exited) == 1
    graph = model(manager)
    assert graph.node("process/h1/12") is None
    ssh = graph.node("service/h1/tcp%3A22")
    assert ssh is not None
    assert ssh.attrs["pids"] == [10]
    assert [n.name for n in graph.neighbours(ssh.id, PROVIDED_BY)] == ["sshd"]
    version = graph.version
    assert manager.deliver(exited) == 1
    assert model(manager).version == version


@pytest.mark.parametrize(("event_type", "payload", "message"), [
    ("process.started", {"device": "h1", "name": "x"}, "payload field 'pid' is missing"),
    ("process.started", {"device": "h1", "pid": -1, "name": "x"},
     "payload field 'pid' must be a whole number, not -1"),
    ("process.started", {"device": "h1", "pid": 5}, "payload field 'name' is missing"),
    ("process.started", {"device": "h1", "pid": 5, "name": "x", "create_time": "x"},
     "payload field 'create_time' must be epoch seconds"),
    ("process.exited", {"pid": 5}, "payload field 'device' is missing (or 'component')"),
    ("interface.up", {"device": "h1"}, "payload field 'ifname' is missing"),
])
async def test_bad_payloads_name_the_field(event_type: str, payload: dict[str, Any],
                                           message: str,
                                           caplog: pytest.LogCaptureFixture) -> None:
    manager, _ = await host_model()
    assert manager.deliver(note(event_type, **payload)) == 0
    assert message in caplog.text


async def test_endpoints_follow_the_options() -> None:
    assert [e.event_type for e in FactsSystem().endpoints()] == [
        r"interface\.(?:up|down)$", r"process\.started$", r"process\.exited$"]
    assert FactsSystem(interfaces=False, processes=False).endpoints() == []
    manager, _ = await host_model(processes=False)
    assert manager.deliver(note("process.exited", device="h1", pid=10)) == 0


async def test_a_process_exit_during_a_rebuild_survives_it() -> None:
    manager, collector = await host_model()
    collector.gate = asyncio.Event()
    collector.reading.clear()
    rebuild = asyncio.create_task(manager.get("system").rebuild())
    await until(collector.reading.is_set)
    assert manager.deliver(note("process.exited", device="h1", pid=12)) == 1
    collector.gate.set()
    assert await rebuild
    assert model(manager).node("process/h1/12") is None
