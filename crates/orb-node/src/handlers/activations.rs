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

pub(super) async fn list_activations(
    State(node): S,
    token: Token,
    Query(q): Query<BTreeMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let claims = caller::authorize(&node, &token, Request::op(op::ACTIVATIONS_READ)).await?;
    let limit = match q.get("limit") {
        Some(l) => l.parse::<usize>().map_err(|_| {
            ApiError::new(
                ErrorCode::InvalidRequest,
                format!("`limit` must be a positive integer, got `{l}`"),
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
pub(super) async fn show_activation(
    State(node): S,
    token: Token,
    Path(id): Path<String>,
    Query(q): Query<BTreeMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let claims = caller::authorize(&node, &token, Request::op(op::ACTIVATIONS_READ)).await?;
    let wait = match q.get("wait") {
        Some(wait) => Some(humantime::parse_duration(wait).map_err(|e| {
            ApiError::new(
                ErrorCode::InvalidRequest,
                format!("`wait` `{wait}` is not a duration like `5s`: {e}"),
            )
        })?),
        None => None,
    };
    let a = activations::show(&node, &claims, &id, wait).await?;
    Ok(Json(serde_json::to_value(a).expect("serialisable")))
}

pub(super) async fn list_dead_letters(
    State(node): S,
    token: Token,
) -> Result<Json<Value>, ApiError> {
    let claims = caller::authorize(&node, &token, Request::op(op::ACTIVATIONS_READ)).await?;
    Ok(Json(queue::dead_letters(&node, &claims).await?))
}

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
