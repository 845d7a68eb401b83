//! The HTTP layer: axum routes, request parsing, the caller's token
//! ([`Token`] from `Authorization`), authorization into a verified caller
//! where the route alone decides it, and the mapping of errors to responses
//! (`error.rs`). Every error is `{"error": {"code", "message", "details"}}`.
//!
//! Handlers call the services (`crate::services`), never the other way
//! round; see `crate::services` for the layering rule.

mod accounts;
mod activations;
mod aliases;
mod error;
mod functions;
mod http;
mod kappa;
mod namespaces;
mod network;
mod outbound;
mod schedules;
mod triggers;

use crate::caller::{self, Request, Token};
use crate::{ApiError, Node};
use axum::body::Body;
use axum::extract::{FromRequestParts, State};
use axum::http::{HeaderMap, header, request::Parts};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use axum::{Json, Router};
use orb_core::{ErrorCode, OrbError};
use serde_json::{Value, json};
use std::sync::Arc;
use tower_http::cors::CorsLayer;

type S = State<Arc<Node>>;

static OPENAPI: &str = include_str!("../openapi.json");
/// The browser client (an ES module, no build step).
static BROWSER_SDK: &str = include_str!("../../static/orb.js");

pub fn router(node: Arc<Node>) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .route("/v1/openapi.json", get(openapi))
        .route("/sdk/orb.js", get(browser_sdk))
        .route(
            "/v1/functions",
            post(functions::upload).get(functions::list_functions),
        )
        .route(
            "/v1/functions/{target}",
            get(functions::show_function).delete(functions::delete_function),
        )
        .route(
            "/v1/functions/{target}/{export}",
            post(functions::call_post).get(functions::call_get),
        )
        .route("/v1/invoke", post(functions::invoke_handler))
        .route("/v1/activations", get(activations::list_activations))
        .route("/v1/activations/{id}", get(activations::show_activation))
        .route("/v1/dead-letters", get(activations::list_dead_letters))
        .route(
            "/v1/dead-letters/{id}",
            axum::routing::delete(activations::delete_dead_letter),
        )
        .route("/v1/aliases", get(aliases::list_aliases))
        .route(
            "/v1/aliases/{name}",
            get(aliases::show_alias)
                .put(aliases::put_alias)
                .delete(aliases::delete_alias),
        )
        .route("/v1/aliases/{name}/rollback", post(aliases::rollback_alias))
        .route(
            "/v1/schedules",
            post(schedules::post_schedule).get(schedules::list_schedules),
        )
        .route(
            "/v1/schedules/{id}",
            get(schedules::show_schedule).delete(schedules::delete_schedule),
        )
        .route("/v1/accounts", post(accounts::post_account))
        .route("/v1/tokens", post(accounts::post_token))
        .route("/v1/tokens/revoke", post(accounts::post_revoke))
        .route("/v1/tokens/rotate", post(accounts::post_rotate))
        .route(
            "/v1/namespaces/{ns}/whitelist",
            get(accounts::get_whitelist).put(accounts::put_whitelist),
        )
        .route("/v1/auth/public-key", get(accounts::public_key))
        .route("/v1/namespaces", get(namespaces::list_namespaces))
        .route("/v1/namespaces/{ns}/keys", get(namespaces::list_keys))
        .route("/v1/namespaces/{ns}/export", get(namespaces::export_ns))
        .route("/v1/namespaces/{ns}/watch", get(namespaces::watch_ns))
        .route("/v1/namespaces/{ns}/import", post(namespaces::import_ns))
        .route(
            "/v1/namespaces/{ns}/keys/{*key}",
            get(namespaces::get_key)
                .put(namespaces::put_key)
                .delete(namespaces::delete_key),
        )
        .merge(triggers::routes())
        .merge(kappa::routes())
        .merge(outbound::routes())
        .route("/v1/network/nodes", get(network::list_nodes))
        .route("/v1/network/functions/{id}", get(network::show_function))
        .route("/http/{*target_and_path}", any(http::handle))
        .fallback(fallback)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(CorsLayer::permissive())
        .layer(tower_http::trace::TraceLayer::new_for_http())
        .with_state(node)
}

async fn fallback() -> ApiError {
    ApiError::new(
        ErrorCode::NotFound,
        "no such route; see GET /v1/openapi.json",
    )
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        ErrorCode::MethodNotAllowed,
        "this method is not allowed on this route; see GET /v1/openapi.json",
    )
}

async fn healthz() -> Json<Value> {
    Json(json!({ "status": "ok", "version": env!("CARGO_PKG_VERSION") }))
}

async fn metrics(State(node): S, token: Token) -> Response {
    if !node.config.open_health
        && let Err(e) = caller::authorize(
            &node,
            &token,
            Request {
                operation: "metrics.read",
                ..Default::default()
            },
        )
        .await
    {
        return e.into_response();
    }
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        node.metrics.render(),
    )
        .into_response()
}

async fn browser_sdk() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        BROWSER_SDK,
    )
        .into_response()
}

async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI).into_response()
}

/// Reads a body up to `limit` bytes; larger → 413 `too_large`. A too-large
/// body is still drained (up to a cap) so the client reads the 413 instead of
/// a reset connection.
pub(super) async fn read_body(mut body: Body, limit: u64) -> Result<bytes::Bytes, ApiError> {
    use http_body_util::BodyExt as _;
    const DRAIN_CAP: u64 = 256 << 20;
    let mut buf = bytes::BytesMut::new();
    let mut seen: u64 = 0;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| {
            ApiError::new(
                ErrorCode::InvalidRequest,
                format!("could not read the body: {e}"),
            )
        })?;
        if let Ok(data) = frame.into_data() {
            seen += data.len() as u64;
            if seen <= limit {
                buf.extend_from_slice(&data);
            } else if seen > limit.saturating_add(DRAIN_CAP) {
                break;
            }
        }
    }
    if seen > limit {
        return Err(ApiError(
            OrbError::new(
                ErrorCode::TooLarge,
                format!("the body is {seen} bytes; this endpoint takes at most {limit} bytes (see the limits in orb.toml)"),
            )
            .with_details(json!({ "limit": limit })),
        ));
    }
    Ok(buf.freeze())
}

/// Reads and drops a refused request's body (up to the drain cap), so the
/// client reads the error instead of a broken connection.
pub(super) async fn drain(body: Body) {
    let _ = read_body(body, 0).await;
}

pub(super) fn json_body<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    if bytes.is_empty() {
        return serde_json::from_slice(b"{}").map_err(|e| {
            ApiError::new(
                ErrorCode::InvalidRequest,
                format!("the body must be JSON: {e}"),
            )
        });
    }
    serde_json::from_slice(bytes).map_err(|e| {
        ApiError::new(
            ErrorCode::InvalidRequest,
            format!("the body is not valid JSON for this route: {e}"),
        )
    })
}

/// The credentials of a request: its `Authorization: Bearer …` token.
fn token(headers: &HeaderMap) -> Token {
    let value = headers.get(header::AUTHORIZATION);
    let bearer = value
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .and_then(|(scheme, token)| {
            scheme
                .eq_ignore_ascii_case("bearer")
                .then(|| token.trim().to_string())
        });
    Token::new(bearer, value.is_some())
}

impl<St: Send + Sync> FromRequestParts<St> for Token {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &St) -> Result<Self, Self::Rejection> {
        Ok(token(&parts.headers))
    }
}
