// Aliases: deploy = switch an alias to another hash; history and rollback.

import { del, get, post, put } from "./api.js";
import { card, fill, guarded, h, link, shortHash, table, when } from "./ui.js";

function functionSelect(functions, current, attrs) {
  return h("select", attrs, functions.map((f) =>
    h("option", { value: f.hash, selected: f.hash === current },
      `${shortHash(f.hash)} (${f.exports.map((e) => e.name).join(", ")})`)));
}

export async function render(root) {
  const slot = h("div");
  const body = h("div");
  const formSlot = h("div");
  const name = h("input", { type: "text", id: "new-alias", placeholder: "alias name", pattern: "[a-z0-9][a-z0-9._\\-]{0,63}", required: true });
  const target = h("span");
  root.append(card("Aliases",
    h("p", { class: "muted" }, "An alias is a name for a hash. Deploying is switching it: calls by the alias run the new hash at once, and rollback goes back."),
    slot, body),
  card("New alias",
    h("form", {
      class: "row", id: "alias-form", onsubmit: async (e) => {
        e.preventDefault();
        const sel = target.querySelector("select");
        const r = await guarded(formSlot, () => put(`/v1/aliases/${encodeURIComponent(name.value.trim())}`, { function: sel && sel.value }));
        if (r) {
          name.value = "";
          load();
        }
      },
    }, name, target, h("button", { type: "submit", class: "primary" }, "Create")),
    formSlot));

  let functions = [];
  const load = async () => {
    const [fns, list] = await Promise.all([
      get("/v1/functions").catch(() => ({ functions: [] })),
      guarded(slot, () => get("/v1/aliases")),
    ]);
    functions = fns.functions;
    fill(target, functionSelect(functions, null, { id: "new-alias-function", "aria-label": "function" }));
    if (!list) return;
    if (!list.aliases.length) {
      fill(body, h("p", { class: "muted", id: "no-aliases" }, "No aliases yet."));
      return;
    }
    fill(body, table(["alias", "points to", "history (newest first)", "updated", "deploy"], list.aliases.map((a) => aliasRow(a))));
  };

  const aliasRow = (a) => {
    const rowSlot = h("div");
    const to = functionSelect(functions, a.function, { class: "switch-to", "aria-label": `switch ${a.name} to` });
    const act = (work) => async () => {
      if (await guarded(rowSlot, work)) load();
    };
    return h("tr", { class: "alias", dataset: { name: a.name, function: a.function || "" } },
      h("td", {}, h("strong", {}, a.name), a.public ? h("span", { class: "tag" }, "public") : null,
        a.namespace ? h("span", { class: "tag" }, `ns ${a.namespace}`) : null),
      h("td", { class: "target" }, a.function ? link(`fn=${a.function}`, h("code", { title: a.function }, shortHash(a.function)))
        : `sequence of ${a.steps.length}`),
      h("td", {}, h("ol", { class: "history" }, [...a.previous].reverse().map((p) => h("li", {}, h("code", { title: p }, shortHash(p)))))),
      h("td", {}, when(a.updated_at)),
      h("td", {},
        h("div", { class: "row" }, to,
          h("button", { type: "button", class: "switch primary", onclick: act(() => put(`/v1/aliases/${encodeURIComponent(a.name)}`, { function: to.value })) }, "Switch"),
          h("button", { type: "button", class: "rollback", disabled: !a.previous.length, onclick: act(() => post(`/v1/aliases/${encodeURIComponent(a.name)}/rollback`)) }, "Roll back"),
          h("button", { type: "button", class: "delete", onclick: act(async () => (await del(`/v1/aliases/${encodeURIComponent(a.name)}`)) ?? true) }, "Delete")),
        rowSlot));
  };
  await load();
}
