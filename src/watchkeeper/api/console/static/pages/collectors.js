// Collectors: every (device, collector) job seen in the last 15 min with its latest
// status, and the poll counters from /metrics. (The API has no job listing yet, so the
// interval and next run are not shown; docs/console.md.)
import {get, parseMetrics} from "../api.js";
import {append, el, fmtAgo, statusBadge, table} from "../dom.js";
import {latestChecks} from "./overview.js";

export async function render(root) {
  const [checks, text] = await Promise.all([latestChecks(), get("/metrics")]);
  const polls = parseMetrics(text).watchkeeper_polls_total || [];
  const byPlugin = new Map();
  for (const s of polls) {
    const row = byPlugin.get(s.labels.plugin) || {};
    row[s.labels.status] = (row[s.labels.status] || 0) + s.value;
    byPlugin.set(s.labels.plugin, row);
  }
  const statuses = [...new Set(polls.map((s) => s.labels.status))].sort();
  checks.sort((a, b) => b.code - a.code || a.device.localeCompare(b.device) || a.plugin.localeCompare(b.plugin));
  append(root, el("h2", {}, "Collectors"),
    el("h3", {}, "Polls since start, by collector and status"),
    polls.length ? table(["collector", ...statuses], [...byPlugin.entries()].sort().map(([plugin, row]) =>
      [plugin, ...statuses.map((s) => row[s] || 0)])) : el("p", {class: "muted"}, "no polls (serve does not poll)"),
    el("h3", {}, `Jobs seen in the last 15 min (${checks.length})`),
    table(["status", "device", "collector", "last result"], checks.map((c) =>
      [el("td", {}, statusBadge(c.code)), c.device, c.plugin, fmtAgo(c.ts)])));
  return null;
}
