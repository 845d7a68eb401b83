//! Routes. Every error is `{"error": {"code", "message", "details"}}`.

use crate::invoke::{self, InvokeRequest, parse_id, too_large};
use crate::{ApiError, Node};
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use orb_core::ErrorCode;
use orb_store::ActivationQuery;
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;
use tower_http::cors::CorsLayer;

type S = State<Arc<Node>>;

static OPENAPI: &str = include_str!("openapi.json");

pub fn router(node: Arc<Node>) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .route("/v1/openapi.json", get(openapi))
        .route("/v1/functions", post(upload).get(list_functions))
        .route(
            "/v1/functions/{target}",
            get(show_function).delete(delete_function),
        )
        .route(
            "/v1/functions/{target}/{export}",
            post(call_post).get(call_get),
        )
        .route("/v1/invoke", post(invoke_handler))
        .route("/v1/activations", get(list_activations))
        .route("/v1/activations/{id}", get(show_activation))
        .fallback(fallback)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(CorsLayer::permissive())
        .layer(tower_http::trace::TraceLayer::new_for_http())
        .with_state(node)
}

async fn fallback() -> ApiError {
    ApiError::new(
        ErrorCode::NotFound,
        "no such route; see GET /v1/openapi.json",
    )
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        ErrorCode::MethodNotAllowed,
        "this method is not allowed on this route; see GET /v1/openapi.json",
    )
}

async fn healthz() -> Json<Value> {
    Json(json!({ "status": "ok", "version": env!("CARGO_PKG_VERSION") }))
}

async fn metrics(State(node): S) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        node.metrics.render(),
    )
        .into_response()
}

async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI).into_response()
}

/// Reads a body up to `limit` bytes; larger → 413 `too_large`. A too-large
/// body is still drained (up to a cap) so the client reads the 413 instead of
/// a reset connection.
async fn read_body(mut body: Body, limit: u64) -> Result<bytes::Bytes, ApiError> {
    use http_body_util::BodyExt as _;
    const DRAIN_CAP: u64 = 256 << 20;
    let mut buf = bytes::BytesMut::new();
    let mut seen: u64 = 0;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| {
            ApiError::new(
                ErrorCode::InvalidRequest,
                format!("could not read the body: {e}"),
            )
        })?;
        if let Ok(data) = frame.into_data() {
            seen += data.len() as u64;
            if seen <= limit {
                buf.extend_from_slice(&data);
            } else if seen > limit.saturating_add(DRAIN_CAP) {
                break;
            }
        }
    }
    if seen > limit {
        return Err(too_large(seen, limit));
    }
    Ok(buf.freeze())
}

fn json_body<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    if bytes.is_empty() {
        return serde_json::from_slice(b"{}").map_err(|e| {
            ApiError::new(
                ErrorCode::InvalidRequest,
                format!("the body must be JSON: {e}"),
            )
        });
    }
    serde_json::from_slice(bytes).map_err(|e| {
        ApiError::new(
            ErrorCode::InvalidRequest,
            format!("the body is not valid JSON for this route: {e}"),
        )
    })
}

fn json_limit(node: &Node) -> u64 {
    // Room for an inline base64 component plus parameters.
    node.config.max_component_bytes / 3 * 4 + (1 << 20)
}

async fn upload(State(node): S, headers: HeaderMap, body: Body) -> Result<Response, ApiError> {
    let max = node.config.max_component_bytes;
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if let Some(len) = declared
        && len > max.saturating_add(256 << 20)
    {
        // Too big to be worth draining: answer now.
        return Err(too_large(len, max));
    }
    let bytes = read_body(body, max).await?;
    if bytes.is_empty() {
        return Err(ApiError::new(
            ErrorCode::InvalidComponent,
            "the body is empty; send the component's bytes (Content-Type: application/wasm)",
        ));
    }
    let (info, created) = invoke::deploy(&node, bytes).await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(info)).into_response())
}

async fn list_functions(State(node): S) -> Result<Json<Value>, ApiError> {
    let fns = node.store.list_functions().await?;
    Ok(Json(json!({ "functions": fns })))
}

async fn show_function(
    State(node): S,
    Path(target): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let id = parse_id(&target)?;
    match node.store.function_info(&id).await? {
        Some(info) => Ok(Json(serde_json::to_value(info).expect("serialisable"))),
        None => Err(invoke::not_found(&id)),
    }
}

async fn delete_function(
    State(node): S,
    Path(target): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id = parse_id(&target)?;
    if node.store.delete_function(&id).await? {
        node.runtime.forget(&id);
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::new(
            ErrorCode::FunctionNotFound,
            format!("no function {id} on this node"),
        ))
    }
}

async fn invoke_handler(State(node): S, body: Body) -> Result<Response, ApiError> {
    let bytes = read_body(body, json_limit(&node)).await?;
    let req: InvokeRequest = json_body(&bytes)?;
    let resp = invoke::invoke(&node, req).await?;
    Ok(Json(resp).into_response())
}

async fn call_post(
    State(node): S,
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
    Ok(Json(invoke::invoke(&node, req).await?).into_response())
}

/// `GET /v1/functions/{hash}/{export}?name=value…`: query values are typed by
/// the export's signature (strings stay strings; other types parse as JSON).
async fn call_get(
    State(node): S,
    Path((target, export)): Path<(String, String)>,
    Query(query): Query<Vec<(String, String)>>,
) -> Result<Response, ApiError> {
    let id = parse_id(&target)?;
    let f = invoke::load(&node, &id).await?;
    let sig = f
        .exports()
        .into_iter()
        .find(|e| e.name == export || e.name.ends_with(&format!("#{export}")));
    let mut params = Map::new();
    for (k, v) in query {
        let ty = sig
            .as_ref()
            .and_then(|s| s.params.iter().find(|p| p.name == k))
            .map(|p| p.ty.as_str())
            .unwrap_or("");
        let stringy =
            ty == "string" || ty == "char" || ty == "option<string>" || ty.starts_with("enum");
        let value = if stringy {
            Value::String(v)
        } else {
            serde_json::from_str(&v).unwrap_or(Value::String(v))
        };
        params.insert(k, value);
    }
    let req = InvokeRequest {
        function: Some(target),
        export,
        params: Value::Object(params),
        ..Default::default()
    };
    Ok(Json(invoke::invoke(&node, req).await?).into_response())
}

async fn list_activations(
    State(node): S,
    Query(q): Query<BTreeMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let limit = match q.get("limit") {
        Some(l) => l.parse::<usize>().map_err(|_| {
            ApiError::new(
                ErrorCode::InvalidRequest,
                format!("`limit` must be a positive integer, got `{l}`"),
            )
        })?,
        None => 50,
    };
    let function = q.get("function").map(|f| parse_id(f)).transpose()?;
    let before = q.get("before").cloned();
    let acts = node
        .store
        .list_activations(&ActivationQuery {
            function,
            before,
            limit,
        })
        .await?;
    Ok(Json(json!({ "activations": acts })))
}

async fn show_activation(State(node): S, Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    match node.store.get_activation(&id).await? {
        Some(a) => Ok(Json(serde_json::to_value(a).expect("serialisable"))),
        None => Err(ApiError::new(
            ErrorCode::ActivationNotFound,
            format!("no activation `{id}` (it may have been pruned)"),
        )),
    }
}
