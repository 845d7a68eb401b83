//! Outbound HTTP and secrets, end to end: a real `orb serve`, the `fetch`
//! guest (tests/guests/fetch) and a small recording HTTP server on loopback.

mod common;

use common::{Server, assert_error, orb_bin};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One request the echo server received.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    path: String,
    headers: BTreeMap<String, String>,
}

/// A recording HTTP server on 127.0.0.1. `/slow?ms=N` answers after N ms,
/// `/big?n=N` with N bytes, anything else with `hello PATH`. It never echoes
/// headers back (the guest must not learn an injected secret from it).
struct Echo {
    port: u16,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Echo {
    async fn start() -> Echo {
        use axum::extract::Request;
        let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
        let log = seen.clone();
        let app = axum::Router::new().fallback(move |req: Request| {
            let log = log.clone();
            async move {
                let path = req
                    .uri()
                    .path_and_query()
                    .map(|p| p.to_string())
                    .unwrap_or_default();
                let headers = req
                    .headers()
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string()))
                    .collect();
                log.lock().unwrap().push(Seen {
                    method: req.method().to_string(),
                    path: path.clone(),
                    headers,
                });
                let q = |name: &str| -> u64 {
                    path.split_once('?')
                        .map(|(_, q)| q)
                        .unwrap_or("")
                        .split('&')
                        .filter_map(|kv| kv.split_once('='))
                        .find(|(k, _)| *k == name)
                        .and_then(|(_, v)| v.parse().ok())
                        .unwrap_or(0)
                };
                if path.starts_with("/slow") {
                    tokio::time::sleep(Duration::from_millis(q("ms"))).await;
                }
                if path.starts_with("/big") {
                    return "x".repeat(q("n") as usize);
                }
                format!("hello {path}")
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move { axum::serve(listener, app).await });
        Echo { port, seen }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

/// A server whose config lets calls reach 127.0.0.1, with small limits.
fn start_allowing_loopback() -> (Server, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("orb.toml");
    std::fs::write(
        &cfg,
        "outbound_allow_private = [\"127.0.0.1/32\"]\n\
         outbound_max_requests = 3\n\
         outbound_max_response_bytes = 1000\n\
         outbound_timeout_ms = 1500\n",
    )
    .unwrap();
    let s = Server::start(&["--config", cfg.to_str().unwrap()]);
    (s, dir)
}

async fn set_policy(s: &Server, hosts: &[&str]) {
    let (st, v) = s
        .put_json_as("/v1/outbound", &json!({ "hosts": hosts }), Some(&s.token))
        .await;
    assert_eq!(st, 200, "{v}");
}

/// Calls `fetch` and returns (the guest's result, the activation id).
async fn fetch(s: &Server, token: &str, hash: &str, url: &str, headers: Value) -> (Value, String) {
    let (st, v) = s
        .post_json_as(
            "/v1/invoke",
            &json!({
                "function": hash, "export": "fetch",
                "params": { "url": url, "method": "GET", "headers": headers, "body": "" },
                "globals": { "greeting": "hi" },
            }),
            Some(token),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    (
        v["result"].clone(),
        v["activation"].as_str().unwrap().to_string(),
    )
}

async fn activation(s: &Server, id: &str) -> Value {
    let (st, a) = s.get(&format!("/v1/activations/{id}")).await;
    assert_eq!(st, 200, "{a}");
    a
}

fn err_of(result: &Value) -> String {
    result["err"]
        .as_str()
        .unwrap_or_else(|| panic!("expected an error result, got {result}"))
        .to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn allow_list_and_ssrf_refusals() {
    let echo = Echo::start().await;
    let s = Server::start(&[]);
    let hash = s.deploy("fetch").await;

    // No policy: nothing is reachable, and the attempt is listed.
    let (r, id) = fetch(&s, &s.token, &hash, &echo.url("/a"), json!([])).await;
    assert_eq!(err_of(&r), "HttpRequestDenied", "{r}");
    let a = activation(&s, &id).await;
    let out = a["outbound"].as_array().expect("outbound listed");
    assert_eq!(out.len(), 1, "{a}");
    assert_eq!(out[0]["method"], "GET");
    assert_eq!(out[0]["url"], echo.url("/a"));
    assert!(
        out[0]["error"].as_str().unwrap().contains("not available"),
        "{a}"
    );
    assert!(out[0].get("address").is_none(), "{a}");

    // Bad patterns are refused up front.
    for bad in [
        json!(["https://api.example.com"]),
        json!(["a/b"]),
        json!(["::1"]),
    ] {
        let (st, v) = s
            .put_json_as("/v1/outbound", &json!({ "hosts": bad }), Some(&s.token))
            .await;
        assert_error(st, &v, 400, "invalid_request");
    }
    let (st, v) = s
        .post_json(
            "/v1/tokens",
            &json!({ "outbound_hosts": ["http://x.org/"] }),
        )
        .await;
    assert_error(st, &v, 400, "invalid_request");

    // Listed, but not public addresses: refused before any connection.
    let port = echo.port;
    let local = format!("localhost:{port}");
    set_policy(
        &s,
        &[
            "127.0.0.1",
            "10.0.0.1",
            "169.254.169.254",
            "[::1]",
            &local,
            "api.example.com",
        ],
    )
    .await;
    let (st, v) = s.get("/v1/outbound").await;
    assert_eq!(st, 200);
    assert_eq!(v["hosts"].as_array().unwrap().len(), 6, "{v}");
    for (url, why) in [
        (echo.url("/b"), "loopback"),
        ("http://10.0.0.1/".to_string(), "private"),
        (
            "http://169.254.169.254/latest/meta-data/".to_string(),
            "link-local",
        ),
        (format!("http://[::1]:{port}/"), "loopback"),
        (format!("http://localhost:{port}/"), "loopback"),
    ] {
        let (r, id) = fetch(&s, &s.token, &hash, &url, json!([])).await;
        assert_eq!(err_of(&r), "DestinationIpProhibited", "{url}: {r}");
        let a = activation(&s, &id).await;
        let e = a["outbound"][0]["error"].as_str().unwrap().to_string();
        assert!(
            e.contains(why) && e.contains("outbound_allow_private"),
            "{url}: {e}"
        );
    }
    // A host not on the list.
    let (r, id) = fetch(&s, &s.token, &hash, "http://other.example.com/", json!([])).await;
    assert_eq!(err_of(&r), "HttpRequestDenied", "{r}");
    let a = activation(&s, &id).await;
    assert!(
        a["outbound"][0]["error"]
            .as_str()
            .unwrap()
            .contains("not allowed"),
        "{a}"
    );
    // A port not on the list.
    set_policy(&s, &["127.0.0.1:1"]).await;
    let (r, _) = fetch(&s, &s.token, &hash, &echo.url("/c"), json!([])).await;
    assert_eq!(err_of(&r), "HttpRequestDenied", "{r}");

    // A public token brings its own list; the account's does not widen it.
    set_policy(&s, &["127.0.0.1"]).await;
    let public = s
        .mint(&json!({ "functions": [hash], "outbound_hosts": ["api.example.com"] }))
        .await;
    let (r, _) = fetch(&s, &public, &hash, &echo.url("/d"), json!([])).await;
    assert_eq!(err_of(&r), "HttpRequestDenied", "{r}");
    // …and may not read or change the account's.
    let (st, v) = s.get_as("/v1/outbound", Some(&public)).await;
    assert_error(st, &v, 403, "permission_denied");

    assert!(
        echo.seen().is_empty(),
        "nothing reached the server: {:?}",
        echo.seen()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn allowed_requests_limits_and_activation() {
    let echo = Echo::start().await;
    let (s, _cfg) = start_allowing_loopback();
    let hash = s.deploy("fetch").await;
    set_policy(&s, &["127.0.0.1"]).await;

    let (r, id) = fetch(
        &s,
        &s.token,
        &hash,
        &echo.url("/hello?x=1"),
        json!([["x-guest", "1"]]),
    )
    .await;
    assert_eq!(r["ok"]["status"], 200, "{r}");
    assert_eq!(r["ok"]["body"], "hello /hello?x=1", "{r}");
    let seen = echo.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].method, "GET");
    assert_eq!(seen[0].path, "/hello?x=1");
    assert_eq!(
        seen[0].headers.get("x-guest").map(String::as_str),
        Some("1")
    );
    let a = activation(&s, &id).await;
    let o = &a["outbound"][0];
    assert_eq!(o["url"], echo.url("/hello?x=1"), "{a}");
    assert_eq!(o["status"], 200, "{a}");
    assert_eq!(o["bytes_in"], 16, "{a}");
    assert_eq!(o["address"], format!("127.0.0.1:{}", echo.port), "{a}");
    assert!(o.get("error").is_none(), "{a}");

    // A public token whose grant lists the host.
    let public = s
        .mint(
            &json!({ "functions": [hash], "outbound_hosts": [format!("127.0.0.1:{}", echo.port)] }),
        )
        .await;
    let (r, _) = fetch(&s, &public, &hash, &echo.url("/pub"), json!([])).await;
    assert_eq!(r["ok"]["status"], 200, "{r}");

    // Per-call request cap (3 here): the 4th and 5th are refused.
    let before = echo.seen().len();
    let urls: Vec<String> = (0..5).map(|i| echo.url(&format!("/n{i}"))).collect();
    let (st, v) = s
        .post_json(
            "/v1/invoke",
            &json!({ "function": hash, "export": "fetch-many", "params": { "urls": urls } }),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(
        v["result"],
        json!([
            "200",
            "200",
            "200",
            "error: HttpRequestDenied",
            "error: HttpRequestDenied"
        ])
    );
    assert_eq!(echo.seen().len(), before + 3);
    let a = activation(&s, v["activation"].as_str().unwrap()).await;
    let out = a["outbound"].as_array().unwrap();
    assert_eq!(out.len(), 5, "{a}");
    assert!(
        out[3]["error"].as_str().unwrap().contains("limit of 3"),
        "{a}"
    );

    // Response cap (1000 bytes here): the guest's read fails.
    let (r, id) = fetch(&s, &s.token, &hash, &echo.url("/big?n=5000"), json!([])).await;
    assert!(err_of(&r).contains("body size exceeds limit"), "{r}");
    let a = activation(&s, &id).await;
    assert!(
        a["outbound"][0]["error"]
            .as_str()
            .unwrap()
            .contains("limit of 1000"),
        "{a}"
    );
    let (r, _) = fetch(&s, &s.token, &hash, &echo.url("/big?n=900"), json!([])).await;
    assert_eq!(r["ok"]["body"].as_str().unwrap().len(), 900, "{r}");

    // Timeout (1.5 s here) on a server that answers after 5 s.
    let (r, id) = fetch(&s, &s.token, &hash, &echo.url("/slow?ms=5000"), json!([])).await;
    assert!(err_of(&r).to_lowercase().contains("timeout"), "{r}");
    let a = activation(&s, &id).await;
    assert!(
        a["outbound"][0]["error"]
            .as_str()
            .unwrap()
            .contains("timed out"),
        "{a}"
    );
    assert!(a["duration_us"].as_u64().unwrap() < 5_000_000, "{a}");

    // HTTP functions get the same policy.
    let http = s.deploy("http-hello").await;
    let r = s
        .http
        .get(format!(
            "{}/http/{http}/outbound?to=127.0.0.1:{}",
            s.url, echo.port
        ))
        .header("authorization", s.bearer())
        .send()
        .await
        .unwrap();
    assert_eq!(r.text().await.unwrap(), "reached: 200");
    // The activation is stored once the guest is done, after the response.
    let mut acts = s.activations(&http).await;
    for _ in 0..100 {
        if !acts.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        acts = s.activations(&http).await;
    }
    assert_eq!(acts.len(), 1, "one activation for the HTTP request");
    assert_eq!(acts[0]["outbound"][0]["status"], 200, "{}", acts[0]);
    assert_eq!(acts[0]["outbound"][0]["url"], echo.url("/"), "{}", acts[0]);
}

/// `orb token attenuate --host PATTERN`.
fn attenuate_hosts(token: &str, hosts: &[String]) -> String {
    let mut args = vec!["token".to_string(), "attenuate".into(), token.into()];
    for h in hosts {
        args.extend(["--host".into(), h.clone()]);
    }
    let out = std::process::Command::new(orb_bin())
        .args(&args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// Issue 16: an attenuation block binds the guest's outbound requests, not
/// only the HTTP request that started the call.
#[tokio::test(flavor = "multi_thread")]
async fn an_attenuated_token_narrows_the_guests_outbound_hosts() {
    let echo = Echo::start().await;
    let other = Echo::start().await;
    let (s, _cfg) = start_allowing_loopback();
    let hash = s.deploy("fetch").await;
    set_policy(&s, &["127.0.0.1"]).await;
    let here = format!("127.0.0.1:{}", echo.port);

    // The account's private token, narrowed to the echo server's port.
    let narrowed = attenuate_hosts(&s.token, std::slice::from_ref(&here));
    let (r, _) = fetch(&s, &narrowed, &hash, &echo.url("/in"), json!([])).await;
    assert_eq!(r["ok"]["status"], 200, "{r}");
    let (r, id) = fetch(&s, &narrowed, &hash, &other.url("/out"), json!([])).await;
    assert_eq!(err_of(&r), "HttpRequestDenied", "{r}");
    let a = activation(&s, &id).await;
    let e = a["outbound"][0]["error"].as_str().unwrap_or_default();
    assert!(
        e.contains("attenuation") && e.contains(&format!("127.0.0.1:{}", other.port)),
        "{a}"
    );
    assert!(a["outbound"][0].get("address").is_none(), "{a}");

    // A public token whose grant allows both, narrowed to one of them.
    let public = s
        .mint(&json!({ "functions": [hash], "outbound_hosts": ["127.0.0.1"] }))
        .await;
    let (r, _) = fetch(&s, &public, &hash, &other.url("/pub"), json!([])).await;
    assert_eq!(r["ok"]["status"], 200, "{r}");
    let narrowed = attenuate_hosts(&public, &[here.clone(), "*.example.org".into()]);
    let (r, _) = fetch(&s, &narrowed, &hash, &echo.url("/pub-in"), json!([])).await;
    assert_eq!(r["ok"]["status"], 200, "{r}");
    let (r, _) = fetch(&s, &narrowed, &hash, &other.url("/pub-out"), json!([])).await;
    assert_eq!(err_of(&r), "HttpRequestDenied", "{r}");

    // A narrowing never widens: a host outside the grant stays refused.
    let wide = attenuate_hosts(&public, &["*".into()]);
    let (r, _) = fetch(&s, &wide, &hash, "http://api.example.com/", json!([])).await;
    assert_eq!(err_of(&r), "HttpRequestDenied", "{r}");

    let paths = |e: &Echo| e.seen().into_iter().map(|x| x.path).collect::<Vec<_>>();
    assert_eq!(paths(&echo), ["/in", "/pub-in"]);
    assert_eq!(paths(&other), ["/pub"]);

    // A bad pattern is refused by the CLI with the reason.
    let out = std::process::Command::new(orb_bin())
        .args(["token", "attenuate", &s.token, "--host", "https://x.org/"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("error[invalid_request]: --host `https://x.org/` is not a host pattern"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_call_with_a_side_effect_is_not_re_run_on_conflict() {
    let echo = Echo::start().await;
    let (s, _cfg) = start_allowing_loopback();
    let hash = s.deploy("fetch").await;
    set_policy(&s, &["127.0.0.1"]).await;

    // Both calls read `n`, wait on a slow request, then write `n`: the
    // second to commit conflicts, and is not run again.
    let call = |tag: &'static str| {
        let body = json!({
            "function": hash, "export": "count-fetch", "namespace": "ctr",
            "params": { "url": echo.url(&format!("/slow?ms=600&call={tag}")), "key": "n" },
        });
        let s = &s;
        async move { s.post_json("/v1/invoke", &body).await }
    };
    let ((s1, v1), (s2, v2)) = tokio::join!(call("a"), call("b"));
    let (ok, conflict) = if s1 == 200 {
        (v1, (s2, v2))
    } else {
        (v2, (s1, v1))
    };
    assert_eq!(ok["result"]["ok"], 1, "{ok}");
    let e = assert_error(conflict.0, &conflict.1, 409, "conflict");
    assert!(e["message"].as_str().unwrap().contains("not re-run"), "{e}");
    assert_eq!(e["details"]["side_effect"], true, "{e}");
    assert_eq!(e["details"]["outbound"].as_array().unwrap().len(), 1, "{e}");
    assert_eq!(
        echo.seen().len(),
        2,
        "exactly one request per call: {:?}",
        echo.seen()
    );
    let (st, v) = s.get("/v1/namespaces/ctr/keys/n").await;
    assert_eq!(st, 200);
    assert_eq!(v, json!(1));
}

#[tokio::test(flavor = "multi_thread")]
async fn secrets_are_injected_but_never_seen() {
    const SECRET: &str = "s3cr3t-9f2c1e";
    let echo = Echo::start().await;
    let (s, _cfg) = start_allowing_loopback();
    let hash = s.deploy("fetch").await;
    let local = format!("localhost:{}", echo.port);
    set_policy(&s, &["127.0.0.1", &local]).await;

    let spec = json!({ "value": SECRET, "hosts": ["127.0.0.1"], "header": "Authorization", "format": "Bearer {}" });
    let (st, v) = s
        .put_json_as("/v1/secrets/api", &spec, Some(&s.token))
        .await;
    assert_eq!(st, 201, "{v}");
    assert!(!v.to_string().contains(SECRET), "{v}");
    assert_eq!(v["header"], "authorization");
    let (st, v) = s
        .put_json_as("/v1/secrets/api", &spec, Some(&s.token))
        .await;
    assert_eq!(st, 200, "replaced: {v}");
    let (st, list) = s.get("/v1/secrets").await;
    assert_eq!(st, 200);
    assert_eq!(list["secrets"][0]["name"], "api", "{list}");
    assert_eq!(list["secrets"][0]["hosts"], json!(["127.0.0.1"]), "{list}");
    assert!(!list.to_string().contains(SECRET), "{list}");

    // Bad secrets are refused.
    for (bad, code) in [
        (
            json!({ "value": "v", "hosts": [], "header": "x-k" }),
            "invalid_request",
        ),
        (
            json!({ "value": "v", "hosts": ["a.org"], "header": "host" }),
            "invalid_request",
        ),
        (
            json!({ "value": "v", "hosts": ["a.org"], "header": "x-k", "format": "no slot" }),
            "invalid_request",
        ),
        (
            json!({ "value": "a\nb", "hosts": ["a.org"], "header": "x-k" }),
            "invalid_request",
        ),
        (
            json!({ "value": "", "hosts": ["a.org"], "header": "x-k" }),
            "invalid_request",
        ),
        (
            json!({ "value": "v", "hosts": ["a.org"], "header": "bad header" }),
            "invalid_request",
        ),
    ] {
        let (st, v) = s.put_json_as("/v1/secrets/bad", &bad, Some(&s.token)).await;
        assert_error(st, &v, 400, code);
    }
    let (st, v) = s
        .put_json_as("/v1/secrets/a%2Fb", &spec, Some(&s.token))
        .await;
    assert_error(st, &v, 400, "invalid_name");

    // Public tokens cannot touch secrets.
    let public = s
        .mint(&json!({ "functions": [hash], "outbound_hosts": ["127.0.0.1"] }))
        .await;
    let (st, v) = s.put_json_as("/v1/secrets/api", &spec, Some(&public)).await;
    assert_error(st, &v, 403, "permission_denied");
    let (st, v) = s.get_as("/v1/secrets", Some(&public)).await;
    assert_error(st, &v, 403, "permission_denied");

    // The guest sets its own `authorization`; the host replaces it on the
    // wire, and the guest's view of its request never has the secret.
    for token in [s.token.clone(), public] {
        let (r, id) = fetch(
            &s,
            &token,
            &hash,
            &echo.url("/with-secret"),
            json!([["authorization", "mine"], ["x-guest", "1"]]),
        )
        .await;
        assert_eq!(r["ok"]["status"], 200, "{r}");
        let sent = &r["ok"]["sent-headers"];
        assert!(sent.to_string().contains("mine"), "{sent}");
        assert!(!r.to_string().contains(SECRET), "{r}");
        let got = echo.seen().last().unwrap().clone();
        assert_eq!(
            got.headers.get("authorization").map(String::as_str),
            Some(format!("Bearer {SECRET}").as_str()),
            "{got:?}"
        );
        let a = activation(&s, &id).await;
        assert!(!a.to_string().contains(SECRET), "{a}");
        assert_eq!(a["outbound"][0]["status"], 200, "{a}");
    }

    // Not sent to a host it is not bound to (`localhost` is allowed, the
    // secret is bound to 127.0.0.1 only).
    let (r, _) = fetch(
        &s,
        &s.token,
        &hash,
        &format!("http://localhost:{}/plain", echo.port),
        json!([]),
    )
    .await;
    assert_eq!(r["ok"]["status"], 200, "{r}");
    let got = echo.seen().last().unwrap().clone();
    assert_eq!(got.path, "/plain");
    assert!(!got.headers.contains_key("authorization"), "{got:?}");

    // Not in wasi:config (globals), env or arguments.
    let (st, v) = s
        .post_json(
            "/v1/invoke",
            &json!({ "function": hash, "export": "env-dump", "globals": { "greeting": "hi" } }),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    assert!(v["result"].to_string().contains("config:greeting"), "{v}");
    assert!(!v.to_string().contains(SECRET), "{v}");

    // Not in clear on disk.
    let db = std::fs::read(s.data_dir.join("orb.redb")).unwrap();
    assert!(
        !db.windows(SECRET.len()).any(|w| w == SECRET.as_bytes()),
        "the secret is stored in clear"
    );

    // The CLI: value from stdin, listed without it, removed.
    use std::io::Write as _;
    let mut child = std::process::Command::new(orb_bin())
        .env("ORB_TOKEN", &s.token)
        .args([
            "--server",
            &s.url,
            "secret",
            "set",
            "cli",
            "--host",
            "127.0.0.1",
            "--header",
            "x-api-key",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"from-stdin-42\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (ok, text, err) = common::orb_t(&s.token, &["--server", &s.url, "secret", "ls"]);
    assert!(ok, "{err}");
    assert!(text.contains("cli") && text.contains("x-api-key"), "{text}");
    assert!(
        !text.contains("from-stdin-42") && !text.contains(SECRET),
        "{text}"
    );
    let (r, _) = fetch(&s, &s.token, &hash, &echo.url("/cli"), json!([])).await;
    assert_eq!(r["ok"]["status"], 200, "{r}");
    let got = echo.seen().last().unwrap().clone();
    assert_eq!(
        got.headers.get("x-api-key").map(String::as_str),
        Some("from-stdin-42")
    );
    let (ok, _, err) = common::orb_t(&s.token, &["--server", &s.url, "secret", "rm", "cli"]);
    assert!(ok, "{err}");
    let (ok, _, err) = common::orb_t(&s.token, &["--server", &s.url, "secret", "rm", "cli"]);
    assert!(!ok && err.contains("secret_not_found"), "{err}");

    // Deleted: no longer injected.
    let r = s
        .http
        .delete(format!("{}/v1/secrets/api", s.url))
        .header("authorization", s.bearer())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let (r, _) = fetch(&s, &s.token, &hash, &echo.url("/after"), json!([])).await;
    assert_eq!(r["ok"]["status"], 200, "{r}");
    assert!(
        !echo
            .seen()
            .last()
            .unwrap()
            .headers
            .contains_key("authorization")
    );
}

/// A CA, and a certificate it signed for `localhost` and 127.0.0.1:
/// (the CA's PEM, the server's certificate chain and key).
fn test_pki() -> (
    String,
    Vec<rustls::pki_types::CertificateDer<'static>>,
    rustls::pki_types::PrivateKeyDer<'static>,
) {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "Orb test CA");
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca, ca_key);
    let key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
        .unwrap()
        .signed_by(&key, &issuer)
        .unwrap();
    (
        ca_cert.pem(),
        vec![leaf.der().clone()],
        rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
    )
}

/// An HTTPS server on 127.0.0.1 answering every request with
/// `hello tls PATH` (HTTP/1.1, one request per connection); its port.
async fn tls_server(
    chain: Vec<rustls::pki_types::CertificateDer<'static>>,
    key: rustls::pki_types::PrivateKeyDer<'static>,
) -> u16 {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(chain, key)
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return; // the client refused our certificate
                };
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tls.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let line = String::from_utf8_lossy(&head);
                let path = line.split(' ').nth(1).unwrap_or("?").to_string();
                let body = format!("hello tls {path}");
                let resp = format!(
                    "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = tls.write_all(resp.as_bytes()).await;
                let _ = tls.shutdown().await;
            });
        }
    });
    port
}

#[tokio::test(flavor = "multi_thread")]
async fn https_is_verified_against_the_trusted_roots() {
    let (ca_pem, chain, key) = test_pki();
    let trusted = tls_server(chain, key).await;
    // A second server whose certificate no trusted root signed.
    let (_, other_chain, other_key) = test_pki();
    let untrusted = tls_server(other_chain, other_key).await;

    // `SSL_CERT_FILE` replaces the system's roots with the test CA.
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, ca_pem).unwrap();
    let cfg = dir.path().join("orb.toml");
    std::fs::write(&cfg, "outbound_allow_private = [\"127.0.0.1/32\"]\n").unwrap();
    let s = Server::start_env(
        &["--config", cfg.to_str().unwrap()],
        &[("SSL_CERT_FILE", ca.as_path())],
    );
    let hash = s.deploy("fetch").await;
    set_policy(&s, &["localhost"]).await;

    let url = format!("https://localhost:{trusted}/secure?x=1");
    let (r, id) = fetch(&s, &s.token, &hash, &url, json!([])).await;
    assert_eq!(r["ok"]["status"], 200, "{r}");
    assert_eq!(r["ok"]["body"], "hello tls /secure?x=1", "{r}");
    let a = activation(&s, &id).await;
    assert_eq!(a["outbound"][0]["url"], url, "{a}");
    assert_eq!(a["outbound"][0]["status"], 200, "{a}");

    // Same host name, a certificate from an unknown CA: refused in the
    // handshake, so no request is sent; the guest sees a TLS error.
    let url = format!("https://localhost:{untrusted}/secure");
    let (r, id) = fetch(&s, &s.token, &hash, &url, json!([])).await;
    let err = err_of(&r);
    assert!(err.to_lowercase().contains("tls"), "{r}");
    let a = activation(&s, &id).await;
    let o = &a["outbound"][0];
    assert!(o.get("status").is_none(), "{a}");
    assert!(
        o["error"].as_str().unwrap_or("").starts_with("TLS failed"),
        "{a}"
    );
}
