//! Who is asking: the credentials a request presented, and the checks of a
//! verified caller's rights. The bottom of the node: handlers and services
//! both use it; it knows no HTTP (the handlers read `Authorization` and
//! build a [`Token`]).
//!
//! A token is verified by [`orb_auth::Authority`] (signature cached,
//! revocation and expiry every time, attenuation checks against the
//! request); what its grant allows is decided here.

use crate::{ApiError, Node};
use orb_auth::Kind;
pub use orb_auth::{Claims, Request};
use orb_core::{ErrorCode, FunctionId, OrbError, valid_namespace_name};
use serde_json::json;

/// The operations tokens are checked for (also the Datalog `operation` fact).
pub mod op {
    pub const FUNCTIONS_READ: &str = "functions.read";
    pub const FUNCTIONS_WRITE: &str = "functions.write";
    pub const INVOKE: &str = "invoke";
    pub const ACTIVATIONS_READ: &str = "activations.read";
    pub const ACTIVATIONS_WRITE: &str = "activations.write";
    pub const ACCOUNTS_CREATE: &str = "accounts.create";
    pub const TOKENS_MINT: &str = "tokens.mint";
    pub const TOKENS_REVOKE: &str = "tokens.revoke";
    pub const TOKENS_ROTATE: &str = "tokens.rotate";
    pub const WHITELIST_READ: &str = "whitelist.read";
    pub const WHITELIST_WRITE: &str = "whitelist.write";
    pub const SCHEDULES_READ: &str = "schedules.read";
    pub const SCHEDULES_WRITE: &str = "schedules.write";
    pub const TRIGGERS_READ: &str = "triggers.read";
    pub const TRIGGERS_WRITE: &str = "triggers.write";
    pub const TRIGGERS_FIRE: &str = "triggers.fire";
    pub const KAPPA_READ: &str = "kappa.read";
    pub const KAPPA_WRITE: &str = "kappa.write";
    pub const OUTBOUND_READ: &str = "outbound.read";
    pub const OUTBOUND_WRITE: &str = "outbound.write";
    pub const SECRETS_READ: &str = "secrets.read";
    pub const SECRETS_WRITE: &str = "secrets.write";
    pub const NETWORK_READ: &str = "network.read";
}

/// The credentials a request presented, not yet checked: its bearer token,
/// if well-formed, and whether it sent credentials at all (an
/// `Authorization` header, well-formed or not). Plain data: a handler builds
/// it from the request; a service that can only name what it authorizes
/// after a lookup (a call's alias, a kappa's function, a sequence's steps)
/// checks it with [`authorize`] itself. The network forwards it with a call,
/// so the node that runs the call checks it again.
#[derive(Debug, Clone, Default)]
pub struct Token {
    bearer: Option<String>,
    sent: bool,
}

impl Token {
    /// `bearer`: the token of a well-formed `Authorization: Bearer …`;
    /// `sent`: whether the request carried an `Authorization` header.
    pub fn new(bearer: Option<String>, sent: bool) -> Self {
        Self { bearer, sent }
    }

    /// The bearer token as presented, if any (forwarded with a routed call).
    #[cfg_attr(not(feature = "network"), allow(dead_code))]
    pub fn bearer(&self) -> Option<&str> {
        self.bearer.as_deref()
    }

    /// Whether the request sent credentials (even malformed ones).
    pub fn sent(&self) -> bool {
        self.sent
    }
}

/// The bearer token of a request, if any.
fn bearer(token: &Token) -> Option<&str> {
    token.bearer.as_deref()
}

/// Verifies the request's token for `req` without taking from its rate.
pub fn verify(node: &Node, token: &Token, req: Request<'_>) -> Result<Claims, ApiError> {
    let token = bearer(token).ok_or_else(|| ApiError(orb_auth::AuthError::Missing.into()))?;
    let claims = node
        .auth
        .verify(token, &req)
        .map_err(|e| ApiError(e.into()))?;
    crate::listener::authenticated();
    Ok(claims)
}

/// Checks who is asking before anything else of the request is read or
/// checked: a token is there, signed by this node's root key, neither
/// revoked nor expired — so a caller without valid credentials gets 401,
/// not an answer about its body. No request checks, no rate: the
/// authorization that follows does those.
pub fn authenticate(node: &Node, token: &Token) -> Result<(), ApiError> {
    let token = bearer(token).ok_or_else(|| ApiError(orb_auth::AuthError::Missing.into()))?;
    let claims = node.auth.claims_of(token).map_err(|e| ApiError(e.into()))?;
    node.auth
        .still_valid(&claims)
        .map_err(|e| ApiError(e.into()))
}

/// The account of the request's token, verified by signature only (no
/// request checks, no rate): to resolve names in that account before the
/// real authorization. `None` when there is no valid token (the
/// authorization that follows reports why).
pub fn account_hint(node: &Node, token: &Token) -> Option<String> {
    let token = bearer(token)?;
    node.auth.claims_of(token).ok().map(|c| c.account)
}

/// Verifies the request's token for `req` and takes one unit of its rate.
pub async fn authorize(node: &Node, token: &Token, req: Request<'_>) -> Result<Claims, ApiError> {
    let token = bearer(token).ok_or_else(|| ApiError(orb_auth::AuthError::Missing.into()))?;
    let claims = node
        .auth
        .verify(token, &req)
        .map_err(|e| ApiError(e.into()))?;
    crate::listener::authenticated();
    node.auth
        .check_rate(&claims)
        .map_err(|e| ApiError(e.into()))?;
    Ok(claims)
}

pub fn denied(message: impl Into<String>) -> ApiError {
    ApiError(OrbError::new(ErrorCode::PermissionDenied, message))
}

/// [`authorize`], for operations only a private token may do.
pub async fn authorize_private(
    node: &Node,
    token: &Token,
    req: Request<'_>,
    what: &str,
) -> Result<Claims, ApiError> {
    let claims = authorize(node, token, req).await?;
    require_private(&claims, what)?;
    Ok(claims)
}

/// Only private tokens.
pub fn require_private(claims: &Claims, what: &str) -> Result<(), ApiError> {
    if claims.kind == Kind::Private {
        Ok(())
    } else {
        Err(denied(format!(
            "{what} needs the account's private token; this is a public token"
        )))
    }
}

/// Uploading (and deleting) code.
pub fn require_upload(claims: &Claims) -> Result<(), ApiError> {
    match &claims.grant {
        None => Ok(()),
        Some(g) if g.upload => Ok(()),
        Some(_) => Err(denied(
            "this token may not upload code (`upload` is off); call functions by hash",
        )),
    }
}

/// Whether a public token may run `function` at all, namespace or not: its
/// grant's `functions` lists it, or (no list) a namespace of its grant
/// whitelists it. Private tokens run any function of their account. This is
/// also what a public token may *see* of functions, aliases and kappas.
pub async fn may_run(
    node: &Node,
    claims: &Claims,
    function: &FunctionId,
) -> Result<bool, ApiError> {
    let Some(grant) = &claims.grant else {
        return Ok(true);
    };
    if let Some(listed) = &grant.functions {
        return Ok(listed.iter().any(|f| f == &function.to_string()));
    }
    for ns in grant.namespaces.keys() {
        if node
            .store
            .get_whitelist(&claims.account, ns)
            .await?
            .is_some_and(|l| l.contains(function))
        {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Whether the caller sees an object made by the token of `lineage` (an
/// activation, a schedule, a dead letter): a private token sees its whole
/// account, a public token only what its own lineage made.
pub fn sees(claims: &Claims, lineage: Option<&str>) -> bool {
    claims.kind == Kind::Private || lineage == Some(claims.lineage.as_str())
}

/// Calling `function`, optionally naming `namespace` with `write` access.
/// A public token's call always passes a whitelist: with a namespace, that
/// namespace's; without one, the grant's `functions` or the whitelist of a
/// namespace of its grant ([`may_run`]).
pub async fn check_call(
    node: &Node,
    claims: &Claims,
    function: &FunctionId,
    namespace: Option<&str>,
    write: bool,
) -> Result<(), ApiError> {
    let Some(grant) = &claims.grant else {
        return Ok(());
    };
    if let Some(allowed) = &grant.functions
        && !allowed.iter().any(|f| f == &function.to_string())
    {
        return Err(denied(format!("this token may not call {function}"))
            .0
            .with_details(json!({ "function": function.to_string() }))
            .into());
    }
    if namespace.is_none() && !may_run(node, claims, function).await? {
        return Err(ApiError(
            OrbError::new(
                ErrorCode::CodeNotWhitelisted,
                format!(
                    "a public token runs only code its grant's `functions` lists or a namespace of its grant \
                     whitelists, and {function} is neither; the account owner adds it with \
                     `orb ns whitelist NS --add {function}`"
                ),
            )
            .with_details(json!({ "function": function.to_string() })),
        ));
    }
    if let Some(ns) = namespace {
        let access = grant
            .namespaces
            .get(ns)
            .ok_or_else(|| denied(format!("this token has no access to namespace `{ns}`")))?;
        if write && !access.can_write() {
            return Err(denied(format!("this token may only read namespace `{ns}`")));
        }
        if !write && !access.can_read() && !access.can_write() {
            return Err(denied(format!(
                "this token has no access to namespace `{ns}`"
            )));
        }
        let list = node
            .store
            .get_whitelist(&claims.account, ns)
            .await?
            .unwrap_or_default();
        if !list.contains(function) {
            return Err(ApiError(
                OrbError::new(
                    ErrorCode::CodeNotWhitelisted,
                    format!(
                        "{function} is not on the whitelist of namespace `{ns}`; the account owner adds it with \
                         `orb ns whitelist {ns} --add {function}`"
                    ),
                )
                .with_details(json!({ "function": function.to_string(), "namespace": ns })),
            ));
        }
    }
    Ok(())
}

pub fn check_namespace_name(ns: &str) -> Result<(), ApiError> {
    if valid_namespace_name(ns) {
        Ok(())
    } else {
        Err(ApiError(OrbError::new(
            ErrorCode::InvalidName,
            format!(
                "`{ns}` is not a valid namespace name: 1–64 characters of a-z, 0-9, `.`, `_`, `-`, starting with a letter or digit"
            ),
        )))
    }
}
