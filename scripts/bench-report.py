#!/usr/bin/env python3
"""Renders scripts/bench's results: a Markdown section for BENCHMARKS.md
(between `<!-- bench:begin -->` and `<!-- bench:end -->`) and a bar chart,
docs/benchmarks.svg. Called by scripts/bench; standard library only."""

import argparse
import datetime
import os
import platform
import re
import statistics
import subprocess


def sh(cmd):
    try:
        return subprocess.run(cmd, shell=True, capture_output=True, text=True).stdout.strip()
    except OSError:
        return ""


def machine():
    model = sh("lscpu | sed -n 's/^Model name: *//p'") or platform.processor()
    cpus = os.cpu_count()
    mem = sh("free -g | awk '/Mem:/ {print $2}'")
    kernel = platform.release()
    distro = sh(". /etc/os-release && echo $PRETTY_NAME")
    rustc = sh("rustc --version")
    return f"{model}, {cpus} cores, {mem} GiB, {distro}, Linux {kernel}, {rustc}"


def load(path):
    r = {}
    for line in open(path):
        parts = line.rstrip("\n").split(" ", 1)
        if len(parts) == 2:
            r[parts[0]] = parts[1]
    return r


def num(r, k, default=None):
    v = r.get(k)
    if v is None:
        return default
    try:
        return float(v)
    except ValueError:
        return default


def dur_us(text):
    """wrk latency (`512.00us`, `1.20ms`, `2.00s`) in µs."""
    if not text:
        return None
    m = re.match(r"([\d.]+)(us|ms|s)", text)
    if not m:
        return None
    v, u = float(m.group(1)), m.group(2)
    return v * {"us": 1, "ms": 1e3, "s": 1e6}[u]


def fmt_us(us):
    if us is None:
        return "—"
    return f"{us / 1000:.2f} ms" if us >= 1000 else f"{us:.0f} µs"


def verdict(ok):
    return "met" if ok else "**missed**"


def svg(bars, path):
    """Horizontal bars: [(label, value, colour)]."""
    width, left, bar_h, gap = 720, 250, 26, 10
    top = 40
    height = top + len(bars) * (bar_h + gap) + 30
    vmax = max(v for _, v, _ in bars) or 1
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'font-family="sans-serif" font-size="13">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
        '<text x="10" y="22" font-size="15" font-weight="bold">'
        "Throughput, requests/s (scripts/bench, same run, same machine)</text>",
    ]
    for i, (label, v, colour) in enumerate(bars):
        y = top + i * (bar_h + gap)
        w = (width - left - 90) * v / vmax
        out.append(f'<text x="{left - 8}" y="{y + bar_h * 0.68}" text-anchor="end">{label}</text>')
        out.append(f'<rect x="{left}" y="{y}" width="{w:.1f}" height="{bar_h}" fill="{colour}"/>')
        out.append(f'<text x="{left + w + 6:.1f}" y="{y + bar_h * 0.68}">{v:,.0f}</text>')
    out.append("</svg>")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write("\n".join(out) + "\n")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--results", required=True)
    ap.add_argument("--startup", required=True)
    ap.add_argument("--quick", default="0")
    ap.add_argument("--write", default="1")
    ap.add_argument("--duration")
    ap.add_argument("--connections")
    ap.add_argument("--open-seconds")
    ap.add_argument("--density-n")
    ap.add_argument("--crit-args", default="")
    ap.add_argument("--root", required=True)
    a = ap.parse_args()
    r = load(a.results)
    startup = open(a.startup).read().strip()

    def rps(k):
        return num(r, f"{k}.rps", 0.0)

    p1o, p1w, p1h = rps("p1.orb"), rps("p1.wasmtime"), rps("p1.hyper")
    p2o, p2h = rps("p2.orb"), rps("p2.hyper")
    ratio = lambda x, y: x / y if y else 0.0
    crit = lambda g, b: num(r, f"crit.{g}.{b}")

    # P4: first call after restart per guest, from the startup table.
    restart = {}
    for line in startup.splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if len(cells) >= 6 and cells[0] and not cells[0].startswith(("component", "---")):
            restart[cells[0]] = float(cells[4].split()[0])

    # The compute loop's engines, per run (scripts/bench's METER_RUNS).
    meter_runs = sorted({k.split(".")[1] for k in r if k.startswith("meter.")}, key=int)

    def meter_cost(bench, meter, base_meter="none"):
        if bench == "work_1M" and meter_runs:
            costs = [1 - float(r[f"meter.{i}.{base_meter}"]) / float(r[f"meter.{i}.{meter}"])
                     for i in meter_runs
                     if f"meter.{i}.{base_meter}" in r and f"meter.{i}.{meter}" in r]
            return statistics.median(costs) if costs else None
        base, with_ = crit(f"metering_{base_meter}", bench), crit(f"metering_{meter}", bench)
        if not base or not with_:
            return None
        return 1 - base / with_  # throughput lost = 1 - thr_with / thr_without

    def meter_costs_each(meter):
        return ", ".join(
            f"{(1 - float(r[f'meter.{i}.none']) / float(r[f'meter.{i}.{meter}'])) * 100:.1f} %"
            for i in meter_runs)

    p5o50, p5o99 = num(r, "p5.orb.p50_us"), num(r, "p5.orb.p99_us")
    p5h50, p5h99 = num(r, "p5.hyper.p50_us"), num(r, "p5.hyper.p99_us")
    # A ratio means nothing when the server fell behind the schedule: then
    # every request queues and p50 and p99 are both the backlog.
    p5_kept_up = (num(r, "p5.orb.achieved", 0) or 0) >= 0.99 * (num(r, "p5.orb.rate", 1) or 1)
    # Keeping up is not enough: a median above the median `wrk` saw at full
    # load (32 requests in flight) means a standing queue, so p99 ÷ p50 is
    # again a ratio of backlogs, not a tail.
    p1o50 = dur_us(r.get("p1.orb.p50"))
    p5_queued = p1o50 is not None and (p5o50 or 0) > p1o50
    p5_note = ""
    if not p5_kept_up:
        p5_note = f"; overloaded: {r.get('p5.orb.achieved', '?')} of {r.get('p5.orb.rate', '?')}/s"
    elif p5_queued:
        p5_note = f"; a standing queue: p50 above `wrk`'s p50 at full load ({fmt_us(p1o50)})"
    d_idle = num(r, "density.idle_kb_per_function")
    d_l1, d_ln = num(r, "density.lookup_call_us_1"), num(r, "density.lookup_call_us_n")
    d_peak = num(r, "density.in_flight_peak_rss_mib")
    noop_wat = crit("warm_call", "wat_noop")
    noop_rust = crit("warm_call", "misbehave_noop")
    e_cost, f_cost = meter_cost("work_1M", "epoch"), meter_cost("work_1M", "fuel")
    pct = lambda x: "—" if x is None else f"{x * 100:.1f} %"
    f_on_e = meter_cost("work_1M", "both", base_meter="epoch")

    rows = [
        ("P1 Orb `/http` ÷ `wasmtime serve`", f"{ratio(p1o, p1w):.2f}×", "≥ 1.3×", ratio(p1o, p1w) >= 1.3),
        ("P1 Orb `/http` ÷ bare hyper", f"{ratio(p1o, p1h) * 100:.0f} %", "≥ 50 %", ratio(p1o, p1h) >= 0.5),
        ("P2 Orb `POST /v1/functions/…/add` ÷ bare hyper", f"{ratio(p2o, p2h) * 100:.0f} %", "≥ 40 %", ratio(p2o, p2h) >= 0.4),
        ("P3 warm no-op call p50, minimal component (WAT, no imports)", f"{noop_wat or 0:.1f} µs", "≤ 10 µs", (noop_wat or 1e9) <= 10),
        ("P3 warm no-op call p50, Rust wasip2 component", f"{noop_rust or 0:.1f} µs", "≤ 10 µs", (noop_rust or 1e9) <= 10),
        ("P4 first call after restart, Rust `hello`", f"{restart.get('hello', 0):.2f} ms", "≤ 2 ms", restart.get("hello", 1e9) <= 2),
        ("P4 first call after restart, Python `py-hello`", f"{restart.get('py-hello', 0):.2f} ms", "≤ 30 ms", restart.get("py-hello", 1e9) <= 30),
        ("P5 p99 ÷ p50 at 80 % of peak (Orb `/http`)",
         f"{(p5o99 or 0) / (p5o50 or 1):.2f} ({fmt_us(p5o99)} / {fmt_us(p5o50)})"
         + p5_note,
         "≤ 2", p5_kept_up and not p5_queued and (p5o99 or 1e9) <= 2 * (p5o50 or 0)),
        ("P6 epoch interruption, throughput lost (compute loop)", pct(e_cost), "≤ 5 %", e_cost is not None and e_cost <= 0.05),
        ("P6 fuel accounting, throughput lost (compute loop)", pct(f_cost), "≤ 15 %", f_cost is not None and f_cost <= 0.15),
        ("P6 fuel on top of epoch, as nodes run (compute loop)", pct(f_on_e), "≤ 15 %", f_on_e is not None and f_on_e <= 0.15),
        ("P7 idle memory per loaded function", f"{d_idle or 0:.1f} KB", "≤ 50 KB", (d_idle or 1e9) <= 50),
        ("P7 lookup + no-op call, 1 vs N functions loaded", f"{d_l1 or 0:.1f} µs → {d_ln or 0:.1f} µs", "no slower",
         d_ln is not None and d_l1 is not None and d_ln <= d_l1 * 1.15),
        ("P7 peak RSS with 1,000 calls in flight", f"{d_peak or 0:.0f} MiB", "≤ 2048 MiB", (d_peak or 1e9) <= 2048),
    ]

    today = datetime.date.today().isoformat()
    mode = "`scripts/bench --quick`" if a.quick == "1" else "`scripts/bench`"
    L = []
    L.append(f"Run: {mode} on {today}. Machine: {machine()}; wasmtime 48.0.8; release profile.")
    L.append(f"Load average (1 min) at start {r.get('machine.load_start', '?')}, at end {r.get('machine.load_end', '?')} "
             "(2 cores shared with other work: treat single figures as ±15 %; ratios come from the same run).")
    L.append("")
    L.append("![throughput](docs/benchmarks.svg)")
    L.append("")
    L.append("#### Targets")
    L.append("")
    L.append("| target | measured | goal | |")
    L.append("| --- | ---: | ---: | --- |")
    for name, fig, goal, ok in rows:
        L.append(f"| {name} | {fig} | {goal} | {verdict(ok)} |")
    L.append("")
    L.append(f"#### P1, P2: throughput (`wrk -t2 -c{a.connections} -d{a.duration}s --latency`, keep-alive)")
    L.append("")
    L.append("| server | request | req/s | p50 | p99 | ÷ hyper | load |")
    L.append("| --- | --- | ---: | ---: | ---: | ---: | ---: |")
    for key, server, req, base in [
        ("p1.hyper", "bare hyper (`hyper-baseline`)", "`GET /` (same bytes as http-hello)", p1h),
        ("p1.wasmtime", "`wasmtime serve -S cli`", "`GET /` http-hello", p1h),
        ("p1.wasmtime_tuned", "`wasmtime serve -S cli -O pooling-allocator=y,memory-guard-size=0,signals-based-traps=n,…keep-resident=1MiB` (tuned like Orb, for reference)", "`GET /` http-hello", p1h),
        ("p1.orb", "Orb", "`GET /http/{hash}/` http-hello (token)", p1h),
        ("p2.hyper", "bare hyper", "`POST /` JSON body", p2h),
        ("p2.orb", "Orb", "`POST /v1/functions/{hash}/add` `{\"a\":1,\"b\":2}` (calc)", p2h),
    ]:
        v = rps(key)
        non2xx = r.get(f"{key}.non2xx", "0")
        note = f" ({non2xx} non-2xx)" if non2xx not in ("0", "") else ""
        L.append(f"| {server} | {req}{note} | {v:,.0f} | {fmt_us(dur_us(r.get(key + '.p50')))} | "
                 f"{fmt_us(dur_us(r.get(key + '.p99')))} | {ratio(v, base) * 100:.0f} % | {r.get(key + '.load', '?')} |")
    L.append("")
    L.append(f"Resident memory after the runs: Orb {num(r, 'p1.orb.rss_kb', 0) / 1024:.0f} MiB, "
             f"`wasmtime serve` {num(r, 'p1.wasmtime.rss_kb', 0) / 1024:.0f} MiB, hyper {num(r, 'p1.hyper.rss_kb', 0) / 1024:.0f} MiB.")
    L.append("")
    L.append(f"#### P5: constant rate at 80 % of Orb's P1 peak (`openloop`, 64 connections, {a.open_seconds} s)")
    L.append("")
    L.append("Latency is measured from each request's due time (no coordinated omission).")
    L.append("")
    L.append("| server | rate | achieved | p50 | p90 | p99 | max | p99 ÷ p50 | errors | load |")
    L.append("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for t, name in [("orb", "Orb `/http/{hash}/`"), ("hyper", "bare hyper"),
                    ("orb_half", "Orb `/http/{hash}/` at 50 % of peak (reference)")]:
        if f"p5.{t}.rate" not in r:
            continue
        p50, p99 = num(r, f"p5.{t}.p50_us"), num(r, f"p5.{t}.p99_us")
        L.append(f"| {name} | {r.get(f'p5.{t}.rate', '?')}/s | {r.get(f'p5.{t}.achieved', '?')}/s | {fmt_us(p50)} | "
                 f"{fmt_us(num(r, f'p5.{t}.p90_us'))} | {fmt_us(p99)} | {fmt_us(num(r, f'p5.{t}.max_us'))} | "
                 f"{(p99 or 0) / (p50 or 1):.2f} | {r.get(f'p5.{t}.errors', '?')} | {r.get(f'p5.{t}.load', '?')} |")
    L.append("")
    L.append(f"#### P3: warm in-process calls (criterion median, `cargo bench -p orb-runtime --bench call -- {a.crit_args}`)")
    L.append("")
    L.append("Fresh instance per call from the `InstancePre` (pooling allocator): store + WASI context, "
             "instantiate, convert params, call, convert the result, tear down.")
    L.append("")
    L.append("| call | median |")
    L.append("| --- | ---: |")
    for b, name in [("wat_noop", "WAT `noop()` (no imports, no memory)"),
                    ("misbehave_noop", "Rust wasip2 `noop()` (misbehave)"),
                    ("calc_add", "calc `add(a, b)`"),
                    ("hello_greet", "hello `greet(name)` (wasi:config, prints, logs)")]:
        v = crit("warm_call", b)
        L.append(f"| {name} | {'—' if v is None else f'{v:.1f} µs'} |")
    L.append("")
    L.append("#### P6: metering (criterion median per call; engines built with each meter on or off)")
    L.append("")
    L.append("| call | none | epoch only | fuel only | both (nodes) | epoch cost | fuel cost | both cost |")
    L.append("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for b, name in [("work_1M", "`work(1000000)` compute loop (WAT)"),
                    ("hello_greet", "hello `greet`"), ("misbehave_noop", "Rust `noop`")]:
        cells = [crit(f"metering_{m}", b) for m in ("none", "epoch", "fuel", "both")]
        L.append(f"| {name} | " + " | ".join("—" if c is None else f"{c:.1f} µs" for c in cells)
                 + f" | {pct(meter_cost(b, 'epoch'))} | {pct(meter_cost(b, 'fuel'))} | {pct(meter_cost(b, 'both'))} |")
    L.append("")
    L.append("Cost = throughput lost = 1 − (time without ÷ time with).")
    if len(meter_runs) > 1:
        L.append(f"The compute loop ran {len(meter_runs)} times (all four engines each time); its times are the "
                 f"first run's, its costs the median of the runs' costs (epoch: {meter_costs_each('epoch')}; "
                 f"fuel: {meter_costs_each('fuel')}; both: {meter_costs_each('both')}).")
    L.append("")
    L.append("#### Guard pages vs compiled bounds checks (criterion median per call; `RuntimeConfig::guard_pages`)")
    L.append("")
    L.append("Orb's default is bounds checks: no `mprotect` (and no TLB shootdown) per recycled instance. "
             "`guard_pages = true` in `orb.toml` switches to guard pages.")
    L.append("")
    L.append("| call | guard pages | bounds checks (default) | change |")
    L.append("| --- | ---: | ---: | ---: |")
    for b, name in [("memwork_1M", "`memwork(1000000)`: load + add + store per round (WAT)"),
                    ("hello_greet", "hello `greet`"), ("misbehave_noop", "Rust `noop`")]:
        g, c = crit("memory_guard_pages", b), crit("memory_bounds_checks", b)
        change = "—" if g is None or c is None else f"{(c / g - 1) * 100:+.1f} %"
        L.append(f"| {name} | {'—' if g is None else f'{g:.1f} µs'} | {'—' if c is None else f'{c:.1f} µs'} | {change} |")
    L.append("")
    L.append(f"#### P4: cold start (`cargo bench -p orb-runtime --bench startup`, load {r.get('startup.load', '?')})")
    L.append("")
    L.append(startup)
    L.append("")
    runs = "1 run" if a.quick == "1" else "median of 3 runs per figure"
    L.append(f"#### P7: density (`ORB_BENCH_DENSITY_N={a.density_n} cargo bench -p orb-runtime --bench density`, {runs}, load {r.get('density.load', '?')})")
    L.append("")
    L.append("| measure | value |")
    L.append("| --- | ---: |")
    for k, name in [("functions", "distinct functions loaded (tiny WAT components)"),
                    ("load_seconds", "time to compile + link them, s"),
                    ("rss_before_mib", "RSS before, MiB"), ("rss_after_mib", "RSS after, MiB"),
                    ("idle_kb_per_function", "idle memory per function, KB"),
                    ("lookup_call_us_1", "lookup + no-op call with 1 loaded, µs (median)"),
                    ("lookup_call_us_n", "lookup + no-op call with N loaded, µs (median)"),
                    ("lookup_ns_1", "lookup alone with 1 loaded, ns"),
                    ("lookup_ns_n", "lookup alone with N loaded (random ids), ns"),
                    ("rotating_call_us_n", "no-op calls rotating over all N functions, µs (median)"),
                    ("in_flight", "calls in flight (kv guest `get`, the read takes 1 s)"),
                    ("in_flight_max_running", "of which running at once"),
                    ("in_flight_outcomes", "outcomes"),
                    ("in_flight_peak_rss_mib", "peak RSS, MiB"),
                    ("in_flight_kb_per_call", "per call in flight, KB")]:
        L.append(f"| {name} | {r.get('density.' + k, '—')} |")
    L.append("")
    L.append("#### Commands (as run by the script)")
    L.append("")
    L.append("```sh")
    L.append("cargo build --release -p orb-cli --bin orb && cargo build --release -p orb-bench --bins")
    L.append("orb serve --listen 127.0.0.1:0 --data-dir $TMP/orb        # deploy http-hello, calc with curl")
    L.append("build/tools/bin/wasmtime serve -S cli --addr 127.0.0.1:$P build/guests/http-hello.wasm")
    L.append("build/tools/bin/wasmtime serve -S cli -O pooling-allocator=y,memory-guard-size=0,signals-based-traps=n,pooling-memory-keep-resident=1048576,pooling-table-keep-resident=1048576 --addr 127.0.0.1:$P2 build/guests/http-hello.wasm")
    L.append("hyper-baseline --listen 127.0.0.1:$P --body <Orb's GET / body> --content-type application/json")
    L.append(f"wrk -t2 -c{a.connections} -d{a.duration}s --latency [-s auth.lua|post.lua] URL   # each server in turn")
    L.append(f"openloop --url URL --rate <0.8 × Orb P1 req/s> --seconds {a.open_seconds} --connections 64")
    L.append(f"cargo bench -p orb-runtime --bench call -- {a.crit_args}")
    L.append("cargo bench -p orb-runtime --bench startup")
    L.append(f"ORB_BENCH_DENSITY_N={a.density_n} cargo bench -p orb-runtime --bench density")
    L.append("```")
    section = "\n".join(L)

    print(section)
    if a.write != "1":
        return
    svg([
        ("bare hyper GET", p1h, "#888"),
        ("wasmtime serve (http-hello)", p1w, "#c77"),
        ("Orb /http (http-hello)", p1o, "#37c"),
        ("bare hyper POST", p2h, "#888"),
        ("Orb POST typed call (calc add)", p2o, "#37c"),
    ], os.path.join(a.root, "docs/benchmarks.svg"))
    path = os.path.join(a.root, "BENCHMARKS.md")
    text = open(path).read()
    begin, end = "<!-- bench:begin -->", "<!-- bench:end -->"
    block = f"{begin}\n{section}\n{end}"
    if begin in text and end in text:
        text = text[: text.index(begin)] + block + text[text.index(end) + len(end):]
    else:
        text = text.rstrip("\n") + "\n\n## Suite: Orb vs `wasmtime serve` vs bare hyper (`scripts/bench`)\n\n" + block + "\n"
    with open(path, "w") as f:
        f.write(text)
    print(f"\nwrote {path} and docs/benchmarks.svg")


if __name__ == "__main__":
    main()
