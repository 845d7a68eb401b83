//! HTTPS: `--tls-self-signed`, `--tls-cert/--tls-key`, the client's `--ca`,
//! and startup errors for bad TLS settings.

mod common;

use base64::Engine as _;
use common::*;
use sha2::{Digest as _, Sha256};
use std::io::{Read as _, Write as _};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Runs the `orb` CLI without inherited `ORB_CA`/`ORB_SERVER`, with `envs`,
/// and with `ORB_TOKEN` from the node's `admin.token` when it wrote one.
fn orb(data_dir: &Path, args: &[&str], envs: &[(&str, &Path)]) -> (bool, String, String) {
    let mut cmd = Command::new(orb_bin());
    cmd.args(args).env_remove("ORB_CA").env_remove("ORB_SERVER");
    if let Ok(token) = std::fs::read_to_string(data_dir.join("admin.token")) {
        cmd.env("ORB_TOKEN", token.trim());
    }
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The DER bytes of the first certificate in a PEM file.
fn pem_to_der(pem: &str) -> Vec<u8> {
    let body: String = pem
        .lines()
        .skip_while(|l| !l.starts_with("-----BEGIN CERTIFICATE-----"))
        .skip(1)
        .take_while(|l| !l.starts_with("-----END"))
        .collect();
    base64::engine::general_purpose::STANDARD
        .decode(body)
        .unwrap()
}

fn fingerprint(der: &[u8]) -> String {
    Sha256::digest(der)
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

fn fingerprint_line(s: &Server) -> String {
    s.banner
        .iter()
        .find_map(|l| l.strip_prefix("tls certificate sha256 fingerprint: "))
        .unwrap_or_else(|| panic!("no fingerprint line in {:?}", s.banner))
        .to_string()
}

/// `orb serve` with `extra` must exit non-zero at startup; returns stderr.
fn serve_fails(extra: &[&str]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(orb_bin())
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path())
        .args(extra)
        .env_remove("ORB_TLS_CERT")
        .env_remove("ORB_TLS_KEY")
        .env_remove("ORB_TLS_SELF_SIGNED")
        .current_dir(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("orb serve {extra:?} did not fail at startup");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut out = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(!status.success(), "orb serve {extra:?} succeeded: {out}");
    assert!(!out.contains("orb listening"), "{out}");
    err
}

/// Sends a plain-HTTP request to `addr`; returns whatever came back.
fn plain_http_bytes(addr: &str) -> Vec<u8> {
    let mut tcp = std::net::TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let _ = tcp.write_all(b"GET /healthz HTTP/1.1\r\nhost: localhost\r\n\r\n");
    let mut got = Vec::new();
    let _ = tcp.read_to_end(&mut got);
    got
}

#[tokio::test]
async fn self_signed_serves_https_and_refuses_plain_http() {
    let data = tempfile::tempdir().unwrap();
    let mut s = Server::start_in(data.path(), &["--tls-self-signed"]);
    assert!(s.url.starts_with("https://127.0.0.1:"), "{}", s.url);

    // The certificate is in the data dir, the key is private, and the printed
    // fingerprint is the SHA-256 of the certificate's DER.
    let crt = data.path().join("tls/self-signed.crt");
    let key = data.path().join("tls/self-signed.key");
    let pem = std::fs::read_to_string(&crt).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&key).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "key mode {mode:o}");
    }
    let fp = fingerprint_line(&s);
    assert_eq!(fp, fingerprint(&pem_to_der(&pem)));

    // HTTPS with the certificate as CA.
    s.http = http_client(Some(pem.as_bytes()));
    let (status, body) = s.get("/healthz").await;
    assert_eq!(status, 200, "{body}");
    // Also by name (the certificate covers localhost).
    let by_name = s.url.replace("127.0.0.1", "localhost");
    let r = s
        .http
        .get(format!("{by_name}/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    // Without the CA the handshake is refused by the client.
    let err = http_client(None)
        .get(format!("{}/healthz", s.url))
        .send()
        .await
        .unwrap_err();
    assert!(err.is_connect(), "{err:?}");

    // Plain HTTP on the same port gets no HTTP answer, and does no harm.
    let addr = s.url.trim_start_matches("https://").to_string();
    let plain = s.url.replace("https://", "http://");
    let r = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap()
        .get(format!("{plain}/healthz"))
        .send()
        .await;
    assert!(r.is_err(), "plain HTTP was answered: {r:?}");
    let got = plain_http_bytes(&addr);
    assert!(
        !got.starts_with(b"HTTP/"),
        "plain HTTP was answered: {}",
        String::from_utf8_lossy(&got)
    );
    let (status, _) = s.get("/healthz").await;
    assert_eq!(status, 200, "the server survives bad handshakes");

    // The CLI: with --ca (flag or ORB_CA) it talks to the node, without it
    // fails with a certificate error.
    let d = data.path();
    let url = s.url.clone();
    let crt_s = crt.to_str().unwrap();
    let hello = guest_path("hello");
    let hello = hello.to_str().unwrap();
    let (ok, out, err) = orb(d, &["deploy", hello, "--ca", crt_s, "--server", &url], &[]);
    assert!(ok, "{out}{err}");
    let hash = out.lines().next().unwrap_or_default().trim().to_string();
    assert!(hash.starts_with("sha256:"), "{out}");
    let (ok, out, err) = orb(d, &["fn", "ls", "--ca", crt_s, "--server", &url], &[]);
    assert!(ok, "{out}{err}");
    assert!(out.contains(&hash), "{out}");
    let (ok, out, err) = orb(
        d,
        &["invoke", &hash, "greet", "name=Ada", "--server", &url],
        &[("ORB_CA", &crt)],
    );
    assert!(ok, "{out}{err}");
    assert_eq!(out.trim(), "Hello, Ada!");

    let (ok, out, err) = orb(d, &["fn", "ls", "--server", &url], &[]);
    assert!(!ok, "succeeded without --ca: {out}");
    assert!(err.contains("certificate"), "{err}");
    assert!(err.contains("--ca"), "{err}");

    // Graceful shutdown over TLS; the next start reuses the certificate.
    assert!(s.stop().success());
    let s = Server::start_in(d, &["--tls-self-signed"]);
    assert_eq!(fingerprint_line(&s), fp);
    assert_eq!(std::fs::read_to_string(&crt).unwrap(), pem);
    let (ok, out, err) = orb(d, &["fn", "ls", "--ca", crt_s, "--server", &s.url], &[]);
    assert!(ok, "{out}{err}");
    assert!(out.contains(&hash), "{out}");
    assert!(s.stop().success());
}

#[tokio::test]
async fn own_certificate_signed_by_a_ca() {
    let dir = tempfile::tempdir().unwrap();
    // A CA and a server certificate it signs, as an operator would have.
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "Orb test CA");
    let ca = rcgen::CertifiedIssuer::self_signed(ca_params, rcgen::KeyPair::generate().unwrap())
        .unwrap();
    let leaf_key = rcgen::KeyPair::generate().unwrap();
    let leaf = rcgen::CertificateParams::new(vec!["localhost".into(), "127.0.0.1".into()])
        .unwrap()
        .signed_by(&leaf_key, &*ca)
        .unwrap();
    let ca_file = dir.path().join("ca.crt");
    let cert_file = dir.path().join("server.crt");
    let key_file = dir.path().join("server.key");
    std::fs::write(&ca_file, ca.pem()).unwrap();
    std::fs::write(&cert_file, leaf.pem()).unwrap();
    std::fs::write(&key_file, leaf_key.serialize_pem()).unwrap();

    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    let mut s = Server::start_in(
        &data,
        &[
            "--tls-cert",
            cert_file.to_str().unwrap(),
            "--tls-key",
            key_file.to_str().unwrap(),
        ],
    );
    assert!(s.url.starts_with("https://"), "{}", s.url);
    assert_eq!(fingerprint_line(&s), fingerprint(leaf.der()));
    assert!(!data.join("tls").exists(), "no self-signed files are made");
    s.http = http_client(Some(ca.pem().as_bytes()));
    let (status, body) = s.get("/healthz").await;
    assert_eq!(status, 200, "{body}");
    let (ok, out, err) = orb(
        &data,
        &["fn", "ls", "--server", &s.url],
        &[("ORB_CA", &ca_file)],
    );
    assert!(ok, "{out}{err}");
    assert!(s.stop().success());

    // Bad settings fail at startup, before listening, with a clear message.
    let other_key = dir.path().join("other.key");
    std::fs::write(
        &other_key,
        rcgen::KeyPair::generate().unwrap().serialize_pem(),
    )
    .unwrap();
    let (cert, key) = (cert_file.to_str().unwrap(), key_file.to_str().unwrap());
    let err = serve_fails(&["--tls-cert", cert, "--tls-key", other_key.to_str().unwrap()]);
    assert!(err.contains("does not match"), "{err}");
    let missing = dir.path().join("missing.crt");
    let err = serve_fails(&["--tls-cert", missing.to_str().unwrap(), "--tls-key", key]);
    assert!(err.contains("cannot read the certificate"), "{err}");
    assert!(err.contains("missing.crt"), "{err}");
    let err = serve_fails(&["--tls-cert", cert]);
    assert!(err.contains("--tls-key is not"), "{err}");
    let err = serve_fails(&["--tls-key", key]);
    assert!(err.contains("--tls-cert is not"), "{err}");
    let err = serve_fails(&["--tls-self-signed", "--tls-cert", cert, "--tls-key", key]);
    assert!(err.contains("not both"), "{err}");
    let err = serve_fails(&["--tls-cert", key, "--tls-key", key]);
    assert!(err.contains("no PEM certificate"), "{err}");
}

#[tokio::test]
async fn sigterm_over_tls_lets_in_flight_calls_finish() {
    let data = tempfile::tempdir().unwrap();
    let d = data.path();
    let mut s = Server::start_in(d, &["--tls-self-signed", "--timeout", "2s"]);
    let crt = d.join("tls/self-signed.crt");
    s.http = http_client(Some(&std::fs::read(&crt).unwrap()));
    let misbehave = guest_path("misbehave");
    let (ok, out, err) = orb(
        d,
        &["deploy", misbehave.to_str().unwrap(), "--server", &s.url],
        &[("ORB_CA", &crt)],
    );
    assert!(ok, "{out}{err}");
    let hash = out.lines().next().unwrap_or_default().trim().to_string();
    let token = std::fs::read_to_string(d.join("admin.token")).ok();
    let call = {
        let (http, url) = (s.http.clone(), s.url.clone());
        tokio::spawn(async move {
            let mut req = http
                .post(format!("{url}/v1/functions/{hash}/spin"))
                .json(&serde_json::json!({}));
            if let Some(t) = token {
                req = req.bearer_auth(t.trim());
            }
            decode(req.send().await.unwrap()).await
        })
    };
    s.wait_in_flight(1.0).await;
    s.terminate();
    // The in-flight call still gets its answer, then the node exits cleanly.
    let (st, body) = call.await.unwrap();
    assert_error(st, &body, 422, "function_timeout");
    assert!(s.wait().success());
}
