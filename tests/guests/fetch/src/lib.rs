//! Orb test guest: outbound HTTP through `wasi:http/outgoing-handler`.

wit_bindgen::generate!({
    path: [
        "../../../crates/orb-runtime/keyvalue-draft2-wit",
        "../../../examples/wit/deps/config",
        "wit",
    ],
    world: "orb:fetch/fetch",
    generate_all,
});

use ::wasi::http::outgoing_handler;
use ::wasi::http::types::{Fields, IncomingBody, Method, OutgoingBody, OutgoingRequest, Scheme};
use ::wasi::io::streams::StreamError;

struct Fetch;

/// A debug text without the type's name: `HttpRequestDenied`.
fn code(e: impl std::fmt::Debug) -> String {
    let text = format!("{e:?}");
    text.strip_prefix("ErrorCode::").unwrap_or(&text).to_string()
}

fn method_of(m: &str) -> Method {
    match m.to_ascii_uppercase().as_str() {
        "" | "GET" => Method::Get,
        "POST" => Method::Post,
        "PUT" => Method::Put,
        "DELETE" => Method::Delete,
        "HEAD" => Method::Head,
        "PATCH" => Method::Patch,
        other => Method::Other(other.to_string()),
    }
}

/// `scheme://authority/path?query` → parts.
fn split_url(url: &str) -> Result<(Scheme, String, String), String> {
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| format!("not an absolute URL: {url}"))?;
    let scheme = match scheme {
        "http" => Scheme::Http,
        "https" => Scheme::Https,
        other => Scheme::Other(other.to_string()),
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    Ok((scheme, authority.to_string(), path.to_string()))
}

fn do_fetch(
    url: &str,
    method: &str,
    headers: &[(String, String)],
    body: &str,
) -> Result<Fetched, String> {
    let (scheme, authority, path) = split_url(url)?;
    let fields = Fields::new();
    for (k, v) in headers {
        fields
            .append(k, v.as_bytes())
            .map_err(|e| format!("header {k}: {e:?}"))?;
    }
    let req = OutgoingRequest::new(fields);
    req.set_method(&method_of(method))
        .map_err(|_| "bad method".to_string())?;
    req.set_scheme(Some(&scheme))
        .map_err(|_| "bad scheme".to_string())?;
    req.set_authority(Some(&authority))
        .map_err(|_| "bad authority".to_string())?;
    req.set_path_with_query(Some(&path))
        .map_err(|_| "bad path".to_string())?;
    // What the guest can see of its own request, just before handing it over.
    let sent_headers = req
        .headers()
        .entries()
        .into_iter()
        .map(|(k, v)| (k, String::from_utf8_lossy(&v).into_owned()))
        .collect();
    let out_body = req.body().map_err(|_| "request body".to_string())?;
    if !body.is_empty() {
        let stream = out_body.write().map_err(|_| "body stream".to_string())?;
        for chunk in body.as_bytes().chunks(4096) {
            stream
                .blocking_write_and_flush(chunk)
                .map_err(|e| format!("writing the body: {e:?}"))?;
        }
    }
    let future = outgoing_handler::handle(req, None).map_err(code)?;
    OutgoingBody::finish(out_body, None).map_err(|e| format!("{e:?}"))?;
    let resp = loop {
        match future.get() {
            Some(r) => break r,
            None => future.subscribe().block(),
        }
    };
    let resp = resp
        .map_err(|_| "response taken twice".to_string())?
        .map_err(code)?;
    let status = resp.status();
    let incoming = resp.consume().map_err(|_| "response body".to_string())?;
    let mut bytes = Vec::new();
    {
        let stream = incoming.stream().map_err(|_| "body stream".to_string())?;
        loop {
            match stream.blocking_read(64 << 10) {
                Ok(chunk) => bytes.extend_from_slice(&chunk),
                Err(StreamError::Closed) => break,
                Err(StreamError::LastOperationFailed(e)) => {
                    let found = ::wasi::http::types::http_error_code(&e);
                    return Err(match found {
                        Some(c) => code(c),
                        None => e.to_debug_string().lines().next().unwrap_or("").to_string(),
                    });
                }
            }
        }
    }
    let trailers = IncomingBody::finish(incoming);
    trailers.subscribe().block();
    if let Some(Ok(Err(e))) = trailers.get() {
        return Err(code(e));
    }
    Ok(Fetched {
        status,
        body: String::from_utf8_lossy(&bytes).into_owned(),
        sent_headers,
    })
}

impl Guest for Fetch {
    fn fetch(
        url: String,
        method: String,
        headers: Vec<(String, String)>,
        body: String,
    ) -> Result<Fetched, String> {
        let r = do_fetch(&url, &method, &headers, &body);
        match &r {
            Ok(f) => println!("{url} -> {}", f.status),
            Err(e) => println!("{url} -> error {e}"),
        }
        r
    }

    fn fetch_many(urls: Vec<String>) -> Vec<String> {
        urls.iter()
            .map(|u| match do_fetch(u, "GET", &[], "") {
                Ok(f) => f.status.to_string(),
                Err(e) => format!("error: {e}"),
            })
            .collect()
    }

    fn count_fetch(url: String, key: String) -> Result<u32, String> {
        let bucket = crate::wasi::keyvalue::store::open("").map_err(|e| format!("open: {e:?}"))?;
        let n: u32 = bucket
            .get(&key)
            .map_err(|e| format!("get: {e:?}"))?
            .and_then(|v| String::from_utf8(v).ok())
            .and_then(|t| t.trim().parse().ok())
            .unwrap_or(0);
        do_fetch(&url, "GET", &[], "")?;
        bucket
            .set(&key, (n + 1).to_string().as_bytes())
            .map_err(|e| format!("set: {e:?}"))?;
        Ok(n + 1)
    }

    fn env_dump() -> Vec<(String, String)> {
        let mut out = Vec::new();
        match crate::wasi::config::store::get_all() {
            Ok(all) => out.extend(all.into_iter().map(|(k, v)| (format!("config:{k}"), v))),
            Err(e) => out.push(("config-error".into(), format!("{e:?}"))),
        }
        out.extend(std::env::vars().map(|(k, v)| (format!("env:{k}"), v)));
        out.extend(std::env::args().map(|a| ("arg".to_string(), a)));
        out
    }
}

export!(Fetch);
