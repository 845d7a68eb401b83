//! `/http/{alias-or-hash}/…`: HTTP functions. The handler checks the node
//! is up, splits the path, finds who runs what ([`http::route`]: the token's
//! call rules, or a public alias) and applies the anonymous per-address
//! rate; the service serves the request.

use super::S;
use crate::ApiError;
use crate::caller::Token;
use crate::services::http;
use axum::extract::State;
use axum::http::Uri;
use axum::response::{IntoResponse, Response};
use orb_core::{ErrorCode, OrbError};
use serde_json::json;
use std::sync::atomic::Ordering;

/// `ANY /http/{target}` and `ANY /http/{target}/{rest…}` (one catch-all
/// route, so `/http/{target}/` is served too).
pub(super) async fn handle(State(node): S, token: Token, req: axum::extract::Request) -> Response {
    match serve(&node, &token, req).await {
        Ok(resp) => resp,
        Err(e) => e.into_response(),
    }
}

async fn serve(
    node: &std::sync::Arc<crate::Node>,
    token: &Token,
    req: axum::extract::Request,
) -> Result<Response, ApiError> {
    if node.shutting_down.load(Ordering::SeqCst) {
        return Err(ApiError::new(
            ErrorCode::ShuttingDown,
            "the node is shutting down; retry on another node",
        ));
    }
    let (target, rest) = split(req.uri())?;
    let route = http::route(node, token, &target, true).await?;
    if route.anonymous()
        && let Some(limiter) = &node.public_limiter
    {
        // Anonymous: a bucket per route and client address.
        let addr = req
            .extensions()
            .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
            .map_or(std::net::IpAddr::from([0, 0, 0, 0]), |c| c.0.ip());
        if let Err(orb_auth::AuthError::RateLimited { retry_after_secs }) =
            limiter.check(&target, addr)
        {
            return Err(ApiError(
                OrbError::new(
                    ErrorCode::RateLimited,
                    format!(
                        "too many requests to public route `{target}` from your address; retry in {retry_after_secs} s"
                    ),
                )
                .with_details(json!({ "retry_after": retry_after_secs })),
            ));
        }
    }
    http::serve(node, token, route, &target, rest, req).await
}

/// `/http/{target}{rest}` → (`target`, the path and query the guest sees).
fn split(uri: &Uri) -> Result<(String, String), ApiError> {
    let path = uri.path();
    let after = path.strip_prefix("/http/").unwrap_or_default();
    let (target, rest) = match after.find('/') {
        Some(i) => (&after[..i], &after[i..]),
        None => (after, "/"),
    };
    if target.is_empty() {
        return Err(ApiError::new(
            ErrorCode::NotFound,
            "HTTP functions are served at /http/{alias-or-hash}/…",
        ));
    }
    let rest = match uri.query() {
        Some(q) => format!("{rest}?{q}"),
        None => rest.to_string(),
    };
    Ok((target.to_string(), rest))
}
