// Small DOM helpers: no framework, no innerHTML with data (text only).

import { del, get } from "./api.js";

/** `h("div", {class: "x", onclick: f}, child…)`: an element. */
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on") && typeof v === "function") el.addEventListener(k.slice(2), v);
    else if (k === "class") el.className = v;
    else if (k === "dataset") Object.assign(el.dataset, v);
    else if (k === "value") el.value = v;
    else if (k === "checked") el.checked = !!v;
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

/** Replaces the children of `el`. */
export function fill(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

/** An error where it happened: the server's code and message. */
export function errorBox(err) {
  if (err && err.name === "AbortError") return null;
  const code = err && err.code ? err.code : "console_error";
  const box = h("div", { class: "error", role: "alert", dataset: { code } },
    h("code", { class: "error-code" }, code),
    " ",
    h("span", { class: "error-message" }, err && err.message ? err.message : String(err)));
  if (err && err.status) box.append(h("span", { class: "muted" }, ` (HTTP ${err.status})`));
  return box;
}

/** Runs `work`; on failure shows the error in `slot` (and clears it first). */
export async function guarded(slot, work) {
  fill(slot);
  try {
    return await work();
  } catch (err) {
    const box = errorBox(err);
    if (box) fill(slot, box);
    return undefined;
  }
}

export function card(title, ...children) {
  return h("section", { class: "card" }, title ? h("h2", {}, title) : null, ...children);
}

export function table(headers, rows, opts = {}) {
  return h("table", { class: opts.class || "list", id: opts.id },
    h("thead", {}, h("tr", {}, headers.map((x) => h("th", {}, x)))),
    h("tbody", {}, rows));
}

export function field(label, input, hint) {
  const id = input.id || `f-${Math.random().toString(36).slice(2)}`;
  input.id = id;
  return h("div", { class: "field" }, h("label", { for: id }, label), input,
    hint ? h("small", { class: "muted" }, hint) : null);
}

export function shortHash(id) {
  return id && id.startsWith("sha256:") ? `${id.slice(0, 15)}…` : id || "";
}

export function bytes(n) {
  if (n < 1024) return `${n} B`;
  if (n < 1 << 20) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / (1 << 20)).toFixed(1)} MiB`;
}

export function micros(us) {
  if (us === null || us === undefined) return "–";
  if (us < 1000) return `${us} µs`;
  if (us < 1e6) return `${(us / 1000).toFixed(1)} ms`;
  return `${(us / 1e6).toFixed(2)} s`;
}

export function when(rfc3339) {
  if (!rfc3339) return "";
  const d = new Date(rfc3339);
  return Number.isNaN(d.getTime()) ? rfc3339 : d.toLocaleString();
}

export function pretty(value) {
  return JSON.stringify(value, null, 2);
}

export function link(hash, text) {
  return h("a", { href: `#${hash}` }, text);
}

/** The hash's parameters: `#fn=sha256:…&export=add`. */
export function route() {
  return new URLSearchParams(location.hash.slice(1));
}

export function go(params) {
  location.hash = new URLSearchParams(params).toString();
}

/**
 * A list screen's loader: GET `path`, its array `key` as table rows
 * (`row(item, rowSlot, reload)`, errors of a row's actions in its rowSlot),
 * or `empty` when there are none; a refused GET shows in `slot`.
 */
export function listing({ slot, body, path, key, headers, row, empty, id }) {
  const reload = async () => {
    const answer = await guarded(slot, () => get(path));
    if (!answer) return;
    const items = answer[key] || [];
    fill(body, items.length
      ? table(headers, items.map((item) => row(item, h("div", { class: "row-slot" }), reload)), { id })
      : h("p", { class: "muted" }, empty));
  };
  return reload;
}

/** A button that DELETEs `path`, then `reload`s (errors in `rowSlot`). */
export function deleteButton(rowSlot, path, reload, label = "Delete") {
  return h("button", {
    type: "button",
    class: "delete",
    onclick: async () => {
      if (await guarded(rowSlot, () => del(path).then(() => true))) reload();
    },
  }, label);
}
