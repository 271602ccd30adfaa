// Overview: health by device, by collector and by site (worst first), firing alarms,
// ingest rate and scheduler lateness, stale inventory models, failing jobs with their
// reason. Refreshed every 5 s. The first paint waits only for the five cheap answers;
// the site roll-up (the inventory's devices, fetched again only when a model's version
// changes) and the failing jobs fill in after it.
import {ApiError, get, metricSum, parseMetrics} from "../api.js";
import {append, clear, el, fmtAgo, fmtNumber, splitSeries, pairs, stateBadge, statusBadge, table} from "../dom.js";

const WINDOW = 900;  // the latest check.status within 15 min; older is "no data"
const REFRESH_MS = 5000;
const WORST = (code) => (code === 3 ? 2.5 : code);  // errored sorts between warning and critical
const NO_SITE = "(no site)";
const PAGE = 10000;  // the inventory API's largest page
const FAILING = ["errored", "critical", "warning", "partial"];
const FAILING_SHOWN = 20;
const BADGE_CLASS = {ok: "ok", partial: "warning", warning: "warning", critical: "critical",
                     errored: "errored", unknown: "unknown", pending: "nodata"};

// A job status (the jobs API's words; "pending": not polled yet) as a coloured badge.
export function jobBadge(status) {
  const name = status || "pending";
  return el("span", {class: `badge s-${BADGE_CLASS[name] || "unknown"}`}, name.toUpperCase());
}

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

// One model's sites: {version, siteOf: Map(device -> site), declared: Set(site)}. A
// device's site is its `site` attribute, else the sites it is `in_site` of (joined, as the
// enrich engine reads them). Kept until the model's version changes.
const modelSites = new Map();

async function sitesOf(model) {
  const known = modelSites.get(model.name);
  if (known && known.version === model.version) return known;
  const siteOf = new Map(), declared = new Set(), inSite = new Map();
  let offset = 0, version, total = 0;
  do {
    const page = await get(`/api/v1/inventory/${encodeURIComponent(model.name)}`,
      {kind: ["device", "site"], limit: PAGE, offset, version});
    version = page.version;
    total = page.total;
    for (const node of page.nodes) {
      if (node.kind === "site") declared.add(node.name);
      else if (node.attrs && node.attrs.site) siteOf.set(node.name, String(node.attrs.site));
    }
    for (const r of page.relations) {
      if (r.kind !== "in_site") continue;
      const device = decodeURIComponent(r.source.slice("device/".length));
      const site = decodeURIComponent(r.target.slice("site/".length));
      inSite.set(device, [...(inSite.get(device) || []), site]);
    }
    offset += page.nodes.length;
  } while (offset < total && offset > 0);
  for (const [device, sites] of inSite) {
    if (!siteOf.has(device)) siteOf.set(device, sites.sort().join(","));
  }
  const found = {version: model.version, siteOf, declared};
  modelSites.set(model.name, found);
  return found;
}

// The health of each site: its devices' check.status series rolled up, worst first; a
// declared site without any comes last as "no data"; devices with no site as one row.
export function siteRollUp(checks, siteOf, declared) {
  const devices = new Map();
  for (const [device, site] of siteOf) devices.set(site, (devices.get(site) || 0) + 1);
  const groups = rollUp(checks, (c) => siteOf.get(c.device) || NO_SITE);
  const named = new Set(groups.map((g) => g.name));
  for (const site of [...declared].sort()) {
    if (!named.has(site)) groups.push({name: site, worst: null, counts: {}, last: 0});
  }
  for (const g of groups) {
    g.devices = g.name === NO_SITE
      ? new Set(checks.filter((c) => !siteOf.has(c.device)).map((c) => c.device)).size
      : devices.get(g.name) || 0;
  }
  return groups;
}

async function fillSites(card, models, checks) {
  const siteOf = new Map(), declared = new Set();
  for (const model of models) {  // the first model that places a device wins
    const found = await sitesOf(model).catch((error) => {
      if (error instanceof ApiError && error.status === 404) return null;  // gone meanwhile
      throw error;
    });
    if (!found) continue;
    for (const [device, site] of found.siteOf) if (!siteOf.has(device)) siteOf.set(device, site);
    found.declared.forEach((s) => declared.add(s));
  }
  const groups = siteRollUp(checks, siteOf, declared);
  clear(card).append(el("h3", {}, "Sites (worst first)"),
    siteOf.size === 0 && declared.size === 0 ? el("p", {class: "muted"}, "no device of the inventory has a site")
      : table(["", "site", "devices", "OK", "WARNING", "CRITICAL", "ERRORED"],
        groups.map((g) => [el("td", {}, statusBadge(g.worst)), g.name, g.devices, ...counts(g)])));
}

async function fillFailing(card) {
  let answer;
  try {
    answer = await get("/api/v1/collect/jobs", {status: FAILING, limit: FAILING_SHOWN});
  } catch (error) {
    if (!(error instanceof ApiError && error.status === 404)) throw error;
    clear(card).append(el("h3", {}, "Failing jobs"), el("p", {class: "muted"}, "no scheduler runs here (serve)"));
    return;
  }
  const more = answer.total > answer.jobs.length ? `, ${answer.jobs.length} worst shown` : "";
  clear(card).append(el("h3", {}, `Failing jobs (${answer.total}${more})`),
    answer.jobs.length === 0 ? el("p", {class: "muted"}, "none: every job's latest poll is OK")
      : table(["", "collector", "device", "reason", "last run"], answer.jobs.map((j) => [
        el("td", {}, jobBadge(j.status)),
        el("td", {}, el("a", {href: `#/collectors?report=${encodeURIComponent(`${j.collector}/${j.device}`)}`}, j.collector)),
        j.device, el("td", {class: "pre"}, j.local_fault ? `${j.reason} (local: ${j.local_fault})` : j.reason),
        fmtAgo(j.last_started, answer.now)])));
}

// Fill a card after the first paint; its data-state says when it is done (tests, benchmark).
async function fill(card, filling) {
  try {
    await filling;
    card.dataset.state = "done";
  } catch (error) {
    clear(card).append(el("p", {class: "error"}, String(error.message || error)));
    card.dataset.state = "error";
  }
  card.dataset.filledAt = String(performance.now());
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
  let latest = null;  // what the first paint had: the slow cards fill from it
  let filling = null;
  const sitesCard = el("div", {class: "card", id: "ov-sites", "data-state": "loading"},
    el("h3", {}, "Sites (worst first)"), el("p", {class: "muted"}, "loading…"));
  const failingCard = el("div", {class: "card", id: "ov-failing", "data-state": "loading"},
    el("h3", {}, "Failing jobs"), el("p", {class: "muted"}, "loading…"));

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
      el("div", {class: "grid2"}, sitesCard, failingCard),
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
    latest = {models: inventory.note ? null : models, checks};
    document.getElementById("status").textContent = `updated ${new Date().toLocaleTimeString()}`;
  }

  // The slow cards, after the paint; never two fills at once.
  function fillSlowCards() {
    if (filling || !latest) return;
    const {models, checks} = latest;
    const sites = models ? fillSites(sitesCard, models, checks)
      : Promise.resolve(clear(sitesCard).append(el("h3", {}, "Sites"), el("p", {class: "muted"}, "no inventory")));
    filling = Promise.all([fill(sitesCard, sites), fill(failingCard, fillFailing(failingCard))])
      .finally(() => { filling = null; });
  }

  async function loop() {
    try { await refresh(); } catch (error) {
      document.getElementById("status").textContent = `refresh failed: ${error.message}`;
    }
    fillSlowCards();
    timer = setTimeout(loop, REFRESH_MS);
  }
  await refresh();
  fillSlowCards();
  timer = setTimeout(loop, REFRESH_MS);
  return () => clearTimeout(timer);
}
