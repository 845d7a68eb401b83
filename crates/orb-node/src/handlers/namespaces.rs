//! `/v1/namespaces…`: the caller is authorized for the namespace here, the
//! service does the rest.

use super::{S, json_any, read_body};
use crate::caller::{self, Claims, Request, Token};
use crate::services::namespaces::{self, OP_READ, OP_WRITE, Watched};
use crate::{ApiError, Node};
use axum::Json;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use std::collections::BTreeMap;

/// The caller's claims for reading or writing namespace `ns`: a valid name,
/// a token for the operation, and for a public token the grant's mode.
async fn caller(node: &Node, token: &Token, ns: &str, write: bool) -> Result<Claims, ApiError> {
    caller::authenticate(node, token)?;
    caller::check_namespace_name(ns)?;
    let claims = caller::authorize(
        node,
        token,
        Request {
            operation: if write { OP_WRITE } else { OP_READ },
            namespace: Some(ns),
            ..Default::default()
        },
    )
    .await?;
    if let Some(g) = &claims.grant {
        let access = g.namespaces.get(ns).ok_or_else(|| {
            caller::denied(format!("this token has no access to namespace `{ns}`"))
        })?;
        if write && !access.can_write() {
            return Err(caller::denied(format!(
                "this token may only read namespace `{ns}`"
            )));
        }
        if !write && !access.can_read() {
            return Err(caller::denied(format!(
                "this token may only write namespace `{ns}`"
            )));
        }
    }
    Ok(claims)
}

/// The account's namespaces (a public token: those of its grant).
#[utoipa::path(get, path = "/v1/namespaces", tag = "namespaces",
    responses((status = 200, description = "The namespaces", body = super::openapi::NamespaceList)))]
pub(super) async fn list_namespaces(State(node): S, token: Token) -> Result<Json<Value>, ApiError> {
    let claims = caller::authorize(&node, &token, Request::op(OP_READ)).await?;
    Ok(Json(namespaces::list_namespaces(&node, &claims).await?))
}

/// Keys in order, a page at a time.
#[utoipa::path(get, path = "/v1/namespaces/{ns}/keys", tag = "namespaces",
    params(("ns" = String, Path, description = "Namespace: 1–64 of `[a-z0-9._-]`, starting with a letter or digit", pattern = r"^[a-z0-9][a-z0-9._-]{0,63}$", example = "home"),
        ("prefix" = Option<String>, Query, description = "Only keys starting with this"),
        ("after" = Option<String>, Query, description = "Only keys after this one (the previous page's `next`)"),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 1000, description = "At most this many (1–1000, default 100)"),
    ),
    responses(
        (status = 200, description = "A page of keys", body = super::openapi::KeyPage),
        (status = 400, description = "invalid_request, invalid_name"),
    ))]
pub(super) async fn list_keys(
    State(node): S,
    token: Token,
    Path(ns): Path<String>,
    Query(q): Query<BTreeMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let claims = caller(&node, &token, &ns, false).await?;
    Ok(Json(namespaces::list_keys(&node, &claims, &ns, &q).await?))
}

/// A key's value.
///
/// JSON text is served as `application/json`, other bytes (or with
/// `Accept: application/octet-stream`) raw; `ETag` is the revision.
#[utoipa::path(get, path = "/v1/namespaces/{ns}/keys/{*key}", tag = "namespaces",
    params(("ns" = String, Path, description = "Namespace: 1–64 of `[a-z0-9._-]`, starting with a letter or digit", pattern = r"^[a-z0-9][a-z0-9._-]{0,63}$", example = "home"), ("key" = String, Path, description = "The key: 1 byte to 1 KiB (UTF-8), no NUL; it may contain `/`", min_length = 1, max_length = 1024, pattern = r"^[^\x00]+$", example = "config/theme")),
    responses(
        (status = 200, description = "The value", content(
            (super::openapi::AnyJson = "application/json"),
            (super::openapi::Component = "application/octet-stream"),
        ), headers(("ETag" = String, description = "The key's revision, quoted"))),
        (status = 400, description = "invalid_key, invalid_name"),
        (status = 404, description = "key_not_found"),
    ))]
pub(super) async fn get_key(
    State(node): S,
    headers: HeaderMap,
    token: Token,
    Path((ns, key)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    caller::authenticate(&node, &token)?;
    namespaces::check_key(&key)?;
    let claims = caller(&node, &token, &ns, false).await?;
    let entry = namespaces::get_key(&node, &claims, &ns, &key).await?;
    // JSON text is served as JSON unless the caller asks for the raw bytes;
    // other bytes are always served raw, labelled as such.
    let is_json = serde_json::from_slice::<serde::de::IgnoredAny>(&entry.value).is_ok();
    let content_type = if is_json && !wants_octets(&headers) {
        "application/json"
    } else {
        "application/octet-stream"
    };
    let mut resp = (
        StatusCode::OK,
        [(header::CONTENT_TYPE, content_type)],
        entry.value,
    )
        .into_response();
    resp.headers_mut().insert(
        header::ETAG,
        HeaderValue::from_str(&format!("\"{}\"", entry.revision)).expect("digits"),
    );
    Ok(resp)
}

/// Whether the caller prefers raw bytes (`Accept: application/octet-stream`
/// without `application/json` before it).
fn wants_octets(headers: &HeaderMap) -> bool {
    let accept = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect::<Vec<_>>()
        .join(",");
    let pos = |t: &str| accept.find(t);
    match (pos("application/octet-stream"), pos("application/json")) {
        (Some(o), Some(j)) => o < j,
        (Some(_), None) => true,
        _ => false,
    }
}

/// Whether a request body is raw bytes (`Content-Type: application/octet-stream`).
fn sends_octets(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.trim().starts_with("application/octet-stream"))
}

/// Write a key: a JSON body, or raw bytes with
/// `Content-Type: application/octet-stream` (durable when answered).
#[utoipa::path(put, path = "/v1/namespaces/{ns}/keys/{*key}", tag = "namespaces",
    params(("ns" = String, Path, description = "Namespace: 1–64 of `[a-z0-9._-]`, starting with a letter or digit", pattern = r"^[a-z0-9][a-z0-9._-]{0,63}$", example = "home"), ("key" = String, Path, description = "The key: 1 byte to 1 KiB (UTF-8), no NUL; it may contain `/`", min_length = 1, max_length = 1024, pattern = r"^[^\x00]+$", example = "config/theme")),
    request_body(content(
        (super::openapi::AnyJson = "application/json"),
        (super::openapi::Component = "application/octet-stream"),
    ), description = "The value"),
    responses(
        (status = 200, description = "Written", body = super::openapi::Written),
        (status = 400, description = "invalid_key, invalid_value, invalid_name"),
        (status = 403, description = "permission_denied, quota_exceeded"),
    ))]
pub(super) async fn put_key(
    State(node): S,
    headers: HeaderMap,
    token: Token,
    Path((ns, key)): Path<(String, String)>,
    body: Body,
) -> Result<Json<Value>, ApiError> {
    if let Err(e) = caller::authenticate(&node, &token) {
        super::drain(body).await;
        return Err(e);
    }
    let bytes = read_body(body, node.config.max_value_bytes as u64).await?;
    namespaces::check_key(&key)?;
    let claims = caller(&node, &token, &ns, true).await?;
    let raw = sends_octets(&headers);
    Ok(Json(
        namespaces::put_key(&node, &claims, &ns, &key, &bytes, raw).await?,
    ))
}

/// Delete a key.
#[utoipa::path(delete, path = "/v1/namespaces/{ns}/keys/{*key}", tag = "namespaces",
    params(("ns" = String, Path, description = "Namespace: 1–64 of `[a-z0-9._-]`, starting with a letter or digit", pattern = r"^[a-z0-9][a-z0-9._-]{0,63}$", example = "home"), ("key" = String, Path, description = "The key: 1 byte to 1 KiB (UTF-8), no NUL; it may contain `/`", min_length = 1, max_length = 1024, pattern = r"^[^\x00]+$", example = "config/theme")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 400, description = "invalid_key, invalid_name"),
        (status = 404, description = "key_not_found"),
    ))]
pub(super) async fn delete_key(
    State(node): S,
    token: Token,
    Path((ns, key)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    caller::authenticate(&node, &token)?;
    namespaces::check_key(&key)?;
    let claims = caller(&node, &token, &ns, true).await?;
    namespaces::delete_key(&node, &claims, &ns, &key).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A namespace as one document: `{namespace, keys: {key: value}, bytes?}`.
#[utoipa::path(get, path = "/v1/namespaces/{ns}/export", tag = "namespaces", operation_id = "export_namespace",
    params(("ns" = String, Path, description = "Namespace: 1–64 of `[a-z0-9._-]`, starting with a letter or digit", pattern = r"^[a-z0-9][a-z0-9._-]{0,63}$", example = "home")),
    responses(
        (status = 200, description = "The export", body = super::openapi::Export),
        (status = 400, description = "invalid_name"),
    ))]
pub(super) async fn export_ns(
    State(node): S,
    token: Token,
    Path(ns): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let claims = caller(&node, &token, &ns, false).await?;
    Ok(Json(namespaces::export(&node, &claims, &ns).await?))
}

/// Write an export (or a bare object of JSON values) in one atomic,
/// durable commit; other keys are kept.
#[utoipa::path(post, path = "/v1/namespaces/{ns}/import", tag = "namespaces", operation_id = "import_namespace",
    params(("ns" = String, Path, description = "Namespace: 1–64 of `[a-z0-9._-]`, starting with a letter or digit", pattern = r"^[a-z0-9][a-z0-9._-]{0,63}$", example = "home")),
    request_body(content = Option<super::openapi::ImportIn>, description = "An export (`{\"keys\": {…}, \"bytes\": {…}}`) or an object of JSON values", example = json!({"keys": {"theme": "dark"}})),
    responses(
        (status = 200, description = "Imported", body = super::openapi::Imported),
        (status = 400, description = "invalid_request, invalid_key, invalid_value, invalid_name"),
        (status = 403, description = "permission_denied, quota_exceeded"),
    ))]
pub(super) async fn import_ns(
    State(node): S,
    token: Token,
    Path(ns): Path<String>,
    body: Body,
) -> Result<Json<Value>, ApiError> {
    if let Err(e) = caller::authenticate(&node, &token) {
        super::drain(body).await;
        return Err(e);
    }
    let bytes = read_body(body, 256 << 20).await?;
    let v: Value = json_any(&bytes)?;
    let claims = caller(&node, &token, &ns, true).await?;
    Ok(Json(namespaces::import(&node, &claims, &ns, v).await?))
}

/// `GET /v1/namespaces/{ns}/watch?prefix=`: Server-Sent Events, one per
/// committed change (`event: set` / `event: delete`, data `{"namespace","key","value"}`).
/// Server-Sent Events of committed changes: `event: set` / `event: delete`
/// with data `{"namespace","key","value"}`, `event: lagged` when some were missed.
#[utoipa::path(get, path = "/v1/namespaces/{ns}/watch", tag = "namespaces", operation_id = "watch_namespace",
    params(("ns" = String, Path, description = "Namespace: 1–64 of `[a-z0-9._-]`, starting with a letter or digit", pattern = r"^[a-z0-9][a-z0-9._-]{0,63}$", example = "home"),
        ("prefix" = Option<String>, Query, description = "Only keys starting with this"),
    ),
    responses(
        (status = 200, description = "An event stream", content_type = "text/event-stream", body = super::openapi::WatchEvent),
        (status = 400, description = "invalid_name"),
    ))]
pub(super) async fn watch_ns(
    State(node): S,
    token: Token,
    Path(ns): Path<String>,
    Query(q): Query<BTreeMap<String, String>>,
) -> Result<Response, ApiError> {
    use axum::response::sse::{Event, KeepAlive, Sse};
    let prefix = q.get("prefix").cloned().unwrap_or_default();
    let claims = caller(&node, &token, &ns, false).await?;
    let stream = namespaces::watch(&node, claims, &ns, prefix);
    let events = futures_util::StreamExt::map(stream, |w| {
        Ok::<_, std::convert::Infallible>(match w {
            Watched::Change(c) => {
                let kind = if c.deleted { "delete" } else { "set" };
                Event::default()
                    .event(kind)
                    .json_data(&*c)
                    .unwrap_or_else(|_| Event::default())
            }
            Watched::Lagged(n) => Event::default()
                .event("lagged")
                .data(format!("{{\"missed\":{n}}}")),
        })
    });
    Ok(Sse::new(events)
        .keep_alive(KeepAlive::default())
        .into_response())
}
