//! `/v1/accounts`, `/v1/tokens…`, `/v1/namespaces/{ns}/whitelist`,
//! `/v1/auth/public-key`.

use super::{S, json_body, read_body};
use crate::ApiError;
use crate::caller::{self, Request, Token, op};
use crate::services::accounts;
use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// Create an account and its private token.
///
/// Needs the admin account's private token, unless the node allows
/// self-registration (`open_registration`) and the account is not an admin.
#[utoipa::path(post, path = "/v1/accounts", tag = "accounts",
    request_body = Option<crate::services::accounts::NewAccount>,
    responses((status = 201, description = "Created; the token is shown once", body = super::openapi::NewAccountOut)),
    security((), ("bearer" = [])))]
pub(super) async fn post_account(
    State(node): S,
    token: Token,
    body: Body,
) -> Result<Response, ApiError> {
    let bytes = read_body(body, 64 << 10).await?;
    let req: accounts::NewAccount = json_body(&bytes)?;
    if accounts::needs_admin(&node, &req) {
        let claims = caller::authorize_private(
            &node,
            &token,
            Request::op(op::ACCOUNTS_CREATE),
            "creating accounts",
        )
        .await?;
        accounts::require_admin(&node, &claims).await?;
    }
    let out = accounts::post_account(&node, req).await?;
    Ok((StatusCode::CREATED, Json(out)).into_response())
}

/// Mint a public token under the caller's private token.
#[utoipa::path(post, path = "/v1/tokens", tag = "accounts",
    request_body = Option<crate::services::accounts::MintRequest>,
    responses((status = 201, description = "Minted", body = super::openapi::MintedToken)))]
pub(super) async fn post_token(
    State(node): S,
    token: Token,
    body: Body,
) -> Result<Response, ApiError> {
    if let Err(e) = caller::authenticate(&node, &token) {
        super::drain(body).await;
        return Err(e);
    }
    let bytes = read_body(body, 64 << 10).await?;
    let req: accounts::MintRequest = json_body(&bytes)?;
    let claims = caller::authorize_private(
        &node,
        &token,
        Request::op(op::TOKENS_MINT),
        "minting tokens",
    )
    .await?;
    let out = accounts::post_token(&node, &claims, req).await?;
    Ok((StatusCode::CREATED, Json(out)).into_response())
}

/// Revoke a token of the account and everything derived from it.
#[utoipa::path(post, path = "/v1/tokens/revoke", tag = "accounts",
    request_body = crate::services::accounts::RevokeRequest,
    responses((status = 200, description = "Revoked", body = super::openapi::Revoked)))]
pub(super) async fn post_revoke(
    State(node): S,
    token: Token,
    body: Body,
) -> Result<Json<Value>, ApiError> {
    if let Err(e) = caller::authenticate(&node, &token) {
        super::drain(body).await;
        return Err(e);
    }
    let bytes = read_body(body, 64 << 10).await?;
    let req: accounts::RevokeRequest = json_body(&bytes)?;
    let claims = caller::authorize_private(
        &node,
        &token,
        Request::op(op::TOKENS_REVOKE),
        "revoking tokens",
    )
    .await?;
    Ok(Json(accounts::post_revoke(&node, &claims, req).await?))
}

/// Rotate the private token.
///
/// A new private token for the caller's account; the caller's lineage (its
/// copies, the public tokens it minted) is revoked in the same transaction.
#[utoipa::path(post, path = "/v1/tokens/rotate", tag = "accounts",
    responses((status = 200, description = "The new private token", body = super::openapi::Rotated)))]
pub(super) async fn post_rotate(State(node): S, token: Token) -> Result<Json<Value>, ApiError> {
    let claims = caller::authorize_private(
        &node,
        &token,
        Request::op(op::TOKENS_ROTATE),
        "rotating the private token",
    )
    .await?;
    Ok(Json(accounts::post_rotate(&node, &claims).await?))
}

/// Replace a namespace's whitelist (private token): the hashes public
/// tokens may run with it.
#[utoipa::path(put, path = "/v1/namespaces/{ns}/whitelist", tag = "accounts",
    params(("ns" = String, Path, description = "Namespace: 1–64 of `[a-z0-9._-]`, starting with a letter or digit", pattern = r"^[a-z0-9][a-z0-9._-]{0,63}$", example = "home")),
    request_body = super::openapi::WhitelistIn,
    responses(
        (status = 200, description = "The whitelist", body = super::openapi::Whitelist),
        (status = 400, description = "invalid_request, invalid_function_id, invalid_name"),
    ))]
pub(super) async fn put_whitelist(
    State(node): S,
    token: Token,
    Path(ns): Path<String>,
    body: Body,
) -> Result<Json<Value>, ApiError> {
    if let Err(e) = caller::authenticate(&node, &token) {
        super::drain(body).await;
        return Err(e);
    }
    let bytes = read_body(body, 1 << 20).await?;
    let req: Value = super::json_any(&bytes)?;
    caller::check_namespace_name(&ns)?;
    let claims = caller::authorize_private(
        &node,
        &token,
        Request {
            operation: op::WHITELIST_WRITE,
            namespace: Some(&ns),
            ..Default::default()
        },
        "changing a whitelist",
    )
    .await?;
    Ok(Json(
        accounts::put_whitelist(&node, &claims, &ns, req).await?,
    ))
}

/// A namespace's whitelist.
#[utoipa::path(get, path = "/v1/namespaces/{ns}/whitelist", tag = "accounts",
    params(("ns" = String, Path, description = "Namespace: 1–64 of `[a-z0-9._-]`, starting with a letter or digit", pattern = r"^[a-z0-9][a-z0-9._-]{0,63}$", example = "home")),
    responses(
        (status = 200, description = "The whitelist", body = super::openapi::Whitelist),
        (status = 400, description = "invalid_name"),
    ))]
pub(super) async fn get_whitelist(
    State(node): S,
    token: Token,
    Path(ns): Path<String>,
) -> Result<Json<Value>, ApiError> {
    caller::authenticate(&node, &token)?;
    caller::check_namespace_name(&ns)?;
    let claims = caller::authorize(
        &node,
        &token,
        Request {
            operation: op::WHITELIST_READ,
            namespace: Some(&ns),
            ..Default::default()
        },
    )
    .await?;
    if let Some(g) = &claims.grant
        && !g.namespaces.contains_key(&ns)
    {
        return Err(caller::denied(format!(
            "this token has no access to namespace `{ns}`"
        )));
    }
    Ok(Json(accounts::get_whitelist(&node, &claims, &ns).await?))
}

/// The root public key: enough for anyone to verify Orb tokens offline.
#[utoipa::path(get, path = "/v1/auth/public-key", tag = "accounts", security(()),
    responses((status = 200, description = "The root public key", body = super::openapi::PublicKey)))]
pub(super) async fn public_key(State(node): S) -> Json<Value> {
    Json(json!({ "public_key": node.auth.public_key_text() }))
}
