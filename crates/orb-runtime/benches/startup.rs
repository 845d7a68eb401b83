//! Cold starts (target P4): the first call after deploy (validate, compile,
//! cache the artifact, instantiate, call), then the first call after a
//! "restart" (a new runtime over the same compile cache: map the artifact,
//! link, instantiate, call). Prints a Markdown table; run with
//! `cargo bench --bench startup`.

mod guests;

use orb_core::FunctionId;
use orb_runtime::{CacheSource, CallRequest, Runtime, RuntimeConfig};
use serde_json::json;
use std::time::Instant;

fn main() {
    let cache = tempfile::tempdir().unwrap();
    let cfg = RuntimeConfig {
        cache_dir: Some(cache.path().to_path_buf()),
        ..Default::default()
    };
    let tokio = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    println!(
        "| component | size | first call after deploy | of which compile | first call after restart (load + call) | of which load |"
    );
    println!("| --- | ---: | ---: | ---: | ---: | ---: |");
    for (guest, export, params) in [
        ("hello", "greet", json!({"name": "Ada"})),
        ("calc", "add", json!({"a": 1, "b": 2})),
        ("py-hello", "greet", json!({"name": "Ada"})),
        ("js-hello", "greet", json!({"name": "Ada"})),
    ] {
        let bytes = guests::guest(guest);
        let id = FunctionId::of(&bytes);
        let (compile, deployed) = {
            let rt = Runtime::new(cfg.clone()).unwrap();
            let t = Instant::now();
            let (f, src) = rt.load(&id, &bytes).unwrap();
            assert_eq!(src, CacheSource::Compiled);
            let compile = t.elapsed();
            let checked = f.check_params(export, &params).unwrap();
            let out = tokio.block_on(rt.call(&f, checked, CallRequest::default()));
            out.result.unwrap();
            (compile, t.elapsed())
        };
        // Restart: a fresh runtime, same cache directory.
        let rt = Runtime::new(cfg.clone()).unwrap();
        let t = Instant::now();
        let (f, src) = rt.load_cached(&id).expect("artifact cached");
        assert_eq!(src, CacheSource::Disk);
        let load = t.elapsed();
        let checked = f.check_params(export, &params).unwrap();
        let out = tokio.block_on(rt.call(&f, checked, CallRequest::default()));
        out.result.unwrap();
        let first = t.elapsed();
        println!(
            "| {guest} | {:.1} MB | {:.0} ms | {:.0} ms | {:.2} ms | {:.2} ms |",
            bytes.len() as f64 / 1e6,
            deployed.as_secs_f64() * 1e3,
            compile.as_secs_f64() * 1e3,
            first.as_secs_f64() * 1e3,
            load.as_secs_f64() * 1e3
        );
    }
}
