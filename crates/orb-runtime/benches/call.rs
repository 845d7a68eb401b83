//! Warm in-process calls: instantiate from the `InstancePre`, call, tear
//! down — the per-call cost of the sandbox without HTTP (target P3: a no-op
//! export ≤ 10 µs p50) — and what the meters cost (P6: epoch interruption
//! ≤ 5 %, fuel ≤ 15 % of throughput), with each meter compiled in or not.

mod guests;

use criterion::{Criterion, criterion_group, criterion_main};
use orb_core::FunctionId;
use orb_runtime::{CallRequest, Metering, Runtime, RuntimeConfig};
use serde_json::{Value as Json, json};

fn tokio() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn bench_call(
    c: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    rt: &Runtime,
    tokio: &tokio::runtime::Runtime,
    name: &str,
    bytes: &[u8],
    export: &str,
    params: &Json,
) {
    c.bench_function(name, |b| {
        // Loaded here: only the benches a filter selects compile anything.
        let (f, _) = rt.load(&FunctionId::of(bytes), bytes).unwrap();
        b.iter(|| {
            let checked = f.check_params(export, params).unwrap();
            let out = tokio.block_on(rt.call(&f, checked, CallRequest::default()));
            assert!(out.result.is_ok());
        })
    });
}

fn warm_calls(c: &mut Criterion) {
    let rt = Runtime::new(RuntimeConfig::default()).unwrap();
    let tokio = tokio();
    let mut group = c.benchmark_group("warm_call");
    let wat_noop = guests::wat_noop(0);
    bench_call(
        &mut group,
        &rt,
        &tokio,
        "wat_noop",
        &wat_noop,
        "noop",
        &json!({}),
    );
    for (guest, export, params) in [
        ("calc", "add", json!({"a": 1, "b": 2})),
        ("hello", "greet", json!({"name": "Ada"})),
        ("misbehave", "noop", json!({})),
    ] {
        let bytes = guests::guest(guest);
        bench_call(
            &mut group,
            &rt,
            &tokio,
            &format!("{guest}_{export}"),
            &bytes,
            export,
            &params,
        );
    }
    group.finish();
}

/// One loop-heavy call and two instantiation-heavy ones, in a group of
/// their own on the runtime `config` makes.
fn engine_group(
    c: &mut Criterion,
    tokio: &tokio::runtime::Runtime,
    group: String,
    config: RuntimeConfig,
    (loop_name, loop_bytes, loop_export): (&str, &[u8], &str),
) {
    let rt = Runtime::new(config).unwrap();
    let mut group = c.benchmark_group(group);
    let hello = guests::guest("hello");
    let noop = guests::guest("misbehave");
    for (name, bytes, export, params) in [
        (loop_name, loop_bytes, loop_export, json!({"n": 1_000_000})),
        ("hello_greet", &hello[..], "greet", json!({"name": "Ada"})),
        ("misbehave_noop", &noop[..], "noop", json!({})),
    ] {
        bench_call(&mut group, &rt, tokio, name, bytes, export, &params);
    }
    group.finish();
}

/// The same calls on engines with and without each meter.
fn metering(c: &mut Criterion) {
    let tokio = tokio();
    let work = guests::wat_work();
    for (label, epoch, fuel) in [
        ("none", false, false),
        ("epoch", true, false),
        ("fuel", false, true),
        ("both", true, true),
    ] {
        let config = RuntimeConfig {
            metering: Metering { epoch, fuel },
            ..Default::default()
        };
        let group = format!("metering_{label}");
        engine_group(c, &tokio, group, config, ("work_1M", &work, "work"));
    }
}

/// Guard pages (bounds checks by virtual memory, one `mprotect` per
/// instance that grew its memory) against explicit bounds checks compiled
/// in (no `mprotect` per instance): what each costs per call and in a
/// memory-heavy loop.
fn guard_pages(c: &mut Criterion) {
    let tokio = tokio();
    let memwork = guests::wat_memwork();
    for (label, guard_pages) in [("guard_pages", true), ("bounds_checks", false)] {
        let config = RuntimeConfig {
            guard_pages,
            ..Default::default()
        };
        let group = format!("memory_{label}");
        engine_group(
            c,
            &tokio,
            group,
            config,
            ("memwork_1M", &memwork, "memwork"),
        );
    }
}

criterion_group!(benches, warm_calls, metering, guard_pages);
criterion_main!(benches);
