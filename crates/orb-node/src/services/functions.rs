//! Functions: components stored by hash, owned per account. Deploying
//! (validate, compile or load the cached artifact, store), loading for a
//! call (process memory → compiled artifact on disk → compile from the
//! stored bytes), and what the function routes show and delete.

use crate::caller::{self, Claims};
use crate::clock::now_rfc3339;
use crate::metrics as m;
use crate::{ApiError, Node};
use bytes::Bytes;
use orb_core::{ErrorCode, FunctionId, FunctionInfo, OrbError};
use orb_runtime::{CacheSource, LoadedFunction};
use serde_json::json;
use std::sync::Arc;
use std::time::Instant;

pub(crate) fn parse_id(s: &str) -> Result<FunctionId, ApiError> {
    s.parse::<FunctionId>().map_err(|_| {
        ApiError(
            OrbError::new(
                ErrorCode::FunctionNotFound,
                format!(
                    "no function `{s}`: functions are named by their hash, `sha256:` and 64 hex \
                     digits (`orb hash FILE` prints it)"
                ),
            )
            .with_details(json!({ "function": s })),
        )
    })
}

pub(crate) fn not_found(id: &FunctionId) -> ApiError {
    ApiError(
        OrbError::new(
            ErrorCode::FunctionNotFound,
            format!("no function {id} on this node; upload it (POST /v1/functions) and retry"),
        )
        .with_details(json!({ "function": id.to_string() })),
    )
}

fn record_cache(source: CacheSource) {
    match source {
        CacheSource::Memory => metrics::counter!(m::CACHE_HITS, "source" => "memory").increment(1),
        CacheSource::Disk => metrics::counter!(m::CACHE_HITS, "source" => "disk").increment(1),
        CacheSource::Compiled => metrics::counter!(m::CACHE_MISSES).increment(1),
    }
}

/// An account uploads a component: [`deploy`] here, then, on a network,
/// the bytes go into the network's component store and an announcement
/// tells every node (which seed it by their policy). Returns its info and
/// whether it was new to the account.
pub(crate) async fn upload(
    node: &Node,
    token: &caller::Token,
    account: &str,
    bytes: Bytes,
    placement: Option<crate::services::net::PlacementRequest>,
) -> Result<(FunctionInfo, bool), ApiError> {
    let networked = crate::services::net::is_networked(node);
    if placement.is_some() && !networked {
        return Err(ApiError::new(
            ErrorCode::NotNetworked,
            "placement (`min_seeders`, `max_seeders`, `require`) is for a network; this is a single node",
        ));
    }
    let (info, created) = deploy(node, account, bytes.clone()).await?;
    // On a network, announced again when a placement is given: it replaces
    // the function's placement.
    if created || placement.is_some() {
        crate::services::net::announce(node, token, &info, &bytes, placement).await?;
    }
    Ok((info, created))
}

/// Validates, compiles (or loads the cached artifact) and stores a component.
/// Returns its info and whether it was new.
pub(crate) async fn deploy(
    node: &Node,
    account: &str,
    bytes: Bytes,
) -> Result<(FunctionInfo, bool), ApiError> {
    let max = node.config.max_component_bytes;
    if bytes.len() as u64 > max {
        return Err(too_large(bytes.len() as u64, max));
    }
    let id = FunctionId::of(&bytes);
    if let Some(mut info) = node.store.function_info(&id).await? {
        // Stored once; this account now owns it too.
        info.created_at = now_rfc3339();
        let created = node.store.put_function(account, &info, bytes).await?;
        return Ok((info, created));
    }
    let rt = node.runtime.clone();
    let (id2, b2) = (id.clone(), bytes.clone());
    let started = Instant::now();
    let (loaded, source) = tokio::task::spawn_blocking(move || rt.load(&id2, &b2))
        .await
        .map_err(|e| ApiError::new(ErrorCode::Internal, format!("compile task failed: {e}")))??;
    record_cache(source);
    if source == CacheSource::Compiled {
        metrics::histogram!(m::COMPILE_SECONDS).record(started.elapsed().as_secs_f64());
    }
    let info = FunctionInfo {
        hash: id,
        size: bytes.len() as u64,
        exports: loaded.exports(),
        created_at: now_rfc3339(),
    };
    let created = node.store.put_function(account, &info, bytes).await?;
    metrics::counter!(m::FUNCTIONS_STORED).increment(u64::from(created));
    tracing::info!(function = %info.hash, size = info.size, "function stored");
    Ok((info, created))
}

pub(crate) fn too_large(size: u64, max: u64) -> ApiError {
    ApiError(
        OrbError::new(
            ErrorCode::TooLarge,
            format!("the body is {size} bytes; the limit is {max} bytes (max_component_bytes)"),
        )
        .with_details(json!({ "limit": max })),
    )
}

/// Finds a function in memory, in the compile cache or in the store.
pub(crate) async fn load(node: &Node, id: &FunctionId) -> Result<Arc<LoadedFunction>, ApiError> {
    if let Some(f) = node.runtime.get_loaded(id) {
        record_cache(CacheSource::Memory);
        return Ok(f);
    }
    // Known to this node at all?
    if node.store.function_info(id).await?.is_none() {
        return Err(not_found(id));
    }
    let rt = node.runtime.clone();
    let id2 = id.clone();
    if let Some((f, source)) = tokio::task::spawn_blocking(move || rt.load_cached(&id2))
        .await
        .map_err(|e| ApiError::new(ErrorCode::Internal, format!("load task failed: {e}")))?
    {
        record_cache(source);
        return Ok(f);
    }
    let bytes = node
        .store
        .function_bytes(id)
        .await?
        .ok_or_else(|| not_found(id))?;
    let rt = node.runtime.clone();
    let id2 = id.clone();
    let started = Instant::now();
    let (f, source) = tokio::task::spawn_blocking(move || rt.load(&id2, &bytes))
        .await
        .map_err(|e| ApiError::new(ErrorCode::Internal, format!("compile task failed: {e}")))??;
    record_cache(source);
    if source == CacheSource::Compiled {
        metrics::histogram!(m::COMPILE_SECONDS).record(started.elapsed().as_secs_f64());
    }
    Ok(f)
}

/// `GET /v1/functions`: the account's functions; a public token sees only
/// the functions it may run.
pub(crate) async fn list(node: &Node, claims: &Claims) -> Result<Vec<FunctionInfo>, ApiError> {
    let mut all = node.store.list_functions(&claims.account).await?;
    // On a network, also what was announced for the account and is held
    // elsewhere: the same list through every node.
    for f in crate::services::net::announced_elsewhere(node, &claims.account) {
        if !all.iter().any(|held| held.hash == f.hash) {
            all.push(f);
        }
    }
    let mut fns = Vec::with_capacity(all.len());
    for f in all {
        if caller::may_run(node, claims, &f.hash).await? {
            fns.push(f);
        }
    }
    Ok(fns)
}

/// Refuses a function the caller's account does not own, or its public
/// token may not run: to it, the function is not there.
pub(crate) async fn check_owned(
    node: &Node,
    claims: &Claims,
    id: &FunctionId,
) -> Result<(), ApiError> {
    if !crate::services::net::owns(node, &claims.account, id).await?
        || !caller::may_run(node, claims, id).await?
    {
        return Err(not_found(id));
    }
    Ok(())
}

/// `GET /v1/functions/{target}` (ownership checked by [`check_owned`]).
pub(crate) async fn show(
    node: &Node,
    claims: &Claims,
    id: &FunctionId,
) -> Result<FunctionInfo, ApiError> {
    let held = node
        .store
        .list_functions(&claims.account)
        .await?
        .into_iter()
        .find(|f| &f.hash == id);
    held.or_else(|| {
        crate::services::net::announced_elsewhere(node, &claims.account)
            .into_iter()
            .find(|f| &f.hash == id)
    })
    .ok_or_else(|| not_found(id))
}

/// `DELETE /v1/functions/{target}`: the account's ownership; the bytes and
/// the compiled function go when no account owns it any more.
/// On a network, the account's claim goes from every node: a deprecation
/// is announced first (a network that does not take it: nothing changes).
pub(crate) async fn delete(node: &Node, claims: &Claims, id: &FunctionId) -> Result<(), ApiError> {
    if !crate::services::net::owns(node, &claims.account, id).await? {
        return Err(not_found(id));
    }
    crate::services::net::deprecate(node, &claims.account, id).await?;
    let (existed, removed) = node.store.delete_function(&claims.account, id).await?;
    if !existed && !crate::services::net::is_networked(node) {
        return Err(not_found(id));
    }
    if removed {
        node.runtime.forget(id);
    }
    Ok(())
}

/// The most sample calls a deploy runs (one per export, in order).
const MAX_SAMPLES: usize = 16;

/// The longest a sample call may run (under the node's own limit): a
/// deploy waits for its samples, one after the other.
const SAMPLE_TIMEOUT_MS: u64 = 1_000;

/// The sample calls of a function deployed to a network (seed 001's
/// "complexity"): each export called once with the plainest parameters its
/// signature takes, an HTTP handler sent `GET /`, on a fresh instance with
/// the node's limits (and at most [`SAMPLE_TIMEOUT_MS`]), no namespace and
/// no outbound HTTP. Nothing is stored; a failure is recorded, not
/// returned.
pub(crate) async fn sample(node: &Node, f: &LoadedFunction) -> Vec<orb_core::SampleCall> {
    let mut limits = node.runtime.limits().clone();
    limits.timeout_ms = limits.timeout_ms.min(SAMPLE_TIMEOUT_MS);
    let mut out = Vec::new();
    for e in f.exports().into_iter().take(MAX_SAMPLES) {
        let started = Instant::now();
        let run = if f.is_http() && e.name.starts_with("wasi:http/incoming-handler@") {
            let mut req = hyper::Request::new(http_body_util::Full::new(Bytes::new()));
            *req.uri_mut() = hyper::Uri::from_static("http://sample.invalid/");
            let opts = orb_runtime::HttpRequestOptions {
                limits: Some(limits.clone()),
                max_request_bytes: node.config.max_http_request_bytes,
                max_response_bytes: node.config.max_http_response_bytes,
                https: false,
                outbound: None,
                kv: None,
                globals: Vec::new(),
            };
            let run = node.runtime.serve_http_to_end(f, req, opts).await;
            Some((run.outcome.fuel, run.outcome.error.map(|e| e.code)))
        } else {
            match f
                .sample_params(&e.name)
                .map(|p| f.check_params(&e.name, &p))
            {
                Some(Ok(checked)) => {
                    let outcome = node
                        .runtime
                        .call(
                            f,
                            checked,
                            orb_runtime::CallRequest {
                                limits: Some(limits.clone()),
                                ..Default::default()
                            },
                        )
                        .await;
                    Some((outcome.fuel, outcome.result.err().map(|e| e.code)))
                }
                _ => None,
            }
        };
        let (fuel, error) = run.unwrap_or((0, Some("no_sample".to_string())));
        out.push(orb_core::SampleCall {
            export: e.name,
            fuel,
            duration_us: started.elapsed().as_micros() as u64,
            error,
        });
    }
    out
}

/// The parameters of a call of `export` typed from query text
/// (`GET /v1/functions/{hash}/{export}?name=value…`), for an account that
/// owns the function: the typed parameters and the pairs that are not
/// parameters.
pub(crate) async fn params_from_query(
    node: &Node,
    claims: &Claims,
    id: &FunctionId,
    export: &str,
    query: Vec<(String, String)>,
) -> Result<
    (
        serde_json::Map<String, serde_json::Value>,
        Vec<(String, String)>,
    ),
    ApiError,
> {
    if !crate::services::net::owns(node, &claims.account, id).await? {
        return Err(not_found(id));
    }
    let f = match load(node, id).await {
        // On a network, a node that does not hold it fetches it to type the
        // text (it then holds it, without seeding it).
        Err(e)
            if e.0.code == ErrorCode::FunctionNotFound.as_str()
                && crate::services::net::is_networked(node) =>
        {
            let bytes = crate::services::net::fetch(node, id).await?;
            deploy(node, &claims.account, bytes).await?;
            load(node, id).await?
        }
        other => other?,
    };
    Ok(f.params_from_text(export, query)?)
}
