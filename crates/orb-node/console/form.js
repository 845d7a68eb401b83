// A typed form from an export's WIT parameters as the API lists them
// (`{"name", "type"}` with types like `s32`, `string`, `list<u8>`,
// `record { … }`): inputs for scalars, a select for enums, a JSON text
// area for everything else. Saved inputs live in localStorage per
// function and export.

import { h } from "./ui.js";

const INTS = new Set(["s8", "u8", "s16", "u16", "s32", "u32", "s64", "u64"]);
const FLOATS = new Set(["f32", "f64"]);

export function kindOf(type) {
  if (type === "bool") return "bool";
  if (INTS.has(type)) return "int";
  if (FLOATS.has(type)) return "float";
  if (type === "string" || type === "char") return "string";
  if (/^enum \{.*\}$/.test(type)) return "enum";
  return "json";
}

function enumCases(type) {
  return type.replace(/^enum \{\s*/, "").replace(/\s*\}$/, "").split(/\s*,\s*/).filter(Boolean);
}

/** A parameter the form could not read: which one and why. */
export class FormError extends Error {
  constructor(param, message) {
    super(message);
    this.code = "invalid_input";
    this.param = param;
  }
}

function input(p) {
  const kind = kindOf(p.type);
  const common = { "data-param": p.name, "data-kind": kind, name: p.name };
  switch (kind) {
    case "bool":
      return h("input", { ...common, type: "checkbox" });
    case "int":
      return h("input", { ...common, type: "number", step: "1", inputmode: "numeric", placeholder: p.type });
    case "float":
      return h("input", { ...common, type: "number", step: "any", placeholder: p.type });
    case "string":
      return h("input", { ...common, type: "text", placeholder: p.type, maxlength: p.type === "char" ? 2 : undefined });
    case "enum":
      return h("select", common, enumCases(p.type).map((c) => h("option", { value: c }, c)));
    default:
      return h("textarea", { ...common, rows: 3, spellcheck: "false", placeholder: `JSON: ${p.type}` });
  }
}

function readOne(el) {
  const name = el.dataset.param;
  const text = el.value;
  switch (el.dataset.kind) {
    case "bool":
      return el.checked;
    case "int": {
      if (text.trim() === "") throw new FormError(name, `\`${name}\` needs an integer`);
      const n = Number(text);
      if (!Number.isInteger(n)) throw new FormError(name, `\`${name}\` must be an integer, got \`${text}\``);
      // Past 2^53 the text goes as it is (the node reads integers from strings).
      return Number.isSafeInteger(n) ? n : text.trim();
    }
    case "float": {
      const n = Number(text);
      if (text.trim() === "" || Number.isNaN(n)) throw new FormError(name, `\`${name}\` needs a number`);
      return n;
    }
    case "string":
    case "enum":
      return text;
    default:
      try {
        return JSON.parse(text);
      } catch (err) {
        throw new FormError(name, `\`${name}\` must be JSON (${err.message})`);
      }
  }
}

function writeOne(el, value) {
  if (value === undefined) return;
  switch (el.dataset.kind) {
    case "bool":
      el.checked = !!value;
      break;
    case "json":
      el.value = JSON.stringify(value);
      break;
    default:
      el.value = String(value);
  }
}

/** The form for `params`: its element, `read()` → params object, `write(obj)`. */
export function paramForm(params) {
  const fields = params.map((p) =>
    h("div", { class: "field" },
      h("label", {}, h("span", {}, p.name), " ", h("code", { class: "type" }, p.type)),
      input(p)));
  const el = h("div", { class: "param-form" },
    fields.length ? fields : h("p", { class: "muted" }, "This export takes no parameters."));
  const inputs = () => el.querySelectorAll("[data-param]");
  return {
    el,
    read() {
      const out = {};
      for (const i of inputs()) out[i.dataset.param] = readOne(i);
      return out;
    },
    write(values) {
      for (const i of inputs()) writeOne(i, values[i.dataset.param]);
    },
  };
}

/** Saved test inputs of one export: `{name: params}` in localStorage. */
export function savedInputs(fn, exportName) {
  const key = `orb.console.tests.${fn}.${exportName}`;
  const load = () => {
    try {
      return JSON.parse(localStorage.getItem(key) || "{}");
    } catch {
      return {};
    }
  };
  return {
    all: load,
    save(name, params) {
      const all = load();
      all[name] = params;
      localStorage.setItem(key, JSON.stringify(all));
    },
    remove(name) {
      const all = load();
      delete all[name];
      localStorage.setItem(key, JSON.stringify(all));
    },
  };
}
