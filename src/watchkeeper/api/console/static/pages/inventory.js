// Inventory: every model collector with its freshness, and one model's nodes as tables by
// kind (#/inventory?c=NAME), with the relations leaving them.
import {ApiError, get} from "../api.js";
import {append, el, fmtAgo, fmtTime, table} from "../dom.js";

const LIMIT = 10000;  // the API's page limit: a bigger model shows its first page

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
  const graph = await get(`/api/v1/inventory/${encodeURIComponent(chosen)}`, {limit: LIMIT});
  root.append(el("p", {class: "muted"}, `${chosen}: version ${graph.version}, ${graph.nodes.length} of ${graph.total ?? graph.nodes.length} nodes shown`));
  const byKind = new Map();
  for (const node of graph.nodes) (byKind.get(node.kind) || byKind.set(node.kind, []).get(node.kind)).push(node);
  for (const [kind, nodes] of [...byKind.entries()].sort()) {
    const keys = [...new Set(nodes.flatMap((n) => Object.keys(n.attrs)))].sort().slice(0, 12);
    root.append(el("h3", {}, `${kind} (${nodes.length})`),
      table(["id", "name", "labels", ...keys], nodes.map((n) => [n.id, n.name, n.labels.join(", "),
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
