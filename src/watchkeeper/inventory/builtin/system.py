"""The ``system`` model collector: this host's interfaces, listening services and processes.

Reading the host (:func:`read_host`, psutil) is kept apart from turning what was read into
a model (:func:`system_graph`, pure), so the model is tested from plain values. Only stable
facts become attributes (no counters, no CPU times), so a rebuild on an idle host changes
nothing and bumps no version.

Between builds it applies these notifications (publisher matching ``publishers``; the
payload's ``device``, else ``component``, must be this host's ``device``, else the
notification is not for this model and changes nothing). watchkeeper itself emits none of
them: they come from an operator or a host hook (a NetworkManager dispatcher script, a
systemd unit's ExecStartPost...) through the pipeline's inventory_notify engine (events
``inventory.interface.up`` ...) or the notifications queue.

* ``interface.up``/``interface.down`` with ``ifname`` (or ``interface``, ``resource``):
  the interface's ``up``. An interface the model does not have is left alone.
* ``process.started`` with ``pid`` and ``name`` (optional ``username``, ``ppid``,
  ``create_time``): the process node, ``runs_on`` this host.
* ``process.exited`` with ``pid``: the process node goes (with its relations), and its pid
  leaves the ``pids`` of the services it provided.
"""

from __future__ import annotations

import asyncio
import platform
import socket
from dataclasses import dataclass, field
from typing import Any

import psutil  # type: ignore[import-untyped]  # psutil ships no stubs

from watchkeeper.inventory.abc import (
    BuildContext,
    ModelCollector,
    Notification,
    NotificationEndpoint,
)
from watchkeeper.inventory.builtin._notify import (
    BadNotification,
    NotifiedOptions,
    optional_text,
    text,
    whole_number,
)
from watchkeeper.inventory.graph import (
    DEVICE,
    HAS_INTERFACE,
    INTERFACE,
    PROCESS,
    PROVIDED_BY,
    RUNS_ON,
    SERVICE,
    Graph,
    GraphEdit,
    node_id,
)


class SystemOptions(NotifiedOptions, frozen=True, kw_only=True):
    period: float = 300.0
    timeout: float = 60.0
    device: str = "localhost"  # the device node this host becomes (matches settings devices)
    interfaces: bool = True
    services: bool = True
    processes: bool = True
    # Unconnected UDP sockets on ephemeral ports are clients (resolvers...), not services.
    skip_ephemeral_udp: bool = True


@dataclass(frozen=True, slots=True)
class Listener:
    proto: str  # tcp, udp, tcp6, udp6
    address: str
    port: int
    pid: int | None


@dataclass(frozen=True, slots=True)
class HostFacts:
    """What :func:`read_host` found."""

    host: dict[str, Any]
    interfaces: dict[str, dict[str, Any]] = field(default_factory=dict)
    listeners: list[Listener] = field(default_factory=list)
    processes: dict[int, dict[str, Any]] = field(default_factory=dict)


class SystemModelCollector(ModelCollector):
    """This host, as psutil sees it."""

    Options = SystemOptions
    options: SystemOptions

    async def build(self, ctx: BuildContext) -> Graph:
        facts = await asyncio.to_thread(read_host, self.options)
        return system_graph(self.options.device, facts)

    def endpoints(self) -> list[NotificationEndpoint]:
        publishers = self.options.publishers
        found = []
        if self.options.interfaces:
            found.append(NotificationEndpoint(handler=self._interface, publisher_id=publishers,
                                              event_type=r"interface\.(?:up|down)$"))
        if self.options.processes:
            found += [
                NotificationEndpoint(handler=self._started, publisher_id=publishers,
                                     event_type=r"process\.started$"),
                NotificationEndpoint(handler=self._exited, publisher_id=publishers,
                                     event_type=r"process\.exited$"),
            ]
        return found

    def _ours(self, n: Notification) -> bool:
        return text(n, "device", "component") == self.options.device

    def _interface(self, edit: GraphEdit, n: Notification) -> None:
        name = text(n, "ifname", "interface", "resource")
        if self._ours(n):
            edit.update(node_id(INTERFACE, self.options.device, name),
                        attrs={"up": n.event_type.endswith("up")})

    def _started(self, edit: GraphEdit, n: Notification) -> None:
        pid = _pid(n)
        name = text(n, "name")
        attrs: dict[str, Any] = {"pid": pid, "name": name}
        username = optional_text(n, "username")
        if username is not None:
            attrs["username"] = username
        ppid = whole_number(n, "ppid")
        if ppid is not None:
            attrs["ppid"] = ppid
        created = n.payload.get("create_time")
        if created is not None:
            if isinstance(created, bool) or not isinstance(created, int | float):
                raise BadNotification(n, "create_time", f"must be epoch seconds, "
                                                        f"not {created!r}")
            attrs["create_time"] = created
        if not self._ours(n):
            return
        host = node_id(DEVICE, self.options.device)
        if host not in edit:
            return
        proc = node_id(PROCESS, self.options.device, str(pid))
        old = edit.node(proc)
        if old is not None and old.name == name:
            edit.update(proc, attrs=attrs)  # what the build knew more stays
        else:
            edit.add(PROCESS, self.options.device, str(pid), name=name, attrs=attrs)
        edit.relate(proc, RUNS_ON, host)

    def _exited(self, edit: GraphEdit, n: Notification) -> None:
        pid = _pid(n)
        if not self._ours(n):
            return
        proc = node_id(PROCESS, self.options.device, str(pid))
        for relation in edit.relations_of(proc):
            if relation.kind == PROVIDED_BY and relation.target == proc:
                service = edit.node(relation.source)
                if service is not None:
                    pids = [p for p in service.attrs.get("pids", ()) if p != pid]
                    edit.update(service.id, attrs={"pids": pids})
        edit.remove(proc)


def _pid(n: Notification) -> int:
    pid = whole_number(n, "pid")
    if pid is None:
        raise BadNotification(n, "pid", "is missing")
    return pid


def read_host(options: SystemOptions) -> HostFacts:
    """Read this host through psutil (blocking: run it in a thread)."""
    host = {
        "hostname": socket.gethostname(),
        "os": platform.system(),
        "release": platform.release(),
        "cpus": psutil.cpu_count() or 0,
        "memory_bytes": psutil.virtual_memory().total,
        "boot_time": psutil.boot_time(),
    }
    return HostFacts(
        host=host,
        interfaces=_interfaces() if options.interfaces else {},
        listeners=_listeners(options.skip_ephemeral_udp) if options.services else [],
        processes=_processes() if options.processes else {},
    )


def _interfaces() -> dict[str, dict[str, Any]]:
    stats = psutil.net_if_stats()
    found: dict[str, dict[str, Any]] = {}
    for name, addrs in psutil.net_if_addrs().items():
        attrs: dict[str, Any] = {"addresses": sorted(
            a.address for a in addrs if a.family in (socket.AF_INET, socket.AF_INET6))}
        mac = [a.address for a in addrs if a.family == psutil.AF_LINK]
        if mac:
            attrs["mac"] = mac[0]
        stat = stats.get(name)
        if stat is not None:
            attrs.update(up=bool(stat.isup), mtu=stat.mtu, speed_mbps=stat.speed)
        found[name] = attrs
    for name, stat in stats.items():  # interfaces without any address
        found.setdefault(name, {"addresses": [], "up": bool(stat.isup), "mtu": stat.mtu,
                                "speed_mbps": stat.speed})
    return found


def _listeners(skip_ephemeral_udp: bool) -> list[Listener]:
    low, high = _ephemeral_ports() if skip_ephemeral_udp else (1, 0)
    found = []
    for conn in psutil.net_connections(kind="inet"):
        udp = conn.type == socket.SOCK_DGRAM
        if not conn.laddr or (udp and conn.raddr) or (not udp and conn.status != "LISTEN"):
            continue
        if udp and low <= conn.laddr.port <= high:
            continue
        proto = ("udp" if udp else "tcp") + ("6" if conn.family == socket.AF_INET6 else "")
        found.append(Listener(proto=proto, address=conn.laddr.ip, port=conn.laddr.port,
                              pid=conn.pid))
    return found


def _ephemeral_ports() -> tuple[int, int]:
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as handle:
            low, high = handle.read().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999  # Linux's default range


def _processes() -> dict[int, dict[str, Any]]:
    found = {}
    for proc in psutil.process_iter(["pid", "name", "username", "ppid", "create_time"]):
        info = proc.info
        found[info["pid"]] = {k: v for k, v in info.items() if k != "pid" and v is not None}
    return found


def system_graph(device: str, facts: HostFacts) -> Graph:
    """The model of one host: its device node, interfaces, services and processes."""
    edit = Graph().edit()
    host = edit.add(DEVICE, device, attrs=facts.host, labels=("self",))
    for name, attrs in sorted(facts.interfaces.items()):
        iface = edit.add(INTERFACE, device, name, attrs=attrs)
        edit.relate(host.id, HAS_INTERFACE, iface.id)
    for pid, attrs in sorted(facts.processes.items()):
        proc = edit.add(PROCESS, device, str(pid), name=str(attrs.get("name") or pid),
                        attrs={"pid": pid, **attrs})
        edit.relate(proc.id, RUNS_ON, host.id)
    services: dict[str, dict[str, Any]] = {}
    for listener in facts.listeners:
        # One service per protocol and port, whatever addresses it is bound to.
        name = f"{listener.proto.rstrip('6')}:{listener.port}"
        svc = services.setdefault(name, {"proto": listener.proto.rstrip("6"),
                                         "port": listener.port, "addresses": set(), "pids": set()})
        svc["addresses"].add(listener.address)
        if listener.pid is not None:
            svc["pids"].add(listener.pid)
    for name, svc in sorted(services.items()):
        pids = sorted(svc["pids"])
        attrs = {"proto": svc["proto"], "port": svc["port"],
                 "addresses": sorted(svc["addresses"]), "pids": pids}
        node = edit.add(SERVICE, device, name, attrs=attrs)
        edit.relate(node.id, RUNS_ON, host.id)
        for pid in pids:
            proc_id = node_id(PROCESS, device, str(pid))
            if proc_id in edit:
                edit.relate(node.id, PROVIDED_BY, proc_id)
    return edit.commit()
