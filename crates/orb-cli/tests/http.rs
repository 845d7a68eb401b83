//! HTTP functions end to end: a real `orb serve` serving the `http-hello`
//! guest (built from source by `scripts/build-guests`) at `/http/{alias}/…`.

mod common;

use common::*;
use serde_json::{Value, json};
use std::time::Duration;

/// Deploys `http-hello` and points alias `name` at it.
async fn deploy_http(s: &Server, name: &str) -> String {
    let hash = s.deploy("http-hello").await;
    set_alias(s, name, json!({ "function": hash }), &s.token).await;
    hash
}

async fn set_alias(s: &Server, name: &str, body: Value, token: &str) -> Value {
    let (st, out) = s
        .put_json_as(&format!("/v1/aliases/{name}"), &body, Some(token))
        .await;
    assert_eq!(st, 200, "{out}");
    out
}

/// A request to `path` with `token` (none when `None`).
fn req(s: &Server, method: &str, path: &str, token: Option<&str>) -> reqwest::RequestBuilder {
    let rb = s.http.request(
        reqwest::Method::from_bytes(method.as_bytes()).unwrap(),
        format!("{}{path}", s.url),
    );
    match token {
        Some(t) => rb.bearer_auth(t),
        None => rb,
    }
}

/// Waits (up to 20 s) for the activation of `hash` whose result path is `path`.
async fn activation_for(s: &Server, hash: &str, path: &str) -> Value {
    activation_where(s, hash, path, |_| true).await
}

/// [`activation_for`], also matching `pred`.
async fn activation_where(
    s: &Server,
    hash: &str,
    path: &str,
    pred: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(a) = s
            .activations(hash)
            .await
            .into_iter()
            .find(|a| a["result"]["path"] == path && pred(a))
        {
            return a;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no activation for {path}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn get_sees_method_path_query_and_headers_and_is_recorded() {
    let s = Server::start(&[]);
    let hash = deploy_http(&s, "shop").await;

    let r = req(&s, "GET", "/http/shop/items/7?x=1&y=two", Some(&s.token))
        .header("x-echo", "hi there")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/json");
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["method"], "GET", "{v}");
    assert_eq!(v["path"], "/items/7?x=1&y=two", "{v}");
    assert_eq!(v["x-echo"], "hi there", "{v}");

    // The bare route is `/`; other methods and the hash work too.
    for (method, path, seen) in [
        ("GET", "/http/shop".to_string(), "/"),
        ("GET", "/http/shop/".to_string(), "/"),
        ("DELETE", format!("/http/{hash}/x?y"), "/x?y"),
        ("PATCH", "/http/shop/p".to_string(), "/p"),
    ] {
        let r = req(&s, method, &path, Some(&s.token)).send().await.unwrap();
        assert_eq!(r.status(), 200, "{method} {path}");
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["method"], method, "{v}");
        assert_eq!(v["path"], seen, "{method} {path}: {v}");
    }

    // No way out: outbound HTTP is refused.
    let r = req(&s, "GET", "/http/shop/outbound", Some(&s.token))
        .send()
        .await
        .unwrap();
    let text = r.text().await.unwrap();
    assert!(text.starts_with("refused:"), "{text}");

    // One activation per request, like calls.
    let a = activation_for(&s, &hash, "/items/7?x=1&y=two").await;
    assert_eq!(a["export"], "wasi:http/incoming-handler", "{a}");
    assert_eq!(a["status"], "succeeded", "{a}");
    assert_eq!(a["alias"], "shop", "{a}");
    assert_eq!(a["result"]["status"], 200, "{a}");
    assert_eq!(a["result"]["method"], "GET", "{a}");
    assert!(a["result"]["bytes_out"].as_u64().unwrap() > 0, "{a}");
    assert!(a["fuel"].as_u64().unwrap() > 0, "{a}");
    assert!(a["logs"].as_str().unwrap().contains("GET /items/7"), "{a}");
    assert!(
        s.metric("orb_calls_total{status=\"succeeded\"}").await >= 1.0,
        "calls are counted"
    );

    // The export is listed and labelled, and cannot be called with JSON.
    let (st, info) = s.get(&format!("/v1/functions/{hash}")).await;
    assert_eq!(st, 200, "{info}");
    let handle = info["exports"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| {
            e["name"]
                .as_str()
                .unwrap()
                .starts_with("wasi:http/incoming-handler@")
        })
        .unwrap_or_else(|| panic!("{info}"))
        .clone();
    assert_eq!(
        handle["params"][0]["type"], "own<incoming-request>",
        "{info}"
    );
    let (st, body) = s.call(&hash, "handle", json!({})).await;
    assert_error(st, &body, 400, "invalid_request");
}

#[tokio::test]
async fn bodies_stream_both_ways_byte_exact() {
    let s = Server::start(&[]);
    let hash = deploy_http(&s, "echo").await;
    let data: Vec<u8> = (0..5_000_000u32).map(|i| (i * 31 % 253) as u8).collect();
    let r = req(&s, "POST", "/http/echo/echo", Some(&s.token))
        .body(data.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let back = r.bytes().await.unwrap();
    assert_eq!(back.len(), data.len());
    assert!(back == data, "the echo differs");

    // A chunked request body (no content-length) streams too.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        (0..50).map(|i| Ok(vec![i as u8; 10_000])).collect();
    let r = req(&s, "PUT", "/http/echo/echo", Some(&s.token))
        .body(reqwest::Body::wrap_stream(futures_util::stream::iter(
            chunks,
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.bytes().await.unwrap().len(), 500_000);

    let r = req(&s, "GET", "/http/echo/big?n=3000000", Some(&s.token))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.bytes().await.unwrap().len(), 3_000_000);

    let a = activation_where(&s, &hash, "/echo", |a| a["result"]["method"] == "POST").await;
    assert_eq!(a["result"]["bytes_in"], 5_000_000, "{a}");
    assert_eq!(a["result"]["bytes_out"], 5_000_000, "{a}");
}

#[tokio::test]
async fn access_by_token_or_public_alias() {
    let s = Server::start(&[]);
    let hash = deploy_http(&s, "site").await;
    let other = s.deploy("hello").await;

    // No token: 401.
    let r = req(&s, "GET", "/http/site/", None).send().await.unwrap();
    let (st, body) = decode(r).await;
    assert_error(st, &body, 401, "token_missing");
    let r = req(&s, "GET", &format!("/http/{hash}/"), None)
        .send()
        .await
        .unwrap();
    let (st, body) = decode(r).await;
    assert_error(st, &body, 401, "token_missing");
    // A garbage token: 401.
    let r = req(&s, "GET", "/http/site/", Some("garbage"))
        .send()
        .await
        .unwrap();
    let (st, body) = decode(r).await;
    assert_eq!(st, 401, "{body}");

    // A public token limited to other functions: 403; one listing it: 200.
    let narrow = s.mint(&json!({ "functions": [other] })).await;
    let r = req(&s, "GET", "/http/site/", Some(&narrow))
        .send()
        .await
        .unwrap();
    let (st, body) = decode(r).await;
    assert_error(st, &body, 403, "permission_denied");
    let listed = s.mint(&json!({ "functions": [hash] })).await;
    let r = req(&s, "GET", "/http/site/", Some(&listed))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // The guest never sees the token.
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["authorization"], Value::Null, "{v}");

    // Unknown alias with a token: 404.
    let r = req(&s, "GET", "/http/nope/", Some(&s.token))
        .send()
        .await
        .unwrap();
    let (st, body) = decode(r).await;
    assert_error(st, &body, 404, "alias_not_found");

    // Marked public: anyone, no token.
    let out = set_alias(
        &s,
        "site",
        json!({ "function": hash, "public": true }),
        &s.token,
    )
    .await;
    assert_eq!(out["public"], true, "{out}");
    let r = req(&s, "POST", "/http/site/hello?a=b", None)
        .header("x-echo", "anon")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["path"], "/hello?a=b");
    assert_eq!(v["x-echo"], "anon");
    // Recorded in the owner's account.
    let a = activation_for(&s, &hash, "/hello?a=b").await;
    assert_eq!(a["alias"], "site", "{a}");

    // Public route names are unique on the node.
    let (_, acc) = s.post_json("/v1/accounts", &json!({ "name": "b" })).await;
    let b = acc["token"].as_str().unwrap().to_string();
    let (st, up) = s.upload_as(guest("http-hello"), Some(&b)).await;
    assert!(st == 200 || st == 201, "{up}");
    let (st, body) = s
        .put_json_as(
            "/v1/aliases/site",
            &json!({ "function": hash, "public": true }),
            Some(&b),
        )
        .await;
    assert_error(st, &body, 409, "public_route_taken");
    // B's own private alias of the same name is fine, and B's token reaches it.
    set_alias(&s, "site", json!({ "function": hash }), &b).await;
    let r = req(&s, "GET", "/http/site/b", Some(&b))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // `public` must be a boolean.
    let (st, body) = s
        .put_json_as(
            "/v1/aliases/site",
            &json!({ "function": hash, "public": "yes" }),
            Some(&s.token),
        )
        .await;
    assert_error(st, &body, 400, "invalid_request");

    // Back to private: the token is needed again, and the name is free.
    set_alias(
        &s,
        "site",
        json!({ "function": hash, "public": false }),
        &s.token,
    )
    .await;
    let r = req(&s, "GET", "/http/site/", None).send().await.unwrap();
    let (st, body) = decode(r).await;
    assert_error(st, &body, 401, "token_missing");
    let out = set_alias(&s, "site", json!({ "function": hash, "public": true }), &b).await;
    assert_eq!(out["public"], true, "{out}");
    let r = req(&s, "GET", "/http/site/", None).send().await.unwrap();
    assert_eq!(r.status(), 200);
    // Deleting the alias frees the route.
    let r = s
        .http
        .delete(format!("{}/v1/aliases/site", s.url))
        .bearer_auth(&b)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let r = req(&s, "GET", "/http/site/", None).send().await.unwrap();
    assert_eq!(r.status(), 401);
}

#[tokio::test]
async fn size_caps_refuse_big_requests_and_cut_big_responses() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("orb.toml"),
        "max_http_request_bytes = 100000\nmax_http_response_bytes = 1000000\n",
    )
    .unwrap();
    let s = Server::start_in(dir.path(), &[]);
    let hash = deploy_http(&s, "capped").await;

    let r = req(&s, "POST", "/http/capped/echo", Some(&s.token))
        .body(vec![7u8; 300_000])
        .send()
        .await
        .unwrap();
    let (st, body) = decode(r).await;
    assert_error(st, &body, 413, "too_large");
    // At the cap is fine.
    let r = req(&s, "POST", "/http/capped/echo", Some(&s.token))
        .body(vec![7u8; 100_000])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.bytes().await.unwrap().len(), 100_000);
    // A chunked body over the cap: the guest's stream fails mid-way.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        (0..30).map(|_| Ok(vec![1u8; 10_000])).collect();
    let r = req(&s, "POST", "/http/capped/echo", Some(&s.token))
        .body(reqwest::Body::wrap_stream(futures_util::stream::iter(
            chunks,
        )))
        .send()
        .await;
    if let Ok(r) = r {
        let _ = r.bytes().await;
    }
    let a = activation_where(&s, &hash, "/echo", |a| !a["error"].is_null()).await;
    assert_eq!(a["error"]["code"], "too_large", "{a}");
    assert!(a["result"]["bytes_in"].as_u64().unwrap() > 100_000, "{a}");

    // A response over its cap is cut, and the activation says so.
    let r = req(&s, "GET", "/http/capped/big?n=5000000", Some(&s.token))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let got = r.bytes().await;
    assert!(
        got.as_ref().map_or(true, |b| b.len() <= 1_000_000),
        "the response was not cut"
    );
    let a = activation_for(&s, &hash, "/big?n=5000000").await;
    assert_eq!(a["error"]["code"], "response_too_large", "{a}");
    assert_eq!(a["status"], "failed", "{a}");
    assert!(
        a["result"]["bytes_out"].as_u64().unwrap() <= 1_000_000,
        "{a}"
    );
}

#[tokio::test]
async fn a_trap_is_the_functions_fault_and_the_node_keeps_serving() {
    let s = Server::start(&[]);
    let hash = deploy_http(&s, "fragile").await;
    for _ in 0..2 {
        let r = req(&s, "GET", "/http/fragile/trap", Some(&s.token))
            .send()
            .await
            .unwrap();
        let (st, body) = decode(r).await;
        let err = assert_error(st, &body, 422, "function_trap");
        assert_eq!(err["details"]["function"], hash, "{body}");
        assert!(s.logs_of(&body).await.contains("about to trap"), "{body}");
        let r = req(&s, "GET", "/http/fragile/", Some(&s.token))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
    }
    let a = activation_for(&s, &hash, "/trap").await;
    assert_eq!(a["status"], "failed", "{a}");
    assert_eq!(a["export"], "wasi:http/incoming-handler", "{a}");
}

#[tokio::test]
async fn a_plain_function_is_not_served_over_http() {
    let s = Server::start(&[]);
    let hash = s.deploy("hello").await;
    set_alias(&s, "greeter", json!({ "function": hash }), &s.token).await;
    for path in ["/http/greeter/", &format!("/http/{hash}")] {
        let r = req(&s, "GET", path, Some(&s.token)).send().await.unwrap();
        let (st, body) = decode(r).await;
        assert_error(st, &body, 400, "not_an_http_function");
    }
}

#[tokio::test]
async fn sigterm_lets_in_flight_http_requests_finish() {
    let mut s = Server::start(&[]);
    let hash = deploy_http(&s, "slow").await;
    // A request body that arrives in two parts, with a SIGTERM in between.
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(4);
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    let call = {
        let rb = req(&s, "POST", "/http/slow/echo", Some(&s.token))
            .body(reqwest::Body::wrap_stream(stream));
        tokio::spawn(async move {
            let r = rb.send().await.unwrap();
            (r.status().as_u16(), r.bytes().await.unwrap())
        })
    };
    tx.send(Ok(vec![1u8; 1000])).await.unwrap();
    s.wait_in_flight(1.0).await;
    s.terminate();
    tokio::time::sleep(Duration::from_millis(300)).await;
    tx.send(Ok(vec![2u8; 1000])).await.unwrap();
    drop(tx);
    let (st, body) = call.await.unwrap();
    assert_eq!(st, 200);
    assert_eq!(body.len(), 2000);
    assert!(s.wait().success());
    // The activation was stored before the node exited.
    let s = Server::start_in(&s.data_dir.clone(), &[]);
    let a = activation_for(&s, &hash, "/echo").await;
    assert_eq!(a["result"]["bytes_in"], 2000, "{a}");
}
