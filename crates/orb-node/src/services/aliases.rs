//! Aliases: mutable names for function hashes, per account (versions and
//! rollback). `PUT /v1/aliases/{name}` points a name at a hash the account
//! owns; everywhere a hash is accepted for calling (invoke, the function
//! routes, schedules) an alias is too. Whitelists and token grants stay
//! hashes: they name exact code.
//!
//! A switch is one durable record write, so a call resolves either the old
//! or the new target, never neither. Activations record the hash the alias
//! resolved to and the alias itself.

use crate::caller::{self, Claims, Request, Token};
use crate::clock::now_rfc3339;
use crate::services::functions::{not_found, parse_id};
use crate::{ApiError, Node};
use orb_core::{ErrorCode, FunctionId, OrbError};
use orb_store::RecordKind;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

/// Earlier targets kept for rollback.
const HISTORY: usize = 20;

/// Most steps a sequence may have.
const MAX_STEPS: usize = 16;

/// An alias as stored and shown: it names one function, or a sequence of
/// steps (see [`crate::services::sequences`]).
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Alias {
    pub name: String,
    /// The function it names (`None` for a sequence).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub function: Option<FunctionId>,
    /// A sequence's steps, run in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub steps: Vec<Step>,
    /// Earlier targets, oldest first (rollback pops the last).
    #[serde(default)]
    pub previous: Vec<FunctionId>,
    pub updated_at: String,
    /// Served at `/http/{name}/…` without a token (HTTP functions).
    #[serde(default)]
    pub public: bool,
    /// The namespace an HTTP function served through this alias uses: its
    /// `wasi:keyvalue` bucket `"default"` (or `""`), and `wasi:config`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
}

/// One step of a sequence: an export of a function (by hash).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Step {
    pub function: FunctionId,
    pub export: String,
}

fn key(account: &str, name: &str) -> String {
    format!("{account}/{name}")
}

/// Whether `target` names a function by hash (`sha256:…`, or its 64 hex
/// digits), not an alias.
fn is_hash(target: &str) -> bool {
    target.starts_with("sha256:") || FunctionId::looks_like_id(target)
}

fn check_name(name: &str) -> Result<(), ApiError> {
    if orb_core::valid_namespace_name(name) && !is_hash(name) {
        Ok(())
    } else {
        Err(ApiError::new(
            ErrorCode::InvalidName,
            format!(
                "`{name}` is not a valid alias name: 1–64 characters of a-z, 0-9, `.`, `_`, `-`, starting with a letter or digit, and not a hash"
            ),
        ))
    }
}

fn alias_not_found(name: &str) -> ApiError {
    ApiError(
        OrbError::new(
            ErrorCode::AliasNotFound,
            format!(
                "no alias `{name}` in this account; create it with `orb alias set {name} HASH`"
            ),
        )
        .with_details(json!({ "alias": name })),
    )
}

pub(crate) async fn get(node: &Node, account: &str, name: &str) -> Result<Option<Alias>, ApiError> {
    match node
        .store
        .get_record(RecordKind::Alias, &key(account, name))
        .await?
    {
        Some(bytes) => Ok(Some(serde_json::from_slice(&bytes).map_err(|e| {
            ApiError::new(ErrorCode::Internal, format!("stored alias is corrupt: {e}"))
        })?)),
        None => Ok(None),
    }
}

async fn put(node: &Node, account: &str, alias: &Alias) -> Result<(), ApiError> {
    let bytes = serde_json::to_vec(alias).expect("serialisable");
    store_records(
        node,
        vec![(RecordKind::Alias, key(account, &alias.name), Some(bytes))],
    )
    .await
}

/// The hash an alias names in `account`.
pub(crate) async fn resolve(
    node: &Node,
    account: &str,
    name: &str,
) -> Result<FunctionId, ApiError> {
    check_name(name).map_err(|_| alias_not_found(name))?;
    let alias = get(node, account, name)
        .await?
        .ok_or_else(|| alias_not_found(name))?;
    alias.function.ok_or_else(|| {
        ApiError(
            OrbError::new(
                ErrorCode::InvalidRequest,
                format!(
                    "alias `{name}` is a sequence: call it with POST /v1/invoke {{\"function\": \"{name}\", \"params\": …}}"
                ),
            )
            .with_details(json!({ "alias": name })),
        )
    })
}

/// A hash, or an alias in the caller's account: the hash and the alias.
pub(crate) async fn resolve_target(
    node: &Node,
    token: &Token,
    target: &str,
) -> Result<(FunctionId, Option<String>), ApiError> {
    if is_hash(target) {
        return Ok((parse_id(target)?, None));
    }
    let Some(account) = caller::account_hint(node, token) else {
        // No valid token: let the authorization that follows say why.
        caller::verify(node, token, Request::default())?;
        return Err(alias_not_found(target));
    };
    let id = resolve(node, &account, target).await?;
    Ok((id, Some(target.to_string())))
}

/// A public token sees an alias only when it may run everything it names.
async fn visible(node: &Node, claims: &Claims, a: &Alias) -> Result<bool, ApiError> {
    for f in a.function.iter().chain(a.steps.iter().map(|s| &s.function)) {
        if !caller::may_run(node, claims, f).await? {
            return Ok(false);
        }
    }
    Ok(true)
}

/// `PUT /v1/aliases/{name}` `{"function": "sha256:…", "public": false,
/// "namespace": "app1"}` (`namespace` binds one for HTTP functions; `null`
/// unbinds; absent keeps it) or
/// `{"steps": [{"function", "export"}, …]}`.
pub async fn set(node: &Node, account: &str, name: &str, body: Value) -> Result<Value, ApiError> {
    check_name(name)?;
    if let Some(steps) = body.get("steps").filter(|s| !s.is_null()) {
        return set_steps(node, account, name, steps).await;
    }
    let target = body
        .get("function")
        .and_then(Value::as_str)
        .ok_or_else(|| {
            ApiError::new(
                ErrorCode::InvalidRequest,
                "the body is {\"function\": \"sha256:…\"}: the hash the alias points to",
            )
        })?;
    if !is_hash(target) {
        return Err(ApiError::new(
            ErrorCode::InvalidFunctionId,
            format!("an alias points to a hash (`sha256:…`), not to `{target}`"),
        ));
    }
    let id = parse_id(target)?;
    if !crate::services::net::owns(node, account, &id).await? {
        return Err(not_found(&id));
    }
    let _writing = node.alias_writes.lock().await;
    let mut alias = match get(node, account, name).await? {
        Some(mut a) if a.function.as_ref() != Some(&id) => {
            if let Some(old) = a.function.replace(id.clone()) {
                a.previous.push(old);
                if a.previous.len() > HISTORY {
                    a.previous.remove(0);
                }
            }
            a.steps.clear();
            a.updated_at = now_rfc3339();
            a
        }
        Some(a) => a,
        None => Alias {
            name: name.to_string(),
            function: Some(id.clone()),
            steps: Vec::new(),
            previous: Vec::new(),
            updated_at: now_rfc3339(),
            public: false,
            namespace: None,
        },
    };
    match body.get("namespace") {
        None => {}
        Some(Value::Null) => alias.namespace = None,
        Some(Value::String(ns)) => {
            caller::check_namespace_name(ns)?;
            alias.namespace = Some(ns.clone());
        }
        Some(_) => {
            return Err(ApiError::new(
                ErrorCode::InvalidRequest,
                "`namespace` is a namespace name (or null to unbind)",
            ));
        }
    }
    if let Some(public) = body.get("public") {
        alias.public = public
            .as_bool()
            .ok_or_else(|| ApiError::new(ErrorCode::InvalidRequest, "`public` is true or false"))?;
    }
    let _route = claim_public_route(node, account, &alias).await?;
    put(node, account, &alias).await?;
    tracing::info!(alias = name, function = %id, "alias set");
    Ok(serde_json::to_value(alias).expect("serialisable"))
}

/// Makes `name` a sequence: every step's function owned, its export there.
async fn set_steps(
    node: &Node,
    account: &str,
    name: &str,
    steps: &Value,
) -> Result<Value, ApiError> {
    let steps: Vec<Step> = serde_json::from_value(steps.clone()).map_err(|e| {
        ApiError::new(
            ErrorCode::InvalidRequest,
            format!("`steps` is a list of {{\"function\": \"sha256:…\", \"export\": \"…\"}}: {e}"),
        )
    })?;
    if steps.is_empty() || steps.len() > MAX_STEPS {
        return Err(ApiError::new(
            ErrorCode::InvalidRequest,
            format!("a sequence has 1–{MAX_STEPS} steps, not {}", steps.len()),
        ));
    }
    for step in &steps {
        if !crate::services::net::owns(node, account, &step.function).await? {
            return Err(not_found(&step.function));
        }
        crate::services::functions::load(node, &step.function)
            .await?
            .param_names(&step.export)?;
    }
    let _writing = node.alias_writes.lock().await;
    let alias = match get(node, account, name).await? {
        Some(mut a) => {
            if let Some(old) = a.function.take() {
                a.previous.push(old);
                if a.previous.len() > HISTORY {
                    a.previous.remove(0);
                }
            }
            a.steps = steps;
            a.updated_at = now_rfc3339();
            a
        }
        None => Alias {
            name: name.to_string(),
            function: None,
            steps,
            previous: Vec::new(),
            updated_at: now_rfc3339(),
            public: false,
            namespace: None,
        },
    };
    put(node, account, &alias).await?;
    tracing::info!(alias = name, steps = alias.steps.len(), "sequence set");
    Ok(serde_json::to_value(alias).expect("serialisable"))
}

/// `POST /v1/aliases/{name}/rollback`: back to the previous target.
pub async fn rollback(node: &Node, account: &str, name: &str) -> Result<Value, ApiError> {
    let _writing = node.alias_writes.lock().await;
    let mut alias = get(node, account, name)
        .await?
        .ok_or_else(|| alias_not_found(name))?;
    let Some(previous) = alias.previous.pop() else {
        return Err(ApiError(
            OrbError::new(
                ErrorCode::NothingToRollBack,
                format!("alias `{name}` has had no other target; nothing to roll back to"),
            )
            .with_details(json!({ "alias": name, "function": alias.function })),
        ));
    };
    alias.function = Some(previous);
    alias.steps.clear();
    alias.updated_at = now_rfc3339();
    put(node, account, &alias).await?;
    Ok(serde_json::to_value(alias).expect("serialisable"))
}

pub async fn show(node: &Node, claims: &Claims, name: &str) -> Result<Value, ApiError> {
    let alias = get(node, &claims.account, name)
        .await?
        .ok_or_else(|| alias_not_found(name))?;
    if !visible(node, claims, &alias).await? {
        return Err(alias_not_found(name));
    }
    Ok(serde_json::to_value(alias).expect("serialisable"))
}

pub async fn list(node: &Node, claims: &Claims) -> Result<Value, ApiError> {
    let mut out = Vec::new();
    for (_, bytes) in node
        .store
        .list_records(RecordKind::Alias, &format!("{}/", claims.account))
        .await?
    {
        if let Ok(a) = serde_json::from_slice::<Alias>(&bytes)
            && visible(node, claims, &a).await?
        {
            out.push(a);
        }
    }
    Ok(json!({ "aliases": out }))
}

pub async fn delete(node: &Node, account: &str, name: &str) -> Result<(), ApiError> {
    let _writing = node.alias_writes.lock().await;
    if get(node, account, name).await?.is_none() {
        return Err(alias_not_found(name));
    }
    release_public_route(node, account, name).await?;
    store_records(node, vec![(RecordKind::Alias, key(account, name), None)]).await
}

// ---- public HTTP routes ------------------------------------------------------

/// The account serving the public route `name`, per the node-wide index.
pub(crate) async fn public_owner(node: &Node, name: &str) -> Result<Option<String>, ApiError> {
    Ok(node
        .store
        .get_record(RecordKind::PublicRoute, name)
        .await?
        .and_then(|b| String::from_utf8(b).ok()))
}

/// Serializes changes of the public-route index (names are unique node-wide).
static PUBLIC_ROUTES: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Called before an alias is stored: a public alias claims its name in the
/// node-wide index (409 `public_route_taken` when another account serves a
/// public route of that name), a private one releases it. Hold the returned
/// guard until the alias is stored.
pub(crate) async fn claim_public_route(
    node: &Node,
    account: &str,
    alias: &Alias,
) -> Result<tokio::sync::MutexGuard<'static, ()>, ApiError> {
    let guard = PUBLIC_ROUTES.lock().await;
    let name = &alias.name;
    let owner = public_owner(node, name).await?;
    if !alias.public {
        if owner.as_deref() == Some(account) {
            remove_index(node, name).await?;
        }
        return Ok(guard);
    }
    match owner {
        Some(o) if o == account => return Ok(guard),
        Some(o) => {
            let held = get(node, &o, name).await?.is_some_and(|a| a.public);
            if held {
                return Err(ApiError(
                    OrbError::new(
                        ErrorCode::PublicRouteTaken,
                        format!(
                            "another account already serves a public HTTP route `/http/{name}`; pick another alias name"
                        ),
                    )
                    .with_details(json!({ "alias": name })),
                ));
            }
        }
        None => {}
    }
    store_records(
        node,
        vec![(
            RecordKind::PublicRoute,
            name.clone(),
            Some(account.as_bytes().to_vec()),
        )],
    )
    .await?;
    Ok(guard)
}

/// Called when an alias is deleted: frees its public route name.
pub(crate) async fn release_public_route(
    node: &Node,
    account: &str,
    name: &str,
) -> Result<(), ApiError> {
    let _guard = PUBLIC_ROUTES.lock().await;
    if public_owner(node, name).await?.as_deref() == Some(account) {
        remove_index(node, name).await?;
    }
    Ok(())
}

async fn remove_index(node: &Node, name: &str) -> Result<(), ApiError> {
    store_records(
        node,
        vec![(RecordKind::PublicRoute, name.to_string(), None)],
    )
    .await
}

/// Aliases and the public-route index are the same on every node of a
/// network: written to the network first, then here (every other node
/// mirrors them).
async fn store_records(node: &Node, changes: Vec<orb_store::RecordChange>) -> Result<(), ApiError> {
    crate::services::net::publish_records(node, &changes).await?;
    node.store.put_records(changes).await?;
    Ok(())
}
