// Alarms: the list with filters (in the URL) as an impact tree, one alarm's steps, and
// its actions. Polled every 2 s; actions need a write token (the box at the top right).
import {ApiError, get, post, token} from "../api.js";
import {ALARM_STATE, append, clear, el, fmtAgo, fmtTime, stateBadge, table} from "../dom.js";

const POLL_MS = 2000;
const ROW_PX = 28;  // every row is one line this high (console.css .vlist)
const OVERSCAN = 10;

// A list of any length that keeps only the rows in view (plus a few) in the page, so
// 10,000 alarms scroll like 30. Rows have one fixed height.
class RowWindow {
  constructor(headers, cells, rowAttrs) {
    this.items = [];
    this.cells = cells;
    this.rowAttrs = rowAttrs;
    this.body = el("tbody", {});
    this.spacer = el("div", {class: "vspacer"});
    this.table = el("table", {class: "vlist"},
      el("thead", {}, el("tr", {}, headers.map((h) => el("th", {}, h)))), this.body);
    this.node = el("div", {class: "vscroll", id: "alarm-scroll"}, this.spacer, this.table);
    let pending = false;
    this.node.addEventListener("scroll", () => {
      if (pending) return;
      pending = true;
      requestAnimationFrame(() => { pending = false; this.render(); });
    });
  }

  show(items) {
    this.items = items;
    this.spacer.style.height = `${(items.length + 1) * ROW_PX}px`;
    this.node.style.height = `min(40vh, ${(items.length + 1) * ROW_PX + 4}px)`;
    this.render();
  }

  render() {
    const height = this.node.clientHeight || 600;
    const first = Math.max(0, Math.floor(this.node.scrollTop / ROW_PX) - OVERSCAN);
    const last = Math.min(this.items.length, first + Math.ceil(height / ROW_PX) + 2 * OVERSCAN);
    this.table.style.transform = `translateY(${first * ROW_PX}px)`;
    clear(this.body).append(...this.items.slice(first, last).map((item) =>
      el("tr", this.rowAttrs(item), this.cells(item).map((c) =>
        (c instanceof Node && c.tagName === "TD") ? c : el("td", {}, c)))));
  }
}

export function filterAlarms(alarms, f) {
  const entity = (f.entity || "").toLowerCase();
  return alarms.filter((a) =>
    (f.state === "" || f.state === undefined || String(a.state) === f.state)
    && (!entity || a.entity_id.toLowerCase().includes(entity))
    && (f.ack !== "yes" || a.ack) && (f.ack !== "no" || !a.ack));
}

// The impact tree as rows: each alarm under the alarm it is a consequence of (`caused_by`,
// the cause's entity id; the engine marks it from the inventory's `upstream`), in the
// list's order; a collapsed cause hides its consequences. An alarm whose cause is not in
// the list (filtered out, or no longer open) is a root; so is one on a cycle of causes.
export function impactRows(alarms, collapsed) {
  const byEntity = new Map(alarms.map((a) => [a.entity_id, a]));
  const children = new Map(), roots = [], reached = new Set();
  for (const a of alarms) {
    const cause = a.caused_by !== a.entity_id && byEntity.get(a.caused_by);
    if (!cause) { roots.push(a); continue; }
    if (!children.has(cause.entity_id)) children.set(cause.entity_id, []);
    children.get(cause.entity_id).push(a);
  }
  const reach = (a) => {
    if (reached.has(a.entity_id)) return;
    reached.add(a.entity_id);
    (children.get(a.entity_id) || []).forEach(reach);
  };
  roots.forEach(reach);
  for (const a of alarms) if (!reached.has(a.entity_id)) { roots.push(a); reach(a); }
  const rows = [], seen = new Set();
  const visit = (a, depth) => {
    if (seen.has(a.entity_id)) return;
    seen.add(a.entity_id);
    const kids = children.get(a.entity_id) || [];
    rows.push({alarm: a, depth, consequences: kids.length});
    if (!collapsed.has(a.entity_id)) kids.forEach((k) => visit(k, depth + 1));
  };
  roots.forEach((a) => visit(a, 0));
  return rows;
}

export async function render(root, params, nav) {
  const f = {status: params.get("status") || "", state: params.get("state") || "",
             entity: params.get("entity") || "", ack: params.get("ack") || "",
             resolved: params.get("resolved") === "1", key: params.get("key") || ""};
  const update = (changes) => nav.go(Object.fromEntries(Object.entries({...f, ...changes,
    resolved: (changes.resolved ?? f.resolved) ? "1" : ""}).filter(([, v]) => v !== "")));
  const select = (name, choices) => el("select", {id: `f-${name}`, onchange: (e) => update({[name]: e.target.value})},
    choices.map(([v, label]) => el("option", {value: v, selected: f[name] === v}, label)));
  const entity = el("input", {id: "f-entity", value: f.entity, placeholder: "entity contains"});
  const count = el("p", {class: "muted", id: "alarm-count"});
  const collapsed = new Set();  // causes whose consequences are hidden
  let shown = [];
  const rows = new RowWindow(["state", "status", "entity (impact tree)", "opened", "last change", "ack", "snoozed"],
    ({alarm: a, depth, consequences}) => [el("td", {}, stateBadge(a.state, a.state_name)), a.status_name,
      entityCell(a, depth, consequences), fmtAgo(a.opened), fmtAgo(a.last_change),
      a.ack ? a.ack.author || "yes" : "", a.snoozed ? "yes" : ""],
    ({alarm: a, depth}) => ({class: a.entity_id === f.key ? "clickable selected" : "clickable",
      "data-key": a.entity_id, "data-depth": depth, "data-cause": a.caused_by || undefined,
      title: a.caused_by ? `${a.entity_id}, caused by ${a.caused_by}` : a.entity_id,
      onclick: () => update({key: a.entity_id})}));
  function entityCell(a, depth, consequences) {
    const open = !collapsed.has(a.entity_id);
    const toggle = consequences ? el("button", {type: "button", class: "tree-toggle", "aria-expanded": String(open),
      title: `${open ? "hide" : "show"} its ${consequences} consequence(s)`,
      onclick: (e) => { e.stopPropagation(); toggleTree(a.entity_id, open); }},
      `${open ? "▾" : "▸"} ${consequences}`) : null;
    const td = el("td", {class: "tree"}, depth ? "↳ " : "", toggle, a.entity_id);
    td.style.paddingLeft = `${0.5 + 1.4 * depth}em`;  // CSSOM, which the CSP allows
    return td;
  }
  function toggleTree(entity, open) {  // open: it was, so collapse it
    if (open) collapsed.add(entity); else collapsed.delete(entity);
    rows.show(impactRows(shown, collapsed));
  }
  const list = el("div", {id: "alarm-list"}, count, rows.node);
  const detail = el("div", {id: "alarm-detail", class: "card"});
  append(root, el("h2", {}, "Alarms"),
    el("form", {class: "toolbar", onsubmit: (e) => { e.preventDefault(); update({entity: entity.value}); }},
      "state", select("state", [["", "any"], ["0", "ok"], ["1", "minor"], ["2", "major"], ["3", "critical"]]),
      "status", select("status", [["", "any"], ["ongoing", "ongoing"], ["flapping", "flapping"], ["stealthy", "stealthy"], ["cancelled", "cancelled"], ["off", "off"]]),
      "acknowledged", select("ack", [["", "any"], ["yes", "yes"], ["no", "no"]]),
      entity, el("button", {type: "submit"}, "filter"),
      el("label", {}, el("input", {type: "checkbox", id: "f-resolved", checked: f.resolved,
        onchange: (e) => update({resolved: e.target.checked})}), " resolved too")),
    el("div", {class: "grid2"}, list, detail));

  let timer = null, busy = false, stopped = false;
  async function refresh() {
    if (busy) return;
    busy = true;
    try {
      const alarms = await get("/api/v1/alarms", {status: f.status, resolved: f.resolved ? "true" : "", limit: 100000});
      shown = filterAlarms(alarms, f);
      count.textContent = `${shown.length} of ${alarms.length} alarms`;
      rows.show(impactRows(shown, collapsed));
      if (f.key) await showDetail();
    } catch (error) {
      const absent = error instanceof ApiError && error.status === 404;
      clear(list).append(el("p", {class: absent ? "muted" : "error"},
        absent ? "No alarms here: they are served by `watchkeeper up`." : error.message));
    } finally { busy = false; }
  }

  const message = el("input", {id: "act-message", placeholder: "message"});
  const duration = el("input", {id: "act-duration", type: "number", value: "3600", min: "1", size: 6});
  const state = el("select", {id: "act-state", title: "the state changestate sets (kept until the alarm is resolved)"},
    Object.entries(ALARM_STATE).map(([v, name]) => el("option", {value: v}, `${v} ${name}`)));
  const outcome = el("span", {id: "act-outcome"});
  async function act(action) {
    if (!token()) { outcome.textContent = "enter a write token first (top right)"; return; }
    const body = {author: "console", message: message.value};
    if (action === "snooze") body.duration = Number(duration.value);
    if (action === "changestate") body.state = Number(state.value);
    try {
      await post(`/api/v1/alarms/${encodeURIComponent(f.key)}/${action}`, body);
      outcome.textContent = `${action}: done`;
      await refresh();
    } catch (error) { outcome.textContent = `${action}: ${error.message}`; }
  }
  const actions = el("div", {class: "toolbar"}, message, "snooze s", duration,
    ["ack", "ackremove", "snooze", "unsnooze", "cancel", "uncancel"].map((a) =>
      el("button", {type: "button", id: `act-${a}`, onclick: () => act(a)}, a)),
    "state", state, el("button", {type: "button", id: "act-changestate", onclick: () => act("changestate")}, "changestate"),
    outcome);

  async function showDetail() {
    let alarm;
    try { alarm = await get(`/api/v1/alarms/${encodeURIComponent(f.key)}`); } catch (error) {
      clear(detail).append(el("p", {class: "error"}, error.message));
      return;
    }
    const pick = (entity) => el("a", {href: "#", class: "alarm-link", onclick: (e) => { e.preventDefault(); update({key: entity}); }}, entity);
    const consequences = shown.filter((a) => a.caused_by === alarm.entity_id && a.entity_id !== alarm.entity_id);
    clear(detail).append(el("h3", {}, alarm.entity_id), el("p", {}, stateBadge(alarm.state, alarm.state_name),
      ` ${alarm.status_name}, opened ${fmtTime(alarm.opened)}`,
      alarm.ack ? `, acknowledged by ${alarm.ack.author}` : ""),
    alarm.caused_by ? el("p", {id: "alarm-cause"}, "caused by ", pick(alarm.caused_by)) : null,
    consequences.length ? el("p", {id: "alarm-consequences"}, "consequences: ",
      consequences.map((a, i) => [i ? ", " : "", pick(a.entity_id)])) : null,
    actions,
    table(["time", "step", "author", "message", "value"], (alarm.steps || []).slice().reverse().map((s) =>
      [fmtTime(s.t), s.type, s.author, el("td", {class: "pre"}, s.message), s.val ?? ""])));
  }
  if (!f.key) detail.append(el("p", {class: "muted"}, "Pick an alarm to see its steps and act on it."));

  async function loop() {
    if (stopped) return;
    await refresh();
    if (!stopped) timer = setTimeout(loop, POLL_MS);
  }
  await refresh();
  timer = setTimeout(loop, POLL_MS);
  return () => { stopped = true; clearTimeout(timer); };
}
