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

/// Upload a component.
///
/// The body is the component's bytes. It is validated fully (component
/// header, wasmtime validation, linking against the node's interfaces)
/// before anything is stored; its id is the SHA-256 of its bytes, so an
/// upload of known bytes stores nothing (200).
#[utoipa::path(post, path = "/v1/functions", tag = "functions",
    extensions(
        ("x-orb-checked-against-the-function" = json!(["invalid_component", "unsupported_import"])),
        ("x-orb-cross-field" = json!([{"rule": "min_seeders <= max_seeders", "codes": ["invalid_request"]}])),
    ),
    params(
        ("min_seeders" = Option<u32>, Query, minimum = 1, maximum = 64, description = "On a network: how many nodes should seed the function (default 1). A single node answers 404 `not_networked` to any placement"),
        ("max_seeders" = Option<u32>, Query, minimum = 1, maximum = 64, description = "On a network: at most this many seeders; not less than `min_seeders`"),
        ("require" = Option<Vec<String>>, Query, style = Form, explode, description = "On a network: `key=value` attributes a seeder must have (repeatable, e.g. `require=region=eu`)", example = json!(["region=eu"])),
    ),
    request_body(content(
        (super::openapi::Component = "application/wasm"),
        (super::openapi::Component = "application/octet-stream"),
    ), description = "The component's bytes"),
    responses(
        (status = 201, description = "Stored", body = orb_core::FunctionInfo),
        (status = 200, description = "Already stored (same bytes)", body = orb_core::FunctionInfo),
        (status = 400, description = "invalid_component (not a component, or an unsupported feature), unsupported_import (imports an interface this node does not provide), invalid_request (a placement that is not valid)"),
        (status = 404, description = "not_networked: a placement (`min_seeders`, `max_seeders`, `require`) sent to a single node"),
        (status = 503, description = "network_unavailable: on a network, no super node is live to validate and announce the upload (or NATS did not answer); upload it again"),
    ))]
pub(super) async fn upload(
    State(node): S,
    headers: HeaderMap,
    token: Token,
    Query(query): Query<Vec<(String, String)>>,
    body: Body,
) -> Result<Response, ApiError> {
    let allowed = async {
        let req = Request::op(op::FUNCTIONS_WRITE);
        let claims = caller::authorize(&node, &token, req).await?;
        caller::require_upload(&claims)?;
        let placement = net::PlacementRequest::from_query(&query)?;
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
    let (info, created) =
        functions::upload(&node, &token, &claims.account, bytes, placement).await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(info)).into_response())
}

/// List the account's functions.
#[utoipa::path(get, path = "/v1/functions", tag = "functions",
    responses((status = 200, description = "The functions", body = super::openapi::FunctionList)))]
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
    caller::authenticate(node, token)?;
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

/// Show a function: its size and exports with their signatures.
#[utoipa::path(get, path = "/v1/functions/{target}", tag = "functions",
    params(("target" = String, Path, description = "A hash (`sha256:<hex>`) or an alias of the token's account", example = "sha256:2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae")),
    responses(
        (status = 200, description = "The function", body = orb_core::FunctionInfo),
        (status = 400, description = "invalid_function_id"),
        (status = 404, description = "function_not_found, alias_not_found"),
    ))]
pub(super) async fn show_function(
    State(node): S,
    token: Token,
    Path(target): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let (claims, id) = owned(&node, &token, &target, op::FUNCTIONS_READ).await?;
    let info = functions::show(&node, &claims, &id).await?;
    Ok(Json(serde_json::to_value(info).expect("serialisable")))
}

/// Delete a function (private token).
#[utoipa::path(delete, path = "/v1/functions/{target}", tag = "functions",
    params(("target" = String, Path, description = "A hash (`sha256:<hex>`) or an alias of the token's account", example = "sha256:2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 400, description = "invalid_function_id"),
        (status = 404, description = "function_not_found, alias_not_found"),
    ))]
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

/// Call a function.
///
/// By hash, by alias, or with the component inline (`component`, base64:
/// stored and run in one round trip). `async: true` queues the call and
/// answers 202; poll `GET /v1/activations/{id}?wait=5s`.
#[utoipa::path(post, path = "/v1/invoke", tag = "functions",
    extensions(
        ("x-orb-checked-against-the-function" = json!(["invalid_params", "invalid_component", "unsupported_import"])),
        ("x-orb-cross-field" = json!([{"rule": "with component, function is its hash", "codes": ["invalid_request", "invalid_function_id"]}, {"rule": "set and write_to need a namespace", "codes": ["invalid_request"]}])),
    ),
    request_body = crate::services::calls::InvokeRequest,
    responses(
        (status = 200, description = "The call's result", body = crate::services::calls::InvokeResponse),
        (status = 202, description = "Queued (`async: true`)", body = super::openapi::Queued),
        (status = 400, description = "invalid_params (nothing ran), invalid_function_id, invalid_component, unsupported_import, invalid_name"),
        (status = 404, description = "function_not_found (upload it, then retry), export_not_found, alias_not_found"),
        (status = 409, description = "conflict: concurrent calls kept changing what this call read"),
        (status = 422, description = "function_trap, function_timeout, memory_limit, fuel_exhausted, function_bad_result"),
        (status = 429, description = "rate_limited, queue_full"),
    ))]
pub(super) async fn invoke_handler(
    State(node): S,
    token: Token,
    body: Body,
) -> Result<Response, ApiError> {
    if let Err(e) = caller::authenticate(&node, &token) {
        drain(body).await;
        return Err(e);
    }
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

/// Call an export with named parameters (the body: a JSON object).
#[utoipa::path(post, path = "/v1/functions/{target}/{export}", tag = "functions",
    extensions(("x-orb-checked-against-the-function" = json!(["invalid_params"]))),
    params(("target" = String, Path, description = "A hash (`sha256:<hex>`) or an alias of the token's account", example = "sha256:2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae"), ("export" = String, Path, description = "The export: `greet` for a world-level function, `pkg:name/iface#func` inside an interface", example = "greet")),
    request_body(content = Option<Object>, description = "The named parameters", example = json!({"name": "world"})),
    responses(
        (status = 200, description = "The call's result", body = crate::services::calls::InvokeResponse),
        (status = 400, description = "invalid_params (nothing ran), invalid_function_id"),
        (status = 404, description = "function_not_found, export_not_found, alias_not_found"),
        (status = 409, description = "conflict"),
        (status = 422, description = "function_trap, function_timeout, memory_limit, fuel_exhausted, function_bad_result"),
    ))]
pub(super) async fn call_post(
    State(node): S,
    token: Token,
    Path((target, export)): Path<(String, String)>,
    body: Body,
) -> Result<Response, ApiError> {
    if let Err(e) = caller::authenticate(&node, &token) {
        drain(body).await;
        return Err(e);
    }
    let bytes = read_body(body, json_limit(&node)).await?;
    let params: Value = super::json_any(&bytes)?;
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
/// Call an export; the query's pairs are its parameters.
///
/// Values are typed by the export's signature (strings stay strings; other
/// types parse as JSON). `namespace` is the call's namespace unless the
/// export has a parameter of that name.
#[utoipa::path(get, path = "/v1/functions/{target}/{export}", tag = "functions",
    extensions(("x-orb-checked-against-the-function" = json!(["invalid_params"]))),
    params(("target" = String, Path, description = "A hash (`sha256:<hex>`) or an alias of the token's account", example = "sha256:2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae"), ("export" = String, Path, description = "The export: `greet` for a world-level function, `pkg:name/iface#func` inside an interface", example = "greet"),
        ("namespace" = Option<String>, Query, description = "The namespace the call reads and writes"),
    ),
    responses(
        (status = 200, description = "The call's result", body = crate::services::calls::InvokeResponse),
        (status = 400, description = "invalid_params (nothing ran), invalid_function_id"),
        (status = 404, description = "function_not_found, export_not_found, alias_not_found"),
        (status = 409, description = "conflict"),
        (status = 422, description = "function_trap, function_timeout, memory_limit, fuel_exhausted, function_bad_result"),
    ))]
pub(super) async fn call_get(
    State(node): S,
    token: Token,
    Path((target, export)): Path<(String, String)>,
    Query(query): Query<Vec<(String, String)>>,
) -> Result<Response, ApiError> {
    caller::authenticate(&node, &token)?;
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
