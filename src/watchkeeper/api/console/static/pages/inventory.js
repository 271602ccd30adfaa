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
  if (graph.relations.length) {
    root.append(el("h3", {}, `relations (${graph.relations.length})`),
      table(["source", "kind", "target", "attributes"], graph.relations.slice(0, 2000).map((r) =>
        [r.source, r.kind, r.target, el("td", {class: "pre"}, Object.keys(r.attrs).length ? JSON.stringify(r.attrs) : "")])));
  }
  return null;
}
