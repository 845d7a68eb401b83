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

pub struct Server {
    pub url: String,
    pub data_dir: PathBuf,
    child: Child,
    _tmp: Option<tempfile::TempDir>,
    pub http: reqwest::Client,
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
        let mut child = Command::new(orb_bin())
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(data_dir)
            .args(extra)
            .env("ORB_LOG", "warn")
            .current_dir(data_dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn orb serve");
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let url = loop {
            let line = lines
                .next()
                .expect("orb serve exited before listening")
                .expect("read stdout");
            if let Some(url) = line.strip_prefix("orb listening on ") {
                break url.trim().to_string();
            }
        };
        // Keep draining stdout so the child never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        Server {
            url,
            data_dir: data_dir.to_path_buf(),
            child,
            _tmp: None,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(300))
                .build()
                .unwrap(),
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

    pub async fn get(&self, path: &str) -> (u16, Value) {
        let r = self
            .http
            .get(format!("{}{path}", self.url))
            .send()
            .await
            .unwrap();
        decode(r).await
    }

    pub async fn text(&self, path: &str) -> String {
        self.http
            .get(format!("{}{path}", self.url))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    pub async fn post_json(&self, path: &str, body: &Value) -> (u16, Value) {
        let r = self
            .http
            .post(format!("{}{path}", self.url))
            .json(body)
            .send()
            .await
            .unwrap();
        decode(r).await
    }

    pub async fn upload(&self, bytes: Vec<u8>) -> (u16, Value) {
        let r = self
            .http
            .post(format!("{}/v1/functions", self.url))
            .header("content-type", "application/wasm")
            .body(bytes)
            .send()
            .await
            .unwrap();
        decode(r).await
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

    pub async fn activations(&self, hash: &str) -> Vec<Value> {
        let (s, v) = self
            .get(&format!("/v1/activations?function={hash}&limit=1000"))
            .await;
        assert_eq!(s, 200, "{v}");
        v["activations"].as_array().unwrap().clone()
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

fn unsafe_sigterm(pid: u32) {
    let _ = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status();
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
