"""``watchkeeper inventory show|node|diff``: read the live inventory through the REST API."""

from __future__ import annotations

import argparse
from typing import Any

import msgspec

from watchkeeper.cli.options import add_client, output_of, server_url, token_of
from watchkeeper.cli.render import table, utc, when
from watchkeeper.client import InventoryClient
from watchkeeper.errors import UsageError
from watchkeeper.wire import InventoryCollector, InventoryNode, InventoryRelation


def add_commands(commands: Any) -> None:
    inventory = commands.add_parser(
        "inventory", help="show the live inventory and what changed",
        description="Show the live inventory models and the changes between their versions.")
    sub = inventory.add_subparsers(dest="inventory_command", required=True, metavar="ACTION")

    show = sub.add_parser("show", help="list the models, or the nodes of one",
                          description="Without COLLECTOR, list the model collectors; with "
                                      "it, print its nodes (filtered by kind and label).")
    show.add_argument("collector", nargs="?", help="model collector name, e.g. static")
    show.add_argument("--kind", action="append", default=[],
                      help="only nodes of this kind (repeatable: any of them)")
    show.add_argument("--label", action="append", default=[],
                      help="only nodes with this label (repeatable: all of them)")
    show.add_argument("--relations", action="store_true", help="print relations, not nodes")
    add_client(show)
    show.set_defaults(handler=_show)

    node = sub.add_parser("node", help="one node, its relations in and out, its neighbours",
                          description="One node of a model: a first row for the node itself "
                                      "(its attrs), then a row per relation leaving it (out) "
                                      "or entering it (in) with the node at the other end "
                                      "(attrs: the relation's).")
    node.add_argument("collector", help="model collector name, e.g. static")
    node.add_argument("id", metavar="ID",
                      help="the node's id as `inventory show` lists it, e.g. device/core1")
    add_client(node)
    node.set_defaults(handler=_node)

    diff = sub.add_parser("diff", help="what changed between two versions",
                          description="What appeared, disappeared or changed between two "
                                      "versions of a model (A..B, or A and B; B defaults "
                                      "to latest).")
    diff.add_argument("collector", help="model collector name, e.g. static")
    diff.add_argument("versions", help="A..B, or A")
    diff.add_argument("to", nargs="?", help="B (default latest)")
    add_client(diff)
    diff.set_defaults(handler=_diff)


def _client(args: argparse.Namespace) -> InventoryClient:
    return InventoryClient(server_url(args), token=token_of(args), verify=not args.insecure)


def _freshness(c: InventoryCollector) -> str:
    if c.stale_since is not None:
        return f"STALE since {when(c.stale_since)}: {c.stale_reason}"
    return "fresh" if c.synced_at is not None else "not built yet"


def _attrs(attrs: dict[str, Any]) -> str:
    return " ".join(f"{k}={_scalar(v)}" for k, v in sorted(attrs.items()))


def _scalar(value: Any) -> str:
    if isinstance(value, str):
        return value
    return msgspec.json.encode(value).decode()


def _show(args: argparse.Namespace) -> int:
    with _client(args) as client:
        if args.collector is None:
            listing = client.collectors().collectors
            rows: list[list[object]] = [
                [c.name, c.version, c.nodes, c.relations, utc(c.synced_at), _freshness(c)]
                for c in listing]
            table(["collector", "version", "nodes", "relations", "synced (UTC)", "state"],
                  rows, fmt=output_of(args), title=f"{len(listing)} model collectors")
            return 0
        graph = client.graph(args.collector, kinds=args.kind, labels=args.label)
    head = graph.collector
    title = f"{head.name} version {head.version} ({_freshness(head)})"
    fmt = output_of(args)
    data = fmt == "json"  # attrs and labels as JSON objects and lists, not text
    if args.relations:
        table(["source", "relation", "target", "attrs"],
              [[r.source, r.kind, r.target, r.attrs if data else _attrs(r.attrs)]
               for r in graph.relations],
              fmt=fmt, title=f"{title}: {len(graph.relations)} relations")
    else:
        table(["id", "kind", "name", "labels", "attrs"],
              [[n.id, n.kind, n.name, n.labels if data else ",".join(n.labels),
                n.attrs if data else _attrs(n.attrs)] for n in graph.nodes],
              fmt=fmt, title=f"{title}: {len(graph.nodes)} nodes")
    return 0


def _node(args: argparse.Namespace) -> int:
    with _client(args) as client:
        found = client.node(args.collector, args.id)
    fmt = output_of(args)
    data = fmt == "json"
    ends = {n.id: n for n in found.neighbours}

    def row(direction: str, relation: str, node: InventoryNode | None, node_id: str,
            attrs: dict[str, Any]) -> list[object]:
        labels = node.labels if node else []
        return [direction, relation, node_id, node.kind if node else "",
                node.name if node else "", labels if data else ",".join(labels),
                attrs if data else _attrs(attrs)]

    me = found.node
    rows = [row("node", "", me, me.id, me.attrs)]
    rows += [row("out", r.kind, ends.get(r.target), r.target, r.attrs)
             for r in found.relations_out]
    rows += [row("in", r.kind, ends.get(r.source), r.source, r.attrs)
             for r in found.relations_in]
    table(["direction", "relation", "id", "kind", "name", "labels", "attrs"], rows, fmt=fmt,
          title=f"{found.collector} version {found.version}: {me.kind} {me.name} ({me.id}); "
                f"relations out: {len(found.relations_out)}, in: {len(found.relations_in)}",
          important=6)
    return 0


def _diff(args: argparse.Namespace) -> int:
    before, sep, after = args.versions.partition("..")
    if not sep:
        after = args.to or "latest"
    elif args.to is not None:
        raise UsageError("give versions as A..B or as A B, not both")
    with _client(args) as client:
        change = client.diff(args.collector, before, after)
    rows: list[list[object]] = []
    rows += [["+", n.kind, n.id, _attrs(n.attrs)] for n in change.appeared]
    rows += [["-", n.kind, n.id, _attrs(n.attrs)] for n in change.disappeared]
    rows += [["~", c.after.kind, c.after.id, _node_change(c.before, c.after)]
             for c in change.changed]
    rows += [["+", r.kind, _rel(r), _attrs(r.attrs)] for r in change.relations_appeared]
    rows += [["-", r.kind, _rel(r), _attrs(r.attrs)] for r in change.relations_disappeared]
    rows += [["~", c.after.kind, _rel(c.after),
              f"{_attrs(c.before.attrs)} -> {_attrs(c.after.attrs)}"]
             for c in change.relations_changed]
    table(["change", "kind", "id", "detail"], rows, fmt=output_of(args),
          title=f"{change.collector}: version {change.from_version} -> {change.to_version}, "
                f"{len(rows)} changes")
    return 0


def _rel(relation: InventoryRelation) -> str:
    return f"{relation.source} -> {relation.target}"


def _node_change(before: InventoryNode, after: InventoryNode) -> str:
    parts = []
    keys = sorted(set(before.attrs) | set(after.attrs))
    for key in keys:
        old, new = before.attrs.get(key), after.attrs.get(key)
        if old != new:
            parts.append(f"{key}: {_scalar(old)} -> {_scalar(new)}")
    if before.labels != after.labels:
        parts.append(f"labels: {','.join(before.labels)} -> {','.join(after.labels)}")
    if before.name != after.name:
        parts.append(f"name: {before.name} -> {after.name}")
    return "; ".join(parts)
