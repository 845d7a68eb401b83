//! `/kappa` and `/kappa/{ref}` (the Kappa API): deploying and deleting need
//! the account's private token; sending and reading are authorized by the
//! service once it knows the kappa's function.

use super::{S, json_body, read_body};
use crate::caller::{self, Request, Token, op};
use crate::services::kappa::{self, ByName, Code, DeployQuery};
use crate::{ApiError, Node};
use axum::Json;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use orb_core::ErrorCode;
use serde_json::Value;
use std::sync::Arc;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Deploy a kappa (private token): from a component (the body's bytes,
/// `?export=`) or from a function already stored (a JSON body).
#[utoipa::path(put, path = "/kappa", tag = "kappa", operation_id = "deploy_kappa",
    extensions(("x-orb-checked-against-the-function" = json!(["invalid_params", "invalid_component", "unsupported_import"]))),
    params(crate::services::kappa::DeployQuery),
    request_body(content(
        (crate::services::kappa::ByName = "application/json"),
        (super::openapi::Component = "application/wasm"),
    ), description = "`{\"function\", \"export\"?}`, or the component's bytes"),
    responses(
        (status = 201, description = "Deployed", body = super::openapi::KappaOut),
        (status = 400, description = "invalid_request, invalid_component, unsupported_import, invalid_function_id"),
        (status = 404, description = "function_not_found, export_not_found, alias_not_found"),
    ))]
async fn put_k(
    State(n): S,
    h: HeaderMap,
    t: Token,
    Query(q): Query<DeployQuery>,
    b: Body,
) -> Result<Response, ApiError> {
    let claims =
        caller::authorize_private(&n, &t, Request::op(op::KAPPA_WRITE), "deploying kappas").await?;
    let is_json = h
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("application/json"));
    let code = if is_json {
        let b: ByName = json_body(&read_body(b, 64 << 10).await?)?;
        Code::ByName(b)
    } else {
        Code::Component(read_body(b, n.config.max_component_bytes).await?)
    };
    let v = kappa::deploy(&n, &t, &claims, q, code).await?;
    Ok((StatusCode::CREATED, Json(v)).into_response())
}

/// List the account's kappas with their unread outport counts.
#[utoipa::path(get, path = "/kappa", tag = "kappa", operation_id = "list_kappas",
    responses((status = 200, description = "`{\"kappas\": [...]}`", body = Object)))]
async fn list_k(State(n): S, t: Token) -> Result<Json<Value>, ApiError> {
    let claims = caller::authorize(&n, &t, Request::op(op::KAPPA_READ)).await?;
    Ok(Json(kappa::list(&n, &claims).await?))
}

/// Send a JSON message to the kappa's inport; answers after its state and
/// output are committed, together.
#[utoipa::path(post, path = "/kappa/{ref}", tag = "kappa", operation_id = "send_to_kappa",
    extensions(("x-orb-checked-against-the-function" = json!(["invalid_params"]))),
    params(("ref" = String, Path, description = "The kappa's reference"),
        ("Idempotency-Key" = Option<String>, Header, pattern = r"^[!-.0-~]{1,200}$", description = "The message's id: a retry with the same id is answered from the first answer (`\"replayed\": true`) and not applied again"),
    ),
    request_body(content = super::openapi::AnyJson, description = "Any JSON message", example = json!({"temperature": 21.5})),
    responses(
        (status = 200, description = "Handled: `{activation, emitted}`", body = super::openapi::Sent),
        (status = 404, description = "kappa_not_found"),
        (status = 409, description = "conflict"),
        (status = 422, description = "function_trap, function_timeout, memory_limit, fuel_exhausted, function_bad_result"),
    ))]
async fn post_k(
    State(n): S,
    h: HeaderMap,
    t: Token,
    Path(r): Path<String>,
    b: Body,
) -> Result<Json<Value>, ApiError> {
    if let Err(e) = caller::authenticate(&n, &t) {
        super::drain(b).await;
        return Err(e);
    }
    let bytes = read_body(b, n.config.max_value_bytes as u64).await?;
    let message: Value = serde_json::from_slice(&bytes).map_err(|e| {
        ApiError::new(
            ErrorCode::InvalidRequest,
            format!("the message must be JSON: {e}"),
        )
    })?;
    let message_id = match h.get("idempotency-key") {
        None => None,
        Some(v) => Some(
            v.to_str()
                .ok()
                .map(str::trim)
                .filter(|k| (1..=200).contains(&k.len()) && !k.contains('/'))
                .ok_or_else(|| {
                    ApiError::new(
                        ErrorCode::InvalidRequest,
                        "`Idempotency-Key` must be 1–200 visible ASCII characters without `/`",
                    )
                })?
                .to_string(),
        ),
    };
    Ok(Json(kappa::send(&n, &t, &r, message, message_id).await?))
}

/// Pop the oldest outport message.
#[utoipa::path(get, path = "/kappa/{ref}", tag = "kappa", operation_id = "receive_from_kappa",
    params(("ref" = String, Path, description = "The kappa's reference")),
    responses(
        (status = 200, description = "The message", body = super::openapi::AnyJson),
        (status = 204, description = "The outport is empty"),
        (status = 404, description = "kappa_not_found"),
    ))]
async fn get_k(State(n): S, t: Token, Path(r): Path<String>) -> Result<Response, ApiError> {
    caller::authenticate(&n, &t)?;
    Ok(match kappa::receive(&n, &t, &r).await? {
        Some(v) => Json(v).into_response(),
        None => StatusCode::NO_CONTENT.into_response(),
    })
}

/// Delete the kappa, its state and its outport (private token).
#[utoipa::path(delete, path = "/kappa/{ref}", tag = "kappa", operation_id = "delete_kappa",
    params(("ref" = String, Path, description = "The kappa's reference")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "kappa_not_found"),
    ))]
async fn del_k(State(n): S, t: Token, Path(r): Path<String>) -> Result<StatusCode, ApiError> {
    let claims =
        caller::authorize_private(&n, &t, Request::op(op::KAPPA_WRITE), "deleting kappas").await?;
    kappa::remove(&n, &claims, &r).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `/kappa` and `/kappa/{ref}`.
pub(super) fn routes() -> OpenApiRouter<Arc<Node>> {
    OpenApiRouter::new()
        .routes(routes!(list_k, put_k))
        .routes(routes!(get_k, post_k, del_k))
}
