// The feed reader page. Configuration comes from the query string:
//   index.html?orb=http://127.0.0.1:7070&token=<public token>&fn=sha256:…[&ns=reader]
// The token needs: the namespace (rw), the function, `schedules` 1@30s, and
// the feed hosts as outbound hosts (see examples/feed-reader/README.md).
const q = new URLSearchParams(location.search);
const ORB = q.get("orb") || location.origin;
const TOKEN = q.get("token") || localStorage.getItem("orb-token") || "";
const FN = q.get("fn") || "";
const NS = q.get("ns") || "reader";
const EVERY = q.get("every") || "30s";

const { Orb } = await import(`${ORB}/sdk/orb.js`);
const orb = new Orb(ORB, TOKEN);
const $ = (id) => document.getElementById(id);
const status = (text) => { $("status").textContent = text; };

async function subs() { return (await orb.get(NS, "subs")) || []; }

function renderList(el, items, render) {
  el.replaceChildren(...items.map((item) => {
    const li = document.createElement("li");
    render(li, item);
    return li;
  }));
}

async function showSubs() {
  renderList($("subs"), await subs(), (li, url) => { li.textContent = url; });
}

async function showPosts() {
  const pending = (await orb.get(NS, "pending")) || [];
  renderList($("posts"), pending, (li, p) => {
    const a = document.createElement("a");
    a.href = p.link;
    a.textContent = p.title;
    const feed = document.createElement("span");
    feed.className = "feed";
    feed.textContent = ` — ${p.feed}`;
    li.append(a, feed);
  });
}

// One schedule per token (its grant allows one, every 30 s at most): make it
// once; it fetches every subscribed feed and writes `pending`.
async function ensureSchedule() {
  const mine = (await orb.schedules()).filter((s) => s.export === "refresh" && s.namespace === NS);
  if (mine.length === 0) {
    await orb.schedule({ function: FN, export: "refresh", namespace: NS, write_to: "pending", every: EVERY });
  }
}

async function refreshNow() {
  await orb.invoke({ function: FN, export: "refresh", namespace: NS, write_to: "pending" });
  await showPosts();
}

$("terms-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const terms = $("terms").value.split(",").map((t) => t.trim()).filter(Boolean);
  try {
    await orb.put(NS, "terms", terms);
    status(`searching for: ${terms.join(", ")}`);
  } catch (e) { status(`error[${e.code}]: ${e.message}`); }
});

$("subscribe-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const url = $("feed-url").value.trim();
  if (!url) return;
  try {
    const list = await subs();
    if (!list.includes(url)) await orb.put(NS, "subs", [...list, url]);
    $("feed-url").value = "";
    await showSubs();
    await ensureSchedule();
    status("subscribed; fetching…");
    await refreshNow();
    status("subscribed");
  } catch (e) { status(`error[${e.code}]: ${e.message}`); }
});

$("clear").addEventListener("click", async () => {
  try {
    await orb.put(NS, "pending", []);
    await showPosts();
  } catch (e) { status(`error[${e.code}]: ${e.message}`); }
});

try {
  const terms = (await orb.get(NS, "terms")) || [];
  $("terms").value = terms.join(", ");
  await showSubs();
  await showPosts();
  status("ready");
  document.body.dataset.ready = "true";
} catch (e) {
  status(`error[${e.code}]: ${e.message}`);
}
setInterval(() => showPosts().catch(() => {}), 2000);
