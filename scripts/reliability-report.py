#!/usr/bin/env python3
"""Writes RELIABILITY.md from the suites' figure files (build/reliability/*.json).

Usage: reliability-report.py DIR OUT.md

Every figure comes from a file a suite wrote; a suite whose file is missing is
listed as not run. Nothing here measures anything.
"""
import datetime
import json
import os
import sys


def load(d, name):
    p = os.path.join(d, name + ".json")
    if not os.path.exists(p):
        return None, None
    mtime = datetime.datetime.fromtimestamp(os.path.getmtime(p), datetime.timezone.utc)
    with open(p) as f:
        return json.load(f), mtime.strftime("%Y-%m-%d %H:%M UTC")


def section(lines, missing, d, name, title):
    """Starts a section; its figures and their time, or (None, None) after
    noting the suite as not run."""
    fig, when = load(d, name)
    lines += [f"## {title}", ""]
    if fig is None:
        missing.append(name)
        lines += [f"Not run here (no `build/reliability/{name}.json`).", ""]
    return fig, when


def n(x):
    if isinstance(x, float):
        return f"{x:,.1f}"
    if isinstance(x, int):
        return f"{x:,}"
    return "—" if x is None else str(x)


def main():
    d, out = sys.argv[1], sys.argv[2]
    lines = [
        "# Reliability",
        "",
        "Figures from the reliability suites' own output files (`build/reliability/*.json`),",
        "written into this page by `scripts/reliability` (`scripts/reliability --run` runs",
        "the full forms first). Machine: the project's CI kind — 2 cores shared with other",
        "work, debug build for the Rust test suites, release + coverage instrumentation",
        "for the fuzz targets. CI runs the short forms of every suite (`scripts/test`).",
        "",
    ]
    missing = []

    # Schemathesis.
    st, when = section(lines, missing, d, "schemathesis", "API contract: schemathesis")
    if st is not None:
        r = st.get("report", {})
        tc = r.get("test_cases", {})
        ops = r.get("operations", {})
        lines += [
            f"{st.get('tool', 'schemathesis')}, {st.get('mode', '?')} run of {when}: "
            f"{n(tc.get('generated'))} requests generated over {n(ops.get('tested'))} "
            f"operations (checks `{st.get('checks', '?')}`, phases {st.get('phases', '?')}, "
            f"seed {st.get('seed', '?')}), {n(st.get('duration_s'))} s; exit code "
            f"{st.get('exit_code')}.",
            "",
        ]
        fails = r.get("failures") or []
        errs = r.get("errors") or []
        if fails or errs:
            lines += ["| failure kind | code | count |", "| --- | --- | ---: |"]
            for f in fails:
                lines.append(f"| {f.get('title')} | {f.get('code', '')} | {n(f.get('count'))} |")
            for e in errs:
                lines.append(f"| error: {e.get('title')} | | {n(e.get('count'))} |")
            lines.append("")
        else:
            lines += ["No failures.", ""]

    # Fuzzing.
    fz, when = section(lines, missing, d, "fuzz", "Fuzzing")
    if fz is not None:
        t = fz.get("targets", {})
        crashes = sum(v.get("crashes_kept", 0) for v in t.values())
        secs = fz.get("seconds_total", 0)
        lines += [
            f"{fz.get('engine')}; `scripts/fuzz`, {fz.get('runs', 1)} run(s) up to {when}: "
            f"{n(fz.get('executions_total'))} executions in {secs / 3600:.2f} h of fuzzing "
            f"over {len(t)} targets, {crashes} crash input(s) kept.",
            "",
        ]
        if secs < 3600:
            lines += [f"Partial: {secs / 60:.0f} minutes of fuzzing, short of the one-hour goal "
                      "(`scripts/reliability --run fuzz` runs 450 s per target).", ""]
        lines += [
            "| target | what it feeds | seconds | executions | coverage (edges) | features | corpus | crashes |",
            "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
        ]
        what = {
            "token": "bearer token text and raw bytes → verify, inspect, attenuate",
            "token_block": "Datalog appended to valid tokens; narrowing and grant JSON",
            "values": "JSON → component values, every WIT type",
            "query_params": "query string → typed call parameters",
            "query": "route query strings (`limit`, `after`, `wait`, `function`)",
            "namespace": "namespace names, keys, values, import bodies",
            "schedule": "schedule JSON: `every`, `cron`, time zones, bounds",
            "component": "uploads: arbitrary bytes and mutated guest components",
        }
        for name, v in t.items():
            lines.append(
                f"| `{name}` | {what.get(name, '')} | {n(v.get('seconds'))} | "
                f"{n(v.get('executions'))} | {n(v.get('coverage'))} | {n(v.get('features'))} | "
                f"{n(v.get('corpus'))} | {n(v.get('crashes_kept'))} |"
            )
        lines.append("")

    # Faults.
    fa, when = section(lines, missing, d, "faults", "Faults: kill -9 under mixed load")
    if fa is not None:
        lines += [
            f"`cargo test --test faults` (`kill_dash_nine_in_a_loop_under_mixed_load`), run of "
            f"{when}: {n(fa.get('cycles'))} SIGKILLs of `orb serve` in {n(fa.get('seconds'))} s, "
            "each 0.3–0.9 s into a mixed load, then a restart on the same data folder "
            "(the store's integrity is verified at every open).",
            "",
            "| what | acknowledged | verified after the kills |",
            "| --- | ---: | --- |",
            f"| namespace writes (PUT) | {n(fa.get('namespace_writes_acknowledged'))} | "
            f"{n(fa.get('namespace_writes_lost'))} lost ({n(fa.get('values_spot_checked'))} values compared) |",
            f"| async calls (202) | {n(fa.get('async_calls_accepted'))} | "
            f"{n(fa.get('async_calls_never_ran'))} never ran; {n(fa.get('async_calls_ran_more_than_once'))} "
            "ran twice (at least once: a call running at the kill runs again) |",
            f"| schedules created (201) | {n(fa.get('schedules_acknowledged'))} | "
            f"{n(fa.get('schedules_lost'))} lost |",
            f"| kappa messages (200) | {n(fa.get('kappa_messages_acknowledged'))} of "
            f"{n(fa.get('kappa_messages_sent'))} sent | {n(fa.get('kappa_messages_applied'))} applied "
            "(between acknowledged and sent) |",
            f"| sync calls (200) | {n(fa.get('sync_calls_answered'))} | — |",
            "",
            f"Unexpected answers: {n(fa.get('unexpected_answers'))}. Restart to listening: "
            f"median {n(fa.get('restart_ms_median'))} ms, max {n(fa.get('restart_ms_max'))} ms.",
            "",
            "Also in the suite, every CI run: a full disk (a tmpfs filled by the node's own "
            "writes) answers writes with 507 `storage_full`, keeps serving reads and takes "
            "writes again once space returns; with no reserve, a disk that fills mid-commit "
            "rolls the commit back and the node says to restart; a truncated, overwritten or "
            "scribbled `orb.redb` is refused at start, naming the file and what to do.",
            "",
        ]

    # Connections.
    co, when = section(lines, missing, d, "connections", "Connections: slowloris")
    if co is not None:
        lines += [
            f"`a_slowloris_of_thousands_is_shed_while_calls_are_answered`, run of {when}: "
            f"{n(co.get('half_open_tried'))} half-open connections from {n(co.get('addresses'))} "
            f"addresses: {n(co.get('held_then_shed'))} held then shed by the header-read timeout "
            f"(p50 {n(co.get('shed_p50_ms'))} ms), {n(co.get('refused_at_once'))} refused at once "
            f"by the per-address cap, {n(co.get('left_open'))} left open; all settled "
            f"{n(co.get('settled_s'))} s after the start. Ordinary calls: p50 "
            f"{n(co.get('calls_quiet_p50_ms'))} ms / p99 {n(co.get('calls_quiet_p99_ms'))} ms "
            f"without the attack, p50 {n(co.get('calls_during_p50_ms'))} ms / p99 "
            f"{n(co.get('calls_during_p99_ms'))} ms during it ({n(co.get('calls_during'))} calls).",
            "",
        ]

    # Permissions.
    pm, when = section(lines, missing, d, "permissions", "Permission matrix")
    if pm is not None:
        lines += [
            f"`crates/orb-cli/tests/permissions.rs`, run of {when}: {n(pm.get('routes'))} routes × "
            f"{n(pm.get('callers'))} callers = {n(pm.get('cells'))} cells, "
            f"{n(pm.get('broken'))} breaking the rules (`docs/permissions.md`).",
            "",
        ]

    if missing:
        lines += ["## Not in this report", "", "Suites with no figures here: "
                  + ", ".join(f"`{m}`" for m in missing) + ".", ""]
    with open(out, "w") as f:
        f.write("\n".join(lines))
    print(f"    wrote {out}")


if __name__ == "__main__":
    main()
