// The console's shell: sign in and out, the navigation, and the hash router
// (`#view=…`, deep links like `#fn=sha256:…`). Each screen is a module whose
// `render(root, params)` may answer a function that stops its timers.

import { ApiError, currentToken, forgetToken, get, keepToken } from "./api.js";
import { errorBox, fill, h, route } from "./ui.js";
import * as functions from "./functions.js";
import * as activations from "./activations.js";
import * as namespaces from "./namespaces.js";
import * as aliases from "./aliases.js";
import * as events from "./events.js";
import * as tokens from "./tokens.js";

const screens = {
  functions: functions.renderList,
  fn: functions.renderOne,
  activations: activations.renderList,
  act: activations.renderOne,
  dead: activations.renderDeadLetters,
  namespaces: namespaces.renderList,
  ns: namespaces.renderOne,
  aliases: aliases.render,
  events: events.render,
  tokens: tokens.render,
  outbound: tokens.renderOutbound,
};

let stop = null;
let generation = 0;

function signedIn(yes) {
  document.getElementById("signin").hidden = yes;
  document.getElementById("nav").hidden = !yes;
  document.getElementById("sign-out").hidden = !yes;
  document.body.dataset.signedIn = yes ? "true" : "false";
}

function which(params) {
  if (params.has("fn")) return "fn";
  if (params.has("act")) return "act";
  if (params.has("ns")) return "ns";
  const v = params.get("view") || "functions";
  return screens[v] ? v : "functions";
}

async function show() {
  const mine = ++generation;
  if (stop) {
    stop();
    stop = null;
  }
  const view = document.getElementById("view");
  if (!currentToken()) {
    signedIn(false);
    fill(view);
    document.getElementById("token").focus();
    return;
  }
  signedIn(true);
  const params = route();
  const name = which(params);
  const nav = name === "fn" ? "functions" : name === "act" ? "activations" : name === "ns" ? "namespaces" : name;
  for (const a of document.querySelectorAll("#nav a")) {
    a.classList.toggle("active", a.dataset.view === nav);
  }
  document.body.dataset.view = name;
  // A fresh container per screen: a screen still loading when the user
  // moved on writes into a detached one, and its timers are stopped.
  const root = h("div", { class: "screen" });
  fill(view, root);
  try {
    const stopper = (await screens[name](root, params)) || null;
    if (mine === generation) stop = stopper;
    else if (stopper) stopper();
  } catch (err) {
    const box = errorBox(err);
    if (box) root.append(box);
  }
}

async function signIn(event) {
  event.preventDefault();
  const slot = document.getElementById("signin-error");
  const token = document.getElementById("token").value.trim();
  fill(slot);
  if (!token) return;
  keepToken(token);
  try {
    // Any answer but 401 means the node knows the token; what it may do is
    // for each screen to find out (403 where it may not).
    await get("/v1/functions");
  } catch (err) {
    if (!(err instanceof ApiError) || err.status === 401 || err.status === 0) {
      forgetToken();
      fill(slot, errorBox(err));
      return;
    }
  }
  document.getElementById("token").value = "";
  if (location.hash.length > 1) show();
  else location.hash = "view=functions"; // hashchange shows it
}

function signOut() {
  forgetToken();
  location.hash = "";
  show();
}

document.getElementById("signin-form").addEventListener("submit", signIn);
document.getElementById("sign-out").addEventListener("click", signOut);
window.addEventListener("hashchange", show);
document.addEventListener("orb:signed-out", signOut);
show();
