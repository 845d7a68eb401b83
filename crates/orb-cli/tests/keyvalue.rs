//! Guests read and write the call's namespace through `wasi:keyvalue`;
//! calls are serializable (optimistic, re-run on conflict).

mod common;
use common::*;
use serde_json::{Value, json};

async fn call_ns(s: &Server, hash: &str, export: &str, params: Value, ns: &str) -> (u16, Value) {
    s.post_json(
        "/v1/invoke",
        &json!({"function": hash, "export": export, "params": params, "namespace": ns}),
    )
    .await
}

#[tokio::test]
async fn every_store_operation_from_a_rust_guest() {
    let s = Server::start(&[]);
    let kv = s.deploy("kv").await;
    let ok = |r: (u16, Value)| {
        assert_eq!(r.0, 200, "{}", r.1);
        r.1["result"].clone()
    };
    ok(call_ns(
        &s,
        &kv,
        "put",
        json!({"key": "a", "value": "\"alpha\""}),
        "t",
    )
    .await);
    assert_eq!(
        ok(call_ns(&s, &kv, "get", json!({"key": "a"}), "t").await),
        "\"alpha\""
    );
    assert_eq!(
        ok(call_ns(&s, &kv, "exists", json!({"key": "a"}), "t").await),
        true
    );
    assert_eq!(
        ok(call_ns(&s, &kv, "get", json!({"key": "zz"}), "t").await),
        Value::Null
    );
    ok(call_ns(
        &s,
        &kv,
        "put-many",
        json!({"pairs": [["b", "2"], ["c", "{\"x\":3}"]]}),
        "t",
    )
    .await);
    assert_eq!(
        ok(call_ns(
            &s,
            &kv,
            "get-many",
            json!({"keys": ["b", "c", "nope"]}),
            "t"
        )
        .await),
        json!(["2", "{\"x\":3}", null])
    );
    assert_eq!(
        ok(call_ns(&s, &kv, "keys", json!({}), "t").await),
        json!(["a", "b", "c"])
    );
    ok(call_ns(&s, &kv, "del", json!({"key": "b"}), "t").await);
    assert_eq!(
        ok(call_ns(&s, &kv, "exists", json!({"key": "b"}), "t").await),
        false
    );
    assert_eq!(
        ok(call_ns(&s, &kv, "incr", json!({"delta": 5}), "t").await),
        5
    );
    assert_eq!(
        ok(call_ns(&s, &kv, "incr", json!({"delta": 2}), "t").await),
        7
    );
    // The guest's writes are the namespace's values over HTTP.
    assert_eq!(s.get("/v1/namespaces/t/keys/c").await.1, json!({"x": 3}));
    assert_eq!(s.get("/v1/namespaces/t/keys/atomic").await.1, json!(7));
    // And HTTP writes are what the guest reads.
    s.http
        .put(format!("{}/v1/namespaces/t/keys/h", s.url))
        .bearer_auth(&s.token)
        .json(&json!([1, 2]))
        .send()
        .await
        .unwrap();
    assert_eq!(
        ok(call_ns(&s, &kv, "get", json!({"key": "h"}), "t").await),
        "[1,2]"
    );

    // Another bucket: the admin's private token may name any of its
    // namespaces, so the guest may open it; a name no namespace can have is
    // no such store. (Public tokens: `other_buckets_follow_the_token`.)
    assert_eq!(
        ok(call_ns(&s, &kv, "open", json!({"name": "other"}), "t").await),
        json!({"ok": "opened"})
    );
    assert_eq!(
        ok(call_ns(&s, &kv, "open", json!({"name": "Not Valid!"}), "t").await),
        json!({"err": "no-such-store"})
    );
    assert_eq!(
        ok(call_ns(&s, &kv, "open", json!({"name": "t"}), "t").await),
        json!({"ok": "opened"})
    );
    // No namespace: a clear error (the guest turns it into a trap).
    let (st, body) = s.call(&kv, "get", json!({"key": "a"})).await;
    let e = assert_error(st, &body, 422, "function_trap");
    let act = e["details"]["activation"].as_str().unwrap();
    let logs = s.get(&format!("/v1/activations/{act}")).await.1["logs"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(logs.contains("names no namespace"), "{logs}");
    // A value is bytes: text that is not JSON is stored as it is, and the
    // API serves it raw.
    let (st, body) = call_ns(
        &s,
        &kv,
        "put-many",
        json!({"pairs": [["plain", "1"], ["text", "not json"]]}),
        "t",
    )
    .await;
    assert_eq!(st, 200, "{body}");
    let r = s
        .http
        .get(format!("{}/v1/namespaces/t/keys/text", s.url))
        .bearer_auth(&s.token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["content-type"], "application/octet-stream");
    assert_eq!(r.bytes().await.unwrap().as_ref(), b"not json");
    // A value over max_value_bytes is refused and nothing of that call is written.
    let big = "x".repeat((1 << 20) + 1);
    let (st, body) = call_ns(
        &s,
        &kv,
        "put-many",
        json!({"pairs": [["good", "1"], ["bad", big]]}),
        "t",
    )
    .await;
    assert_error(st, &body, 422, "function_trap");
    let logs = s.logs_of(&body).await;
    assert!(logs.contains("values are at most 1048576 bytes"), "{logs}");
    assert_eq!(s.get("/v1/namespaces/t/keys/good").await.0, 404);
}

#[tokio::test]
async fn set_and_write_to_modes() {
    let s = Server::start(&[]);
    let kv = s.deploy("kv").await;
    // `set`: written before the function runs, visible to it, persisted.
    let (st, out) = s
        .post_json(
            "/v1/invoke",
            &json!({"function": kv, "export": "get", "params": {"key": "reading"}, "namespace": "home",
                    "set": {"reading": {"celsius": 19}}, "write_to": "echo"}),
        )
        .await;
    assert_eq!(st, 200, "{out}");
    assert_eq!(out["result"], "{\"celsius\":19}");
    assert_eq!(
        s.get("/v1/namespaces/home/keys/reading").await.1,
        json!({"celsius": 19})
    );
    // `write_to`: the return value stored under the key.
    assert_eq!(
        s.get("/v1/namespaces/home/keys/echo").await.1,
        json!("{\"celsius\":19}")
    );
    let (st, body) = s
        .post_json(
            "/v1/invoke",
            &json!({"function": kv, "export": "counter", "write_to": "x"}),
        )
        .await;
    assert_error(st, &body, 400, "invalid_request");
}

#[tokio::test]
async fn a_hundred_concurrent_read_modify_writes_all_land() {
    let s = std::sync::Arc::new(Server::start(&[]));
    let kv = s.deploy("kv").await;
    for export in ["counter", "incr"] {
        let mut tasks = Vec::new();
        for _ in 0..100 {
            let (s, kv) = (s.clone(), kv.clone());
            let params = if export == "incr" {
                json!({"delta": 1})
            } else {
                json!({})
            };
            tasks.push(tokio::spawn(async move {
                call_ns(&s, &kv, export, params, "race").await
            }));
        }
        let mut seen = Vec::new();
        for t in tasks {
            let (st, out) = t.await.unwrap();
            assert_eq!(st, 200, "{out}");
            seen.push(out["result"].as_u64().unwrap());
        }
        seen.sort();
        // Serializable: every call saw a distinct value, 1..=100.
        assert_eq!(seen, (1..=100).collect::<Vec<u64>>(), "{export}");
    }
    assert_eq!(
        s.get("/v1/namespaces/race/keys/counter").await.1,
        json!(100)
    );
    assert_eq!(s.get("/v1/namespaces/race/keys/atomic").await.1, json!(100));
}

#[tokio::test]
async fn python_guest_uses_the_namespace_and_read_only_tokens_cannot_write() {
    let s = Server::start(&[]);
    let py = s.deploy("py-kv").await;
    for want in 1..=3u64 {
        let (st, out) = call_ns(&s, &py, "counter", json!({}), "py").await;
        assert_eq!((st, out["result"].as_u64()), (200, Some(want)), "{out}");
    }
    let (st, out) = call_ns(&s, &py, "put", json!({"key": "k", "value": "\"v\""}), "py").await;
    assert_eq!(st, 200, "{out}");
    assert_eq!(s.get("/v1/namespaces/py/keys/k").await.1, "v");

    // A public token with read access runs whitelisted code that reads, but its writes are denied.
    s.whitelist("py", &[&py]).await;
    let reader = s
        .post_json("/v1/tokens", &json!({"namespaces": {"py": "r"}}))
        .await
        .1["token"]
        .as_str()
        .unwrap()
        .to_string();
    let call = |export: &str, params: Value| json!({"function": py, "export": export, "params": params, "namespace": "py"});
    let (st, out) = s
        .post_json_as(
            "/v1/invoke",
            &call("get", json!({"key": "k"})),
            Some(&reader),
        )
        .await;
    assert_eq!((st, out["result"].clone()), (200, json!("\"v\"")), "{out}");
    let (st, body) = s
        .post_json_as(
            "/v1/invoke",
            &call("put", json!({"key": "k", "value": "1"})),
            Some(&reader),
        )
        .await;
    assert_error(st, &body, 422, "function_trap");
    let logs = s.logs_of(&body).await;
    assert!(
        logs.contains("AccessDenied")
            || logs.contains("access-denied")
            || logs.contains("access_denied"),
        "{logs}"
    );
    assert_eq!(s.get("/v1/namespaces/py/keys/k").await.1, "v");
}

#[tokio::test]
async fn globals_are_joined_with_the_namespace_for_wasi_config() {
    let s = Server::start(&[]);
    let hello = s.deploy("hello").await;
    s.http
        .put(format!("{}/v1/namespaces/home/keys/greeting", s.url))
        .bearer_auth(&s.token)
        .json(&json!("Howdy"))
        .send()
        .await
        .unwrap();
    // The namespace answers what the globals do not…
    let (st, out) = call_ns(&s, &hello, "greet", json!({"name": "Ada"}), "home").await;
    assert_eq!(
        (st, out["result"].clone()),
        (200, json!("Howdy, Ada!")),
        "{out}"
    );
    // …globals come first…
    let (st, out) = s
        .post_json(
            "/v1/invoke",
            &json!({"function": hello, "export": "greet", "params": {"name": "Ada"}, "namespace": "home", "globals": {"greeting": "Hi"}}),
        )
        .await;
    assert_eq!(
        (st, out["result"].clone()),
        (200, json!("Hi, Ada!")),
        "{out}"
    );
    // …and globals are never persisted.
    assert_eq!(
        s.get("/v1/namespaces/home/keys/greeting").await.1,
        json!("Howdy")
    );
    // Without a namespace only globals count.
    assert_eq!(
        s.call(&hello, "greet", json!({"name": "Ada"})).await.1["result"],
        "Hello, Ada!"
    );
}

// --- wasi:keyvalue@0.2.0-draft2 (Spin's) -----------------------------------

#[tokio::test]
async fn draft2_compare_and_swap_increment_and_cursor() {
    let s = std::sync::Arc::new(Server::start(&[]));
    let kv2 = s.deploy("kv2").await;
    let ok = |r: (u16, Value)| {
        assert_eq!(r.0, 200, "{}", r.1);
        r.1["result"].clone()
    };
    // 100 concurrent compare-and-swap counters all land, each seeing a distinct value.
    let mut tasks = Vec::new();
    for _ in 0..100 {
        let (s, kv2) = (s.clone(), kv2.clone());
        tasks.push(tokio::spawn(async move {
            call_ns(&s, &kv2, "cas-counter", json!({}), "cas").await
        }));
    }
    let mut seen = Vec::new();
    for t in tasks {
        seen.push(ok(t.await.unwrap()).as_i64().unwrap());
    }
    seen.sort();
    assert_eq!(seen, (1..=100).collect::<Vec<i64>>());
    assert_eq!(s.get("/v1/namespaces/cas/keys/counter").await.1, json!(100));

    // A swap after the call itself changed the key fails with a fresh handle.
    assert_eq!(
        ok(call_ns(&s, &kv2, "cas-stale", json!({"key": "s"}), "cas").await),
        "cas-failed:\"changed\""
    );
    // Signed increment: below zero is fine in draft2.
    assert_eq!(
        ok(call_ns(&s, &kv2, "incr", json!({"delta": -3}), "cas").await),
        -3
    );
    assert_eq!(
        ok(call_ns(&s, &kv2, "incr", json!({"delta": 5}), "cas").await),
        2
    );

    // The string cursor pages through more keys than one page (1000).
    let pairs: serde_json::Map<String, Value> =
        (0..1500).map(|i| (format!("k{i:04}"), json!(i))).collect();
    let (st, body) = s
        .post_json("/v1/namespaces/many/import", &json!({"keys": pairs}))
        .await;
    assert_eq!(st, 200, "{body}");
    let keys = ok(call_ns(&s, &kv2, "keys", json!({"bucket": ""}), "many").await);
    let keys = keys["ok"].as_array().unwrap();
    assert_eq!(keys.len(), 1500);
    assert_eq!(
        (keys[0].as_str(), keys[1499].as_str()),
        (Some("k0000"), Some("k1499"))
    );
    ok(call_ns(
        &s,
        &kv2,
        "del-many",
        json!({"keys": ["k0000", "k0001"]}),
        "many",
    )
    .await);
    let (_, list) = s.get("/v1/namespaces").await;
    let many = list["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["name"] == "many")
        .cloned();
    assert_eq!(many.map(|n| n["keys"].clone()), Some(json!(1498)), "{list}");
}

#[tokio::test]
async fn other_buckets_follow_the_token() {
    let s = Server::start(&[]);
    let kv2 = s.deploy("kv2").await;
    s.put_json_as(
        "/v1/namespaces/shared/keys/x",
        &json!("from shared"),
        Some(&s.token),
    )
    .await;
    // A private token: its own other namespace opens, reads and writes, and
    // the write commits atomically with the call.
    let (st, out) = call_ns(
        &s,
        &kv2,
        "put-into",
        json!({"bucket": "shared", "key": "y", "value": "7"}),
        "home",
    )
    .await;
    assert_eq!((st, &out["result"]), (200, &json!({"ok": null})), "{out}");
    assert_eq!(s.get("/v1/namespaces/shared/keys/y").await.1, json!(7));

    // Public tokens: only namespaces their grant names, for whitelisted code.
    for ns in ["home", "shared"] {
        s.whitelist(ns, &[&kv2]).await;
    }
    let home_only = s.mint(&json!({"namespaces": {"home": "rw"}})).await;
    let read_shared = s
        .mint(&json!({"namespaces": {"home": "rw", "shared": "r"}}))
        .await;
    let call = |export: &str, params: Value| json!({"function": kv2, "export": export, "params": params, "namespace": "home"});
    let get_x = call("get-from", json!({"bucket": "shared", "key": "x"}));
    let put_z = call(
        "put-into",
        json!({"bucket": "shared", "key": "z", "value": "1"}),
    );
    let (st, out) = s.post_json_as("/v1/invoke", &get_x, Some(&home_only)).await;
    assert_eq!(
        (st, &out["result"]),
        (200, &json!({"err": "access-denied"})),
        "{out}"
    );
    let (st, out) = s
        .post_json_as("/v1/invoke", &get_x, Some(&read_shared))
        .await;
    assert_eq!(
        (st, &out["result"]),
        (200, &json!({"ok": "\"from shared\""})),
        "{out}"
    );
    let (st, out) = s
        .post_json_as("/v1/invoke", &put_z, Some(&read_shared))
        .await;
    assert_eq!(
        (st, &out["result"]),
        (200, &json!({"err": "access-denied"})),
        "{out}"
    );
    assert_eq!(s.get("/v1/namespaces/shared/keys/z").await.0, 404);

    // Not whitelisted in the other namespace: denied even though the grant names it.
    s.whitelist("shared", &[]).await;
    let (st, out) = s
        .post_json_as("/v1/invoke", &get_x, Some(&read_shared))
        .await;
    assert_eq!(
        (st, &out["result"]),
        (200, &json!({"err": "access-denied"})),
        "{out}"
    );
}
