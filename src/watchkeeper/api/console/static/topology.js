// An inventory model drawn as SVG: sites as boxes with the site in the middle and its
// devices on a circle around it, each device's interfaces, services and processes on a
// small circle around the device, and one line per relation. The layout is computed in
// one pass (no force iterations), so the same model always looks the same and a few
// hundred nodes take a few milliseconds. Built with createElementNS and textContent only.

const NS = "http://www.w3.org/2000/svg";
export const KIND_ORDER = ["site", "device", "interface", "service", "process", "link"];
export const KIND_COLOURS = {site: "#5c6bc0", device: "#26a69a", interface: "#90a4ae",
  service: "#ffa726", process: "#ab47bc", link: "#8d6e63"};
const OTHER_COLOUR = "#bdbdbd";
export const HEALTH_COLOURS = {ok: "#2e8540", warning: "#d9a400", critical: "#c62828",
  errored: "#6a1b9a"};
const SATELLITE_GAP = 16;  // px along the circle around a device, per attached node
const DEVICE_GAP = 18;     // px between the footprints of devices on a site's circle
const RING_MAX = 12;       // devices on a circle round their site; more go on a grid
const GROUP_PAD = 16;
const LABEL_H = 18;
const PAD_X = 70;  // room beside the outermost nodes for their labels
const PAD_Y = 24;

// svg("circle", {r: 3}, "text"): attributes by setAttribute, strings as text nodes.
export function svg(tag, attrs, ...children) {
  const node = document.createElementNS(NS, tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name.startsWith("on")) {
      if (typeof value !== "function") throw new TypeError(`${name}: not a function`);
      node.addEventListener(name.slice(2), value);
    } else {
      node.setAttribute(name, String(value));
    }
  }
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

export function kindColour(kind) { return KIND_COLOURS[kind] || OTHER_COLOUR; }

function rank(kind) {
  const i = KIND_ORDER.indexOf(kind);
  return i < 0 ? KIND_ORDER.length : i;
}

// The nodes to draw when a model is too big: sites, then devices, then their parts, by id.
export function pickNodes(nodes, max) {
  const sorted = [...nodes].sort((a, b) => rank(a.kind) - rank(b.kind) || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  return sorted.slice(0, max);
}

// Positions of every node: {pos: Map(id -> {x, y}), groups: [{site, x, y, w, h}], width, height}.
export function layout(nodes, relations, maxWidth = 1200) {
  const byId = new Map(nodes.map((n) => [n.id, n]));
  const isDevice = (id) => byId.get(id)?.kind === "device";
  const siteOf = new Map();    // device id -> site id
  const owner = new Map();     // attached node id -> device id
  for (const r of relations) {
    if (!byId.has(r.source) || !byId.has(r.target)) continue;
    if (r.kind === "in_site" && isDevice(r.source) && byId.get(r.target).kind === "site") {
      if (!siteOf.has(r.source)) siteOf.set(r.source, r.target);
    } else if (r.kind === "has_interface" && isDevice(r.source) && !isDevice(r.target)) {
      if (!owner.has(r.target)) owner.set(r.target, r.source);
    } else if ((r.kind === "runs_on" || r.kind === "provided_by") && isDevice(r.target) && !isDevice(r.source)) {
      if (!owner.has(r.source)) owner.set(r.source, r.target);
    }
  }
  const satellites = new Map();  // device id -> [node ids]
  for (const [id, device] of owner) (satellites.get(device) || satellites.set(device, []).get(device)).push(id);
  for (const list of satellites.values()) list.sort();

  // Groups: one per site (its devices), one for devices without a site, one for the rest.
  const groups = [];
  const sites = nodes.filter((n) => n.kind === "site").map((n) => n.id).sort();
  const members = new Map(sites.map((s) => [s, []]));
  const siteless = [];
  const loose = [];
  for (const n of nodes) {
    if (n.kind === "device") {
      const site = siteOf.get(n.id);
      (site ? members.get(site) : siteless).push(n.id);
    } else if (n.kind !== "site" && !owner.has(n.id)) {
      loose.push(n.id);
    }
  }
  const pos = new Map();
  // A device's attached nodes fan out away from its site's centre (all round it when many).
  const fanOf = (k) => (k <= 1 ? 0 : Math.min((2 * Math.PI * (k - 1)) / k, (k - 1) * 0.6));
  const footprint = (device) => {
    const k = (satellites.get(device) || []).length;
    const fan = fanOf(k);
    const ring = k ? Math.max(30, fan ? ((k - 1) * SATELLITE_GAP) / fan : 0) : 0;
    return {ring, fan, radius: Math.max(ring + 12, 32)};  // room for the label too
  };
  // Devices round (0, 0), each with its attached nodes fanned out away from the centre: on
  // a circle up to RING_MAX devices, on a square grid beyond (a circle of 40 would be huge).
  const ring = (devices, hub) => {
    const feet = devices.map(footprint);
    const arcs = feet.map((f) => 2 * f.radius + DEVICE_GAP);
    const biggest = Math.max(0, ...feet.map((f) => f.radius));
    const places = [];  // [x, y] of each device
    if (devices.length > RING_MAX) {
      const columns = Math.ceil(Math.sqrt(devices.length)), cell = 2 * biggest + DEVICE_GAP;
      const rows = Math.ceil(devices.length / columns);
      devices.forEach((_, i) => places.push([(i % columns - (columns - 1) / 2) * cell,
        (Math.floor(i / columns) - (rows - 1) / 2) * cell + (hub ? cell / 2 : 0)]));
    } else {
      const total = arcs.reduce((a, b) => a + b, 0);
      const radius = Math.round(devices.length === 1 && !hub ? 0 : Math.max(total / (2 * Math.PI), biggest + (hub ? 30 : 0)));
      const spread = radius ? Math.max(1, (2 * Math.PI * radius) / total) : 1;  // round the whole circle
      let along = 0;
      devices.forEach((_, i) => {
        const angle = radius ? ((along + (spread * arcs[i]) / 2) / radius) - Math.PI / 2 : 0;
        along += spread * arcs[i];
        places.push([radius * Math.cos(angle), radius * Math.sin(angle)]);
      });
    }
    if (hub && devices.length > RING_MAX) {  // the site above its grid, not in the middle of it
      const top = Math.min(...places.map(([, y]) => y));
      places.forEach((p) => { p[1] -= top - biggest - 40; });
    }
    const local = new Map();
    devices.forEach((device, i) => {
      const [x, y] = places[i];
      local.set(device, {x, y});
      const parts = satellites.get(device) || [];
      const outward = x || y ? Math.atan2(y, x) : -Math.PI / 2;
      const {fan} = feet[i];
      parts.forEach((part, j) => {
        const a = outward + (parts.length > 1 ? -fan / 2 + (fan * j) / (parts.length - 1) : 0);
        local.set(part, {x: x + feet[i].ring * Math.cos(a), y: y + feet[i].ring * Math.sin(a), out: a});
      });
    });
    return {local};
  };
  for (const site of sites) {
    const {local} = ring(members.get(site), true);
    local.set(site, {x: 0, y: 0});
    groups.push({site, local, title: byId.get(site).name});
  }
  if (siteless.length) groups.push({site: null, local: ring(siteless.sort(), false).local, title: "(no site)"});
  if (loose.length) {
    const columns = Math.max(1, Math.ceil(Math.sqrt(loose.length * 2)));
    const local = new Map();
    loose.sort().forEach((id, i) => local.set(id, {x: (i % columns) * 70, y: Math.floor(i / columns) * 50}));
    groups.push({site: undefined, local, title: "other nodes"});
  }
  // Each group's box wraps what it holds, with room for labels.
  for (const g of groups) {
    const xs = [...g.local.values()].map((p) => p.x), ys = [...g.local.values()].map((p) => p.y);
    g.left = Math.min(...xs) - PAD_X;
    g.top = Math.min(...ys) - PAD_Y;
    g.inner = Math.max(...xs) + PAD_X - g.left;
    g.w = Math.round(Math.max(g.inner, 7 * Math.min(40, g.title.length) + 16));
    g.h = Math.round(Math.max(...ys) + PAD_Y + 14 - g.top + LABEL_H);
  }
  // Shelves: groups left to right, a new row when the width is used up; many big groups
  // get a wider picture (up to twice maxWidth, shrunk to the page) rather than a tall one.
  const area = groups.reduce((a, g) => a + (g.w + GROUP_PAD) * (g.h + GROUP_PAD), 0);
  const shelf = Math.min(2 * maxWidth, Math.max(maxWidth, Math.sqrt(area * 1.2)));
  let x = 0, y = 0, row = 0, width = 0;
  for (const g of groups) {
    if (x > 0 && x + g.w > shelf) { x = 0; y += row + GROUP_PAD; row = 0; }
    g.x = x; g.y = y;
    const shift = (g.w - g.inner) / 2;  // centred under a long title
    for (const [id, p] of g.local) {
      pos.set(id, {x: Math.round(x + shift + p.x - g.left), y: Math.round(y + LABEL_H + p.y - g.top), out: p.out});
    }
    for (const key of ["local", "left", "top", "inner"]) delete g[key];
    x += g.w + GROUP_PAD;
    row = Math.max(row, g.h);
    width = Math.max(width, x - GROUP_PAD);
  }
  return {pos, groups, width: Math.max(width, 100), height: Math.max(y + row, 60)};
}

// The SVG: group boxes, one <line> per relation, one <g class="node"> per node.
// health(node) -> "ok" | "warning" | "critical" | "errored" | undefined; onPick(id) on a click.
export function drawTopology(nodes, relations, {health, onPick, selected, stale, maxWidth}) {
  const {pos, groups, width, height} = layout(nodes, relations, maxWidth);
  const byId = new Map(nodes.map((n) => [n.id, n]));
  const M = 24;  // margin for labels past the edges
  // A small model is drawn larger (up to 1.6x, within maxWidth); CSS shrinks a wide one.
  const zoom = Math.max(1, Math.min(1.6, (maxWidth || 1200) / (width + 2 * M)));
  const root = svg("svg", {class: "topology", viewBox: `${-M} ${-M} ${width + 2 * M} ${height + 2 * M}`,
    width: Math.round((width + 2 * M) * zoom), height: Math.round((height + 2 * M) * zoom),
    role: "img", "aria-label": "inventory topology"});
  const boxes = svg("g", {class: "groups"});
  for (const g of groups) {
    const title = shorten(g.title, 40);
    boxes.append(svg("rect", {class: "group", x: g.x, y: g.y, width: g.w, height: g.h, rx: 6,
                              fill: g.site ? "#f3f4fb" : "#f7f7f7", stroke: "#d7d9e8"}),
      svg("text", {class: "group-label", x: g.x + 6, y: g.y + 13, "font-size": 12, fill: "#555"}, title));
  }
  const edges = svg("g", {class: "edges"});
  for (const r of relations) {
    const a = pos.get(r.source), b = pos.get(r.target);
    if (!a || !b) continue;
    const link = r.kind === "links_to";
    edges.append(svg("line", {class: `edge e-${r.kind}`, x1: a.x, y1: a.y, x2: b.x, y2: b.y,
      stroke: link ? "#37474f" : r.kind === "depends_on" ? "#c62828" : "#b0bec5",
      "stroke-width": link ? 2 : 1, "stroke-dasharray": r.kind === "depends_on" ? "4 3" : undefined,
      "data-source": r.source, "data-kind": r.kind, "data-target": r.target},
    svg("title", {}, `${r.source} ${r.kind} ${r.target}`)));
  }
  const drawn = svg("g", {class: "nodes"});
  for (const n of nodes) {
    const p = pos.get(n.id);
    if (!p) continue;
    const h = health(n);
    const ring = h ? HEALTH_COLOURS[h] : "#607d8b";
    const big = n.kind === "site" || n.kind === "device";
    const common = {fill: kindColour(n.kind), stroke: ring, "stroke-width": h ? 3 : 1,
                    "stroke-dasharray": stale ? "3 2" : undefined};
    const shape = n.kind === "site" ? svg("rect", {...common, x: -10, y: -10, width: 20, height: 20, rx: 3,
                                                    transform: "rotate(45)"})
      : n.kind === "device" ? svg("rect", {...common, x: -11, y: -8, width: 22, height: 16, rx: 3})
      : svg("circle", {...common, r: n.kind === "interface" ? 5 : 6});
    const classes = ["node", `k-${n.kind}`, h ? `h-${h}` : "", n.id === selected ? "selected" : ""].filter(Boolean);
    const g = svg("g", {class: classes.join(" "), transform: `translate(${p.x},${p.y})`, tabindex: 0,
      "data-id": n.id, "data-kind": n.kind, "data-health": h || "", role: "button",
      onclick: () => onPick(n.id),
      onkeydown: (e) => { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); onPick(n.id); } }},
    svg("title", {}, `${n.kind} ${n.name}${h ? ` (${h})` : ""}\n${n.id}`),
    n.id === selected ? svg("circle", {r: big ? 17 : 10, fill: "none", stroke: "#ff6f00", "stroke-width": 2.5}) : null,
    shape,
    svg("text", {...labelAt(big, p.out), "font-size": big ? 11 : 8, fill: big ? "#222" : "#666"},
      shorten(n.name, big ? 24 : 12)));
    drawn.append(g);
  }
  root.append(boxes, edges, drawn);
  return root;
}

// Below a site or device; away from its device for an attached node, so that the labels
// of a fan of interfaces line up instead of overlapping.
function labelAt(big, out) {
  if (big || out === undefined) return {y: big ? 22 : 14, "text-anchor": "middle"};
  const c = Math.cos(out), s = Math.sin(out);
  const anchor = c > 0.35 ? "start" : c < -0.35 ? "end" : "middle";
  return {x: Math.round(c * 8), y: Math.round(s * 8 + (anchor === "middle" ? (s > 0 ? 8 : -2) : 3)), "text-anchor": anchor};
}

function shorten(text, max) {
  const s = String(text);
  return s.length > max ? s.slice(0, max - 1) + "…" : s;
}
