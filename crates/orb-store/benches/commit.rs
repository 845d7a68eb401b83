//! Durable namespace commits through the group-commit writer: latency
//! percentiles for 1 and for 16 concurrent writers, each commit a
//! read-validated write of its own key, acknowledged after fsync.
//!
//!   cargo bench -p orb-store --bench commit [-- COMMITS_PER_WRITER]
//!
//! Plain `main` (not criterion): the figure that matters is p99.

use orb_store::{Commit, NsCommit, RedbStore, Store, StoreConfig};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn pct(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

async fn run(store: Arc<RedbStore>, writers: usize, per_writer: usize) {
    let started = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..writers {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::with_capacity(per_writer);
            let mut rev = None;
            for i in 0..per_writer {
                let key = format!("{writers}:{w}");
                let t = Instant::now();
                let outcome = store
                    .kv_commit(
                        "bench",
                        vec![NsCommit {
                            namespace: "bench".into(),
                            reads: vec![(key.clone(), rev)],
                            writes: vec![(key, Some(i.to_string().into_bytes()))],
                            listed: None,
                        }],
                    )
                    .await
                    .unwrap();
                lat.push(t.elapsed());
                assert_eq!(outcome, Commit::Done);
                rev = Some(rev.map_or(1, |r| r + 1));
            }
            lat
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    let wall = started.elapsed();
    all.sort();
    println!(
        "{writers:>2} writer(s): {:>7.0} commits/s  p50 {:>8.1?}  p99 {:>8.1?}  max {:>8.1?}",
        all.len() as f64 / wall.as_secs_f64(),
        pct(&all, 0.50),
        pct(&all, 0.99),
        all.last().unwrap(),
    );
}

fn main() {
    let per_writer: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(500);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    // Benchmarks run in target/; the disk is the one the node would use.
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let store = Arc::new(RedbStore::open(dir.path(), StoreConfig::default()).unwrap());
    rt.block_on(async {
        for writers in [1, 16, 64] {
            run(store.clone(), writers, per_writer).await;
        }
    });
}
