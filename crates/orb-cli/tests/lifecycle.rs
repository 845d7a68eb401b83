//! Restarts keep functions and activations and do not recompile; the CLI's
//! hash-first flow, `--local`, and the Python and JavaScript components.

mod common;
use common::*;
use serde_json::json;
use std::process::Command;

#[tokio::test]
async fn restart_keeps_functions_and_activations_without_recompiling() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start_in(dir.path(), &[]);
    let hash = s.deploy("hello").await;
    assert_eq!(s.metric("orb_compile_cache_misses_total").await, 1.0);
    let (_, first) = s.call(&hash, "greet", json!({"name": "before"})).await;
    let act = first["activation"].as_str().unwrap().to_string();
    assert!(s.stop().success(), "graceful shutdown exits 0");
    // Artifacts an earlier engine configuration left behind are removed at
    // start; the current engine's folder and anything not ours stay.
    let compiled = dir.path().join("compiled");
    let current: Vec<_> = std::fs::read_dir(&compiled).unwrap().flatten().collect();
    assert_eq!(current.len(), 1, "one engine configuration so far");
    let current = current[0].path();
    let stale = compiled.join("0123456789abcdef");
    std::fs::create_dir(&stale).unwrap();
    std::fs::write(stale.join("x.cwasm"), vec![0u8; 4096]).unwrap();
    std::fs::write(compiled.join("README"), "not an engine folder").unwrap();

    let s = Server::start_in(dir.path(), &[]);
    assert!(!stale.exists(), "the stale engine folder is removed");
    assert!(current.exists() && compiled.join("README").exists());
    let (st, list) = s.get("/v1/functions").await;
    assert_eq!(st, 200);
    assert_eq!(list["functions"][0]["hash"], hash);
    let (st, rec) = s.get(&format!("/v1/activations/{act}")).await;
    assert_eq!(st, 200, "{rec}");
    assert_eq!(rec["result"], "Hello, before!");
    let (st, out) = s.call(&hash, "greet", json!({"name": "after"})).await;
    assert_eq!((st, out["result"].as_str()), (200, Some("Hello, after!")));
    // Loaded from the compiled-artifact cache, not compiled again.
    assert_eq!(
        s.metric("orb_compile_cache_hits_total{source=\"disk\"}")
            .await,
        1.0
    );
    assert_eq!(s.metric("orb_compile_cache_misses_total").await, 0.0);
    assert_eq!(s.activations(&hash).await.len(), 2);
}

fn orb(args: &[&str]) -> (bool, String, String) {
    orb_t("", args)
}

#[tokio::test]
async fn cli_hash_first_flow_with_a_wasm_path() {
    let s = Server::start(&[]);
    let path = guest_path("hello");
    let path = path.to_str().unwrap();
    let hash = orb_core::FunctionId::of(&guest("hello")).to_string();

    let (ok, out, _) = orb(&["hash", path]);
    assert!(ok);
    assert_eq!(out.trim(), hash);

    // First call: the server answers function_not_found, the CLI uploads and retries.
    let (ok, out, err) = orb_t(
        &s.token,
        &["invoke", path, "greet", "name=Ada", "--server", &s.url],
    );
    assert!(ok, "{err}");
    assert_eq!(out.trim(), "Hello, Ada!");
    assert!(err.contains("uploading"), "{err}");
    // Second call: hash only, no upload.
    let (ok, out, err) = orb_t(
        &s.token,
        &[
            "invoke",
            path,
            "greet",
            "name=Bob",
            "--server",
            &s.url,
            "--globals",
            r#"{"greeting":"Hi"}"#,
        ],
    );
    assert!(ok, "{err}");
    assert_eq!(out.trim(), "Hi, Bob!");
    assert!(!err.contains("uploading"), "{err}");
    assert_eq!(s.metric("orb_function_uploads_total").await, 1.0);

    // By hash, JSON output.
    let (ok, out, err) = orb_t(
        &s.token,
        &[
            "invoke",
            &hash,
            "greet",
            "--params",
            r#"{"name":"J"}"#,
            "--server",
            &s.url,
            "--json",
        ],
    );
    assert!(ok, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["result"], "Hello, J!");

    // Errors: stable code on stderr, non-zero exit.
    let (ok, _, err) = orb_t(
        &s.token,
        &["invoke", &hash, "greet", "nom=x", "--server", &s.url],
    );
    assert!(!ok);
    assert!(err.contains("error[invalid_params]"), "{err}");

    let (ok, out, _) = orb_t(&s.token, &["fn", "ls", "--server", &s.url, "--json"]);
    assert!(ok);
    assert!(out.contains(&hash));
    let (ok, out, _) = orb_t(&s.token, &["act", "ls", "--server", &s.url]);
    assert!(ok);
    assert_eq!(out.lines().count(), 3, "{out}");
}

#[test]
fn cli_local_runs_without_a_server() {
    let cache = tempfile::tempdir().unwrap();
    let path = guest_path("calc");
    let (ok, out, err) = orb(&[
        "invoke",
        path.to_str().unwrap(),
        "add",
        "a=20",
        "b:=22",
        "--local",
        "--cache-dir",
        cache.path().to_str().unwrap(),
        // Nothing listens here: --local must not need it.
        "--server",
        "http://127.0.0.1:9",
    ]);
    assert!(ok, "{err}");
    assert_eq!(out.trim(), "42");
    let (ok, _, err) = orb(&[
        "invoke",
        path.to_str().unwrap(),
        "add",
        "a=1",
        "--local",
        "--cache-dir",
        cache.path().to_str().unwrap(),
    ]);
    assert!(!ok);
    assert!(err.contains("invalid_params"), "{err}");
}

#[tokio::test]
async fn python_and_javascript_components_take_named_parameters() {
    let s = Server::start(&[]);
    let py = s.deploy("py-hello").await;
    let (st, out) = s.call(&py, "greet", json!({"name": "Ada"})).await;
    assert_eq!(st, 200, "{out}");
    assert_eq!(out["result"], "Hello, Ada! (from Python)");
    let (st, out) = s
        .call(
            &py,
            "word-count",
            json!({"text": "a bb ccc dddd", "min-len": 3}),
        )
        .await;
    assert_eq!((st, out["result"].as_u64()), (200, Some(2)), "{out}");
    let (st, body) = s.call(&py, "word-count", json!({"text": "x"})).await;
    assert_error(st, &body, 400, "invalid_params");

    let js = s.deploy("js-hello").await;
    let (st, out) = s.call(&js, "greet", json!({"name": "Ada"})).await;
    assert_eq!(st, 200, "{out}");
    assert_eq!(out["result"], "Hello, Ada! (from JavaScript)");
    let (st, out) = s.call(&js, "sum", json!({"values": [1.5, 2.5, 3]})).await;
    assert_eq!((st, out["result"].as_f64()), (200, Some(7.0)), "{out}");
}

#[tokio::test]
async fn sigterm_lets_in_flight_calls_finish() {
    let mut s = Server::start(&["--timeout", "2s"]);
    let hash = s.deploy("misbehave").await;
    let call = {
        let (http, url, bearer) = (s.http.clone(), s.url.clone(), s.bearer());
        tokio::spawn(async move {
            let r = http
                .post(format!("{url}/v1/functions/{hash}/spin"))
                .header("authorization", bearer)
                .json(&json!({}))
                .send()
                .await
                .unwrap();
            decode(r).await
        })
    };
    s.wait_in_flight(1.0).await;
    s.terminate();
    // The in-flight call still gets its answer, then the node exits cleanly.
    let (st, body) = call.await.unwrap();
    assert_error(st, &body, 422, "function_timeout");
    assert!(s.wait().success());
}

#[test]
fn orb_up_deploys_the_examples_and_prints_how_to_call_them() {
    use std::io::{BufRead, BufReader};
    let data = tempfile::tempdir().unwrap();
    let examples = tempfile::tempdir().unwrap();
    std::fs::copy(guest_path("hello"), examples.path().join("hello.wasm")).unwrap();
    let mut child = Command::new(orb_bin())
        .args(["up", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(data.path())
        .arg("--examples")
        .arg(examples.path())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut printed = String::new();
    for line in BufReader::new(child.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        printed.push_str(&line);
        printed.push('\n');
        if line.starts_with("orb listening on ") {
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    let hash = orb_core::FunctionId::of(&guest("hello")).to_string();
    assert!(printed.contains(&format!("hello  {hash}")), "{printed}");
    assert!(
        printed.contains("greet(name: string) -> string"),
        "{printed}"
    );
    assert!(
        printed.contains(&format!("/v1/functions/{hash}/greet?name=Ada")),
        "{printed}"
    );
}
