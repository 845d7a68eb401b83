//! `/v1/namespaces…`: the caller is authorized for the namespace here, the
//! service does the rest.

use super::{S, json_body, read_body};
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

pub(super) async fn list_namespaces(State(node): S, token: Token) -> Result<Json<Value>, ApiError> {
    let claims = caller::authorize(&node, &token, Request::op(OP_READ)).await?;
    Ok(Json(namespaces::list_namespaces(&node, &claims).await?))
}

pub(super) async fn list_keys(
    State(node): S,
    token: Token,
    Path(ns): Path<String>,
    Query(q): Query<BTreeMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let claims = caller(&node, &token, &ns, false).await?;
    Ok(Json(namespaces::list_keys(&node, &claims, &ns, &q).await?))
}

pub(super) async fn get_key(
    State(node): S,
    headers: HeaderMap,
    token: Token,
    Path((ns, key)): Path<(String, String)>,
) -> Result<Response, ApiError> {
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

pub(super) async fn put_key(
    State(node): S,
    headers: HeaderMap,
    token: Token,
    Path((ns, key)): Path<(String, String)>,
    body: Body,
) -> Result<Json<Value>, ApiError> {
    let bytes = read_body(body, node.config.max_value_bytes as u64).await?;
    namespaces::check_key(&key)?;
    let claims = caller(&node, &token, &ns, true).await?;
    let raw = sends_octets(&headers);
    Ok(Json(
        namespaces::put_key(&node, &claims, &ns, &key, &bytes, raw).await?,
    ))
}

pub(super) async fn delete_key(
    State(node): S,
    token: Token,
    Path((ns, key)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    namespaces::check_key(&key)?;
    let claims = caller(&node, &token, &ns, true).await?;
    namespaces::delete_key(&node, &claims, &ns, &key).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub(super) async fn export_ns(
    State(node): S,
    token: Token,
    Path(ns): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let claims = caller(&node, &token, &ns, false).await?;
    Ok(Json(namespaces::export(&node, &claims, &ns).await?))
}

pub(super) async fn import_ns(
    State(node): S,
    token: Token,
    Path(ns): Path<String>,
    body: Body,
) -> Result<Json<Value>, ApiError> {
    let bytes = read_body(body, 256 << 20).await?;
    let v: Value = json_body(&bytes)?;
    let claims = caller(&node, &token, &ns, true).await?;
    Ok(Json(namespaces::import(&node, &claims, &ns, v).await?))
}

/// `GET /v1/namespaces/{ns}/watch?prefix=`: Server-Sent Events, one per
/// committed change (`event: set` / `event: delete`, data `{"namespace","key","value"}`).
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
