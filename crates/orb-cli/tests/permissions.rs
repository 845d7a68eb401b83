//! THE PERMISSION MATRIX (issue 16): every route of `/v1`, `/kappa` and
//! `/http` with every kind of caller, against a real node.
//!
//! One table ([`ROUTES`] × [`CALLERS`]), one helper ([`Matrix::cell`]). The
//! expected answers are the table in `docs/permissions.md`, in the style of
//! rust-analyzer's `check` tests: the test renders what the node answered for
//! every cell and compares it with that page. After a deliberate change, run
//! `UPDATE_PERMISSIONS=1 cargo test -p orb-cli --test permissions` and review
//! the diff of the page. Besides, rules that must hold whatever the page says
//! are asserted cell by cell (no 5xx; callers without a valid token get 401
//! with their exact code; no public token ever deletes code, …).

mod common;
use common::*;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::time::Duration;

/// (method, path, body, note). Placeholders: `{fn}` (calc, owned by the
/// account and whitelisted in `home`), `{events}`, `{http}` (an HTTP
/// function), `{act}` (one of the owner's activations), `{sched}`,
/// `{kappa}`; `{new:…}` is a fresh object the owner creates just before the
/// cell (so a delete by one caller does not change the next cell). Bodies
/// starting with `wasm:` are that guest's bytes; others are JSON.
const ROUTES: &[(&str, &str, &str, &str)] = &[
    ("GET", "/healthz", "", ""),
    ("GET", "/metrics", "", ""),
    ("GET", "/v1/openapi.json", "", ""),
    ("GET", "/console/", "", "the web console's page"),
    ("GET", "/v1/auth/public-key", "", ""),
    ("POST", "/v1/accounts", r#"{"name":"x"}"#, ""),
    ("POST", "/v1/tokens", r#"{"namespaces":{"home":"r"}}"#, ""),
    (
        "POST",
        "/v1/tokens/revoke",
        r#"{"token":"{new:token}"}"#,
        "a public token of the account",
    ),
    (
        "POST",
        "/v1/functions",
        "wasm:kv",
        "upload (of code no other row uses)",
    ),
    ("GET", "/v1/functions", "", ""),
    ("GET", "/v1/functions/{fn}", "", ""),
    ("DELETE", "/v1/functions/{new:fn}", "", ""),
    (
        "POST",
        "/v1/functions/{fn}/add",
        r#"{"a":1,"b":2}"#,
        "no namespace",
    ),
    ("GET", "/v1/functions/{fn}/add?a=1&b=2", "", "no namespace"),
    (
        "GET",
        "/v1/functions/{fn}/add?a=1&b=2&namespace=home",
        "",
        "namespace home",
    ),
    (
        "POST",
        "/v1/invoke",
        r#"{"function":"{fn}","export":"add","params":{"a":1,"b":2}}"#,
        "no namespace",
    ),
    (
        "POST",
        "/v1/invoke",
        r#"{"function":"{fn}","export":"add","params":{"a":1,"b":2},"namespace":"home"}"#,
        "namespace home",
    ),
    (
        "POST",
        "/v1/invoke",
        r#"{"function":"{fn}","export":"add","params":{"a":1,"b":2},"namespace":"home","write_to":"sum"}"#,
        "home, write_to",
    ),
    (
        "POST",
        "/v1/invoke",
        r#"{"function":"adder","export":"add","params":{"a":1,"b":2},"namespace":"home"}"#,
        "by alias, home",
    ),
    (
        "POST",
        "/v1/invoke",
        r#"{"function":"{fn}","export":"add","params":{"a":1,"b":2},"namespace":"home","async":true}"#,
        "async, home",
    ),
    (
        "POST",
        "/v1/invoke",
        r#"{"component":"{b64:hello}","export":"greet","params":{"name":"x"}}"#,
        "inline component (code no other row uses)",
    ),
    ("GET", "/v1/activations", "", ""),
    ("GET", "/v1/activations/{act}", "", "the owner's"),
    (
        "GET",
        "/v1/activations/stats?function={fn}",
        "",
        "counts only what the caller may list",
    ),
    ("GET", "/v1/dead-letters", "", ""),
    ("DELETE", "/v1/dead-letters/{new:dead}", "", "the owner's"),
    ("GET", "/v1/aliases", "", ""),
    ("GET", "/v1/aliases/adder", "", ""),
    ("PUT", "/v1/aliases/adder", r#"{"function":"{fn}"}"#, ""),
    ("DELETE", "/v1/aliases/{new:alias}", "", ""),
    ("POST", "/v1/aliases/{new:alias}/rollback", "", ""),
    (
        "POST",
        "/v1/schedules",
        r#"{"function":"{fn}","export":"add","params":{"a":1,"b":1},"namespace":"home","every":"1h"}"#,
        "home",
    ),
    ("GET", "/v1/schedules", "", ""),
    ("GET", "/v1/schedules/{sched}", "", "the owner's"),
    ("DELETE", "/v1/schedules/{new:schedule}", "", "the owner's"),
    ("GET", "/v1/namespaces", "", ""),
    ("GET", "/v1/namespaces/home/whitelist", "", ""),
    (
        "PUT",
        "/v1/namespaces/home/whitelist",
        r#"{"functions":["{fn}","{events}","{http}"]}"#,
        "",
    ),
    ("GET", "/v1/namespaces/home/keys", "", ""),
    ("GET", "/v1/namespaces/home/keys/k", "", ""),
    ("PUT", "/v1/namespaces/home/keys/k", "1", ""),
    ("DELETE", "/v1/namespaces/home/keys/{new:key}", "", ""),
    ("GET", "/v1/namespaces/home/export", "", ""),
    ("POST", "/v1/namespaces/home/import", r#"{"k":1}"#, ""),
    ("GET", "/v1/namespaces/home/watch", "", "status only"),
    (
        "GET",
        "/v1/namespaces/other/keys/k",
        "",
        "a namespace outside the grants",
    ),
    ("GET", "/v1/triggers", "", ""),
    ("GET", "/v1/triggers/order", "", ""),
    ("PUT", "/v1/triggers/order", "{}", ""),
    ("POST", "/v1/triggers/order", r#"{"a":1}"#, "fire"),
    ("DELETE", "/v1/triggers/{new:trigger}", "", ""),
    ("GET", "/v1/rules", "", ""),
    ("GET", "/v1/rules/bill", "", ""),
    (
        "PUT",
        "/v1/rules/bill",
        r#"{"trigger":"order","function":"{fn}","export":"add","params":{"b":2}}"#,
        "",
    ),
    ("DELETE", "/v1/rules/{new:rule}", "", ""),
    ("GET", "/v1/outbound", "", ""),
    ("PUT", "/v1/outbound", r#"{"hosts":[]}"#, ""),
    ("GET", "/v1/secrets", "", ""),
    (
        "PUT",
        "/v1/secrets/key",
        r#"{"value":"v","hosts":["example.com"],"header":"x-key"}"#,
        "",
    ),
    ("DELETE", "/v1/secrets/{new:secret}", "", ""),
    ("GET", "/kappa", "", ""),
    (
        "PUT",
        "/kappa",
        r#"{"function":"{events}","export":"observe"}"#,
        "",
    ),
    ("POST", "/kappa/{kappa}", "20.5", ""),
    ("GET", "/kappa/{new:kappa}", "", "empty outport"),
    ("DELETE", "/kappa/{new:kappa}", "", ""),
    ("GET", "/http/{http}/", "", "by hash"),
    ("GET", "/http/site/", "", "public alias"),
    ("GET", "/http/{fn}/", "", "not an HTTP function"),
    (
        "GET",
        "/v1/network/nodes",
        "",
        "a single node: `not_networked` once authorized",
    ),
    (
        "GET",
        "/v1/network/functions/{fn}",
        "",
        "a single node: `not_networked` once authorized",
    ),
    // Last: a rotation revokes the caller's token (and what it minted), so
    // no later cell may need it; the owner's cell runs after every other
    // caller's (see ROTATE_LAST).
    (
        "POST",
        "/v1/tokens/rotate",
        "",
        "the caller's own token; revokes it and what it minted",
    ),
];

/// Callers whose cell on the rotate row runs after the others': rotating
/// the owner's token revokes every public token it minted.
const ROTATE_LAST: &[&str] = &["owner"];

/// The callers (columns) and what each is; a public token's description
/// ("") is its grant in [`GRANTS`].
const CALLERS: &[(&str, &str)] = &[
    ("none", "no `Authorization` header"),
    ("garbage", "`Bearer not-a-token`"),
    (
        "foreign",
        "a private token signed by another node's root key",
    ),
    (
        "expired",
        "a public token of the account (`home: rw`) past its expiry",
    ),
    (
        "revoked",
        "a public token of the account (`home: rw`), revoked",
    ),
    ("admin", "the admin's private token (another account)"),
    (
        "owner",
        "the private token of the account that owns every object used",
    ),
    ("other", "the private token of another (non-admin) account"),
    ("p:empty", ""),
    ("p:r", ""),
    ("p:w", ""),
    ("p:rw", ""),
    ("p:upload", ""),
    ("p:fns", ""),
    ("p:sched", ""),
    ("p:trig", ""),
    ("p:all", ""),
    (
        "a:read",
        "`p:all` attenuated to `--op functions.read --op activations.read --op namespace.read`",
    ),
    ("a:other", "`p:all` attenuated to `--ns other`"),
    (
        "a:owner",
        "`owner` attenuated to `--op invoke --op namespace.read`",
    ),
];

const GRANTS: &[(&str, &str)] = &[
    ("p:empty", r#"{}"#),
    ("p:r", r#"{"namespaces":{"home":"r"}}"#),
    ("p:w", r#"{"namespaces":{"home":"w"}}"#),
    ("p:rw", r#"{"namespaces":{"home":"rw"}}"#),
    ("p:upload", r#"{"upload":true}"#),
    ("p:fns", r#"{"functions":["{fn}"]}"#),
    (
        "p:sched",
        r#"{"namespaces":{"home":"rw"},"schedules":"50@1s"}"#,
    ),
    ("p:trig", r#"{"triggers":["order"]}"#),
    (
        "p:all",
        r#"{"namespaces":{"home":"rw","other":"rw"},"upload":true,"schedules":"50@1s","triggers":["order"]}"#,
    ),
];

/// Callers without a valid token, and the code every authenticated route
/// answers them.
const UNAUTHENTICATED: &[(&str, &str)] = &[
    ("none", "token_missing"),
    ("garbage", "token_invalid"),
    ("foreign", "token_invalid"),
    ("expired", "token_expired"),
    ("revoked", "token_revoked"),
];

/// Routes anyone may call.
const OPEN: &[&str] = &[
    "/healthz",
    "/metrics",
    "/v1/openapi.json",
    "/console/",
    "/v1/auth/public-key",
    "/http/site/",
];

struct Matrix {
    s: Server,
    owner: String,
    tokens: BTreeMap<&'static str, Option<String>>,
    vars: BTreeMap<&'static str, String>,
    fresh: u32,
}

impl Matrix {
    async fn as_owner(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let url = format!("{}{path}", self.s.url);
        let rb = match method {
            "GET" => self.s.http.get(url),
            "PUT" => self.s.http.put(url),
            "POST" => self.s.http.post(url),
            _ => self.s.http.delete(url),
        };
        let rb = rb.header("authorization", format!("Bearer {}", self.owner));
        let rb = match body {
            Some(b) => rb.json(&b),
            None => rb,
        };
        decode(rb.send().await.unwrap()).await
    }

    fn subst(&self, text: &str) -> String {
        let mut out = text.to_string();
        for (k, v) in &self.vars {
            out = out.replace(&format!("{{{k}}}"), v);
        }
        out
    }

    /// A fresh object of `kind`, made by the owner; its id.
    async fn fresh(&mut self, kind: &str) -> String {
        self.fresh += 1;
        let n = self.fresh;
        let f = self.vars["fn"].clone();
        let ok = |st: u16, v: &Value| assert!((200..300).contains(&st), "fresh {kind}: {st} {v}");
        match kind {
            "token" => {
                let (st, v) = self
                    .as_owner(
                        "POST",
                        "/v1/tokens",
                        Some(json!({"namespaces": {"home": "r"}})),
                    )
                    .await;
                ok(st, &v);
                v["token"].as_str().unwrap().to_string()
            }
            "fn" => {
                let (st, v) = self
                    .s
                    .upload_as(guest("misbehave"), Some(&self.owner))
                    .await;
                ok(st, &v);
                v["hash"].as_str().unwrap().to_string()
            }
            "dead" => {
                // Owned again, should a cell have deleted it.
                let (st, v) = self
                    .s
                    .upload_as(guest("misbehave"), Some(&self.owner))
                    .await;
                ok(st, &v);
                let bad = self.vars["bad"].clone();
                let (st, q) = self
                    .as_owner("POST", "/v1/invoke", Some(json!({"function": bad, "export": "boom", "params": {"msg": "x"}, "async": true})))
                    .await;
                ok(st, &q);
                let id = q["activation"].as_str().unwrap().to_string();
                let (_, a) = self
                    .as_owner("GET", &format!("/v1/activations/{id}?wait=30s"), None)
                    .await;
                assert_eq!(a["status"], "failed", "{a}");
                id
            }
            "alias" => {
                let name = format!("tmp{n}");
                for target in [&f, &self.vars["events"].clone()] {
                    let (st, v) = self
                        .as_owner(
                            "PUT",
                            &format!("/v1/aliases/{name}"),
                            Some(json!({"function": target})),
                        )
                        .await;
                    ok(st, &v);
                }
                name
            }
            "schedule" => {
                let (st, v) = self
                    .as_owner("POST", "/v1/schedules", Some(json!({"function": f, "export": "add", "params": {"a": 1, "b": 1}, "every": "1h"})))
                    .await;
                ok(st, &v);
                v["id"].as_str().unwrap().to_string()
            }
            "key" => {
                let name = format!("tmp{n}");
                let (st, v) = self
                    .as_owner(
                        "PUT",
                        &format!("/v1/namespaces/home/keys/{name}"),
                        Some(json!(1)),
                    )
                    .await;
                ok(st, &v);
                name
            }
            "trigger" => {
                let name = format!("tmp{n}");
                let (st, v) = self
                    .as_owner("PUT", &format!("/v1/triggers/{name}"), Some(json!({})))
                    .await;
                ok(st, &v);
                name
            }
            "rule" => {
                let name = format!("tmp{n}");
                let (st, v) = self
                    .as_owner(
                        "PUT",
                        &format!("/v1/rules/{name}"),
                        Some(json!({"trigger": "order", "function": f, "export": "add"})),
                    )
                    .await;
                ok(st, &v);
                name
            }
            "secret" => {
                let name = format!("tmp{n}");
                let (st, v) = self
                    .as_owner(
                        "PUT",
                        &format!("/v1/secrets/{name}"),
                        Some(json!({"value": "v", "hosts": ["example.com"], "header": "x-key"})),
                    )
                    .await;
                ok(st, &v);
                name
            }
            "kappa" => {
                let (st, v) = self
                    .as_owner(
                        "PUT",
                        "/kappa",
                        Some(json!({"function": self.vars["events"], "export": "observe"})),
                    )
                    .await;
                ok(st, &v);
                v["ref"].as_str().unwrap().to_string()
            }
            other => panic!("no fresh `{other}`"),
        }
    }

    /// THE helper: one request of `route` by `caller`; `status code`.
    async fn cell(&mut self, route: &(&str, &str, &str, &str), caller: &str) -> String {
        let (method, path, body, _) = *route;
        let mut path = self.subst(path);
        let mut body = self.subst(body);
        for kind in [
            "token", "fn", "dead", "alias", "schedule", "key", "trigger", "rule", "secret", "kappa",
        ] {
            let tag = format!("{{new:{kind}}}");
            if path.contains(&tag) || body.contains(&tag) {
                let id = self.fresh(kind).await;
                path = path.replace(&tag, &id);
                body = body.replace(&tag, &id);
            }
        }
        let url = format!("{}{path}", self.s.url);
        let mut rb = match method {
            "GET" => self.s.http.get(url),
            "PUT" => self.s.http.put(url),
            "POST" => self.s.http.post(url),
            "DELETE" => self.s.http.delete(url),
            other => panic!("method {other}"),
        };
        if let Some(t) = &self.tokens[caller] {
            rb = rb.header("authorization", format!("Bearer {t}"));
        }
        if let Some(name) = body.strip_prefix("wasm:") {
            rb = rb
                .header("content-type", "application/wasm")
                .body(guest(name));
        } else if !body.is_empty() {
            rb = rb.header("content-type", "application/json").body(body);
        }
        let resp = rb.send().await.unwrap();
        let status = resp.status().as_u16();
        if path.ends_with("/watch") {
            return status.to_string(); // a stream: the status is the answer
        }
        let (_, v) = decode(resp).await;
        match v["error"]["code"].as_str() {
            Some(code) if status >= 400 => format!("{status} {code}"),
            _ => status.to_string(),
        }
    }
}

async fn setup() -> Matrix {
    let s = Server::start(&[]);
    let (st, acc) = s.post_json("/v1/accounts", &json!({"name": "owner"})).await;
    assert_eq!(st, 201, "{acc}");
    let owner = acc["token"].as_str().unwrap().to_string();
    let (st, acc) = s.post_json("/v1/accounts", &json!({"name": "other"})).await;
    assert_eq!(st, 201, "{acc}");
    let other = acc["token"].as_str().unwrap().to_string();
    let mut m = Matrix {
        s,
        owner: owner.clone(),
        tokens: BTreeMap::new(),
        vars: BTreeMap::new(),
        fresh: 0,
    };
    for (var, name) in [
        ("fn", "calc"),
        ("events", "events"),
        ("http", "http-hello"),
        ("bad", "misbehave"),
    ] {
        let (st, v) = m.s.upload_as(guest(name), Some(&owner)).await;
        assert!(st == 201 || st == 200, "{v}");
        m.vars.insert(var, v["hash"].as_str().unwrap().to_string());
    }
    use base64::Engine as _;
    m.vars.insert(
        "b64:hello",
        base64::engine::general_purpose::STANDARD.encode(guest("hello")),
    );
    let f = m.vars["fn"].clone();
    let whitelist = json!({"functions": [f, m.vars["events"], m.vars["http"]]});
    let (st, v) = m
        .as_owner("PUT", "/v1/namespaces/home/whitelist", Some(whitelist))
        .await;
    assert_eq!(st, 200, "{v}");
    let (st, v) = m
        .as_owner("PUT", "/v1/namespaces/home/keys/k", Some(json!(1)))
        .await;
    assert_eq!(st, 200, "{v}");
    let (st, v) = m
        .as_owner("PUT", "/v1/aliases/adder", Some(json!({"function": f})))
        .await;
    assert_eq!(st, 200, "{v}");
    let (st, v) = m
        .as_owner(
            "PUT",
            "/v1/aliases/site",
            Some(json!({"function": m.vars["http"], "public": true})),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    let (st, v) = m
        .as_owner(
            "POST",
            &format!("/v1/functions/{f}/add"),
            Some(json!({"a": 1, "b": 1})),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    m.vars
        .insert("act", v["activation"].as_str().unwrap().to_string());
    let (st, v) = m
        .as_owner(
            "POST",
            "/v1/schedules",
            Some(
                json!({"function": f, "export": "add", "params": {"a": 1, "b": 1}, "every": "1h"}),
            ),
        )
        .await;
    assert_eq!(st, 201, "{v}");
    m.vars
        .insert("sched", v["id"].as_str().unwrap().to_string());
    let kappa = m.fresh("kappa").await;
    m.vars.insert("kappa", kappa);
    let (st, v) = m
        .as_owner("PUT", "/v1/triggers/order", Some(json!({})))
        .await;
    assert!(st == 200 || st == 201, "{v}");
    let (st, v) = m
        .as_owner(
            "PUT",
            "/v1/rules/bill",
            Some(json!({"trigger": "order", "function": f, "export": "add", "params": {"b": 2}})),
        )
        .await;
    assert!(st == 200 || st == 201, "{v}");

    // The callers.
    let mut tokens: BTreeMap<&'static str, Option<String>> = BTreeMap::new();
    tokens.insert("none", None);
    tokens.insert("garbage", Some("not-a-token".into()));
    let foreign = orb_auth::Authority::generate();
    tokens.insert(
        "foreign",
        Some(foreign.mint_private("acc_x").unwrap().token),
    );
    tokens.insert("admin", Some(m.s.token.clone()));
    tokens.insert("owner", Some(owner.clone()));
    tokens.insert("other", Some(other));
    for (name, grant) in GRANTS {
        let grant: Value = serde_json::from_str(&m.subst(grant)).unwrap();
        tokens.insert(name, Some(m.s.mint_as(&grant, Some(&owner)).await));
    }
    let expired =
        m.s.mint_as(
            &json!({"namespaces": {"home": "rw"}, "expires": "1s"}),
            Some(&owner),
        )
        .await;
    tokens.insert("expired", Some(expired));
    let revoked =
        m.s.mint_as(&json!({"namespaces": {"home": "rw"}}), Some(&owner))
            .await;
    let (st, v) = m
        .as_owner("POST", "/v1/tokens/revoke", Some(json!({"token": revoked})))
        .await;
    assert_eq!(st, 200, "{v}");
    tokens.insert("revoked", Some(revoked));
    let all = tokens["p:all"].clone().unwrap();
    let narrow = |t: &str, n: orb_auth::Narrowing| orb_auth::attenuate(t, &n).unwrap();
    tokens.insert(
        "a:read",
        Some(narrow(
            &all,
            orb_auth::Narrowing {
                operations: Some(vec![
                    "functions.read".into(),
                    "activations.read".into(),
                    "namespace.read".into(),
                ]),
                ..Default::default()
            },
        )),
    );
    tokens.insert(
        "a:other",
        Some(narrow(
            &all,
            orb_auth::Narrowing {
                namespaces: Some(vec!["other".into()]),
                ..Default::default()
            },
        )),
    );
    tokens.insert(
        "a:owner",
        Some(narrow(
            &owner,
            orb_auth::Narrowing {
                operations: Some(vec!["invoke".into(), "namespace.read".into()]),
                ..Default::default()
            },
        )),
    );
    assert_eq!(tokens.len(), CALLERS.len());
    m.tokens = tokens;
    // Past the expired token's expiry.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    m
}

fn route_label(r: &(&str, &str, &str, &str)) -> String {
    let (method, path, _, note) = r;
    if note.is_empty() {
        format!("`{method} {path}`")
    } else {
        format!("`{method} {path}` ({note})")
    }
}

fn render(table: &[(String, Vec<String>)]) -> String {
    let mut out = String::new();
    out.push_str("# Permissions\n\n");
    out.push_str(
        "<!-- Generated by `crates/orb-cli/tests/permissions.rs` from what a real node answered; \
         do not edit. Regenerate with `UPDATE_PERMISSIONS=1 cargo test -p orb-cli --test permissions`. -->\n\n",
    );
    out.push_str(
        "What every route answers every kind of caller: the HTTP status, and the error code when \
         it is an error. Objects named in paths belong to the `owner` account; `{new:…}` is a \
         fresh object the owner creates just before the request. `home` is a namespace whose \
         whitelist holds `{fn}` (calc), `{events}` and `{http}`; `other` is a namespace no \
         whitelist names. The test that writes this page fails when the node answers anything \
         else.\n\n",
    );
    out.push_str("## Callers\n\n| caller | what it is |\n| --- | --- |\n");
    for (name, what) in CALLERS {
        let what = match GRANTS.iter().find(|(g, _)| g == name) {
            Some((_, grant)) => format!("public, `{grant}`"),
            None => what.to_string(),
        };
        out.push_str(&format!("| `{name}` | {what} |\n"));
    }
    out.push_str(&format!(
        "\n## Matrix ({} routes × {} callers = {} cells)\n\n| route |",
        table.len(),
        CALLERS.len(),
        table.len() * CALLERS.len()
    ));
    for (name, _) in CALLERS {
        out.push_str(&format!(" `{name}` |"));
    }
    out.push_str("\n| --- |");
    for _ in CALLERS {
        out.push_str(" --- |");
    }
    out.push('\n');
    for (label, cells) in table {
        out.push_str(&format!("| {label} |"));
        for c in cells {
            out.push_str(&format!(" {c} |"));
        }
        out.push('\n');
    }
    out
}

#[tokio::test]
async fn every_route_with_every_caller() {
    let mut m = setup().await;
    let mut table = Vec::new();
    let mut broken = Vec::new();
    for route in ROUTES {
        let mut cells = Vec::new();
        let rotate = route.1 == "/v1/tokens/rotate";
        let mut order: Vec<&str> = CALLERS.iter().map(|(c, _)| *c).collect();
        if rotate {
            order.sort_by_key(|c| ROTATE_LAST.contains(c));
        }
        let mut answers = BTreeMap::new();
        for caller in &order {
            answers.insert(*caller, m.cell(route, caller).await);
        }
        for (caller, _) in CALLERS {
            let got = answers.remove(caller).expect("every caller answered");
            let status: u16 = got[..3].parse().unwrap();
            let (method, path, _, _) = route;
            let open = OPEN.contains(path);
            // Rules that hold whatever the page says.
            if status >= 500 {
                broken.push(format!(
                    "{method} {path} as {caller}: {got} (a server error)"
                ));
            }
            if let Some((_, code)) = UNAUTHENTICATED.iter().find(|(c, _)| c == caller)
                && !open
                && !got.starts_with("401")
            {
                broken.push(format!(
                    "{method} {path} as {caller}: {got}, want 401 {code}"
                ));
            }
            if caller.starts_with("p:") || caller.starts_with("a:") {
                let public = *caller != "a:owner";
                let destroys = *method == "DELETE"
                    && (path.contains("/functions/")
                        || path.contains("/schedules/{new")
                        || path.contains("/dead-letters/"));
                if public && destroys && (200..300).contains(&status) {
                    broken.push(format!("{method} {path} as {caller}: {got}: a public token deleted the owner's object"));
                }
                let reads_owners =
                    *method == "GET" && (path.contains("{act}") || path.contains("{sched}"));
                // Another token's object is 404 — or 403 when an attenuation
                // forbids the operation itself, whatever the object.
                let refused =
                    status == 404 || (caller.starts_with("a:") && got == "403 permission_denied");
                if public && reads_owners && !refused {
                    broken.push(format!(
                        "{method} {path} as {caller}: {got}: another token's object must be 404"
                    ));
                }
            }
            cells.push(got);
        }
        table.push((route_label(route), cells));
    }
    let cells = table.len() * CALLERS.len();
    println!(
        "permission matrix: {} routes × {} callers = {cells} cells",
        table.len(),
        CALLERS.len()
    );
    write_figures(
        "permissions",
        &json!({"routes": table.len(), "callers": CALLERS.len(), "cells": cells,
                "broken": broken.len()}),
    );
    assert!(
        broken.is_empty(),
        "{} cells break the rules:\n{}",
        broken.len(),
        broken.join("\n")
    );

    let page = render(&table);
    let path = repo_root().join("docs/permissions.md");
    if std::env::var_os("UPDATE_PERMISSIONS").is_some() {
        std::fs::write(&path, &page).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_default();
    if expected != page {
        let exp: Vec<&str> = expected.lines().collect();
        let diff: Vec<String> = page
            .lines()
            .enumerate()
            .filter(|(i, l)| exp.get(*i) != Some(l))
            .map(|(i, l)| {
                format!(
                    "line {}:\n  page: {}\n  node: {l}",
                    i + 1,
                    exp.get(i).unwrap_or(&"")
                )
            })
            .take(20)
            .collect();
        panic!(
            "docs/permissions.md does not match what the node answers ({} lines differ); review and \
             regenerate with UPDATE_PERMISSIONS=1:\n{}",
            diff.len(),
            diff.join("\n")
        );
    }
}
