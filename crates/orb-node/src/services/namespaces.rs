//! Namespaces: durable key/value state owned by an account.
//!
//! A value is bytes; JSON is its natural view. The API shows a value that
//! is JSON text as that JSON, and any other bytes faithfully: raw with
//! `application/octet-stream`, or as `{"base64": …}` where a JSON document
//! must hold it (exports, watch events, trigger payloads). A write is
//! acknowledged only after it is durable. Public tokens need `r` to read
//! and `w` to write the namespace.

use crate::caller::Claims;
use crate::{ApiError, Node};
use base64::Engine as _;
use orb_core::{ErrorCode, OrbError, valid_key};
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// A stored value as a JSON document shows it: the JSON it is, or its
/// bytes in base64 when they are not JSON text.
#[derive(Debug, Clone, PartialEq)]
pub enum View {
    Json(Value),
    Bytes(String),
}

impl View {
    pub fn of(bytes: &[u8]) -> Self {
        match serde_json::from_slice(bytes) {
            Ok(v) => View::Json(v),
            Err(_) => View::Bytes(base64::engine::general_purpose::STANDARD.encode(bytes)),
        }
    }
}

/// The bytes of a base64 value from an import, a clear error otherwise.
fn from_base64(key: &str, text: &str) -> Result<Vec<u8>, ApiError> {
    base64::engine::general_purpose::STANDARD
        .decode(text.as_bytes())
        .map_err(|e| {
            ApiError::new(
                ErrorCode::InvalidValue,
                format!("`bytes.{key}` is not valid base64: {e}"),
            )
        })
}

/// One committed change of a key (`value` is `None` for a delete).
#[derive(Debug, Clone, serde::Serialize)]
pub struct Change {
    #[serde(skip)]
    pub account: String,
    pub namespace: String,
    pub key: String,
    /// The new value when it is JSON text (`null` for a delete).
    pub value: Option<Value>,
    /// The new value's bytes in base64 when they are not JSON text.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub base64: Option<String>,
    #[serde(skip)]
    pub deleted: bool,
    /// The triggers whose rules led to this change, outermost first (empty
    /// for a change no rule made): none of them fires on it again, so rules
    /// writing under their own trigger's prefix, or under each other's, do
    /// not fire forever.
    #[serde(skip)]
    pub cause_triggers: Vec<String>,
}

/// Announces committed writes to watchers (nobody listening is fine) and,
/// when a namespace trigger matches, to the triggers (never dropped).
/// `cause_triggers`: the triggers whose rules led to them (see [`Change`]).
pub fn publish(
    node: &Node,
    account: &str,
    ns: &str,
    writes: &[(String, Option<Vec<u8>>)],
    cause_triggers: &[String],
) {
    let watched = node.changes.receiver_count() > 0;
    let prefixes = node.triggers.prefixes(account, ns);
    if !watched && prefixes.is_empty() {
        return;
    }
    for (key, value) in writes {
        let triggered = prefixes.iter().any(|p| key.starts_with(p.as_str()));
        if !watched && !triggered {
            continue;
        }
        let deleted = value.is_none();
        let (value, base64) = match value.as_deref().map(View::of) {
            None => (None, None),
            Some(View::Json(v)) => (Some(v), None),
            Some(View::Bytes(b)) => (None, Some(b)),
        };
        let change = std::sync::Arc::new(Change {
            account: account.to_string(),
            namespace: ns.to_string(),
            key: key.clone(),
            value,
            base64,
            deleted,
            cause_triggers: cause_triggers.to_vec(),
        });
        if triggered && node.trigger_changes.send(change.clone()).is_ok() {
            metrics::gauge!(crate::metrics::TRIGGER_BACKLOG).increment(1.0);
        }
        if watched {
            let _ = node.changes.send(change);
        }
    }
}

/// What a watcher sees: a committed change, or how many it missed.
pub enum Watched {
    Change(std::sync::Arc<Change>),
    Lagged(u64),
}

/// `GET /v1/namespaces/{ns}/watch?prefix=`: the committed changes under
/// `prefix` in the caller's namespace `ns`, until the node stops (the
/// handler sends them as Server-Sent Events).
pub fn watch(
    node: &std::sync::Arc<Node>,
    claims: Claims,
    ns: &str,
    prefix: String,
) -> impl futures_util::Stream<Item = Watched> + use<> {
    let rx = node.changes.subscribe();
    let (account, ns) = (claims.account, ns.to_string());
    let stream = futures_util::stream::unfold(rx, move |mut rx| {
        let (account, ns, prefix) = (account.clone(), ns.clone(), prefix.clone());
        async move {
            loop {
                match rx.recv().await {
                    Ok(c)
                        if c.account == account
                            && c.namespace == ns
                            && c.key.starts_with(&prefix) =>
                    {
                        return Some((Watched::Change(c), rx));
                    }
                    Ok(_) => continue,
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                        return Some((Watched::Lagged(n), rx));
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
                }
            }
        }
    });
    // The stream ends when the node stops, so shutdown never waits on a watcher.
    let node = node.clone();
    futures_util::StreamExt::take_until(stream, async move { node.stopped().await })
}

pub fn over_quota(q: orb_store::QuotaExceeded) -> ApiError {
    ApiError(
        OrbError::new(
            ErrorCode::QuotaExceeded,
            format!(
                "this write would give the account {} {} in its namespaces; the quota is {} (delete keys or ask the operator to raise it)",
                q.would_be, q.what, q.limit
            ),
        )
        .with_details(json!({ "quota": q.what, "limit": q.limit, "would_be": q.would_be })),
    )
}

pub const OP_READ: &str = "namespace.read";
pub const OP_WRITE: &str = "namespace.write";

/// Key names: 1–[`orb_core::MAX_KEY_BYTES`] bytes of UTF-8, no NUL.
pub fn check_key(key: &str) -> Result<(), ApiError> {
    if valid_key(key) {
        Ok(())
    } else {
        Err(ApiError::new(
            ErrorCode::InvalidKey,
            format!(
                "keys are 1–{} bytes of UTF-8 without NUL",
                orb_core::MAX_KEY_BYTES
            ),
        ))
    }
}

fn key_not_found(ns: &str, key: &str) -> ApiError {
    ApiError(
        OrbError::new(
            ErrorCode::KeyNotFound,
            format!("no key `{key}` in namespace `{ns}`"),
        )
        .with_details(json!({ "namespace": ns, "key": key })),
    )
}

pub async fn list_namespaces(node: &Node, claims: &Claims) -> Result<Value, ApiError> {
    let mut list = node.store.list_namespaces(&claims.account).await?;
    if let Some(g) = &claims.grant {
        list.retain(|n| g.namespaces.contains_key(&n.name));
    }
    Ok(json!({ "namespaces": list }))
}

/// `?limit=` of a key listing: 1–1000, 100 when absent.
pub fn list_limit(q: &BTreeMap<String, String>) -> Result<usize, ApiError> {
    match q.get("limit") {
        Some(l) => l
            .parse::<usize>()
            .ok()
            .filter(|l| (1..=1000).contains(l))
            .ok_or_else(|| ApiError::new(ErrorCode::InvalidRequest, "`limit` must be 1–1000")),
        None => Ok(100),
    }
}

pub async fn list_keys(
    node: &Node,
    claims: &Claims,
    ns: &str,
    q: &BTreeMap<String, String>,
) -> Result<Value, ApiError> {
    let limit = list_limit(q)?;
    let prefix = q.get("prefix").map(String::as_str).unwrap_or("");
    let keys = node
        .store
        .kv_keys(
            &claims.account,
            ns,
            prefix,
            q.get("after").map(String::as_str),
            limit,
        )
        .await?;
    let next = (keys.len() == limit)
        .then(|| keys.last().cloned())
        .flatten();
    Ok(json!({ "namespace": ns, "keys": keys, "next": next }))
}

/// A key's value (bytes) and revision; the caller's key checked first
/// ([`check_key`]).
pub async fn get_key(
    node: &Node,
    claims: &Claims,
    ns: &str,
    key: &str,
) -> Result<orb_store::KvEntry, ApiError> {
    node.store
        .kv_get(&claims.account, ns, key)
        .await?
        .ok_or_else(|| key_not_found(ns, key))
}

fn value_too_large(node: &Node, len: usize) -> ApiError {
    let max = node.config.max_value_bytes;
    ApiError(
        OrbError::new(
            ErrorCode::TooLarge,
            format!("the value is {len} bytes; values are at most {max} bytes (max_value_bytes)"),
        )
        .with_details(json!({ "limit": max })),
    )
}

/// `PUT …/keys/{key}`: a JSON body is stored as its JSON text; `raw`
/// (`Content-Type: application/octet-stream`) the body's bytes as they are.
pub async fn put_key(
    node: &Node,
    claims: &Claims,
    ns: &str,
    key: &str,
    body: &[u8],
    raw: bool,
) -> Result<Value, ApiError> {
    if body.len() > node.config.max_value_bytes {
        return Err(value_too_large(node, body.len()));
    }
    let text = if raw {
        body.to_vec()
    } else {
        let value: Value = serde_json::from_slice(body).map_err(|e| {
            ApiError::new(
                ErrorCode::InvalidValue,
                format!(
                    "the body is not JSON (send `\"text\"` for a string, or other bytes with `Content-Type: application/octet-stream`): {e}"
                ),
            )
        })?;
        serde_json::to_vec(&value).expect("serialisable")
    };
    let revision = node
        .store
        .kv_put(&claims.account, ns, key, &text)
        .await?
        .map_err(over_quota)?;
    publish(
        node,
        &claims.account,
        ns,
        &[(key.to_string(), Some(text))],
        &[],
    );
    Ok(json!({ "namespace": ns, "key": key, "revision": revision }))
}

pub async fn delete_key(node: &Node, claims: &Claims, ns: &str, key: &str) -> Result<(), ApiError> {
    if node.store.kv_delete(&claims.account, ns, key).await? {
        publish(node, &claims.account, ns, &[(key.to_string(), None)], &[]);
        Ok(())
    } else {
        Err(key_not_found(ns, key))
    }
}

/// Everything in a namespace as one JSON object — the seed's "cloud
/// hopping": take your state to another node. `keys` maps each key whose
/// value is JSON text to that JSON; `bytes` (only when there are such
/// values) maps every other key to its bytes in base64.
pub async fn export(node: &Node, claims: &Claims, ns: &str) -> Result<Value, ApiError> {
    let mut out = serde_json::Map::new();
    let mut raw = serde_json::Map::new();
    let mut after: Option<String> = None;
    loop {
        let keys = node
            .store
            .kv_keys(&claims.account, ns, "", after.as_deref(), 1000)
            .await?;
        for k in &keys {
            if let Some(e) = node.store.kv_get(&claims.account, ns, k).await? {
                match View::of(&e.value) {
                    View::Json(v) => out.insert(k.clone(), v),
                    View::Bytes(b) => raw.insert(k.clone(), Value::String(b)),
                };
            }
        }
        if keys.len() < 1000 {
            break;
        }
        after = keys.last().cloned();
    }
    let mut doc = json!({ "namespace": ns, "keys": out });
    if !raw.is_empty() {
        doc["bytes"] = Value::Object(raw);
    }
    Ok(doc)
}

/// Keys and the bytes to write under them (`None`: delete).
pub type Writes = Vec<(String, Option<Vec<u8>>)>;

/// The writes an import body asks for (`{"keys": {…}, "bytes": {…}}` or a
/// bare object of JSON values), every key and base64 value checked; no I/O.
pub fn import_writes(body: Value) -> Result<Writes, ApiError> {
    let is_export = |o: &serde_json::Map<String, Value>| {
        o.get("keys").is_some_and(Value::is_object)
            && o.get("bytes").is_none_or(Value::is_object)
            && o.keys()
                .all(|k| ["namespace", "keys", "bytes"].contains(&k.as_str()))
    };
    let mut raw = serde_json::Map::new();
    let map = match body {
        Value::Object(mut o) if is_export(&o) => {
            if let Some(Value::Object(b)) = o.remove("bytes") {
                raw = b;
            }
            match o.remove("keys") {
                Some(Value::Object(m)) => m,
                _ => unreachable!("checked"),
            }
        }
        Value::Object(o) => o,
        _ => {
            return Err(ApiError::new(
                ErrorCode::InvalidRequest,
                "send the JSON object `orb ns export` wrote",
            ));
        }
    };
    let mut writes = Vec::with_capacity(map.len() + raw.len());
    for (k, v) in map {
        check_key(&k)?;
        writes.push((k, Some(serde_json::to_vec(&v).expect("serialisable"))));
    }
    for (k, v) in raw {
        check_key(&k)?;
        let Value::String(text) = v else {
            return Err(ApiError::new(
                ErrorCode::InvalidValue,
                format!("`bytes.{k}` is a base64 string of the value's bytes"),
            ));
        };
        writes.push((k.clone(), Some(from_base64(&k, &text)?)));
    }
    Ok(writes)
}

/// Writes every pair of an export (`{"keys": {…}, "bytes": {…}}` or a bare
/// object of JSON values) in one atomic, durable commit; existing other
/// keys are kept.
pub async fn import(
    node: &Node,
    claims: &Claims,
    ns: &str,
    body: Value,
) -> Result<Value, ApiError> {
    let writes = import_writes(body)?;
    for (k, v) in &writes {
        let len = v.as_ref().map_or(0, Vec::len);
        if len > node.config.max_value_bytes {
            return Err(value_too_large(node, len)
                .0
                .with_details(json!({ "key": k, "limit": node.config.max_value_bytes }))
                .into());
        }
    }
    let n = writes.len();
    if let orb_store::Commit::OverQuota(q) = node
        .store
        .kv_commit(
            &claims.account,
            vec![orb_store::NsCommit {
                namespace: ns.to_string(),
                writes: writes.clone(),
                ..Default::default()
            }],
        )
        .await?
    {
        return Err(over_quota(q));
    }
    publish(node, &claims.account, ns, &writes, &[]);
    Ok(json!({ "namespace": ns, "imported": n }))
}
