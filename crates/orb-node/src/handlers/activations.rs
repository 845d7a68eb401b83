//! `/v1/activations…` and `/v1/dead-letters…`.

use super::S;
use crate::ApiError;
use crate::caller::{self, Request, Token, op};
use crate::services::{activations, functions, queue};
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use orb_core::ErrorCode;
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
    let function = q
        .get("function")
        .map(|f| functions::parse_id(f))
        .transpose()?;
    let before = q.get("before").cloned();
    let acts = activations::list(&node, &claims, function, before, limit).await?;
    Ok(Json(json!({ "activations": acts })))
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
