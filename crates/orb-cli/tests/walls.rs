//! Walls inside an account (issue 16): a public token sees and touches only
//! what its grant names; whitelists apply to every public-token call;
//! attenuation and the grant's mode bind what the guest does.

mod common;
use common::*;
use serde_json::{Value, json};

fn attenuate(token: &str, n: orb_auth::Narrowing) -> String {
    orb_auth::attenuate(token, &n).unwrap()
}

async fn delete_as(s: &Server, path: &str, token: &str) -> (u16, Value) {
    decode(
        s.http
            .delete(format!("{}{path}", s.url))
            .header("authorization", format!("Bearer {token}"))
            .send()
            .await
            .unwrap(),
    )
    .await
}

/// The owner deploys a kappa of `events`' `observe`; its ref.
async fn new_kappa(s: &Server, events: &str) -> String {
    let (st, k) = s
        .put_json_as(
            "/kappa",
            &json!({"function": events, "export": "observe"}),
            Some(&s.token),
        )
        .await;
    assert_eq!(st, 201, "{k}");
    k["ref"].as_str().unwrap().to_string()
}

fn ids(list: &Value, field: &str, id: &str) -> Vec<String> {
    list[field]
        .as_array()
        .unwrap_or_else(|| panic!("no `{field}` in {list}"))
        .iter()
        .map(|v| v[id].as_str().unwrap_or_default().to_string())
        .collect()
}

#[tokio::test]
async fn a_public_token_sees_and_touches_only_its_own() {
    let s = Server::start(&[]);
    let calc = s.deploy("calc").await;
    let events = s.deploy("events").await;
    s.whitelist("home1", &[&calc]).await;

    // The developer's own objects: a call, a schedule, a kappa, a trigger
    // and its rule, a dead letter.
    let (st, mine) = s.call(&calc, "add", json!({"a": 1, "b": 2})).await;
    assert_eq!(st, 200, "{mine}");
    let dev_act = mine["activation"].as_str().unwrap().to_string();
    let (st, sched) = s
        .post_json(
            "/v1/schedules",
            &json!({"function": calc, "export": "add", "params": {"a": 1, "b": 1}, "every": "1h"}),
        )
        .await;
    assert_eq!(st, 201, "{sched}");
    let sched_id = sched["id"].as_str().unwrap().to_string();
    let kref = new_kappa(&s, &events).await;
    for reading in [20.0, 21.0, 22.0] {
        let (st, out) = s
            .post_json(&format!("/kappa/{kref}"), &json!(reading))
            .await;
        assert_eq!(st, 200, "{out}");
    }
    let (st, t) = s
        .put_json_as("/v1/triggers/order", &json!({}), Some(&s.token))
        .await;
    assert!(st == 200 || st == 201, "{t}");
    let (st, r) = s
        .put_json_as(
            "/v1/rules/bill",
            &json!({"trigger": "order", "function": calc, "export": "add", "params": {"a": 1, "b": 2}}),
            Some(&s.token),
        )
        .await;
    assert!(st == 200 || st == 201, "{r}");

    // A home's token: one namespace; may upload.
    let home = s
        .mint(&json!({"namespaces": {"home1": "rw"}, "upload": true, "schedules": "2@1m"}))
        .await;
    let home = home.as_str();

    // Activations: none of the developer's, by list or by id.
    let (st, list) = s.get_as("/v1/activations?limit=1000", Some(home)).await;
    assert_eq!(st, 200, "{list}");
    assert!(
        list["activations"].as_array().unwrap().is_empty(),
        "a public token lists the developer's activations: {list}"
    );
    let (st, e) = s
        .get_as(&format!("/v1/activations/{dev_act}"), Some(home))
        .await;
    assert_error(st, &e, 404, "activation_not_found");
    // Its own call it sees.
    let (st, own) = s
        .post_json_as(
            "/v1/invoke",
            &json!({"function": calc, "export": "add", "params": {"a": 2, "b": 2}, "namespace": "home1"}),
            Some(home),
        )
        .await;
    assert_eq!(st, 200, "{own}");
    let own_act = own["activation"].as_str().unwrap();
    let (_, list) = s.get_as("/v1/activations?limit=1000", Some(home)).await;
    assert_eq!(ids(&list, "activations", "id"), vec![own_act.to_string()]);
    assert_eq!(
        s.get_as(&format!("/v1/activations/{own_act}"), Some(home))
            .await
            .0,
        200
    );
    // The developer sees both.
    let (_, all) = s.get("/v1/activations?limit=1000").await;
    let all = ids(&all, "activations", "id");
    assert!(all.contains(&dev_act) && all.contains(&own_act.to_string()));

    // Schedules: not listed, not shown, not deleted.
    let (_, list) = s.get_as("/v1/schedules", Some(home)).await;
    assert!(list["schedules"].as_array().unwrap().is_empty(), "{list}");
    let (st, e) = s
        .get_as(&format!("/v1/schedules/{sched_id}"), Some(home))
        .await;
    assert_error(st, &e, 404, "schedule_not_found");
    let (st, e) = delete_as(&s, &format!("/v1/schedules/{sched_id}"), home).await;
    assert_error(st, &e, 404, "schedule_not_found");
    assert_eq!(s.get(&format!("/v1/schedules/{sched_id}")).await.0, 200);
    // Its own schedule it manages.
    let (st, its) = s
        .post_json_as(
            "/v1/schedules",
            &json!({"function": calc, "export": "add", "params": {"a": 1, "b": 1}, "namespace": "home1", "every": "1h"}),
            Some(home),
        )
        .await;
    assert_eq!(st, 201, "{its}");
    let (_, list) = s.get_as("/v1/schedules", Some(home)).await;
    assert_eq!(
        ids(&list, "schedules", "id"),
        vec![its["id"].as_str().unwrap().to_string()]
    );

    // Kappas: the developer's (code not whitelisted for it) is not there.
    let (_, list) = s.get_as("/kappa", Some(home)).await;
    assert!(list["kappas"].as_array().unwrap().is_empty(), "{list}");
    let (st, e) = s.get_as(&format!("/kappa/{kref}"), Some(home)).await;
    assert_error(st, &e, 404, "kappa_not_found");
    assert_eq!(
        s.get(&format!("/kappa/{kref}")).await,
        (200, json!({"count": 3, "mean": 21.0})),
        "its output is still there"
    );

    // Triggers and rules: none it was not granted.
    let (_, list) = s.get_as("/v1/triggers", Some(home)).await;
    assert!(list["triggers"].as_array().unwrap().is_empty(), "{list}");
    let (_, list) = s.get_as("/v1/rules", Some(home)).await;
    assert!(list["rules"].as_array().unwrap().is_empty(), "{list}");
    let (st, e) = s.get_as("/v1/rules/bill", Some(home)).await;
    assert_error(st, &e, 404, "rule_not_found");
    let (st, e) = s.get_as("/v1/triggers/order", Some(home)).await;
    assert_error(st, &e, 404, "trigger_not_found");

    // Functions: it sees the whitelisted one only, and deletes none.
    let (_, list) = s.get_as("/v1/functions", Some(home)).await;
    assert_eq!(ids(&list, "functions", "hash"), vec![calc.clone()]);
    let (st, e) = s
        .get_as(&format!("/v1/functions/{events}"), Some(home))
        .await;
    assert_error(st, &e, 404, "function_not_found");
    let (st, e) = delete_as(&s, &format!("/v1/functions/{calc}"), home).await;
    assert_error(st, &e, 403, "permission_denied");
    let (st, e) = delete_as(&s, &format!("/v1/functions/{events}"), home).await;
    assert_error(st, &e, 404, "function_not_found");
    assert_eq!(s.get(&format!("/v1/functions/{events}")).await.0, 200);

    // Aliases: only those naming code it may run.
    for (name, f) in [("adder", &calc), ("stats", &events)] {
        let (st, a) = s
            .put_json_as(
                &format!("/v1/aliases/{name}"),
                &json!({"function": f}),
                Some(&s.token),
            )
            .await;
        assert_eq!(st, 200, "{a}");
    }
    let (_, list) = s.get_as("/v1/aliases", Some(home)).await;
    assert_eq!(ids(&list, "aliases", "name"), vec!["adder".to_string()]);
    let (st, e) = s.get_as("/v1/aliases/stats", Some(home)).await;
    assert_error(st, &e, 404, "alias_not_found");

    // Dead letters: the developer's failed async call is not its.
    let bad = s.deploy("misbehave").await;
    let (st, q) = s
        .post_json(
            "/v1/invoke",
            &json!({"function": bad, "export": "boom", "params": {"msg": "x"}, "async": true}),
        )
        .await;
    assert_eq!(st, 202, "{q}");
    let id = q["activation"].as_str().unwrap();
    let (_, a) = s.get(&format!("/v1/activations/{id}?wait=20s")).await;
    assert_eq!(a["status"], "failed", "{a}");
    let (_, dead) = s.get("/v1/dead-letters").await;
    assert_eq!(dead["dead_letters"].as_array().unwrap().len(), 1, "{dead}");
    let (_, dead) = s.get_as("/v1/dead-letters", Some(home)).await;
    assert!(
        dead["dead_letters"].as_array().unwrap().is_empty(),
        "{dead}"
    );
    let (st, e) = delete_as(&s, &format!("/v1/dead-letters/{id}"), home).await;
    assert_error(st, &e, 404, "activation_not_found");
}

#[tokio::test]
async fn whitelists_apply_to_public_calls_without_a_namespace() {
    let s = Server::start(&[]);
    let calc = s.deploy("calc").await;
    s.whitelist("home1", &[]).await;
    let home = s
        .mint(&json!({"namespaces": {"home1": "rw"}, "upload": true}))
        .await;

    // Naming no namespace no longer skips the whitelist.
    let (st, e) = s
        .call_as(&home, &calc, "add", json!({"a": 1, "b": 2}))
        .await;
    assert_error(st, &e, 403, "code_not_whitelisted");
    // Code it uploads itself is stored, but runs only when allowed.
    let bytes = guest("misbehave");
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(&bytes);
    let (st, e) = s
        .post_json_as(
            "/v1/invoke",
            &json!({"component": b64, "export": "add", "params": {"a": 1, "b": 2}}),
            Some(&home),
        )
        .await;
    assert_error(st, &e, 403, "code_not_whitelisted");
    let (st, up) = s.upload_as(bytes, Some(&home)).await;
    assert!(st == 200 || st == 201, "{up}");
    let uploaded = up["hash"].as_str().unwrap().to_string();
    let (st, e) = s
        .call_as(&home, &uploaded, "add", json!({"a": 1, "b": 2}))
        .await;
    assert_error(st, &e, 403, "code_not_whitelisted");
    assert_eq!(s.get(&format!("/v1/functions/{uploaded}")).await.0, 200);
    let (st, e) = s.get_as(&format!("/http/{uploaded}/"), Some(&home)).await;
    assert_error(st, &e, 403, "code_not_whitelisted");

    // Whitelisted in a namespace of its grant: runs with or without it.
    s.whitelist("home1", &[&calc]).await;
    let (st, out) = s
        .call_as(&home, &calc, "add", json!({"a": 1, "b": 2}))
        .await;
    assert_eq!((st, &out["result"]), (200, &json!(3)), "{out}");
    // Or named by the grant's `functions`.
    let listed = s.mint(&json!({"functions": [uploaded]})).await;
    let (st, out) = s
        .call_as(&listed, &uploaded, "add", json!({"a": 2, "b": 2}))
        .await;
    assert_eq!((st, &out["result"]), (200, &json!(4)), "{out}");
    // The developer's private token is not bound by whitelists.
    let (st, _) = s.call(&uploaded, "add", json!({"a": 2, "b": 2})).await;
    assert_eq!(st, 200);
}

#[tokio::test]
async fn attenuation_binds_the_guests_bucket_opens() {
    let s = Server::start(&[]);
    let kv2 = s.deploy("kv2").await;
    for ns in ["home1", "home2"] {
        s.whitelist(ns, &[&kv2]).await;
    }
    s.put_json_as(
        "/v1/namespaces/home2/keys/x",
        &json!("secret"),
        Some(&s.token),
    )
    .await;
    let both = s
        .mint(&json!({"namespaces": {"home1": "rw", "home2": "rw"}}))
        .await;
    let narrowed = attenuate(
        &both,
        orb_auth::Narrowing {
            namespaces: Some(vec!["home1".into()]),
            ..Default::default()
        },
    );
    let get_x = json!({"function": kv2, "export": "get-from",
        "params": {"bucket": "home2", "key": "x"}, "namespace": "home1"});
    // The full token opens home2 …
    let (st, out) = s.post_json_as("/v1/invoke", &get_x, Some(&both)).await;
    assert_eq!(
        (st, &out["result"]),
        (200, &json!({"ok": "\"secret\""})),
        "{out}"
    );
    // … the copy narrowed to home1 does not.
    let (st, out) = s.post_json_as("/v1/invoke", &get_x, Some(&narrowed)).await;
    assert_eq!(
        (st, &out["result"]),
        (200, &json!({"err": "access-denied"})),
        "an attenuated token's guest opened a namespace the attenuation excludes: {out}"
    );
    let put_y = json!({"function": kv2, "export": "put-into",
        "params": {"bucket": "home2", "key": "y", "value": "1"}, "namespace": "home1"});
    let (st, out) = s.post_json_as("/v1/invoke", &put_y, Some(&narrowed)).await;
    assert_eq!(
        (st, &out["result"]),
        (200, &json!({"err": "access-denied"})),
        "{out}"
    );
    assert_eq!(s.get("/v1/namespaces/home2/keys/y").await.0, 404);
}

#[tokio::test]
async fn a_write_only_grant_cannot_read() {
    let s = Server::start(&[]);
    let kv2 = s.deploy("kv2").await;
    s.whitelist("home", &[&kv2]).await;
    s.whitelist("inbox", &[&kv2]).await;
    s.put_json_as(
        "/v1/namespaces/home/keys/x",
        &json!("private"),
        Some(&s.token),
    )
    .await;
    s.put_json_as(
        "/v1/namespaces/inbox/keys/x",
        &json!("mail"),
        Some(&s.token),
    )
    .await;
    let writer = s
        .mint(&json!({"namespaces": {"home": "w", "inbox": "w"}}))
        .await;
    let call = |export: &str, params: Value| json!({"function": kv2, "export": export, "params": params, "namespace": "home"});
    // Its own namespace: writes go through, reads are refused.
    let (st, out) = s
        .post_json_as(
            "/v1/invoke",
            &call("put-into", json!({"bucket": "", "key": "y", "value": "5"})),
            Some(&writer),
        )
        .await;
    assert_eq!((st, &out["result"]), (200, &json!({"ok": null})), "{out}");
    assert_eq!(s.get("/v1/namespaces/home/keys/y").await.1, json!(5));
    for bucket in ["", "inbox"] {
        let (st, out) = s
            .post_json_as(
                "/v1/invoke",
                &call("get-from", json!({"bucket": bucket, "key": "x"})),
                Some(&writer),
            )
            .await;
        assert_eq!(
            (st, &out["result"]),
            (200, &json!({"err": "access-denied"})),
            "a `w` grant read bucket `{bucket}`: {out}"
        );
        let (st, out) = s
            .post_json_as(
                "/v1/invoke",
                &call("keys", json!({"bucket": bucket})),
                Some(&writer),
            )
            .await;
        assert_eq!(st, 200, "{out}");
        assert!(
            out["result"].get("ok").is_none(),
            "a `w` grant listed `{bucket}`: {out}"
        );
    }
    // Over HTTP too.
    let (st, e) = s.get_as("/v1/namespaces/home/keys/x", Some(&writer)).await;
    assert_error(st, &e, 403, "permission_denied");
}

#[tokio::test]
async fn private_tokens_rotate_and_access_recovers_offline() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start_in(dir.path(), &[]);
    let (st, acc) = s.post_json("/v1/accounts", &json!({"name": "dev"})).await;
    assert_eq!(st, 201, "{acc}");
    let first = acc["token"].as_str().unwrap().to_string();
    let device = s
        .mint_as(&json!({"namespaces": {"home": "r"}}), Some(&first))
        .await;

    // `orb token rotate`: a new private token; the old lineage revoked.
    let (ok, out, err) = orb_t(&first, &["token", "rotate", "--server", &s.url]);
    assert!(ok, "{err}");
    let second = out.trim().to_string();
    assert_ne!(second, first);
    for old in [&first, &device] {
        let (st, e) = s.get_as("/v1/functions", Some(old)).await;
        assert_error(st, &e, 401, "token_revoked");
    }
    assert_eq!(s.get_as("/v1/functions", Some(&second)).await.0, 200);
    s.mint_as(&json!({"namespaces": {"home": "r"}}), Some(&second))
        .await;

    // Revoking your own private token locks the account out …
    let (st, out) = s
        .post_json_as(
            "/v1/tokens/revoke",
            &json!({"token": second}),
            Some(&second),
        )
        .await;
    assert_eq!(st, 200, "{out}");
    let (st, e) = s.get_as("/v1/functions", Some(&second)).await;
    assert_error(st, &e, 401, "token_revoked");
    // … until an operator with the data directory recovers it, offline.
    let s = {
        assert!(s.stop().success());
        let (ok, out, err) = orb_t(
            "",
            &[
                "admin",
                "recover",
                "--data-dir",
                dir.path().to_str().unwrap(),
                "--account",
                "dev",
            ],
        );
        assert!(ok, "{err}");
        let third = out.trim().to_string();
        let log = std::fs::read_to_string(dir.path().join("recover.log")).unwrap();
        assert!(
            log.contains("recovered account acc_") && log.contains("(dev)"),
            "{log}"
        );
        // The admin too: a fresh admin.token.
        let old_admin = std::fs::read_to_string(dir.path().join("admin.token")).unwrap();
        let (ok, out, err) = orb_t(
            "",
            &[
                "admin",
                "recover",
                "--data-dir",
                dir.path().to_str().unwrap(),
            ],
        );
        assert!(ok, "{err}");
        let new_admin = std::fs::read_to_string(dir.path().join("admin.token")).unwrap();
        assert_eq!(new_admin.trim(), out.trim());
        assert_ne!(new_admin, old_admin);
        let s = Server::start_in(dir.path(), &[]);
        assert_eq!(s.get_as("/v1/functions", Some(&third)).await.0, 200);
        let (st, e) = s.get_as("/v1/functions", Some(&second)).await;
        assert_error(st, &e, 401, "token_revoked");
        s
    };
    assert_eq!(
        s.get("/v1/functions").await.0,
        200,
        "the recovered admin token"
    );
    // Recovery needs the node stopped (the store is locked while it runs).
    let (ok, _, err) = orb_t(
        "",
        &[
            "admin",
            "recover",
            "--data-dir",
            dir.path().to_str().unwrap(),
        ],
    );
    assert!(!ok && err.contains("stop the node"), "{err}");
}

#[tokio::test]
async fn anonymous_public_routes_are_rate_limited_per_route_and_address() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("orb.toml"),
        "public_route_rate = \"3/60s\"\n",
    )
    .unwrap();
    let s = Server::start_in(dir.path(), &[]);
    let http = s.deploy("http-hello").await;
    for name in ["shop", "blog"] {
        let (st, a) = s
            .put_json_as(
                &format!("/v1/aliases/{name}"),
                &json!({"function": http, "public": true}),
                Some(&s.token),
            )
            .await;
        assert_eq!(st, 200, "{a}");
    }
    let get = |path: String| {
        let http = s.http.clone();
        let url = format!("{}{path}", s.url);
        async move { http.get(url).send().await.unwrap() }
    };
    for _ in 0..3 {
        assert_eq!(get("/http/shop/".into()).await.status(), 200);
    }
    let r = get("/http/shop/".into()).await;
    assert_eq!(r.status(), 429);
    let retry: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    let (_, body) = decode(r).await;
    assert_eq!(body["error"]["code"], "rate_limited", "{body}");
    // Another route has its own bucket; a caller with a token is not limited here.
    assert_eq!(get("/http/blog/".into()).await.status(), 200);
    for _ in 0..5 {
        let (st, _) = s.get("/http/shop/").await;
        assert_eq!(st, 200);
    }
}

#[tokio::test]
async fn a_tampered_compiled_artifact_is_recompiled_never_run() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start_in(dir.path(), &[]);
    let calc = s.deploy("calc").await;
    let hello = s.deploy("hello").await;
    assert!(s.stop().success());
    let engine = std::fs::read_dir(dir.path().join("compiled"))
        .unwrap()
        .flatten()
        .find(|e| e.path().is_dir())
        .unwrap()
        .path();
    let artifact =
        |hash: &str| engine.join(format!("{}.cwasm", hash.trim_start_matches("sha256:")));
    // Another function's artifact put in calc's place: valid code, wrong id.
    std::fs::copy(artifact(&hello), artifact(&calc)).unwrap();
    let s = Server::start_in(dir.path(), &[]);
    let (st, out) = s.call(&calc, "add", json!({"a": 2, "b": 40})).await;
    assert_eq!((st, &out["result"]), (200, &json!(42)), "{out}");
    assert_eq!(
        s.metric("orb_compile_cache_misses_total").await,
        1.0,
        "recompiled"
    );
    assert_ne!(
        std::fs::read(artifact(&calc)).unwrap(),
        std::fs::read(artifact(&hello)).unwrap(),
        "the swapped artifact was replaced"
    );
    // A flipped byte in an artifact: recompiled too.
    assert!(s.stop().success());
    let mut bytes = std::fs::read(artifact(&hello)).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x5a;
    std::fs::write(artifact(&hello), &bytes).unwrap();
    let s = Server::start_in(dir.path(), &[]);
    let (st, out) = s.call(&hello, "greet", json!({"name": "Ada"})).await;
    assert_eq!(
        (st, out["result"].as_str()),
        (200, Some("Hello, Ada!")),
        "{out}"
    );
    assert_eq!(s.metric("orb_compile_cache_misses_total").await, 1.0);
    // The untouched one still loads from disk.
    let (st, _) = s.call(&calc, "add", json!({"a": 1, "b": 1})).await;
    assert_eq!(st, 200);
    assert_eq!(
        s.metric("orb_compile_cache_hits_total{source=\"disk\"}")
            .await,
        1.0
    );
}

#[tokio::test]
async fn a_kappa_message_retried_with_its_id_is_applied_once() {
    let s = Server::start(&[]);
    let events = s.deploy("events").await;
    let kref = new_kappa(&s, &events).await;
    let send = |id: &str, reading: f64| {
        let rb = s
            .http
            .post(format!("{}/kappa/{kref}", s.url))
            .header("authorization", s.bearer())
            .header("idempotency-key", id)
            .json(&json!(reading));
        async move { decode(rb.send().await.unwrap()).await }
    };
    let mut first = Vec::new();
    for (i, r) in [1.0, 2.0, 3.0].iter().enumerate() {
        let (st, out) = send(&format!("m{i}"), *r).await;
        assert_eq!(st, 200, "{out}");
        first.push(out);
    }
    // The sender retries m1 and m2 (say its connection dropped): answered
    // from the record, not applied again.
    for i in [1, 2] {
        let (st, out) = send(&format!("m{i}"), [1.0, 2.0, 3.0][i]).await;
        assert_eq!(st, 200, "{out}");
        assert_eq!(out["activation"], first[i]["activation"], "{out}");
        assert_eq!(out["emitted"], first[i]["emitted"], "{out}");
        assert_eq!(out["replayed"], true, "{out}");
    }
    for (i, r) in [4.0, 5.0, 6.0].iter().enumerate() {
        let (st, out) = send(&format!("m{}", i + 3), *r).await;
        assert_eq!(st, 200, "{out}");
    }
    // Exactly six readings were applied: stats after 3 and after 6.
    let mut popped = Vec::new();
    loop {
        let (st, v) = s.get(&format!("/kappa/{kref}")).await;
        if st == 204 {
            break;
        }
        assert_eq!(st, 200, "{v}");
        popped.push(v);
    }
    assert_eq!(
        popped,
        vec![
            json!({"count": 3, "mean": 2.0}),
            json!({"count": 6, "mean": 3.5})
        ]
    );
    let (st, e) = decode(
        s.http
            .post(format!("{}/kappa/{kref}", s.url))
            .header("authorization", s.bearer())
            .header("idempotency-key", "a/b")
            .json(&json!(1.0))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_error(st, &e, 400, "invalid_request");
}
