// Tokens: who holds which API token, create one (its key is shown once), revoke one.
// Every call needs an admin token (the box at the top right; `watchkeeper token create
// --admin` makes the first). The list never carries a key: the API does not send one.
import {ApiError, del, get, post, token} from "../api.js";
import {append, clear, el, fmtAgo, fmtTime, table} from "../dom.js";

const SCOPES = [["read", "read"], ["write", "read, write"], ["admin", "read, write, admin"]];

export async function render(root) {
  const user = el("input", {id: "tok-user", placeholder: "user", autocomplete: "off", required: true});
  const scope = el("select", {id: "tok-scope"}, SCOPES.map(([v, label]) => el("option", {value: v}, label)));
  const outcome = el("span", {id: "tok-outcome"});
  const fresh = el("div", {id: "tok-new"});  // the new key, until dismissed or the page is left
  const list = el("div", {id: "tok-list"});

  async function refresh() {
    if (!token()) {  // every token route needs one: no request bound to fail
      clear(list).append(el("p", {class: "error"}, "enter an admin token first (top right)"));
      return;
    }
    let answer;
    try { answer = await get("/api/v1/tokens"); } catch (error) {
      clear(list).append(el("p", {class: "error"}, explain(error)));
      return;
    }
    clear(list).append(el("p", {class: "muted", id: "tok-count"}, `${answer.tokens.length} tokens`),
      table(["id", "user", "scopes", "created", "last used", ""], answer.tokens.map((t) => [
        el("td", {class: "pre"}, t.id), t.user, t.scopes.join(" "), fmtTime(t.created),
        t.last_used === null ? "never" : fmtAgo(t.last_used), revokeCell(t)]),
      (i) => ({"data-id": answer.tokens[i].id})));
  }

  // Revoking asks first, in the row: "revoke" becomes "revoke <user>'s token? yes / no".
  function revokeCell(t) {
    const cell = el("td", {class: "tok-revoke"});
    const ask = () => clear(cell).append(`revoke ${t.user}'s token ${t.id}? `,
      el("button", {type: "button", class: "tok-yes", onclick: () => revoke(t)}, "yes, revoke"), " ",
      el("button", {type: "button", class: "tok-no", onclick: () => reset()}, "no"));
    const reset = () => clear(cell).append(el("button", {type: "button", class: "tok-ask", onclick: ask}, "revoke"));
    reset();
    return cell;
  }

  async function revoke(t) {
    try {
      await del(`/api/v1/tokens/${encodeURIComponent(t.id)}`);
      outcome.textContent = `revoked ${t.user}'s token ${t.id}`;
    } catch (error) { outcome.textContent = `revoke: ${explain(error)}`; }
    await refresh();
  }

  async function create(e) {
    e.preventDefault();
    let made;
    try {
      made = await post("/api/v1/tokens", {user: user.value.trim(), scopes: [scope.value]});
    } catch (error) { outcome.textContent = `create: ${explain(error)}`; return; }
    user.value = "";
    outcome.textContent = "";
    const key = el("input", {id: "tok-key", type: "text", readonly: true, value: made.key, size: 44,
                             onfocus: (ev) => ev.target.select()});
    const copied = el("span", {class: "muted"});
    clear(fresh).append(el("div", {class: "card warn"},
      el("p", {}, el("strong", {}, `New ${made.scopes.join(", ")} token for ${made.user} (id ${made.id}). `),
        "Copy the key now: it will not be shown again."),
      el("div", {class: "toolbar"}, key,
        el("button", {type: "button", id: "tok-copy", onclick: () => copy(key, copied)}, "copy"),
        el("button", {type: "button", id: "tok-done", onclick: () => clear(fresh)}, "done"), copied)));
    key.focus();
    await refresh();
  }

  append(root, el("h2", {}, "Tokens"),
    el("p", {class: "muted"}, "API keys for Authorization: Token KEY. Managing them needs an admin token."),
    el("form", {class: "toolbar", id: "tok-form", onsubmit: create}, "new token for", user, "scopes", scope,
      el("button", {type: "submit", id: "tok-create"}, "create"), outcome),
    fresh, list);
  await refresh();
}

async function copy(input, said) {
  input.select();
  try {
    await navigator.clipboard.writeText(input.value);
    said.textContent = "copied";
  } catch { said.textContent = "selected: press Ctrl+C"; }
}

function explain(error) {
  if (error instanceof ApiError && error.status === 401) {
    return token() ? "this token is not valid (revoked?)" : "enter an admin token first (top right)";
  }
  if (error instanceof ApiError && error.status === 403) return "this token is not an admin token";
  return error.message;
}
