//! `/v1/activations…` and `/v1/dead-letters…`.

use super::S;
use crate::ApiError;
use crate::caller::{self, Request, Token, op};
use crate::services::{activations, functions, queue, stats};
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use orb_core::{ErrorCode, FunctionId};
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// List activations, newest first.
#[utoipa::path(get, path = "/v1/activations", tag = "activations",
    params(
        ("function" = Option<String>, Query, description = "Only this function's (`sha256:<hex>`)", pattern = r"^sha256:[0-9a-f]{64}$"),
        ("before" = Option<String>, Query, description = "Only those older than this activation id (the next page)"),
        ("limit" = Option<u32>, Query, minimum = 1, maximum = 1000, description = "At most this many (default 50)"),
    ),
    responses(
        (status = 200, description = "The activations", body = super::openapi::ActivationList),
        (status = 400, description = "invalid_request, invalid_function_id"),
        (status = 404, description = "function_not_found: `function` is not a hash"),
    ))]
pub(super) async fn list_activations(
    State(node): S,
    token: Token,
    Query(q): Query<BTreeMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let claims = caller::authorize(&node, &token, Request::op(op::ACTIVATIONS_READ)).await?;
    let limit = match q.get("limit") {
        Some(l) => l
            .parse::<usize>()
            .ok()
            .filter(|l| (1..=1000).contains(l))
            .ok_or_else(|| {
                ApiError::new(
                    ErrorCode::InvalidRequest,
                    format!("`limit` must be an integer from 1 to 1000, got `{l}`"),
                )
            })?,
        None => 50,
    };
    let function = function_of(&q)?;
    let before = q.get("before").cloned();
    let acts = activations::list(&node, &claims, function, before, limit).await?;
    Ok(Json(json!({ "activations": acts })))
}

/// Usage statistics: calls, errors, p50/p99 duration and fuel over a
/// window, in buckets.
///
/// Computed from the activations the node keeps (`max_activations`, the
/// newest 20,000 at most are read: `complete` says whether the whole
/// window was), as the caller may list them: an account's own, a public
/// token's own lineage's. Calls still queued or running, trigger firings
/// and sequences (which ran no function themselves) are not counted.
#[utoipa::path(get, path = "/v1/activations/stats", tag = "activations", operation_id = "activation_stats",
    params(
        ("function" = Option<String>, Query, description = "Only this function's (`sha256:<hex>`); every function's when absent", pattern = r"^sha256:[0-9a-f]{64}$"),
        ("window" = Option<String>, Query, description = "How far back from now: `90s`, `15m`, `1h` (default), `7d`; from 1m to 30d", pattern = r"^[0-9]{1,7}(s|m|h|d)$", example = "1h"),
        ("buckets" = Option<u32>, Query, minimum = 1, maximum = 240, description = "Intervals the window is cut into (default 60)"),
    ),
    responses(
        (status = 200, description = "The figures", body = crate::services::stats::Stats),
        (status = 400, description = "invalid_request, invalid_function_id"),
        (status = 404, description = "function_not_found: `function` is not a hash"),
    ))]
pub(super) async fn activation_stats(
    State(node): S,
    token: Token,
    Query(q): Query<BTreeMap<String, String>>,
) -> Result<Json<stats::Stats>, ApiError> {
    let claims = caller::authorize(&node, &token, Request::op(op::ACTIVATIONS_READ)).await?;
    let function = function_of(&q)?;
    let window = match q.get("window") {
        Some(w) => stats::parse_window(w)?,
        None => std::time::Duration::from_secs(3600),
    };
    let buckets = q
        .get("buckets")
        .map(|b| stats::parse_buckets(b))
        .transpose()?
        .unwrap_or(60);
    Ok(Json(
        stats::stats(&node, &claims, function, window, buckets).await?,
    ))
}

/// `GET /v1/activations/{id}[?wait=5s]`.
/// Show an activation: status, result or error, logs, duration, fuel.
#[utoipa::path(get, path = "/v1/activations/{id}", tag = "activations",
    params(
        ("id" = String, Path, description = "The activation id (UUIDv7)"),
        ("wait" = Option<String>, Query, description = "Long poll: wait up to this long (`5s`, `1500ms`; longer than 60 s is cut to 60 s) for a queued or running asynchronous call to finish", pattern = r"^[0-9]{1,9}(ms|s)$", example = "5s"),
    ),
    responses(
        (status = 200, description = "The activation", body = orb_core::Activation),
        (status = 404, description = "activation_not_found"),
    ))]
pub(super) async fn show_activation(
    State(node): S,
    token: Token,
    Path(id): Path<String>,
    Query(q): Query<BTreeMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let claims = caller::authorize(&node, &token, Request::op(op::ACTIVATIONS_READ)).await?;
    let wait = q.get("wait").map(|w| parse_wait(w)).transpose()?;
    let a = activations::show(&node, &claims, &id, wait).await?;
    Ok(Json(serde_json::to_value(a).expect("serialisable")))
}

/// `?function=`: a hash, when given.
fn function_of(q: &BTreeMap<String, String>) -> Result<Option<FunctionId>, ApiError> {
    q.get("function")
        .map(|f| functions::parse_id(f))
        .transpose()
}

/// `?wait=`: whole seconds or milliseconds, `5s` or `1500ms` (the
/// document's pattern).
fn parse_wait(text: &str) -> Result<std::time::Duration, ApiError> {
    let (digits, ms) = match text.strip_suffix("ms") {
        Some(d) => (d, true),
        None => (text.strip_suffix('s').unwrap_or(""), false),
    };
    let n = (!digits.is_empty() && digits.len() <= 9 && digits.bytes().all(|b| b.is_ascii_digit()))
        .then(|| digits.parse::<u64>().ok())
        .flatten()
        .ok_or_else(|| {
            ApiError::new(
                ErrorCode::InvalidRequest,
                format!("`wait` `{text}` is not a duration like `5s` or `1500ms`"),
            )
        })?;
    Ok(if ms {
        std::time::Duration::from_millis(n)
    } else {
        std::time::Duration::from_secs(n)
    })
}

/// Asynchronous calls that failed after their retries.
#[utoipa::path(get, path = "/v1/dead-letters", tag = "activations",
    responses((status = 200, description = "`{\"dead_letters\": [...]}`", body = Object)))]
pub(super) async fn list_dead_letters(
    State(node): S,
    token: Token,
) -> Result<Json<Value>, ApiError> {
    let claims = caller::authorize(&node, &token, Request::op(op::ACTIVATIONS_READ)).await?;
    Ok(Json(queue::dead_letters(&node, &claims).await?))
}

/// Forget a dead letter.
#[utoipa::path(delete, path = "/v1/dead-letters/{id}", tag = "activations",
    params(("id" = String, Path, description = "The dead letter's activation id")),
    responses(
        (status = 204, description = "Forgotten"),
        (status = 404, description = "activation_not_found"),
    ))]
pub(super) async fn delete_dead_letter(
    State(node): S,
    token: Token,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let claims = caller::authorize(&node, &token, Request::op(op::ACTIVATIONS_WRITE)).await?;
    if queue::forget_dead_letter(&node, &claims, &id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::new(
            ErrorCode::ActivationNotFound,
            format!("no dead letter `{id}`"),
        ))
    }
}
