//! Orb example: an HTTP function (`wasi:http/incoming-handler`), the same
//! kind of component `wasmtime serve` and Spin run.
//!
//! - `GET /` (any other path too): a JSON hello echoing the method, the path
//!   with its query and the `x-echo` and `authorization` request headers.
//! - `/echo`: streams the request body back as it arrives (any method).
//! - `/big?n=N`: streams N bytes (`a`…`z` repeated), 64 KiB at a time.
//! - `/trap`: panics before answering (a trap).
//! - `/status?code=N`: an empty response with that status.
//! - `/outbound[?to=HOST:PORT]`: tries an outbound request
//!   (`wasi:http/outgoing-handler`) to `http://HOST:PORT/` (default
//!   `127.0.0.1:9`) and answers `refused: …` or `reached: STATUS`.

use std::io::{Read, Write};
use wasi::http::types::{
    Fields, IncomingRequest, Method, OutgoingBody, OutgoingResponse, ResponseOutparam,
};

struct Handler;

impl wasi::exports::http::incoming_handler::Guest for Handler {
    fn handle(request: IncomingRequest, out: ResponseOutparam) {
        let path_with_query = request.path_with_query().unwrap_or_else(|| "/".into());
        let (path, query) = path_with_query
            .split_once('?')
            .unwrap_or((path_with_query.as_str(), ""));
        match path {
            "/trap" => {
                eprintln!("about to trap on purpose");
                panic!("trap requested by {path_with_query}");
            }
            "/echo" => echo(request, out),
            "/outbound" => outbound(text_param(query, "to").unwrap_or("127.0.0.1:9"), out),
            "/big" => big(param(query, "n").unwrap_or(0), out),
            "/status" => {
                let code = param(query, "code").unwrap_or(200) as u16;
                let resp = OutgoingResponse::new(Fields::new());
                let _ = resp.set_status_code(code);
                let body = resp.body().expect("response body");
                ResponseOutparam::set(out, Ok(resp));
                OutgoingBody::finish(body, None).expect("finish body");
            }
            _ => hello(&request, &path_with_query, out),
        }
    }
}

fn text_param<'a>(query: &'a str, name: &str) -> Option<&'a str> {
    query
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

fn param(query: &str, name: &str) -> Option<u64> {
    query
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == name)
        .and_then(|(_, v)| v.parse().ok())
}

fn method_name(m: &Method) -> String {
    match m {
        Method::Get => "GET".into(),
        Method::Head => "HEAD".into(),
        Method::Post => "POST".into(),
        Method::Put => "PUT".into(),
        Method::Delete => "DELETE".into(),
        Method::Connect => "CONNECT".into(),
        Method::Options => "OPTIONS".into(),
        Method::Trace => "TRACE".into(),
        Method::Patch => "PATCH".into(),
        Method::Other(s) => s.clone(),
    }
}

/// A JSON string literal.
fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn respond(out: ResponseOutparam, status: u16, content_type: &str) -> OutgoingBody {
    let headers = Fields::new();
    let _ = headers.set("content-type", &[content_type.as_bytes().to_vec()]);
    let resp = OutgoingResponse::new(headers);
    let _ = resp.set_status_code(status);
    let body = resp.body().expect("response body");
    ResponseOutparam::set(out, Ok(resp));
    body
}

fn hello(request: &IncomingRequest, path_with_query: &str, out: ResponseOutparam) {
    let method = method_name(&request.method());
    let header = |name: &str| {
        request
            .headers()
            .get(name)
            .first()
            .map(|v| quote(&String::from_utf8_lossy(v)))
            .unwrap_or_else(|| "null".to_string())
    };
    println!("{method} {path_with_query}");
    let text = format!(
        "{{\"hello\":\"from an Orb HTTP function\",\"method\":{},\"path\":{},\"x-echo\":{},\"authorization\":{}}}",
        quote(&method),
        quote(path_with_query),
        header("x-echo"),
        header("authorization"),
    );
    let body = respond(out, 200, "application/json");
    {
        let mut stream = body.write().expect("body stream");
        stream.write_all(text.as_bytes()).expect("write body");
        Write::flush(&mut stream).expect("flush body");
    }
    OutgoingBody::finish(body, None).expect("finish body");
}

/// Streams the request body back chunk by chunk, without holding it whole.
fn echo(request: IncomingRequest, out: ResponseOutparam) {
    let incoming = request.consume().expect("request body");
    let body = respond(out, 200, "application/octet-stream");
    let mut total: u64 = 0;
    {
        let mut input = incoming.stream().expect("request body stream");
        let mut output = body.write().expect("response body stream");
        let mut buf = vec![0u8; 64 << 10];
        loop {
            let n = match Read::read(&mut input, &mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) => {
                    // E.g. the node cut a body over its size cap.
                    eprintln!("request body failed after {total} bytes: {e}");
                    return;
                }
            };
            total += n as u64;
            if let Err(e) = output.write_all(&buf[..n]) {
                eprintln!("response body failed after {total} bytes: {e}");
                return;
            }
        }
        Write::flush(&mut output).expect("flush body");
    }
    println!("echoed {total} bytes");
    OutgoingBody::finish(body, None).expect("finish body");
}

fn outbound(to: &str, out: ResponseOutparam) {
    use wasi::http::outgoing_handler;
    use wasi::http::types::{OutgoingRequest, Scheme};
    let req = OutgoingRequest::new(Fields::new());
    let _ = req.set_scheme(Some(&Scheme::Http));
    let _ = req.set_authority(Some(to));
    let _ = req.set_path_with_query(Some("/"));
    let text = match outgoing_handler::handle(req, None) {
        Err(e) => format!("refused: {e:?}"),
        Ok(future) => {
            future.subscribe().block();
            match future.get() {
                Some(Ok(Ok(resp))) => format!("reached: {}", resp.status()),
                Some(Ok(Err(e))) => format!("refused: {e:?}"),
                other => format!("refused: {other:?}"),
            }
        }
    };
    let body = respond(out, 200, "text/plain");
    {
        let mut stream = body.write().expect("body stream");
        stream.write_all(text.as_bytes()).expect("write body");
        Write::flush(&mut stream).expect("flush body");
    }
    OutgoingBody::finish(body, None).expect("finish body");
}

fn big(n: u64, out: ResponseOutparam) {
    let body = respond(out, 200, "application/octet-stream");
    {
        let mut output = body.write().expect("response body stream");
        let chunk: Vec<u8> = (0..64 << 10).map(|i| b'a' + (i % 26) as u8).collect();
        let mut left = n;
        while left > 0 {
            let take = left.min(chunk.len() as u64) as usize;
            if let Err(e) = output.write_all(&chunk[..take]) {
                eprintln!("response body failed with {left} bytes left: {e}");
                return;
            }
            left -= take as u64;
        }
        Write::flush(&mut output).expect("flush body");
    }
    OutgoingBody::finish(body, None).expect("finish body");
}

wasi::http::proxy::export!(Handler);
