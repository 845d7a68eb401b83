//! A WebDriver client for the browser tests (`feed_reader.rs`,
//! `console.rs`): chromedriver driving headless Chromium (Debian's
//! `chromium` and `chromium-driver`, which scripts/test installs).
//! Include it after `mod common;`.
#![allow(dead_code)]

use super::common::http_client;
use serde_json::{Value, json};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A child process in its own process group, killed with its children
/// (chromedriver's browser) on drop.
pub struct Proc(Child);

impl Proc {
    pub fn spawn(cmd: &mut Command) -> Proc {
        use std::os::unix::process::CommandExt as _;
        Proc(
            cmd.process_group(0)
                .spawn()
                .unwrap_or_else(|e| panic!("{cmd:?}: {e}")),
        )
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        // `--`: a negative pid names the process group, not an option.
        let group = Command::new("kill")
            .args(["-s", "KILL", "--", &format!("-{}", self.0.id())])
            .status();
        if !group.is_ok_and(|s| s.success()) {
            let _ = self.0.kill();
        }
        let _ = self.0.wait();
    }
}

pub fn need(tool: &str) -> String {
    let found = Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .unwrap();
    let path = String::from_utf8_lossy(&found.stdout).trim().to_string();
    assert!(
        found.status.success() && !path.is_empty(),
        "`{tool}` is not installed; scripts/test installs it (apt-get install chromium chromium-driver)"
    );
    path
}

pub async fn wait_http(http: &reqwest::Client, url: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while http.get(url).send().await.is_err() {
        assert!(Instant::now() < deadline, "{url} never came up");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A WebDriver command's `value`; an `error` in it fails the test.
async fn send(rb: reqwest::RequestBuilder, what: &str) -> Value {
    let r: Value = rb.send().await.unwrap().json().await.unwrap();
    assert!(r["value"].get("error").is_none(), "WebDriver {what}: {r}");
    r["value"].clone()
}

/// A WebDriver session.
pub struct Browser {
    http: reqwest::Client,
    base: String,
    _driver: Proc,
}

impl Browser {
    pub async fn start() -> Browser {
        let chromium = need("chromium");
        let chromedriver = need("chromedriver");
        let port = free_port();
        let driver = Proc::spawn(
            Command::new(chromedriver)
                .arg(format!("--port={port}"))
                .stdout(Stdio::null())
                .stderr(Stdio::null()),
        );
        let http = http_client(None);
        let root = format!("http://127.0.0.1:{port}");
        wait_http(&http, &format!("{root}/status")).await;
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
                         "--disable-background-networking", "--disable-component-update",
                         "--disable-sync", "--disable-dev-shm-usage"],
            },
        }}});
        let r: Value = send(
            http.post(format!("{root}/session")).json(&caps),
            "new session",
        )
        .await;
        let id = r["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no WebDriver session: {r}"));
        Browser {
            http,
            base: format!("{root}/session/{id}"),
            _driver: driver,
        }
    }

    pub async fn cmd(&self, path: &str, body: Value) -> Value {
        let rb = self.http.post(format!("{}{path}", self.base)).json(&body);
        send(rb, &format!("{path} {body}")).await
    }

    pub async fn goto(&self, url: &str) {
        self.cmd("/url", json!({ "url": url })).await;
    }

    pub async fn js(&self, script: &str) -> Value {
        self.cmd("/execute/sync", json!({ "script": script, "args": [] }))
            .await
    }

    pub async fn element(&self, css: &str) -> String {
        let v = self
            .cmd("/element", json!({ "using": "css selector", "value": css }))
            .await;
        v[ELEMENT].as_str().unwrap().to_string()
    }

    pub async fn type_into(&self, css: &str, text: &str) {
        let e = self.element(css).await;
        self.cmd(&format!("/element/{e}/value"), json!({ "text": text }))
            .await;
    }

    pub async fn click(&self, css: &str) {
        let e = self.element(css).await;
        self.cmd(&format!("/element/{e}/click"), json!({})).await;
    }

    async fn get(&self, path: &str) -> Value {
        send(self.http.get(format!("{}{path}", self.base)), path).await
    }

    /// The viewport is exactly `width` x `height` CSS pixels (Chromium's
    /// DevTools `Emulation.setDeviceMetricsOverride`).
    pub async fn viewport(&self, width: u32, height: u32) {
        self.cmd(
            "/goog/cdp/execute",
            json!({"cmd": "Emulation.setDeviceMetricsOverride", "params": {
                "width": width, "height": height, "deviceScaleFactor": 1, "mobile": false}}),
        )
        .await;
    }

    /// Saves a PNG of the viewport to `path`.
    pub async fn screenshot(&self, path: &Path) {
        use base64::Engine as _;
        let png = self.get("/screenshot").await;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(png.as_str().unwrap())
            .unwrap();
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).unwrap();
        }
        std::fs::write(path, bytes).unwrap();
    }

    /// Sets a form control's value as a user's choice would (`change`).
    pub async fn choose(&self, css: &str, value: &str) {
        let script = format!(
            "const e = document.querySelector({css}); e.value = {value}; \
             e.dispatchEvent(new Event('change', {{bubbles: true}})); return e.value",
            css = json!(css),
            value = json!(value),
        );
        assert_eq!(
            self.js(&script).await,
            json!(value),
            "{css} has no option {value}"
        );
    }

    /// Empties an input or text area.
    pub async fn clear(&self, css: &str) {
        let e = self.element(css).await;
        self.cmd(&format!("/element/{e}/clear"), json!({})).await;
    }

    /// Polls `script` until it returns `want`.
    pub async fn wait_for(&self, script: &str, want: &Value) -> Value {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let got = self.js(script).await;
            if &got == want {
                return got;
            }
            let status = self
                .js("return document.getElementById('status')?.textContent \
                     ?? [...document.querySelectorAll('.error')].map(e => e.textContent).join(' | ')")
                .await;
            assert!(
                Instant::now() < deadline,
                "`{script}` is {got}, want {want}; page status: {status}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}
