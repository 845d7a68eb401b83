//! Connection limits (`listener.rs` in orb-node): a slowloris of thousands of
//! half-open connections is shed while ordinary calls keep being answered;
//! the node-wide and per-address caps, the idle timeout, the request-head
//! cap, the TLS listener, and bad settings at startup.
//!
//! Real `orb serve`, real TCP on loopback. Attackers connect from other
//! loopback addresses (127.0.0.10 …; Linux routes all of 127/8 to `lo`) so the
//! per-address limit sees them apart from the ordinary client (127.0.0.1).
//! No timing is asserted beyond wide bounds; figures are printed.

mod common;

use common::*;
use serde_json::json;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpSocket, TcpStream};

/// Half a request head: the line and one header, never the blank line.
const HALF_HEAD: &[u8] = b"GET /healthz HTTP/1.1\r\nHost: orb\r\nX-Slow: ";

fn start_with(toml: &str, extra: &[&str]) -> (Server, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("orb.toml"), toml).unwrap();
    let s = Server::start_in(dir.path(), extra);
    (s, dir)
}

fn node_addr(s: &Server) -> SocketAddr {
    let hostport = s.url.split("://").nth(1).unwrap().trim_end_matches('/');
    hostport.parse().unwrap()
}

/// A TCP connection to `to` from the loopback address `from`.
async fn connect_from(from: Ipv4Addr, to: SocketAddr) -> std::io::Result<TcpStream> {
    let sock = TcpSocket::new_v4()?;
    sock.bind(SocketAddr::from((from, 0)))?;
    sock.connect(to).await
}

/// How a connection ended for the client.
#[derive(Debug, PartialEq)]
enum End {
    /// The node closed it (FIN).
    Closed,
    /// The node reset it.
    Reset,
    /// Still open when the wait ended.
    Open,
}

/// Reads until the peer closes or `limit` passes: what came, and how it ended.
async fn read_to_close(tcp: &mut TcpStream, limit: Duration) -> (Vec<u8>, End) {
    let mut got = Vec::new();
    let deadline = tokio::time::Instant::now() + limit;
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout_at(deadline, tcp.read(&mut buf)).await {
            Err(_) => return (got, End::Open),
            Ok(Ok(0)) => return (got, End::Closed),
            Ok(Err(_)) => return (got, End::Reset),
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
        }
    }
}

/// Soft `RLIMIT_NOFILE`, raised towards `want` (up to the hard limit);
/// returns what is in force.
fn raise_fd_limit(want: u64) -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read or write the struct passed.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim), 0);
        if lim.rlim_cur < want {
            let raised = libc::rlimit {
                rlim_cur: want.min(lim.rlim_max),
                rlim_max: lim.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                lim.rlim_cur = raised.rlim_cur;
            }
        }
    }
    lim.rlim_cur
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

/// `n` calls of `hello.greet` one after the other; their latencies, sorted.
async fn calls(s: &Server, hash: &str, n: usize) -> Vec<Duration> {
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let t = Instant::now();
        let (st, body) = s
            .call(hash, "greet", json!({"name": format!("n{i}")}))
            .await;
        out.push(t.elapsed());
        assert_eq!(st, 200, "an ordinary call failed during the test: {body}");
    }
    out.sort();
    out
}

/// What happened to one attacking connection.
enum Fate {
    /// Refused at once (`503 overloaded` read, or reset).
    Refused,
    /// Held, then closed by the node this long after its half head.
    Shed(Duration),
    /// Still open at the end of the wait.
    Open,
    /// `connect` itself failed (backlog full, out of ports…).
    NoConnect,
}

async fn slow_client(from: Ipv4Addr, to: SocketAddr, wait: Duration) -> Fate {
    let Ok(mut tcp) = connect_from(from, to).await else {
        return Fate::NoConnect;
    };
    let sent = Instant::now();
    if tcp.write_all(HALF_HEAD).await.is_err() {
        return Fate::Refused;
    }
    match read_to_close(&mut tcp, wait).await {
        (_, End::Open) => Fate::Open,
        // A refusal: the 503, or a reset when the client's bytes arrived
        // after the node had drained what it could.
        (got, End::Closed) if got.starts_with(b"HTTP/1.1 503") => Fate::Refused,
        (_, End::Reset) => Fate::Refused,
        (_, End::Closed) => Fate::Shed(sent.elapsed()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_slowloris_of_thousands_is_shed_while_calls_are_answered() {
    const ADDRESSES: u8 = 8;
    const PER_ADDRESS_CAP: usize = 200;
    // Connections each attacking address tries: 8 × 500 = 4,000 half-open.
    let mut per_address_tries: usize = 500;
    // The test process holds every attacking socket (the node, a separate
    // process, holds its own side): keep within the open-files limit.
    let limit = raise_fd_limit(ADDRESSES as u64 * per_address_tries as u64 + 1024);
    let fit = (limit.saturating_sub(512) / ADDRESSES as u64) as usize;
    if fit < per_address_tries {
        eprintln!(
            "open-files limit {limit}: {fit} tries per address instead of {per_address_tries}"
        );
        per_address_tries = fit;
    }
    let (s, _dir) = start_with(
        &format!(
            "header_read_timeout_ms = 3000\nidle_timeout_ms = 5000\n\
             max_connections = 5000\nmax_connections_per_address = {PER_ADDRESS_CAP}\n"
        ),
        &[],
    );
    let to = node_addr(&s);
    let hash = s.deploy("hello").await;

    // Without an attack.
    let quiet = calls(&s, &hash, 200).await;

    // The attack: every address opens its connections at once, sends half
    // a head and waits (up to 60 s; the header-read timeout is 3 s) for the
    // node to close them.
    let wait = Duration::from_secs(60);
    let started = Instant::now();
    let mut attackers = Vec::new();
    for a in 0..ADDRESSES {
        let from = Ipv4Addr::new(127, 0, 0, 10 + a);
        for _ in 0..per_address_tries {
            attackers.push(tokio::spawn(slow_client(from, to, wait)));
        }
    }
    // Ordinary calls while the half-open connections are held: on the kept-
    // alive connection, and on new connections from a fresh client.
    // Calls go on until 2.5 s after the start (the half-open connections are
    // held for 3 s), at least 200 of them.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut during = Vec::new();
    while during.len() < 200 || started.elapsed() < Duration::from_millis(2500) {
        during.extend(calls(&s, &hash, 50).await);
    }
    during.sort();
    let fresh = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    for _ in 0..20 {
        let r = fresh
            .post(format!("{}/v1/functions/{hash}/greet", s.url))
            .header("authorization", s.bearer())
            .json(&json!({"name": "fresh"}))
            .send()
            .await
            .expect("a new connection from an address that is not attacking is accepted");
        assert_eq!(r.status(), 200);
    }
    let open_during = s.metric("orb_connections_open").await;

    let (mut refused, mut open, mut no_connect) = (0usize, 0usize, 0usize);
    let mut shed = Vec::new();
    for t in attackers {
        match t.await.unwrap() {
            Fate::Refused => refused += 1,
            Fate::Shed(d) => shed.push(d),
            Fate::Open => open += 1,
            Fate::NoConnect => no_connect += 1,
        }
    }
    let all_closed_after = started.elapsed();
    shed.sort();
    let tries = ADDRESSES as usize * per_address_tries;
    let refused_metric = s
        .metric("orb_connections_refused_total{reason=\"per_address\"}")
        .await;
    let header_timeouts = s
        .metric("orb_connections_timed_out_total{phase=\"header\"}")
        .await;

    println!(
        "slowloris: {tries} half-open connections tried from {ADDRESSES} addresses; \
         {} held then shed, {refused} refused at once, {open} still open, {no_connect} not connected; \
         node saw {open_during} open during the attack; all settled {:.1} s after the start",
        shed.len(),
        all_closed_after.as_secs_f64()
    );
    if !shed.is_empty() {
        println!(
            "shed after their half head: min {:?}, p50 {:?}, p99 {:?}, max {:?} (header_read_timeout 3 s)",
            shed[0],
            percentile(&shed, 0.5),
            percentile(&shed, 0.99),
            shed[shed.len() - 1]
        );
    }
    println!(
        "ordinary calls: quiet p50 {:?} p99 {:?}; during the attack ({} calls) p50 {:?} p99 {:?}",
        percentile(&quiet, 0.5),
        percentile(&quiet, 0.99),
        during.len(),
        percentile(&during, 0.5),
        percentile(&during, 0.99)
    );
    println!("metrics: refused per_address {refused_metric}, timed out header {header_timeouts}");
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let shed_ms = |p: f64| (!shed.is_empty()).then(|| ms(percentile(&shed, p)));
    write_figures(
        "connections",
        &json!({
            "half_open_tried": tries,
            "addresses": ADDRESSES,
            "held_then_shed": shed.len(),
            "refused_at_once": refused,
            "left_open": open,
            "settled_s": all_closed_after.as_secs_f64(),
            "shed_p50_ms": shed_ms(0.5),
            "shed_max_ms": shed_ms(1.0),
            "calls_quiet_p50_ms": ms(percentile(&quiet, 0.5)),
            "calls_quiet_p99_ms": ms(percentile(&quiet, 0.99)),
            "calls_during": during.len(),
            "calls_during_p50_ms": ms(percentile(&during, 0.5)),
            "calls_during_p99_ms": ms(percentile(&during, 0.99)),
        }),
    );

    assert_eq!(open, 0, "every half-open connection is closed within 60 s");
    assert_eq!(
        no_connect, 0,
        "every attacking connect got through to the node"
    );
    assert_eq!(shed.len() + refused, tries);
    assert!(
        open_during <= (ADDRESSES as usize * PER_ADDRESS_CAP + 10) as f64,
        "no address holds more than its cap at once: {open_during} open"
    );
    assert!(refused > 0, "the per-address cap refused some");
    assert!(
        refused_metric >= refused as f64,
        "{refused_metric} < {refused}"
    );
    assert!(
        header_timeouts >= shed.len() as f64,
        "{header_timeouts} < {}",
        shed.len()
    );
    // Everything let go: only the test client's own connection(s) remain.
    let deadline = Instant::now() + Duration::from_secs(20);
    while s.metric("orb_connections_open").await > 5.0 {
        assert!(Instant::now() < deadline, "connections are still open");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn caps_idle_timeout_head_size_and_tokens() {
    let (s, _dir) = start_with(
        "header_read_timeout_ms = 3000\nidle_timeout_ms = 2000\n\
         max_connections = 40\nmax_connections_per_address = 5\n\
         max_request_head_bytes = 16384\n",
        &[],
    );
    let to = node_addr(&s);
    let anon = Ipv4Addr::new(127, 0, 0, 20);

    // Per address: five anonymous connections are held, the sixth is
    // refused with a 503 `overloaded` the client can read.
    let mut held = Vec::new();
    for _ in 0..5 {
        let mut tcp = connect_from(anon, to).await.unwrap();
        tcp.write_all(HALF_HEAD).await.unwrap();
        held.push(tcp);
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut sixth = connect_from(anon, to).await.unwrap();
    let (got, end) = read_to_close(&mut sixth, Duration::from_secs(10)).await;
    let text = String::from_utf8_lossy(&got);
    assert_eq!(end, End::Closed, "the sixth connection is closed");
    assert!(text.starts_with("HTTP/1.1 503"), "{text}");
    assert!(text.contains("\"code\":\"overloaded\""), "{text}");
    assert!(text.contains("retry-after: 1"), "{text}");
    assert!(
        s.metric("orb_connections_refused_total{reason=\"per_address\"}")
            .await
            >= 1.0
    );

    // A connection whose request carries a valid token stops counting for
    // its address: after it, five more anonymous ones fit.
    let authed = Ipv4Addr::new(127, 0, 0, 21);
    let mut keep = connect_from(authed, to).await.unwrap();
    let req = format!(
        "GET /v1/functions HTTP/1.1\r\nHost: orb\r\nAuthorization: {}\r\n\r\n",
        s.bearer()
    );
    keep.write_all(req.as_bytes()).await.unwrap();
    let mut buf = [0u8; 16];
    keep.read_exact(&mut buf).await.unwrap();
    assert!(buf.starts_with(b"HTTP/1.1 200"), "{buf:?}");
    let mut more = Vec::new();
    for _ in 0..5 {
        let mut tcp = connect_from(authed, to).await.unwrap();
        tcp.write_all(HALF_HEAD).await.unwrap();
        more.push(tcp);
    }
    // The token's connection, now idle, is closed after the idle timeout
    // (2 s; allow 30 s).
    let t = Instant::now();
    let (_, end) = read_to_close(&mut keep, Duration::from_secs(30)).await;
    assert_eq!(end, End::Closed, "an idle kept-alive connection is closed");
    println!(
        "idle connection closed after {:?} (idle_timeout 2 s)",
        t.elapsed()
    );
    // The five anonymous ones were admitted (not refused): each is shed by
    // the header-read timeout, without a 503.
    for mut tcp in more.into_iter().chain(held) {
        let (got, end) = read_to_close(&mut tcp, Duration::from_secs(30)).await;
        assert_eq!(end, End::Closed);
        assert!(got.is_empty(), "{}", String::from_utf8_lossy(&got));
    }
    assert!(
        s.metric("orb_connections_timed_out_total{phase=\"idle\"}")
            .await
            >= 1.0
    );
    assert!(
        s.metric("orb_connections_timed_out_total{phase=\"header\"}")
            .await
            >= 10.0
    );

    // A head that reaches max_request_head_bytes unfinished → 431 (exactly
    // that many bytes, so none is left unread to reset the connection).
    let mut big = connect_from(Ipv4Addr::new(127, 0, 0, 22), to)
        .await
        .unwrap();
    let mut head = b"GET /healthz HTTP/1.1\r\nHost: orb\r\nX-Big: ".to_vec();
    head.resize(16384, b'a');
    big.write_all(&head).await.unwrap();
    let (got, _) = read_to_close(&mut big, Duration::from_secs(30)).await;
    assert!(
        got.starts_with(b"HTTP/1.1 431"),
        "{}",
        String::from_utf8_lossy(&got)
    );

    // Node-wide: 40 connections from 8 addresses (5 each) fill the node;
    // the next one, from yet another address, is refused.
    let mut filled = Vec::new();
    for a in 0..8u8 {
        for _ in 0..5 {
            let mut tcp = connect_from(Ipv4Addr::new(127, 0, 0, 30 + a), to)
                .await
                .unwrap();
            tcp.write_all(HALF_HEAD).await.unwrap();
            filled.push(tcp);
        }
    }
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut over = connect_from(Ipv4Addr::new(127, 0, 0, 40), to)
        .await
        .unwrap();
    let (got, end) = read_to_close(&mut over, Duration::from_secs(10)).await;
    assert_eq!(end, End::Closed);
    assert!(
        got.starts_with(b"HTTP/1.1 503"),
        "{}",
        String::from_utf8_lossy(&got)
    );
    assert!(
        s.metric("orb_connections_refused_total{reason=\"max_connections\"}")
            .await
            >= 1.0
    );
    // Once they are shed, calls connect again.
    for mut tcp in filled {
        let (_, end) = read_to_close(&mut tcp, Duration::from_secs(30)).await;
        assert_eq!(end, End::Closed);
    }
    let (st, body) = s.get("/v1/functions").await;
    assert_eq!(st, 200, "{body}");
}

#[tokio::test]
async fn the_tls_listener_sheds_stalled_handshakes() {
    let (s, dir) = start_with(
        "header_read_timeout_ms = 1000\nmax_connections_per_address = 100\n",
        &["--tls-self-signed"],
    );
    let to = node_addr(&s);
    // 300 connections that never finish a handshake, 200 from one address
    // (cap 100) and 100 from another: each is refused or held then shed.
    let mut tasks = Vec::new();
    for a in 0..3u8 {
        for _ in 0..100 {
            tasks.push(tokio::spawn(async move {
                let from = Ipv4Addr::new(127, 0, 0, 50 + a % 2);
                let mut tcp = connect_from(from, to).await.unwrap();
                // The start of a TLS record header, then nothing.
                let _ = tcp.write_all(&[0x16, 0x03, 0x01]).await;
                let t = Instant::now();
                let (_, end) = read_to_close(&mut tcp, Duration::from_secs(30)).await;
                (end != End::Open, t.elapsed())
            }));
        }
    }
    let pem = std::fs::read(dir.path().join("tls/self-signed.crt")).unwrap();
    let https = http_client(Some(&pem));
    let r = https
        .get(format!("{}/v1/functions", s.url))
        .header("authorization", s.bearer())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let mut slowest = Duration::ZERO;
    for t in tasks {
        let (closed, after) = t.await.unwrap();
        assert!(closed, "a stalled handshake is closed within 30 s");
        slowest = slowest.max(after);
    }
    println!("tls: 300 stalled handshakes closed, the last after {slowest:?}");
    let metrics = https
        .get(format!("{}/metrics", s.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let value = |series: &str| -> f64 {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
            .map(|v| v.trim().parse().unwrap())
            .unwrap_or(0.0)
    };
    let refused = value("orb_connections_refused_total{reason=\"per_address\"}");
    let shed = value("orb_connections_timed_out_total{phase=\"header\"}");
    println!("tls: {refused} refused, {shed} shed by the header-read timeout");
    assert_eq!(refused + shed, 300.0);
    assert!(shed >= 200.0, "{shed}");
}

#[test]
fn bad_connection_settings_fail_at_startup() {
    for (toml, want) in [
        ("max_request_head_bytes = 100\n", "max_request_head_bytes"),
        ("header_read_timeout_ms = 0\n", "header_read_timeout_ms"),
        ("max_connections = 0\n", "max_connections"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("orb.toml"), toml).unwrap();
        let out = serve_output(dir.path());
        assert!(!out.status.success(), "{toml}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(want), "{toml}: {err}");
    }
}

fn serve_output(dir: &Path) -> std::process::Output {
    std::process::Command::new(orb_bin())
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir)
        .current_dir(dir)
        .env("ORB_LOG", "warn")
        .output()
        .unwrap()
}
