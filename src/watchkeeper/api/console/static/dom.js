// Building the page from data without ever parsing it as markup: every string becomes a
// text node (textContent), never innerHTML. Series names, labels, alarm messages and
// inventory attributes come from devices and clients.

// el("td", {class: "num"}, "42", child): attributes go through setAttribute, except
// "on*" keys, which must be functions and are added as listeners (never as attributes).
export function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on")) {
      if (typeof value !== "function") throw new TypeError(`${name}: not a function`);
      node.addEventListener(name.slice(2), value);
    } else if (name === "value" || name === "checked" || name === "selected") {
      node[name] = value;
    } else {
      node.setAttribute(name, value === true ? "" : String(value));
    }
  }
  append(node, ...children);
  return node;
}

export function append(node, ...children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

export function clear(node) {
  while (node.firstChild) node.removeChild(node.firstChild);
  return node;
}

// A table: headers, then rows of cells (a cell is a string, a number or a Node).
export function table(headers, rows, rowAttrs) {
  return el("table", {},
    el("thead", {}, el("tr", {}, headers.map((h) => el("th", {}, h)))),
    el("tbody", {}, rows.map((cells, i) => el("tr", rowAttrs ? rowAttrs(i) : {},
      cells.map((c) => (c instanceof Node && c.tagName === "TD") ? c
        : el("td", typeof c === "number" ? {class: "num"} : {}, c))))));
}

// A two-column table of (name, value) pairs, no header.
export function pairs(rows) {
  return el("table", {}, el("tbody", {}, rows.map(([k, v]) => el("tr", {}, el("th", {}, k),
    el("td", typeof v === "number" ? {class: "num"} : {}, v)))));
}

const STATUS_CLASS = {0: "ok", 1: "warning", 2: "critical", 3: "errored"};
export const STATUS_NAME = {0: "OK", 1: "WARNING", 2: "CRITICAL", 3: "ERRORED"};
export const ALARM_STATE = {0: "ok", 1: "minor", 2: "major", 3: "critical"};

export function statusBadge(code) {
  if (code === null || code === undefined) return el("span", {class: "badge s-nodata"}, "no data");
  return el("span", {class: `badge s-${STATUS_CLASS[code] || "unknown"}`},
    STATUS_NAME[code] || String(code));
}

export function stateBadge(state, name) {
  return el("span", {class: `badge s-${ALARM_STATE[state] || "unknown"}`}, name || ALARM_STATE[state] || String(state));
}

export function fmtTime(seconds) {
  if (seconds === null || seconds === undefined) return "";
  const d = new Date(seconds * 1000);
  return d.toISOString().replace("T", " ").replace(/\.\d+Z$/, "Z");
}

export function fmtAgo(seconds, now = Date.now() / 1000) {
  if (seconds === null || seconds === undefined) return "";
  const s = Math.max(0, now - seconds);
  if (s < 90) return `${Math.round(s)} s ago`;
  if (s < 5400) return `${Math.round(s / 60)} min ago`;
  if (s < 129600) return `${Math.round(s / 3600)} h ago`;
  return `${Math.round(s / 86400)} d ago`;
}

export function fmtNumber(v, digits = 3) {
  if (v === null || v === undefined || Number.isNaN(v)) return "";
  const a = Math.abs(v);
  if (a !== 0 && (a >= 1e6 || a < 1e-3)) return v.toExponential(digits - 1);
  return String(Number(v.toPrecision(digits + 2)));
}

// The parts of a series name: subject/plugin/metric{labels} (watchkeeper.model.SeriesKey).
export function splitSeries(name) {
  const brace = name.indexOf("{");
  const head = brace < 0 ? name : name.slice(0, brace);
  const parts = head.split("/");
  return {subject: parts.slice(0, -2).join("/"), plugin: parts[parts.length - 2] || "",
          metric: parts[parts.length - 1] || "", labels: brace < 0 ? "" : name.slice(brace)};
}
