//! HTTP functions: `/http/{target}/…` for any method. `{target}` is an alias
//! or a hash; the function must export `wasi:http/incoming-handler@0.2.x`.
//! The guest sees the method, the path after `/http/{target}` with the
//! query, the headers (minus `Authorization`) and the body, streamed both
//! ways under the node's size caps and the same limits as calls; each
//! request leaves one activation (export `wasi:http/incoming-handler`).
//!
//! Access: with a token (`Authorization: Bearer …`), the same rules as a
//! call — the alias resolves in the token's account, which must own the
//! function, and a public token restricted to functions must list it.
//! Without a token, only an alias its owner marked public
//! (`PUT /v1/aliases/{name}` with `"public": true`). Public route names are
//! unique on the node: a small index record (`public-route/{name}` →
//! account) finds the owner; the alias record itself stays the authority
//! (the index is only trusted when that alias is still public).
//!
//! State: an alias may bind a namespace (`"namespace"` in the alias). The
//! guest then opens it as its `wasi:keyvalue` bucket `"default"` or `""`
//! (and reads it through `wasi:config`); other bucket names open the
//! namespaces the caller's token could name with a call (none for an
//! anonymous request). Such a request is a transaction like a call: the
//! response is held until the guest is done and its writes are committed;
//! on a conflict the request runs again (its body is kept for that), so the
//! client sees only the answer of the run that committed.

use crate::caller::{self, Claims, Request, Token, op};
use crate::clock::now_rfc3339;
use crate::metrics as m;
use crate::services::functions::{not_found, parse_id};
use crate::services::net;
use crate::{ApiError, Node};
use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, Uri, header};
use axum::response::Response;
use orb_core::{Activation, ActivationStatus, ErrorCode, FunctionId, OrbError};
use orb_runtime::{HTTP_EXPORT, HttpOutcome, HttpRequestOptions};
use serde_json::{Value as Json, json};
use std::sync::Arc;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Who runs what for one request.
pub(crate) struct Route {
    account: String,
    function: FunctionId,
    alias: Option<String>,
    /// The namespace the alias binds, and who opens it: the caller's claims,
    /// or for an anonymous request the owner's account with no other
    /// namespace open ([`anonymous_claims`]).
    namespace: Option<(String, Claims)>,
    /// The caller's claims (none for an anonymous request): its grant's
    /// `outbound_hosts` (or the account's policy) and its token decide
    /// outbound HTTP; its lineage is the activation's.
    caller: Option<Claims>,
}

impl Route {
    /// Whether the request is anonymous (a public route, no token).
    pub(crate) fn anonymous(&self) -> bool {
        self.caller.is_none()
    }
}

/// The claims an anonymous request to a public alias runs its namespace
/// access with: the owner's account, with a grant that names no other
/// namespace (so only the bound one opens) and no token behind it.
fn anonymous_claims(account: &str) -> Claims {
    Claims {
        account: account.to_string(),
        kind: orb_auth::Kind::Public,
        grant: Some(orb_auth::Grant::default()),
        lineage: String::new(),
        revocation_ids: Vec::new(),
        minted_by: None,
        expires_at: None,
        blocks: 0,
        attenuated: None,
    }
}

fn is_hash(target: &str) -> bool {
    target.starts_with("sha256:") || FunctionId::looks_like_id(target)
}

fn alias_not_found(name: &str) -> ApiError {
    ApiError(
        OrbError::new(
            ErrorCode::AliasNotFound,
            format!("no alias `{name}` in this account, and no public HTTP route of that name"),
        )
        .with_details(json!({ "alias": name })),
    )
}

/// The token's call rules for `id`: op `invoke`, ownership, the grant's
/// function list, and for a bound namespace the rules of a call naming it
/// (a public token needs it in its grant, and the code on its whitelist).
/// `take_rate`: one unit of the token's rate is taken (not on the node that
/// serves a request another node routed to it: the gateway took it).
async fn authorize_call(
    node: &Node,
    token: &Token,
    id: &FunctionId,
    namespace: Option<&str>,
    take_rate: bool,
) -> Result<Claims, ApiError> {
    let text = id.to_string();
    let req = Request {
        operation: op::INVOKE,
        function: Some(&text),
        namespace,
    };
    let claims = if take_rate {
        caller::authorize(node, token, req).await?
    } else {
        caller::verify(node, token, req)?
    };
    if !net::owns(node, &claims.account, id).await? {
        return Err(not_found(id));
    }
    caller::check_call(node, &claims, id, namespace, false).await?;
    Ok(claims)
}

/// Who runs what for a request to `/http/{target}` with `token`: a hash or
/// an alias of the token's account (the token's call rules), or else a
/// public alias of that name (no token needed). `take_rate`: see
/// [`authorize_call`].
pub(crate) async fn route(
    node: &Node,
    token: &Token,
    target: &str,
    take_rate: bool,
) -> Result<Route, ApiError> {
    if is_hash(target) {
        let id = parse_id(target)?;
        let claims = authorize_call(node, token, &id, None, take_rate).await?;
        return Ok(Route {
            account: claims.account.clone(),
            function: id,
            alias: None,
            namespace: None,
            caller: Some(claims),
        });
    }
    let has_token = token.sent();
    if has_token {
        // A token that is sent must be valid, public route or not.
        let Some(account) = caller::account_hint(node, token) else {
            caller::verify(node, token, Request::default())?;
            return Err(alias_not_found(target));
        };
        if let Some(alias) = crate::services::aliases::get(node, &account, target).await? {
            let function = alias_function(&alias)?;
            let ns = alias.namespace.as_deref();
            no_namespace_in_network(node, &alias)?;
            let claims = authorize_call(node, token, &function, ns, take_rate).await?;
            return Ok(Route {
                account: claims.account.clone(),
                function,
                alias: Some(target.to_string()),
                namespace: alias.namespace.map(|ns| (ns, claims.clone())),
                caller: Some(claims),
            });
        }
    }
    if let Some(account) = crate::services::aliases::public_owner(node, target).await?
        && let Some(alias) = crate::services::aliases::get(node, &account, target).await?
        && alias.public
    {
        let function = alias_function(&alias)?;
        no_namespace_in_network(node, &alias)?;
        if !net::owns(node, &account, &function).await? {
            return Err(not_found(&function));
        }
        let namespace = alias.namespace.map(|ns| (ns, anonymous_claims(&account)));
        return Ok(Route {
            account,
            function,
            alias: Some(target.to_string()),
            namespace,
            caller: None,
        });
    }
    if has_token {
        Err(alias_not_found(target))
    } else {
        Err(ApiError(orb_auth::AuthError::Missing.into()))
    }
}

/// Until namespaces are shared across nodes (part 2), a networked node
/// serves no request whose alias binds one (never against a node-local
/// copy), as it runs no call that names one.
fn no_namespace_in_network(
    node: &Node,
    alias: &crate::services::aliases::Alias,
) -> Result<(), ApiError> {
    match &alias.namespace {
        Some(ns) if net::is_networked(node) => Err(ApiError(
            OrbError::new(
                ErrorCode::NotInNetwork,
                format!(
                    "alias `{}` binds namespace `{ns}`, and namespaces are not shared across the nodes of a network yet, so a networked node serves no request through it; serve it from a single node, or bind no namespace",
                    alias.name
                ),
            )
            .with_details(json!({ "alias": alias.name, "namespace": ns })),
        )),
        _ => Ok(()),
    }
}

/// The function an alias names; a sequence is not an HTTP function.
fn alias_function(alias: &crate::services::aliases::Alias) -> Result<FunctionId, ApiError> {
    alias.function.clone().ok_or_else(|| {
        ApiError(
            OrbError::new(
                ErrorCode::NotAnHttpFunction,
                format!(
                    "alias `{}` is a sequence, not a wasi:http component; call it with POST /v1/invoke",
                    alias.name
                ),
            )
            .with_details(json!({ "alias": alias.name })),
        )
    })
}

/// HTTP requests whose guest is still running (it may outlive the response
/// head); the shutdown waits for them so their activations are stored.
pub(crate) struct Tasks(Arc<Semaphore>);

const MAX_TASKS: u32 = 1 << 20;

impl Default for Tasks {
    fn default() -> Self {
        Self(Arc::new(Semaphore::new(MAX_TASKS as usize)))
    }
}

impl Tasks {
    fn track(&self) -> Option<OwnedSemaphorePermit> {
        self.0.clone().try_acquire_owned().ok()
    }

    /// Waits until every HTTP function request has finished.
    pub(crate) async fn drain(&self) {
        let _ = self.0.acquire_many(MAX_TASKS).await;
    }
}

fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .parse()
        .ok()
}

/// Reads and drops a refused body (up to a cap), so the client reads the
/// error instead of a reset connection.
async fn drain(body: Body) {
    use http_body_util::BodyExt as _;
    const DRAIN_CAP: u64 = 64 << 20;
    let mut body = body;
    let mut seen = 0u64;
    while let Some(Ok(frame)) = body.frame().await {
        if let Ok(data) = frame.into_data() {
            seen += data.len() as u64;
            if seen > DRAIN_CAP {
                break;
            }
        }
    }
}

fn too_large(limit: u64) -> ApiError {
    ApiError(
        OrbError::new(
            ErrorCode::TooLarge,
            format!(
                "the request body is over the limit of {limit} bytes for HTTP functions (max_http_request_bytes)"
            ),
        )
        .with_details(json!({ "limit": limit })),
    )
}

/// Serves one request to `/http/{target}{rest}` for `route` (the handler
/// checked the node is up, found the route and applied the anonymous rate):
/// here, when the node's executor runs the function here (always on a
/// single node), else on a node that does ([`serve_elsewhere`]).
pub(crate) async fn serve(
    node: &Arc<Node>,
    token: &Token,
    route: Route,
    target: &str,
    rest: String,
    req: axum::extract::Request,
) -> Result<Response, ApiError> {
    if node.executor.runs_here(node, &route.function) {
        serve_here(node, route, target, rest, req).await
    } else {
        serve_elsewhere(node, token, route, target, rest, req).await
    }
}

/// The function of `route`, loaded, if it serves HTTP.
async fn load_http(
    node: &Node,
    route: &Route,
    target: &str,
) -> Result<Arc<orb_runtime::LoadedFunction>, ApiError> {
    let f = crate::services::functions::load(node, &route.function).await?;
    if !f.is_http() {
        return Err(ApiError(
            OrbError::new(
                ErrorCode::NotAnHttpFunction,
                format!(
                    "{} does not export wasi:http/incoming-handler, so it cannot serve HTTP; call its exports at /v1/functions/{target}/{{export}}",
                    route.function
                ),
            )
            .with_details(json!({ "function": route.function.to_string() })),
        ));
    }
    Ok(f)
}

/// Makes `parts` the request the guest sees: the path after
/// `/http/{target}` with the query (`rest`), an absolute URI with this
/// node's scheme and the request's authority (else its `Host`, else the
/// listen address), a `Host` header, and no `Authorization`.
fn guest_parts(
    node: &Node,
    rest: &str,
    parts: &mut axum::http::request::Parts,
) -> Result<(), ApiError> {
    let authority = parts
        .uri
        .authority()
        .map(|a| a.to_string())
        .or_else(|| {
            parts
                .headers
                .get(header::HOST)
                .and_then(|h| h.to_str().ok())
                .map(str::to_string)
        })
        .unwrap_or_else(|| node.config.listen.to_string());
    parts.uri = Uri::builder()
        .scheme(node.scheme())
        .authority(authority.as_str())
        .path_and_query(rest)
        .build()
        .map_err(|e| {
            ApiError::new(
                ErrorCode::InvalidRequest,
                format!("the request's host or path cannot be handed on: {e}"),
            )
        })?;
    parts.headers.remove(header::AUTHORIZATION);
    if !parts.headers.contains_key(header::HOST)
        && let Ok(host) = HeaderValue::from_str(&authority)
    {
        parts.headers.insert(header::HOST, host);
    }
    Ok(())
}

/// The request as the guest will see it ([`guest_parts`]); one that says
/// its body is over the cap is refused (its body read and dropped).
async fn guest_request(
    node: &Node,
    rest: &str,
    req: axum::extract::Request,
) -> Result<(axum::http::request::Parts, Body), ApiError> {
    let (mut parts, body) = req.into_parts();
    let cap = node.config.max_http_request_bytes;
    if content_length(&parts.headers).is_some_and(|n| n > cap) {
        drain(body).await;
        return Err(too_large(cap));
    }
    guest_parts(node, rest, &mut parts)?;
    Ok((parts, body))
}

/// Serves a request for a function this node runs itself, streaming the
/// body both ways.
async fn serve_here(
    node: &Arc<Node>,
    route: Route,
    target: &str,
    rest: String,
    req: axum::extract::Request,
) -> Result<Response, ApiError> {
    let f = load_http(node, &route, target).await?;
    let (parts, body) = guest_request(node, &rest, req).await?;
    let method = parts.method.to_string();
    let request = axum::http::Request::from_parts(parts, body);

    let opts = options(node, &route, node.scheme() == "https").await?;
    if route.namespace.is_some() {
        return serve_transaction(node, &route, &f, request, opts, &method, &rest).await;
    }
    let start = now_rfc3339();
    let permit = node.http_tasks.track();
    metrics::gauge!(m::IN_FLIGHT).increment(1.0);
    match node.runtime.serve_http(&f, request, opts).await {
        Ok((resp, finish)) => {
            let node = node.clone();
            tokio::spawn(async move {
                let out = finish.finish().await;
                metrics::gauge!(m::IN_FLIGHT).decrement(1.0);
                let activation = activation(&route, out, start, &method, &rest);
                if let Err(e) = node.store.put_activation(&activation).await {
                    tracing::warn!(error = %e, "could not store an HTTP activation");
                }
                drop(permit);
            });
            Ok(resp.map(Body::new))
        }
        Err(out) => {
            metrics::gauge!(m::IN_FLIGHT).decrement(1.0);
            let activation = activation(&route, *out, start, &method, &rest);
            node.store.put_activation(&activation).await?;
            drop(permit);
            Err(ApiError(activation.error.unwrap_or_else(|| {
                OrbError::new(ErrorCode::Internal, "the request ended without a response")
            })))
        }
    }
}

/// The guest's options for a request of `route`: the node's caps, and
/// outbound HTTP as the caller's grant (or the account's policy) allows.
async fn options(node: &Node, route: &Route, https: bool) -> Result<HttpRequestOptions, ApiError> {
    let caller = route
        .caller
        .as_ref()
        .map(|claims| crate::services::outbound::OutboundCaller {
            claims,
            function: &route.function,
            namespace: route.namespace.as_ref().map(|(ns, _)| ns.as_str()),
        });
    let outbound = crate::services::outbound::policy_for(node, &route.account, caller).await?;
    Ok(HttpRequestOptions {
        limits: None,
        max_request_bytes: node.config.max_http_request_bytes,
        max_response_bytes: node.config.max_http_response_bytes,
        https,
        outbound,
        kv: None,
        globals: Vec::new(),
    })
}

/// Serves a request for a function this node does not run (a networked
/// node that does not seed it, or has no free call slot): the request, as
/// the guest will see it and with its whole body (under the cap), goes to a
/// node that runs it, with the caller's token ([`Forwarded`]); that node
/// checks the token and the route itself ([`serve_forwarded`]). The
/// response comes back whole, and this node stores the activation.
async fn serve_elsewhere(
    node: &Arc<Node>,
    token: &Token,
    route: Route,
    target: &str,
    rest: String,
    req: axum::extract::Request,
) -> Result<Response, ApiError> {
    let (parts, body) = guest_request(node, &rest, req).await?;
    let cap = node.config.max_http_request_bytes;
    let body = axum::body::to_bytes(body, cap as usize)
        .await
        .map_err(|_| too_large(cap))?;
    let request = Forwarded::request(&parts, &body);
    let (activation, response) = node
        .executor
        .forward_http(node, &route.function, token.bearer(), target, request)
        .await?;
    node.store.put_activation(&activation).await?;
    match response {
        Some(bytes) => Forwarded::response(&bytes),
        None => Err(ApiError(activation.error.unwrap_or_else(|| {
            OrbError::new(ErrorCode::Internal, "the request ended without a response")
        }))),
    }
}

/// Serves a request another node routed here ([`serve_elsewhere`]):
/// `token` is what the caller presented there (checked here again, against
/// this node's own view of tokens, aliases and revocations; its rate was
/// taken there), `request` its encoding ([`Forwarded`]). The guest runs to
/// its end; returns the activation (not stored: the gateway stores it) and
/// the encoded response (`None` when the function gave none: its error is
/// in the activation).
pub(crate) async fn serve_forwarded(
    node: &Node,
    token: Option<String>,
    target: &str,
    request: &[u8],
) -> Result<(Activation, Option<bytes::Bytes>), ApiError> {
    let sent = token.is_some();
    let route = route(node, &Token::new(token, sent), target, false).await?;
    let f = load_http(node, &route, target).await?;
    let (parts, body) = Forwarded::parse_request(request)?;
    let cap = node.config.max_http_request_bytes;
    if body.len() as u64 > cap {
        return Err(too_large(cap));
    }
    let https = parts.uri.scheme_str() == Some("https");
    let opts = options(node, &route, https).await?;
    let method = parts.method.to_string();
    let rest = parts
        .uri
        .path_and_query()
        .map_or_else(|| "/".to_string(), |p| p.to_string());
    let mut req = axum::http::Request::new(http_body_util::Full::new(body));
    *req.method_mut() = parts.method;
    *req.uri_mut() = parts.uri;
    *req.headers_mut() = parts.headers;
    let start = now_rfc3339();
    metrics::gauge!(m::IN_FLIGHT).increment(1.0);
    let run = node.runtime.serve_http_to_end(&f, req, opts).await;
    metrics::gauge!(m::IN_FLIGHT).decrement(1.0);
    let activation = activation(&route, run.outcome, start, &method, &rest);
    let response = run
        .response
        .map(|(head, body)| Forwarded::encode_response(&head, &body));
    Ok((activation, response))
}

/// An HTTP request or response as bytes, to travel between nodes: the
/// request line (`METHOD URI`) or the status, the header lines
/// (`name: value`, bytes as they are), an empty line, then the body, as in
/// HTTP/1.1 (CRLF line ends; no header value holds CR or LF).
struct Forwarded;

impl Forwarded {
    fn head(first: &str, headers: &HeaderMap, body: &[u8]) -> bytes::Bytes {
        let mut out = Vec::with_capacity(first.len() + 64 * headers.len() + body.len() + 4);
        out.extend_from_slice(first.as_bytes());
        out.extend_from_slice(b"\r\n");
        for (name, value) in headers {
            out.extend_from_slice(name.as_str().as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(value.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(body);
        out.into()
    }

    fn request(parts: &axum::http::request::Parts, body: &[u8]) -> bytes::Bytes {
        Self::head(
            &format!("{} {}", parts.method, parts.uri),
            &parts.headers,
            body,
        )
    }

    fn encode_response(parts: &axum::http::response::Parts, body: &[u8]) -> bytes::Bytes {
        Self::head(parts.status.as_str(), &parts.headers, body)
    }

    /// The first line, the headers and the body of `bytes`.
    fn split(bytes: &[u8]) -> Result<(&str, HeaderMap, &[u8]), ApiError> {
        let bad = |what: &str| {
            ApiError::new(
                ErrorCode::Internal,
                format!("a request routed between nodes does not parse: {what}"),
            )
        };
        let end = bytes
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .ok_or_else(|| bad("no end of head"))?;
        let mut lines = bytes[..end].split(|b| *b == b'\n');
        let first = lines.next().unwrap_or_default();
        let first = std::str::from_utf8(first.strip_suffix(b"\r").unwrap_or(first))
            .map_err(|_| bad("the first line is not text"))?;
        let mut headers = HeaderMap::new();
        for line in lines {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            let colon = line
                .iter()
                .position(|b| *b == b':')
                .ok_or_else(|| bad("a header line has no colon"))?;
            let name =
                header::HeaderName::from_bytes(&line[..colon]).map_err(|_| bad("a header name"))?;
            let value = line[colon + 1..]
                .strip_prefix(b" ")
                .unwrap_or(&line[colon + 1..]);
            let value = HeaderValue::from_bytes(value).map_err(|_| bad("a header value"))?;
            headers.append(name, value);
        }
        Ok((first, headers, &bytes[end + 4..]))
    }

    fn parse_request(bytes: &[u8]) -> Result<(axum::http::request::Parts, bytes::Bytes), ApiError> {
        let (first, headers, body) = Self::split(bytes)?;
        let (method, uri) = first.split_once(' ').unwrap_or((first, ""));
        let mut req = axum::http::Request::builder().method(method).uri(uri);
        if let Some(h) = req.headers_mut() {
            *h = headers;
        }
        let req = req.body(()).map_err(|e| {
            ApiError::new(
                ErrorCode::Internal,
                format!("a request routed between nodes does not parse: {e}"),
            )
        })?;
        Ok((req.into_parts().0, bytes::Bytes::copy_from_slice(body)))
    }

    fn response(bytes: &[u8]) -> Result<Response, ApiError> {
        let (status, headers, body) = Self::split(bytes)?;
        let status = status.parse::<axum::http::StatusCode>().map_err(|e| {
            ApiError::new(
                ErrorCode::Internal,
                format!("a routed response's status: {e}"),
            )
        })?;
        let mut resp = Response::new(Body::from(bytes::Bytes::copy_from_slice(body)));
        *resp.status_mut() = status;
        *resp.headers_mut() = headers;
        Ok(resp)
    }
}

/// Serves a request whose alias binds a namespace, as a transaction: the
/// body is read up front (so a re-run sees it again), the guest runs to its
/// end with the response held, then its namespace writes commit; a
/// conflict runs it again (alone, like a call's retry), unless it sent an
/// outgoing request. The client gets the response of the run that
/// committed, or the error.
async fn serve_transaction(
    node: &Arc<Node>,
    route: &Route,
    f: &Arc<orb_runtime::LoadedFunction>,
    request: axum::http::Request<Body>,
    mut opts: HttpRequestOptions,
    method: &str,
    rest: &str,
) -> Result<Response, ApiError> {
    use crate::services::calls::{Gate, MAX_ATTEMPTS, NsGate};
    let (ns, claims) = route.namespace.as_ref().expect("bound namespace");
    let (parts, body) = request.into_parts();
    let cap = opts.max_request_bytes;
    let body = match axum::body::to_bytes(body, cap as usize).await {
        Ok(b) => b,
        Err(_) => return Err(too_large(cap)),
    };
    opts.kv = Some(crate::services::calls::kv_access(
        node,
        claims,
        &route.function,
        ns,
        Default::default(),
    ));
    let start = now_rfc3339();
    let _permit = node.http_tasks.track();
    let gate = NsGate::take(node, format!("{}\0{ns}", route.account));
    let mut attempt = 0;
    let (response, outcome) = loop {
        attempt += 1;
        let _gate = if attempt == 1 {
            Gate::Shared(Arc::clone(&gate).read_owned().await)
        } else {
            Gate::Exclusive(Arc::clone(&gate).write_owned().await)
        };
        let mut req = axum::http::Request::new(http_body_util::Full::new(body.clone()));
        *req.method_mut() = parts.method.clone();
        *req.uri_mut() = parts.uri.clone();
        *req.version_mut() = parts.version;
        *req.headers_mut() = parts.headers.clone();
        metrics::gauge!(m::IN_FLIGHT).increment(1.0);
        let run = node.runtime.serve_http_to_end(f, req, opts.clone()).await;
        metrics::gauge!(m::IN_FLIGHT).decrement(1.0);
        let mut outcome = run.outcome;
        let Some(response) = run.response else {
            if outcome.error.is_none() {
                outcome.error = Some(OrbError::new(
                    ErrorCode::FunctionBadResult,
                    "the function's response body did not finish",
                ));
            }
            break (None, outcome);
        };
        let tx = std::mem::take(&mut outcome.kv);
        let parts: Vec<_> = tx
            .namespaces
            .into_iter()
            .filter(|(_, t)| !t.is_empty())
            .collect();
        match crate::services::calls::commit_parts(node, &route.account, parts, Vec::new(), &[])
            .await?
        {
            Ok(true) => break (Some(response), outcome),
            Err(over_quota) => {
                outcome.error = Some(over_quota.0);
                break (None, outcome);
            }
            Ok(false) => {}
        }
        metrics::counter!(m::KV_CONFLICTS).increment(1);
        if outcome.side_effect() {
            let sent: Vec<&orb_core::OutboundRequest> =
                outcome.outbound.iter().filter(|r| r.sent()).collect();
            outcome.error = Some(OrbError::new(
                ErrorCode::Conflict,
                format!(
                    "namespace `{ns}` changed under this request; it was not re-run because it had an external side effect ({} outgoing HTTP request(s)) — nothing was written; retry if repeating them is safe",
                    sent.len()
                ),
            )
            .with_details(json!({ "attempts": attempt, "side_effect": true, "outbound": sent })));
            break (None, outcome);
        }
        if attempt >= MAX_ATTEMPTS {
            outcome.error = Some(
                OrbError::new(
                    ErrorCode::Conflict,
                    format!(
                        "namespace `{ns}` kept changing under this request; gave up after {MAX_ATTEMPTS} tries — retry later"
                    ),
                )
                .with_details(json!({ "attempts": attempt })),
            );
            break (None, outcome);
        }
    };
    let activation = activation(route, outcome, start, method, rest);
    node.store.put_activation(&activation).await?;
    match response {
        Some((head, bytes)) => Ok(Response::from_parts(head, Body::from(bytes))),
        None => Err(ApiError(activation.error.unwrap_or_else(|| {
            OrbError::new(ErrorCode::Internal, "the request ended without a response")
        }))),
    }
}

/// The activation record of one request (also counted in the call metrics).
fn activation(
    route: &Route,
    out: HttpOutcome,
    start: String,
    method: &str,
    path: &str,
) -> Activation {
    let id = uuid::Uuid::now_v7().to_string();
    let mut result = out.result_json();
    if let Some(r) = result.as_object_mut() {
        r.insert("method".into(), Json::String(method.to_string()));
        r.insert("path".into(), Json::String(path.to_string()));
    }
    let error = crate::services::calls::finished(out.error, &route.function, &id, out.duration);
    Activation {
        id,
        account: route.account.clone(),
        lineage: route.caller.as_ref().map(|c| c.lineage.clone()),
        function: Some(route.function.clone()),
        export: HTTP_EXPORT.to_string(),
        status: if error.is_none() {
            ActivationStatus::Succeeded
        } else {
            ActivationStatus::Failed
        },
        start,
        duration_us: out.duration.as_micros() as u64,
        fuel: out.fuel,
        result: Some(result),
        error,
        logs: out.logs,
        logs_truncated: out.logs_truncated,
        alias: route.alias.clone(),
        outbound: out.outbound,
        ..Default::default()
    }
}
