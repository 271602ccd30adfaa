// Inventory: every model collector with its freshness; one model (#/inventory?c=NAME) as a
// topology graph, then tables by kind with the relations leaving them; one node
// (&n=NODE_ID) with its attributes, its relations both ways and the series of its device.
import {ApiError, get} from "../api.js";
import {append, el, fmtAgo, fmtTime, pairs, table} from "../dom.js";
import {HEALTH_COLOURS, KIND_ORDER, drawTopology, kindColour, pickNodes, svg} from "../topology.js";
import {latestChecks, rollUp} from "./overview.js";

const LIMIT = 10000;  // the API's page limit: a bigger model shows its first page
export const MAX_DRAWN = 400;  // nodes in the graph; a bigger model shows its first ones
const MAX_LIMIT_DRAWN = 5000;  // what &max=N may ask for
const SERIES_LIMIT = 500;  // series listed for one node
const HEALTH = {0: "ok", 1: "warning", 2: "critical", 3: "errored"};

function attrText(value) {
  if (typeof value === "string") return value;
  if (Array.isArray(value) && value.every((v) => typeof v === "string")) return value.join(", ");
  return JSON.stringify(value);
}

export async function render(root, params, nav) {
  append(root, el("h2", {}, "Inventory"));
  let models;
  try { models = (await get("/api/v1/inventory")).collectors; } catch (error) {
    if (error instanceof ApiError && error.status === 404) {
      root.append(el("p", {class: "muted"}, "No inventory is served here."));
      return null;
    }
    throw error;
  }
  const chosen = params.get("c") || (models[0] && models[0].name) || "";
  root.append(table(["model", "version", "nodes", "relations", "synced", "builds", "stale since", "stale reason"],
    models.map((m) => [m.name, m.version, m.nodes, m.relations, fmtAgo(m.synced_at), m.stats ? m.stats.builds : "",
      m.stale_since != null ? fmtTime(m.stale_since) : "", el("td", {class: m.stale_reason ? "error" : undefined}, m.stale_reason || "")]),
    (i) => ({class: models[i].name === chosen ? "clickable selected" : "clickable",
             onclick: () => nav.go({c: models[i].name})})));
  if (!chosen) return null;
  const selected = params.get("n") || "";
  const [graph, checks, detail] = await Promise.all([
    get(`/api/v1/inventory/${encodeURIComponent(chosen)}`, {limit: LIMIT}),
    latestChecks().catch(() => []),  // health only colours the graph: without it, no colour
    selected ? nodeDetail(chosen, selected) : null]);
  if (detail) root.append(detail);
  const model = models.find((m) => m.name === chosen);
  const asked = Math.floor(Number(params.get("max")));
  const most = asked >= 1 ? Math.min(MAX_LIMIT_DRAWN, asked) : MAX_DRAWN;
  root.append(topology(chosen, graph, model, checks, selected, most, nav));
  root.append(el("p", {class: "muted"}, `${chosen}: version ${graph.version}, ${graph.nodes.length} of ${graph.total ?? graph.nodes.length} nodes shown`));
  const byKind = new Map();
  for (const node of graph.nodes) (byKind.get(node.kind) || byKind.set(node.kind, []).get(node.kind)).push(node);
  for (const [kind, nodes] of [...byKind.entries()].sort()) {
    const keys = [...new Set(nodes.flatMap((n) => Object.keys(n.attrs)))].sort().slice(0, 12);
    root.append(el("h3", {}, `${kind} (${nodes.length})`),
      table(["id", "name", "labels", ...keys], nodes.map((n) => [el("td", {}, el("a", {href: nodeHref(chosen, n.id)}, n.id)), n.name, n.labels.join(", "),
        ...keys.map((k) => (k in n.attrs ? el("td", {class: "pre"}, attrText(n.attrs[k])) : ""))])));
  }
  const versions = (models.find((m) => m.name === chosen) || {}).versions || [];
  if (versions.length >= 2) root.append(await diffView(chosen, versions, params, nav));
  if (graph.relations.length) {
    root.append(el("h3", {}, `relations (${graph.relations.length})`),
      table(["source", "kind", "target", "attributes"], graph.relations.slice(0, 2000).map((r) =>
        [r.source, r.kind, r.target, el("td", {class: "pre"}, Object.keys(r.attrs).length ? JSON.stringify(r.attrs) : "")])));
  }
  return null;
}

// What changed between two kept versions (#/inventory?c=NAME&a=1&b=2).
async function diffView(model, versions, params, nav) {
  const sorted = [...versions].sort((x, y) => x - y);
  const b = Number(params.get("b")) || sorted[sorted.length - 1];
  const a = Number(params.get("a")) || sorted[sorted.length - 2];
  const pick = (id, value) => el("select", {id, onchange: (e) => nav.go({c: model,
      a: id === "diff-a" ? e.target.value : a, b: id === "diff-b" ? e.target.value : b})},
    sorted.map((v) => el("option", {value: String(v), selected: v === value}, String(v))));
  const box = el("div", {class: "card", id: "inventory-diff"},
    el("h3", {}, "Changes between versions"), el("div", {class: "toolbar"}, "from", pick("diff-a", a), "to", pick("diff-b", b)));
  if (a === b) return box;
  const diff = await get(`/api/v1/inventory/${encodeURIComponent(model)}/versions/${a}..${b}`);
  const nodeRows = (nodes, what) => nodes.map((n) => [what, n.kind, n.id, el("td", {class: "pre"}, JSON.stringify(n.attrs))]);
  const rows = [...nodeRows(diff.appeared, "appeared"), ...nodeRows(diff.disappeared, "disappeared"),
    ...diff.changed.map((c) => ["changed", c.after.kind, c.after.id,
      el("td", {class: "pre"}, changedAttrs(c.before.attrs, c.after.attrs))]),
    ...diff.relations_appeared.map((r) => ["relation appeared", r.kind, `${r.source} → ${r.target}`, ""]),
    ...diff.relations_disappeared.map((r) => ["relation disappeared", r.kind, `${r.source} → ${r.target}`, ""])];
  box.append(rows.length ? table(["change", "kind", "node", "attributes"], rows)
    : el("p", {class: "muted"}, "no change"));
  return box;
}

function changedAttrs(before, after) {
  const keys = [...new Set([...Object.keys(before), ...Object.keys(after)])].sort();
  return keys.filter((k) => JSON.stringify(before[k]) !== JSON.stringify(after[k]))
    .map((k) => `${k}: ${attrText(before[k] ?? "")} → ${attrText(after[k] ?? "")}`).join("\n");
}

// ---------------------------------------------------------------- the topology graph

// ok / warning / critical / errored when known: a device's worst check.status (or its
// `unreachable` mark), an interface's oper status (or `up`); undefined otherwise.
export function healthOf(node, worstByDevice) {
  const a = node.attrs || {};
  if (node.kind === "device") {
    if (a.unreachable) return "critical";
    const code = worstByDevice.get(node.name);
    return code === undefined ? undefined : HEALTH[code];
  }
  if (node.kind === "interface") {
    if (a.oper_status === "up" || a.up === true) return "ok";
    if (a.oper_status === "down" || a.oper_status === "lowerLayerDown" || a.up === false) {
      return a.admin_status === "down" ? undefined : "critical";  // shut down on purpose
    }
    if (typeof a.oper_status === "string") return "warning";  // testing, dormant...
  }
  return undefined;
}

function topology(model, graph, summary, checks, selected, most, nav) {
  const worst = new Map(rollUp(checks, (c) => c.device).map((g) => [g.name, g.worst]));
  const shown = graph.nodes.length > most ? pickNodes(graph.nodes, most) : graph.nodes;
  const ids = new Set(shown.map((n) => n.id));
  const relations = graph.relations.filter((r) => ids.has(r.source) && ids.has(r.target));
  const stale = Boolean(summary && summary.stale_since != null);
  const started = performance.now();
  const picture = drawTopology(shown, relations, {
    health: (n) => healthOf(n, worst), selected, stale, maxWidth: 1200,
    onPick: (id) => nav.go({c: model, n: id, ...(most !== MAX_DRAWN ? {max: most} : {})})});
  const kinds = [...new Set(shown.map((n) => n.kind))].sort((a, b) => rankOf(a) - rankOf(b) || a.localeCompare(b));
  const total = graph.total ?? graph.nodes.length;
  const box = el("div", {class: "card", id: "topology", "data-nodes": shown.length, "data-relations": relations.length},
    el("h3", {}, "Topology"),
    el("div", {class: "toolbar legend"},
      kinds.map((k) => el("span", {}, swatch(kindColour(k)), k)),
      el("span", {class: "muted"}, "ring:"),
      Object.entries(HEALTH_COLOURS).map(([h, colour]) => el("span", {}, swatch("#fff", colour), h)),
      stale ? el("span", {class: "error"}, "dashed: the model is stale (its builds fail), the last good one is shown") : null),
    shown.length < total || graph.nodes.length < total
      ? el("p", {class: "muted", id: "topology-cut"}, `showing ${shown.length} of ${total} nodes (sites, then devices, then their parts, by id); the tables below list ${graph.nodes.length}`)
      : null,
    el("div", {class: "topology-frame"}, picture),
    el("p", {class: "muted"}, "click a node for its attributes, relations and series"));
  box.dataset.layoutMs = String(Math.round(performance.now() - started));
  return box;
}

function rankOf(kind) {
  const i = KIND_ORDER.indexOf(kind);
  return i < 0 ? KIND_ORDER.length : i;
}

function swatch(fill, stroke) {
  return svg("svg", {width: 14, height: 14, viewBox: "0 0 14 14", class: "swatch"},
    svg("circle", {cx: 7, cy: 7, r: 5, fill, stroke: stroke || "#607d8b", "stroke-width": stroke ? 3 : 1}));
}

// ---------------------------------------------------------------- one node

function nodeHref(model, id) {
  return `#/inventory?${new URLSearchParams({c: model, n: id})}`;
}

async function nodeDetail(model, id) {
  const box = el("div", {class: "card", id: "node-detail", "data-node": id});
  let detail;
  try {
    detail = await get(`/api/v1/inventory/${encodeURIComponent(model)}/node`, {id});
  } catch (error) {
    if (!(error instanceof ApiError) || error.status !== 404) throw error;
    return append(box, el("h3", {}, id), el("p", {class: "error"}, error.detail));
  }
  const node = detail.node;
  const names = new Map(detail.neighbours.map((n) => [n.id, n]));
  const other = (rid) => {
    const n = names.get(rid);
    return el("td", {}, el("a", {href: nodeHref(model, rid), "data-node": rid}, n ? n.name : rid),
      n ? el("span", {class: "muted"}, ` ${n.kind}`) : "");
  };
  const attrs = Object.keys(node.attrs).sort().map((k) => [k, el("td", {class: "pre"}, attrText(node.attrs[k]))]);
  append(box,
    el("h3", {}, `${node.kind} ${node.name}`),
    el("p", {class: "muted"}, `${node.id} — model ${detail.collector}, version ${detail.version}`),
    pairs([...attrs, ["labels", node.labels.join(", ")]]),
    el("h3", {}, `relations out (${detail.relations_out.length})`),
    detail.relations_out.length ? el("div", {id: "node-out"}, table(["kind", "to", "attributes"],
      detail.relations_out.map((r) => [r.kind, other(r.target), relAttrs(r)]))) : el("p", {class: "muted"}, "none"),
    el("h3", {}, `relations in (${detail.relations_in.length})`),
    detail.relations_in.length ? el("div", {id: "node-in"}, table(["from", "kind", "attributes"],
      detail.relations_in.map((r) => [other(r.source), r.kind, relAttrs(r)]))) : el("p", {class: "muted"}, "none"));
  box.append(await seriesOf(detail));
  return box;
}

function relAttrs(r) {
  return el("td", {class: "pre"}, Object.keys(r.attrs).length ? JSON.stringify(r.attrs) : "");
}

// The series that belong to a node: a device's are those whose subject is its name; an
// interface's, its device's series labelled with its name (if=, interface= or ifname=);
// any other node's, those whose subject is its name.
export function seriesRule(detail) {
  const node = detail.node;
  if (node.kind === "interface") {
    const link = detail.relations_in.find((r) => r.kind === "has_interface");
    const device = link && detail.neighbours.find((n) => n.id === link.source);
    if (device) {
      return {subject: device.name, what: `series of ${device.name} labelled ${node.name}`,
              keep: (s) => s.subject === device.name &&
                [s.labels.if, s.labels.interface, s.labels.ifname].includes(node.name)};
    }
  }
  return {subject: node.name, what: `series whose subject is ${node.name}`, keep: (s) => s.subject === node.name};
}

async function seriesOf(detail) {
  const rule = seriesRule(detail);
  const box = el("div", {id: "node-series"}, el("h3", {}, "series"));
  let answer;
  try {
    answer = await get("/api/v1/series", {prefix: `${rule.subject}/`, limit: SERIES_LIMIT});
  } catch (error) {
    return append(box, el("p", {class: "error"}, String(error.message || error)));
  }
  const found = answer.series.filter(rule.keep);
  box.append(el("p", {class: "muted"}, `${found.length} ${rule.what}` +
    (answer.total > answer.series.length ? ` among the first ${answer.series.length} of ${answer.total} under ${rule.subject}/` : "")));
  if (found.length) {
    const explore = (s) => `#/explore?${new URLSearchParams({s, r: "1d"})}`;
    box.append(table(["series", "kind", "unit", "last point"], found.map((s) => [
      el("td", {}, el("a", {href: explore(s.series), "data-series": s.series}, s.series)),
      s.kind, s.unit, fmtAgo(s.last_ts)])));
  }
  return box;
}
