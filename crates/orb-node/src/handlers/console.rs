//! `/console`: the web console, a single-page app whose files
//! (`crates/orb-node/console/`: HTML, CSS, JavaScript modules written by
//! hand, no build step) are embedded in the binary. It holds no rights of
//! its own: everything it shows or does goes through the public `/v1` API
//! with the token the user signs in with. Served with a strict
//! Content-Security-Policy (no inline script or style, connections only to
//! this node), an ETag per file and `no-cache` (revalidate, then 304).

use crate::ApiError;
use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use orb_core::ErrorCode;
use sha2::{Digest, Sha256};
use std::sync::OnceLock;

/// An embedded file.
struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static [u8],
}

macro_rules! asset {
    ($name:literal, $type:expr) => {
        Asset {
            name: $name,
            content_type: $type,
            body: include_bytes!(concat!("../../console/", $name)),
        }
    };
}

const JS: &str = "text/javascript; charset=utf-8";

static ASSETS: &[Asset] = &[
    asset!("index.html", "text/html; charset=utf-8"),
    asset!("console.css", "text/css; charset=utf-8"),
    asset!("app.js", JS),
    asset!("api.js", JS),
    asset!("ui.js", JS),
    asset!("form.js", JS),
    asset!("functions.js", JS),
    asset!("usage.js", JS),
    asset!("activations.js", JS),
    asset!("namespaces.js", JS),
    asset!("aliases.js", JS),
    asset!("events.js", JS),
    asset!("tokens.js", JS),
];

/// Scripts and styles only from the node's own files, requests only to
/// the node; nothing may frame the console or take its forms elsewhere.
pub(super) const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// Each asset's ETag (a quoted prefix of the SHA-256 of its bytes), in
/// the order of [`ASSETS`].
fn etags() -> &'static [String] {
    static TAGS: OnceLock<Vec<String>> = OnceLock::new();
    TAGS.get_or_init(|| {
        ASSETS
            .iter()
            .map(|a| format!("\"{}\"", &hex::encode(Sha256::digest(a.body))[..32]))
            .collect()
    })
}

/// Whether `If-None-Match` names `etag` (or `*`).
fn matches(headers: &HeaderMap, etag: &str) -> bool {
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().trim_start_matches("W/"))
        .any(|t| t == etag || t == "*")
}

fn serve(headers: &HeaderMap, name: &str) -> Result<Response, ApiError> {
    let Some(i) = ASSETS.iter().position(|a| a.name == name) else {
        return Err(ApiError::new(
            ErrorCode::NotFound,
            format!("the console has no file `{name}`; open /console/"),
        ));
    };
    let asset = &ASSETS[i];
    let etag = &etags()[i];
    let common = [
        (header::ETAG, HeaderValue::from_str(etag).expect("hex")),
        (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        (
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CSP),
        ),
        (
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ),
        (
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ),
        (header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")),
    ];
    if matches(headers, etag) {
        return Ok((StatusCode::NOT_MODIFIED, common).into_response());
    }
    Ok((
        common,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static(asset.content_type),
        )],
        asset.body,
    )
        .into_response())
}

/// The console's address without its slash: redirects to `/console/`.
#[utoipa::path(get, path = "/console", tag = "console", operation_id = "console_redirect", security(()),
    responses((status = 308, description = "To `/console/`")))]
pub(super) async fn redirect() -> Response {
    (
        StatusCode::PERMANENT_REDIRECT,
        [(header::LOCATION, "/console/")],
    )
        .into_response()
}

/// The web console (a single-page app; it signs in with a token and uses
/// this API). Deep links use the fragment: `/console/#fn=sha256:…`.
#[utoipa::path(get, path = "/console/", tag = "console", operation_id = "console_index", security(()),
    responses(
        (status = 200, description = "The console's page", content_type = "text/html; charset=utf-8", body = String),
        (status = 304, description = "Not modified (`If-None-Match`)"),
    ))]
pub(super) async fn index(headers: HeaderMap) -> Result<Response, ApiError> {
    serve(&headers, "index.html")
}

/// A file of the web console: its scripts (ES modules) and style sheet.
#[utoipa::path(get, path = "/console/{file}", tag = "console", operation_id = "console_asset", security(()),
    params(("file" = String, Path, description = "A file of the console", example = "app.js")),
    responses(
        (status = 200, description = "The file", content(
            (String = "text/javascript; charset=utf-8"),
            (String = "text/css; charset=utf-8"),
            (String = "text/html; charset=utf-8"),
        )),
        (status = 304, description = "Not modified (`If-None-Match`)"),
        (status = 404, description = "not_found"),
    ))]
pub(super) async fn asset(
    headers: HeaderMap,
    Path(file): Path<String>,
) -> Result<Response, ApiError> {
    serve(&headers, &file)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_console_file_is_served_and_every_served_file_exists() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("console");
        let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        on_disk.sort();
        let mut served: Vec<String> = ASSETS.iter().map(|a| a.name.to_string()).collect();
        served.sort();
        assert_eq!(served, on_disk, "list each file of console/ in ASSETS");
        for a in ASSETS {
            let want = if a.name.ends_with(".js") {
                JS
            } else if a.name.ends_with(".css") {
                "text/css; charset=utf-8"
            } else {
                "text/html; charset=utf-8"
            };
            assert_eq!(a.content_type, want, "{}", a.name);
        }
    }

    #[test]
    fn the_page_has_no_inline_script_or_style() {
        let html = std::str::from_utf8(ASSETS[0].body).unwrap();
        assert_eq!(ASSETS[0].name, "index.html");
        for bad in ["<style", " style=", "onclick=", "onload=", "javascript:"] {
            assert!(!html.contains(bad), "index.html has `{bad}`");
        }
        // Every <script> has a src (no inline code under the CSP).
        for tag in html.split("<script").skip(1) {
            let head = tag.split('>').next().unwrap();
            assert!(head.contains("src="), "inline <script{head}>");
        }
    }

    #[test]
    fn an_etag_that_matches_answers_304() {
        let etag = etags()[0].clone();
        let mut h = HeaderMap::new();
        assert_eq!(serve(&h, "index.html").unwrap().status(), 200);
        h.insert(
            header::IF_NONE_MATCH,
            HeaderValue::from_str(&format!("\"other\", W/{etag}")).unwrap(),
        );
        let r = serve(&h, "index.html").unwrap();
        assert_eq!(r.status(), 304);
        assert_eq!(r.headers()[header::ETAG], etag.as_str());
        assert!(serve(&h, "nope.js").is_err());
    }
}
