//! The feed reader of seed 000 §7 in headless Chromium (driven through
//! chromedriver's WebDriver API): the page loads from a static server,
//! subscribes to a feed on a local feed server, and shows the posts the
//! Python function fetched over outbound HTTP and filtered by the terms.

mod browser;
mod common;
use browser::*;
use common::*;
use serde_json::json;
use std::path::Path;
use std::process::{Command, Stdio};

/// Serves `dir` over HTTP on `port` (python3's http.server).
fn static_server(dir: &Path, port: u16) -> Proc {
    Proc::spawn(
        Command::new("python3")
            .args([
                "-m",
                "http.server",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
            ])
            .current_dir(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    )
}

const FEED: &str = r#"<?xml version="1.0"?>
<rss version="2.0"><channel><title>Local news</title>
<item><title>Rust 2.0 released</title><link>http://news.test/rust-2</link><description>big</description></item>
<item><title>Gardening tips</title><link>http://news.test/garden</link><description>spring</description></item>
<item><title>Why Orb runs WebAssembly</title><link>http://news.test/orb</link><description>written in rust</description></item>
</channel></rss>"#;

#[tokio::test]
async fn the_feed_reader_page_subscribes_and_shows_filtered_posts() {
    let site = tempfile::tempdir().unwrap();
    let web = repo_root().join("examples/feed-reader/web");
    for f in ["index.html", "app.js"] {
        std::fs::copy(web.join(f), site.path().join(f)).unwrap();
    }
    std::fs::write(site.path().join("feed.xml"), FEED).unwrap();
    let port = free_port();
    let _site = static_server(site.path(), port);
    let http = http_client(None);
    let feed_url = format!("http://127.0.0.1:{port}/feed.xml");
    wait_http(&http, &feed_url).await;

    // Loopback is refused to functions unless the node allows it (SSRF).
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("orb.toml");
    std::fs::write(&cfg, "outbound_allow_private = [\"127.0.0.1/32\"]\n").unwrap();
    let s = Server::start(&["--config", cfg.to_str().unwrap()]);
    let f = s.deploy("feed-reader").await;
    s.whitelist("reader", &[&f]).await;
    let token = s
        .mint(&json!({
            "namespaces": {"reader": "rw"},
            "functions": [f],
            "schedules": "1@30s",
            "outbound_hosts": [format!("127.0.0.1:{port}")],
        }))
        .await;

    let b = Browser::start().await;
    b.goto(&format!(
        "http://127.0.0.1:{port}/index.html?orb={}&token={token}&fn={f}",
        s.url
    ))
    .await;
    b.wait_for("return document.body.dataset.ready || null", &json!("true"))
        .await;

    b.type_into("#terms", "rust").await;
    b.click("#save-terms").await;
    b.wait_for(
        "return document.getElementById('status').textContent",
        &json!("searching for: rust"),
    )
    .await;
    b.type_into("#feed-url", &feed_url).await;
    b.click("#subscribe").await;
    let titles = "return [...document.querySelectorAll('#posts li a')].map(a => a.textContent)";
    b.wait_for(
        titles,
        &json!(["Rust 2.0 released", "Why Orb runs WebAssembly"]),
    )
    .await;
    b.wait_for(
        "return [...document.querySelectorAll('#subs li')].map(li => li.textContent)",
        &json!([feed_url]),
    )
    .await;

    // What the page did, seen from the node: state in the namespace, one
    // schedule within the token's limits, the fetch listed in the activation.
    let (_, pending) = s.get("/v1/namespaces/reader/keys/pending").await;
    assert_eq!(pending.as_array().unwrap().len(), 2, "{pending}");
    let (_, scheds) = s.get("/v1/schedules").await;
    let scheds = scheds["schedules"].as_array().unwrap();
    assert_eq!(scheds.len(), 1, "{scheds:?}");
    assert_eq!(scheds[0]["every"], "30s");
    assert_eq!(scheds[0]["write_to"], "pending");

    // Clear empties the list (the schedule's next tick brings nothing new:
    // the links were seen).
    b.click("#clear").await;
    b.wait_for(titles, &json!([])).await;
    let (_, pending) = s.get("/v1/namespaces/reader/keys/pending").await;
    assert_eq!(pending, json!([]));

    // The browser client calls by hash with a GET, token in the header.
    let script = format!(
        r#"const done = arguments[arguments.length - 1];
        import("{url}/sdk/orb.js").then(async ({{ Orb, OrbError }}) => {{
          const orb = new Orb("{url}", "{token}");
          const out = await orb.call("{f}", "filter",
            {{ document: "<rss><item><title>rust here</title><link>l</link></item></rss>", feed: "x", terms: ["RUST"] }},
            {{ method: "GET" }});
          let denied = null;
          try {{ await new Orb("{url}", "garbage").call("{f}", "filter", {{}}, {{ method: "GET" }}); }}
          catch (e) {{ denied = e instanceof OrbError ? e.code : String(e); }}
          done({{ result: out.result, denied }});
        }}).catch(e => done({{ error: String(e) }}));"#,
        url = s.url
    );
    let got = b
        .cmd("/execute/async", json!({ "script": script, "args": [] }))
        .await;
    assert_eq!(
        got,
        json!({"result": [{"title": "rust here", "link": "l", "feed": "x"}], "denied": "token_invalid"})
    );
}
