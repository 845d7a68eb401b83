//! Test harness: a real `orb serve` on a random port with its own data dir,
//! and the guest components built from source by `scripts/build-guests`.
#![allow(dead_code)]

use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

pub fn guest_path(name: &str) -> PathBuf {
    let dir = std::env::var_os("ORB_GUESTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("build/guests"));
    let p = dir.join(format!("{name}.wasm"));
    assert!(
        p.exists(),
        "{} is missing: build the guest components with scripts/build-guests (scripts/test does)",
        p.display()
    );
    p
}

pub fn guest(name: &str) -> Vec<u8> {
    std::fs::read(guest_path(name)).unwrap()
}

pub fn orb_bin() -> &'static str {
    env!("CARGO_BIN_EXE_orb")
}

/// Runs the `orb` CLI with `ORB_TOKEN=token`: (success, stdout, stderr).
pub fn orb_t(token: &str, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(orb_bin())
        .env("ORB_TOKEN", token)
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Runs `orb network ARGS…` (it talks to NATS directly, so no token and
/// no `ORB_NETWORK` from the environment): (success, stdout, stderr).
pub fn orb_network(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(orb_bin())
        .arg("network")
        .args(args)
        .env_remove("ORB_NETWORK")
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

pub struct Server {
    pub url: String,
    pub data_dir: PathBuf,
    child: Child,
    _tmp: Option<tempfile::TempDir>,
    pub http: reqwest::Client,
    /// The admin account's private token (`<data_dir>/admin.token`).
    pub token: String,
    /// What `orb serve` printed before `orb listening on …`.
    pub banner: Vec<String>,
}

impl Server {
    pub fn start(extra: &[&str]) -> Server {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().to_path_buf();
        let mut s = Server::start_in(&dir, extra);
        s._tmp = Some(tmp);
        s
    }

    pub fn start_in(data_dir: &Path, extra: &[&str]) -> Server {
        Server::start_in_env(data_dir, extra, &[])
    }

    /// Like [`Server::start`], with more environment for `orb serve`.
    pub fn start_env(extra: &[&str], env: &[(&str, &Path)]) -> Server {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().to_path_buf();
        let mut s = Server::start_in_env(&dir, extra, env);
        s._tmp = Some(tmp);
        s
    }

    pub fn start_in_env(data_dir: &Path, extra: &[&str], env: &[(&str, &Path)]) -> Server {
        Server::spawn(data_dir, extra, env, None)
    }

    /// A node of a network: `extra` names it (`--network …`); its requests
    /// carry `token` (a network node writes no `admin.token`).
    pub fn start_networked(data_dir: &Path, extra: &[&str], token: &str) -> Server {
        Server::spawn(data_dir, extra, &[], Some(token.to_string()))
    }

    /// SIGKILL: the node dies without a word to anyone.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    fn spawn(
        data_dir: &Path,
        extra: &[&str],
        env: &[(&str, &Path)],
        token: Option<String>,
    ) -> Server {
        let mut child = Command::new(orb_bin())
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(data_dir)
            .args(extra)
            .envs(env.iter().copied())
            .env("ORB_LOG", "warn")
            .current_dir(data_dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn orb serve");
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let mut banner = Vec::new();
        let url = loop {
            let line = lines
                .next()
                .expect("orb serve exited before listening")
                .expect("read stdout");
            if let Some(url) = line.strip_prefix("orb listening on ") {
                break url.trim().to_string();
            }
            banner.push(line);
        };
        // Keep draining stdout so the child never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        let token = token.unwrap_or_else(|| {
            std::fs::read_to_string(data_dir.join("admin.token"))
                .expect("admin.token written at first start")
                .trim()
                .to_string()
        });
        Server {
            token,
            url,
            data_dir: data_dir.to_path_buf(),
            child,
            _tmp: None,
            http: http_client(None),
            banner,
        }
    }

    /// SIGTERM, then wait for a clean exit.
    pub fn stop(mut self) -> std::process::ExitStatus {
        self.terminate();
        self.child.wait().unwrap()
    }

    /// Sends SIGTERM without waiting.
    pub fn terminate(&self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
    }

    /// Waits for the process to exit.
    pub fn wait(&mut self) -> std::process::ExitStatus {
        self.child.wait().unwrap()
    }

    /// `Authorization: Bearer <admin token>`.
    pub fn bearer(&self) -> String {
        format!("Bearer {}", self.token)
    }

    fn with(&self, rb: reqwest::RequestBuilder, token: Option<&str>) -> reqwest::RequestBuilder {
        match token {
            Some(t) => rb.header("authorization", format!("Bearer {t}")),
            None => rb,
        }
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        self.get_as(path, Some(&self.token)).await
    }

    pub async fn get_as(&self, path: &str, token: Option<&str>) -> (u16, Value) {
        let rb = self.http.get(format!("{}{path}", self.url));
        decode(self.with(rb, token).send().await.unwrap()).await
    }

    pub async fn text(&self, path: &str) -> String {
        let rb = self.http.get(format!("{}{path}", self.url));
        self.with(rb, Some(&self.token))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> (u16, Value) {
        self.post_json_as(path, body, Some(&self.token)).await
    }

    pub async fn post_json_as(
        &self,
        path: &str,
        body: &Value,
        token: Option<&str>,
    ) -> (u16, Value) {
        let rb = self.http.post(format!("{}{path}", self.url)).json(body);
        decode(self.with(rb, token).send().await.unwrap()).await
    }

    pub async fn put_json_as(&self, path: &str, body: &Value, token: Option<&str>) -> (u16, Value) {
        let rb = self.http.put(format!("{}{path}", self.url)).json(body);
        decode(self.with(rb, token).send().await.unwrap()).await
    }

    pub async fn upload(&self, bytes: Vec<u8>) -> (u16, Value) {
        self.upload_as(bytes, Some(&self.token)).await
    }

    pub async fn upload_as(&self, bytes: Vec<u8>, token: Option<&str>) -> (u16, Value) {
        let rb = self
            .http
            .post(format!("{}/v1/functions", self.url))
            .header("content-type", "application/wasm")
            .body(bytes);
        decode(self.with(rb, token).send().await.unwrap()).await
    }

    /// Uploads and returns the hash.
    pub async fn deploy(&self, name: &str) -> String {
        let (status, body) = self.upload(guest(name)).await;
        assert!(
            status == 201 || status == 200,
            "deploy {name}: {status} {body}"
        );
        body["hash"].as_str().unwrap().to_string()
    }

    pub async fn call(&self, hash: &str, export: &str, params: Value) -> (u16, Value) {
        self.post_json(&format!("/v1/functions/{hash}/{export}"), &params)
            .await
    }

    pub async fn call_as(
        &self,
        token: &str,
        hash: &str,
        export: &str,
        params: Value,
    ) -> (u16, Value) {
        self.post_json_as(
            &format!("/v1/functions/{hash}/{export}"),
            &params,
            Some(token),
        )
        .await
    }

    pub async fn activations(&self, hash: &str) -> Vec<Value> {
        let (s, v) = self
            .get(&format!("/v1/activations?function={hash}&limit=1000"))
            .await;
        assert_eq!(s, 200, "{v}");
        v["activations"].as_array().unwrap().clone()
    }

    /// Mints a public token under `private` (the admin's when `None`).
    pub async fn mint_as(&self, grant: &Value, private: Option<&str>) -> String {
        let (st, out) = self
            .post_json_as("/v1/tokens", grant, Some(private.unwrap_or(&self.token)))
            .await;
        assert_eq!(st, 201, "minting {grant}: {out}");
        assert!(out["revocation_id"].is_string(), "{out}");
        out["token"].as_str().unwrap().to_string()
    }

    /// Mints a public token under the admin's private token.
    pub async fn mint(&self, grant: &Value) -> String {
        self.mint_as(grant, None).await
    }

    /// Replaces a namespace's whitelist (as the admin).
    pub async fn whitelist(&self, ns: &str, functions: &[&str]) {
        let (st, out) = self
            .put_json_as(
                &format!("/v1/namespaces/{ns}/whitelist"),
                &serde_json::json!({ "functions": functions }),
                Some(&self.token),
            )
            .await;
        assert_eq!(st, 200, "{out}");
    }

    /// The logs of the activation a failed call's error names.
    pub async fn logs_of(&self, error_body: &Value) -> String {
        let act = error_body["error"]["details"]["activation"]
            .as_str()
            .unwrap_or_else(|| panic!("no activation in {error_body}"));
        let (_, a) = self.get(&format!("/v1/activations/{act}")).await;
        a["logs"].as_str().unwrap_or_default().to_string()
    }

    /// Waits (up to 20 s) until at least `n` calls are running.
    pub async fn wait_in_flight(&self, n: f64) {
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while self.metric("orb_instances_in_flight").await < n {
            assert!(
                std::time::Instant::now() < deadline,
                "no call got in flight"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits up to `limit` for the process to exit.
    pub fn wait_for(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let deadline = std::time::Instant::now() + limit;
        loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                return Some(st);
            }
            if std::time::Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The value of one Prometheus sample line (`name{labels}`), 0 when absent.
    pub async fn metric(&self, series: &str) -> f64 {
        let text = self.text("/metrics").await;
        text.lines()
            .find_map(|l| {
                l.strip_prefix(series)
                    .and_then(|rest| rest.strip_prefix(' '))
            })
            .map(|v| v.trim().parse().unwrap())
            .unwrap_or(0.0)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A reqwest client for the tests, also trusting the PEM CA `ca` when given.
pub fn http_client(ca: Option<&[u8]>) -> reqwest::Client {
    // reqwest's rustls backend has no built-in crypto provider in this build.
    orb_client::install_crypto_provider();
    let mut b = reqwest::Client::builder().timeout(Duration::from_secs(300));
    if let Some(pem) = ca {
        b = b.tls_certs_merge(reqwest::Certificate::from_pem_bundle(pem).unwrap());
    }
    b.build().unwrap()
}

pub async fn decode(r: reqwest::Response) -> (u16, Value) {
    let status = r.status().as_u16();
    let bytes = r.bytes().await.unwrap();
    let v = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()))
    };
    (status, v)
}

/// Asserts an error body with `code`, returns it.
pub fn assert_error(status: u16, body: &Value, want_status: u16, code: &str) -> Value {
    assert_eq!(
        status, want_status,
        "expected {want_status} {code}, got {status}: {body}"
    );
    assert_eq!(body["error"]["code"], code, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    body["error"].clone()
}

/// Writes a suite's figures to `$ORB_RELIABILITY_DIR/<name>.json` when that
/// is set (`scripts/reliability` sets it to `build/reliability`, from which
/// it writes RELIABILITY.md).
pub fn write_figures(name: &str, figures: &Value) {
    if let Some(dir) = std::env::var_os("ORB_RELIABILITY_DIR") {
        let dir = PathBuf::from(dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join(format!("{name}.json")),
            serde_json::to_string_pretty(figures).unwrap(),
        )
        .unwrap();
    }
}

/// Polls `GET /v1/network/nodes` on `s` until `pred` holds (or panics
/// after `limit` with the last answer).
pub async fn wait_nodes(s: &Server, limit: Duration, pred: impl Fn(&[Value]) -> bool) -> Value {
    let start = std::time::Instant::now();
    loop {
        let (st, v) = s.get("/v1/network/nodes").await;
        assert_eq!(st, 200, "{v}");
        if pred(v["nodes"].as_array().unwrap()) {
            return v;
        }
        assert!(
            start.elapsed() < limit,
            "not reached after {limit:?}: {v:#}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The id of the network node `s` runs (`this_node` of `/v1/network/nodes`).
pub async fn this_node(s: &Server) -> String {
    let (st, v) = s.get("/v1/network/nodes").await;
    assert_eq!(st, 200, "{v}");
    v["this_node"].as_str().unwrap().to_string()
}
