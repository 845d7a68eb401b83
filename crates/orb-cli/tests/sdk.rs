//! The Rust SDK (`orb-client`) against a real `orb serve`: the same
//! component gives the same results Local, Remote and Auto; Auto falls back
//! to local execution when the node is unreachable and uses it when it is
//! up; errors carry the server's codes; hash-first uploads once.

mod common;
use common::*;
use orb_client::{CallOptions, Client, ClientError, ErrorCode, Execution, FunctionId};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::time::Duration;

/// A loopback port nothing listens on.
fn closed_port_url() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    drop(l);
    format!("http://127.0.0.1:{port}")
}

fn client(s: &Server, local: &std::path::Path) -> Client {
    Client::connect(&s.url, &s.token)
        .unwrap()
        .with_local(local)
        .unwrap()
}

/// `calc.add(1, 2)` with the client's own execution policy.
async fn add_1_2(c: &Client, calc: &[u8]) -> Result<orb_client::Invocation, ClientError> {
    c.invoke(calc, "add", json!({"a": 1, "b": 2}), CallOptions::default())
        .await
}

#[derive(Serialize)]
struct AddParams {
    a: i32,
    b: i32,
}

#[derive(Debug, Deserialize, PartialEq)]
struct Summary {
    count: u32,
    mean: f64,
    min: f64,
    max: f64,
}

/// Every call a script makes, in order, with its result.
async fn calc_script(c: &Client, calc: &[u8], exec: Execution) -> Vec<Value> {
    let mut out = Vec::new();
    for (export, params) in [
        ("add", json!({"a": 2, "b": 40})),
        ("divide", json!({"a": 1.0, "b": 0.0})),
        ("divide", json!({"a": 9.0, "b": 3.0})),
        ("stats", json!({"values": [3.0, 1.0, 2.0]})),
        ("stats", json!({"values": []})),
        ("classify", json!({"n": -7})),
        ("area", json!({"s": {"rect": [2.0, 3.5]}})),
    ] {
        let inv = c
            .call(calc, export)
            .params(&params)
            .execution(exec)
            .invoke()
            .await
            .unwrap_or_else(|e| panic!("{exec:?} {export}: {e}"));
        assert_eq!(inv.local, exec == Execution::Local, "{exec:?} {inv:?}");
        out.push(inv.result);
    }
    // Typed: parameters from a struct, the result into a struct.
    let sum: i32 = c
        .call(calc, "add")
        .params(&AddParams { a: 40, b: 2 })
        .execution(exec)
        .send()
        .await
        .unwrap();
    out.push(json!(sum));
    let s: Option<Summary> = c
        .call(calc, "stats")
        .param("values", &[4.0, 8.0])
        .execution(exec)
        .send()
        .await
        .unwrap();
    let s = s.unwrap();
    out.push(json!([s.count, s.mean, s.min, s.max]));
    out
}

/// A namespace-using script: `set`, guest reads and writes, read-modify-write,
/// `write_to`, listing.
async fn kv_script(c: &Client, kv: &[u8], ns: &str, exec: Execution) -> Vec<Value> {
    let call = |export: &'static str| c.call(kv, export).namespace(ns).execution(exec);
    let mut out = Vec::new();
    out.push(
        call("get")
            .param("key", "greeting")
            .set("greeting", "hello")
            .invoke()
            .await
            .unwrap()
            .result,
    );
    call("put")
        .param("key", "n")
        .param("value", "41")
        .invoke()
        .await
        .unwrap();
    for _ in 0..3 {
        out.push(
            call("counter")
                .write_to("last")
                .invoke()
                .await
                .unwrap()
                .result,
        );
    }
    out.push(
        call("get")
            .param("key", "last")
            .invoke()
            .await
            .unwrap()
            .result,
    );
    out.push(call("get").param("key", "n").invoke().await.unwrap().result);
    out.push(
        call("incr")
            .param("delta", &5)
            .invoke()
            .await
            .unwrap()
            .result,
    );
    out.push(call("keys").invoke().await.unwrap().result);
    out.push(
        call("exists")
            .param("key", "nope")
            .invoke()
            .await
            .unwrap()
            .result,
    );
    out
}

#[tokio::test]
async fn the_same_component_gives_the_same_results_local_remote_and_auto() {
    let s = Server::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let c = client(&s, dir.path());
    let calc = guest("calc");
    let remote = calc_script(&c, &calc, Execution::Remote).await;
    let local = calc_script(&c, &calc, Execution::Local).await;
    let auto = calc_script(&c, &calc, Execution::Auto).await;
    assert_eq!(remote, local);
    assert_eq!(remote, auto);
    assert_eq!(remote[0], json!(42));
    assert_eq!(remote[1], json!({"err": "division by zero"}));
    assert_eq!(remote[3]["count"], 3);

    // wasi:keyvalue through a namespace: the server's, or the local store's.
    let kv = guest("kv");
    let remote = kv_script(&c, &kv, "sdk-remote", Execution::Remote).await;
    let local = kv_script(&c, &kv, "sdk-local", Execution::Local).await;
    let auto = kv_script(&c, &kv, "sdk-auto", Execution::Auto).await;
    assert_eq!(remote, local);
    assert_eq!(remote, auto);
    assert_eq!(remote[0], json!("\"hello\""));
    assert_eq!(&remote[1..4], &[json!(1), json!(2), json!(3)]);
    assert_eq!(remote[4], json!("3"), "write_to stored the last result");
    // Where the state went: the remote runs wrote to the server, the local
    // run to the local store, and neither saw the other's namespace.
    assert_eq!(c.kv_get("sdk-remote", "last").await.unwrap(), json!(3));
    assert_eq!(c.kv_get("sdk-auto", "counter").await.unwrap(), json!(3));
    let err = c.kv_get("sdk-local", "last").await.unwrap_err();
    assert_eq!(err.code(), Some(ErrorCode::KeyNotFound), "{err}");
    let runner = c.local().unwrap();
    assert_eq!(
        runner.kv_get("sdk-local", "last").await.unwrap(),
        Some(json!(3))
    );
    assert_eq!(runner.kv_get("sdk-remote", "last").await.unwrap(), None);
    let export = runner.ns_export("sdk-local").await.unwrap();
    assert_eq!(export["keys"]["n"], json!(41));
}

#[tokio::test]
async fn auto_falls_back_to_local_when_the_node_is_unreachable() {
    let dir = tempfile::tempdir().unwrap();
    let calc = guest("calc");
    let kv = guest("kv");

    // Nothing listens: Remote fails with a typed transport error, Auto runs locally.
    let down = Client::connect(&closed_port_url(), "no-token")
        .unwrap()
        .with_local(dir.path().join("a"))
        .unwrap();
    let err = add_1_2(&down, &calc).await.unwrap_err();
    assert!(matches!(err, ClientError::Unreachable { .. }), "{err:?}");
    assert!(err.is_unreachable());
    let down = down.with_execution(Execution::Auto);
    let inv = add_1_2(&down, &calc).await.unwrap();
    assert!(inv.local);
    assert_eq!(inv.result, json!(3));
    assert!(inv.activation.starts_with("local-"), "{inv:?}");
    // Once the bytes were seen, the local store runs the hash alone too.
    let id = FunctionId::of(&calc);
    let sum: i32 = down
        .call(&id, "add")
        .params(&AddParams { a: 5, b: 5 })
        .send()
        .await
        .unwrap();
    assert_eq!(sum, 10);
    // Without a local runner Auto has nowhere to go: the transport error stays.
    let bare = Client::connect(&closed_port_url(), "t")
        .unwrap()
        .with_execution(Execution::Auto);
    let err = add_1_2(&bare, &calc).await.unwrap_err();
    assert!(err.is_unreachable(), "{err:?}");

    // A node that is up is used; when it goes away, Auto runs locally, and
    // the local namespace writes stay local (no sync when it is back).
    let data = tempfile::tempdir().unwrap();
    let s = Server::start_in(data.path(), &[]);
    let token = s.token.clone();
    let c = Client::connect(&s.url, &token)
        .unwrap()
        .with_local(dir.path().join("b"))
        .unwrap()
        .with_execution(Execution::Auto);
    let counter = |c: &Client| {
        let c = c.clone();
        let kv = kv.clone();
        async move {
            c.call(&kv, "counter")
                .namespace("home")
                .invoke()
                .await
                .unwrap()
        }
    };
    let first = counter(&c).await;
    assert!(!first.local);
    assert_eq!(first.result, json!(1));
    assert_eq!(c.local().unwrap().calls(), 0);
    let url = s.url.clone();
    assert!(s.stop().success());
    let offline = counter(&c).await;
    assert!(offline.local, "{offline:?}");
    assert_eq!(offline.result, json!(1), "the local namespace starts empty");
    assert_eq!(counter(&c).await.result, json!(2));
    assert_eq!(c.local().unwrap().calls(), 2);
    // The node is back (same data dir; a new port): remote again, with the
    // server's own state — the local writes were not synchronised.
    let s = Server::start_in(data.path(), &[]);
    assert_ne!(s.url, url);
    let c = Client::connect(&s.url, &token)
        .unwrap()
        .with_local_runner(c.local().unwrap().clone())
        .with_execution(Execution::Auto);
    let back = counter(&c).await;
    assert!(!back.local);
    assert_eq!(back.result, json!(2));
    assert_eq!(
        c.local().unwrap().kv_get("home", "counter").await.unwrap(),
        Some(json!(2))
    );
}

#[tokio::test]
async fn errors_are_typed_with_the_servers_codes_remote_and_local() {
    let s = Server::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let c = client(&s, dir.path());
    let calc = guest("calc");
    for exec in [Execution::Remote, Execution::Local] {
        let e = c
            .call(&calc, "add")
            .param("a", &1)
            .execution(exec)
            .invoke()
            .await
            .unwrap_err();
        assert_eq!(e.code(), Some(ErrorCode::InvalidParams), "{exec:?} {e}");
        assert_eq!(e.status(), Some(400));
        assert_eq!(e.orb_error().unwrap().details["param"], "b", "{e:?}");
        let e = c
            .call(&calc, "nope")
            .execution(exec)
            .invoke()
            .await
            .unwrap_err();
        assert_eq!(e.code(), Some(ErrorCode::ExportNotFound), "{exec:?} {e}");
        assert_eq!(e.status(), Some(404));
        // A result that does not fit the type asked for.
        let e = c
            .call(&calc, "add")
            .params(&AddParams { a: 1, b: 1 })
            .execution(exec)
            .send::<String>()
            .await
            .unwrap_err();
        assert!(matches!(e, ClientError::Serde { .. }), "{e:?}");
    }
    // A guest trap is the function's fault: 422, remote and local alike.
    let kv = guest("kv");
    for exec in [Execution::Remote, Execution::Local] {
        let e = c
            .call(&kv, "counter")
            .execution(exec)
            .invoke()
            .await
            .unwrap_err();
        // No namespace named: the guest's open fails and it traps.
        assert_eq!(e.code(), Some(ErrorCode::FunctionTrap), "{exec:?} {e}");
        assert_eq!(e.status(), Some(422));
    }
    // Token and whitelist codes come from the server.
    let bad = Client::connect(&s.url, "garbage").unwrap();
    let e = bad
        .invoke(
            &calc,
            "add",
            json!({"a": 1, "b": 1}),
            CallOptions::default(),
        )
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::TokenInvalid), "{e}");
    assert_eq!(e.status(), Some(401));
    let public = s
        .mint(&json!({"namespaces": {"home": "rw"}, "upload": true}))
        .await;
    let device = Client::connect(&s.url, &public).unwrap();
    let e = device
        .call(&kv, "counter")
        .namespace("home")
        .invoke()
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::CodeNotWhitelisted), "{e}");
    assert_eq!(e.status(), Some(403));
    // An alias cannot run locally.
    let e = c
        .call("no-such-alias", "add")
        .execution(Execution::Local)
        .invoke()
        .await
        .unwrap_err();
    assert!(matches!(e, ClientError::LocalUnavailable { .. }), "{e:?}");
    let e = c.call("no-such-alias", "add").invoke().await.unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::AliasNotFound), "{e}");
}

#[tokio::test]
async fn hash_first_uploads_once_then_calls_by_hash() {
    let s = Server::start(&[]);
    // A fresh account owns nothing yet.
    let admin = Client::connect(&s.url, &s.token).unwrap();
    let account = admin.create_account("sdk").await.unwrap();
    let c = Client::connect(&s.url, account["token"].as_str().unwrap()).unwrap();
    let calc = guest("calc");
    let id = FunctionId::of(&calc);
    assert!(!c.is_known(&id));
    for n in 0..3 {
        let sum: i32 = c
            .invoke_typed(&calc, "add", &AddParams { a: n, b: 1 })
            .await
            .unwrap();
        assert_eq!(sum, n + 1);
    }
    assert_eq!(c.uploads(), 1);
    assert!(c.is_known(&id));
    // By path: hashed once, known, no upload; by hash: no bytes needed.
    let path = guest_path("calc");
    for _ in 0..2 {
        let inv = c
            .invoke(
                &path,
                "add",
                json!({"a": 1, "b": 1}),
                CallOptions::default(),
            )
            .await
            .unwrap();
        assert_eq!(inv.function, id);
    }
    c.invoke(&id, "add", json!({"a": 1, "b": 1}), CallOptions::default())
        .await
        .unwrap();
    assert_eq!(c.uploads(), 1);
    assert_eq!(c.deploy(&calc).await.unwrap(), id, "known: no upload");
    assert_eq!(c.uploads(), 1);
    let fns = c.list_functions().await.unwrap();
    assert_eq!(fns.len(), 1);
    assert_eq!(fns[0].hash, id);
    assert_eq!(s.metric("orb_function_uploads_total").await, 1.0);
    let calls = c.list_activations(Some(&id), 100).await.unwrap();
    assert_eq!(
        calls.len(),
        6,
        "the first call by hash was refused, not run"
    );
    // The server forgot it: the next call gets function_not_found, uploads, retries.
    c.delete_function(&id).await.unwrap();
    let sum: i32 = c
        .invoke_typed(&calc, "add", &AddParams { a: 2, b: 2 })
        .await
        .unwrap();
    assert_eq!(sum, 4);
    assert_eq!(c.uploads(), 2);
    // A hash alone cannot be uploaded: the server's code comes back.
    let other = FunctionId::of(b"not a component");
    let e = c
        .invoke(&other, "add", json!({}), CallOptions::default())
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some(ErrorCode::FunctionNotFound), "{e}");
}

#[tokio::test]
async fn async_calls_return_an_activation_to_wait_for() {
    let s = Server::start(&[]);
    let c = Client::connect(&s.url, &s.token).unwrap();
    let kv = guest("kv");
    // Hash-first for queued calls too: the first one uploads.
    let id = c
        .call(&kv, "counter")
        .namespace("jobs")
        .write_to("done")
        .spawn()
        .await
        .unwrap();
    assert_eq!(c.uploads(), 1);
    let a = c
        .wait_activation(&id, Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(a["status"], "succeeded", "{a}");
    assert_eq!(a["result"], json!(1));
    assert_eq!(c.kv_get("jobs", "done").await.unwrap(), json!(1));
    // Globals reach the guest through wasi:config, remote and local alike
    // (hello greets with the global `greeting`).
    let dir = tempfile::tempdir().unwrap();
    let c = c.with_local(dir.path()).unwrap();
    let hello = guest("hello");
    for exec in [Execution::Remote, Execution::Local] {
        let out: String = c
            .call(hello.clone(), "greet")
            .param("name", "Ada")
            .global("greeting", "Ahoy")
            .execution(exec)
            .send()
            .await
            .unwrap();
        assert_eq!(out, "Ahoy, Ada!", "{exec:?}");
    }
}
