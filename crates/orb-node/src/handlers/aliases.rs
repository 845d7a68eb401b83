//! `/v1/aliases…`: changing an alias needs the account's private token,
//! reading it a token that may read functions.

use super::{S, json_any, read_body};
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

/// List the account's aliases.
#[utoipa::path(get, path = "/v1/aliases", tag = "aliases",
    responses((status = 200, description = "The aliases", body = super::openapi::AliasList)))]
pub(super) async fn list_aliases(State(node): S, token: Token) -> Result<Json<Value>, ApiError> {
    let claims = reader(&node, &token).await?;
    Ok(Json(aliases::list(&node, &claims).await?))
}

/// Show an alias and its earlier targets.
#[utoipa::path(get, path = "/v1/aliases/{name}", tag = "aliases",
    params(("name" = String, Path, description = "The alias: 1–64 of `[a-z0-9._-]`, starting with a letter or digit, not a hash", pattern = r"^[a-z0-9][a-z0-9._-]{0,63}$", example = "hello")),
    responses(
        (status = 200, description = "The alias", body = crate::services::aliases::Alias),
        (status = 404, description = "alias_not_found"),
    ))]
pub(super) async fn show_alias(
    State(node): S,
    token: Token,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let claims = reader(&node, &token).await?;
    Ok(Json(aliases::show(&node, &claims, &name).await?))
}

/// Point an alias at a hash the account owns, or make it a sequence
/// (private token).
///
/// `public` serves it at `/http/{name}/…` without a token; `namespace`
/// binds a namespace for HTTP functions.
#[utoipa::path(put, path = "/v1/aliases/{name}", tag = "aliases",
    params(("name" = String, Path, description = "The alias: 1–64 of `[a-z0-9._-]`, starting with a letter or digit, not a hash", pattern = r"^[a-z0-9][a-z0-9._-]{0,63}$", example = "hello")),
    request_body = super::openapi::AliasIn,
    responses(
        (status = 200, description = "The alias", body = crate::services::aliases::Alias),
        (status = 400, description = "invalid_request, invalid_function_id, invalid_name"),
        (status = 404, description = "function_not_found"),
        (status = 409, description = "public_route_taken: another account serves a public route of that name"),
    ))]
pub(super) async fn put_alias(
    State(node): S,
    token: Token,
    Path(name): Path<String>,
    body: Body,
) -> Result<Json<Value>, ApiError> {
    if let Err(e) = caller::authenticate(&node, &token) {
        super::drain(body).await;
        return Err(e);
    }
    let bytes = read_body(body, 64 << 10).await?;
    let body: Value = json_any(&bytes)?;
    let account = owner(&node, &token).await?;
    Ok(Json(aliases::set(&node, &account, &name, body).await?))
}

/// Delete an alias (private token).
#[utoipa::path(delete, path = "/v1/aliases/{name}", tag = "aliases",
    params(("name" = String, Path, description = "The alias: 1–64 of `[a-z0-9._-]`, starting with a letter or digit, not a hash", pattern = r"^[a-z0-9][a-z0-9._-]{0,63}$", example = "hello")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "alias_not_found"),
    ))]
pub(super) async fn delete_alias(
    State(node): S,
    token: Token,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    let account = owner(&node, &token).await?;
    aliases::delete(&node, &account, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Point an alias back at its previous target (private token).
#[utoipa::path(post, path = "/v1/aliases/{name}/rollback", tag = "aliases",
    params(("name" = String, Path, description = "The alias: 1–64 of `[a-z0-9._-]`, starting with a letter or digit, not a hash", pattern = r"^[a-z0-9][a-z0-9._-]{0,63}$", example = "hello")),
    responses(
        (status = 200, description = "The alias", body = crate::services::aliases::Alias),
        (status = 404, description = "alias_not_found"),
        (status = 409, description = "nothing_to_roll_back"),
    ))]
pub(super) async fn rollback_alias(
    State(node): S,
    token: Token,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let account = owner(&node, &token).await?;
    Ok(Json(aliases::rollback(&node, &account, &name).await?))
}
