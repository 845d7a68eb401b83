//! The web console (`/console`) in headless Chromium, as a new user would
//! use it: sign in with the admin's token, see the functions, run an
//! export from its generated form (Ctrl-Enter), see the activation in the
//! live tail, switch an alias and roll it back, watch a namespace key
//! change, read the usage view, mint a public token for one function and
//! see that signed in with it the console shows only what it may see.
//! What the page shows is checked against what the API answers for the
//! same token. Screenshots go to `target/console-screenshots/`.

mod browser;
mod common;
use browser::*;
use common::*;
use serde_json::{Value, json};
use std::path::PathBuf;

fn shots() -> PathBuf {
    repo_root().join("target/console-screenshots")
}

/// A script answering `data-<name>` of each element `css` matches.
fn data_of(css: &str, name: &str) -> String {
    format!(
        "return [...document.querySelectorAll({})].map(e => e.dataset.{name})",
        json!(css)
    )
}

/// Writes `home`'s key `thermostat/target` through the API.
async fn put_key(s: &Server, v: Value) -> (u16, Value) {
    let path = "/v1/namespaces/home/keys/thermostat/target";
    s.put_json_as(path, &v, Some(&s.token)).await
}

/// `GET path` without a token (`If-None-Match: etag` unless empty).
async fn fetch(s: &Server, path: &str, etag: &str) -> reqwest::Response {
    let mut rb = s.http.get(format!("{}{path}", s.url));
    if !etag.is_empty() {
        rb = rb.header("if-none-match", etag);
    }
    rb.send().await.unwrap()
}

async fn sign_in(b: &Browser, token: &str) {
    b.wait_for(
        "return document.getElementById('signin').hidden",
        &json!(false),
    )
    .await;
    b.type_into("#token", token).await;
    b.click("#sign-in").await;
    b.wait_for("return document.body.dataset.signedIn", &json!("true"))
        .await;
}

/// The error the page shows in `css`: its code (the server's).
async fn shown_error(b: &Browser, css: &str, code: &str) {
    b.wait_for(
        &format!(
            "return document.querySelector({})?.dataset.code || null",
            json!(format!("{css} .error"))
        ),
        &json!(code),
    )
    .await;
}

#[tokio::test]
async fn the_console_signs_in_runs_tails_deploys_watches_and_keeps_a_public_token_to_its_grant() {
    let s = Server::start(&[]);
    let calc = s.deploy("calc").await;
    let hello = s.deploy("hello").await;

    // The page and its files: content types, a strict CSP, an ETag that
    // answers 304.
    let page = fetch(&s, "/console/", "").await;
    assert_eq!(page.status(), 200);
    let headers = page.headers().clone();
    assert_eq!(headers["content-type"], "text/html; charset=utf-8");
    let csp = headers["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("script-src 'self'") && !csp.contains("unsafe"),
        "{csp}"
    );
    assert_eq!(headers["cache-control"], "no-cache");
    let etag = headers["etag"].to_str().unwrap().to_string();
    assert_eq!(fetch(&s, "/console/", &etag).await.status(), 304);
    let js = fetch(&s, "/console/app.js", "").await;
    assert_eq!(
        js.headers()["content-type"],
        "text/javascript; charset=utf-8"
    );
    let (status, body) = s.get_as("/console/nope.js", None).await;
    assert_error(status, &body, 404, "not_found");
    let bare = fetch(&s, "/console", "").await;
    assert_eq!(bare.url().path(), "/console/", "/console redirects");

    let b = Browser::start().await;
    b.viewport(1280, 800).await;
    b.goto(&format!("{}/console/", s.url)).await;
    b.screenshot(&shots().join("sign-in.png")).await;

    // A wrong token is refused where it was typed, with the server's code.
    b.type_into("#token", "not-a-token").await;
    b.click("#sign-in").await;
    let (st, refused) = s.get_as("/v1/functions", Some("not-a-token")).await;
    assert_eq!(st, 401);
    shown_error(
        &b,
        "#signin-error",
        refused["error"]["code"].as_str().unwrap(),
    )
    .await;
    b.clear("#token").await;

    // Signed in with the admin's token: the account's functions.
    sign_in(&b, &s.token).await;
    let (_, listed) = s.get("/v1/functions").await;
    let mut want: Vec<String> = listed["functions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["hash"].as_str().unwrap().to_string())
        .collect();
    want.sort();
    assert_eq!(want.len(), 2);
    b.wait_for(
        &format!("{}.sort()", data_of("#functions tr.function", "hash")),
        &json!(want),
    )
    .await;
    let signatures = b
        .js("return [...document.querySelectorAll('#functions code')].map(c => c.textContent).join('\\n')")
        .await;
    assert!(
        signatures
            .as_str()
            .unwrap()
            .contains("add(a: s32, b: s32) -> s32"),
        "{signatures}"
    );
    b.screenshot(&shots().join("functions.png")).await;

    // The test panel: a typed form from `add`'s parameters, Ctrl-Enter runs it.
    b.goto(&format!("{}/console/#fn={calc}&export=add", s.url))
        .await;
    b.wait_for(
        &data_of("#test-form [data-param]", "kind"),
        &json!(["int", "int"]),
    )
    .await;
    b.type_into("[data-param=a]", "2").await;
    b.type_into("[data-param=b]", "40\u{E009}\u{E007}").await;
    let act = text_once(&b, "result-activation").await;
    let (st, a) = s.get(&format!("/v1/activations/{act}")).await;
    assert_eq!(st, 200, "{a}");
    assert_eq!(a["export"], "add");
    assert_eq!(a["function"], json!(calc));
    b.wait_for(
        "return JSON.parse(document.getElementById('result-value').textContent)",
        &a["result"],
    )
    .await;
    b.wait_for(
        "return document.getElementById('result-fuel').textContent",
        &json!(a["fuel"].to_string()),
    )
    .await;
    // What the same call answers through the API.
    let (_, direct) = s.call(&calc, "add", json!({"a": 2, "b": 40})).await;
    assert_eq!(direct["result"], a["result"]);
    // Saved inputs come back in the form.
    b.type_into("#save-name", "answer").await;
    b.click("#save-inputs").await;
    b.clear("[data-param=a]").await;
    b.choose("#saved-inputs", "answer").await;
    b.wait_for(
        "return document.querySelector('[data-param=a]').value",
        &json!("2"),
    )
    .await;
    b.screenshot(&shots().join("test-panel.png")).await;

    // The usage view counts what the API's statistics count.
    let (st, stats) = s
        .get(&format!("/v1/activations/stats?function={calc}&window=1h"))
        .await;
    assert_eq!(st, 200, "{stats}");
    let calc_calls = s
        .activations(&calc)
        .await
        .iter()
        .filter(|a| a["status"] == "succeeded")
        .count();
    assert_eq!(stats["total"]["calls"], json!(calc_calls));
    // Choosing the window reloads the figures (they also refresh every 10 s).
    b.choose("#usage-window", "1h").await;
    b.wait_for(
        "return document.getElementById('usage-calls')?.textContent || null",
        &json!(calc_calls.to_string()),
    )
    .await;
    b.screenshot(&shots().join("usage.png")).await;

    // The live tail: a call made elsewhere appears without a reload.
    b.goto(&format!("{}/console/#view=activations", s.url))
        .await;
    b.wait_for(
        &format!("return !!document.querySelector('tr.activation[data-id=\"{act}\"]')"),
        &json!(true),
    )
    .await;
    let (st, greeted) = s.call(&hello, "greet", json!({"name": "Ada"})).await;
    assert_eq!(st, 200, "{greeted}");
    let id = greeted["activation"].as_str().unwrap();
    b.wait_for(
        &format!(
            "return document.querySelector('tr.activation[data-id=\"{id}\"]')?.dataset.status || null"
        ),
        &json!("succeeded"),
    )
    .await;
    b.screenshot(&shots().join("activations.png")).await;
    b.click(&format!("tr.activation[data-id=\"{id}\"] td:last-child a"))
        .await;
    b.wait_for(
        "return document.getElementById('act-id')?.textContent || null",
        &json!(id),
    )
    .await;
    b.wait_for(
        "return JSON.parse(document.getElementById('act-result').textContent)",
        &greeted["result"],
    )
    .await;

    // Aliases: create, switch (deploy), roll back; the API agrees each time.
    b.goto(&format!("{}/console/#view=aliases", s.url)).await;
    b.wait_for(
        "return document.querySelectorAll('#new-alias-function option').length",
        &json!(2),
    )
    .await;
    b.type_into("#new-alias", "app").await;
    b.choose("#new-alias-function", &calc).await;
    b.click("#alias-form button[type=submit]").await;
    let target =
        "return document.querySelector('tr.alias[data-name=app]')?.dataset.function || null";
    b.wait_for(target, &json!(calc)).await;
    b.choose("tr.alias[data-name=app] .switch-to", &hello).await;
    b.click("tr.alias[data-name=app] .switch").await;
    b.wait_for(target, &json!(hello)).await;
    let (_, alias) = s.get("/v1/aliases/app").await;
    assert_eq!(alias["function"], json!(hello));
    assert_eq!(alias["previous"], json!([calc]));
    b.screenshot(&shots().join("aliases.png")).await;
    b.click("tr.alias[data-name=app] .rollback").await;
    b.wait_for(target, &json!(calc)).await;
    let (_, alias) = s.get("/v1/aliases/app").await;
    assert_eq!(alias["function"], json!(calc));

    // A namespace: browse to a key, then see a write through the API live.
    let (st, w) = put_key(&s, json!({"celsius": 21})).await;
    assert_eq!(st, 200, "{w}");
    b.goto(&format!("{}/console/#view=namespaces", s.url)).await;
    b.wait_for(&data_of("tr.namespace", "name"), &json!(["home"]))
        .await;
    b.click("tr.namespace[data-name=home] a").await;
    b.wait_for(&data_of("#keys li", "key"), &json!(["thermostat/target"]))
        .await;
    b.click("#keys li a").await;
    let value = "return JSON.parse(document.getElementById('key-value')?.value || 'null')";
    b.wait_for(value, &json!({"celsius": 21})).await;
    b.wait_for(
        "return document.getElementById('watch-state')?.textContent || null",
        &json!("watching"),
    )
    .await;
    let (st, w) = put_key(&s, json!({"celsius": 23})).await;
    assert_eq!(st, 200, "{w}");
    b.wait_for(value, &json!({"celsius": 23})).await;
    b.wait_for(
        &data_of("#ns-events li", "key"),
        &json!(["thermostat/target"]),
    )
    .await;
    b.screenshot(&shots().join("namespaces.png")).await;

    // Mint a public token for `hello` only; it is shown once.
    b.goto(&format!("{}/console/#view=tokens", s.url)).await;
    b.wait_for(
        "return document.querySelectorAll('.mint-function').length",
        &json!(2),
    )
    .await;
    b.click("#mint-all-functions").await;
    b.click(&format!(".mint-function[value=\"{hello}\"]")).await;
    b.type_into("#mint-expires", "1h").await;
    b.click("#mint").await;
    let token = value_once(&b, "minted-token").await;
    b.screenshot(&shots().join("tokens.png")).await;
    let (st, theirs) = s.get_as("/v1/functions", Some(&token)).await;
    assert_eq!(st, 200, "{theirs}");
    let theirs: Vec<Value> = theirs["functions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["hash"].clone())
        .collect();
    assert_eq!(theirs, [json!(hello)]);

    // Signed out, the token is gone from the tab; signed in with the public
    // token, the console shows what the API shows that token, no more.
    b.click("#sign-out").await;
    b.wait_for("return document.body.dataset.signedIn", &json!("false"))
        .await;
    assert_eq!(
        b.js("return sessionStorage.getItem('orb.console.token')")
            .await,
        Value::Null
    );
    sign_in(&b, &token).await;
    b.goto(&format!("{}/console/#view=functions", s.url)).await;
    b.wait_for(&data_of("#functions tr.function", "hash"), &json!(theirs))
        .await;
    b.screenshot(&shots().join("public-functions.png")).await;
    // The other function is refused with the server's code.
    let (st, refused) = s
        .get_as(&format!("/v1/functions/{calc}"), Some(&token))
        .await;
    assert!(st == 404 || st == 403, "{st} {refused}");
    b.goto(&format!("{}/console/#fn={calc}", s.url)).await;
    shown_error(&b, "#view", refused["error"]["code"].as_str().unwrap()).await;
    // Activations: only those its lineage made (none yet).
    let (_, acts) = s.get_as("/v1/activations", Some(&token)).await;
    let ids: Vec<Value> = acts["activations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].clone())
        .collect();
    b.goto(&format!("{}/console/#view=activations", s.url))
        .await;
    if ids.is_empty() {
        b.wait_for(
            "return !!document.getElementById('no-activations')",
            &json!(true),
        )
        .await;
    } else {
        b.wait_for(&data_of("tr.activation", "id"), &json!(ids))
            .await;
    }
    // Minting needs a private token: the form says so with the server's code.
    let (st, refused) = s.post_json_as("/v1/tokens", &json!({}), Some(&token)).await;
    assert_eq!(st, 403, "{refused}");
    b.goto(&format!("{}/console/#view=tokens", s.url)).await;
    b.wait_for("return !!document.getElementById('mint')", &json!(true))
        .await;
    b.click("#mint").await;
    shown_error(&b, "#view", refused["error"]["code"].as_str().unwrap()).await;
    b.screenshot(&shots().join("public-refused.png")).await;

    // A narrow screen: the navigation wraps, nothing is wider than the screen.
    b.viewport(400, 800).await;
    b.goto(&format!("{}/console/#view=functions", s.url)).await;
    b.wait_for(&data_of("#functions tr.function", "hash"), &json!(theirs))
        .await;
    b.wait_for(
        "return document.documentElement.scrollWidth <= window.innerWidth",
        &json!(true),
    )
    .await;
    b.screenshot(&shots().join("narrow.png")).await;
}

/// The text of `#id` once it has some.
async fn text_once(b: &Browser, id: &str) -> String {
    let script = format!("return (document.getElementById('{id}')?.textContent || '').length > 0");
    b.wait_for(&script, &json!(true)).await;
    b.js(&format!(
        "return document.getElementById('{id}').textContent"
    ))
    .await
    .as_str()
    .unwrap()
    .to_string()
}

/// The value of the form control `#id` once it has one.
async fn value_once(b: &Browser, id: &str) -> String {
    let script = format!("return (document.getElementById('{id}')?.value || '').length > 0");
    b.wait_for(&script, &json!(true)).await;
    b.js(&format!("return document.getElementById('{id}').value"))
        .await
        .as_str()
        .unwrap()
        .to_string()
}
