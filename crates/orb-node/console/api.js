// The console's only way to the node: the public /v1 API with the signed-in
// token as `Authorization: Bearer`. Errors keep the server's stable code.

const KEY = "orb.console.token";

export function currentToken() {
  return sessionStorage.getItem(KEY);
}

export function keepToken(token) {
  sessionStorage.setItem(KEY, token);
}

export function forgetToken() {
  sessionStorage.removeItem(KEY);
}

/** An error as the API reports it: `{"error": {"code", "message", "details"}}`. */
export class ApiError extends Error {
  constructor(status, code, message, details) {
    super(message);
    this.status = status;
    this.code = code;
    this.details = details || null;
  }
}

async function failure(res) {
  let body = null;
  try {
    body = await res.json();
  } catch {
    body = null;
  }
  const e = body && body.error;
  if (e && typeof e.code === "string") {
    return new ApiError(res.status, e.code, e.message || "", e.details);
  }
  return new ApiError(res.status, `http_${res.status}`, `the node answered ${res.status} ${res.statusText}`);
}

function headers(extra) {
  const h = new Headers(extra || {});
  const t = currentToken();
  if (t) h.set("authorization", `Bearer ${t}`);
  return h;
}

/**
 * Calls the API. `body` is sent as JSON unless it is a Blob/string with
 * `opts.contentType`. Answers the parsed JSON (null for 204) or throws ApiError.
 */
export async function api(method, path, body, opts = {}) {
  const init = { method, headers: headers(opts.headers), signal: opts.signal };
  if (body !== undefined) {
    if (opts.contentType) {
      init.headers.set("content-type", opts.contentType);
      init.body = body;
    } else {
      init.headers.set("content-type", "application/json");
      init.body = JSON.stringify(body);
    }
  }
  let res;
  try {
    res = await fetch(path, init);
  } catch (err) {
    if (err.name === "AbortError") throw err;
    throw new ApiError(0, "unreachable", `the node did not answer (${err.message}); is it running?`);
  }
  if (!res.ok) throw await failure(res);
  if (res.status === 204) return null;
  if (opts.raw) return res;
  const type = res.headers.get("content-type") || "";
  return type.includes("json") ? res.json() : res.text();
}

export const get = (path, opts) => api("GET", path, undefined, opts);
export const post = (path, body, opts) => api("POST", path, body === undefined ? {} : body, opts);
export const put = (path, body, opts) => api("PUT", path, body, opts);
export const del = (path, opts) => api("DELETE", path, undefined, opts);

/** `encodeURIComponent` for each segment of a key (keys may hold `/`). */
export function keyPath(key) {
  return key.split("/").map(encodeURIComponent).join("/");
}

/**
 * Reads Server-Sent Events from `path` with the token in the header
 * (EventSource cannot send one), calling `onEvent({event, data})` until
 * `signal` aborts; `onOpen()` once the node accepted the stream. Throws
 * ApiError when the stream is refused.
 */
export async function watch(path, onEvent, signal, onOpen) {
  const res = await api("GET", path, undefined, {
    raw: true,
    signal,
    headers: { accept: "text/event-stream" },
  });
  if (onOpen) onOpen();
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      let event = "message";
      const data = [];
      for (const line of block.split("\n")) {
        if (line.startsWith("event:")) event = line.slice(6).trim();
        else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
      }
      if (data.length) onEvent({ event, data: data.join("\n") });
    }
  }
}
