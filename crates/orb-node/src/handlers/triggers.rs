//! `/v1/triggers…` and `/v1/rules…`: changing them needs the account's
//! private token, reading them a token that may read triggers, firing one a
//! token that may fire it.

use super::{S, json_body, read_body};
use crate::caller::{self, Claims, Request, Token, op};
use crate::services::triggers;
use crate::{ApiError, Node};
use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use std::sync::Arc;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

async fn owner(node: &Node, token: &Token, what: &str) -> Result<String, ApiError> {
    let req = Request::op(op::TRIGGERS_WRITE);
    Ok(caller::authorize_private(node, token, req, what)
        .await?
        .account)
}

async fn reader(node: &Node, token: &Token) -> Result<Claims, ApiError> {
    let req = Request::op(op::TRIGGERS_READ);
    caller::authorize(node, token, req).await
}

fn created(created: bool, v: Value) -> Response {
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    (status, Json(v)).into_response()
}

/// Create or replace a trigger (private token); with `namespace` (and
/// `prefix`) it also fires on committed changes there.
#[utoipa::path(put, path = "/v1/triggers/{name}", tag = "triggers", operation_id = "put_trigger",
    params(("name" = String, Path, description = "The trigger: 1–64 of `[a-z0-9._-]`, starting with a letter or digit", pattern = r"^[a-z0-9][a-z0-9._-]{0,63}$", example = "order")),
    request_body = Option<crate::services::triggers::TriggerRequest>,
    responses(
        (status = 201, description = "Created", body = super::openapi::TriggerOut),
        (status = 200, description = "Replaced", body = super::openapi::TriggerOut),
        (status = 400, description = "invalid_request, invalid_name"),
    ))]
async fn put_t(
    State(n): S,
    t: Token,
    Path(name): Path<String>,
    b: Body,
) -> Result<Response, ApiError> {
    if let Err(e) = caller::authenticate(&n, &t) {
        super::drain(b).await;
        return Err(e);
    }
    let body = json_body(&read_body(b, 64 << 10).await?)?;
    let account = owner(&n, &t, "creating triggers").await?;
    let (c, v) = triggers::put_trigger(&n, &account, &name, body).await?;
    Ok(created(c, v))
}

/// `POST /v1/triggers/{name}`: a public token needs the trigger in its
/// grant's `triggers`.
/// Fire a trigger: each enabled rule's call is queued. A public token needs
/// the trigger in its grant's `triggers`.
#[utoipa::path(post, path = "/v1/triggers/{name}", tag = "triggers", operation_id = "fire_trigger",
    params(("name" = String, Path, description = "The trigger: 1–64 of `[a-z0-9._-]`, starting with a letter or digit", pattern = r"^[a-z0-9][a-z0-9._-]{0,63}$", example = "order")),
    request_body(content = Option<Object>, description = "The payload: a JSON object, the rules' parameters", example = json!({"order": 42})),
    responses(
        (status = 202, description = "Fired: the firing's activation and each rule's queued call (`{rule, activation}` or `{rule, error}`)", body = super::openapi::Fired),
        (status = 404, description = "trigger_not_found"),
        (status = 429, description = "rate_limited, queue_full"),
    ))]
async fn fire_t(
    State(n): S,
    t: Token,
    Path(name): Path<String>,
    b: Body,
) -> Result<Response, ApiError> {
    if let Err(e) = caller::authenticate(&n, &t) {
        super::drain(b).await;
        return Err(e);
    }
    let payload: Value = super::json_any(&read_body(b, n.config.max_value_bytes as u64).await?)?;
    let claims = caller::authorize(&n, &t, Request::op(op::TRIGGERS_FIRE)).await?;
    if let Some(g) = &claims.grant
        && !g.triggers.iter().any(|t| t == &name)
    {
        return Err(caller::denied(format!(
            "this token may not fire trigger `{name}` (its grant's `triggers` does not list it)"
        )));
    }
    let v = triggers::fire_api(&n, &claims, &name, payload).await?;
    Ok((StatusCode::ACCEPTED, Json(v)).into_response())
}

/// Show a trigger and its rules.
#[utoipa::path(get, path = "/v1/triggers/{name}", tag = "triggers", operation_id = "show_trigger",
    params(("name" = String, Path, description = "The trigger: 1–64 of `[a-z0-9._-]`, starting with a letter or digit", pattern = r"^[a-z0-9][a-z0-9._-]{0,63}$", example = "order")),
    responses(
        (status = 200, description = "The trigger", body = super::openapi::TriggerOut),
        (status = 404, description = "trigger_not_found"),
    ))]
async fn show_t(State(n): S, t: Token, Path(name): Path<String>) -> Result<Json<Value>, ApiError> {
    let claims = reader(&n, &t).await?;
    Ok(Json(triggers::show_trigger(&n, &claims, &name).await?))
}

/// Delete a trigger and its rules (private token).
#[utoipa::path(delete, path = "/v1/triggers/{name}", tag = "triggers", operation_id = "delete_trigger",
    params(("name" = String, Path, description = "The trigger: 1–64 of `[a-z0-9._-]`, starting with a letter or digit", pattern = r"^[a-z0-9][a-z0-9._-]{0,63}$", example = "order")),
    responses(
        (status = 200, description = "Deleted: the trigger and the rules deleted with it", body = Object),
        (status = 404, description = "trigger_not_found"),
    ))]
async fn del_t(State(n): S, t: Token, Path(name): Path<String>) -> Result<Json<Value>, ApiError> {
    let account = owner(&n, &t, "deleting triggers").await?;
    Ok(Json(triggers::delete_trigger(&n, &account, &name).await?))
}

/// List the account's triggers.
#[utoipa::path(get, path = "/v1/triggers", tag = "triggers", operation_id = "list_triggers",
    responses((status = 200, description = "`{\"triggers\": [...]}`", body = Object)))]
async fn list_t(State(n): S, t: Token) -> Result<Json<Value>, ApiError> {
    let claims = reader(&n, &t).await?;
    Ok(Json(triggers::list_triggers(&n, &claims).await?))
}

/// Create or replace a rule binding a trigger to a function's export
/// (private token); checked like a call of the caller.
#[utoipa::path(put, path = "/v1/rules/{name}", tag = "triggers", operation_id = "put_rule",
    extensions(
        ("x-orb-checked-against-the-function" = json!(["invalid_params"])),
        ("x-orb-cross-field" = json!([{"rule": "set and write_to need a namespace", "codes": ["invalid_request"]}])),
    ),
    params(("name" = String, Path, description = "The rule: 1–64 of `[a-z0-9._-]`, starting with a letter or digit", pattern = r"^[a-z0-9][a-z0-9._-]{0,63}$", example = "on-order")),
    request_body = crate::services::triggers::RuleRequest,
    responses(
        (status = 201, description = "Created", body = super::openapi::RuleOut),
        (status = 200, description = "Replaced", body = super::openapi::RuleOut),
        (status = 400, description = "invalid_request, invalid_params, invalid_function_id, invalid_name"),
        (status = 404, description = "trigger_not_found, function_not_found, export_not_found, alias_not_found"),
    ))]
async fn put_r(
    State(n): S,
    t: Token,
    Path(name): Path<String>,
    b: Body,
) -> Result<Response, ApiError> {
    if let Err(e) = caller::authenticate(&n, &t) {
        super::drain(b).await;
        return Err(e);
    }
    let body = json_body(&read_body(b, 1 << 20).await?)?;
    let account = owner(&n, &t, "creating rules").await?;
    let (c, v) = triggers::put_rule(&n, &t, &account, &name, body).await?;
    Ok(created(c, v))
}

/// Show a rule.
#[utoipa::path(get, path = "/v1/rules/{name}", tag = "triggers", operation_id = "show_rule",
    params(("name" = String, Path, description = "The rule: 1–64 of `[a-z0-9._-]`, starting with a letter or digit", pattern = r"^[a-z0-9][a-z0-9._-]{0,63}$", example = "on-order")),
    responses(
        (status = 200, description = "The rule", body = super::openapi::RuleOut),
        (status = 404, description = "rule_not_found"),
    ))]
async fn show_r(State(n): S, t: Token, Path(name): Path<String>) -> Result<Json<Value>, ApiError> {
    let claims = reader(&n, &t).await?;
    Ok(Json(triggers::show_rule(&n, &claims, &name).await?))
}

/// Delete a rule (private token).
#[utoipa::path(delete, path = "/v1/rules/{name}", tag = "triggers", operation_id = "delete_rule",
    params(("name" = String, Path, description = "The rule: 1–64 of `[a-z0-9._-]`, starting with a letter or digit", pattern = r"^[a-z0-9][a-z0-9._-]{0,63}$", example = "on-order")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "rule_not_found"),
    ))]
async fn del_r(State(n): S, t: Token, Path(name): Path<String>) -> Result<StatusCode, ApiError> {
    let account = owner(&n, &t, "deleting rules").await?;
    triggers::delete_rule(&n, &account, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// List the account's rules.
#[utoipa::path(get, path = "/v1/rules", tag = "triggers", operation_id = "list_rules",
    responses((status = 200, description = "`{\"rules\": [...]}`", body = Object)))]
async fn list_r(State(n): S, t: Token) -> Result<Json<Value>, ApiError> {
    let claims = reader(&n, &t).await?;
    Ok(Json(triggers::list_rules(&n, &claims).await?))
}

/// `/v1/triggers…` and `/v1/rules…`.
pub(super) fn routes() -> OpenApiRouter<Arc<Node>> {
    OpenApiRouter::new()
        .routes(routes!(list_t))
        .routes(routes!(show_t, put_t, fire_t, del_t))
        .routes(routes!(list_r))
        .routes(routes!(show_r, put_r, del_r))
}
