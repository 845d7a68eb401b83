//! `/kappa` and `/kappa/{ref}` (the Kappa API): deploying and deleting need
//! the account's private token; sending and reading are authorized by the
//! service once it knows the kappa's function.

use super::{S, json_body, read_body};
use crate::caller::{self, Request, Token, op};
use crate::services::kappa::{self, ByName, Code, DeployQuery};
use crate::{ApiError, Node};
use axum::Json;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing;
use orb_core::ErrorCode;
use serde_json::Value;
use std::sync::Arc;

async fn put_k(
    State(n): S,
    h: HeaderMap,
    t: Token,
    Query(q): Query<DeployQuery>,
    b: Body,
) -> Result<Response, ApiError> {
    let claims =
        caller::authorize_private(&n, &t, Request::op(op::KAPPA_WRITE), "deploying kappas").await?;
    let is_json = h
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("application/json"));
    let code = if is_json {
        let b: ByName = json_body(&read_body(b, 64 << 10).await?)?;
        Code::ByName(b)
    } else {
        Code::Component(read_body(b, n.config.max_component_bytes).await?)
    };
    let v = kappa::deploy(&n, &t, &claims, q, code).await?;
    Ok((StatusCode::CREATED, Json(v)).into_response())
}

async fn list_k(State(n): S, t: Token) -> Result<Json<Value>, ApiError> {
    let claims = caller::authorize(&n, &t, Request::op(op::KAPPA_READ)).await?;
    Ok(Json(kappa::list(&n, &claims).await?))
}

async fn post_k(
    State(n): S,
    h: HeaderMap,
    t: Token,
    Path(r): Path<String>,
    b: Body,
) -> Result<Json<Value>, ApiError> {
    let bytes = read_body(b, n.config.max_value_bytes as u64).await?;
    let message: Value = serde_json::from_slice(&bytes).map_err(|e| {
        ApiError::new(
            ErrorCode::InvalidRequest,
            format!("the message must be JSON: {e}"),
        )
    })?;
    let message_id = match h.get("idempotency-key") {
        None => None,
        Some(v) => Some(
            v.to_str()
                .ok()
                .map(str::trim)
                .filter(|k| (1..=200).contains(&k.len()) && !k.contains('/'))
                .ok_or_else(|| {
                    ApiError::new(
                        ErrorCode::InvalidRequest,
                        "`Idempotency-Key` must be 1–200 visible ASCII characters without `/`",
                    )
                })?
                .to_string(),
        ),
    };
    Ok(Json(kappa::send(&n, &t, &r, message, message_id).await?))
}

async fn get_k(State(n): S, t: Token, Path(r): Path<String>) -> Result<Response, ApiError> {
    Ok(match kappa::receive(&n, &t, &r).await? {
        Some(v) => Json(v).into_response(),
        None => StatusCode::NO_CONTENT.into_response(),
    })
}

async fn del_k(State(n): S, t: Token, Path(r): Path<String>) -> Result<StatusCode, ApiError> {
    let claims =
        caller::authorize_private(&n, &t, Request::op(op::KAPPA_WRITE), "deleting kappas").await?;
    kappa::remove(&n, &claims, &r).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `/kappa` and `/kappa/{ref}`.
pub(super) fn routes() -> axum::Router<Arc<Node>> {
    axum::Router::new()
        .route("/kappa", routing::get(list_k).put(put_k))
        .route(
            "/kappa/{ref}",
            routing::get(get_k).post(post_k).delete(del_k),
        )
}
