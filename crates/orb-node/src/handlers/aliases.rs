//! `/v1/aliases…`: changing an alias needs the account's private token,
//! reading it a token that may read functions.

use super::{S, json_body, read_body};
use crate::caller::{self, Claims, Request, Token, op};
use crate::services::aliases;
use crate::{ApiError, Node};
use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde_json::Value;

/// The account whose aliases the caller may change.
async fn owner(node: &Node, token: &Token) -> Result<String, ApiError> {
    let req = Request::op(op::FUNCTIONS_WRITE);
    Ok(
        caller::authorize_private(node, token, req, "changing aliases")
            .await?
            .account,
    )
}

async fn reader(node: &Node, token: &Token) -> Result<Claims, ApiError> {
    let req = Request::op(op::FUNCTIONS_READ);
    caller::authorize(node, token, req).await
}

pub(super) async fn list_aliases(State(node): S, token: Token) -> Result<Json<Value>, ApiError> {
    let claims = reader(&node, &token).await?;
    Ok(Json(aliases::list(&node, &claims).await?))
}

pub(super) async fn show_alias(
    State(node): S,
    token: Token,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let claims = reader(&node, &token).await?;
    Ok(Json(aliases::show(&node, &claims, &name).await?))
}

pub(super) async fn put_alias(
    State(node): S,
    token: Token,
    Path(name): Path<String>,
    body: Body,
) -> Result<Json<Value>, ApiError> {
    let bytes = read_body(body, 64 << 10).await?;
    let body: Value = json_body(&bytes)?;
    let account = owner(&node, &token).await?;
    Ok(Json(aliases::set(&node, &account, &name, body).await?))
}

pub(super) async fn delete_alias(
    State(node): S,
    token: Token,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    let account = owner(&node, &token).await?;
    aliases::delete(&node, &account, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub(super) async fn rollback_alias(
    State(node): S,
    token: Token,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let account = owner(&node, &token).await?;
    Ok(Json(aliases::rollback(&node, &account, &name).await?))
}
