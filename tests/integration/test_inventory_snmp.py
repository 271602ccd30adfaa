"""The snmp model collector against the real snmpd on udp 127.0.0.1:16161 (v2c and v3).

The interface list must equal what net-snmp's own ``snmpwalk`` reads from ifDescr.
"""

from __future__ import annotations

import re
import shutil
import subprocess

import msgspec
import pytest

from watchkeeper.clock import SystemClock
from watchkeeper.collect.builtin.snmp import SnmpCollector as SnmpPoller
from watchkeeper.collect.builtin.snmp import SnmpOptions as SnmpPollOptions
from watchkeeper.collect.scheduler import PollOutcome
from watchkeeper.collect.testing import poll_once
from watchkeeper.inventory import Graph, InventoryManager
from watchkeeper.inventory.abc import BuildContext
from watchkeeper.inventory.builtin._snmpwalk import SnmpTarget
from watchkeeper.inventory.builtin.snmp import SnmpModelCollector, SnmpOptions
from watchkeeper.inventory.graph import HAS_INTERFACE
from watchkeeper.model import Device, Event
from watchkeeper.pipeline import Services
from watchkeeper.runtime.assemble import build_engines
from watchkeeper.runtime.bridge import outcome_event
from watchkeeper.runtime.inventory import pipeline_notify
from watchkeeper.settings import load_settings
from watchkeeper.telemetry import SelfMetrics

pytestmark = [pytest.mark.external_service, pytest.mark.timeout(60)]

AGENT = ("127.0.0.1", 16161)
V2C = SnmpTarget(device="agent", address=AGENT[0], port=AGENT[1], community="public")
V3 = SnmpTarget(device="agent", address=AGENT[0], port=AGENT[1], version="3", user="wkuser",
                auth_protocol="SHA", auth_key="wkauthpass123", priv_protocol="AES",
                priv_key="wkprivpass123")


def snmpwalk_if_descr() -> list[str]:
    """ifDescr as net-snmp's snmpwalk prints it, in ifIndex order."""
    if shutil.which("snmpwalk") is None:
        pytest.skip("snmpwalk is not installed (scripts/services up installs it)")
    out = subprocess.run(
        ["snmpwalk", "-v2c", "-c", "public", "-On", "-Oq", f"{AGENT[0]}:{AGENT[1]}",
         ".1.3.6.1.2.1.2.2.1.2"],
        capture_output=True, text=True, timeout=20, check=True).stdout
    names = []
    for line in out.splitlines():
        match = re.match(r"^\S+\s+\"?(.*?)\"?$", line.strip())
        if match:
            names.append(match.group(1))
    return names


async def build(target: SnmpTarget) -> Graph:
    clock = SystemClock()
    collector = SnmpModelCollector(SnmpOptions(targets=(target,)), name="snmp")
    return await collector.build(BuildContext(collector="snmp", clock=clock,
                                              started=clock.time(), deadline=clock.time() + 30,
                                              previous=Graph()))


@pytest.mark.parametrize("target", [V2C, V3], ids=["v2c", "v3-authPriv"])
async def test_interfaces_equal_what_snmpwalk_sees(target: SnmpTarget) -> None:
    expected = snmpwalk_if_descr()
    assert expected  # the agent serves ifTable (lo, eth0, ...)
    graph = await build(target)
    ports = graph.neighbours("device/agent", HAS_INTERFACE)
    by_index = sorted(ports, key=lambda n: n.attrs["index"])
    assert [n.attrs["descr"] for n in by_index] == expected
    assert all(n.attrs.get("oper_status") in ("up", "down", "unknown", "dormant",
                                              "lowerLayerDown", "notPresent", "testing")
               for n in ports)
    agent = graph.node("device/agent")
    assert agent is not None
    assert agent.attrs["sys_name"] == "wk-test-agent"


async def test_an_agent_that_does_not_answer_leaves_the_model_stale() -> None:
    """Wrong community: the agent stays silent; the build fails and nothing partial lands."""
    silent = SnmpTarget(device="silent", address=AGENT[0], port=AGENT[1], community="wrong",
                        request_timeout=0.3, retries=0)
    collector = SnmpModelCollector(SnmpOptions(targets=(V2C, silent), timeout=20), name="snmp")
    manager = InventoryManager([collector], clock=SystemClock())
    assert not await manager.get("snmp").rebuild()
    snapshot = manager.get("snmp").latest()
    assert snapshot.stale
    assert "silent (127.0.0.1:16161)" in (snapshot.stale_reason or "")
    assert snapshot.graph.node_count == 0  # never a model with only the agent that answered


CHAIN = """\
engines:
  - name: to-inventory
    engine: inventory_notify
    options: {event_types: ['inventory\\.', 'check$']}
"""


async def test_the_pipeline_keeps_the_snmp_model_fresh() -> None:
    """Events through inventory_notify reach the snmp model: an interface going down, and
    watchkeeper's own snmp checks marking the agent silent, then answering again."""
    clock = SystemClock()
    collector = SnmpModelCollector(SnmpOptions(targets=(V2C,)), name="lab-snmp")
    manager = InventoryManager([collector], clock=clock)
    live = manager.get("lab-snmp")
    assert await live.rebuild()
    port = live.latest().graph.neighbours("device/agent", HAS_INTERFACE)[0]
    settings, locator = load_settings(CHAIN, source="wk.yaml")
    services = Services(clock=clock, metrics=SelfMetrics(), notify=pipeline_notify(manager))
    (engine,) = build_engines(settings, locator, services)
    assert engine.batch_task is not None

    down = Event(event_type="inventory.interface.down", component="agent",
                 resource=port.name, timestamp=clock.time())
    await engine.batch_task(engine, [down])
    after = live.latest().graph.node(port.id)
    assert after is not None
    assert after.attrs["oper_status"] == "down"

    agent = Device(name="agent", address=AGENT[0],
                   connections={"snmp": {"port": AGENT[1], "community": "wrong",
                                         "request_timeout": 0.3, "retries": 0}})
    polls = SnmpPoller(SnmpPollOptions(interfaces=True), name="snmp")
    try:
        silent = await poll_once(polls, agent, timeout=3)
        answered = await poll_once(polls, msgspec.structs.replace(
            agent, connections={"snmp": {"port": AGENT[1]}}), timeout=10)
    finally:
        await polls.aclose()
    for result, reachable in ((silent, False), (answered, True)):
        outcome = PollOutcome(plugin="snmp", job_id="snmp:agent", device=agent,
                              scheduled=clock.time(), started=clock.time(),
                              finished=clock.time(), result=result)
        await engine.batch_task(engine, [outcome_event(outcome)])
        node = live.latest().graph.node("device/agent")
        assert node is not None
        assert ("unreachable" not in node.attrs) is reachable, (result.check.summary, node)
        if not reachable:
            assert node.attrs["unreachable"].startswith("no SNMP answer from 127.0.0.1:16161")
    assert live.stats().notification_errors == 0
