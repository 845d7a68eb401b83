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

/// The same calls on engines with and without each meter.
fn metering(c: &mut Criterion) {
    let tokio = tokio();
    let work = guests::wat_work();
    let hello = guests::guest("hello");
    let noop = guests::guest("misbehave");
    for (label, metering) in [
        (
            "none",
            Metering {
                epoch: false,
                fuel: false,
            },
        ),
        (
            "epoch",
            Metering {
                epoch: true,
                fuel: false,
            },
        ),
        (
            "fuel",
            Metering {
                epoch: false,
                fuel: true,
            },
        ),
        (
            "both",
            Metering {
                epoch: true,
                fuel: true,
            },
        ),
    ] {
        let rt = Runtime::new(RuntimeConfig {
            metering,
            ..Default::default()
        })
        .unwrap();
        let mut group = c.benchmark_group(format!("metering_{label}"));
        bench_call(
            &mut group,
            &rt,
            &tokio,
            "work_1M",
            &work,
            "work",
            &json!({"n": 1_000_000}),
        );
        bench_call(
            &mut group,
            &rt,
            &tokio,
            "hello_greet",
            &hello,
            "greet",
            &json!({"name": "Ada"}),
        );
        bench_call(
            &mut group,
            &rt,
            &tokio,
            "misbehave_noop",
            &noop,
            "noop",
            &json!({}),
        );
        group.finish();
    }
}

criterion_group!(benches, warm_calls, metering);
criterion_main!(benches);
