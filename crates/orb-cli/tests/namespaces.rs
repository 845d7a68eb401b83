//! Namespaces over HTTP and the CLI: durable key/value state per account.
//! (Guest access through `wasi:keyvalue` is the next step of this issue.)

mod common;
use common::*;
use serde_json::{Value, json};

async fn put(s: &Server, token: &str, ns: &str, key: &str, value: &Value) -> (u16, Value) {
    let r = s
        .http
        .put(format!("{}/v1/namespaces/{ns}/keys/{key}", s.url))
        .bearer_auth(token)
        .json(value)
        .send()
        .await
        .unwrap();
    decode(r).await
}

#[tokio::test]
async fn keys_round_trip_with_revisions_prefixes_and_pages() {
    let s = Server::start(&[]);
    let t = s.token.clone();
    let (st, out) = put(
        &s,
        &t,
        "home",
        "thermostat/target",
        &json!({"celsius": 21.5}),
    )
    .await;
    assert_eq!(st, 200, "{out}");
    assert_eq!(out["revision"], 1);
    assert_eq!(
        put(&s, &t, "home", "thermostat/target", &json!({"celsius": 22}))
            .await
            .1["revision"],
        2
    );
    let r = s
        .http
        .get(format!(
            "{}/v1/namespaces/home/keys/thermostat/target",
            s.url
        ))
        .bearer_auth(&t)
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["etag"], "\"2\"");
    assert_eq!(decode(r).await.1, json!({"celsius": 22}));
    // Keys with spaces and slashes, strings, numbers.
    assert_eq!(
        put(&s, &t, "home", "room%20one/temp", &json!(19)).await.0,
        200
    );
    assert_eq!(
        s.get("/v1/namespaces/home/keys/room%20one/temp").await.1,
        json!(19)
    );
    for i in 0..5 {
        put(
            &s,
            &t,
            "home",
            &format!("log/{i}"),
            &json!(format!("entry {i}")),
        )
        .await;
    }
    let (_, page) = s.get("/v1/namespaces/home/keys?prefix=log/&limit=3").await;
    assert_eq!(page["keys"], json!(["log/0", "log/1", "log/2"]));
    assert_eq!(page["next"], "log/2");
    let (_, page2) = s
        .get("/v1/namespaces/home/keys?prefix=log/&limit=3&after=log/2")
        .await;
    assert_eq!(page2["keys"], json!(["log/3", "log/4"]));
    assert_eq!(page2["next"], Value::Null);
    let (_, all) = s.get("/v1/namespaces").await;
    assert_eq!(all["namespaces"][0]["name"], "home");
    assert_eq!(all["namespaces"][0]["keys"], 7);

    let r = s
        .http
        .delete(format!("{}/v1/namespaces/home/keys/log/0", s.url))
        .bearer_auth(&t)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let (st, body) = s.get("/v1/namespaces/home/keys/log/0").await;
    assert_error(st, &body, 404, "key_not_found");

    // Bad input: each its own code, nothing written.
    let r = s
        .http
        .put(format!("{}/v1/namespaces/home/keys/k", s.url))
        .bearer_auth(&t)
        .body("{not json")
        .send()
        .await
        .unwrap();
    let (st, body) = decode(r).await;
    assert_error(st, &body, 400, "invalid_value");
    let (st, body) = put(&s, &t, "home", &"k".repeat(2000), &json!(1)).await;
    assert_error(st, &body, 400, "invalid_key");
    let (st, body) = put(&s, &t, "home", "big", &json!("x".repeat(1 << 20))).await;
    assert_error(st, &body, 413, "too_large");
    let (st, body) = put(&s, &t, "Not_Valid!", "k", &json!(1)).await;
    assert_error(st, &body, 400, "invalid_name");
    assert_eq!(s.get("/v1/namespaces").await.1["namespaces"][0]["keys"], 6);
}

#[tokio::test]
async fn namespace_access_follows_accounts_and_tokens() {
    let s = Server::start(&[]);
    let (_, a) = {
        let (_, out) = s.post_json("/v1/accounts", &json!({"name": "a"})).await;
        (
            out["account"].clone(),
            out["token"].as_str().unwrap().to_string(),
        )
    };
    assert_eq!(put(&s, &a, "app1", "k", &json!("a's")).await.0, 200);
    // The admin (another account) does not see it.
    let (st, body) = s.get("/v1/namespaces/app1/keys/k").await;
    assert_error(st, &body, 404, "key_not_found");

    let mint = |grant: Value| {
        let (s, a) = (&s, a.clone());
        async move { s.mint_as(&grant, Some(&a)).await }
    };
    let reader = mint(json!({"namespaces": {"app1": "r"}})).await;
    let writer = mint(json!({"namespaces": {"app1": "w"}})).await;
    let none = mint(json!({})).await;
    assert_eq!(
        s.get_as("/v1/namespaces/app1/keys/k", Some(&reader))
            .await
            .1,
        json!("a's")
    );
    let (st, body) = put(&s, &reader, "app1", "k", &json!(1)).await;
    assert_error(st, &body, 403, "permission_denied");
    assert_eq!(put(&s, &writer, "app1", "k", &json!("w")).await.0, 200);
    let (st, body) = s.get_as("/v1/namespaces/app1/keys/k", Some(&writer)).await;
    assert_error(st, &body, 403, "permission_denied");
    let (st, body) = s.get_as("/v1/namespaces/app1/keys", Some(&none)).await;
    assert_error(st, &body, 403, "permission_denied");
    assert_eq!(
        s.get_as("/v1/namespaces", Some(&none)).await.1["namespaces"],
        json!([])
    );
}

#[tokio::test]
async fn acknowledged_writes_survive_kill_dash_nine() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start_in(dir.path(), &[]);
    let token = s.token.clone();
    let acked = std::sync::Arc::new(std::sync::Mutex::new(0u32));
    let writer = {
        let (http, url, token, acked) =
            (s.http.clone(), s.url.clone(), token.clone(), acked.clone());
        tokio::spawn(async move {
            for i in 0u32.. {
                let r = http
                    .put(format!("{url}/v1/namespaces/loop/keys/k{i:06}"))
                    .bearer_auth(&token)
                    .json(&json!(i))
                    .send()
                    .await;
                match r {
                    Ok(r) if r.status() == 200 => *acked.lock().unwrap() = i + 1,
                    _ => break,
                }
            }
        })
    };
    // A moment that varies from run to run.
    let wait = 300
        + (std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos()
            % 400);
    tokio::time::sleep(std::time::Duration::from_millis(wait as u64)).await;
    drop(s); // SIGKILL
    writer.await.unwrap();
    let n = *acked.lock().unwrap();
    assert!(n > 0, "no write was acknowledged");

    let s = Server::start_in(dir.path(), &[]);
    let (_, keys) = s.get("/v1/namespaces/loop/keys?limit=1000").await;
    let mut all: Vec<String> = keys["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k.as_str().unwrap().to_string())
        .collect();
    let mut next = keys["next"].as_str().map(str::to_string);
    while let Some(after) = next {
        let (_, page) = s
            .get(&format!(
                "/v1/namespaces/loop/keys?limit=1000&after={after}"
            ))
            .await;
        all.extend(
            page["keys"]
                .as_array()
                .unwrap()
                .iter()
                .map(|k| k.as_str().unwrap().to_string()),
        );
        next = page["next"].as_str().map(str::to_string);
    }
    for i in 0..n {
        assert!(
            all.contains(&format!("k{i:06}")),
            "acknowledged write k{i:06} lost ({n} acknowledged)"
        );
    }
    assert_eq!(
        s.get(&format!("/v1/namespaces/loop/keys/k{:06}", n - 1))
            .await
            .1,
        json!(n - 1)
    );
}

#[tokio::test]
async fn cli_namespace_commands() {
    let s = Server::start(&[]);
    let orb = |args: &[&str]| {
        let out = std::process::Command::new(orb_bin())
            .env("ORB_TOKEN", &s.token)
            .args(args)
            .args(["--server", &s.url])
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (ok, _, err) = orb(&["ns", "put", "feeds", "terms", r#"["rust","wasm"]"#]);
    assert!(ok, "{err}");
    let (ok, _, err) = orb(&["ns", "put", "feeds", "title", "hello world"]);
    assert!(ok, "{err}");
    let (ok, out, _) = orb(&["ns", "get", "feeds", "title"]);
    assert!(ok);
    assert_eq!(out.trim(), "hello world");
    let (ok, out, _) = orb(&["ns", "get", "feeds", "terms", "--json"]);
    assert!(ok);
    assert_eq!(
        serde_json::from_str::<Value>(&out).unwrap(),
        json!(["rust", "wasm"])
    );
    let (ok, out, _) = orb(&["ns", "ls", "feeds"]);
    assert!(ok);
    assert_eq!(out.lines().collect::<Vec<_>>(), ["terms", "title"]);
    let (ok, _, _) = orb(&["ns", "rm", "feeds", "title"]);
    assert!(ok);
    let (ok, _, err) = orb(&["ns", "get", "feeds", "title"]);
    assert!(!ok && err.contains("error[key_not_found]"), "{err}");
    let (ok, out, _) = orb(&["ns", "ls"]);
    assert!(ok && out.contains("feeds  1 keys"), "{out}");

    // `orb invoke --ns` gives a function its namespace, with --set and --write-to.
    let kv = guest_path("kv");
    let kv = kv.to_str().unwrap();
    for want in ["1", "2"] {
        let (ok, out, err) = orb(&[
            "invoke",
            kv,
            "counter",
            "--ns",
            "feeds",
            "--write-to",
            "last",
        ]);
        assert!(ok, "{err}");
        assert_eq!(out.trim(), want);
    }
    let (ok, out, _) = orb(&["ns", "get", "feeds", "last"]);
    assert!(ok && out.trim() == "2", "{out}");
    let (ok, out, err) = orb(&[
        "invoke",
        kv,
        "get",
        "key=mood",
        "--ns",
        "feeds",
        "--set",
        r#"{"mood":"sunny"}"#,
    ]);
    assert!(ok, "{err}");
    assert_eq!(out.trim(), r#""sunny""#);
    let (ok, _, err) = orb(&["invoke", kv, "counter", "--ns", "feeds", "--local"]);
    assert!(!ok && err.contains("--local"), "{err}");
}

#[tokio::test]
async fn export_then_import_into_a_fresh_node_reproduces_the_namespace() {
    let a = Server::start(&[]);
    for (k, v) in [
        ("t/1", json!(20.5)),
        ("t/2", json!({"on": true})),
        ("name", json!("home")),
        ("list", json!([1, "x", null])),
    ] {
        assert_eq!(put(&a, &a.token, "home", k, &v).await.0, 200);
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("home.json");
    let cli = |s: &Server, args: &[&str]| {
        let out = std::process::Command::new(orb_bin())
            .env("ORB_TOKEN", &s.token)
            .args(args)
            .args(["--server", &s.url])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    cli(&a, &["ns", "export", "home", "-o", file.to_str().unwrap()]);
    let b = Server::start(&[]);
    cli(&b, &["ns", "import", "home", file.to_str().unwrap()]);
    assert_eq!(
        b.get("/v1/namespaces/home/export").await.1,
        a.get("/v1/namespaces/home/export").await.1
    );
    assert_eq!(
        b.get("/v1/namespaces/home/keys/t/2").await.1,
        json!({"on": true})
    );
    let (st, body) = b.post_json("/v1/namespaces/home/import", &json!([1])).await;
    assert_error(st, &body, 400, "invalid_request");
}

#[tokio::test]
async fn watch_streams_committed_changes_under_a_prefix() {
    use futures_util::StreamExt as _;
    let mut s = Server::start(&[]);
    let kv = s.deploy("kv").await;
    let resp = s
        .http
        .get(format!("{}/v1/namespaces/home/watch?prefix=sensor/", s.url))
        .bearer_auth(&s.token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let mut stream = resp.bytes_stream();
    // Not under the prefix: not sent.
    put(&s, &s.token, "home", "other", &json!(0)).await;
    put(&s, &s.token, "home", "sensor/a", &json!({"t": 20})).await;
    // A guest's committed write is a change too.
    let (st, _) = s
        .post_json("/v1/invoke", &json!({"function": kv, "export": "put", "params": {"key": "sensor/b", "value": "21"}, "namespace": "home"}))
        .await;
    assert_eq!(st, 200);
    s.http
        .delete(format!("{}/v1/namespaces/home/keys/sensor/a", s.url))
        .bearer_auth(&s.token)
        .send()
        .await
        .unwrap();
    let mut text = String::new();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    while text.matches("event:").count() < 3 {
        let chunk = match tokio::time::timeout_at(deadline, stream.next()).await {
            Ok(c) => c.unwrap().unwrap(),
            Err(_) => panic!("timed out; got so far: {text:?}"),
        };
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    let events: Vec<&str> = text.lines().filter(|l| l.starts_with("event:")).collect();
    assert_eq!(
        events,
        ["event: set", "event: set", "event: delete"],
        "{text}"
    );
    assert!(
        text.contains(r#""key":"sensor/a","value":{"t":20}"#),
        "{text}"
    );
    assert!(text.contains(r#""key":"sensor/b","value":21"#), "{text}");
    assert!(!text.contains(r#""key":"other""#), "{text}");

    // An open watch does not hold up a graceful shutdown: its stream ends.
    s.terminate();
    let status = s.wait_for(std::time::Duration::from_secs(15));
    assert!(status.is_some_and(|st| st.success()), "{status:?}");
    let end = tokio::time::timeout(std::time::Duration::from_secs(5), async {
        while let Some(Ok(_)) = stream.next().await {}
    })
    .await;
    assert!(end.is_ok(), "the watch stream did not end");
}

#[tokio::test]
async fn account_quotas_refuse_writes_from_http_and_guests() {
    let cfg_dir = tempfile::tempdir().unwrap();
    let cfg = cfg_dir.path().join("orb.toml");
    std::fs::write(
        &cfg,
        "max_keys_per_account = 3\nmax_bytes_per_account = 1000\n",
    )
    .unwrap();
    let s = Server::start(&["--config", cfg.to_str().unwrap()]);
    for k in ["a", "b"] {
        assert_eq!(put(&s, &s.token, "one", k, &json!(1)).await.0, 200);
    }
    assert_eq!(put(&s, &s.token, "two", "c", &json!(1)).await.0, 200);
    let (st, body) = put(&s, &s.token, "two", "d", &json!(1)).await;
    let e = assert_error(st, &body, 403, "quota_exceeded");
    assert_eq!(e["details"]["quota"], "keys");
    let (st, body) = put(&s, &s.token, "one", "a", &json!("x".repeat(2000))).await;
    let e = assert_error(st, &body, 403, "quota_exceeded");
    assert_eq!(e["details"]["quota"], "bytes");
    // A guest's commit is refused the same way, and writes nothing.
    let kv = s.deploy("kv").await;
    let (st, body) = s
        .post_json("/v1/invoke", &json!({"function": kv, "export": "put", "params": {"key": "e", "value": "1"}, "namespace": "two"}))
        .await;
    assert_error(st, &body, 403, "quota_exceeded");
    assert_eq!(s.get("/v1/namespaces/two/keys/e").await.0, 404);
    // Overwriting within the quota still works.
    assert_eq!(put(&s, &s.token, "one", "a", &json!(2)).await.0, 200);
}
