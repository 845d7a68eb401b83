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
use axum::routing::get;
use serde_json::Value;
use std::sync::Arc;

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

async fn put_t(
    State(n): S,
    t: Token,
    Path(name): Path<String>,
    b: Body,
) -> Result<Response, ApiError> {
    let body = json_body(&read_body(b, 64 << 10).await?)?;
    let account = owner(&n, &t, "creating triggers").await?;
    let (c, v) = triggers::put_trigger(&n, &account, &name, body).await?;
    Ok(created(c, v))
}

/// `POST /v1/triggers/{name}`: a public token needs the trigger in its
/// grant's `triggers`.
async fn fire_t(
    State(n): S,
    t: Token,
    Path(name): Path<String>,
    b: Body,
) -> Result<Response, ApiError> {
    let payload = json_body(&read_body(b, n.config.max_value_bytes as u64).await?)?;
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

async fn show_t(State(n): S, t: Token, Path(name): Path<String>) -> Result<Json<Value>, ApiError> {
    let claims = reader(&n, &t).await?;
    Ok(Json(triggers::show_trigger(&n, &claims, &name).await?))
}

async fn del_t(State(n): S, t: Token, Path(name): Path<String>) -> Result<Json<Value>, ApiError> {
    let account = owner(&n, &t, "deleting triggers").await?;
    Ok(Json(triggers::delete_trigger(&n, &account, &name).await?))
}

async fn list_t(State(n): S, t: Token) -> Result<Json<Value>, ApiError> {
    let claims = reader(&n, &t).await?;
    Ok(Json(triggers::list_triggers(&n, &claims).await?))
}

async fn put_r(
    State(n): S,
    t: Token,
    Path(name): Path<String>,
    b: Body,
) -> Result<Response, ApiError> {
    let body = json_body(&read_body(b, 1 << 20).await?)?;
    let account = owner(&n, &t, "creating rules").await?;
    let (c, v) = triggers::put_rule(&n, &t, &account, &name, body).await?;
    Ok(created(c, v))
}

async fn show_r(State(n): S, t: Token, Path(name): Path<String>) -> Result<Json<Value>, ApiError> {
    let claims = reader(&n, &t).await?;
    Ok(Json(triggers::show_rule(&n, &claims, &name).await?))
}

async fn del_r(State(n): S, t: Token, Path(name): Path<String>) -> Result<StatusCode, ApiError> {
    let account = owner(&n, &t, "deleting rules").await?;
    triggers::delete_rule(&n, &account, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn list_r(State(n): S, t: Token) -> Result<Json<Value>, ApiError> {
    let claims = reader(&n, &t).await?;
    Ok(Json(triggers::list_rules(&n, &claims).await?))
}

/// `/v1/triggers…` and `/v1/rules…`.
pub(super) fn routes() -> axum::Router<Arc<Node>> {
    axum::Router::new()
        .route("/v1/triggers", get(list_t))
        .route(
            "/v1/triggers/{name}",
            get(show_t).put(put_t).post(fire_t).delete(del_t),
        )
        .route("/v1/rules", get(list_r))
        .route("/v1/rules/{name}", get(show_r).put(put_r).delete(del_r))
}
