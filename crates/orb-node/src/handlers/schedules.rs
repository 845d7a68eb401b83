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
/// Create a schedule: a call (or a trigger's firing) on an interval
/// (`every`) or a cron pattern, checked like a call of the caller.
#[utoipa::path(post, path = "/v1/schedules", tag = "schedules",
    extensions(
        ("x-orb-checked-against-the-function" = json!(["invalid_params"])),
        ("x-orb-cross-field" = json!([{"rule": "set and write_to need a namespace", "codes": ["invalid_request"]}, {"rule": "timezone goes with cron", "codes": ["invalid_schedule"]}])),
    ),
    request_body = crate::services::schedules::ScheduleRequest,
    responses(
        (status = 201, description = "Created: the schedule with its id and next run", body = super::openapi::ScheduleOut),
        (status = 400, description = "invalid_schedule, invalid_params, invalid_function_id"),
        (status = 403, description = "permission_denied, schedule_too_frequent, schedule_limit_reached"),
        (status = 404, description = "function_not_found, export_not_found, alias_not_found, trigger_not_found"),
    ))]
pub(super) async fn post_schedule(
    State(node): S,
    token: Token,
    body: Body,
) -> Result<Response, ApiError> {
    if let Err(e) = caller::authenticate(&node, &token) {
        super::drain(body).await;
        return Err(e);
    }
    let bytes = read_body(body, 1 << 20).await?;
    let req: schedules::ScheduleRequest = json_body(&bytes)?;
    let out = schedules::create(&node, &token, req).await?;
    Ok((StatusCode::CREATED, Json(out)).into_response())
}

/// List the schedules with their state.
#[utoipa::path(get, path = "/v1/schedules", tag = "schedules",
    responses((status = 200, description = "The schedules", body = super::openapi::ScheduleList)))]
pub(super) async fn list_schedules(State(node): S, token: Token) -> Result<Json<Value>, ApiError> {
    let claims = caller(&node, &token, false).await?;
    Ok(Json(schedules::list(&node, &claims).await?))
}

/// Show a schedule: last run, next run, last activation, last error.
#[utoipa::path(get, path = "/v1/schedules/{id}", tag = "schedules",
    params(("id" = String, Path, description = "The schedule id")),
    responses(
        (status = 200, description = "The schedule", body = super::openapi::ScheduleOut),
        (status = 404, description = "schedule_not_found"),
    ))]
pub(super) async fn show_schedule(
    State(node): S,
    token: Token,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let claims = caller(&node, &token, false).await?;
    Ok(Json(schedules::show(&node, &claims, &id).await?))
}

/// Delete a schedule.
#[utoipa::path(delete, path = "/v1/schedules/{id}", tag = "schedules",
    params(("id" = String, Path, description = "The schedule id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "schedule_not_found"),
    ))]
pub(super) async fn delete_schedule(
    State(node): S,
    token: Token,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let claims = caller(&node, &token, true).await?;
    schedules::delete(&node, &claims, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
