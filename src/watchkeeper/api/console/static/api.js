// The one door to watchkeeper's public REST API. A token, if the user gave one, lives in
// sessionStorage (gone with the tab) and travels as `Authorization: Token KEY`; the page
// never shows it. Cross-site requests cannot send that header without a CORS preflight,
// which this server never grants, so writes cannot be forged from another site.

const KEY = "watchkeeper.token";

export function token() { return sessionStorage.getItem(KEY) || ""; }
export function setToken(value) {
  if (value) sessionStorage.setItem(KEY, value); else sessionStorage.removeItem(KEY);
}

export class ApiError extends Error {
  constructor(status, detail, path) {
    super(`${path}: ${status} ${detail}`);
    this.status = status;
    this.detail = detail;
  }
}

function headers(extra) {
  const h = {Accept: "application/json", ...extra};
  const t = token();
  if (t) h.Authorization = `Token ${t}`;
  return h;
}

export function url(path, params) {
  const u = new URL(path, location.origin);
  for (const [k, v] of Object.entries(params || {})) {
    if (Array.isArray(v)) v.forEach((x) => u.searchParams.append(k, x));
    else if (v !== undefined && v !== null && v !== "") u.searchParams.set(k, v);
  }
  return u.pathname + u.search;
}

async function answer(response, path) {
  if (response.ok) {
    const type = response.headers.get("content-type") || "";
    return type.includes("json") ? response.json() : response.text();
  }
  let detail = response.statusText;
  try { detail = (await response.json()).detail || detail; } catch { /* not JSON */ }
  throw new ApiError(response.status, detail, path);
}

export async function get(path, params, options) {
  const target = url(path, params);
  return answer(await fetch(target, {headers: headers(), signal: options?.signal,
                                     credentials: "omit"}), target);
}

export async function post(path, body) {
  const response = await fetch(path, {method: "POST", credentials: "omit",
    headers: headers({"Content-Type": "application/json"}), body: JSON.stringify(body || {})});
  return answer(response, path);
}

export async function del(path) {
  const response = await fetch(path, {method: "DELETE", credentials: "omit", headers: headers()});
  return answer(response, path);
}

// Prometheus text exposition: {name: [{labels: {...}, value}]} (comments skipped).
export function parseMetrics(text) {
  const out = {};
  for (const line of text.split("\n")) {
    if (!line || line.startsWith("#")) continue;
    const m = line.match(/^([a-zA-Z_:][\w:]*)(\{(.*)\})?\s+(\S+)/);
    if (!m) continue;
    const labels = {};
    for (const p of (m[3] || "").matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[p[1]] = p[2];
    (out[m[1]] ||= []).push({labels, value: Number(m[4])});
  }
  return out;
}

export function metricSum(metrics, name, filter) {
  return (metrics[name] || []).filter((s) => !filter || filter(s.labels))
    .reduce((acc, s) => acc + s.value, 0);
}
