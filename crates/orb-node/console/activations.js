// Activations: a live tail (polling GET /v1/activations), one activation in
// full, and dead letters.

import { get } from "./api.js";
import { card, deleteButton, fill, guarded, h, link, listing, micros, pretty, shortHash, table, when } from "./ui.js";

const TAIL_MS = 1500;

function row(a, fresh) {
  return h("tr", { class: `activation ${a.status}${fresh ? " fresh" : ""}`, dataset: { id: a.id, status: a.status } },
    h("td", {}, when(a.start)),
    h("td", {}, h("span", { class: `status ${a.status}` }, a.status)),
    h("td", {}, a.function ? link(`fn=${a.function}`, h("code", { title: a.function }, shortHash(a.function))) : a.trigger ? `trigger ${a.trigger}` : "–"),
    h("td", {}, h("code", { class: "export" }, a.export || "")),
    h("td", { class: "num" }, micros(a.duration_us)),
    h("td", { class: "num" }, String(a.fuel)),
    h("td", {}, link(`act=${a.id}`, h("code", {}, a.id.slice(-12)))));
}

export async function renderList(root, params) {
  const fn = params.get("function");
  const tail = h("input", { type: "checkbox", id: "tail", checked: true });
  const slot = h("div");
  const body = h("div", { id: "activations-body" });
  root.append(card("Activations",
    h("div", { class: "row" },
      h("label", { class: "inline" }, tail, " live tail"),
      fn ? h("span", {}, "of ", h("code", {}, shortHash(fn)), " ", link("view=activations", "(all)")) : null),
    slot, body));
  const seen = new Set();
  let first = true;
  let timer = null;
  const load = async () => {
    const q = new URLSearchParams({ limit: "50" });
    if (fn) q.set("function", fn);
    const list = await guarded(slot, () => get(`/v1/activations?${q}`));
    if (list) {
      const rows = list.activations.map((a) => row(a, !first && !seen.has(a.id)));
      list.activations.forEach((a) => seen.add(a.id));
      first = false;
      fill(body, rows.length
        ? table(["start", "status", "function", "export", "duration", "fuel", "id"], rows, { id: "activations" })
        : h("p", { class: "muted", id: "no-activations" }, "No activations yet."));
    }
    if (tail.checked) timer = setTimeout(load, TAIL_MS);
  };
  tail.addEventListener("change", () => {
    clearTimeout(timer);
    if (tail.checked) load();
  });
  await load();
  return () => {
    tail.checked = false;
    clearTimeout(timer);
  };
}

export async function renderOne(root, params) {
  const id = params.get("act");
  const slot = h("div");
  root.append(slot);
  const a = await guarded(slot, () => get(`/v1/activations/${encodeURIComponent(id)}`));
  if (!a) return;
  const facts = [
    ["id", h("code", { id: "act-id" }, a.id)],
    ["status", h("span", { class: `status ${a.status}`, id: "act-status" }, a.status)],
    ["function", a.function ? link(`fn=${a.function}`, h("code", {}, a.function)) : "–"],
    ["export", h("code", {}, a.export || "–")],
    ["start", when(a.start)],
    ["duration", micros(a.duration_us)],
    ["fuel", String(a.fuel)],
  ];
  for (const k of ["alias", "schedule", "trigger", "rule", "kappa", "cause", "attempts"]) {
    if (a[k]) facts.push([k, k === "cause" ? link(`act=${a[k]}`, a[k]) : String(a[k])]);
  }
  if (a.caused && a.caused.length) facts.push(["caused", a.caused.map((c) => h("div", {}, link(`act=${c}`, c)))]);
  root.append(card("Activation",
    h("dl", { class: "facts" }, facts.map(([k, v]) => [h("dt", {}, k), h("dd", {}, v)])),
    a.error ? [h("h3", {}, "Error"), h("div", { class: "error" }, h("code", { class: "error-code" }, a.error.code), " ", a.error.message)] : null,
    a.result !== undefined ? [h("h3", {}, "Result"), h("pre", { id: "act-result" }, pretty(a.result))] : null,
    h("h3", {}, "Logs"),
    a.logs ? h("pre", { class: "logs", id: "act-logs" }, a.logs + (a.logs_truncated ? "\n[truncated]" : "")) : h("p", { class: "muted" }, "no output"),
    a.outbound && a.outbound.length ? [h("h3", {}, "Outbound requests"), h("pre", {}, pretty(a.outbound))] : null));
}

export async function renderDeadLetters(root) {
  const slot = h("div");
  const body = h("div");
  root.append(card("Dead letters", h("p", { class: "muted" }, "Asynchronous calls that failed after their retries."), slot, body));
  const load = listing({
    slot, body, path: "/v1/dead-letters", key: "dead_letters", empty: "None.", id: "dead-letters",
    headers: ["failed", "function", "export", "tries", "error", "activation", ""],
    row: (d, rowSlot, reload) => h("tr", { class: "dead-letter", dataset: { id: d.activation } },
      h("td", {}, when(d.failed_at)),
      h("td", {}, link(`fn=${d.function}`, h("code", { title: d.function }, shortHash(d.function)))),
      h("td", {}, h("code", {}, d.export)),
      h("td", { class: "num" }, String(d.attempts)),
      h("td", {}, d.error ? [h("code", { class: "error-code" }, d.error.code), " ", d.error.message] : ""),
      h("td", {}, link(`act=${d.activation}`, h("code", {}, d.activation.slice(-12)))),
      h("td", {}, deleteButton(rowSlot, `/v1/dead-letters/${encodeURIComponent(d.activation)}`, reload, "Forget"), rowSlot)),
  });
  await load();
}
