// perfSONAR: a MaDDash-style grid, sources by destinations, coloured by the latest
// throughput, loss or delay from the esmond archive API (#/perfsonar?m=loss), against
// thresholds the URL may set (&ok=..&warn=..); a cell opens the pair
// (&src=A&dst=B): its metadata, the latest base and summary values of every event type,
// and a chart of the last day.
import {ApiError, get} from "../api.js";
import {append, clear, el, fmtAgo, fmtNumber, fmtTime, pairs, table} from "../dom.js";
import {loadUplot} from "./explore.js";

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

// The ok and warning bounds: the URL's `ok` and `warn` when they are numbers, else the
// metric's defaults; `problems` names a value that is not a number.
export function thresholds(metric, params) {
  const m = METRICS[metric];
  const out = {ok: m.ok, warning: m.warning, problems: []};
  for (const [key, field] of [["ok", "ok"], ["warn", "warning"]]) {
    const raw = params.get(key);
    if (raw === null || raw === "") continue;
    const value = Number(raw);
    if (Number.isFinite(value)) out[field] = value;
    else out.problems.push(`${key}: expected a number, not ${JSON.stringify(raw)}; the default ${m[field]} is used`);
  }
  return out;
}

export function grade(metric, value, limits = METRICS[metric]) {
  if (value === null || value === undefined || Number.isNaN(value)) return "none";
  const m = METRICS[metric];
  if (m.higherIsBetter) return value >= limits.ok ? "ok" : value >= limits.warning ? "warning" : "critical";
  return value <= limits.ok ? "ok" : value <= limits.warning ? "warning" : "critical";
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

// The view's URL parameters: the metric and the thresholds the user set (kept across views).
function viewParams(metric, params, extra) {
  const out = {m: metric};
  for (const key of ["ok", "warn"]) if (params.get(key)) out[key] = params.get(key);
  return {...out, ...extra};
}

function href(params) { return `#/perfsonar?${new URLSearchParams(params)}`; }

export async function render(root, params, nav) {
  const metric = METRICS[params.get("m")] ? params.get("m") : "throughput";
  const m = METRICS[metric];
  const limits = thresholds(metric, params);
  const cmp = m.higherIsBetter ? "≥" : "≤";
  const okInput = el("input", {id: "th-ok", size: 8, value: String(limits.ok), "aria-label": "ok bound"});
  const warnInput = el("input", {id: "th-warn", size: 8, value: String(limits.warning), "aria-label": "warning bound"});
  const setLimits = (e) => {
    e.preventDefault();
    nav.go({...Object.fromEntries(params), ok: okInput.value.trim(), warn: warnInput.value.trim()});
  };
  append(root, el("h2", {}, "perfSONAR"),
    el("div", {class: "toolbar"}, Object.keys(METRICS).map((name) =>
      el("button", {type: "button", id: `m-${name}`, class: name === metric ? "active" : "", onclick: () => nav.go({m: name})}, name)),
    el("span", {class: "muted", id: "ps-thresholds"}, `${m.unit}; ${cmp} ${limits.ok} ok, ${cmp} ${limits.warning} warning, else critical; latest within a day`)),
    el("form", {class: "toolbar", onsubmit: setLimits}, "ok", cmp, okInput, "warning", cmp, warnInput,
      el("button", {type: "submit", id: "th-apply"}, "apply"),
      el("a", {href: href({m: metric, ...(params.get("src") ? {src: params.get("src"), dst: params.get("dst") || ""} : {})})}, "defaults")),
    limits.problems.map((p) => el("p", {class: "error"}, p)));
  if (params.get("src") !== null && params.get("dst") !== null) {
    return pairView(root, metric, limits, params);
  }
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
  root.append(el("p", {class: "muted"}, "rows: sources; columns: destinations; a cell opens the pair"),
    table(["source \\ destination", ...destinations], sources.map((s) => [s, ...destinations.map((d) => {
      const key = `${s}\u0000${d}`;
      const value = cells.get(key);
      const g = cells.has(key) ? grade(metric, value, limits) : "none";
      return el("td", {class: `cell c-${g} ${g === "none" ? "" : "s-" + g}`, "data-source": s, "data-destination": d,
                       "data-grade": g, title: `${s} → ${d}`},
        cells.has(key) ? el("a", {href: href(viewParams(metric, params, {src: s, dst: d}))}, fmtNumber(value) || "·") : "");
    })])));
  return null;
}

// ---------------------------------------------------------------- one pair

const LISTING = new Set(["event-types", "metadata-count-total", "metadata-previous-page", "metadata-next-page"]);

function valueText(metric, eventType, row) {
  if (!row) return "";
  const v = row.val;
  if (eventType === METRICS.loss.eventType && v && typeof v === "object") return fmtNumber(lossOf(row));
  if (typeof v === "number") return fmtNumber(v);
  const text = JSON.stringify(v);
  return text.length > 240 ? `${text.slice(0, 239)}…` : text;
}

// Every event type of one metadata: its base and each summary, the latest value within a
// day and how many points the day holds. Asked only where esmond says data was written.
async function eventRows(md, metric) {
  const rows = [];
  await Promise.all((md["event-types"] || []).map(async (et) => {
    const name = et["event-type"];
    const targets = [{what: "base", uri: et["base-uri"], updated: et["time-updated"]},
      ...(et.summaries || []).map((s) => ({what: `${s["summary-type"]} ${s["summary-window"]} s`, uri: s.uri,
                                           updated: s["time-updated"]}))];
    await Promise.all(targets.map(async (t, i) => {
      let data = [];
      if (t.updated !== null && t.updated !== undefined) {
        data = await get(t.uri, {"time-range": WINDOW}).catch(() => null);
      }
      const last = data && data.length ? data[data.length - 1] : null;
      rows.push({name, order: i, what: t.what, last, count: data ? data.length : null});
    }));
  }));
  rows.sort((a, b) => a.name.localeCompare(b.name) || a.order - b.order);
  return rows.map((r) => ({...r, text: valueText(metric, r.name, r.last)}));
}

async function pairView(root, metric, limits, params) {
  const m = METRICS[metric];
  const src = params.get("src"), dst = params.get("dst");
  const back = href(viewParams(metric, params, {}));
  append(root, el("p", {}, el("a", {href: back, id: "ps-back"}, "← the grid"), " ",
    el("strong", {id: "ps-pair"}, `${src} → ${dst}`)));
  let found;
  try {
    found = await get(ARCHIVE, {source: src, destination: dst, limit: 100});
  } catch (error) {
    if (error instanceof ApiError && (error.status === 404 || error.status === 400)) {
      root.append(el("p", {class: "error"}, error.detail));
      return null;
    }
    throw error;
  }
  // The search resolves names and matches either family: keep the pair exactly as asked.
  const mine = found.filter((md) => md.source === src && md.destination === dst)
    .sort((a, b) => a["metadata-key"].localeCompare(b["metadata-key"]));
  if (!mine.length) {
    root.append(el("p", {class: "muted"}, `no measurements from ${src} to ${dst} in the archive`));
    return null;
  }
  const plotting = loadUplot();
  const charts = [];
  for (const md of mine) {
    const key = md["metadata-key"];
    const fields = Object.keys(md).filter((k) => !LISTING.has(k)).sort();
    const rows = await eventRows(md, metric);
    const card = el("div", {class: "card ps-metadata", "data-key": key},
      el("h3", {}, `${md["tool-name"] || "measurement"} (${key})`),
      pairs(fields.map((k) => [k, el("td", {class: "pre"}, typeof md[k] === "string" ? md[k] : JSON.stringify(md[k]))])),
      table(["event type", "data", "latest within a day", "at", "points"], rows.map((r) => [
        r.name, r.what, el("td", {class: typeof r.last?.val === "object" && r.name !== METRICS.loss.eventType ? "pre" : "num",
                                  "data-event-type": r.name, "data-what": r.what}, r.text),
        r.last ? `${fmtTime(r.last.ts)} (${fmtAgo(r.last.ts)})` : "", r.count === null ? "" : r.count])));
    root.append(card);
    const entry = (md["event-types"] || []).find((e) => e["event-type"] === m.eventType);
    if (entry) charts.push({card, key, entry});
  }
  await plotting;
  const charted = [];
  for (const {card, key, entry} of charts) charted.push(await chart(card, key, entry, metric, limits));
  return () => charted.forEach((p) => p?.destroy());
}

// The chosen metric over the last day (base data, or the statistics summary's median for
// delay), and a link into Explore when the archive holds it as a float series.
async function chart(card, key, entry, metric, limits) {
  const m = METRICS[metric];
  const to = Math.floor(Date.now() / 1000);
  let uri = entry["base-uri"];
  if (m.summary) uri = ((entry.summaries || []).find((x) => x["summary-type"] === m.summary) || {}).uri;
  const rows = uri ? await get(uri, {"time-range": WINDOW}).catch(() => []) : [];
  const ts = [], values = [];
  for (const row of rows) {
    const v = m.read(row);
    if (typeof v === "number") { ts.push(row.ts); values.push(v); }
  }
  const name = `${key}/esmond/${m.eventType}`;
  const listed = await get("/api/v1/series", {prefix: name, limit: 5}).catch(() => ({series: []}));
  const native = listed.series.find((s) => s.series === name && s.kind === "float");
  const box = el("div", {class: "chart ps-chart", "data-points": ts.length});
  append(card, el("h3", {}, `${m.eventType} over the last day (${ts.length} points; ${m.unit})`),
    native ? el("p", {}, el("a", {href: `#/explore?${new URLSearchParams({s: name, r: "1d"})}`, class: "ps-explore"}, `${name} in Explore`)) : null,
    box);
  if (!ts.length) { box.append(el("p", {class: "muted"}, "no points in the last day")); return null; }
  if (typeof window.uPlot !== "function") {
    box.append(el("p", {class: "error"}, "uPlot is missing: run `make console` (docs/console.md)"));
    return null;
  }
  const bound = (label, colour) => ({label, stroke: colour, width: 1, dash: [4, 4], points: {show: false},
                                     value: (u, v) => fmtNumber(v)});
  clear(box);
  // The bounds run across the whole day: the day's ends join the x axis, with no data there.
  const xs = [to - WINDOW, ...ts, to];
  const line = (v) => xs.map(() => v);
  return new window.uPlot({
    width: Math.max(400, box.clientWidth - 2), height: 240,
    scales: {x: {time: true, min: to - WINDOW, max: to}},
    series: [{}, {label: m.eventType, stroke: "#00796b", width: 1.5, points: {show: ts.length < 200},
                  value: (u, v) => fmtNumber(v)},
             bound("ok bound", "#2e8540"), bound("warning bound", "#d9a400")],
  }, [xs, [null, ...values, null], line(limits.ok), line(limits.warning)], box);
}
