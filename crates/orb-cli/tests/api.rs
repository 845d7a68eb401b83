//! End to end over HTTP against a real `orb serve`: deploy, named
//! parameters for every WIT value type, errors that say who is to blame.

mod common;
use common::*;
use serde_json::json;

#[tokio::test]
async fn deploy_then_call_hello_by_hash_with_globals_and_logs() {
    let s = Server::start(&[]);
    let bytes = guest("hello");
    let (status, info) = s.upload(bytes.clone()).await;
    assert_eq!(status, 201, "{info}");
    let hash = info["hash"].as_str().unwrap().to_string();
    assert_eq!(hash, orb_core::FunctionId::of(&bytes).to_string());
    assert_eq!(info["size"], bytes.len());
    let greet = info["exports"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "greet")
        .unwrap();
    assert_eq!(greet["params"], json!([{"name": "name", "type": "string"}]));
    assert_eq!(greet["result"], "string");

    // Same bytes again: already stored.
    let (status, again) = s.upload(bytes).await;
    assert_eq!(status, 200);
    assert_eq!(again["hash"], hash);

    let (status, out) = s.call(&hash, "greet", json!({"name": "Ada"})).await;
    assert_eq!(status, 200, "{out}");
    assert_eq!(out["result"], "Hello, Ada!");
    assert!(out["fuel"].as_u64().unwrap() > 0);

    // Globals reach the guest through wasi:config.
    let (status, out) = s
        .post_json(
            "/v1/invoke",
            &json!({"function": hash, "export": "greet", "params": {"name": "Ada"}, "globals": {"greeting": "Howdy"}}),
        )
        .await;
    assert_eq!(status, 200, "{out}");
    assert_eq!(out["result"], "Howdy, Ada!");

    // GET for browsers, with CORS.
    let r = s
        .http
        .get(format!("{}/v1/functions/{hash}/greet?name=Grace", s.url))
        .header("authorization", s.bearer())
        .header("origin", "http://example.test")
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["access-control-allow-origin"], "*");
    let (status, out) = decode(r).await;
    assert_eq!(status, 200, "{out}");
    assert_eq!(out["result"], "Hello, Grace!");

    // The activation record has the logs from stdout and wasi:logging.
    let act_id = out["activation"].as_str().unwrap();
    let (status, act) = s.get(&format!("/v1/activations/{act_id}")).await;
    assert_eq!(status, 200, "{act}");
    assert_eq!(act["status"], "succeeded");
    assert_eq!(act["export"], "greet");
    assert_eq!(act["function"], hash);
    assert_eq!(act["result"], "Hello, Grace!");
    let logs = act["logs"].as_str().unwrap();
    assert!(logs.contains("greeting Grace"), "{logs}");
    assert!(logs.contains("[info hello]"), "{logs}");
    assert_eq!(s.activations(&hash).await.len(), 3);
    // A number-looking value for a string parameter stays text.
    let (st, out) = s.get(&format!("/v1/functions/{hash}/greet?name=42")).await;
    assert_eq!(
        (st, out["result"].clone()),
        (200, json!("Hello, 42!")),
        "{out}"
    );

    let (status, list) = s.get("/v1/functions").await;
    assert_eq!(status, 200);
    assert_eq!(list["functions"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn every_wit_value_type_round_trips() {
    let s = Server::start(&[]);
    let hash = s.deploy("calc").await;
    let everything = json!({
        "flag": true,
        "tiny-s8": -128, "tiny-u8": 255,
        "short-s16": -32768, "short-u16": 65535,
        "mid-s32": -2147483648i64, "mid-u32": 4294967295u64,
        "big-s64": "-9223372036854775808", "big-u64": "18446744073709551615",
        "single-f32": 1.5, "double-f64": -0.000123,
        "letter": "λ",
        "text": "héllo \"world\"",
        "raw-bytes": [0, 1, 254, 255],
        "words": ["a", "", "c"],
        "maybe-text": null,
        "outcome": {"err": "nope"},
        "triple": [7, "seven", false],
        "inner": {"x": 1, "y": -2, "z-index": 3, "label": "p"},
        "last-event": {"moved": {"x": 0, "y": 0, "z-index": 9, "label": null}},
        "color": "dark-magenta",
        "perms": ["read", "exec"],
    });
    let (status, out) = s.call(&hash, "roundtrip", json!({ "v": everything })).await;
    assert_eq!(status, 200, "{out}");
    let r = &out["result"];
    // 64-bit integers sent as strings come back as exact numbers.
    assert_eq!(r["big-s64"].as_i64(), Some(i64::MIN));
    assert_eq!(r["big-u64"].as_u64(), Some(u64::MAX));
    let mut expected = everything.clone();
    expected["big-s64"] = json!(i64::MIN);
    expected["big-u64"] = json!(u64::MAX);
    assert_eq!(r, &expected);

    // The other cases of option, result and variant; an absent option field is none.
    let mut other = everything.clone();
    other["maybe-text"] = json!("present");
    other["outcome"] = json!({"ok": 9});
    other["last-event"] = json!("ping");
    other["inner"] = json!({"x": 1, "y": 2, "z-index": 3});
    other["perms"] = json!([]);
    let (status, out) = s.call(&hash, "roundtrip", json!({ "v": other })).await;
    assert_eq!(status, 200, "{out}");
    assert_eq!(out["result"]["maybe-text"], "present");
    assert_eq!(out["result"]["outcome"], json!({"ok": 9}));
    assert_eq!(out["result"]["last-event"], "ping");
    assert_eq!(out["result"]["inner"]["label"], json!(null));
    assert_eq!(out["result"]["perms"], json!([]));
    other["last-event"] = json!({"error-code": 404});
    let (_, out) = s.call(&hash, "roundtrip", json!({ "v": other })).await;
    assert_eq!(out["result"]["last-event"], json!({"error-code": 404}));
    assert_eq!(
        s.call(&hash, "classify", json!({"n": "-5"})).await.1["result"],
        "negative"
    );

    // GET query values are typed by the signature: JSON for numbers, text for enums.
    let (st, out) = s.get(&format!("/v1/functions/{hash}/add?a=40&b=2")).await;
    assert_eq!((st, out["result"].clone()), (200, json!(42)), "{out}");
    let (st, out) = s.get(&format!("/v1/functions/{hash}/classify?n=0")).await;
    assert_eq!((st, out["result"].clone()), (200, json!("zero")), "{out}");

    // Functions with results, options, variants.
    assert_eq!(
        s.call(&hash, "add", json!({"a": 2, "b": 40})).await.1["result"],
        42
    );
    assert_eq!(
        s.call(&hash, "divide", json!({"a": 1.0, "b": 4.0})).await.1["result"],
        json!({"ok": 0.25})
    );
    let div0 = s.call(&hash, "divide", json!({"a": 1.0, "b": 0.0})).await.1;
    assert!(div0["result"]["err"].is_string(), "{div0}");
    assert_eq!(
        s.call(&hash, "stats", json!({"values": []})).await.1["result"],
        json!(null)
    );
    let stats = s
        .call(&hash, "stats", json!({"values": [1.0, 2.0, 6.0]}))
        .await
        .1;
    assert_eq!(
        stats["result"],
        json!({"count": 3, "mean": 3.0, "min": 1.0, "max": 6.0})
    );
    let area = s
        .call(&hash, "area", json!({"s": {"rect": [2.0, 3.0]}}))
        .await
        .1;
    assert_eq!(area["result"], 6.0);
    let point = s.call(&hash, "area", json!({"s": "point"})).await.1;
    assert_eq!(point["result"], 0.0);
}

#[tokio::test]
async fn bad_parameters_are_refused_without_running_the_function() {
    let s = Server::start(&[]);
    let hash = s.deploy("calc").await;
    let calls_before = s.metric("orb_calls_total{status=\"succeeded\"}").await;

    let (st, body) = s.call(&hash, "add", json!({"a": 1})).await;
    let e = assert_error(st, &body, 400, "invalid_params");
    assert_eq!(e["details"]["param"], "b");
    assert_eq!(e["details"]["expected"], "s32");
    assert!(e["message"].as_str().unwrap().contains("`b`"));

    let (st, body) = s.call(&hash, "add", json!({"a": 1, "b": 2, "c": 3})).await;
    let e = assert_error(st, &body, 400, "invalid_params");
    assert_eq!(e["details"]["param"], "c");

    let (st, body) = s.call(&hash, "add", json!({"a": 1, "b": "two"})).await;
    let e = assert_error(st, &body, 400, "invalid_params");
    assert_eq!(e["details"]["param"], "b");
    assert_eq!(e["details"]["expected"], "s32");

    let (st, body) = s.call(&hash, "add", json!({"a": 1, "b": 1u64 << 40})).await;
    assert_error(st, &body, 400, "invalid_params");

    // GET query values are typed by the signature; names that are no
    // parameter, and values that do not fit, are refused.
    let (st, body) = s
        .get(&format!("/v1/functions/{hash}/add?a=40&b=2&c=1"))
        .await;
    let e = assert_error(st, &body, 400, "invalid_params");
    assert_eq!(e["details"]["param"], "c");
    let (st, body) = s.get(&format!("/v1/functions/{hash}/add?a=40&b=two")).await;
    assert_error(st, &body, 400, "invalid_params");

    // A nested mistake names the path.
    let (st, body) = s
        .call(&hash, "area", json!({"s": {"rect": [1.0, "x"]}}))
        .await;
    let e = assert_error(st, &body, 400, "invalid_params");
    assert_eq!(e["details"]["path"], "s.rect[1]");

    let (st, body) = s
        .post_json(&format!("/v1/functions/{hash}/add"), &json!([1, 2]))
        .await;
    assert_error(st, &body, 400, "invalid_params");

    // Proof that nothing ran: no activation, no call counted.
    assert!(s.activations(&hash).await.is_empty());
    assert_eq!(
        s.metric("orb_calls_total{status=\"succeeded\"}").await,
        calls_before
    );
}

#[tokio::test]
async fn unknown_export_hash_and_routes() {
    let s = Server::start(&[]);
    let hash = s.deploy("hello").await;
    let (st, body) = s.call(&hash, "shout", json!({})).await;
    let e = assert_error(st, &body, 404, "export_not_found");
    assert_eq!(e["details"]["exports"], json!(["greet"]));

    let missing = orb_core::FunctionId::of(b"nothing here").to_string();
    let (st, body) = s.call(&missing, "greet", json!({"name": "x"})).await;
    let e = assert_error(st, &body, 404, "function_not_found");
    assert_eq!(e["details"]["function"], missing);
    let (st, body) = s
        .post_json(
            "/v1/invoke",
            &json!({"function": "not-a-hash", "export": "greet"}),
        )
        .await;
    // Not a hash, so a name: an alias this account does not have.
    assert_error(st, &body, 404, "alias_not_found");
    let (st, body) = s
        .post_json(
            "/v1/invoke",
            &json!({"function": "sha256:nothex", "export": "greet"}),
        )
        .await;
    assert_error(st, &body, 404, "function_not_found");
    let (st, body) = s.post_json("/v1/invoke", &json!({"export": "greet"})).await;
    assert_error(st, &body, 400, "invalid_request");
    let r = s
        .http
        .post(format!("{}/v1/invoke", s.url))
        .header("authorization", s.bearer())
        .body("{not json")
        .send()
        .await
        .unwrap();
    let (st, body) = decode(r).await;
    assert_error(st, &body, 400, "invalid_request");
    let (st, body) = s.get("/v1/nope").await;
    assert_error(st, &body, 404, "not_found");
    let (st, body) = s.get("/v1/activations/0000").await;
    assert_error(st, &body, 404, "activation_not_found");

    // Delete, then the hash is unknown again.
    let r = s
        .http
        .delete(format!("{}/v1/functions/{hash}", s.url))
        .header("authorization", s.bearer())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let (st, body) = s.call(&hash, "greet", json!({"name": "x"})).await;
    assert_error(st, &body, 404, "function_not_found");
}

#[tokio::test]
async fn inline_component_is_stored_and_run_in_one_round_trip() {
    use base64::Engine as _;
    let s = Server::start(&[]);
    let bytes = guest("hello");
    let b64 = base64::engine::general_purpose::STANDARD.encode(&bytes);
    let (st, out) = s
        .post_json(
            "/v1/invoke",
            &json!({"component": b64, "export": "greet", "params": {"name": "Inline"}}),
        )
        .await;
    assert_eq!(st, 200, "{out}");
    assert_eq!(out["result"], "Hello, Inline!");
    let hash = orb_core::FunctionId::of(&bytes).to_string();
    assert_eq!(out["function"], hash);
    assert_eq!(s.get(&format!("/v1/functions/{hash}")).await.0, 200);
}

#[tokio::test]
async fn invalid_oversized_and_unsupported_components_are_refused() {
    let s = Server::start(&["--max-component-mib", "1"]);
    let (st, body) = s.upload(b"definitely not wasm".to_vec()).await;
    assert_error(st, &body, 400, "invalid_component");
    let core = wat::parse_str("(module (func (export \"f\")))").unwrap();
    let (st, body) = s.upload(core).await;
    let e = assert_error(st, &body, 400, "invalid_component");
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .contains("core WebAssembly module"),
        "{e}"
    );
    // A component header followed by garbage: the validator's message.
    let mut broken = vec![0x00, 0x61, 0x73, 0x6d, 0x0d, 0x00, 0x01, 0x00];
    broken.extend_from_slice(&[0xff; 32]);
    let (st, body) = s.upload(broken).await;
    assert_error(st, &body, 400, "invalid_component");
    // The component model's async ABI (WASI 0.3) is not enabled in Orb's
    // engine: such a component is refused at upload, with the reason.
    let async_abi = wat::parse_str(
        r#"(component
             (core module $m (import "" "bp" (func)) (func (export "noop")))
             (core func $bp (canon backpressure.inc))
             (core instance $i (instantiate $m (with "" (instance (export "bp" (func $bp))))))
             (func (export "noop") (canon lift (core func $i "noop"))))"#,
    )
    .unwrap();
    let (st, body) = s.upload(async_abi).await;
    let e = assert_error(st, &body, 400, "invalid_component");
    assert!(e["message"].as_str().unwrap().contains("WASI 0.2"), "{e}");
    let (st, body) = s.upload(vec![0u8; 2 << 20]).await;
    assert_error(st, &body, 413, "too_large");
    let (st, body) = s.upload(fixtures::unsupported_import()).await;
    let e = assert_error(st, &body, 400, "unsupported_import");
    assert!(
        e["message"]
            .as_str()
            .unwrap()
            .contains("acme:rockets/launch"),
        "{e}"
    );
    // Nothing was stored.
    assert_eq!(s.get("/v1/functions").await.1["functions"], json!([]));
}

#[tokio::test]
async fn health_metrics_and_openapi() {
    let s = Server::start(&[]);
    let (st, h) = s.get("/healthz").await;
    assert_eq!((st, h["status"].as_str()), (200, Some("ok")));
    let (st, spec) = s.get("/v1/openapi.json").await;
    assert_eq!(st, 200);
    assert!(spec["paths"]["/v1/invoke"]["post"].is_object());
    assert!(spec["paths"]["/v1/tokens"]["post"].is_object());
    assert_eq!(s.get_as("/healthz", None).await.0, 200, "health is open");
    assert_eq!(
        s.get_as("/v1/functions", None).await.0,
        401,
        "the API is not"
    );
    let hash = s.deploy("hello").await;
    s.call(&hash, "greet", json!({"name": "m"})).await;
    let text = s.text("/metrics").await;
    for name in [
        "orb_calls_total",
        "orb_call_duration_seconds_bucket",
        "orb_compile_cache_misses_total",
        "orb_compile_cache_hits_total",
        "orb_instances_in_flight",
    ] {
        assert!(text.contains(name), "{name} missing from /metrics:\n{text}");
    }
    assert_eq!(s.metric("orb_calls_total{status=\"succeeded\"}").await, 1.0);
}

mod fixtures {
    /// A component that imports an interface no node provides.
    pub fn unsupported_import() -> Vec<u8> {
        let mut module = wat::parse_str(
            r#"(module
                (import "acme:rockets/launch@1.0.0" "fire" (func $fire))
                (func (export "go") call $fire))"#,
        )
        .unwrap();
        let mut resolve = wit_parser::Resolve::default();
        let pkg = resolve
            .push_str(
                "fixture.wit",
                r#"package acme:rockets@1.0.0;
                   interface launch { fire: func(); }
                   world w { import launch; export go: func(); }"#,
            )
            .unwrap();
        let world = resolve.select_world(&[pkg], Some("w")).unwrap();
        wit_component::embed_component_metadata(
            &mut module,
            &resolve,
            world,
            wit_component::StringEncoding::UTF8,
            false,
        )
        .unwrap();
        wit_component::ComponentEncoder::default()
            .module(&module)
            .unwrap()
            .validate(true)
            .encode()
            .unwrap()
    }
}
