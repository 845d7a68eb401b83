// Functions: the list, one function (exports with their WIT signatures),
// its test panel and its usage.

import { get, post } from "./api.js";
import { FormError, paramForm, savedInputs } from "./form.js";
import { bytes, card, errorBox, fill, guarded, h, link, micros, pretty, shortHash, table, when } from "./ui.js";
import { usageCard } from "./usage.js";

export function signature(e) {
  const params = e.params.map((p) => `${p.name}: ${p.type}`).join(", ");
  return `${e.name}(${params})${e.result ? ` -> ${e.result}` : ""}`;
}

export async function renderList(root) {
  const slot = h("div");
  const body = h("div");
  root.append(card("Functions", slot, body));
  const list = await guarded(slot, () => get("/v1/functions"));
  if (!list) return;
  // Aliases are a bonus here: a token that may not list them still sees its functions.
  const aliases = await get("/v1/aliases").catch(() => ({ aliases: [] }));
  const names = {};
  for (const a of aliases.aliases || []) if (a.function) (names[a.function] ||= []).push(a.name);
  if (!list.functions.length) {
    fill(body, h("p", { class: "muted", id: "no-functions" },
      "No functions this token may see. Upload one with `orb deploy FILE` (or POST /v1/functions)."));
    return;
  }
  const rows = list.functions.map((f) =>
    h("tr", { class: "function", dataset: { hash: f.hash } },
      h("td", {}, link(`fn=${f.hash}`, h("code", { title: f.hash }, shortHash(f.hash)))),
      h("td", {}, (names[f.hash] || []).join(", ")),
      h("td", { class: "num" }, bytes(f.size)),
      h("td", {}, h("ul", { class: "exports" }, f.exports.map((e) => h("li", {}, h("code", {}, signature(e)))))),
      h("td", {}, when(f.created_at))));
  fill(body, table(["id", "aliases", "size", "exports", "uploaded"], rows, { id: "functions" }));
}

export async function renderOne(root, params) {
  const id = params.get("fn");
  const slot = h("div");
  root.append(slot);
  const f = await guarded(slot, () => get(`/v1/functions/${encodeURIComponent(id)}`));
  if (!f) return;
  const chosen = f.exports.find((e) => e.name === params.get("export")) || f.exports[0];
  const exportsList = h("ul", { class: "exports", id: "exports" }, f.exports.map((e) =>
    h("li", { class: e === chosen ? "chosen" : "", dataset: { export: e.name } },
      link(`fn=${f.hash}&export=${encodeURIComponent(e.name)}`, h("code", {}, signature(e))))));
  root.append(card("Function",
    h("dl", { class: "facts" },
      h("dt", {}, "id"), h("dd", {}, h("code", { id: "fn-hash" }, f.hash)),
      h("dt", {}, "size"), h("dd", {}, `${bytes(f.size)} (${f.size} bytes)`),
      h("dt", {}, "uploaded"), h("dd", {}, when(f.created_at)),
      h("dt", {}, "activations"), h("dd", {}, link(`view=activations&function=${f.hash}`, "this function's, live"))),
    h("h3", {}, "Exports"), exportsList));
  const grid = h("div", { class: "grid" });
  root.append(grid);
  if (chosen) grid.append(testPanel(f, chosen));
  const usage = usageCard(f.hash);
  grid.append(usage.el);
  // Ctrl-Enter runs the test wherever the focus is on this screen.
  const keys = (ev) => {
    if (ev.key === "Enter" && (ev.ctrlKey || ev.metaKey) && !ev.defaultPrevented) {
      const form = document.getElementById("test-form");
      if (form) {
        ev.preventDefault();
        form.requestSubmit();
      }
    }
  };
  document.addEventListener("keydown", keys);
  return () => {
    usage.stop();
    document.removeEventListener("keydown", keys);
  };
}

function testPanel(f, e) {
  const form = paramForm(e.params);
  const saved = savedInputs(f.hash, e.name);
  const out = h("div", { id: "result", "aria-live": "polite" });
  const namespace = h("input", { type: "text", id: "call-namespace", placeholder: "none", pattern: "[a-z0-9][a-z0-9._\\-]{0,63}" });
  const globals = h("textarea", { id: "call-globals", rows: 2, placeholder: "{}", spellcheck: "false" });
  const pick = h("select", { id: "saved-inputs", "aria-label": "Saved inputs" });
  const saveName = h("input", { type: "text", id: "save-name", placeholder: "name these inputs" });

  const refreshSaved = () => {
    const all = saved.all();
    fill(pick, h("option", { value: "" }, Object.keys(all).length ? "saved inputs…" : "no saved inputs"),
      Object.keys(all).map((n) => h("option", { value: n }, n)));
  };
  refreshSaved();
  pick.addEventListener("change", () => {
    const v = saved.all()[pick.value];
    if (v) form.write(v);
  });

  const run = async () => {
    fill(out, h("p", { class: "muted" }, "running…"));
    let request;
    try {
      request = { function: f.hash, export: e.name, params: form.read() };
      if (namespace.value.trim()) request.namespace = namespace.value.trim();
      if (globals.value.trim()) request.globals = JSON.parse(globals.value);
    } catch (err) {
      fill(out, errorBox(err instanceof FormError ? err : { code: "invalid_input", message: `globals: ${err.message}` }));
      return;
    }
    try {
      const r = await post("/v1/invoke", request);
      fill(out,
        h("dl", { class: "facts" },
          h("dt", {}, "result"), h("dd", {}, h("pre", { id: "result-value" }, pretty(r.result))),
          h("dt", {}, "duration"), h("dd", { id: "result-duration" }, micros(r.duration_us)),
          h("dt", {}, "fuel"), h("dd", { id: "result-fuel" }, String(r.fuel)),
          h("dt", {}, "activation"), h("dd", {}, link(`act=${r.activation}`, h("code", { id: "result-activation" }, r.activation)))));
      showLogs(out, r.activation);
    } catch (err) {
      fill(out, errorBox(err));
      const act = err.details && err.details.activation;
      if (act) {
        out.append(h("p", {}, "activation ", link(`act=${act}`, h("code", {}, act))));
        showLogs(out, act);
      }
    }
  };

  const panel = h("section", { class: "card test-panel", id: "test-panel" },
    h("h2", {}, "Test ", h("code", {}, e.name)),
    h("p", { class: "signature" }, h("code", {}, signature(e))),
    h("form", {
      id: "test-form",
      onsubmit: (ev) => {
        ev.preventDefault();
        run();
      },
      onkeydown: (ev) => {
        if (ev.key === "Enter" && (ev.ctrlKey || ev.metaKey)) {
          ev.preventDefault();
          run();
        }
      },
    },
    form.el,
    h("details", {}, h("summary", {}, "namespace and globals"),
      h("div", { class: "field" }, h("label", { for: "call-namespace" }, "namespace"), namespace),
      h("div", { class: "field" }, h("label", { for: "call-globals" }, "globals (JSON object)"), globals)),
    h("div", { class: "row" },
      h("button", { type: "submit", class: "primary", id: "run", title: "Ctrl-Enter" }, "Run ", h("kbd", {}, "Ctrl-Enter")),
      pick,
      saveName,
      h("button", {
        type: "button", id: "save-inputs", onclick: () => {
          try {
            const name = saveName.value.trim() || new Date().toLocaleString();
            saved.save(name, form.read());
            saveName.value = "";
            refreshSaved();
            pick.value = name;
          } catch (err) {
            fill(out, errorBox(err));
          }
        },
      }, "Save inputs"),
      h("button", {
        type: "button", onclick: () => {
          if (pick.value) saved.remove(pick.value);
          refreshSaved();
        },
      }, "Forget"))),
    out);
  return panel;
}

async function showLogs(out, activation) {
  const slot = h("div");
  out.append(slot);
  const a = await guarded(slot, () => get(`/v1/activations/${encodeURIComponent(activation)}`));
  if (!a) return;
  slot.append(h("h3", {}, "Logs"),
    a.logs ? h("pre", { id: "result-logs", class: "logs" }, a.logs + (a.logs_truncated ? "\n[truncated]" : ""))
      : h("p", { class: "muted", id: "result-logs" }, "no output"));
}
