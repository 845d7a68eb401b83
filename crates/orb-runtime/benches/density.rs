//! Density (target P7): idle memory per loaded function with N distinct
//! functions in one runtime, whether lookups + calls slow down with N, and
//! the resident memory of 1,000 calls in flight at once (each waiting 1 s
//! on a key/value read).
//!
//!   cargo bench -p orb-runtime --bench density            # N = 10,000
//!   ORB_BENCH_DENSITY_N=1000 cargo bench -p orb-runtime --bench density
//!
//! Prints `key value` lines (read by scripts/bench).

mod guests;

use orb_core::FunctionId;
use orb_runtime::{CallRequest, KvAccess, KvBackend, Runtime, RuntimeConfig};
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// A namespace whose reads take a second: calls that wait on I/O.
struct SlowKv;

#[async_trait::async_trait]
impl KvBackend for SlowKv {
    async fn get(&self, _: &str, _: &str) -> Result<Option<(Vec<u8>, u64)>, String> {
        tokio::time::sleep(Duration::from_secs(1)).await;
        Ok(None)
    }
    async fn keys(&self, _: &str, _: Option<&str>, _: usize) -> Result<Vec<String>, String> {
        Ok(Vec::new())
    }
    async fn may_open(&self, _: &str) -> Option<orb_runtime::BucketAccess> {
        None
    }
}

fn rss_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .unwrap()
        * 1024
}

/// Median of `iters` timed lookups + warm no-op calls, µs.
fn lookup_call_us(
    rt: &Runtime,
    tokio: &tokio::runtime::Runtime,
    ids: &[FunctionId],
    iters: usize,
) -> f64 {
    let mut times = Vec::with_capacity(iters);
    for i in 0..iters {
        let id = &ids[(i * 7919) % ids.len()];
        let t = Instant::now();
        let f = rt.get_loaded(id).expect("loaded");
        let checked = f.check_params("noop", &json!({})).unwrap();
        let out = tokio.block_on(rt.call(&f, checked, CallRequest::default()));
        times.push(t.elapsed());
        assert!(out.result.is_ok());
    }
    times.sort();
    times[iters / 2].as_secs_f64() * 1e6
}

fn main() {
    let n: usize = std::env::var("ORB_BENCH_DENSITY_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let in_flight: usize = std::env::var("ORB_BENCH_IN_FLIGHT")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000);
    let rt = Arc::new(
        Runtime::new(RuntimeConfig {
            max_instances: in_flight as u32 + 16,
            ..Default::default()
        })
        .unwrap(),
    );
    let tokio1 = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();

    // Components are made up front so their bytes are not counted.
    let comps: Vec<(FunctionId, Vec<u8>)> = (0..n as u32)
        .map(|i| {
            let b = guests::wat_noop(i);
            (FunctionId::of(&b), b)
        })
        .collect();
    let first = [comps[0].0.clone()];
    rt.load(&comps[0].0, &comps[0].1).unwrap();
    let lookup_1 = lookup_call_us(&rt, &tokio1, &first, 2_000);

    let before = rss_bytes();
    let t = Instant::now();
    for (id, bytes) in &comps[1..] {
        rt.load(id, bytes).unwrap();
    }
    let load_s = t.elapsed().as_secs_f64();
    let after = rss_bytes();
    let ids: Vec<FunctionId> = comps.iter().map(|(id, _)| id.clone()).collect();
    drop(comps);
    let lookup_n = lookup_call_us(&rt, &tokio1, &first, 2_000);
    let rotating_n = lookup_call_us(&rt, &tokio1, &ids, 2_000);
    let lookup_only_ns = |ids: &[FunctionId]| {
        let t = Instant::now();
        for i in 0..100_000 {
            std::hint::black_box(rt.get_loaded(&ids[(i * 7919) % ids.len()]));
        }
        t.elapsed().as_nanos() as f64 / 100_000.0
    };
    println!("lookup_ns_1 {:.0}", lookup_only_ns(&first));
    println!("lookup_ns_n {:.0}", lookup_only_ns(&ids));
    println!("functions {n}");
    println!("load_seconds {load_s:.2}");
    println!("rss_before_mib {:.1}", before as f64 / (1 << 20) as f64);
    println!("rss_after_mib {:.1}", after as f64 / (1 << 20) as f64);
    println!(
        "idle_kb_per_function {:.1}",
        after.saturating_sub(before) as f64 / (n - 1) as f64 / 1024.0
    );
    println!("lookup_call_us_1 {lookup_1:.2}");
    println!("lookup_call_us_n {lookup_n:.2}");
    println!("rotating_call_us_n {rotating_n:.2}");

    // In flight: `in_flight` calls at once, each waiting 1 s on I/O (the kv
    // guest's `get`, over a backend that sleeps before it answers); RSS
    // sampled every 10 ms.
    let kv = guests::guest("kv");
    let (f, _) = rt.load(&FunctionId::of(&kv), &kv).unwrap();
    let tokio = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let base = rss_bytes();
    let peak = Arc::new(AtomicU64::new(base));
    let done = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (peak, done) = (peak.clone(), done.clone());
        std::thread::spawn(move || {
            while !done.load(Ordering::Relaxed) {
                peak.fetch_max(rss_bytes(), Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(10));
            }
        })
    };
    let backend: Arc<dyn KvBackend> = Arc::new(SlowKv);
    let running = Arc::new(AtomicU64::new(0));
    let max_running = Arc::new(AtomicU64::new(0));
    let t = Instant::now();
    let outcomes = tokio.block_on(async {
        let mut tasks = Vec::new();
        for _ in 0..in_flight {
            let (rt, f, backend) = (rt.clone(), f.clone(), backend.clone());
            let (running, max_running) = (running.clone(), max_running.clone());
            tasks.push(tokio::spawn(async move {
                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                max_running.fetch_max(now, Ordering::SeqCst);
                let checked = f.check_params("get", &json!({"key": "k"})).unwrap();
                let req = CallRequest {
                    kv: Some(KvAccess {
                        namespace: "bench".into(),
                        backend,
                        preset: Default::default(),
                        read_only: true,
                        max_value_bytes: orb_core::MAX_VALUE_BYTES,
                        write_only: false,
                    }),
                    ..Default::default()
                };
                let out = rt.call(&f, checked, req).await;
                running.fetch_sub(1, Ordering::SeqCst);
                out.result
                    .err()
                    .and_then(|e| e.error_code())
                    .map(|c| c.as_str())
            }));
        }
        let mut codes = std::collections::BTreeMap::new();
        for t in tasks {
            *codes.entry(t.await.unwrap().unwrap_or("ok")).or_insert(0) += 1;
        }
        codes
    });
    done.store(true, Ordering::Relaxed);
    sampler.join().unwrap();
    println!("in_flight {in_flight}");
    println!(
        "in_flight_max_running {}",
        max_running.load(Ordering::SeqCst)
    );
    println!("in_flight_seconds {:.2}", t.elapsed().as_secs_f64());
    println!("in_flight_outcomes {outcomes:?}");
    println!(
        "in_flight_peak_rss_mib {:.1}",
        peak.load(Ordering::Relaxed) as f64 / (1 << 20) as f64
    );
    println!(
        "in_flight_kb_per_call {:.1}",
        peak.load(Ordering::Relaxed).saturating_sub(base) as f64 / in_flight as f64 / 1024.0
    );
}
