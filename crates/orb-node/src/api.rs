//! Routes. Every error is `{"error": {"code", "message", "details"}}`.

use crate::auth::{self, Request, op};
use crate::invoke::{self, InvokeRequest, parse_id, too_large};
use crate::{ApiError, Node};
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use axum::{Json, Router};
use orb_core::{ErrorCode, OrbError};
use orb_store::ActivationQuery;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::sync::Arc;
use tower_http::cors::CorsLayer;

type S = State<Arc<Node>>;

static OPENAPI: &str = include_str!("openapi.json");
/// The browser client (an ES module, no build step).
static BROWSER_SDK: &str = include_str!("../static/orb.js");

pub fn router(node: Arc<Node>) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .route("/v1/openapi.json", get(openapi))
        .route("/sdk/orb.js", get(browser_sdk))
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
        .route("/v1/dead-letters", get(list_dead_letters))
        .route(
            "/v1/dead-letters/{id}",
            axum::routing::delete(delete_dead_letter),
        )
        .route("/v1/aliases", get(list_aliases))
        .route(
            "/v1/aliases/{name}",
            get(show_alias).put(put_alias).delete(delete_alias),
        )
        .route("/v1/aliases/{name}/rollback", post(rollback_alias))
        .route("/v1/schedules", post(post_schedule).get(list_schedules))
        .route(
            "/v1/schedules/{id}",
            get(show_schedule).delete(delete_schedule),
        )
        .route("/v1/accounts", post(post_account))
        .route("/v1/tokens", post(post_token))
        .route("/v1/tokens/revoke", post(post_revoke))
        .route("/v1/tokens/rotate", post(post_rotate))
        .route(
            "/v1/namespaces/{ns}/whitelist",
            get(get_whitelist).put(put_whitelist),
        )
        .route("/v1/auth/public-key", get(public_key))
        .route("/v1/namespaces", get(list_namespaces))
        .route("/v1/namespaces/{ns}/keys", get(list_keys))
        .route("/v1/namespaces/{ns}/export", get(export_ns))
        .route("/v1/namespaces/{ns}/watch", get(watch_ns))
        .route("/v1/namespaces/{ns}/import", post(import_ns))
        .route(
            "/v1/namespaces/{ns}/keys/{*key}",
            get(get_key).put(put_key).delete(delete_key),
        )
        .merge(crate::triggers::routes())
        .merge(crate::kappa::routes())
        .merge(crate::outbound::routes())
        .route("/http/{*target_and_path}", any(crate::http::handle))
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

async fn metrics(State(node): S, headers: HeaderMap) -> Response {
    if !node.config.open_health
        && let Err(e) = auth::authorize(
            &node,
            &headers,
            Request {
                operation: "metrics.read",
                ..Default::default()
            },
        )
        .await
    {
        return e.into_response();
    }
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        node.metrics.render(),
    )
        .into_response()
}

async fn browser_sdk() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        BROWSER_SDK,
    )
        .into_response()
}

async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI).into_response()
}

/// Reads a body up to `limit` bytes; larger → 413 `too_large`. A too-large
/// body is still drained (up to a cap) so the client reads the 413 instead of
/// a reset connection.
pub(crate) async fn read_body(mut body: Body, limit: u64) -> Result<bytes::Bytes, ApiError> {
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
        return Err(ApiError(
            OrbError::new(
                ErrorCode::TooLarge,
                format!("the body is {seen} bytes; this endpoint takes at most {limit} bytes (see the limits in orb.toml)"),
            )
            .with_details(json!({ "limit": limit })),
        ));
    }
    Ok(buf.freeze())
}

/// Reads and drops a refused request's body (up to the drain cap), so the
/// client reads the error instead of a broken connection.
async fn drain(body: Body) {
    let _ = read_body(body, 0).await;
}

pub(crate) fn json_body<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
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
    let allowed = async {
        let req = Request::op(op::FUNCTIONS_WRITE);
        let claims = auth::authorize(&node, &headers, req).await?;
        auth::require_upload(&claims)?;
        Ok::<_, ApiError>(claims)
    };
    let claims = match allowed.await {
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
        return Err(too_large(len, max));
    }
    let bytes = read_body(body, max).await?;
    if bytes.is_empty() {
        return Err(ApiError::new(
            ErrorCode::InvalidComponent,
            "the body is empty; send the component's bytes (Content-Type: application/wasm)",
        ));
    }
    let (info, created) = invoke::deploy(&node, &claims.account, bytes).await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(info)).into_response())
}

async fn list_functions(State(node): S, headers: HeaderMap) -> Result<Json<Value>, ApiError> {
    let claims = auth::authorize(&node, &headers, Request::op(op::FUNCTIONS_READ)).await?;
    let all = node.store.list_functions(&claims.account).await?;
    // A public token sees only the functions it may run.
    let mut fns = Vec::with_capacity(all.len());
    for f in all {
        if auth::may_run(&node, &claims, &f.hash).await? {
            fns.push(f);
        }
    }
    Ok(Json(json!({ "functions": fns })))
}

async fn owned(
    node: &Node,
    headers: &HeaderMap,
    target: &str,
    operation: &str,
) -> Result<(auth::Claims, orb_core::FunctionId), ApiError> {
    let (id, _) = crate::aliases::resolve_target(node, headers, target).await?;
    let text = id.to_string();
    let claims = auth::authorize(
        node,
        headers,
        Request {
            operation,
            function: Some(&text),
            ..Default::default()
        },
    )
    .await?;
    // A function a public token may not run is, to it, not there.
    if !node.store.owns(&claims.account, &id).await? || !auth::may_run(node, &claims, &id).await? {
        return Err(invoke::not_found(&id));
    }
    Ok((claims, id))
}

async fn show_function(
    State(node): S,
    headers: HeaderMap,
    Path(target): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let (claims, id) = owned(&node, &headers, &target, op::FUNCTIONS_READ).await?;
    let info = node
        .store
        .list_functions(&claims.account)
        .await?
        .into_iter()
        .find(|f| f.hash == id)
        .ok_or_else(|| invoke::not_found(&id))?;
    Ok(Json(serde_json::to_value(info).expect("serialisable")))
}

async fn delete_function(
    State(node): S,
    headers: HeaderMap,
    Path(target): Path<String>,
) -> Result<StatusCode, ApiError> {
    let (claims, id) = owned(&node, &headers, &target, op::FUNCTIONS_WRITE).await?;
    auth::require_private(&claims, "deleting functions")?;
    let (existed, removed) = node.store.delete_function(&claims.account, &id).await?;
    if !existed {
        return Err(invoke::not_found(&id));
    }
    if removed {
        node.runtime.forget(&id);
    }
    Ok(StatusCode::NO_CONTENT)
}

async fn invoke_handler(
    State(node): S,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let bytes = read_body(body, json_limit(&node)).await?;
    let req: InvokeRequest = json_body(&bytes)?;
    invoked(invoke::invoke(&node, &headers, req).await?)
}

fn invoked(i: invoke::Invoked) -> Result<Response, ApiError> {
    Ok(match i {
        invoke::Invoked::Done(resp) => Json(resp).into_response(),
        invoke::Invoked::Queued(body) => (StatusCode::ACCEPTED, Json(body)).into_response(),
    })
}

async fn call_post(
    State(node): S,
    headers: HeaderMap,
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
    invoked(invoke::invoke(&node, &headers, req).await?)
}

/// `GET /v1/functions/{hash}/{export}?name=value…`: query values are typed by
/// the export's signature (strings stay strings; other types parse as JSON).
/// `namespace` is taken as the call's namespace unless the export has a
/// parameter of that name.
async fn call_get(
    State(node): S,
    headers: HeaderMap,
    Path((target, export)): Path<(String, String)>,
    Query(query): Query<Vec<(String, String)>>,
) -> Result<Response, ApiError> {
    // Only to type the query values; the call itself is authorized (and
    // counted against the rate limit) once, in `invoke`.
    let (id, _) = crate::aliases::resolve_target(&node, &headers, &target).await?;
    let text = id.to_string();
    let claims = auth::verify(
        &node,
        &headers,
        Request {
            operation: op::INVOKE,
            function: Some(&text),
            ..Default::default()
        },
    )?;
    if !node.store.owns(&claims.account, &id).await? {
        return Err(invoke::not_found(&id));
    }
    let f = invoke::load(&node, &id).await?;
    let (mut params, rest) = f.params_from_text(&export, query)?;
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
    invoked(invoke::invoke(&node, &headers, req).await?)
}

async fn list_activations(
    State(node): S,
    headers: HeaderMap,
    Query(q): Query<BTreeMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let claims = auth::authorize(&node, &headers, Request::op(op::ACTIVATIONS_READ)).await?;
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
    let mut before = q.get("before").cloned();
    // A public token sees only the activations of its own lineage: pages
    // of the account's are read and filtered until `limit` are found.
    let mut acts = Vec::new();
    for _ in 0..MAX_PAGES {
        let page = node
            .store
            .list_activations(&ActivationQuery {
                account: claims.account.clone(),
                function: function.clone(),
                before: before.clone(),
                limit,
            })
            .await?;
        let done = page.len() < limit;
        before = page.last().map(|a| a.id.clone());
        acts.extend(
            page.into_iter()
                .filter(|a| auth::sees(&claims, a.lineage.as_deref())),
        );
        if done || acts.len() >= limit || before.is_none() {
            break;
        }
    }
    acts.truncate(limit);
    Ok(Json(json!({ "activations": acts })))
}

/// Pages of the account's activations a public token's listing reads.
const MAX_PAGES: usize = 20;

/// Longest `?wait=` of `GET /v1/activations/{id}`.
const MAX_WAIT: std::time::Duration = std::time::Duration::from_secs(60);

/// `GET /v1/activations/{id}[?wait=5s]`: with `wait`, a queued or running
/// asynchronous call is waited for (long poll, at most 60 s).
async fn show_activation(
    State(node): S,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(q): Query<BTreeMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let claims = auth::authorize(&node, &headers, Request::op(op::ACTIVATIONS_READ)).await?;
    if let Some(wait) = q.get("wait") {
        let wait = humantime::parse_duration(wait).map_err(|e| {
            ApiError::new(
                ErrorCode::InvalidRequest,
                format!("`wait` `{wait}` is not a duration like `5s`: {e}"),
            )
        })?;
        let owned = node.store.get_activation(&id).await?.is_some_and(|a| {
            a.account == claims.account && auth::sees(&claims, a.lineage.as_deref())
        });
        if owned {
            crate::queue::wait_final(&node, &id, wait.min(MAX_WAIT)).await;
        }
    }
    match node.store.get_activation(&id).await? {
        Some(a) if a.account == claims.account && auth::sees(&claims, a.lineage.as_deref()) => {
            Ok(Json(serde_json::to_value(a).expect("serialisable")))
        }
        _ => Err(ApiError::new(
            ErrorCode::ActivationNotFound,
            format!("no activation `{id}` (it may have been pruned)"),
        )),
    }
}

async fn post_account(
    State(node): S,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let bytes = read_body(body, 64 << 10).await?;
    let req: auth::NewAccount = json_body(&bytes)?;
    let out = auth::post_account(&node, &headers, req).await?;
    Ok((StatusCode::CREATED, Json(out)).into_response())
}

async fn post_token(State(node): S, headers: HeaderMap, body: Body) -> Result<Response, ApiError> {
    let bytes = read_body(body, 64 << 10).await?;
    let req: auth::MintRequest = json_body(&bytes)?;
    let out = auth::post_token(&node, &headers, req).await?;
    Ok((StatusCode::CREATED, Json(out)).into_response())
}

async fn post_revoke(
    State(node): S,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Value>, ApiError> {
    let bytes = read_body(body, 64 << 10).await?;
    let req: auth::RevokeRequest = json_body(&bytes)?;
    Ok(Json(auth::post_revoke(&node, &headers, req).await?))
}

async fn post_rotate(State(node): S, headers: HeaderMap) -> Result<Json<Value>, ApiError> {
    Ok(Json(auth::post_rotate(&node, &headers).await?))
}

async fn put_whitelist(
    State(node): S,
    headers: HeaderMap,
    Path(ns): Path<String>,
    body: Body,
) -> Result<Json<Value>, ApiError> {
    let bytes = read_body(body, 1 << 20).await?;
    let req: Value = json_body(&bytes)?;
    Ok(Json(auth::put_whitelist(&node, &headers, &ns, req).await?))
}

async fn get_whitelist(
    State(node): S,
    headers: HeaderMap,
    Path(ns): Path<String>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(auth::get_whitelist(&node, &headers, &ns).await?))
}

/// The root public key: enough for anyone to verify Orb tokens offline.
async fn public_key(State(node): S) -> Json<Value> {
    Json(json!({ "public_key": node.auth.public_key_text() }))
}

async fn list_namespaces(State(node): S, headers: HeaderMap) -> Result<Json<Value>, ApiError> {
    Ok(Json(crate::kv::list_namespaces(&node, &headers).await?))
}

async fn list_keys(
    State(node): S,
    headers: HeaderMap,
    Path(ns): Path<String>,
    Query(q): Query<BTreeMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(crate::kv::list_keys(&node, &headers, &ns, &q).await?))
}

async fn get_key(
    State(node): S,
    headers: HeaderMap,
    Path((ns, key)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    crate::kv::get_key(&node, &headers, &ns, &key).await
}

async fn put_key(
    State(node): S,
    headers: HeaderMap,
    Path((ns, key)): Path<(String, String)>,
    body: Body,
) -> Result<Json<Value>, ApiError> {
    let bytes = read_body(body, node.config.max_value_bytes as u64).await?;
    Ok(Json(
        crate::kv::put_key(&node, &headers, &ns, &key, &bytes).await?,
    ))
}

async fn delete_key(
    State(node): S,
    headers: HeaderMap,
    Path((ns, key)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    crate::kv::delete_key(&node, &headers, &ns, &key).await
}

async fn export_ns(
    State(node): S,
    headers: HeaderMap,
    Path(ns): Path<String>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(crate::kv::export(&node, &headers, &ns).await?))
}

async fn import_ns(
    State(node): S,
    headers: HeaderMap,
    Path(ns): Path<String>,
    body: Body,
) -> Result<Json<Value>, ApiError> {
    let bytes = read_body(body, 256 << 20).await?;
    let v: Value = json_body(&bytes)?;
    Ok(Json(crate::kv::import(&node, &headers, &ns, v).await?))
}

async fn watch_ns(
    State(node): S,
    headers: HeaderMap,
    Path(ns): Path<String>,
    Query(q): Query<BTreeMap<String, String>>,
) -> Result<Response, ApiError> {
    let prefix = q.get("prefix").cloned().unwrap_or_default();
    Ok(crate::kv::watch(&node, &headers, &ns, prefix)
        .await?
        .into_response())
}

async fn list_dead_letters(State(node): S, headers: HeaderMap) -> Result<Json<Value>, ApiError> {
    let claims = auth::authorize(&node, &headers, Request::op(op::ACTIVATIONS_READ)).await?;
    Ok(Json(crate::queue::dead_letters(&node, &claims).await?))
}

async fn delete_dead_letter(
    State(node): S,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let claims = auth::authorize(&node, &headers, Request::op(op::ACTIVATIONS_WRITE)).await?;
    if crate::queue::forget_dead_letter(&node, &claims, &id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::new(
            ErrorCode::ActivationNotFound,
            format!("no dead letter `{id}`"),
        ))
    }
}

async fn list_aliases(State(node): S, headers: HeaderMap) -> Result<Json<Value>, ApiError> {
    Ok(Json(crate::aliases::list(&node, &headers).await?))
}

async fn show_alias(
    State(node): S,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(crate::aliases::show(&node, &headers, &name).await?))
}

async fn put_alias(
    State(node): S,
    headers: HeaderMap,
    Path(name): Path<String>,
    body: Body,
) -> Result<Json<Value>, ApiError> {
    let bytes = read_body(body, 64 << 10).await?;
    let body: Value = json_body(&bytes)?;
    Ok(Json(
        crate::aliases::set(&node, &headers, &name, body).await?,
    ))
}

async fn delete_alias(
    State(node): S,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    crate::aliases::delete(&node, &headers, &name).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn rollback_alias(
    State(node): S,
    headers: HeaderMap,
    Path(name): Path<String>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(
        crate::aliases::rollback(&node, &headers, &name).await?,
    ))
}

async fn post_schedule(
    State(node): S,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let bytes = read_body(body, 1 << 20).await?;
    let req: crate::schedules::ScheduleRequest = json_body(&bytes)?;
    let out = crate::schedules::create(&node, &headers, req).await?;
    Ok((StatusCode::CREATED, Json(out)).into_response())
}

async fn list_schedules(State(node): S, headers: HeaderMap) -> Result<Json<Value>, ApiError> {
    Ok(Json(crate::schedules::list(&node, &headers).await?))
}

async fn show_schedule(
    State(node): S,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(crate::schedules::show(&node, &headers, &id).await?))
}

async fn delete_schedule(
    State(node): S,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    crate::schedules::delete(&node, &headers, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
