//! Components written the way Spin and wasmCloud applications are, served as
//! HTTP functions with state: the `spin-http` guest (tests/guests/spin-http,
//! built by wit-bindgen from Spin's own `keyvalue-2024-10-17` and
//! `wasi-runtime-config-2024-09-27` WIT) behind aliases that bind a
//! namespace, against a real `orb serve`.

mod common;

use base64::Engine as _;
use common::*;
use serde_json::{Value, json};
use std::collections::BTreeSet;

/// Deploys `spin-http` and points alias `name` at it with namespace `ns`.
async fn bind(s: &Server, name: &str, ns: &str, public: bool) -> String {
    let hash = s.deploy("spin-http").await;
    let body = json!({ "function": hash, "namespace": ns, "public": public });
    let (st, out) = s
        .put_json_as(&format!("/v1/aliases/{name}"), &body, Some(&s.token))
        .await;
    assert_eq!(st, 200, "{out}");
    assert_eq!(out["namespace"], ns, "{out}");
    hash
}

/// `METHOD /http{path}` without a token: (status, body bytes).
async fn anon(s: &Server, method: &str, path: &str, body: Vec<u8>) -> (u16, Vec<u8>) {
    let r = s
        .http
        .request(
            reqwest::Method::from_bytes(method.as_bytes()).unwrap(),
            format!("{}/http{path}", s.url),
        )
        .body(body)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.bytes().await.unwrap().to_vec())
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A key's stored bytes through the API, asking for them raw.
async fn raw(s: &Server, ns: &str, key: &str) -> (u16, String, Vec<u8>) {
    let r = s
        .http
        .get(format!("{}/v1/namespaces/{ns}/keys/{key}", s.url))
        .bearer_auth(&s.token)
        .header("accept", "application/octet-stream")
        .send()
        .await
        .unwrap();
    let ct = r
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    (r.status().as_u16(), ct, r.bytes().await.unwrap().to_vec())
}

#[tokio::test]
async fn a_counter_opening_default_counts_across_requests_concurrency_and_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start_in(dir.path(), &[]);
    bind(&s, "counter", "visits", true).await;

    // 100 concurrent requests: each sees a distinct count, the last is 100.
    let mut tasks = Vec::new();
    for _ in 0..100 {
        let (http, url) = (s.http.clone(), format!("{}/http/counter/count", s.url));
        tasks.push(tokio::spawn(async move {
            let r = http.get(url).send().await.unwrap();
            let st = r.status().as_u16();
            (st, r.text().await.unwrap())
        }));
    }
    let mut seen = BTreeSet::new();
    for t in tasks {
        let (st, body) = t.await.unwrap();
        assert_eq!(st, 200, "{body}");
        seen.insert(body.parse::<u32>().unwrap());
    }
    assert_eq!(
        seen,
        (1..=100).collect::<BTreeSet<_>>(),
        "each run committed once"
    );
    let (st, v) = s.get("/v1/namespaces/visits/keys/count").await;
    assert_eq!(
        (st, v),
        (200, json!(100)),
        "decimal text is JSON to the API"
    );

    // One at a time, and across a restart.
    assert_eq!(
        anon(&s, "GET", "/counter/count", vec![]).await,
        (200, b"101".to_vec())
    );
    assert_eq!(s.stop().code(), Some(0));
    let s = Server::start_in(dir.path(), &[]);
    assert_eq!(
        anon(&s, "GET", "/counter/count", vec![]).await,
        (200, b"102".to_vec())
    );
    // With the owner's token the same alias and namespace.
    let r = s
        .http
        .get(format!("{}/http/counter/count", s.url))
        .bearer_auth(&s.token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.text().await.unwrap(), "103");
    // Every request left one activation (re-runs after a conflict included).
    let acts = s.get("/v1/activations?limit=1000").await.1;
    let n = acts["activations"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["result"]["path"] == "/count" && a["status"] == "succeeded")
        .count();
    assert_eq!(n, 103);
}

#[tokio::test]
async fn an_unbound_http_function_gets_a_clear_error_and_a_bound_one_can_be_unbound() {
    let s = Server::start(&[]);
    let hash = s.deploy("spin-http").await;
    let (st, _) = s
        .put_json_as(
            "/v1/aliases/c",
            &json!({"function": hash, "public": true}),
            Some(&s.token),
        )
        .await;
    assert_eq!(st, 200);
    let (st, body) = anon(&s, "GET", "/c/count", vec![]).await;
    assert_eq!(st, 500, "the guest answers its own error");
    assert!(
        text(&body).contains("names no namespace"),
        "{}",
        text(&body)
    );
    assert!(text(&body).contains("--ns"), "says how: {}", text(&body));
    // Bind, count, unbind (null), and the error is back.
    let (st, out) = s
        .put_json_as(
            "/v1/aliases/c",
            &json!({"function": hash, "namespace": "n1"}),
            Some(&s.token),
        )
        .await;
    assert_eq!(st, 200, "{out}");
    assert_eq!(
        anon(&s, "GET", "/c/count", vec![]).await,
        (200, b"1".to_vec())
    );
    let (st, out) = s
        .put_json_as(
            "/v1/aliases/c",
            &json!({"function": hash, "namespace": null}),
            Some(&s.token),
        )
        .await;
    assert_eq!(st, 200, "{out}");
    assert!(out.get("namespace").is_none(), "{out}");
    assert_eq!(anon(&s, "GET", "/c/count", vec![]).await.0, 500);
    // A bad namespace name is refused up front.
    let (st, out) = s
        .put_json_as(
            "/v1/aliases/c",
            &json!({"function": hash, "namespace": "Bad!"}),
            Some(&s.token),
        )
        .await;
    assert_error(st, &out, 400, "invalid_name");
}

#[tokio::test]
async fn spin_keyvalue_draft2_store_atomics_and_batch_behave_as_spins_wit_says() {
    let s = Server::start(&[]);
    bind(&s, "spin", "spin-kv", true).await;
    // Anonymous: "default" is the bound namespace, "forbidden" is denied.
    let (st, body) = anon(&s, "GET", "/spin/check", vec![]).await;
    assert_eq!((st, text(&body)), (200, "ok".to_string()));
    // It left the bucket empty, and it can run again.
    let (_, keys) = s.get("/v1/namespaces/spin-kv/keys").await;
    assert_eq!(keys["keys"], json!([]), "{keys}");
    let (st, body) = anon(&s, "GET", "/spin/check", vec![]).await;
    assert_eq!((st, text(&body)), (200, "ok".to_string()));

    // A public token: the bound namespace needs its grant and the whitelist;
    // "forbidden" is not in the grant, so it is denied as Spin expects.
    let hash = s.deploy("spin-http").await;
    let t = s.mint(&json!({"namespaces": {"spin-kv": "rw"}})).await;
    let call = |t: String| {
        let (http, url) = (s.http.clone(), format!("{}/http/spin/check", s.url));
        async move {
            let r = http.get(url).bearer_auth(t).send().await.unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        }
    };
    let (st, body) = call(t.clone()).await;
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_error(st, &body, 403, "code_not_whitelisted");
    s.whitelist("spin-kv", &[&hash]).await;
    assert_eq!(call(t).await, (200, "ok".to_string()));
    // A token without the namespace is refused before anything runs.
    let t = s.mint(&json!({"namespaces": {"other": "rw"}})).await;
    let (st, body) = call(t).await;
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_error(st, &body, 403, "permission_denied");
}

#[tokio::test]
async fn wasi_config_draft_2024_09_27_reads_globals_then_the_namespace() {
    let s = Server::start(&[]);
    let hash = bind(&s, "cfg", "settings", false).await;
    for (k, v) in [
        ("variable", json!("value")),
        ("limit", json!(5)),
        ("shared", json!("ns")),
    ] {
        let (st, out) = s
            .put_json_as(
                &format!("/v1/namespaces/settings/keys/{k}"),
                &v,
                Some(&s.token),
            )
            .await;
        assert_eq!(st, 200, "{out}");
    }
    // A call: globals first, then the namespace.
    let req = |export: &str, params: Value| {
        json!({"function": hash, "export": export, "params": params,
               "globals": {"shared": "global", "region": "eu"}, "namespace": "settings"})
    };
    let (st, out) = s
        .post_json("/v1/invoke", &req("config-all", json!({})))
        .await;
    assert_eq!(st, 200, "{out}");
    assert_eq!(
        out["result"],
        json!([
            ["limit", "5"],
            ["region", "eu"],
            ["shared", "global"],
            ["variable", "value"]
        ])
    );
    let (_, out) = s
        .post_json("/v1/invoke", &req("config-get", json!({"key": "variable"})))
        .await;
    assert_eq!(out["result"], "value");
    let (_, out) = s
        .post_json("/v1/invoke", &req("config-get", json!({"key": "shared"})))
        .await;
    assert_eq!(out["result"], "global");
    let (_, out) = s
        .post_json(
            "/v1/invoke",
            &req("config-get", json!({"key": "invalid!name"})),
        )
        .await;
    assert_eq!(out["result"], Value::Null);
    // An HTTP function reads its bound namespace.
    let r = s
        .http
        .get(format!("{}/http/cfg/config/variable", s.url))
        .bearer_auth(&s.token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.text().await.unwrap(),
        "get variable: Some(\"value\")\nlimit=5\nshared=ns\nvariable=value\n"
    );
}

#[tokio::test]
async fn raw_bytes_round_trip_through_guest_api_watch_export_and_import() {
    let s = Server::start(&[]);
    bind(&s, "blobs", "blobs", true).await;
    let blob: Vec<u8> = (0..=255u8).rev().chain([0, 0xff, b'{']).collect();

    // A watcher sees the guest's write, in base64.
    let watch = s
        .http
        .get(format!("{}/v1/namespaces/blobs/watch", s.url))
        .bearer_auth(&s.token)
        .send()
        .await
        .unwrap();
    assert_eq!(watch.status(), 200);

    // Guest writes raw bytes; the API serves them raw, whatever is asked.
    assert_eq!(
        anon(&s, "PUT", "/blobs/bytes/blob", blob.clone()).await.0,
        204
    );
    assert_eq!(
        raw(&s, "blobs", "blob").await,
        (200, "application/octet-stream".to_string(), blob.clone())
    );
    let r = s
        .http
        .get(format!("{}/v1/namespaces/blobs/keys/blob", s.url))
        .bearer_auth(&s.token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["content-type"], "application/octet-stream");
    assert_eq!(r.bytes().await.unwrap().to_vec(), blob);

    let b64 = base64::engine::general_purpose::STANDARD.encode(&blob);
    let mut watch = watch;
    let mut seen = String::new();
    while !seen.contains(&b64) {
        let chunk = tokio::time::timeout(std::time::Duration::from_secs(10), watch.chunk())
            .await
            .expect("a watch event within 10 s")
            .unwrap()
            .expect("stream open");
        seen.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(seen.contains("event: set"), "{seen}");
    assert!(
        seen.contains(r#""value":null"#),
        "no JSON view of raw bytes: {seen}"
    );

    // API writes raw bytes; the guest reads them back unchanged.
    let r = s
        .http
        .put(format!("{}/v1/namespaces/blobs/keys/up", s.url))
        .bearer_auth(&s.token)
        .header("content-type", "application/octet-stream")
        .body(blob.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        anon(&s, "GET", "/blobs/bytes/up", vec![]).await,
        (200, blob.clone())
    );
    // JSON stays JSON both ways, and its raw bytes are its text.
    let (st, _) = s
        .put_json_as(
            "/v1/namespaces/blobs/keys/doc",
            &json!({"a": [1, "x"]}),
            Some(&s.token),
        )
        .await;
    assert_eq!(st, 200);
    assert_eq!(
        s.get("/v1/namespaces/blobs/keys/doc").await.1,
        json!({"a": [1, "x"]})
    );
    assert_eq!(
        anon(&s, "GET", "/blobs/bytes/doc", vec![]).await.1,
        br#"{"a":[1,"x"]}"#
    );

    // Export: JSON under `keys`, other bytes in base64 under `bytes`.
    let (st, export) = s.get("/v1/namespaces/blobs/export").await;
    assert_eq!(st, 200);
    assert_eq!(export["keys"], json!({"doc": {"a": [1, "x"]}}), "{export}");
    assert_eq!(export["bytes"], json!({"blob": b64, "up": b64}), "{export}");
    // Import into another namespace (and another account's view of it).
    let (st, out) = s.post_json("/v1/namespaces/copy/import", &export).await;
    assert_eq!(st, 200, "{out}");
    assert_eq!(out["imported"], 3);
    assert_eq!(raw(&s, "copy", "blob").await.2, blob);
    assert_eq!(raw(&s, "copy", "up").await.2, blob);
    assert_eq!(
        s.get("/v1/namespaces/copy/keys/doc").await.1,
        json!({"a": [1, "x"]})
    );
    // Bad base64 in an import is refused, nothing written.
    let (st, out) = s
        .post_json(
            "/v1/namespaces/copy2/import",
            &json!({"keys": {"a": 1}, "bytes": {"b": "*not base64*"}}),
        )
        .await;
    assert_error(st, &out, 400, "invalid_value");
    assert_eq!(s.get("/v1/namespaces/copy2/keys/a").await.0, 404);
}

#[tokio::test]
async fn an_http_functions_writes_are_under_the_accounts_quota_and_fire_namespace_triggers() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("orb.toml"), "max_keys_per_account = 2\n").unwrap();
    let s = Server::start_in(dir.path(), &[]);
    bind(&s, "q", "quota", true).await;
    assert_eq!(anon(&s, "PUT", "/q/bytes/a", b"1".to_vec()).await.0, 204);
    assert_eq!(anon(&s, "PUT", "/q/bytes/b", b"2".to_vec()).await.0, 204);
    let (st, body) = anon(&s, "PUT", "/q/bytes/c", b"3".to_vec()).await;
    let body: Value = serde_json::from_slice(&body).unwrap();
    assert_error(st, &body, 403, "quota_exceeded");
    assert_eq!(s.get("/v1/namespaces/quota/keys/c").await.0, 404);

    // A namespace trigger fires on an HTTP function's commit.
    let (st, out) = s
        .put_json_as(
            "/v1/triggers/changed",
            &json!({"namespace": "quota", "prefix": "a"}),
            Some(&s.token),
        )
        .await;
    assert!(st == 200 || st == 201, "{st} {out}");
    assert_eq!(
        anon(&s, "PUT", "/q/bytes/a", b"\x00raw".to_vec()).await.0,
        204
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let acts = s.get("/v1/activations?limit=100").await.1;
        if let Some(a) = acts["activations"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["trigger"] == "changed")
        {
            assert_eq!(a["function"], Value::Null, "a firing runs no function: {a}");
            // Bytes that are not JSON reach the trigger's payload in base64.
            let p = &a["result"]["payload"];
            assert_eq!(p["key"], "a", "{a}");
            assert_eq!(p["value"], Value::Null, "{a}");
            assert_eq!(
                p["base64"],
                base64::engine::general_purpose::STANDARD.encode(b"\x00raw"),
                "{a}"
            );
            break;
        }
        assert!(std::time::Instant::now() < deadline, "no firing: {acts}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}
