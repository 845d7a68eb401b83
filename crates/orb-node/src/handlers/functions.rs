//! `/v1/functions…` and `/v1/invoke`: uploading, listing, showing and
//! deleting functions, and calls.

use super::{S, drain, json_body, read_body};
use crate::caller::{self, Claims, Request, Token, op};
use crate::services::calls::InvokeRequest;
use crate::services::invoke::{self, Invoked};
use crate::services::{aliases, functions, net};
use crate::{ApiError, Node};
use axum::Json;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use orb_core::{ErrorCode, FunctionId};
use serde_json::{Value, json};

fn json_limit(node: &Node) -> u64 {
    // Room for an inline base64 component plus parameters.
    node.config.max_component_bytes / 3 * 4 + (1 << 20)
}

pub(super) async fn upload(
    State(node): S,
    headers: HeaderMap,
    token: Token,
    Query(query): Query<Vec<(String, String)>>,
    body: Body,
) -> Result<Response, ApiError> {
    let allowed = async {
        let placement = net::PlacementRequest::from_query(&query)?;
        let req = Request::op(op::FUNCTIONS_WRITE);
        let claims = caller::authorize(&node, &token, req).await?;
        caller::require_upload(&claims)?;
        Ok::<_, ApiError>((claims, placement))
    };
    let (claims, placement) = match allowed.await {
        Ok(c) => c,
        Err(e) => {
            drain(body).await;
            return Err(e);
        }
    };
    let max = node.config.max_component_bytes;
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if let Some(len) = declared
        && len > max.saturating_add(256 << 20)
    {
        // Too big to be worth draining: answer now.
        return Err(functions::too_large(len, max));
    }
    let bytes = read_body(body, max).await?;
    if bytes.is_empty() {
        return Err(ApiError::new(
            ErrorCode::InvalidComponent,
            "the body is empty; send the component's bytes (Content-Type: application/wasm)",
        ));
    }
    let (info, created) = functions::upload(&node, &claims.account, bytes, placement).await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(info)).into_response())
}

pub(super) async fn list_functions(State(node): S, token: Token) -> Result<Json<Value>, ApiError> {
    let claims = caller::authorize(&node, &token, Request::op(op::FUNCTIONS_READ)).await?;
    let fns = functions::list(&node, &claims).await?;
    Ok(Json(json!({ "functions": fns })))
}

/// The function `target` (a hash or an alias of the token's account) and
/// the caller authorized for `operation` on it, when the account owns it.
async fn owned(
    node: &Node,
    token: &Token,
    target: &str,
    operation: &str,
) -> Result<(Claims, FunctionId), ApiError> {
    let (id, _) = aliases::resolve_target(node, token, target).await?;
    let text = id.to_string();
    let claims = caller::authorize(
        node,
        token,
        Request {
            operation,
            function: Some(&text),
            ..Default::default()
        },
    )
    .await?;
    // A function a public token may not run is, to it, not there.
    functions::check_owned(node, &claims, &id).await?;
    Ok((claims, id))
}

pub(super) async fn show_function(
    State(node): S,
    token: Token,
    Path(target): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let (claims, id) = owned(&node, &token, &target, op::FUNCTIONS_READ).await?;
    let info = functions::show(&node, &claims, &id).await?;
    Ok(Json(serde_json::to_value(info).expect("serialisable")))
}

pub(super) async fn delete_function(
    State(node): S,
    token: Token,
    Path(target): Path<String>,
) -> Result<StatusCode, ApiError> {
    let (claims, id) = owned(&node, &token, &target, op::FUNCTIONS_WRITE).await?;
    caller::require_private(&claims, "deleting functions")?;
    functions::delete(&node, &claims, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub(super) async fn invoke_handler(
    State(node): S,
    token: Token,
    body: Body,
) -> Result<Response, ApiError> {
    let bytes = read_body(body, json_limit(&node)).await?;
    let req: InvokeRequest = json_body(&bytes)?;
    invoked(invoke::invoke(&node, &token, req).await?)
}

fn invoked(i: Invoked) -> Result<Response, ApiError> {
    Ok(match i {
        Invoked::Done(resp) => Json(resp).into_response(),
        Invoked::Queued(body) => (StatusCode::ACCEPTED, Json(body)).into_response(),
    })
}

pub(super) async fn call_post(
    State(node): S,
    token: Token,
    Path((target, export)): Path<(String, String)>,
    body: Body,
) -> Result<Response, ApiError> {
    let bytes = read_body(body, json_limit(&node)).await?;
    let params: Value = json_body(&bytes)?;
    if !params.is_object() {
        return Err(ApiError::new(
            ErrorCode::InvalidParams,
            "the body must be a JSON object of named parameters",
        ));
    }
    let req = InvokeRequest {
        function: Some(target),
        export,
        params,
        ..Default::default()
    };
    invoked(invoke::invoke(&node, &token, req).await?)
}

/// `GET /v1/functions/{hash}/{export}?name=value…`: query values are typed by
/// the export's signature (strings stay strings; other types parse as JSON).
/// `namespace` is taken as the call's namespace unless the export has a
/// parameter of that name.
pub(super) async fn call_get(
    State(node): S,
    token: Token,
    Path((target, export)): Path<(String, String)>,
    Query(query): Query<Vec<(String, String)>>,
) -> Result<Response, ApiError> {
    // Only to type the query values; the call itself is authorized (and
    // counted against the rate limit) once, in `invoke`.
    let (id, _) = aliases::resolve_target(&node, &token, &target).await?;
    let text = id.to_string();
    let claims = caller::verify(
        &node,
        &token,
        Request {
            operation: op::INVOKE,
            function: Some(&text),
            ..Default::default()
        },
    )?;
    let (mut params, rest) =
        functions::params_from_query(&node, &claims, &id, &export, query).await?;
    let mut namespace = None;
    for (k, v) in rest {
        if k == "namespace" && namespace.is_none() {
            namespace = Some(v);
        } else {
            // Not a parameter: left in so the call is refused naming it.
            params.insert(k, Value::String(v));
        }
    }
    let req = InvokeRequest {
        function: Some(target),
        export,
        params: Value::Object(params),
        namespace,
        ..Default::default()
    };
    invoked(invoke::invoke(&node, &token, req).await?)
}
