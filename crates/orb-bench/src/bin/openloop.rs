//! A constant-rate (open-loop) HTTP/1.1 load generator. Request `i` is due
//! at `start + i / rate`; its latency is measured from that due time, not
//! from when a connection was free to send it, so a server that falls
//! behind shows it in the percentiles (no coordinated omission).
//!
//!   openloop --url http://127.0.0.1:8080/path --rate 4000 --seconds 10
//!            [--connections 64] [--header 'Name: value']… [--method POST --body TEXT]
//!
//! Prints one line: `rate R sent N ok N errors N achieved R p50_us … p90_us … p99_us … max_us …`.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use orb_bench::{arg, args};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{Mutex, mpsc};

struct Target {
    host: String,
    authority: String,
    path: String,
    method: hyper::Method,
    headers: Vec<(String, String)>,
    body: Bytes,
}

fn main() -> anyhow::Result<()> {
    let a = args();
    let url = arg(&a, "url").ok_or_else(|| anyhow::anyhow!("--url is required"))?;
    let rate: f64 = arg(&a, "rate").unwrap_or_else(|| "1000".into()).parse()?;
    let seconds: f64 = arg(&a, "seconds").unwrap_or_else(|| "10".into()).parse()?;
    let conns: usize = arg(&a, "connections")
        .unwrap_or_else(|| "64".into())
        .parse()?;
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| anyhow::anyhow!("only http:// URLs"))?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let headers = a
        .iter()
        .filter(|(k, _)| k == "header")
        .filter_map(|(_, v)| v.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let target = Arc::new(Target {
        host: authority.to_string(),
        authority: authority.to_string(),
        path: path.to_string(),
        method: arg(&a, "method").unwrap_or_else(|| "GET".into()).parse()?,
        headers,
        body: Bytes::from(arg(&a, "body").unwrap_or_default()),
    });

    let total = (rate * seconds).round() as u64;
    let interval = Duration::from_secs_f64(1.0 / rate);
    let (tx, rx) = mpsc::unbounded_channel::<Instant>();
    let rx = Arc::new(Mutex::new(rx));

    // The generator uses one thread for its connections and one to pace.
    let tokio = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let start = Instant::now() + Duration::from_millis(200);
    // Pacer: a plain thread (tokio's timer has 1 ms granularity) that hands
    // out due times; sleeps in ≤ 1 ms steps and releases what is due.
    let pacer = std::thread::spawn(move || {
        let mut i = 0u64;
        while i < total {
            let now = Instant::now();
            while i < total {
                let due = start + interval.mul_f64(i as f64);
                if due > now {
                    break;
                }
                if tx.send(due).is_err() {
                    return;
                }
                i += 1;
            }
            let next = start + interval.mul_f64(i as f64);
            let now = Instant::now();
            if next > now {
                std::thread::sleep((next - now).min(Duration::from_millis(1)));
            }
        }
    });
    let (lat, errors) = tokio.block_on(async move {
        let mut tasks = Vec::new();
        for _ in 0..conns {
            let (rx, target) = (rx.clone(), target.clone());
            tasks.push(tokio::spawn(worker(rx, target)));
        }
        let mut lat = Vec::with_capacity(total as usize);
        let mut errors = 0u64;
        for t in tasks {
            let (l, e) = t.await.expect("worker");
            lat.extend(l);
            errors += e;
        }
        (lat, errors)
    });
    pacer.join().expect("pacer");
    let elapsed = start.elapsed().as_secs_f64();
    let mut lat = lat;
    lat.sort_unstable();
    let pct = |p: f64| -> u64 {
        if lat.is_empty() {
            return 0;
        }
        lat[((lat.len() - 1) as f64 * p).round() as usize]
    };
    println!(
        "rate {rate:.0} sent {total} ok {} errors {errors} achieved {:.0} p50_us {} p90_us {} p99_us {} max_us {}",
        lat.len(),
        lat.len() as f64 / elapsed.max(seconds),
        pct(0.50),
        pct(0.90),
        pct(0.99),
        lat.last().copied().unwrap_or(0)
    );
    Ok(())
}

type Sender = http1::SendRequest<Full<Bytes>>;

async fn connect(target: &Target) -> anyhow::Result<Sender> {
    let stream = tokio::net::TcpStream::connect(&target.authority).await?;
    stream.set_nodelay(true)?;
    let (send, conn) = http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(conn);
    Ok(send)
}

/// Takes due times off the shared queue and sends one request per due time
/// on its own keep-alive connection; returns latencies (µs) and errors.
async fn worker(
    rx: Arc<Mutex<mpsc::UnboundedReceiver<Instant>>>,
    target: Arc<Target>,
) -> (Vec<u64>, u64) {
    let mut lat = Vec::new();
    let mut errors = 0u64;
    let mut send: Option<Sender> = None;
    loop {
        let Some(due) = rx.lock().await.recv().await else {
            break;
        };
        if send.is_none() {
            send = connect(&target).await.ok();
        }
        let Some(s) = send.as_mut() else {
            errors += 1;
            continue;
        };
        let mut req = hyper::Request::builder()
            .method(target.method.clone())
            .uri(target.path.as_str())
            .header("host", target.host.as_str());
        for (k, v) in &target.headers {
            req = req.header(k.as_str(), v.as_str());
        }
        let req = req
            .body(Full::new(target.body.clone()))
            .expect("valid request");
        let ok = match s.send_request(req).await {
            Ok(resp) => {
                let status = resp.status();
                resp.into_body().collect().await.is_ok() && status.is_success()
            }
            Err(_) => false,
        };
        if ok {
            lat.push(due.elapsed().as_micros() as u64);
        } else {
            errors += 1;
            send = None;
        }
    }
    (lat, errors)
}
