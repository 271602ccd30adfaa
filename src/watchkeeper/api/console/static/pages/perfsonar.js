// perfSONAR: a MaDDash-style grid, sources by destinations, coloured by the latest
// throughput, loss or delay from the esmond archive API (#/perfsonar?m=loss).
import {ApiError, get} from "../api.js";
import {append, el, fmtNumber, table} from "../dom.js";

const ARCHIVE = "/esmond/perfsonar/archive/";
const WINDOW = 86400;  // the latest result within a day
// metric: the event type, where its number is, and the thresholds (ok / warning bounds).
export const METRICS = {
  throughput: {eventType: "throughput", unit: "bit/s", higherIsBetter: true, ok: 1e9, warning: 1e8,
               read: (row) => row.val},
  loss: {eventType: "packet-loss-rate", unit: "fraction", ok: 0.001, warning: 0.01, read: lossOf},
  delay: {eventType: "histogram-owdelay", summary: "statistics", unit: "ms", ok: 50, warning: 150,
          read: (row) => (row.val && typeof row.val === "object" ? row.val.median ?? row.val.mean : null)},
};

// esmond serves packet-loss-rate as a fraction; a raw {numerator, denominator} is divided.
function lossOf(row) {
  const v = row.val;
  if (v && typeof v === "object") return v.denominator ? v.numerator / v.denominator : null;
  return v;
}

export function grade(metric, value) {
  if (value === null || value === undefined || Number.isNaN(value)) return "none";
  const m = METRICS[metric];
  if (m.higherIsBetter) return value >= m.ok ? "ok" : value >= m.warning ? "warning" : "critical";
  return value <= m.ok ? "ok" : value <= m.warning ? "warning" : "critical";
}

async function latest(entry, metric) {
  const m = METRICS[metric];
  let uri = entry["base-uri"];
  if (m.summary) {
    const s = (entry.summaries || []).find((x) => x["summary-type"] === m.summary);
    if (!s) return null;
    uri = s.uri;
  }
  const rows = await get(uri, {"time-range": WINDOW});
  return rows.length ? m.read(rows[rows.length - 1]) : null;
}

export async function render(root, params, nav) {
  const metric = METRICS[params.get("m")] ? params.get("m") : "throughput";
  const m = METRICS[metric];
  append(root, el("h2", {}, "perfSONAR"),
    el("div", {class: "toolbar"}, Object.keys(METRICS).map((name) =>
      el("button", {type: "button", id: `m-${name}`, class: name === metric ? "active" : "", onclick: () => nav.go({m: name})}, name)),
    el("span", {class: "muted"}, `${m.unit}; ${m.higherIsBetter ? "≥" : "≤"} ${m.ok} ok, ${m.higherIsBetter ? "≥" : "≤"} ${m.warning} warning, else critical; latest within a day`)));
  let metadata;
  try { metadata = await get(ARCHIVE, {"event-type": m.eventType, limit: 1000}); } catch (error) {
    if (error instanceof ApiError && error.status === 404) {
      root.append(el("p", {class: "muted"}, "esmond is not enabled on this server (esmond.enabled)."));
      return null;
    }
    throw error;
  }
  const cells = new Map();  // "source\u0000destination" -> value
  await Promise.all(metadata.map(async (md) => {
    const entry = (md["event-types"] || []).find((e) => e["event-type"] === m.eventType);
    if (!entry) return;
    const value = await latest(entry, metric).catch(() => null);
    const key = `${md.source}\u0000${md.destination}`;
    if (value !== null && value !== undefined) cells.set(key, value);
    else if (!cells.has(key)) cells.set(key, null);
  }));
  const sources = [...new Set(metadata.map((md) => md.source))].sort();
  const destinations = [...new Set(metadata.map((md) => md.destination))].sort();
  if (!sources.length) {
    root.append(el("p", {class: "muted"}, `no ${m.eventType} measurements in the archive`));
    return null;
  }
  root.append(el("p", {class: "muted"}, "rows: sources; columns: destinations"),
    table(["source \\ destination", ...destinations], sources.map((s) => [s, ...destinations.map((d) => {
      const key = `${s}\u0000${d}`;
      const value = cells.get(key);
      const g = cells.has(key) ? grade(metric, value) : "none";
      return el("td", {class: `cell c-${g} ${g === "none" ? "" : "s-" + g}`, "data-source": s, "data-destination": d,
                       "data-grade": g, title: `${s} → ${d}`}, cells.has(key) ? fmtNumber(value) : "");
    })])));
  return null;
}
