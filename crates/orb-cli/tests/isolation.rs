//! A misbehaving function fails alone: loops, memory bombs, traps, log
//! floods and fuel are answered with 422 codes while the node keeps serving.

mod common;
use common::*;
use serde_json::json;
use std::time::Instant;

#[tokio::test]
async fn infinite_loop_times_out_while_the_node_serves_others() {
    let s = std::sync::Arc::new(Server::start(&["--timeout", "2s"]));
    let hash = s.deploy("misbehave").await;
    let started = Instant::now();
    let spinner = {
        let (s, hash) = (s.clone(), hash.clone());
        tokio::spawn(async move { s.call(&hash, "spin", json!({})).await })
    };
    // During the loop, other calls are answered.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    for i in 0..5u32 {
        let (st, out) = s.call(&hash, "add", json!({"a": i, "b": 1})).await;
        assert_eq!(st, 200, "{out}");
        assert_eq!(out["result"], i + 1);
    }
    assert!(!spinner.is_finished(), "the loop should still be running");
    let (st, body) = spinner.await.unwrap();
    let e = assert_error(st, &body, 422, "function_timeout");
    assert!(started.elapsed().as_secs_f64() >= 2.0);
    let act = e["details"]["activation"].as_str().unwrap();
    let (_, rec) = s.get(&format!("/v1/activations/{act}")).await;
    assert_eq!(rec["status"], "failed");
    assert_eq!(rec["error"]["code"], "function_timeout");
    // And after it.
    let (st, out) = s.call(&hash, "add", json!({"a": 2, "b": 2})).await;
    assert_eq!((st, out["result"].as_u64()), (200, Some(4)));
}

#[tokio::test]
async fn memory_bomb_trap_and_fuel_limits() {
    let s = Server::start(&[]);
    let hash = s.deploy("misbehave").await;

    let (st, body) = s.call(&hash, "bomb", json!({})).await;
    assert_error(st, &body, 422, "memory_limit");

    let (st, body) = s.call(&hash, "boom", json!({"msg": "kaboom-42"})).await;
    let e = assert_error(st, &body, 422, "function_trap");
    // The message names the trap itself; the backtrace stays in the details.
    let msg = e["message"].as_str().unwrap();
    assert!(msg.contains("`unreachable` instruction"), "{msg}");
    assert!(!msg.contains("wasm backtrace"), "{msg}");
    assert!(
        e["details"]["trap"].as_str().unwrap().contains("boom"),
        "{e}"
    );
    let act = e["details"]["activation"].as_str().unwrap();
    let (_, rec) = s.get(&format!("/v1/activations/{act}")).await;
    assert!(rec["logs"].as_str().unwrap().contains("kaboom-42"), "{rec}");

    // Each call gets a fresh instance: static state never leaks.
    for _ in 0..3 {
        assert_eq!(s.call(&hash, "count", json!({})).await.1["result"], 1);
    }

    let limited = Server::start(&["--fuel-limit", "1000000"]);
    let h2 = limited.deploy("misbehave").await;
    let (st, out) = limited.call(&h2, "add", json!({"a": 1, "b": 2})).await;
    assert_eq!(st, 200, "{out}");
    assert!(out["fuel"].as_u64().unwrap() < 1_000_000);
    let (st, body) = limited.call(&h2, "spin", json!({})).await;
    assert_error(st, &body, 422, "fuel_exhausted");
    // Still serving.
    assert_eq!(
        limited.call(&h2, "add", json!({"a": 1, "b": 2})).await.0,
        200
    );
}

#[tokio::test]
async fn a_ten_megabyte_print_is_capped_in_the_logs() {
    let s = Server::start(&[]);
    let hash = s.deploy("misbehave").await;
    let (st, out) = s.call(&hash, "spam", json!({"bytes": 10_000_000u64})).await;
    assert_eq!(st, 200, "{out}");
    assert_eq!(out["result"], 10_000_000u64);
    let act = out["activation"].as_str().unwrap();
    let (_, rec) = s.get(&format!("/v1/activations/{act}")).await;
    let logs = rec["logs"].as_str().unwrap();
    assert!(
        logs.len() <= 64 * 1024 + 200,
        "logs are {} bytes",
        logs.len()
    );
    assert!(logs.len() >= 60 * 1024, "logs are {} bytes", logs.len());
    assert!(
        logs.contains("log truncated"),
        "{}",
        &logs[logs.len() - 100..]
    );
    assert_eq!(rec["logs_truncated"], true);
}

#[tokio::test]
async fn guests_see_no_environment_files_or_stdin() {
    // The node itself has environment variables, a root file system and a stdin.
    let s = Server::start(&[]);
    let hash = s.deploy("misbehave").await;
    let (st, out) = s.call(&hash, "snoop", json!({})).await;
    assert_eq!(st, 200, "{out}");
    let lines: Vec<&str> = out["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap())
        .collect();
    assert_eq!(lines[0], "env: 0 vars", "{lines:?}");
    assert_eq!(lines[1], "args: 0", "{lines:?}");
    assert!(lines[2].starts_with("fs /: error"), "{lines:?}");
    assert!(lines[3].starts_with("passwd: error"), "{lines:?}");
    assert!(
        lines[4] == "stdin: 0 bytes" || lines[4].starts_with("stdin: error"),
        "{lines:?}"
    );
}
