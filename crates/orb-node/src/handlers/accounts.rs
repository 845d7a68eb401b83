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

pub(super) async fn post_token(
    State(node): S,
    token: Token,
    body: Body,
) -> Result<Response, ApiError> {
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

pub(super) async fn post_revoke(
    State(node): S,
    token: Token,
    body: Body,
) -> Result<Json<Value>, ApiError> {
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

pub(super) async fn put_whitelist(
    State(node): S,
    token: Token,
    Path(ns): Path<String>,
    body: Body,
) -> Result<Json<Value>, ApiError> {
    let bytes = read_body(body, 1 << 20).await?;
    let req: Value = json_body(&bytes)?;
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

pub(super) async fn get_whitelist(
    State(node): S,
    token: Token,
    Path(ns): Path<String>,
) -> Result<Json<Value>, ApiError> {
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
pub(super) async fn public_key(State(node): S) -> Json<Value> {
    Json(json!({ "public_key": node.auth.public_key_text() }))
}
