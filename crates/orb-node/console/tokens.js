// Tokens (mint a public token, shown once; revoke), and the account's
// outbound hosts and secrets.

import { get, post, put } from "./api.js";
import { card, deleteButton, field, fill, guarded, h, listing, shortHash, when } from "./ui.js";

const list = (text) => text.split(/[\s,]+/).map((s) => s.trim()).filter(Boolean);

/** `app1:rw, feeds:r` → `{"app1": "rw", "feeds": "r"}`. */
function namespaces(text) {
  const out = {};
  for (const item of list(text)) {
    const [name, mode] = item.split(":");
    out[name] = mode || "rw";
  }
  return out;
}

export async function render(root) {
  const formSlot = h("div");
  const out = h("div", { id: "minted", "aria-live": "polite" });
  const fnSlot = h("div", { class: "checks", id: "mint-functions" });
  const f = {
    namespaces: h("input", { type: "text", id: "mint-namespaces", placeholder: "app1:rw, feeds:r" }),
    rate: h("input", { type: "text", id: "mint-rate", placeholder: "5/60s (none: unlimited)" }),
    schedules: h("input", { type: "text", id: "mint-schedules", placeholder: "1@30s (none: may not schedule)" }),
    outbound: h("input", { type: "text", id: "mint-outbound", placeholder: "api.example.com, *.example.org" }),
    triggers: h("input", { type: "text", id: "mint-triggers", placeholder: "trigger names" }),
    expires: h("input", { type: "text", id: "mint-expires", placeholder: "30d, 12h (none: no expiry)" }),
  };
  const upload = h("input", { type: "checkbox", id: "mint-upload" });
  const allFunctions = h("input", { type: "checkbox", id: "mint-all-functions", checked: true });
  const revokeText = h("textarea", { id: "revoke-token", rows: 3, spellcheck: "false", placeholder: "the token to revoke (and everything derived from it)" });
  const revokeSlot = h("div", { id: "revoked", "aria-live": "polite" });

  const fns = await get("/v1/functions").catch(() => ({ functions: [] }));
  fill(fnSlot, fns.functions.map((fn) =>
    h("label", { class: "inline" },
      h("input", { type: "checkbox", class: "mint-function", value: fn.hash }),
      " ", h("code", { title: fn.hash }, shortHash(fn.hash)), " ",
      h("span", { class: "muted" }, fn.exports.map((e) => e.name).join(", ")))));
  const sync = () => {
    fnSlot.classList.toggle("disabled", allFunctions.checked);
    for (const c of fnSlot.querySelectorAll("input")) c.disabled = allFunctions.checked;
  };
  allFunctions.addEventListener("change", sync);
  sync();

  const revoke = (token) => guarded(revokeSlot, async () => {
    const r = await post("/v1/tokens/revoke", { token });
    fill(revokeSlot, h("span", { class: "ok" }, `revoked: ${r.revoked.join(", ")}`));
    return r;
  });

  const mint = async (e) => {
    e.preventDefault();
    const req = { namespaces: namespaces(f.namespaces.value), upload: upload.checked };
    if (!allFunctions.checked) req.functions = [...fnSlot.querySelectorAll("input:checked")].map((c) => c.value);
    if (f.rate.value.trim()) req.rate = f.rate.value.trim();
    if (f.schedules.value.trim()) req.schedules = f.schedules.value.trim();
    if (f.outbound.value.trim()) req.outbound_hosts = list(f.outbound.value);
    if (f.triggers.value.trim()) req.triggers = list(f.triggers.value);
    if (f.expires.value.trim()) req.expires = f.expires.value.trim();
    const r = await guarded(formSlot, () => post("/v1/tokens", req));
    if (!r) return;
    const text = h("textarea", { id: "minted-token", rows: 4, readonly: true, spellcheck: "false" }, r.token);
    fill(out, h("div", { class: "notice" },
      h("p", {}, h("strong", {}, "Copy this token now: "), "it is shown once and not stored by the node."),
      text,
      h("dl", { class: "facts" },
        h("dt", {}, "revocation id"), h("dd", {}, h("code", { id: "minted-revocation" }, r.revocation_id)),
        h("dt", {}, "expires"), h("dd", {}, r.expires_at ? when(r.expires_at) : "never"),
        h("dt", {}, "grant"), h("dd", {}, h("code", {}, JSON.stringify(req)))),
      h("div", { class: "row" },
        h("button", { type: "button", onclick: () => navigator.clipboard?.writeText(r.token) }, "Copy"),
        h("button", { type: "button", id: "revoke-minted", onclick: () => revoke(r.token) }, "Revoke it"))));
  };

  root.append(
    card("Mint a public token",
      h("p", { class: "muted" }, "A public token carries narrower rights than the private token that mints it: the namespaces and functions listed here, at the rate given, until it expires. Whitelists still apply to it."),
      h("form", { class: "form-grid", id: "mint-form", onsubmit: mint },
        field("namespaces (name:mode)", f.namespaces, "modes: r, w, rw"),
        h("div", { class: "field wide" },
          h("label", { class: "inline" }, allFunctions, " every function of the account"),
          fnSlot),
        h("label", { class: "inline" }, upload, " may upload code"),
        field("rate", f.rate), field("schedules", f.schedules), field("outbound hosts", f.outbound),
        field("triggers", f.triggers), field("expires", f.expires),
        h("div", { class: "row" }, h("button", { type: "submit", class: "primary", id: "mint" }, "Mint"))),
      formSlot, out),
    card("Revoke a token",
      h("p", { class: "muted" }, "Revokes the token and everything derived from it (attenuated copies; the public tokens a private token minted). The node keeps no list of minted tokens: paste the token."),
      h("form", { onsubmit: (e) => { e.preventDefault(); if (revokeText.value.trim()) revoke(revokeText.value.trim()); } },
        revokeText, h("div", { class: "row" }, h("button", { type: "submit", id: "revoke" }, "Revoke"))),
      revokeSlot));
}

export async function renderOutbound(root) {
  const hostsSlot = h("div");
  const hosts = h("textarea", { id: "outbound-hosts", rows: 4, spellcheck: "false", placeholder: "one host pattern a line: api.example.com, *.example.org:8443" });
  const secretsSlot = h("div");
  const secretsBody = h("div");
  const formSlot = h("div");
  const s = {
    name: h("input", { type: "text", id: "secret-name", required: true }),
    value: h("input", { type: "password", id: "secret-value", required: true, autocomplete: "off" }),
    hosts: h("input", { type: "text", id: "secret-hosts", required: true, placeholder: "api.example.com" }),
    header: h("input", { type: "text", id: "secret-header", required: true, placeholder: "authorization" }),
    format: h("input", { type: "text", id: "secret-format", placeholder: "Bearer {}" }),
  };
  const policy = await guarded(hostsSlot, () => get("/v1/outbound"));
  if (policy) hosts.value = policy.hosts.join("\n");
  const loadSecrets = listing({
    slot: secretsSlot, body: secretsBody, path: "/v1/secrets", key: "secrets", empty: "No secrets.",
    headers: ["secret", "hosts", "header", "created", ""],
    row: (x, rowSlot, reload) => h("tr", { class: "secret", dataset: { name: x.name } },
      h("td", {}, h("strong", {}, x.name)), h("td", {}, x.hosts.join(", ")),
      h("td", {}, h("code", {}, `${x.header}: ${x.format}`)), h("td", {}, when(x.created_at)),
      h("td", {}, deleteButton(rowSlot, `/v1/secrets/${encodeURIComponent(x.name)}`, reload), rowSlot)),
  });
  await loadSecrets();
  root.append(
    card("Outbound hosts",
      h("p", { class: "muted" }, "Hosts the account's functions may reach over HTTP when called with its private token (a public token carries its own list)."),
      hostsSlot, hosts,
      h("div", { class: "row" }, h("button", {
        type: "button", class: "primary", id: "save-hosts", onclick: async () => {
          const r = await guarded(hostsSlot, () => put("/v1/outbound", { hosts: list(hosts.value) }));
          if (r) fill(hostsSlot, h("span", { class: "ok" }, `saved: ${r.hosts.length} hosts`));
        },
      }, "Save"))),
    card("Secrets",
      h("p", { class: "muted" }, "Injected as a header into outgoing requests to their hosts; never shown again, never seen by functions."),
      secretsSlot, secretsBody,
      h("details", {}, h("summary", {}, "New secret"),
        h("form", {
          class: "form-grid", onsubmit: async (e) => {
            e.preventDefault();
            const body = { value: s.value.value, hosts: list(s.hosts.value), header: s.header.value.trim() };
            if (s.format.value.trim()) body.format = s.format.value.trim();
            if (await guarded(formSlot, () => put(`/v1/secrets/${encodeURIComponent(s.name.value.trim())}`, body))) {
              s.value.value = "";
              loadSecrets();
            }
          },
        }, field("name", s.name), field("value", s.value), field("hosts", s.hosts), field("header", s.header), field("format", s.format),
        h("div", { class: "row" }, h("button", { type: "submit", class: "primary" }, "Store secret"))),
        formSlot)));
}
