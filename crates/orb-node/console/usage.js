// A function's usage from GET /v1/activations/stats: calls, errors,
// p50/p99 duration and fuel, in buckets over a window; refreshed every 10 s.

import { get } from "./api.js";
import { fill, guarded, h, micros } from "./ui.js";

const SVG = "http://www.w3.org/2000/svg";
const WINDOWS = ["15m", "1h", "6h", "24h", "7d"];

function svg(tag, attrs) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  return el;
}

/** Bars of calls per bucket, errors in red on top, p99 as a line. */
function chart(stats) {
  const w = 600;
  const ht = 140;
  const n = stats.buckets.length || 1;
  const bw = w / n;
  const most = Math.max(1, ...stats.buckets.map((b) => b.calls));
  const slowest = Math.max(1, ...stats.buckets.map((b) => b.p99_us || 0));
  const root = svg("svg", { viewBox: `0 0 ${w} ${ht + 2}`, class: "chart", role: "img", "aria-label": "calls per interval" });
  const points = [];
  stats.buckets.forEach((b, i) => {
    const x = i * bw;
    const hc = (b.calls / most) * ht;
    const he = (b.errors / most) * ht;
    const bar = svg("rect", { x: x + 1, y: ht - hc, width: Math.max(1, bw - 2), height: hc, class: "bar" });
    const title = svg("title", {});
    title.textContent = `${new Date(b.start).toLocaleTimeString()}: ${b.calls} calls, ${b.errors} errors, p50 ${micros(b.p50_us)}, p99 ${micros(b.p99_us)}, fuel ${b.fuel}`;
    bar.append(title);
    root.append(bar);
    if (he > 0) root.append(svg("rect", { x: x + 1, y: ht - he, width: Math.max(1, bw - 2), height: he, class: "bar-error" }));
    if (b.p99_us !== null) points.push(`${x + bw / 2},${ht - (b.p99_us / slowest) * ht}`);
  });
  if (points.length > 1) root.append(svg("polyline", { points: points.join(" "), class: "p99" }));
  root.append(svg("line", { x1: 0, y1: ht + 1, x2: w, y2: ht + 1, class: "axis" }));
  return root;
}

export function usageCard(fn) {
  const windowSel = h("select", { id: "usage-window", "aria-label": "window" },
    WINDOWS.map((w) => h("option", { value: w, selected: w === "1h" }, `last ${w}`)));
  const slot = h("div");
  const body = h("div", { id: "usage-body" });
  const el = h("section", { class: "card", id: "usage" },
    h("h2", {}, "Usage ", windowSel), slot, body);

  const load = async () => {
    const w = windowSel.value;
    const s = await guarded(slot, () =>
      get(`/v1/activations/stats?function=${encodeURIComponent(fn)}&window=${w}&buckets=30`));
    if (!s) return;
    const t = s.total;
    const fact = (label, id, value) => h("div", { class: "stat" }, h("span", { class: "muted" }, label), h("strong", { id }, value));
    fill(body,
      h("div", { class: "stats" },
        fact("calls", "usage-calls", String(t.calls)),
        fact("errors", "usage-errors", String(t.errors)),
        fact("p50", "usage-p50", micros(t.p50_us)),
        fact("p99", "usage-p99", micros(t.p99_us)),
        fact("fuel", "usage-fuel", String(t.fuel))),
      chart(s),
      h("p", { class: "muted" },
        `${s.buckets.length} intervals of ${s.bucket_ms / 1000} s; bars: calls (errors in red), line: p99 duration.`,
        s.complete ? "" : " Older activations were not read (the node keeps a bounded number)."));
  };
  windowSel.addEventListener("change", load);
  load();
  const timer = setInterval(load, 10000);
  return { el, stop: () => clearInterval(timer) };
}
