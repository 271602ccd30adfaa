"""The live inventory model at 100,000 nodes and 300,000 relations.

Measures, on the real clock:

* full rebuild: building the model from already-fetched source rows (the inventory's own
  cost, in a worker thread as a CPU-heavy collector should), and the whole
  ``LiveModel.rebuild`` (build, compare with the previous model, swap);
* notification apply rate: interface status changes, links up/down, devices created and
  deleted with their interfaces, through ``InventoryManager.deliver``;
* snapshot cost: ``manager.get(name).latest()`` at 1,000, 10,000 and 100,000 nodes;
* reader latency (one read = take the snapshot, look a device up, walk its interfaces)
  from a task on the event loop and from a thread, idle and while rebuilds run.

Goals: >= 50,000 notifications/s; snapshot <= 1 ms whatever the size; rebuild of
100,000 nodes <= 2 s with reader p99 during a rebuild within 2x of idle.

    python benchmarks/inventory.py [--nodes 100000] [--notifications 200000]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import random
import statistics
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from watchkeeper.clock import SystemClock
from watchkeeper.inventory import (
    BuildContext,
    CollectorOptions,
    Graph,
    GraphEdit,
    InventoryManager,
    ModelCollector,
    Notification,
    NotificationEndpoint,
    node_id,
    release,
)
from watchkeeper.inventory.graph import DEPENDS_ON, HAS_INTERFACE, IN_SITE, LINKS_TO


@dataclass(frozen=True)
class Source:
    """The "already fetched" rows a collector turns into a model."""

    sites: list[str]
    devices: list[tuple[str, str, str]]  # name, site, upstream
    interfaces: list[tuple[str, str]]  # device, interface
    links: list[tuple[str, str, str, str]]  # device a, iface a, device b, iface b


def make_source(nodes: int, seed: int = 1) -> Source:
    """~1% sites, ~9.9% devices, ~89% interfaces; relations = 3 x nodes."""
    rng = random.Random(seed)
    sites = [f"site{i}" for i in range(max(1, nodes // 1000))]
    n_devices = max(2, nodes * 99 // 1000)
    n_ifaces = nodes - len(sites) - n_devices
    devices = [(f"dev{i}", sites[i % len(sites)], f"dev{(i * 7 + 1) % n_devices}")
               for i in range(n_devices)]
    interfaces = [(f"dev{i % n_devices}", f"eth{i // n_devices}") for i in range(n_ifaces)]
    n_links = (3 * nodes - 2 * n_devices - n_ifaces) // 2
    links: list[tuple[str, str, str, str]] = []
    seen: set[tuple[int, int]] = set()
    while len(links) < n_links:
        a, b = rng.randrange(n_ifaces), rng.randrange(n_ifaces)
        if a == b or (a, b) in seen or (b, a) in seen:
            continue
        seen.add((a, b))
        links.append((*interfaces[a], *interfaces[b]))
    return Source(sites=sites, devices=devices, interfaces=interfaces, links=links)


def build_graph(source: Source) -> Graph:
    edit = Graph().edit()
    for site in source.sites:
        edit.add("site", site)
    for name, _, _ in source.devices:
        edit.add("device", name, attrs={"address": f"10.{len(name)}.0.1", "role": "access"},
                 labels=("bench",))
    for name, site, upstream in source.devices:
        device = node_id("device", name)
        edit.relate(device, IN_SITE, node_id("site", site))
        edit.relate(device, DEPENDS_ON, node_id("device", upstream))
    for device, iface in source.interfaces:
        node = edit.add("interface", device, iface, attrs={"oper": "up", "mtu": 1500})
        edit.relate(node_id("device", device), HAS_INTERFACE, node.id)
    for dev_a, if_a, dev_b, if_b in source.links:
        a, b = node_id("interface", dev_a, if_a), node_id("interface", dev_b, if_b)
        edit.relate(a, LINKS_TO, b)
        edit.relate(b, LINKS_TO, a)
    return edit.commit()


class BenchCollector(ModelCollector):
    """Builds the synthetic model in a worker thread; applies five kinds of notification."""

    def __init__(self, source: Source, name: str = "bench") -> None:
        super().__init__(CollectorOptions(period=3600, timeout=600), name=name)
        self.source = source

    async def build(self, ctx: BuildContext) -> Graph:
        return await asyncio.to_thread(build_graph, self.source)

    def endpoints(self) -> list[NotificationEndpoint]:
        return [
            NotificationEndpoint(handler=_status, publisher_id="snmp-trap",
                                 event_type=r"interface\.status$"),
            NotificationEndpoint(handler=_link_up, event_type=r"link\.up$"),
            NotificationEndpoint(handler=_link_down, event_type=r"link\.down$"),
            NotificationEndpoint(handler=_created, event_type=r"device\.created$"),
            NotificationEndpoint(handler=_deleted, event_type=r"device\.deleted$"),
        ]


def _status(edit: GraphEdit, n: Notification) -> None:
    edit.update(n.payload["id"], attrs={"oper": n.payload["oper"]})


def _link_up(edit: GraphEdit, n: Notification) -> None:
    a, b = n.payload["a"], n.payload["b"]
    if a in edit and b in edit:
        edit.relate(a, LINKS_TO, b)
        edit.relate(b, LINKS_TO, a)


def _link_down(edit: GraphEdit, n: Notification) -> None:
    edit.unrelate(n.payload["a"], LINKS_TO, n.payload["b"])
    edit.unrelate(n.payload["b"], LINKS_TO, n.payload["a"])


def _created(edit: GraphEdit, n: Notification) -> None:
    name = n.payload["name"]
    device = edit.add("device", name, attrs={"address": "192.0.2.1"})
    edit.relate(device.id, IN_SITE, node_id("site", n.payload["site"]))
    for port in range(4):
        iface = edit.add("interface", name, f"eth{port}", attrs={"oper": "up"})
        edit.relate(device.id, HAS_INTERFACE, iface.id)


def _deleted(edit: GraphEdit, n: Notification) -> None:
    name = n.payload["name"]
    for port in range(4):
        edit.remove(node_id("interface", name, f"eth{port}"))
    edit.remove(node_id("device", name))


def notifications(source: Source, count: int, seed: int = 2,
                  prefix: str = "new") -> list[Notification]:
    """70% status changes, 10% links up, 10% links down, 5% devices created, 5% deleted."""
    rng = random.Random(seed)
    ifaces = [node_id("interface", d, i) for d, i in source.interfaces]
    out: list[Notification] = []
    created = 0
    for _ in range(count):
        roll = rng.random()
        if roll < 0.7:
            out.append(Notification(publisher_id="snmp-trap.r1", event_type="interface.status",
                                    payload={"id": rng.choice(ifaces),
                                             "oper": rng.choice(("up", "down"))}))
        elif roll < 0.8:
            out.append(Notification(publisher_id="lldp", event_type="link.up",
                                    payload={"a": rng.choice(ifaces), "b": rng.choice(ifaces)}))
        elif roll < 0.9:
            dev_a, if_a, dev_b, if_b = rng.choice(source.links)
            out.append(Notification(publisher_id="lldp", event_type="link.down",
                                    payload={"a": node_id("interface", dev_a, if_a),
                                             "b": node_id("interface", dev_b, if_b)}))
        elif roll < 0.95 or created == 0:
            created += 1
            out.append(Notification(publisher_id="cmdb", event_type="device.created",
                                    payload={"name": f"{prefix}{created}",
                                             "site": rng.choice(source.sites)}))
        else:
            out.append(Notification(publisher_id="cmdb", event_type="device.deleted",
                                    payload={"name": f"{prefix}{rng.randint(1, created)}"}))
    return out


def pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def describe(samples: list[float]) -> str:
    return (f"n={len(samples):>7,}  p50 {pct(samples, 0.5) * 1e6:7.1f} us  "
            f"p99 {pct(samples, 0.99) * 1e6:7.1f} us  max {max(samples) * 1e3:7.2f} ms")


class Readers:
    """A reader task on the loop (every 0.5 ms) and a reader thread, recording each read."""

    def __init__(self, read: Callable[[], None]) -> None:
        self.read = read
        self.loop_ops: list[float] = []
        self.thread_ops: list[float] = []
        self.lateness: list[float] = []
        self.window = "idle"
        self.samples: dict[str, dict[str, list[float]]] = {}
        self._stop = threading.Event()

    def _record(self, kind: str, value: float) -> None:
        self.samples.setdefault(self.window, {}).setdefault(kind, []).append(value)

    async def loop_reader(self) -> None:
        period = 0.0005
        due = time.perf_counter()
        while not self._stop.is_set():
            due += period
            await asyncio.sleep(max(0.0, due - time.perf_counter()))
            woke = time.perf_counter()
            self._record("loop wake-up lateness", max(0.0, woke - due))
            self.read()
            self._record("loop read", time.perf_counter() - woke)
            if woke - due > 0.05:
                due = woke  # do not try to catch up after a long stall

    def thread_reader(self) -> None:
        while not self._stop.is_set():
            start = time.perf_counter()
            self.read()
            self._record("thread read", time.perf_counter() - start)
            time.sleep(0.0002)

    def stop(self) -> None:
        self._stop.set()


async def bench(args: argparse.Namespace) -> None:
    print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} at start")
    print(f"generating a model of {args.nodes:,} nodes ...")
    source = make_source(args.nodes)
    sources = [make_source(args.nodes, seed=seed) for seed in range(1, 4)]
    args.reader_sources = [make_source(args.nodes, seed=10 + i) for i in range(args.rebuilds)]
    # The generated rows are the benchmark's fixtures, not the system under test: keep the
    # collector's millions of source references out of every GC pass over the models.
    gc.collect()
    gc.freeze()
    manager = InventoryManager([BenchCollector(source)], clock=SystemClock(), history=16)
    await bench_build(args, source, sources, manager)
    bench_notifications(args, manager)
    await bench_snapshots(args)
    await bench_readers(args, source, manager)
    print(f"load average {os.getloadavg()[0]:.1f} at the end")


async def bench_build(args: argparse.Namespace, source: Source, sources: list[Source],
                      manager: InventoryManager) -> None:
    gc.collect()
    started, cpu = time.perf_counter(), time.thread_time()
    graph = build_graph(source)
    build_s, build_cpu = time.perf_counter() - started, time.thread_time() - cpu
    print(f"model: {graph.node_count:,} nodes, {graph.relation_count:,} relations")
    print(f"build (graph from source rows, one thread):  {build_s:6.2f} s "
          f"({build_cpu:.2f} s CPU)")
    del graph
    live = manager.get("bench")
    rebuilds = []
    for new_source in sources:
        live.collector.source = new_source  # type: ignore[attr-defined]
        started = time.perf_counter()
        assert await live.rebuild()
        rebuilds.append(time.perf_counter() - started)
    started = time.perf_counter()
    assert await live.rebuild()  # same source: compared, found equal, no new version
    same = time.perf_counter() - started
    print(f"LiveModel.rebuild (build + compare + swap): {statistics.median(rebuilds):6.2f} s "
          f"median of {len(rebuilds)} (changed source); {same:.2f} s unchanged source")


def bench_notifications(args: argparse.Namespace, manager: InventoryManager) -> None:
    """One at a time, then in batches (each batch one version).

    Timed after the background releaser has freed the models the rebuilds replaced (a
    cost of rebuilding, ~0.2 s of CPU per 100,000-node model, not of notifications)."""
    live = manager.get("bench")
    release.wait_idle(timeout=60)
    source: Source = live.collector.source  # type: ignore[attr-defined]
    for label, size, seed in (("one at a time", 1, 2), ("batches of 100", 100, 3),
                              ("batches of 1000", 1000, 4)):
        batch = notifications(source, args.notifications, seed=seed, prefix=f"n{seed}-")
        gc.collect()
        first = live.latest().version
        wall, cpu = time.perf_counter(), time.thread_time()
        if size == 1:
            applied = sum(manager.deliver(n) for n in batch)
        else:
            applied = sum(manager.deliver_many(batch[i:i + size])
                          for i in range(0, len(batch), size))
        wall, cpu = time.perf_counter() - wall, time.thread_time() - cpu
        print(f"notifications, {label:>15}: {len(batch) / wall:9,.0f}/s wall "
              f"({len(batch) / cpu:,.0f}/s CPU); {applied:,} applied, "
              f"{live.latest().version - first:,} versions")
    for kind in ("interface.status", "link.up", "link.down", "device.created",
                 "device.deleted"):
        some = [n for n in notifications(source, 40_000, seed=9, prefix="k-")
                if n.event_type == kind][:2000]
        cpu = time.thread_time()
        for n in some:
            manager.deliver(n)
        cpu = time.thread_time() - cpu
        print(f"    {kind:>17}, one at a time: {cpu / len(some) * 1e6:6.1f} us CPU each")


async def bench_snapshots(args: argparse.Namespace) -> None:
    for size in (1_000, 10_000, args.nodes):
        small = InventoryManager([BenchCollector(make_source(size), name="s")],
                                 clock=SystemClock())
        model = small.get("s")
        assert await model.rebuild()
        loops = 200_000
        started = time.perf_counter()
        for _ in range(loops):
            model.latest()
        per = (time.perf_counter() - started) / loops
        print(f"snapshot at {model.latest().graph.node_count:>7,} nodes: {per * 1e9:6.0f} ns")


async def bench_readers(args: argparse.Namespace, source: Source,
                        manager: InventoryManager) -> None:
    """Reads from the loop and from a thread, idle and while rebuilds run."""
    live = manager.get("bench")
    device_ids = [node_id("device", d) for d, _, _ in source.devices]
    rng = random.Random(3)

    def read() -> None:
        snapshot = live.latest()
        device = rng.choice(device_ids)
        snapshot.graph.node(device)
        snapshot.graph.neighbours(device, HAS_INTERFACE)

    sources: list[Source] = args.reader_sources
    readers = Readers(read)
    loop_task = asyncio.create_task(readers.loop_reader())
    thread = threading.Thread(target=readers.thread_reader)
    thread.start()
    await asyncio.sleep(args.idle)
    during = []
    for new_source in sources:
        live.collector.source = new_source  # type: ignore[attr-defined]
        readers.window = "during rebuild"
        started = time.perf_counter()
        assert await live.rebuild()
        during.append(time.perf_counter() - started)
        readers.window = "idle"
        await asyncio.sleep(0.5)
    readers.stop()
    await loop_task
    thread.join()
    print(f"rebuilds while reading: {statistics.median(during):.2f} s median")
    for kind in ("loop read", "thread read", "loop wake-up lateness"):
        idle = readers.samples["idle"][kind]
        busy = readers.samples["during rebuild"][kind]
        ratio = pct(busy, 0.99) / pct(idle, 0.99) if pct(idle, 0.99) else float("inf")
        print(f"{kind:>22} idle:   {describe(idle)}")
        print(f"{kind:>22} busy:   {describe(busy)}   p99 ratio {ratio:.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nodes", type=int, default=100_000)
    parser.add_argument("--notifications", type=int, default=200_000)
    parser.add_argument("--idle", type=float, default=3.0, help="seconds of idle reading")
    parser.add_argument("--rebuilds", type=int, default=3, help="rebuilds while reading")
    asyncio.run(bench(parser.parse_args()))


if __name__ == "__main__":
    main()
