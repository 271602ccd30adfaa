// Alarms: the list with filters (in the URL), one alarm's steps, and its actions.
// Polled every 2 s; actions need a write token (the box at the top right).
import {ApiError, get, post, token} from "../api.js";
import {append, clear, el, fmtAgo, fmtTime, stateBadge, table} from "../dom.js";

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
  const rows = new RowWindow(["state", "status", "entity", "opened", "last change", "ack", "snoozed"],
    (a) => [el("td", {}, stateBadge(a.state, a.state_name)), a.status_name, a.entity_id,
            fmtAgo(a.opened), fmtAgo(a.last_change), a.ack ? a.ack.author || "yes" : "", a.snoozed ? "yes" : ""],
    (a) => ({class: a.entity_id === f.key ? "clickable selected" : "clickable", "data-key": a.entity_id,
             title: a.entity_id, onclick: () => update({key: a.entity_id})}));
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
      const shown = filterAlarms(alarms, f);
      count.textContent = `${shown.length} of ${alarms.length} alarms`;
      rows.show(shown);
      if (f.key) await showDetail();
    } catch (error) {
      const absent = error instanceof ApiError && error.status === 404;
      clear(list).append(el("p", {class: absent ? "muted" : "error"},
        absent ? "No alarms here: they are served by `watchkeeper up`." : error.message));
    } finally { busy = false; }
  }

  const message = el("input", {id: "act-message", placeholder: "message"});
  const duration = el("input", {id: "act-duration", type: "number", value: "3600", min: "1", size: 6});
  const outcome = el("span", {id: "act-outcome"});
  async function act(action) {
    if (!token()) { outcome.textContent = "enter a write token first (top right)"; return; }
    const body = {author: "console", message: message.value};
    if (action === "snooze") body.duration = Number(duration.value);
    try {
      await post(`/api/v1/alarms/${encodeURIComponent(f.key)}/${action}`, body);
      outcome.textContent = `${action}: done`;
      await refresh();
    } catch (error) { outcome.textContent = `${action}: ${error.message}`; }
  }
  const actions = el("div", {class: "toolbar"}, message, "snooze s", duration,
    ["ack", "ackremove", "snooze", "unsnooze", "cancel", "uncancel"].map((a) =>
      el("button", {type: "button", id: `act-${a}`, onclick: () => act(a)}, a)), outcome);

  async function showDetail() {
    let alarm;
    try { alarm = await get(`/api/v1/alarms/${encodeURIComponent(f.key)}`); } catch (error) {
      clear(detail).append(el("p", {class: "error"}, error.message));
      return;
    }
    clear(detail).append(el("h3", {}, alarm.entity_id), el("p", {}, stateBadge(alarm.state, alarm.state_name),
      ` ${alarm.status_name}, opened ${fmtTime(alarm.opened)}`, alarm.caused_by ? `, caused by ${alarm.caused_by}` : "",
      alarm.ack ? `, acknowledged by ${alarm.ack.author}` : ""), actions,
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
