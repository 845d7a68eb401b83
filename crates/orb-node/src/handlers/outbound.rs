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
use axum::routing::{get, put};
use serde_json::Value;
use std::sync::Arc;

async fn private(
    node: &Node,
    token: &Token,
    operation: &str,
    what: &str,
) -> Result<Claims, ApiError> {
    caller::authorize_private(node, token, Request::op(operation), what).await
}

async fn put_o(State(n): S, t: Token, b: Body) -> Result<Json<Value>, ApiError> {
    let body = json_body(&read_body(b, 256 << 10).await?)?;
    let claims = private(&n, &t, op::OUTBOUND_WRITE, "setting the outbound policy").await?;
    Ok(Json(outbound::put_outbound(&n, &claims, body).await?))
}

async fn get_o(State(n): S, t: Token) -> Result<Json<Value>, ApiError> {
    let claims = private(&n, &t, op::OUTBOUND_READ, "reading the outbound policy").await?;
    Ok(Json(outbound::get_outbound(&n, &claims).await?))
}

async fn put_s(
    State(n): S,
    t: Token,
    Path(name): Path<String>,
    b: Body,
) -> Result<Response, ApiError> {
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

async fn list_s(State(n): S, t: Token) -> Result<Json<Value>, ApiError> {
    let claims = private(&n, &t, op::SECRETS_READ, "listing secrets").await?;
    Ok(Json(outbound::list_secrets(&n, &claims).await?))
}

async fn del_s(State(n): S, t: Token, Path(name): Path<String>) -> Result<StatusCode, ApiError> {
    let claims = private(&n, &t, op::SECRETS_WRITE, "deleting secrets").await?;
    outbound::delete_secret(&n, &claims, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `/v1/outbound` and `/v1/secrets…`.
pub(super) fn routes() -> axum::Router<Arc<Node>> {
    axum::Router::new()
        .route("/v1/outbound", put(put_o).get(get_o))
        .route("/v1/secrets", get(list_s))
        .route("/v1/secrets/{name}", put(put_s).delete(del_s))
}
