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
mod console;
mod error;
mod functions;
mod http;
mod kappa;
mod namespaces;
mod network;
mod openapi;
mod outbound;
mod schedules;
mod triggers;

use crate::caller::{self, Request, Token};
use crate::{ApiError, Node};
use axum::body::Body;
use axum::extract::{FromRequestParts, State};
use axum::http::{HeaderMap, header, request::Parts};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use axum::{Json, Router};
use orb_core::{ErrorCode, OrbError};
use serde_json::{Value, json};
use std::sync::Arc;
use tower_http::cors::CorsLayer;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

type S = State<Arc<Node>>;

/// The browser client (an ES module, no build step).
static BROWSER_SDK: &str = include_str!("../../static/orb.js");

/// The API's routes, each from a handler's `#[utoipa::path]` (its path,
/// methods and operation): the router and the OpenAPI document are built
/// from the same list (`openapi.rs`), so they cannot drift.
fn api_router() -> OpenApiRouter<Arc<Node>> {
    OpenApiRouter::new()
        .routes(routes!(healthz))
        .routes(routes!(metrics))
        .routes(routes!(openapi))
        .routes(routes!(browser_sdk))
        .routes(routes!(console::redirect))
        .routes(routes!(console::index))
        .routes(routes!(console::asset))
        .routes(routes!(functions::upload, functions::list_functions))
        .routes(routes!(
            functions::show_function,
            functions::delete_function
        ))
        .routes(routes!(functions::call_post, functions::call_get))
        .routes(routes!(functions::invoke_handler))
        .routes(routes!(activations::list_activations))
        .routes(routes!(activations::activation_stats))
        .routes(routes!(activations::show_activation))
        .routes(routes!(activations::list_dead_letters))
        .routes(routes!(activations::delete_dead_letter))
        .routes(routes!(aliases::list_aliases))
        .routes(routes!(
            aliases::show_alias,
            aliases::put_alias,
            aliases::delete_alias
        ))
        .routes(routes!(aliases::rollback_alias))
        .routes(routes!(schedules::post_schedule, schedules::list_schedules))
        .routes(routes!(
            schedules::show_schedule,
            schedules::delete_schedule
        ))
        .routes(routes!(accounts::post_account))
        .routes(routes!(accounts::post_token))
        .routes(routes!(accounts::post_revoke))
        .routes(routes!(accounts::post_rotate))
        .routes(routes!(accounts::get_whitelist, accounts::put_whitelist))
        .routes(routes!(accounts::public_key))
        .routes(routes!(namespaces::list_namespaces))
        .routes(routes!(namespaces::list_keys))
        .routes(routes!(namespaces::export_ns))
        .routes(routes!(namespaces::watch_ns))
        .routes(routes!(namespaces::import_ns))
        .routes(routes!(
            namespaces::get_key,
            namespaces::put_key,
            namespaces::delete_key
        ))
        .merge(triggers::routes())
        .merge(kappa::routes())
        .merge(outbound::routes())
        .routes(routes!(network::list_nodes))
        .routes(routes!(network::show_function))
}

pub fn router(node: Arc<Node>) -> Router {
    let (api, _) = api_router().split_for_parts();
    api.route("/http/{*target_and_path}", any(http::handle))
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

/// Liveness: the node answers.
#[utoipa::path(get, path = "/healthz", tag = "node", security(()),
    responses((status = 200, description = "The node is up", body = openapi::Health,
        example = json!({"status": "ok", "version": "0.1.0"}))))]
async fn healthz() -> Json<Value> {
    Json(json!({ "status": "ok", "version": env!("CARGO_PKG_VERSION") }))
}

/// Prometheus metrics.
///
/// A token that may read metrics (`metrics.read`), unless the node runs with
/// `open_health = true`.
#[utoipa::path(get, path = "/metrics", tag = "node", security((), ("bearer" = [])),
    responses((status = 200, description = "The Prometheus text exposition",
        content_type = "text/plain; version=0.0.4", body = String)))]
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

/// The browser client: an ES module (`import { Orb } from "/sdk/orb.js"`).
#[utoipa::path(get, path = "/sdk/orb.js", tag = "node", security(()),
    responses((status = 200, description = "JavaScript", content_type = "text/javascript; charset=utf-8", body = String)))]
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

/// This document (OpenAPI 3.1), generated from the code.
#[utoipa::path(get, path = "/v1/openapi.json", tag = "node", security(()),
    responses((status = 200, description = "OpenAPI 3.1", body = Object)))]
async fn openapi() -> Response {
    (
        [(header::CONTENT_TYPE, "application/json")],
        openapi::document(),
    )
        .into_response()
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

/// A JSON object body (an empty body is `{}`) as `T`. Bodies that are
/// records are objects: an array is refused even where serde would fill a
/// struct from it.
pub(super) fn json_body<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let value: Value = json_any(bytes)?;
    if !value.is_object() {
        return Err(ApiError::new(
            ErrorCode::InvalidRequest,
            "the body must be a JSON object",
        ));
    }
    let bad = |e: serde_json::Error| {
        ApiError::new(
            ErrorCode::InvalidRequest,
            format!("the body is not valid JSON for this route: {e}"),
        )
    };
    match <T as serde::Deserialize>::deserialize(&value) {
        Ok(v) => Ok(v),
        // `588.0` where an integer goes: JSON Schema counts it as the
        // integer 588 (and generated clients may write it so); read it as
        // such. Numbers are JSON numbers either way, so the body means
        // the same.
        Err(e) if e.to_string().contains("floating point") => {
            let mut value = value;
            integral_floats_as_integers(&mut value);
            <T as serde::Deserialize>::deserialize(&value).map_err(bad)
        }
        Err(e) => Err(bad(e)),
    }
}

/// Every float with no fraction (within ±2^53) becomes the same integer.
fn integral_floats_as_integers(v: &mut Value) {
    match v {
        Value::Number(n) if !n.is_i64() && !n.is_u64() => {
            if let Some(f) = n.as_f64()
                && f.fract() == 0.0
                && f.abs() <= 9_007_199_254_740_992.0
            {
                *v = if f >= 0.0 {
                    Value::from(f as u64)
                } else {
                    Value::from(f as i64)
                };
            }
        }
        Value::Array(items) => items.iter_mut().for_each(integral_floats_as_integers),
        Value::Object(fields) => fields.values_mut().for_each(integral_floats_as_integers),
        _ => {}
    }
}

/// Any JSON body (an empty body is `{}`) as `T`.
pub(super) fn json_any<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
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
