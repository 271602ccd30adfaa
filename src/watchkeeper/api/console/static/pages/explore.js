// Explore: find series by prefix, plot one or many on one uPlot chart. The URL holds the
// view (#/explore?s=NAME&s=NAME&r=1h, or from=&to= after a zoom). The step comes from the
// range so that a series never brings more than TARGET_POINTS buckets (avg, with a
// min/max band), through /api/v1/rollup.
import {get} from "../api.js";
import {append, clear, el, fmtNumber, fmtTime} from "../dom.js";

export const PRESETS = {"15m": 900, "1h": 3600, "6h": 21600, "1d": 86400, "7d": 604800,
                        "30d": 2592000, "1y": 31536000};
export const TARGET_POINTS = 1000;
const NICE = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600,
              43200, 86400, 172800, 604800];
const COLOURS = ["#1565c0", "#c62828", "#2e7d32", "#6a1b9a", "#ef6c00", "#00838f", "#ad1457",
                 "#4e342e", "#558b2f", "#283593"];

// The smallest "nice" step giving at most TARGET_POINTS buckets over `seconds`.
export function chooseStep(seconds) {
  const wanted = seconds / TARGET_POINTS;
  for (const step of NICE) if (step >= wanted) return step;
  return Math.ceil(wanted / 86400) * 86400;
}

export function viewOf(params) {
  const series = params.getAll("s").filter(Boolean);
  const now = Date.now() / 1000;
  let from = Number(params.get("from")), to = Number(params.get("to"));
  let preset = params.get("r") || "1h";
  if (!(from > 0 && to > from)) {
    if (!(preset in PRESETS)) preset = "1h";
    to = now; from = now - PRESETS[preset];
  } else preset = "";
  return {series, from, to, preset};
}

function paramsOf(view) {
  const p = new URLSearchParams();
  view.series.forEach((s) => p.append("s", s));
  if (view.preset) p.set("r", view.preset);
  else { p.set("from", Math.floor(view.from)); p.set("to", Math.ceil(view.to)); }
  return p;
}

// One series, rolled up: {series, unit, ts, avg, min, max} (exact name: a prefix also
// matches longer names, which are dropped here).
async function fetchSeries(name, view, step) {
  const answer = await get("/api/v1/rollup", {prefix: name, start: view.from, end: view.to,
                                              step, aggs: "avg,min,max"});
  const found = answer.series.find((s) => s.series === name);
  if (!found) return {series: name, unit: "", ts: [], avg: [], min: [], max: [], missing: true};
  return {series: name, unit: found.unit, ts: found.ts, ...found.values};
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
                             placeholder: "series name prefix, e.g. host/system/", autocomplete: "off"});
  const options = el("datalist", {id: "series-options"});
  const chart = el("div", {class: "chart", id: "chart"});
  const info = el("div", {class: "muted", id: "explore-info"});
  const range = el("span", {class: "muted", id: "explore-range"});
  const showRange = (v) => { range.textContent = `${fmtTime(v.from)} – ${fmtTime(v.to)} (drag on the chart to zoom)`; };
  showRange(view);
  let timer = null, drawn = null, tail = null, stopped = false;

  input.addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(async () => {
      const answer = await get("/api/v1/series", {prefix: input.value, limit: 25});
      clear(options).append(...answer.series.map((s) => el("option", {value: s.series})));
    }, 150);
  });
  const addSeries = (e) => {
    e.preventDefault();
    const name = input.value.trim();
    if (name && !view.series.includes(name)) setView({series: [...view.series, name]});
  };

  append(root,
    el("h2", {}, "Explore"),
    el("form", {class: "toolbar", onsubmit: addSeries}, input, options,
      el("button", {type: "submit", id: "series-add"}, "add")),
    el("div", {class: "chips", id: "series-chips"}, view.series.map((s) => el("span", {class: "chip"}, s,
      el("button", {type: "button", title: "remove", onclick: () => setView({series: view.series.filter((x) => x !== s)})}, "×")))),
    el("div", {class: "toolbar"},
      Object.keys(PRESETS).map((p) => el("button", {type: "button", class: p === view.preset ? "active" : "",
        "data-range": p, onclick: () => setView({preset: p})}, p)),
      range,
      el("button", {type: "button", id: "dl-csv", onclick: () => drawn && download("watchkeeper.csv", "text/csv", drawn.csv())}, "CSV"),
      el("button", {type: "button", id: "dl-json", onclick: () => drawn && download("watchkeeper.json", "application/json", drawn.json())}, "JSON")),
    chart, info);

  if (view.series.length === 0) {
    chart.append(el("p", {class: "muted"}, "Type a prefix, pick a series, press add."));
    return () => clearTimeout(timer);
  }
  const step = chooseStep(view.to - view.from);
  const started = performance.now();
  const results = await Promise.all(view.series.map((s) => fetchSeries(s, view, step)));
  await plotting;
  const arrived = performance.now();
  const zoomTo = (from, to) => setView({from, to, preset: ""});
  drawn = draw(chart, results, view, step, zoomTo);
  await null;  // after uPlot's own microtask: the canvas is drawn
  root.dataset.drawnMs = String(performance.now() - arrived);
  await new Promise((resolve) => requestAnimationFrame(() => resolve()));  // on screen
  const done = performance.now();
  const showInfo = (rs) => {
    const points = rs.reduce((n, r) => n + r.ts.length, 0);
    info.textContent = `step ${step} s; ${points} buckets in ${rs.length} series` +
      rs.filter((r) => r.missing).map((r) => `; no float series ${r.series}`).join("");
    root.dataset.points = String(points);
    // The highest value drawn, so that a test or a script can see a new point arrive.
    root.dataset.peak = String(rs.reduce((m, r) => r.max.reduce((a, v) => (v === null ? a : Math.max(a, v)), m), -Infinity));
  };
  showInfo(results);
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
        const fresh = await Promise.all(view.series.map((s) => fetchSeries(s, live, step)));
        if (stopped) return;
        drawn?.plot?.destroy();
        clear(chart);
        drawn = draw(chart, fresh, live, step, zoomTo);
        showRange(live);
        showInfo(fresh);
      } catch { /* the next tick tries again */ }
      if (!stopped) tail = setTimeout(tick, every * 1000);
    };
    tail = setTimeout(tick, every * 1000);
  }
  return () => { stopped = true; clearTimeout(timer); clearTimeout(tail); drawn?.plot?.destroy(); };
}

function draw(target, results, view, step, zoom) {
  const began = performance.now();
  const {times, columns} = align(results, step);
  target.dataset.alignMs = String(performance.now() - began);
  const bands = results.length <= 4 && step > 1;
  const data = [times];
  const series = [{}];
  const bandList = [];
  results.forEach((r, i) => {
    const colour = COLOURS[i % COLOURS.length];
    data.push(columns[i].avg);
    series.push({label: r.unit ? `${r.series} (${r.unit})` : r.series, stroke: colour, width: 1.5, spanGaps: false,
                 value: (u, v) => fmtNumber(v)});
  });
  if (bands) {
    results.forEach((r, i) => {
      const colour = COLOURS[i % COLOURS.length];
      const at = data.length;
      data.push(columns[i].max, columns[i].min);
      series.push({label: "max", stroke: colour + "40", width: 0.5, value: (u, v) => fmtNumber(v)},
                  {label: "min", stroke: colour + "40", width: 0.5, value: (u, v) => fmtNumber(v)});
      bandList.push({series: [at, at + 1], fill: colour + "22"});
    });
  }
  const width = Math.max(400, target.clientWidth - 2);
  const options = {
    width, height: 380, series, bands: bandList,
    scales: {x: {time: true, min: view.from, max: view.to}},
    cursor: {drag: {x: true, y: false, setScale: false}},
    legend: {live: true},
    hooks: {setSelect: [(u) => {
      if (u.select.width < 2) return;
      const from = u.posToVal(u.select.left, "x"), to = u.posToVal(u.select.left + u.select.width, "x");
      u.setSelect({width: 0, height: 0}, false);
      zoom(Math.floor(from), Math.ceil(to));
    }]},
  };
  if (typeof window.uPlot !== "function") {
    target.append(el("p", {class: "error"}, "uPlot is missing: run `make console` (docs/console.md)"));
    return null;
  }
  const built = performance.now();
  const plot = new window.uPlot(options, data, target);
  target.dataset.buildMs = String(performance.now() - built);
  return {
    plot,
    csv: () => {
      const head = ["time", ...results.flatMap((r) => [r.series, `${r.series} min`, `${r.series} max`])];
      const rows = times.map((t, j) => [new Date(t * 1000).toISOString(),
        ...columns.flatMap((c) => [c.avg[j] ?? "", c.min[j] ?? "", c.max[j] ?? ""])]);
      return [head, ...rows].map((row) => row.map(csvCell).join(",")).join("\n") + "\n";
    },
    json: () => JSON.stringify({from: view.from, to: view.to, step,
      series: results.map((r) => ({series: r.series, unit: r.unit, ts: r.ts, avg: r.avg, min: r.min, max: r.max}))}),
  };
}
