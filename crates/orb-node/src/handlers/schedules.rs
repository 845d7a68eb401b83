//! `/v1/schedules…`.

use super::{S, json_body, read_body};
use crate::caller::{self, Claims, Request, Token, op};
use crate::services::schedules;
use crate::{ApiError, Node};
use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::Value;

/// The caller's claims: a private token manages the account's schedules, a
/// public token only those its lineage created (others are not found).
async fn caller(node: &Node, token: &Token, write: bool) -> Result<Claims, ApiError> {
    let req = Request {
        operation: if write {
            op::SCHEDULES_WRITE
        } else {
            op::SCHEDULES_READ
        },
        ..Default::default()
    };
    caller::authorize(node, token, req).await
}

/// `POST /v1/schedules`: the schedule is checked like a call of the caller
/// (the service authorizes its function once it has resolved it).
pub(super) async fn post_schedule(
    State(node): S,
    token: Token,
    body: Body,
) -> Result<Response, ApiError> {
    let bytes = read_body(body, 1 << 20).await?;
    let req: schedules::ScheduleRequest = json_body(&bytes)?;
    let out = schedules::create(&node, &token, req).await?;
    Ok((StatusCode::CREATED, Json(out)).into_response())
}

pub(super) async fn list_schedules(State(node): S, token: Token) -> Result<Json<Value>, ApiError> {
    let claims = caller(&node, &token, false).await?;
    Ok(Json(schedules::list(&node, &claims).await?))
}

pub(super) async fn show_schedule(
    State(node): S,
    token: Token,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let claims = caller(&node, &token, false).await?;
    Ok(Json(schedules::show(&node, &claims, &id).await?))
}

pub(super) async fn delete_schedule(
    State(node): S,
    token: Token,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let claims = caller(&node, &token, true).await?;
    schedules::delete(&node, &claims, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
