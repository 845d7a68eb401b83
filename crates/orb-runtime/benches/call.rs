//! Warm in-process calls: instantiate from the `InstancePre`, call, tear
//! down — the per-call cost of the sandbox without HTTP.

mod guests;

use criterion::{Criterion, criterion_group, criterion_main};
use orb_core::FunctionId;
use orb_runtime::{CallRequest, Runtime, RuntimeConfig};
use serde_json::json;

fn warm_calls(c: &mut Criterion) {
    let rt = Runtime::new(RuntimeConfig::default()).unwrap();
    let tokio = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut group = c.benchmark_group("warm_call");
    for (guest, export, params) in [
        ("calc", "add", json!({"a": 1, "b": 2})),
        ("hello", "greet", json!({"name": "Ada"})),
        ("misbehave", "noop", json!({})),
    ] {
        let bytes = guests::guest(guest);
        let (f, _) = rt.load(&FunctionId::of(&bytes), &bytes).unwrap();
        group.bench_function(format!("{guest}/{export}"), |b| {
            b.iter(|| {
                let checked = f.check_params(export, &params).unwrap();
                let out = tokio.block_on(rt.call(&f, checked, CallRequest::default()));
                assert!(out.result.is_ok());
            })
        });
    }
    group.finish();
}

criterion_group!(benches, warm_calls);
criterion_main!(benches);
