// Overview: health by device and by collector (worst first), firing alarms, ingest rate
// and scheduler lateness, stale inventory models. Refreshed every 5 s.
import {ApiError, get, metricSum, parseMetrics} from "../api.js";
import {append, clear, el, fmtAgo, fmtNumber, splitSeries, pairs, stateBadge, statusBadge, table} from "../dom.js";

const WINDOW = 900;  // the latest check.status within 15 min; older is "no data"
const REFRESH_MS = 5000;
const WORST = (code) => (code === 3 ? 2.5 : code);  // errored sorts between warning and critical

// {device: {worst, counts: {code: n}}} from the latest value of every check.status series.
export function rollUp(checks, keyOf) {
  const groups = new Map();
  for (const c of checks) {
    const key = keyOf(c);
    const g = groups.get(key) || {name: key, worst: -1, counts: {}, last: 0};
    g.counts[c.code] = (g.counts[c.code] || 0) + 1;
    if (WORST(c.code) > WORST(g.worst)) g.worst = c.code;
    g.last = Math.max(g.last, c.ts);
    groups.set(key, g);
  }
  return [...groups.values()].sort((a, b) => WORST(b.worst) - WORST(a.worst) || a.name.localeCompare(b.name));
}

export async function latestChecks() {
  const answer = await get("/api/v1/rollup", {metric: "check.status", start: `${WINDOW}s`, step: WINDOW, aggs: "last"});
  const checks = [];
  for (const s of answer.series) {
    const parts = splitSeries(s.series);
    if (parts.metric !== "check.status") continue;
    const last = s.values.last;
    let i = last.length - 1;
    while (i >= 0 && last[i] === null) i--;
    if (i < 0) continue;
    checks.push({device: parts.subject, plugin: parts.plugin, code: last[i], ts: s.ts[i]});
  }
  return checks;
}

function counts(g) {
  return [0, 1, 2, 3].map((code) => g.counts[code] || 0);
}

function healthTable(title, groups, id) {
  return el("div", {class: "card", id},
    el("h3", {}, title),
    groups.length === 0 ? el("p", {class: "muted"}, "no check.status in the last 15 min")
      : table(["", "name", "OK", "WARNING", "CRITICAL", "ERRORED"],
        groups.map((g) => [el("td", {}, statusBadge(g.worst)), g.name, ...counts(g)])));
}

function orNote(promise, note) {
  return promise.catch((error) => {
    if (error instanceof ApiError && (error.status === 404 || error.status === 401)) return {note: `${note} (${error.status})`};
    throw error;
  });
}

export async function render(root, params) {
  append(root, el("h2", {}, "Overview"));
  const body = el("div", {});
  root.append(body);
  let previous = null;  // the last /metrics sample, for the ingest rate
  let timer = null;

  async function refresh() {
    const [health, checks, alarms, inventory, metricsText] = await Promise.all([
      get("/api/v1/health"),
      latestChecks(),
      orNote(get("/api/v1/alarms", {limit: 1000}), "alarms are served by `watchkeeper up`"),
      orNote(get("/api/v1/inventory"), "no inventory"),
      get("/metrics"),
    ]);
    const metrics = parseMetrics(metricsText);
    const now = performance.now() / 1000;
    const ingested = metricSum(metrics, "watchkeeper_points_ingested_total");
    const rate = previous ? (ingested - previous.ingested) / (now - previous.at) : null;
    previous = {ingested, at: now};
    const lateSum = metricSum(metrics, "watchkeeper_scheduler_lateness_seconds_sum");
    const lateCount = metricSum(metrics, "watchkeeper_scheduler_lateness_seconds_count");
    const jobs = metricSum(metrics, "watchkeeper_scheduled_jobs");

    const devices = rollUp(checks, (c) => c.device);
    const collectors = rollUp(checks, (c) => c.plugin);
    const firing = Array.isArray(alarms) ? alarms.filter((a) => a.state > 0 && a.resolved == null)
      .sort((a, b) => b.state - a.state || b.last_change - a.last_change) : [];
    const models = inventory.collectors || [];
    const stale = models.filter((m) => m.stale_since != null);

    clear(body).append(
      el("div", {class: "grid2"},
        el("div", {class: "card", id: "ov-health"},
          el("h3", {}, "watchkeeper"),
          el("div", {class: "figure"}, health.status), el("div", {class: "muted"}, `version ${health.version}`),
          health.reasons.length ? el("ul", {}, health.reasons.map((r) => el("li", {}, r))) : null),
        el("div", {class: "card", id: "ov-ingest"},
          el("h3", {}, "Ingest and scheduling"),
          pairs([
            ["points ingested", fmtNumber(ingested, 6)],
            ["ingest rate", rate === null ? "measuring…" : `${fmtNumber(rate)} points/s`],
            ["scheduled jobs", jobs],
            ["mean scheduler lateness", lateCount ? `${fmtNumber(1000 * lateSum / lateCount)} ms over ${lateCount} polls` : "no polls yet"],
          ]))),
      el("div", {class: "grid2"},
        healthTable("Devices (worst first)", devices, "ov-devices"),
        healthTable("Collectors (worst first)", collectors, "ov-collectors")),
      el("div", {class: "grid2"},
        el("div", {class: "card", id: "ov-alarms"},
          el("h3", {}, `Firing alarms (${firing.length})`),
          alarms.note ? el("p", {class: "muted"}, alarms.note)
            : firing.length === 0 ? el("p", {class: "muted"}, "none")
            : table(["state", "entity", "since", "ack"], firing.slice(0, 50).map((a) => [
              el("td", {}, stateBadge(a.state, a.state_name)),
              el("td", {}, el("a", {href: `#/alarms?key=${encodeURIComponent(a.entity_id)}`}, a.entity_id)),
              fmtAgo(a.opened), a.ack ? "yes" : ""]))),
        el("div", {class: "card", id: "ov-models"},
          el("h3", {}, `Inventory models (${models.length}, ${stale.length} stale)`),
          inventory.note ? el("p", {class: "muted"}, inventory.note)
            : table(["model", "version", "nodes", "synced", "stale reason"], models.map((m) => [
              el("td", {}, el("a", {href: `#/inventory?c=${encodeURIComponent(m.name)}`}, m.name)),
              m.version, m.nodes, fmtAgo(m.synced_at),
              el("td", {class: m.stale_since != null ? "error" : ""}, m.stale_reason || "")])))),
    );
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
