//! Tools for `scripts/bench` (not part of a node): `hyper-baseline`, a bare
//! hyper server answering every request with the same bytes (the ceiling an
//! HTTP server on this machine reaches), and `openloop`, a constant-rate
//! load generator (`wrk` is closed-loop: it slows down with the server and
//! so hides queueing in its latencies).

/// `--name value` pairs from the command line, in order.
pub fn args() -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        let name = k.trim_start_matches("--").to_string();
        let value = it.next().unwrap_or_default();
        out.push((name, value));
    }
    out
}

/// The value of `--name`, if given.
pub fn arg(args: &[(String, String)], name: &str) -> Option<String> {
    args.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
}
