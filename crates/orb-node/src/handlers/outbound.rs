//! `/v1/outbound` and `/v1/secrets…`: the account's private token only.

use super::{S, json_body, read_body};
use crate::caller::{self, Claims, Request, Token, op};
use crate::services::outbound;
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

async fn private(
    node: &Node,
    token: &Token,
    operation: &str,
    what: &str,
) -> Result<Claims, ApiError> {
    caller::authorize_private(node, token, Request::op(operation), what).await
}

/// Replace the account's outbound HTTP host list, used by calls made with
/// its private token (private token).
#[utoipa::path(put, path = "/v1/outbound", tag = "outbound", operation_id = "put_outbound",
    request_body = outbound::Policy,
    responses((status = 200, description = "The policy", body = outbound::Policy)))]
async fn put_o(State(n): S, t: Token, b: Body) -> Result<Json<Value>, ApiError> {
    if let Err(e) = caller::authenticate(&n, &t) {
        super::drain(b).await;
        return Err(e);
    }
    let body = json_body(&read_body(b, 256 << 10).await?)?;
    let claims = private(&n, &t, op::OUTBOUND_WRITE, "setting the outbound policy").await?;
    Ok(Json(outbound::put_outbound(&n, &claims, body).await?))
}

/// The account's outbound HTTP host list (private token).
#[utoipa::path(get, path = "/v1/outbound", tag = "outbound", operation_id = "get_outbound",
    responses((status = 200, description = "The policy", body = outbound::Policy)))]
async fn get_o(State(n): S, t: Token) -> Result<Json<Value>, ApiError> {
    let claims = private(&n, &t, op::OUTBOUND_READ, "reading the outbound policy").await?;
    Ok(Json(outbound::get_outbound(&n, &claims).await?))
}

/// Store or replace a secret the node injects as a header into the
/// account's functions' outgoing requests to the given hosts; it cannot be
/// read back (private token).
#[utoipa::path(put, path = "/v1/secrets/{name}", tag = "outbound", operation_id = "put_secret",
    params(("name" = String, Path, description = "Secret name: 1–64 of letters, digits, `.`, `_`, `-`, starting with a letter or digit", pattern = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$", example = "github")),
    request_body = outbound::SecretBody,
    responses(
        (status = 201, description = "Created: the secret without its value", body = super::openapi::Secret),
        (status = 200, description = "Replaced: the secret without its value", body = super::openapi::Secret),
    ))]
async fn put_s(
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
    let claims = private(&n, &t, op::SECRETS_WRITE, "storing secrets").await?;
    let (created, v) = outbound::put_secret(&n, &claims, &name, body).await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(v)).into_response())
}

/// List the account's secrets: never their values (private token).
#[utoipa::path(get, path = "/v1/secrets", tag = "outbound", operation_id = "list_secrets",
    responses((status = 200, description = "The secrets", body = super::openapi::SecretList)))]
async fn list_s(State(n): S, t: Token) -> Result<Json<Value>, ApiError> {
    let claims = private(&n, &t, op::SECRETS_READ, "listing secrets").await?;
    Ok(Json(outbound::list_secrets(&n, &claims).await?))
}

/// Delete a secret (private token).
#[utoipa::path(delete, path = "/v1/secrets/{name}", tag = "outbound", operation_id = "delete_secret",
    params(("name" = String, Path, description = "Secret name: 1–64 of letters, digits, `.`, `_`, `-`, starting with a letter or digit", pattern = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$", example = "github")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 400, description = "invalid_name"),
        (status = 404, description = "secret_not_found"),
    ))]
async fn del_s(State(n): S, t: Token, Path(name): Path<String>) -> Result<StatusCode, ApiError> {
    let claims = private(&n, &t, op::SECRETS_WRITE, "deleting secrets").await?;
    outbound::delete_secret(&n, &claims, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `/v1/outbound` and `/v1/secrets…`.
pub(super) fn routes() -> OpenApiRouter<Arc<Node>> {
    OpenApiRouter::new()
        .routes(routes!(put_o, get_o))
        .routes(routes!(list_s))
        .routes(routes!(put_s, del_s))
}
