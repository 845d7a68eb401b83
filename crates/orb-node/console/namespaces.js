// Namespaces: the list, keys a page at a time, a value to read and edit,
// and a live watch (GET /v1/namespaces/{ns}/watch, Server-Sent Events).

import { api, del, get, keyPath, put, watch } from "./api.js";
import { bytes, card, errorBox, fill, go, guarded, h, link, pretty, table } from "./ui.js";

export async function renderList(root) {
  const slot = h("div");
  const body = h("div");
  const name = h("input", { type: "text", id: "open-ns", placeholder: "namespace name", pattern: "[a-z0-9][a-z0-9._\\-]{0,63}", required: true });
  root.append(card("Namespaces", slot, body,
    h("form", { class: "row", onsubmit: (e) => { e.preventDefault(); go({ ns: name.value.trim() }); } },
      name, h("button", { type: "submit" }, "Open"))));
  const list = await guarded(slot, () => get("/v1/namespaces"));
  if (!list) return;
  fill(body, list.namespaces.length
    ? table(["namespace", "keys", "size"], list.namespaces.map((n) =>
      h("tr", { class: "namespace", dataset: { name: n.name } },
        h("td", {}, link(`ns=${encodeURIComponent(n.name)}`, n.name)),
        h("td", { class: "num" }, String(n.keys)),
        h("td", { class: "num" }, bytes(n.bytes)))), { id: "namespaces" })
    : h("p", { class: "muted", id: "no-namespaces" }, "No namespaces with keys that this token may see. Open one by name to write its first key."));
}

/** The value of `key` as text for the editor, and whether it is JSON. */
async function readValue(ns, key) {
  const res = await api("GET", `/v1/namespaces/${encodeURIComponent(ns)}/keys/${keyPath(key)}`, undefined, {
    raw: true,
    headers: { accept: "application/json" },
  });
  const type = res.headers.get("content-type") || "";
  if (type.includes("json")) return { text: pretty(await res.json()), json: true, revision: res.headers.get("etag") };
  return { text: await res.text(), json: false, revision: res.headers.get("etag") };
}

export async function renderOne(root, params) {
  const ns = params.get("ns");
  const base = `/v1/namespaces/${encodeURIComponent(ns)}`;
  const prefix = h("input", { type: "text", id: "ns-prefix", placeholder: "prefix", value: params.get("prefix") || "" });
  const keysSlot = h("div");
  const keysBody = h("ul", { class: "keys", id: "keys" });
  const more = h("button", { type: "button", id: "more-keys", hidden: true }, "More keys");
  const editor = h("div", { id: "editor" });
  const events = h("ol", { class: "events", id: "ns-events", reversed: true });
  const watching = h("input", { type: "checkbox", id: "watch", checked: true });
  const watchSlot = h("div");
  const newKey = h("input", { type: "text", id: "new-key", placeholder: "new key" });
  let selected = params.get("key");
  let next = null;

  const keyItem = (k) => h("li", { dataset: { key: k }, class: k === selected ? "chosen" : "" },
    h("a", { href: `#${new URLSearchParams({ ns, key: k })}` }, k));

  const loadKeys = async (after) => {
    const q = new URLSearchParams({ limit: "100" });
    if (prefix.value) q.set("prefix", prefix.value);
    if (after) q.set("after", after);
    const page = await guarded(keysSlot, () => get(`${base}/keys?${q}`));
    if (!page) return;
    if (!after) fill(keysBody);
    keysBody.append(...page.keys.map(keyItem));
    next = page.next;
    more.hidden = !next;
    if (!keysBody.children.length) keysBody.append(h("li", { class: "muted", id: "no-keys" }, "no keys"));
  };
  more.addEventListener("click", () => loadKeys(next));
  prefix.addEventListener("change", () => loadKeys());

  const showKey = async (key) => {
    const slot = h("div");
    const value = h("textarea", { id: "key-value", rows: 10, spellcheck: "false" });
    const saved = h("div", { id: "key-saved", "aria-live": "polite" });
    fill(editor, h("h3", {}, "Key ", h("code", { id: "key-name" }, key)), slot, value,
      h("div", { class: "row" },
        h("button", {
          type: "button", class: "primary", id: "save-key", onclick: async () => {
            let body = value.value;
            let json = true;
            try {
              JSON.parse(body);
            } catch {
              json = false;
            }
            const r = await guarded(saved, () => put(`${base}/keys/${keyPath(key)}`, body,
              { contentType: json ? "application/json" : "application/octet-stream" }));
            if (r) fill(saved, h("span", { class: "ok" }, `saved, revision ${r.revision}${json ? "" : " (as bytes: not JSON)"}`));
          },
        }, "Save"),
        h("button", {
          type: "button", id: "delete-key", onclick: async () => {
            const r = await guarded(saved, () => del(`${base}/keys/${keyPath(key)}`));
            if (r !== undefined) fill(saved, h("span", { class: "ok" }, "deleted"));
          },
        }, "Delete")),
      saved);
    try {
      const v = await readValue(ns, key);
      value.value = v.text;
      value.dataset.json = String(v.json);
    } catch (err) {
      value.placeholder = "a new value (JSON, or any text stored as bytes)";
      // A key that is not there yet is a new key, not an error.
      if (err.status !== 404) fill(slot, errorBox(err));
    }
  };

  // Live: each committed change is listed; the open key and the key list follow.
  let controller = null;
  const startWatch = () => {
    controller = new AbortController();
    const q = prefix.value ? `?prefix=${encodeURIComponent(prefix.value)}` : "";
    fill(watchSlot, h("span", { class: "muted", id: "watch-state" }, "connecting…"));
    watch(`${base}/watch${q}`, ({ event, data }) => {
      let c;
      try {
        c = JSON.parse(data);
      } catch {
        return;
      }
      const shown = event === "lagged" ? `missed ${c.missed} changes`
        : event === "delete" ? `delete ${c.key}`
          : `set ${c.key} = ${c.value !== null && c.value !== undefined ? JSON.stringify(c.value) : `(${c.base64 ? "bytes" : "null"})`}`;
      events.prepend(h("li", { dataset: { event, key: c.key || "" } }, h("time", {}, new Date().toLocaleTimeString()), " ", shown));
      while (events.children.length > 50) events.lastChild.remove();
      if (c.key && c.key === selected && event === "set") {
        const area = document.getElementById("key-value");
        if (area && document.activeElement !== area) {
          area.value = c.value !== null && c.value !== undefined ? pretty(c.value) : atobText(c.base64);
        }
      }
      if (c.key && event === "set" && !keysBody.querySelector(`li[data-key="${CSS.escape(c.key)}"]`)
        && (!prefix.value || c.key.startsWith(prefix.value))) {
        document.getElementById("no-keys")?.remove();
        keysBody.append(keyItem(c.key));
      }
      if (c.key && event === "delete") keysBody.querySelector(`li[data-key="${CSS.escape(c.key)}"]`)?.remove();
    }, controller.signal, () => {
      fill(watchSlot, h("span", { class: "ok", id: "watch-state" }, "watching"));
    }).then(() => {
      fill(watchSlot, h("span", { class: "muted" }, "the watch ended"));
    }, (err) => {
      const box = errorBox(err);
      fill(watchSlot, box || h("span", { class: "muted" }, "not watching"));
    });
  };
  const stopWatch = () => {
    if (controller) controller.abort();
    controller = null;
  };
  watching.addEventListener("change", () => (watching.checked ? startWatch() : stopWatch()));

  root.append(h("div", { class: "grid" },
    card(`Namespace ${ns}`,
      h("div", { class: "row" }, prefix, h("button", { type: "button", onclick: () => loadKeys() }, "Filter")),
      keysSlot, keysBody, more,
      h("form", { class: "row", onsubmit: (e) => { e.preventDefault(); if (newKey.value) go({ ns, key: newKey.value }); } },
        newKey, h("button", { type: "submit" }, "New key"))),
    card("Value", editor),
    card("Live changes", h("label", { class: "inline" }, watching, " watch"), watchSlot, events)));
  await loadKeys();
  if (selected) await showKey(selected);
  else fill(editor, h("p", { class: "muted" }, "Choose a key."));
  startWatch();
  return stopWatch;
}

function atobText(b64) {
  try {
    return new TextDecoder().decode(Uint8Array.from(atob(b64 || ""), (c) => c.charCodeAt(0)));
  } catch {
    return "";
  }
}
