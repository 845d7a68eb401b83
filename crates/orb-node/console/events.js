// Schedules, triggers and rules: list, create, delete (as the token may).

import { post, put } from "./api.js";
import { card, deleteButton, field, guarded, h, link, listing, pretty, shortHash, when } from "./ui.js";

function jsonOr(text, fallback, what) {
  if (!text.trim()) return fallback;
  try {
    return JSON.parse(text);
  } catch (err) {
    throw { code: "invalid_input", message: `${what} must be JSON (${err.message})` };
  }
}

/** Optional text fields: only those filled go into the body. */
function filled(pairs) {
  const out = {};
  for (const [k, el] of pairs) if (el.value.trim()) out[k] = el.value.trim();
  return out;
}

export async function render(root) {
  root.append(await schedules(), await triggers(), await rules());
}

async function schedules() {
  const slot = h("div");
  const body = h("div");
  const formSlot = h("div");
  const f = {
    function: h("input", { type: "text", id: "sched-function", placeholder: "sha256:… or alias", required: true }),
    export: h("input", { type: "text", id: "sched-export", placeholder: "export", required: true }),
    every: h("input", { type: "text", id: "sched-every", placeholder: "30s, 5m, 1h" }),
    cron: h("input", { type: "text", id: "sched-cron", placeholder: "*/5 * * * *" }),
    namespace: h("input", { type: "text", id: "sched-namespace", placeholder: "optional" }),
    write_to: h("input", { type: "text", id: "sched-write-to", placeholder: "key for the result (needs a namespace)" }),
  };
  const params = h("textarea", { id: "sched-params", rows: 2, placeholder: "{}", spellcheck: "false" });
  const load = listing({
    slot, body, path: "/v1/schedules", key: "schedules", empty: "No schedules.",
    headers: ["id", "call", "cadence", "state", ""],
    row: (s, rowSlot, reload) => h("tr", { class: "schedule", dataset: { id: s.id } },
      h("td", {}, h("code", {}, s.id)),
      h("td", {}, s.trigger ? `trigger ${s.trigger}` : [h("code", { title: s.function }, shortHash(s.function)), " ", h("code", {}, s.export)]),
      h("td", {}, s.every ? `every ${s.every}` : `cron ${s.cron}${s.timezone ? ` (${s.timezone})` : ""}`),
      h("td", {}, h("pre", { class: "compact" }, pretty(s.state))),
      h("td", {}, deleteButton(rowSlot, `/v1/schedules/${encodeURIComponent(s.id)}`, reload), rowSlot)),
  });
  await load();
  return card("Schedules", slot, body,
    h("details", {}, h("summary", {}, "New schedule"),
      h("form", {
        class: "form-grid", onsubmit: async (e) => {
          e.preventDefault();
          const r = await guarded(formSlot, async () => {
            const req = filled(Object.entries(f));
            req.params = jsonOr(params.value, {}, "params");
            return post("/v1/schedules", req);
          });
          if (r) load();
        },
      },
      field("function", f.function), field("export", f.export), field("every", f.every), field("or cron", f.cron),
      field("namespace", f.namespace), field("write_to", f.write_to), field("params (JSON)", params),
      h("div", { class: "row" }, h("button", { type: "submit", class: "primary" }, "Create schedule"))),
      formSlot));
}

async function triggers() {
  const slot = h("div");
  const body = h("div");
  const formSlot = h("div");
  const name = h("input", { type: "text", id: "trigger-name", required: true, pattern: "[a-z0-9][a-z0-9._\\-]{0,63}" });
  const namespace = h("input", { type: "text", id: "trigger-namespace", placeholder: "fire on changes here (optional)" });
  const prefix = h("input", { type: "text", id: "trigger-prefix", placeholder: "to keys starting with (optional)" });
  const description = h("input", { type: "text", id: "trigger-description" });
  const load = listing({
    slot, body, path: "/v1/triggers", key: "triggers", empty: "No triggers.",
    headers: ["trigger", "source", "created", ""],
    row: (t, rowSlot, reload) => h("tr", { class: "trigger", dataset: { name: t.name } },
      h("td", {}, h("strong", {}, t.name), t.description ? h("div", { class: "muted" }, t.description) : null),
      h("td", {}, t.namespace ? `changes in ${t.namespace}${t.prefix ? ` under ${t.prefix}` : ""}` : "POST /v1/triggers/{name}, schedules"),
      h("td", {}, when(t.created_at)),
      h("td", {},
        h("button", { type: "button", onclick: async () => { await guarded(rowSlot, () => post(`/v1/triggers/${encodeURIComponent(t.name)}`)); reload(); } }, "Fire"),
        deleteButton(rowSlot, `/v1/triggers/${encodeURIComponent(t.name)}`, reload),
        rowSlot)),
  });
  await load();
  return card("Triggers", slot, body,
    h("details", {}, h("summary", {}, "New trigger"),
      h("form", {
        class: "form-grid", onsubmit: async (e) => {
          e.preventDefault();
          const req = filled([["namespace", namespace], ["prefix", prefix], ["description", description]]);
          if (await guarded(formSlot, () => put(`/v1/triggers/${encodeURIComponent(name.value.trim())}`, req))) load();
        },
      }, field("name", name), field("namespace", namespace), field("prefix", prefix), field("description", description),
      h("div", { class: "row" }, h("button", { type: "submit", class: "primary" }, "Create trigger"))),
      formSlot));
}

async function rules() {
  const slot = h("div");
  const body = h("div");
  const formSlot = h("div");
  const f = {
    trigger: h("input", { type: "text", id: "rule-trigger", required: true }),
    function: h("input", { type: "text", id: "rule-function", placeholder: "sha256:… or alias", required: true }),
    export: h("input", { type: "text", id: "rule-export", required: true }),
    namespace: h("input", { type: "text", id: "rule-namespace", placeholder: "optional" }),
    write_to: h("input", { type: "text", id: "rule-write-to", placeholder: "optional" }),
  };
  const name = h("input", { type: "text", id: "rule-name", required: true, pattern: "[a-z0-9][a-z0-9._\\-]{0,63}" });
  const params = h("textarea", { id: "rule-params", rows: 2, placeholder: "{}", spellcheck: "false" });
  const load = listing({
    slot, body, path: "/v1/rules", key: "rules", empty: "No rules.",
    headers: ["rule", "trigger", "calls", "created", ""],
    row: (r, rowSlot, reload) => h("tr", { class: "rule", dataset: { name: r.name } },
      h("td", {}, h("strong", {}, r.name)),
      h("td", {}, r.trigger),
      h("td", {}, link(`fn=${r.function}`, h("code", { title: r.function }, shortHash(r.function))), " ", h("code", {}, r.export)),
      h("td", {}, when(r.created_at)),
      h("td", {}, deleteButton(rowSlot, `/v1/rules/${encodeURIComponent(r.name)}`, reload), rowSlot)),
  });
  await load();
  return card("Rules", slot, body,
    h("details", {}, h("summary", {}, "New rule"),
      h("form", {
        class: "form-grid", onsubmit: async (e) => {
          e.preventDefault();
          const r = await guarded(formSlot, () => {
            const req = filled(Object.entries(f));
            req.params = jsonOr(params.value, {}, "params");
            return put(`/v1/rules/${encodeURIComponent(name.value.trim())}`, req);
          });
          if (r) load();
        },
      }, field("name", name), field("trigger", f.trigger), field("function", f.function), field("export", f.export),
      field("namespace", f.namespace), field("write_to", f.write_to), field("params (JSON)", params),
      h("div", { class: "row" }, h("button", { type: "submit", class: "primary" }, "Create rule"))),
      formSlot));
}
