// The console's shell: the navigation, the token box, and a router over the URL's hash
// (#/page?params), so that every view is a link that can be shared.
import {setToken, token} from "./api.js";
import {clear, el} from "./dom.js";

const PAGES = {
  overview: () => import("./pages/overview.js"),
  explore: () => import("./pages/explore.js"),
  alarms: () => import("./pages/alarms.js"),
  inventory: () => import("./pages/inventory.js"),
  collectors: () => import("./pages/collectors.js"),
  perfsonar: () => import("./pages/perfsonar.js"),
  tokens: () => import("./pages/tokens.js"),
};

let cleanup = null;
let generation = 0;

export function parseHash() {
  const [path, query] = location.hash.replace(/^#\/?/, "").split("?", 2);
  return {page: path || "overview", params: new URLSearchParams(query || "")};
}

// Go to `page` with `params` (a URLSearchParams or a plain object).
export function go(page, params) {
  const query = new URLSearchParams(params).toString();
  location.hash = `#/${page}${query ? "?" + query : ""}`;
}

async function route() {
  const {page, params} = parseHash();
  const mine = ++generation;
  if (cleanup) { cleanup(); cleanup = null; }
  for (const a of document.querySelectorAll("#nav a")) {
    a.classList.toggle("active", a.dataset.page === page);
  }
  const main = document.getElementById("main");
  document.body.dataset.ready = "";
  document.body.dataset.routeAt = String(performance.now());  // for benchmarks/console.py
  document.getElementById("status").textContent = "";
  const load = PAGES[page];
  if (!load) {
    clear(main).append(el("p", {class: "error"}, `no page ${page}`));
    return;
  }
  const module = await load();
  if (mine !== generation) return;  // the user went elsewhere meanwhile
  clear(main);
  const view = el("section", {id: `page-${page}`});
  main.append(view);
  try {
    cleanup = (await module.render(view, params, {go: (p) => go(page, p)})) || null;
  } catch (error) {
    view.append(el("p", {class: "error"}, String(error.message || error)));
  }
  if (mine === generation) {
    // ms since navigation, and since this view was asked for (benchmarks/console.py)
    document.body.dataset.readyAt = String(performance.now());
    document.body.dataset.ready = page;
  }
}

function showTokenState() {
  document.getElementById("token-state").textContent = token() ? "token set" : "no token";
}

function setUp() {
  const form = document.getElementById("token-form");
  const input = document.getElementById("token");
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    setToken(input.value.trim());
    input.value = "";  // never left on screen
    showTokenState();
    route();  // what needed a token (public_reads: false) shows now
  });
  document.getElementById("token-forget").addEventListener("click", () => {
    setToken("");
    showTokenState();
  });
  showTokenState();
  window.addEventListener("hashchange", route);
  route();
}

setUp();
