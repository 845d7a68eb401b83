//! `wasi:keyvalue` from inside a guest: the cost of one `get`, without the
//! store (an in-memory backend), so the figure is the sandbox's share.
//!
//! Each sample is one call of the kv2 guest's `get-n`; the per-get figure is
//! (time with N gets − time with 0 gets) / N. "first" reads N distinct keys
//! (each a backend read recorded in the transaction), "again" reads one key N
//! times (the call's snapshot cache).

mod guests;

use criterion::{Criterion, criterion_group, criterion_main};
use orb_core::FunctionId;
use orb_runtime::{CallRequest, KvAccess, KvBackend, Runtime, RuntimeConfig};
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::Arc;

struct Memory(BTreeMap<String, Vec<u8>>);

#[async_trait::async_trait]
impl KvBackend for Memory {
    async fn get(&self, _: &str, key: &str) -> Result<Option<(Vec<u8>, u64)>, String> {
        Ok(self.0.get(key).map(|v| (v.clone(), 1)))
    }
    async fn keys(&self, _: &str, _: Option<&str>, _: usize) -> Result<Vec<String>, String> {
        Ok(self.0.keys().cloned().collect())
    }
    async fn may_open(&self, _: &str) -> Option<orb_runtime::BucketAccess> {
        None
    }
}

fn in_guest_get(c: &mut Criterion) {
    let rt = Runtime::new(RuntimeConfig::default()).unwrap();
    let tokio = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let bytes = guests::guest("kv2");
    let (f, _) = rt.load(&FunctionId::of(&bytes), &bytes).unwrap();
    let data: BTreeMap<String, Vec<u8>> = (0..1000)
        .map(|i| (format!("k{i}"), format!("{i}").into_bytes()))
        .collect();
    let access = KvAccess {
        namespace: "bench".into(),
        backend: Arc::new(Memory(data)),
        preset: BTreeMap::new(),
        read_only: false,
        max_value_bytes: orb_core::MAX_VALUE_BYTES,
        write_only: false,
    };
    let mut group = c.benchmark_group("kv_get_in_guest");
    for (name, distinct, rounds) in [
        ("0_gets", 0, 0),
        ("1000_first_gets", 1000, 1),
        ("1000_repeat_gets", 1, 1000),
    ] {
        let params = json!({"prefix": "k", "distinct": distinct, "rounds": rounds});
        group.bench_function(name, |b| {
            b.iter(|| {
                let checked = f.check_params("get-n", &params).unwrap();
                let req = CallRequest {
                    kv: Some(access.clone()),
                    ..Default::default()
                };
                let out = tokio.block_on(rt.call(&f, checked, req));
                assert_eq!(out.result.unwrap(), json!(distinct * rounds));
            })
        });
    }
    group.finish();
}

criterion_group!(benches, in_guest_get);
criterion_main!(benches);
