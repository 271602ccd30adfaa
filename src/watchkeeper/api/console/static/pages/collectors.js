// Collectors: every job the scheduler runs (interval, next run, latest status and reason,
// lateness, skipped slots), filtered by status and collector (in the URL), one job's last
// run report (&report=COLLECTOR/DEVICE), and the poll counters from /metrics. Refreshed
// every 5 s. Under `serve`, which polls nothing, the jobs seen in the archive's
// check.status series in the last 15 min instead.
import {ApiError, get, parseMetrics} from "../api.js";
import {append, clear, el, fmtAgo, fmtNumber, fmtTime, pairs, statusBadge, table} from "../dom.js";
import {jobBadge, latestChecks} from "./overview.js";

const REFRESH_MS = 5000;
const LIMIT = 500;  // jobs in the table; filters narrow a bigger set
const JOB_STATUSES = ["errored", "critical", "warning", "partial", "unknown", "ok", "pending"];

// "in 12 s" / "3 min ago": `seconds` relative to `now` (both epoch seconds, the server's).
export function fmtRelative(seconds, now) {
  if (seconds === null || seconds === undefined) return "";
  const d = seconds - now;
  if (Math.abs(d) < 0.5) return "now";
  if (d < 0) return fmtAgo(seconds, now);
  if (d < 90) return `in ${Math.round(d)} s`;
  if (d < 5400) return `in ${Math.round(d / 60)} min`;
  if (d < 129600) return `in ${Math.round(d / 3600)} h`;
  return `in ${Math.round(d / 86400)} d`;
}

// A duration in seconds, to three figures: "10 s", "98.5 ms", "2.5 min".
export function fmtSeconds(s) {
  if (s === null || s === undefined) return "";
  if (s >= 120) return `${fmtNumber(s / 60, 1)} min`;
  if (s >= 1) return `${fmtNumber(s, 1)} s`;
  return `${fmtNumber(s * 1000, 1)} ms`;
}

// `COLLECTOR/DEVICE` (a collector's name has no "/"; a device's may) -> {collector, device}.
export function parseReport(value) {
  const slash = (value || "").indexOf("/");
  if (slash <= 0) return null;
  return {collector: value.slice(0, slash), device: value.slice(slash + 1)};
}

function measurementValue(v) {
  if (typeof v === "number") return fmtNumber(v, 6);
  if (v === null || v === undefined) return "";
  return JSON.stringify(v);
}

// The genie-style report (collect/report.py) of one job as text and tables.
export function reportView(report, job) {
  const runs = Object.values(report.runs || {});
  const title = `Last run of ${job.collector} on ${job.device}`;
  if (!runs.length) return [el("h3", {}, title), el("p", {class: "muted"}, "not polled yet")];
  const out = [el("h3", {}, title)];
  for (const run of runs) {
    for (const [collector, byDevice] of Object.entries(run.results)) {
      for (const [device, result] of Object.entries(byDevice)) {
        out.push(pairs([
          ["status", jobBadge(result.status)],
          ["collector / device", `${collector} / ${device}`],
          ["started", `${result.started} (${fmtAgo(Date.parse(result.started) / 1000)})`],
          ["duration", `${fmtNumber(result.duration_ms)} ms`],
        ]));
        out.push(el("h4", {}, "Messages"),
          result.messages.length === 0 ? el("p", {class: "muted"}, "none")
            : el("ul", {class: "report-messages"}, result.messages.map((m) =>
              el("li", {class: "pre"}, m.text))));
        out.push(el("h4", {}, `Measurements (${result.measurements.length})`),
          result.measurements.length === 0 ? el("p", {class: "muted"}, "none")
            : table(["series", "value", "unit"], result.measurements.map((m) =>
              [m.series, el("td", {class: "num"}, measurementValue(m.value)), m.unit])));
      }
    }
  }
  out.push(el("p", {class: "muted"}, `report generated ${report.generated}`));
  return out;
}

function pollsTable(metricsText) {
  const polls = parseMetrics(metricsText).watchkeeper_polls_total || [];
  const byPlugin = new Map();
  for (const s of polls) {
    const row = byPlugin.get(s.labels.plugin) || {};
    row[s.labels.status] = (row[s.labels.status] || 0) + s.value;
    byPlugin.set(s.labels.plugin, row);
  }
  const statuses = [...new Set(polls.map((s) => s.labels.status))].sort();
  return el("div", {id: "polls-by-status"},
    el("h3", {}, "Polls since start, by collector and status"),
    polls.length ? table(["collector", ...statuses], [...byPlugin.entries()].sort().map(([plugin, row]) =>
      [plugin, ...statuses.map((s) => row[s] || 0)])) : el("p", {class: "muted"}, "no polls (serve does not poll)"));
}

// The archive's view, for a server without a scheduler (serve).
async function seenInArchive() {
  const checks = await latestChecks();
  checks.sort((a, b) => b.code - a.code || a.device.localeCompare(b.device) || a.plugin.localeCompare(b.plugin));
  return [el("p", {class: "muted"}, "No scheduler runs here (serve polls nothing): the jobs below are those whose check.status reached the archive."),
    el("h3", {}, `Jobs seen in the last 15 min (${checks.length})`),
    table(["status", "device", "collector", "last result"], checks.map((c) =>
      [el("td", {}, statusBadge(c.code)), c.device, c.plugin, fmtAgo(c.ts)]))];
}

function toolbar(answer, params, nav) {
  const status = params.get("status") || "";
  const collector = params.get("collector") || "";
  const go = (changes) => {
    const next = new URLSearchParams(params);
    for (const [k, v] of Object.entries(changes)) { if (v) next.set(k, v); else next.delete(k); }
    nav.go(next);
  };
  const total = Object.values(answer.statuses).reduce((a, b) => a + b, 0);
  const buttons = [el("button", {type: "button", class: status ? undefined : "active", "data-status": "",
    onclick: () => go({status: ""})}, `all (${total})`)];
  for (const s of JOB_STATUSES) {
    if (!answer.statuses[s]) continue;
    buttons.push(el("button", {type: "button", class: status === s ? "active" : undefined, "data-status": s,
      onclick: () => go({status: s})}, `${s} (${answer.statuses[s]})`));
  }
  const select = el("select", {id: "job-collector", "aria-label": "collector",
    onchange: (e) => go({collector: e.target.value})},
    el("option", {value: ""}, "every collector"),
    Object.entries(answer.collectors).map(([name, n]) =>
      el("option", {value: name, selected: name === collector}, `${name} (${n})`)));
  return el("div", {class: "toolbar", id: "job-filters"}, "status:", buttons, "collector:", select);
}

function jobTable(answer, params, nav, selected) {
  const now = answer.now;
  const jobs = answer.jobs;
  const rows = jobs.map((j) => [
    el("td", {}, jobBadge(j.status)), j.device, j.collector,
    el("td", {class: "num"}, fmtSeconds(j.interval)),
    j.running ? "running" : fmtRelative(j.next_run, now),
    j.last_started == null ? "" : fmtRelative(j.last_started, now),
    el("td", {class: "num"}, fmtSeconds(j.last_duration)),
    el("td", {class: "num"}, fmtSeconds(j.lateness)),
    el("td", {class: "num"}, j.skipped),
    el("td", {class: j.status && j.status !== "ok" ? "pre error" : "pre"},
      j.local_fault ? `${j.reason} (local: ${j.local_fault})` : j.reason)]);
  const shown = answer.total > jobs.length ? `, ${jobs.length} shown: filter to narrow` : "";
  return el("div", {id: "job-list"},
    el("h3", {}, `Jobs (${answer.total}${shown})`),
    jobs.length === 0 ? el("p", {class: "muted"}, "no job passes the filters")
      : table(["status", "device", "collector", "interval", "next run", "last run", "duration", "lateness", "skipped", "reason"],
        rows, (i) => {
          const key = `${jobs[i].collector}/${jobs[i].device}`;
          return {class: key === selected ? "clickable selected" : "clickable", "data-job": jobs[i].job,
                  onclick: () => { const next = new URLSearchParams(params); next.set("report", key); nav.go(next); }};
        }));
}

async function reportCard(chosen) {
  const card = el("div", {class: "card", id: "job-report"});
  try {
    const report = await get("/api/v1/collect/report", chosen);
    append(card, reportView(report, chosen));
  } catch (error) {
    if (!(error instanceof ApiError && error.status === 404)) throw error;
    append(card, el("h3", {}, `Last run of ${chosen.collector} on ${chosen.device}`),
      el("p", {class: "muted"}, "no such job is scheduled here"));
  }
  return card;
}

export async function render(root, params, nav) {
  append(root, el("h2", {}, "Collectors"));
  const body = el("div", {});
  root.append(body);
  const chosen = parseReport(params.get("report"));
  const filters = {status: params.get("status") || undefined, collector: params.get("collector") || undefined, limit: LIMIT};
  let timer = null;

  async function refresh() {
    const [answer, metricsText, report] = await Promise.all([
      get("/api/v1/collect/jobs", filters).catch((error) => {
        if (error instanceof ApiError && error.status === 404) return null;  // serve
        throw error;
      }),
      get("/metrics"),
      chosen ? reportCard(chosen) : null]);
    if (answer === null) {
      clear(body).append(...await seenInArchive(), pollsTable(metricsText));
      return;
    }
    const keepToolbar = body.querySelector("#job-filters")?.contains(document.activeElement);
    const bar = keepToolbar ? body.querySelector("#job-filters") : toolbar(answer, params, nav);
    clear(body).append(bar, report || "",
      jobTable(answer, params, nav, chosen && `${chosen.collector}/${chosen.device}`),
      pollsTable(metricsText));
    document.getElementById("status").textContent = `updated ${new Date().toLocaleTimeString()}`;
  }

  async function loop() {
    try { await refresh(); } catch (error) {
      document.getElementById("status").textContent = `refresh failed: ${error.message}`;
    }
    timer = setTimeout(loop, REFRESH_MS);
  }
  await refresh();
  timer = setTimeout(loop, REFRESH_MS);
  return () => clearTimeout(timer);
}
