//! Accounts, private and public tokens, whitelists, rate limits, revocation
//! and every kind of bad token — over HTTP against a real node.

mod common;
use common::*;
use serde_json::{Value, json};

async fn new_account(s: &Server, name: &str) -> (String, String) {
    let (st, out) = s.post_json("/v1/accounts", &json!({ "name": name })).await;
    assert_eq!(st, 201, "{out}");
    (
        out["account"].as_str().unwrap().to_string(),
        out["token"].as_str().unwrap().to_string(),
    )
}

async fn mint(s: &Server, private: &str, grant: Value) -> String {
    s.mint_as(&grant, Some(private)).await
}

async fn deploy_as(s: &Server, token: &str, name: &str) -> String {
    let (st, out) = s.upload_as(guest(name), Some(token)).await;
    assert!(st == 201 || st == 200, "{st} {out}");
    out["hash"].as_str().unwrap().to_string()
}

fn attenuate(token: &str, n: orb_auth::Narrowing) -> String {
    orb_auth::attenuate(token, &n).unwrap()
}

#[tokio::test]
async fn admin_token_file_and_account_isolation() {
    let s = Server::start(&[]);
    // The admin token file is private to its owner.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(s.data_dir.join("admin.token"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let (_, a) = new_account(&s, "a").await;
    let (_, b) = new_account(&s, "b").await;
    // Only the admin creates accounts.
    let (st, body) = s.post_json_as("/v1/accounts", &json!({}), Some(&a)).await;
    assert_error(st, &body, 403, "permission_denied");

    let hash = deploy_as(&s, &a, "hello").await;
    let (st, out) = s.call_as(&a, &hash, "greet", json!({"name": "A"})).await;
    assert_eq!(st, 200, "{out}");
    let act = out["activation"].as_str().unwrap().to_string();

    // B sees nothing of A's: not the function, not the call, not the record.
    let (st, body) = s.call_as(&b, &hash, "greet", json!({"name": "B"})).await;
    assert_error(st, &body, 404, "function_not_found");
    let (st, body) = s.get_as(&format!("/v1/functions/{hash}"), Some(&b)).await;
    assert_error(st, &body, 404, "function_not_found");
    assert_eq!(
        s.get_as("/v1/functions", Some(&b)).await.1["functions"],
        json!([])
    );
    let (st, body) = s.get_as(&format!("/v1/activations/{act}"), Some(&b)).await;
    assert_error(st, &body, 404, "activation_not_found");
    assert_eq!(
        s.get_as("/v1/activations", Some(&b)).await.1["activations"],
        json!([])
    );
    let r = s
        .http
        .delete(format!("{}/v1/functions/{hash}", s.url))
        .bearer_auth(&b)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);

    // B uploads the same bytes: stored once, now owned by both.
    assert_eq!(deploy_as(&s, &b, "hello").await, hash);
    assert_eq!(
        s.call_as(&b, &hash, "greet", json!({"name": "B"})).await.0,
        200
    );
    // A deletes its copy; B keeps working.
    let r = s
        .http
        .delete(format!("{}/v1/functions/{hash}", s.url))
        .bearer_auth(&a)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(
        s.call_as(&a, &hash, "greet", json!({"name": "A"})).await.0,
        404
    );
    assert_eq!(
        s.call_as(&b, &hash, "greet", json!({"name": "B"})).await.0,
        200
    );
}

#[tokio::test]
async fn public_token_permissions_each_on_and_off() {
    let s = Server::start(&[]);
    let (_, private) = new_account(&s, "p").await;
    let hello = deploy_as(&s, &private, "hello").await;
    let calc = deploy_as(&s, &private, "calc").await;

    // upload off / on
    let no_upload = mint(&s, &private, json!({})).await;
    let (st, body) = s.upload_as(guest("misbehave"), Some(&no_upload)).await;
    assert_error(st, &body, 403, "permission_denied");
    // A refused upload's body is still read, so the client gets the 403 (not
    // a broken pipe) and its connection stays usable.
    for _ in 0..3 {
        let (st, body) = s.upload_as(vec![0u8; 8 << 20], Some(&no_upload)).await;
        assert_error(st, &body, 403, "permission_denied");
        assert_eq!(s.get_as("/v1/functions", Some(&no_upload)).await.0, 200);
    }
    use base64::Engine as _;
    let inline = base64::engine::general_purpose::STANDARD.encode(guest("misbehave"));
    let (st, body) = s
        .post_json_as(
            "/v1/invoke",
            &json!({"component": inline, "export": "noop"}),
            Some(&no_upload),
        )
        .await;
    assert_error(st, &body, 403, "permission_denied");
    // …and calls by hash only code its grant allows: whitelists always
    // apply to public tokens (below: `functions`, or a whitelisted namespace).
    let (st, body) = s
        .call_as(&no_upload, &hello, "greet", json!({"name": "x"}))
        .await;
    assert_error(st, &body, 403, "code_not_whitelisted");
    let upload = mint(&s, &private, json!({"upload": true})).await;
    assert_eq!(s.upload_as(guest("misbehave"), Some(&upload)).await.0, 201);

    // functions allowlist on / off
    let only_hello = mint(&s, &private, json!({"functions": [hello]})).await;
    assert_eq!(
        s.call_as(&only_hello, &hello, "greet", json!({"name": "x"}))
            .await
            .0,
        200
    );
    let (st, body) = s
        .call_as(&only_hello, &calc, "add", json!({"a": 1, "b": 2}))
        .await;
    assert_error(st, &body, 403, "permission_denied");
    let (st, body) = s
        .call_as(&no_upload, &calc, "add", json!({"a": 1, "b": 2}))
        .await;
    assert_error(st, &body, 403, "code_not_whitelisted");

    // namespaces: without the grant → denied; with it (and whitelisted) → runs.
    let (st, _) = s
        .put_json_as(
            "/v1/namespaces/app1/whitelist",
            &json!({"functions": [hello]}),
            Some(&private),
        )
        .await;
    assert_eq!(st, 200);
    let with_ns = mint(&s, &private, json!({"namespaces": {"app1": "r"}})).await;
    let call_ns =
        json!({"function": hello, "export": "greet", "params": {"name": "n"}, "namespace": "app1"});
    assert_eq!(
        s.post_json_as("/v1/invoke", &call_ns, Some(&with_ns))
            .await
            .0,
        200
    );
    let (st, body) = s
        .post_json_as("/v1/invoke", &call_ns, Some(&no_upload))
        .await;
    assert_error(st, &body, 403, "permission_denied");
    let bad_ns = json!({"function": hello, "export": "greet", "params": {"name": "n"}, "namespace": "Bad Name!"});
    let (st, body) = s.post_json_as("/v1/invoke", &bad_ns, Some(&with_ns)).await;
    assert_error(st, &body, 400, "invalid_name");

    // Private-only operations refused to public tokens.
    let (st, body) = s
        .post_json_as("/v1/tokens", &json!({}), Some(&upload))
        .await;
    assert_error(st, &body, 403, "permission_denied");
    let (st, body) = s
        .put_json_as(
            "/v1/namespaces/app1/whitelist",
            &json!({"functions": []}),
            Some(&upload),
        )
        .await;
    assert_error(st, &body, 403, "permission_denied");
    let (st, body) = s
        .post_json_as(
            "/v1/tokens/revoke",
            &json!({"token": with_ns}),
            Some(&upload),
        )
        .await;
    assert_error(st, &body, 403, "permission_denied");
    // The whitelist did not change.
    let (st, wl) = s
        .get_as("/v1/namespaces/app1/whitelist", Some(&with_ns))
        .await;
    assert_eq!((st, wl["functions"].clone()), (200, json!([hello])));

    // Bad grants are refused with a clear code.
    for bad in [
        json!({"namespaces": {"app1": "rwx"}}),
        json!({"rate": "0/1s"}),
        json!({"expires": "soon"}),
        json!({"functions": ["nope"]}),
        json!({"unknown": 1}),
    ] {
        let (st, body) = s.post_json_as("/v1/tokens", &bad, Some(&private)).await;
        assert!(st == 400, "{bad}: {st} {body}");
    }
}

#[tokio::test]
async fn whitelist_enforced_for_public_tokens_and_refused_code_does_not_run() {
    let s = Server::start(&[]);
    let (_, private) = new_account(&s, "w").await;
    let hello = deploy_as(&s, &private, "hello").await;
    let calc = deploy_as(&s, &private, "calc").await;
    let device = mint(&s, &private, json!({"namespaces": {"home": "rw"}})).await;
    let call = |f: &str| json!({"function": f, "export": "greet", "params": {"name": "d"}, "namespace": "home"});

    // No whitelist yet: nothing runs against the namespace.
    let (st, body) = s
        .post_json_as("/v1/invoke", &call(&hello), Some(&device))
        .await;
    let e = assert_error(st, &body, 403, "code_not_whitelisted");
    assert_eq!(e["details"]["namespace"], "home");
    let (st, _) = s
        .put_json_as(
            "/v1/namespaces/home/whitelist",
            &json!({"functions": [hello]}),
            Some(&private),
        )
        .await;
    assert_eq!(st, 200);
    assert_eq!(
        s.post_json_as("/v1/invoke", &call(&hello), Some(&device))
            .await
            .0,
        200
    );
    let add =
        json!({"function": calc, "export": "add", "params": {"a": 1, "b": 2}, "namespace": "home"});
    let (st, body) = s.post_json_as("/v1/invoke", &add, Some(&device)).await;
    assert_error(st, &body, 403, "code_not_whitelisted");
    // Proof it did not run: no activation of calc.
    assert!(s.activations(&calc).await.is_empty());
    // The private token is not bound by the whitelist.
    assert_eq!(
        s.post_json_as("/v1/invoke", &add, Some(&private)).await.0,
        200
    );
    // Whitelists hold hashes only.
    let (st, body) = s
        .put_json_as(
            "/v1/namespaces/home/whitelist",
            &json!({"functions": ["latest"]}),
            Some(&private),
        )
        .await;
    assert_error(st, &body, 400, "invalid_function_id");
}

#[tokio::test]
async fn rate_limit_is_shared_by_attenuated_copies() {
    let s = Server::start(&[]);
    let (_, private) = new_account(&s, "r").await;
    let hello = deploy_as(&s, &private, "hello").await;
    let limited = mint(
        &s,
        &private,
        json!({"rate": {"count": 3, "per": "60s"}, "functions": [hello]}),
    )
    .await;
    let copy = attenuate(
        &limited,
        orb_auth::Narrowing {
            operations: Some(vec!["invoke".into()]),
            ..Default::default()
        },
    );
    assert_ne!(copy, limited);
    for t in [&limited, &copy, &limited] {
        assert_eq!(
            s.call_as(t, &hello, "greet", json!({"name": "x"})).await.0,
            200
        );
    }
    for t in [&limited, &copy] {
        let r = s
            .http
            .post(format!("{}/v1/functions/{hello}/greet", s.url))
            .bearer_auth(t)
            .json(&json!({"name": "x"}))
            .send()
            .await
            .unwrap();
        let retry: u64 = r.headers()["retry-after"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!((1..=60).contains(&retry), "{retry}");
        let (st, body) = decode(r).await;
        assert_error(st, &body, 429, "rate_limited");
    }
    // Another lineage has its own bucket.
    let other = mint(&s, &private, json!({"rate": "3/60s", "functions": [hello]})).await;
    assert_eq!(
        s.call_as(&other, &hello, "greet", json!({"name": "x"}))
            .await
            .0,
        200
    );
    // The attenuated copy cannot call what its block forbids.
    let (st, body) = s.get_as("/v1/functions", Some(&copy)).await;
    assert_error(st, &body, 403, "permission_denied");
}

#[tokio::test]
async fn revoking_a_parent_revokes_its_children_and_survives_restart() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start_in(dir.path(), &[]);
    let (_, private) = new_account(&s, "v").await;
    let hello = deploy_as(&s, &private, "hello").await;
    let parent = mint(&s, &private, json!({"functions": [hello]})).await;
    let child = attenuate(
        &parent,
        orb_auth::Narrowing {
            functions: Some(vec![hello.clone()]),
            ..Default::default()
        },
    );
    let sibling = mint(&s, &private, json!({"functions": [hello]})).await;
    for t in [&parent, &child, &sibling] {
        assert_eq!(
            s.call_as(t, &hello, "greet", json!({"name": "x"})).await.0,
            200
        );
    }
    let (st, out) = s
        .post_json_as(
            "/v1/tokens/revoke",
            &json!({"token": parent}),
            Some(&private),
        )
        .await;
    assert_eq!(st, 200, "{out}");
    for t in [&parent, &child] {
        let (st, body) = s.call_as(t, &hello, "greet", json!({"name": "x"})).await;
        assert_error(st, &body, 401, "token_revoked");
    }
    assert_eq!(
        s.call_as(&sibling, &hello, "greet", json!({"name": "x"}))
            .await
            .0,
        200
    );

    // Another account cannot revoke this account's tokens.
    let (_, other) = new_account(&s, "o").await;
    let (st, body) = s
        .post_json_as(
            "/v1/tokens/revoke",
            &json!({"token": sibling}),
            Some(&other),
        )
        .await;
    assert_error(st, &body, 403, "permission_denied");

    // Revoking a private token revokes the public tokens it minted.
    let (_, b_private) = new_account(&s, "b").await;
    let b_hello = deploy_as(&s, &b_private, "hello").await;
    let b_public = mint(&s, &b_private, json!({})).await;
    let (st, _) = s
        .post_json_as(
            "/v1/tokens/revoke",
            &json!({"token": b_private}),
            Some(&b_private),
        )
        .await;
    assert_eq!(st, 200);
    let (st, body) = s
        .call_as(&b_public, &b_hello, "greet", json!({"name": "x"}))
        .await;
    assert_error(st, &body, 401, "token_revoked");

    assert!(s.stop().success());
    let s = Server::start_in(dir.path(), &[]);
    let (st, body) = s
        .call_as(&child, &hello, "greet", json!({"name": "x"}))
        .await;
    assert_error(st, &body, 401, "token_revoked");
    assert_eq!(
        s.call_as(&sibling, &hello, "greet", json!({"name": "x"}))
            .await
            .0,
        200
    );
}

#[tokio::test]
async fn every_bad_token_is_refused_with_its_code_never_a_500() {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::URL_SAFE;
    let s = Server::start(&[]);
    let (_, private) = new_account(&s, "x").await;
    let hello = deploy_as(&s, &private, "hello").await;
    let public = mint(
        &s,
        &private,
        json!({"namespaces": {"app1": "r"}, "functions": [hello]}),
    )
    .await;
    assert_eq!(
        s.call_as(&public, &hello, "greet", json!({"name": "ok"}))
            .await
            .0,
        200
    );
    let greet = |t: Option<&str>| {
        let (s, hello) = (&s, hello.clone());
        let t = t.map(str::to_string);
        async move {
            s.post_json_as(
                &format!("/v1/functions/{hello}/greet"),
                &json!({"name": "x"}),
                t.as_deref(),
            )
            .await
        }
    };

    let (st, body) = greet(None).await;
    assert_error(st, &body, 401, "token_missing");
    for garbage in ["garbage", "!!!", "", "AAAA"] {
        let (st, body) = greet(Some(garbage)).await;
        assert!(st == 401, "{garbage}: {st} {body}");
        assert!(
            ["token_invalid", "token_missing"].contains(&body["error"]["code"].as_str().unwrap()),
            "{body}"
        );
    }
    let bytes = b64.decode(&public).unwrap();
    let (st, body) = greet(Some(&b64.encode(&bytes[..bytes.len() / 2]))).await;
    assert_error(st, &body, 401, "token_invalid");
    // One byte flipped, at every position.
    for i in 0..bytes.len() {
        let mut t = bytes.clone();
        t[i] ^= 0x01;
        let (st, body) = greet(Some(&b64.encode(&t))).await;
        assert!(st == 401 || st == 403, "flip at {i}: {st} {body}");
        assert_ne!(st, 200, "flip at {i} was accepted");
    }

    // An appended block that claims more rights gains nothing.
    let forged = {
        let u = biscuit_auth::UnverifiedBiscuit::from(&bytes).unwrap();
        let block = biscuit_auth::builder::BlockBuilder::new()
            .code(r#"grant("{\"namespaces\":{\"app1\":\"rw\",\"secret\":\"rw\"},\"upload\":true}"); kind("private"); account("acc_other");"#)
            .unwrap();
        b64.encode(u.append(block).unwrap().to_vec().unwrap())
    };
    let secret = json!({"function": hello, "export": "greet", "params": {"name": "n"}, "namespace": "secret"});
    let (st, body) = s.post_json_as("/v1/invoke", &secret, Some(&forged)).await;
    assert_error(st, &body, 403, "permission_denied");
    let (st, body) = s.upload_as(guest("calc"), Some(&forged)).await;
    assert_error(st, &body, 403, "permission_denied");
    let (st, body) = s
        .post_json_as("/v1/tokens", &json!({}), Some(&forged))
        .await;
    assert_error(st, &body, 403, "permission_denied");

    // Signed by another node's root key.
    let other = Server::start(&[]);
    let (st, body) = greet(Some(&other.token)).await;
    assert_error(st, &body, 401, "token_invalid");

    // Oversized.
    let (st, body) = greet(Some(&"A".repeat(40_000))).await;
    assert_error(st, &body, 401, "token_invalid");
    // Too many blocks.
    let mut deep = public.clone();
    for _ in 0..orb_auth::MAX_BLOCKS {
        deep = attenuate(
            &deep,
            orb_auth::Narrowing {
                operations: Some(vec!["invoke".into()]),
                ..Default::default()
            },
        );
    }
    let (st, body) = greet(Some(&deep)).await;
    assert_error(st, &body, 401, "token_invalid");

    // Expired: by the minted expiry, and by an attenuation's expiry.
    // Biscuit dates have whole seconds: a few seconds keep the "still valid"
    // checks from racing the clock.
    let short = mint(&s, &private, json!({"expires": "3s", "functions": [hello]})).await;
    let narrowed = attenuate(
        &public,
        orb_auth::Narrowing {
            expires_in: Some(std::time::Duration::from_secs(3)),
            ..Default::default()
        },
    );
    assert_eq!(greet(Some(&short)).await.0, 200);
    assert_eq!(greet(Some(&narrowed)).await.0, 200);
    for token in [&short, &narrowed] {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(8);
        let (st, body) = loop {
            let (st, body) = greet(Some(token)).await;
            if st != 200 || std::time::Instant::now() > deadline {
                break (st, body);
            }
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        };
        assert_error(st, &body, 401, "token_expired");
    }

    // Revoked.
    s.post_json_as(
        "/v1/tokens/revoke",
        &json!({"token": public}),
        Some(&private),
    )
    .await;
    let (st, body) = greet(Some(&public)).await;
    assert_error(st, &body, 401, "token_revoked");

    // Nothing above was a server error.
    assert_eq!(s.metric("orb_calls_total{status=\"internal\"}").await, 0.0);
    let (st, _) = s.get("/healthz").await;
    assert_eq!(st, 200);
}

#[tokio::test]
async fn cli_accounts_tokens_and_whitelists() {
    let s = Server::start(&[]);
    let url = s.url.clone();
    let (ok, out, err) = orb_t(
        &s.token,
        &[
            "account", "create", "--name", "home", "--server", &url, "--json",
        ],
    );
    assert!(ok, "{err}");
    let acct: Value = serde_json::from_str(&out).unwrap();
    let private = acct["token"].as_str().unwrap().to_string();

    let (ok, out, err) = orb_t(
        &private,
        &[
            "deploy",
            guest_path("hello").to_str().unwrap(),
            "--server",
            &url,
        ],
    );
    assert!(ok, "{err}");
    let hash = out.lines().next().unwrap().trim().to_string();

    let (ok, out, err) = orb_t(
        &private,
        &["ns", "whitelist", "home", "--add", &hash, "--server", &url],
    );
    assert!(ok, "{err}");
    assert_eq!(out.trim(), hash);

    let (ok, out, err) = orb_t(
        &private,
        &[
            "token",
            "mint",
            "--ns",
            "home:rw",
            "--rate",
            "5/60s",
            "--schedules",
            "1@30s",
            "--expires",
            "30d",
            "--server",
            &url,
        ],
    );
    assert!(ok, "{err}");
    let device = out.trim().to_string();

    let (ok, out, err) = orb_t(&device, &["token", "inspect"]);
    assert!(ok, "{err}");
    assert!(
        out.contains("lineage:") && out.contains("home") && out.contains("check if time"),
        "{out}"
    );

    let (ok, out, err) = orb_t(
        &device,
        &["token", "attenuate", "--op", "invoke", "--expires", "1h"],
    );
    assert!(ok, "{err}");
    let narrowed = out.trim().to_string();
    let (ok, out, err) = orb_t(
        &narrowed,
        &[
            "invoke", &hash, "greet", "name=Dev", "--params", r#"{}"#, "--server", &url,
        ],
    );
    assert!(ok, "{err}");
    assert_eq!(out.trim(), "Hello, Dev!");
    // The narrowed token may not list functions; the CLI shows the code.
    let (ok, _, err) = orb_t(&narrowed, &["fn", "ls", "--server", &url]);
    assert!(!ok && err.contains("error[permission_denied]"), "{err}");

    let (ok, _, err) = orb_t(&private, &["token", "revoke", &device, "--server", &url]);
    assert!(ok, "{err}");
    let (ok, _, err) = orb_t(
        &narrowed,
        &["invoke", &hash, "greet", "name=Dev", "--server", &url],
    );
    assert!(!ok && err.contains("error[token_revoked]"), "{err}");
    let (ok, _, err) = orb_t("", &["fn", "ls", "--server", &url]);
    assert!(!ok && err.contains("error[token_missing]"), "{err}");
}

#[tokio::test]
async fn a_browser_get_call_takes_one_unit_of_the_rate() {
    let s = Server::start(&[]);
    let hello = s.deploy("hello").await;
    let (_, tok) = s
        .post_json(
            "/v1/tokens",
            &json!({"rate": "2/60s", "functions": [hello]}),
        )
        .await;
    let tok = tok["token"].as_str().unwrap().to_string();
    let path = format!("/v1/functions/{hello}/greet?name=Web");
    for _ in 0..2 {
        let (st, out) = s.get_as(&path, Some(&tok)).await;
        assert_eq!(
            (st, out["result"].clone()),
            (200, json!("Hello, Web!")),
            "{out}"
        );
    }
    let (st, body) = s.get_as(&path, Some(&tok)).await;
    assert_error(st, &body, 429, "rate_limited");
}
