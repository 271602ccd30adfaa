// Explore: find series (by prefix, or plugin, metric, labels and words: parseQuery), plot
// them on one uPlot chart or one small chart each (small multiples), histograms as
// heatmaps. The URL holds the view (#/explore?s=NAME&s=NAME&r=1h, from=&to= after a zoom,
// sm=1 for small multiples). The step comes from the range so that a series never brings
// more than TARGET_POINTS buckets (avg, with a min/max band), all in one /api/v1/rollup.
import {get} from "../api.js";
import {append, clear, el, fmtNumber, fmtTime} from "../dom.js";

let heat = null;  // heatmap.js, loaded with the first histogram series

export const PRESETS = {"15m": 900, "1h": 3600, "6h": 21600, "1d": 86400, "7d": 604800,
                        "30d": 2592000, "1y": 31536000};
export const TARGET_POINTS = 1000;
export const MAX_ADDED = 20;  // series one "add" of a search brings at most
const NICE = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600,
              43200, 86400, 172800, 604800];
const COLOURS = ["#1565c0", "#c62828", "#2e7d32", "#6a1b9a", "#ef6c00", "#00838f", "#ad1457",
                 "#4e342e", "#558b2f", "#283593"];
const FIELDS = ["subject", "plugin", "metric", "kind", "prefix"];
const TOKEN = /(?:[^\s"]+|"(?:[^"\\]|\\.)*")+/g;
const NAME = /^[\w.:@-]+\/[\w.:@-]+\/[\w.:@-]+(\{.*\})?$/;

// The smallest "nice" step giving at most TARGET_POINTS buckets over `seconds`.
export function chooseStep(seconds) {
  const wanted = seconds / TARGET_POINTS;
  for (const step of NICE) if (step >= wanted) return step;
  return Math.ceil(wanted / 86400) * 86400;
}

function unquote(text) {
  return /^".*"$/.test(text) ? text.slice(1, -1).replace(/\\(.)/g, "$1") : text;
}

// The search box's text as /api/v1/series parameters (docs/console.md): `plugin:http`,
// `metric:`, `subject:`, `kind:`, `prefix:` fields; `name=value` a label (quotes allow
// spaces: host="web 1"); a word with a `/` the name prefix; any other word a substring.
export function parseQuery(text) {
  const query = {label: [], match: []};
  for (const token of text.match(TOKEN) || []) {
    const field = token.match(/^(\w+):(.+)$/);
    if (field && FIELDS.includes(field[1])) { query[field[1]] = unquote(field[2]); continue; }
    const label = token.match(/^([A-Za-z_]\w*)=(.*)$/);
    if (label) { query.label.push(`${label[1]}=${unquote(label[2])}`); continue; }
    if (token.includes("/") && !query.prefix) { query.prefix = token; continue; }
    query.match.push(unquote(token));
  }
  return query;
}

// Whether `text` is one series' whole name rather than a search.
export const isSeriesName = (text) => NAME.test(text);

export function viewOf(params) {
  const series = params.getAll("s").filter(Boolean);
  const now = Date.now() / 1000;
  let from = Number(params.get("from")), to = Number(params.get("to"));
  let preset = params.get("r") || "1h";
  if (!(from > 0 && to > from)) {
    if (!(preset in PRESETS)) preset = "1h";
    to = now; from = now - PRESETS[preset];
  } else preset = "";
  return {series, from, to, preset, small: params.get("sm") === "1"};
}

function paramsOf(view) {
  const p = new URLSearchParams();
  view.series.forEach((s) => p.append("s", s));
  if (view.preset) p.set("r", view.preset);
  else { p.set("from", Math.floor(view.from)); p.set("to", Math.ceil(view.to)); }
  if (view.small) p.set("sm", "1");
  return p;
}

// The view's float series rolled up, in one request: [{series, unit, ts, avg, min, max}]
// in the order named, and the names that are not float series.
async function fetchFloats(names, view, step) {
  const answer = await get("/api/v1/rollup", {series: names, start: view.from, end: view.to,
                                              step, aggs: "avg,min,max"});
  const found = new Map(answer.series.map((s) => [s.series, s]));
  return {floats: names.filter((n) => found.has(n)).map((n) => ({series: n, unit: found.get(n).unit,
                                                               ts: found.get(n).ts, ...found.get(n).values})),
          left: names.filter((n) => !found.has(n))};
}

// A series the rollup left out, if it holds histograms: {series, unit, points}, else null.
async function fetchHistogram(name, view) {
  const listed = await get("/api/v1/series", {prefix: name, limit: 1});
  const meta = listed.series[0];
  if (!meta || meta.series !== name || meta.kind !== "histogram") return null;
  const answer = await get("/api/v1/query", {series: name, start: view.from, end: view.to});
  return {series: name, unit: answer.unit, points: answer.points};
}

// Every series of the view: floats rolled up, histograms binned, and the names of those
// that are neither (objects, or unknown).
async function fetchView(view, step) {
  const {floats, left} = await fetchFloats(view.series, view, step);
  const histograms = (await Promise.all(left.map((s) => fetchHistogram(s, view)))).filter(Boolean);
  if (histograms.length) heat ||= await import("../heatmap.js");
  const drawable = new Set(histograms.map((h) => h.series));
  return {floats, histograms, missing: left.filter((s) => !drawable.has(s))};
}

// The gap that breaks a series' line: three of its usual intervals, at least two steps.
export function gapOf(ts, step) {
  const diffs = [];
  for (let i = 1; i < ts.length; i++) diffs.push(ts[i] - ts[i - 1]);
  diffs.sort((a, b) => a - b);
  return Math.max(2 * step, 3 * (diffs.length ? diffs[diffs.length >> 1] : step));
}

// Columns on one time axis (uPlot's layout). A time another series holds is `undefined`
// in this one (uPlot draws across it); a real gap in the data gets a `null` (a break).
export function align(results, step = 1) {
  const times = [...new Set(results.flatMap((r) => r.ts))].sort((a, b) => a - b);
  const index = new Map(times.map((t, i) => [t, i]));
  const column = (r, agg, gap) => {
    const out = new Array(times.length).fill(undefined);
    r.ts.forEach((t, i) => {
      if (i > 0 && t - r.ts[i - 1] > gap) {
        const before = index.get(r.ts[i - 1]) + 1;  // the first time after the last point
        if (before < index.get(t)) out[before] = null;
      }
      out[index.get(t)] = r[agg][i];
    });
    return out;
  };
  return {times, columns: results.map((r) => {
    const gap = gapOf(r.ts, step);
    return {avg: column(r, "avg", gap), min: column(r, "min", gap), max: column(r, "max", gap)};
  })};
}

function download(name, type, text) {
  const link = el("a", {href: URL.createObjectURL(new Blob([text], {type})), download: name});
  document.body.append(link);
  link.click();
  setTimeout(() => { URL.revokeObjectURL(link.href); link.remove(); }, 1000);
}

function csvCell(text) {
  const s = String(text ?? "");
  return /[",\n\r]/.test(s) || /^[=+\-@]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

// uPlot (and its CSS) is loaded by the first Explore, not by every page.
let uplotLoading = null;
export function loadUplot() {
  if (typeof window.uPlot === "function") return Promise.resolve(true);
  uplotLoading ||= new Promise((resolve) => {
    document.head.append(el("link", {rel: "stylesheet", href: "/console/vendor/uPlot.min.css"}));
    const script = el("script", {src: "/console/vendor/uPlot.iife.min.js"});
    script.addEventListener("load", () => resolve(true));
    script.addEventListener("error", () => { uplotLoading = null; resolve(false); });
    document.head.append(script);
  });
  return uplotLoading;
}

export async function render(root, params, nav) {
  const view = viewOf(params);
  const plotting = view.series.length ? loadUplot() : null;  // meanwhile, the data comes
  const setView = (changes) => nav.go(paramsOf({...view, ...changes}));
  const input = el("input", {id: "series-input", list: "series-options", size: 60,
                             autocomplete: "off", "aria-label": "find series",
                             placeholder: "web1/http/  or  plugin:http metric:latency host=web1 words"});
  const options = el("datalist", {id: "series-options"});
  const found = el("span", {class: "muted", id: "series-found"});
  const chart = el("div", {class: "chart", id: "chart"});
  const heatmaps = el("div", {id: "heatmaps"});
  const info = el("div", {class: "muted", id: "explore-info"});
  const range = el("span", {class: "muted", id: "explore-range"});
  const showRange = (v) => { range.textContent = `${fmtTime(v.from)} – ${fmtTime(v.to)} (drag on the chart to zoom)`; };
  showRange(view);
  let timer = null, drawn = null, tail = null, stopped = false, lastFound = [];

  const search = async () => {
    const text = input.value.trim();
    if (!text) { clear(options); found.textContent = ""; lastFound = []; return; }
    try {
      const answer = await get("/api/v1/series", {...parseQuery(text), limit: 25});
      if (input.value.trim() !== text) return;  // typed on meanwhile
      lastFound = answer.series.map((s) => s.series);
      clear(options).append(...lastFound.map((name) => el("option", {value: name})));
      found.className = "muted";
      found.textContent = `${answer.total} series found` +
        (answer.total > lastFound.length ? ` (first ${lastFound.length} offered)` : "");
      found.dataset.found = String(answer.total);
    } catch (error) {
      found.className = "error";
      found.textContent = error.detail || String(error.message || error);
      found.dataset.found = "";
    }
  };
  input.addEventListener("input", () => {
    clearTimeout(timer);
    found.dataset.found = "";  // until this text's answer has come
    timer = setTimeout(search, 150);
  });
  // "add": the series named, or (a search) up to MAX_ADDED of those it finds.
  const addSeries = async (e) => {
    e.preventDefault();
    const text = input.value.trim();
    if (!text) return;
    let names = [text];
    if (!isSeriesName(text)) {
      const answer = await get("/api/v1/series", {...parseQuery(text), limit: MAX_ADDED});
      names = answer.series.map((s) => s.series);
    }
    const added = names.filter((n) => !view.series.includes(n));
    if (added.length) setView({series: [...view.series, ...added]});
  };

  append(root,
    el("h2", {}, "Explore"),
    el("form", {class: "toolbar", onsubmit: addSeries}, input, options,
      el("button", {type: "submit", id: "series-add", title: `the series named, or up to ${MAX_ADDED} found`}, "add"),
      found),
    el("div", {class: "chips", id: "series-chips"}, view.series.map((s) => el("span", {class: "chip"}, s,
      el("button", {type: "button", title: "remove", onclick: () => setView({series: view.series.filter((x) => x !== s)})}, "×")))),
    el("div", {class: "toolbar"},
      Object.keys(PRESETS).map((p) => el("button", {type: "button", class: p === view.preset ? "active" : "",
        "data-range": p, onclick: () => setView({preset: p})}, p)),
      range,
      el("button", {type: "button", id: "sm-toggle", class: view.small ? "active" : "",
        title: "one small chart per series", onclick: () => setView({small: !view.small})}, "small multiples"),
      el("button", {type: "button", id: "dl-csv", onclick: () => drawn && download("watchkeeper.csv", "text/csv", drawn.csv())}, "CSV"),
      el("button", {type: "button", id: "dl-json", onclick: () => drawn && download("watchkeeper.json", "application/json", drawn.json())}, "JSON")),
    chart, heatmaps, info);

  if (view.series.length === 0) {
    chart.append(el("p", {class: "muted"}, "Type a prefix or a search, pick a series, press add."));
    return () => clearTimeout(timer);
  }
  const step = chooseStep(view.to - view.from);
  const started = performance.now();
  const data = await fetchView(view, step);
  await plotting;
  const arrived = performance.now();
  const zoomTo = (from, to) => setView({from, to, preset: ""});
  const show = (d, v) => {
    drawn?.destroy();
    drawn = drawAll(chart, heatmaps, d, v, step, zoomTo, view.small);
    root.dataset.charts = String(drawn.charts);
    root.dataset.heatmaps = String(d.histograms.length);
  };
  show(data, view);
  await null;  // after uPlot's own microtask: the canvas is drawn
  root.dataset.drawnMs = String(performance.now() - arrived);
  await new Promise((resolve) => requestAnimationFrame(() => resolve()));  // on screen
  const done = performance.now();
  const showInfo = (d) => {
    const rs = d.floats;
    const points = rs.reduce((n, r) => n + r.ts.length, 0);
    info.textContent = [`step ${step} s`,
      rs.length ? `${points} buckets in ${rs.length} series` : "",
      d.histograms.length ? `${d.histograms.length} histogram series as heatmaps` : "",
      ...d.missing.map((name) => `no float or histogram series ${name}`)].filter(Boolean).join("; ");
    root.dataset.points = String(points);
    // The highest value drawn, so that a test or a script can see a new point arrive.
    root.dataset.peak = String(rs.reduce((m, r) => r.max.reduce((a, v) => (v === null ? a : Math.max(a, v)), m), -Infinity));
  };
  showInfo(data);
  root.dataset.fetchMs = String(arrived - started);
  root.dataset.drawMs = String(done - arrived);

  // Live tail: a preset range follows now, redrawn every max(10 s, step) (`live=N`
  // seconds in the URL; live=0 stops it).
  const every = params.has("live") ? Number(params.get("live")) : Math.max(10, step);
  if (view.preset && every > 0) {
    const tick = async () => {
      const now = Date.now() / 1000;
      const live = {...view, from: now - PRESETS[view.preset], to: now};
      try {
        const fresh = await fetchView(live, step);
        if (stopped) return;
        show(fresh, live);
        showRange(live);
        showInfo(fresh);
      } catch { /* the next tick tries again */ }
      if (!stopped) tail = setTimeout(tick, every * 1000);
    };
    tail = setTimeout(tick, every * 1000);
  }
  return () => { stopped = true; clearTimeout(timer); clearTimeout(tail); drawn?.destroy(); };
}

// The float series on one chart or one small chart each, then a heatmap per histogram
// series; CSV and JSON of what is shown.
function drawAll(chart, heatmaps, data, view, step, zoom, small) {
  clear(chart);
  clear(heatmaps);
  chart.classList.toggle("small-multiples", small);
  chart.classList.toggle("empty", !data.floats.length);
  const plots = [];
  if (data.floats.length) {
    const began = performance.now();
    const aligned = align(data.floats, step);
    chart.dataset.alignMs = String(performance.now() - began);
    if (typeof window.uPlot !== "function") {
      chart.append(el("p", {class: "error"}, "uPlot is missing: run `make console` (docs/console.md)"));
    } else if (small) {
      data.floats.forEach((r, i) => {
        const box = el("div", {class: "chart-small", "data-series": r.series});
        chart.append(box);
        plots.push(plot(box, [r], aligned, [i], view, step, zoom, {height: 150, sync: true}));
      });
    } else {
      plots.push(plot(chart, data.floats, aligned, data.floats.map((_, i) => i), view, step, zoom,
                      {height: 380, sync: false}));
    }
  }
  // Once uPlot has laid its charts out (it does so in a microtask), the heatmaps' times
  // line up with its plot area.
  const over = plots[0]?.over;
  queueMicrotask(() => data.histograms.forEach((h) => heatmap(heatmaps, h, view, step, over)));
  const {times, columns} = data.floats.length ? align(data.floats, step) : {times: [], columns: []};
  return {
    charts: plots.length,
    destroy: () => plots.forEach((p) => p.destroy()),
    csv: () => {
      const head = ["time", ...data.floats.flatMap((r) => [r.series, `${r.series} min`, `${r.series} max`])];
      const rows = times.map((t, j) => [new Date(t * 1000).toISOString(),
        ...columns.flatMap((c) => [c.avg[j] ?? "", c.min[j] ?? "", c.max[j] ?? ""])]);
      return [head, ...rows].map((row) => row.map(csvCell).join(",")).join("\n") + "\n";
    },
    json: () => JSON.stringify({from: view.from, to: view.to, step,
      series: data.floats.map((r) => ({series: r.series, unit: r.unit, ts: r.ts, avg: r.avg, min: r.min, max: r.max})),
      histograms: data.histograms.map((h) => {
        const b = heat.binHistograms(h.points, view.from, view.to, step);
        return {series: h.series, unit: h.unit, ts: b.times, buckets: b.rows,
                counts: b.times.map((_, c) => Array.from(b.cells.slice(c * b.rows.length, (c + 1) * b.rows.length)))};
      })}),
  };
}

// One uPlot chart of `results` (their columns `at` of the aligned data).
function plot(target, results, aligned, at, view, step, zoom, {height, sync}) {
  const bands = results.length <= 4 && step > 1;
  const data = [aligned.times];
  const series = [{}];
  const bandList = [];
  results.forEach((r, i) => {
    const colour = COLOURS[at[i] % COLOURS.length];
    data.push(aligned.columns[at[i]].avg);
    // 1 px: a software canvas (no GPU) strokes 1.5-px lines ~50x slower (20 series x 1
    // day: 341 ms against 6 ms to raster the frame, Chrome's FinalizeFrame, in a trace).
    series.push({label: r.unit ? `${r.series} (${r.unit})` : r.series, stroke: colour, width: 1, spanGaps: false,
                 value: (u, v) => fmtNumber(v)});
  });
  if (bands) {
    results.forEach((r, i) => {
      const colour = COLOURS[at[i] % COLOURS.length];
      const first = data.length;
      data.push(aligned.columns[at[i]].max, aligned.columns[at[i]].min);
      series.push({label: "max", stroke: colour + "40", width: 0.5, value: (u, v) => fmtNumber(v)},
                  {label: "min", stroke: colour + "40", width: 0.5, value: (u, v) => fmtNumber(v)});
      bandList.push({series: [first, first + 1], fill: colour + "22"});
    });
  }
  const options = {
    width: Math.max(400, target.clientWidth - 2), height, series, bands: bandList,
    scales: {x: {time: true, min: view.from, max: view.to}},
    // Small multiples share one cursor (uPlot's sync): the same moment in every chart.
    cursor: {drag: {x: true, y: false, setScale: false}, ...(sync ? {sync: {key: "explore"}} : {})},
    legend: {live: true},
    hooks: {setSelect: [(u) => {
      if (u.select.width < 2) return;
      const from = u.posToVal(u.select.left, "x"), to = u.posToVal(u.select.left + u.select.width, "x");
      u.setSelect({width: 0, height: 0}, false);
      zoom(Math.floor(from), Math.ceil(to));
    }]},
  };
  const built = performance.now();
  const made = new window.uPlot(options, data, target);
  target.dataset.buildMs = String(performance.now() - built);
  return made;
}

// A histogram series as a heatmap in `parent`: its name (text), the canvas, and what is
// under the pointer (text).
function heatmap(parent, h, view, step, over) {
  const binned = heat.binHistograms(h.points, view.from, view.to, step);
  const canvas = el("canvas", {class: "heatmap", "data-series": h.series});
  const under = el("div", {class: "muted heat-under"}, "point at a cell for its count");
  parent.append(el("div", {class: "heatmap-box", "data-series": h.series},
    el("div", {class: "heat-title"}, h.unit ? `${h.series} (${h.unit})` : h.series,
      el("span", {class: "muted"}, ` — histogram: time across, buckets up, colour = count (darkest ${fmtNumber(binned.max)})`)),
    canvas, under));
  const width = Math.max(400, Math.floor(parent.clientWidth || 800) - 20);
  const place = canvas.getBoundingClientRect();
  const area = over?.getBoundingClientRect();
  const edges = area?.width > 100 ? {left: area.left - place.left, right: place.left + width - area.right} : null;
  const {painted, cellAt} = heat.drawHeatmap(canvas, binned, view.from, view.to, width, edges);
  canvas.dataset.columns = String(binned.times.length);
  canvas.dataset.rows = String(binned.rows.length);
  canvas.dataset.cells = String(painted);
  canvas.addEventListener("mousemove", (e) => {
    const scale = canvas.width / canvas.getBoundingClientRect().width;
    const cell = cellAt(e.offsetX * scale, e.offsetY * scale);
    under.textContent = cell
      ? `${fmtTime(cell.time)}, bucket ${cell.bucket}${h.unit ? " " + h.unit : ""}: ${fmtNumber(cell.count)}`
      : "point at a cell for its count";
  });
}
