// Orb's browser client: a small ES module, no build step. Every node serves
// it at /sdk/orb.js:
//
//   const { Orb } = await import("http://127.0.0.1:7070/sdk/orb.js");
//   const orb = new Orb("http://127.0.0.1:7070", token);
//   const out = await orb.call("sha256:…", "greet", { name: "Ada" });           // POST
//   const out2 = await orb.call("sha256:…", "greet", { name: "Ada" }, { method: "GET" });
//
// The token travels in the Authorization header (never in the URL). Errors
// are thrown as OrbError with the server's stable `code`.

/** An error answered by Orb (`{"error": {"code", "message", "details"}}`). */
export class OrbError extends Error {
  constructor(status, code, message, details) {
    super(message);
    this.name = "OrbError";
    this.status = status;
    this.code = code;
    this.details = details;
  }
}

export class Orb {
  /**
   * @param {string} url   the node, e.g. "http://127.0.0.1:7070"
   * @param {string} token a public (or private) token
   */
  constructor(url, token) {
    this.url = url.replace(/\/+$/, "");
    this.token = token;
  }

  async #request(method, path, body) {
    const headers = { authorization: `Bearer ${this.token}` };
    const init = { method, headers };
    if (body !== undefined) {
      headers["content-type"] = "application/json";
      init.body = JSON.stringify(body);
    }
    let resp;
    try {
      resp = await fetch(this.url + path, init);
    } catch (e) {
      throw new OrbError(0, "unreachable", `cannot reach Orb at ${this.url}: ${e.message}`, {});
    }
    if (resp.status === 204) return undefined;
    const text = await resp.text();
    let json;
    try {
      json = text ? JSON.parse(text) : undefined;
    } catch {
      throw new OrbError(resp.status, "bad_response", `not JSON: ${text.slice(0, 200)}`, {});
    }
    if (!resp.ok) {
      const e = (json && json.error) || {};
      throw new OrbError(resp.status, e.code || "unknown", e.message || resp.statusText, e.details || {});
    }
    return json;
  }

  /**
   * Calls `exportName` of a function (a hash or an alias) and returns the
   * call's answer `{activation, function, result, duration_us, fuel}`.
   * GET sends the parameters in the query (typed by the export's
   * signature: strings stay strings, other types are JSON); POST as a JSON
   * object. `namespace` names the call's namespace.
   */
  async call(fn, exportName, params = {}, { method = "POST", namespace } = {}) {
    const path = `/v1/functions/${encodeURIComponent(fn)}/${encodeURIComponent(exportName)}`;
    if (method === "GET") {
      const q = new URLSearchParams();
      for (const [k, v] of Object.entries(params)) {
        q.set(k, typeof v === "string" ? v : JSON.stringify(v));
      }
      if (namespace) q.set("namespace", namespace);
      const qs = q.toString();
      return this.#request("GET", qs ? `${path}?${qs}` : path);
    }
    if (namespace) {
      return this.invoke({ function: fn, export: exportName, params, namespace });
    }
    return this.#request("POST", path, params);
  }

  /** `POST /v1/invoke` with a full body (`namespace`, `set`, `write_to`, `async`…). */
  invoke(body) {
    return this.#request("POST", "/v1/invoke", body);
  }

  /** A key's value in a namespace, or `undefined` when it does not exist. */
  async get(ns, key) {
    try {
      return await this.#request("GET", `/v1/namespaces/${encodeURIComponent(ns)}/keys/${encodeKey(key)}`);
    } catch (e) {
      if (e instanceof OrbError && e.code === "key_not_found") return undefined;
      throw e;
    }
  }

  /** Sets a key to a JSON value (durable when it returns). */
  put(ns, key, value) {
    return this.#request("PUT", `/v1/namespaces/${encodeURIComponent(ns)}/keys/${encodeKey(key)}`, value);
  }

  /** Deletes a key. */
  delete(ns, key) {
    return this.#request("DELETE", `/v1/namespaces/${encodeURIComponent(ns)}/keys/${encodeKey(key)}`);
  }

  /** Keys of a namespace, in order (`{keys, next}`). */
  keys(ns, { prefix = "", after, limit } = {}) {
    const q = new URLSearchParams({ prefix });
    if (after) q.set("after", after);
    if (limit) q.set("limit", String(limit));
    return this.#request("GET", `/v1/namespaces/${encodeURIComponent(ns)}/keys?${q}`);
  }

  /** Creates a schedule (`{function, export, every|cron, namespace, write_to, run_now…}`). */
  schedule(spec) {
    return this.#request("POST", "/v1/schedules", spec);
  }

  /** The token's account's schedules. */
  async schedules() {
    return (await this.#request("GET", "/v1/schedules")).schedules;
  }

  deleteSchedule(id) {
    return this.#request("DELETE", `/v1/schedules/${encodeURIComponent(id)}`);
  }

  /** An activation record; `wait` (e.g. "5s") long-polls until it is final. */
  activation(id, { wait } = {}) {
    const q = wait ? `?wait=${encodeURIComponent(wait)}` : "";
    return this.#request("GET", `/v1/activations/${encodeURIComponent(id)}${q}`);
  }
}

function encodeKey(key) {
  return key.split("/").map(encodeURIComponent).join("/");
}
