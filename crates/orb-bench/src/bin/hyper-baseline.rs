//! A bare hyper HTTP/1.1 server: every request gets the same status,
//! content type and body (read from a file), nothing else.
//!
//!   hyper-baseline --listen 127.0.0.1:8090 --body body.txt [--content-type T]
//!
//! Prints `listening on ADDR` once bound.

use bytes::Bytes;
use http_body_util::Full;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use orb_bench::{arg, args};
use std::convert::Infallible;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let a = args();
    let listen = arg(&a, "listen").unwrap_or_else(|| "127.0.0.1:0".into());
    let body = match arg(&a, "body") {
        Some(p) => Bytes::from(std::fs::read(p)?),
        None => Bytes::from_static(b"hello\n"),
    };
    let ctype = arg(&a, "content-type").unwrap_or_else(|| "application/json".into());
    let listener = tokio::net::TcpListener::bind(&listen).await?;
    println!("listening on {}", listener.local_addr()?);
    loop {
        let (stream, _) = listener.accept().await?;
        let _ = stream.set_nodelay(true);
        let (body, ctype) = (body.clone(), ctype.clone());
        tokio::spawn(async move {
            let svc = service_fn(move |_req| {
                let resp = hyper::Response::builder()
                    .header("content-type", ctype.as_str())
                    .body(Full::new(body.clone()))
                    .expect("valid response");
                async move { Ok::<_, Infallible>(resp) }
            });
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), svc)
                .await;
        });
    }
}
