//! The Kappa API (seed 004): long-lived, mostly sleeping IoT functions with
//! their own state, behind five REST verbs.
//!
//! | Route | Meaning |
//! | --- | --- |
//! | `PUT /kappa` | deploy (a component, or `{"function","export"}`) → `{"ref"}` |
//! | `POST /kappa/{ref}` | send a JSON message to the kappa's inport |
//! | `GET /kappa/{ref}` | pop the oldest message of its outport (204 when empty) |
//! | `DELETE /kappa/{ref}` | remove it, its state and its outport |
//! | `GET /kappa` | list the account's kappas |
//!
//! A message is handled by calling the kappa's export with it (an object
//! whose keys are the export's parameters, or any JSON value when the export
//! takes one parameter), with the kappa's own namespace (`kappa-{ref}`) as
//! its state. A returned value other than `null` is appended to the outport.
//!
//! Ordering and durability: messages to one kappa are handled one at a time,
//! in arrival order; the answer to `POST` comes after the state is committed
//! and the output stored, so an acknowledged message is never lost. Reads pop
//! under the same lock, oldest first.
//!
//! Deploying and deleting need a private token; sending and reading need a
//! token of the account that may call the kappa's function. The calls run
//! with the deployer's authority (re-checked at every message).

use crate::caller::{self, Claims, Request, Token, op};
use crate::clock::now_rfc3339;
use crate::services::calls::{self, InvokeRequest, Origin, Prepared, RunContext};
use crate::{ApiError, Node};
use orb_core::{ErrorCode, FunctionId, OrbError};
use orb_store::{NsCommit, RecordKind};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Most messages an outport holds; a full outport refuses new messages.
const OUTPORT_MAX: usize = 10_000;

/// A kappa as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Kappa {
    #[serde(rename = "ref")]
    pub reference: String,
    pub function: FunctionId,
    pub export: String,
    pub namespace: String,
    pub created_at: String,
    /// The deployer's checked call: stored, never shown.
    call: Prepared,
}

impl Kappa {
    fn public(&self, outport: usize) -> Value {
        json!({
            "ref": self.reference,
            "function": self.function,
            "export": self.export,
            "namespace": self.namespace,
            "created_at": self.created_at,
            "outport": outport,
        })
    }
}

/// Per-kappa locks: one message (or read) at a time, in arrival order
/// (tokio's mutex is fair). Holds the last outport sequence number.
#[derive(Default)]
pub(crate) struct Ports {
    ports: Mutex<HashMap<String, Arc<tokio::sync::Mutex<Port>>>>,
}

#[derive(Default)]
struct Port {
    /// The outport's record keys, oldest first: read from the store once,
    /// then kept in step under the lock (only this node writes them).
    queued: Option<std::collections::VecDeque<String>>,
}

impl Port {
    /// The outport's keys, loaded on first use.
    async fn queued(
        &mut self,
        node: &Node,
        account: &str,
        reference: &str,
    ) -> Result<&mut std::collections::VecDeque<String>, ApiError> {
        if self.queued.is_none() {
            let keys = node
                .store
                .list_records(RecordKind::KappaOut, &out_prefix(account, reference))
                .await?
                .into_iter()
                .map(|(k, _)| k)
                .collect();
            self.queued = Some(keys);
        }
        Ok(self.queued.as_mut().expect("just loaded"))
    }
}

impl Ports {
    fn port(&self, key: &str) -> Arc<tokio::sync::Mutex<Port>> {
        self.ports
            .lock()
            .expect("ports lock")
            .entry(key.to_string())
            .or_default()
            .clone()
    }
    fn forget(&self, key: &str) {
        self.ports.lock().expect("ports lock").remove(key);
    }
}

fn key(account: &str, reference: &str) -> String {
    format!("{account}/{reference}")
}

fn out_prefix(account: &str, reference: &str) -> String {
    format!("{account}/{reference}/")
}

fn msg_prefix(account: &str, reference: &str) -> String {
    format!("{account}/{reference}/")
}

fn not_found(reference: &str) -> ApiError {
    ApiError(
        OrbError::new(
            ErrorCode::KappaNotFound,
            format!("no kappa `{reference}` in this account; deploy one with PUT /kappa"),
        )
        .with_details(json!({ "ref": reference })),
    )
}

async fn get(node: &Node, account: &str, reference: &str) -> Result<Option<Kappa>, ApiError> {
    match node
        .store
        .get_record(RecordKind::Kappa, &key(account, reference))
        .await?
    {
        Some(bytes) => Ok(Some(serde_json::from_slice(&bytes).map_err(|e| {
            ApiError::new(ErrorCode::Internal, format!("stored kappa is corrupt: {e}"))
        })?)),
        None => Ok(None),
    }
}

/// The kappa named by the path, for a token that may use its function.
async fn find(
    node: &Node,
    token: &Token,
    reference: &str,
    operation: &str,
) -> Result<(Kappa, Claims), ApiError> {
    let Some(account) = caller::account_hint(node, token) else {
        caller::verify(node, token, Request::op(operation))?;
        return Err(not_found(reference));
    };
    let kappa = get(node, &account, reference)
        .await?
        .ok_or_else(|| not_found(reference))?;
    let text = kappa.function.to_string();
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
    // A kappa whose function the token may not run is, to it, not there.
    if !caller::may_run(node, &claims, &kappa.function).await? {
        return Err(not_found(reference));
    }
    caller::check_call(node, &claims, &kappa.function, None, false).await?;
    Ok((kappa, claims))
}

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct DeployQuery {
    /// The export the kappa runs (a component's bytes in the body; default
    /// its only export).
    export: Option<String>,
}

/// What `PUT /kappa` deploys: a stored function by name, or a component.
pub(crate) enum Code {
    /// `{"function": hash or alias, "export"}` (application/json).
    ByName(ByName),
    /// The component's bytes.
    Component(bytes::Bytes),
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ByName {
    /// A hash or an alias of the account.
    function: String,
    /// The export (default the function's only export).
    export: Option<String>,
}

/// `PUT /kappa`, for the caller's private token (`claims`; `token` checks
/// the kappa's call like a call of the caller).
pub(crate) async fn deploy(
    node: &Node,
    token: &Token,
    claims: &Claims,
    query: DeployQuery,
    code: Code,
) -> Result<Value, ApiError> {
    let (function, export) = match code {
        Code::ByName(b) => {
            let (id, _) =
                crate::services::aliases::resolve_target(node, token, &b.function).await?;
            (id, b.export.or(query.export))
        }
        Code::Component(bytes) => {
            if bytes.is_empty() {
                return Err(ApiError::new(
                    ErrorCode::InvalidRequest,
                    "the body is a component (application/wasm) or {\"function\", \"export\"} (application/json)",
                ));
            }
            caller::require_upload(claims)?;
            let (info, _) =
                crate::services::functions::upload(node, token, &claims.account, bytes, None)
                    .await?;
            (info.hash, query.export)
        }
    };
    let f = crate::services::functions::load(node, &function).await?;
    let export = match export {
        Some(e) => e,
        None => {
            let exports = f.exports();
            match exports.as_slice() {
                [one] => one.name.clone(),
                _ => {
                    return Err(ApiError::new(
                        ErrorCode::InvalidRequest,
                        format!(
                            "the component has {} exports; name the kappa's with `export` ({})",
                            exports.len(),
                            exports
                                .iter()
                                .map(|e| e.name.as_str())
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    ));
                }
            }
        }
    };
    f.param_names(&export)?;
    let reference = uuid::Uuid::now_v7().simple().to_string();
    let namespace = format!("kappa-{reference}");
    let req = InvokeRequest {
        function: Some(function.to_string()),
        export: export.clone(),
        namespace: Some(namespace.clone()),
        ..Default::default()
    };
    let call = calls::prepare_target(node, token, req).await?;
    calls::check_access(node, &call).await?;
    let kappa = Kappa {
        reference: reference.clone(),
        function,
        export,
        namespace,
        created_at: now_rfc3339(),
        call,
    };
    node.store
        .put_records(vec![(
            RecordKind::Kappa,
            key(&claims.account, &reference),
            Some(serde_json::to_vec(&kappa).expect("serialisable")),
        )])
        .await?;
    tracing::info!(kappa = %reference, function = %kappa.function, "kappa deployed");
    Ok(kappa.public(0))
}

/// The parameters for a message: the object itself when its keys are the
/// export's parameters, else the message as the only parameter.
fn message_params(names: &[String], message: Value) -> Result<Value, ApiError> {
    match message {
        Value::Object(o) if o.keys().all(|k| names.contains(k)) => Ok(Value::Object(o)),
        other if names.len() == 1 => {
            let mut m = Map::new();
            m.insert(names[0].clone(), other);
            Ok(Value::Object(m))
        }
        _ => Err(ApiError::new(
            ErrorCode::InvalidParams,
            format!(
                "the message must be an object with the export's parameters ({}), or any JSON value when it takes one",
                names.join(", ")
            ),
        )),
    }
}

/// `POST /kappa/{ref}`: handles one message; answers once its state and its
/// output are committed — together, in one transaction. With a message id
/// (`Idempotency-Key`), a retry of a message already handled is answered
/// from the record of the first and not applied again.
pub(crate) async fn send(
    node: &Node,
    token: &Token,
    reference: &str,
    message: Value,
    message_id: Option<String>,
) -> Result<Value, ApiError> {
    let (kappa, sender) = find(node, token, reference, op::KAPPA_WRITE).await?;
    let account = kappa.call.claims.account.clone();
    let port = node.kappas.port(&key(&account, reference));
    let mut port = port.lock().await;
    // Deleted while this message waited?
    let Some(kappa) = get(node, &account, reference).await? else {
        return Err(not_found(reference));
    };
    let message_key = message_id.map(|m| format!("{}{m}", msg_prefix(&account, reference)));
    if let Some(k) = &message_key
        && let Some(bytes) = node.store.get_record(RecordKind::KappaMessage, k).await?
    {
        let mut answer: Value = serde_json::from_slice(&bytes).map_err(|e| {
            ApiError::new(
                ErrorCode::Internal,
                format!("stored message answer is corrupt: {e}"),
            )
        })?;
        answer["replayed"] = Value::Bool(true);
        return Ok(answer);
    }
    let prefix = out_prefix(&account, reference);
    let queued = port.queued(node, &account, reference).await?;
    if queued.len() >= OUTPORT_MAX {
        return Err(ApiError(
            OrbError::new(
                ErrorCode::QueueFull,
                format!(
                    "kappa `{reference}` has {OUTPORT_MAX} unread outport messages; read some with GET /kappa/{reference}"
                ),
            )
            .with_details(json!({ "limit": OUTPORT_MAX })),
        ));
    }
    let micros = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64);
    let last = queued
        .back()
        .and_then(|k| k.rsplit('/').next())
        .and_then(|n| n.parse::<u64>().ok())
        .unwrap_or(0);
    let out_key = format!("{prefix}{:020}", micros.max(last + 1));
    let mut call = kappa.call.clone();
    let f = calls::check_access(node, &call).await?;
    call.req.params = message_params(&f.param_names(&call.req.export)?, message)?;
    let ctx = RunContext {
        origin: Origin {
            kappa: Some(reference.to_string()),
            ..Default::default()
        },
        kappa: Some(calls::KappaCommit {
            out_key: out_key.clone(),
            message_key,
        }),
        ..Default::default()
    };
    let mut activation = node.executor.run(node, &call, None, ctx).await?;
    // The sender caused it: a public sender sees it among its activations.
    activation.lineage = Some(sender.lineage.clone());
    node.store.put_activation(&activation).await?;
    if let Some(e) = activation.error {
        return Err(ApiError(e));
    }
    let emitted = activation.result.as_ref().is_some_and(|v| !v.is_null());
    if emitted {
        // Committed with the state by `execute`.
        port.queued(node, &account, reference)
            .await?
            .push_back(out_key);
    }
    Ok(json!({ "activation": activation.id, "emitted": emitted }))
}

/// `GET /kappa/{ref}`: the oldest outport message, removed; `None` if empty.
pub(crate) async fn receive(
    node: &Node,
    token: &Token,
    reference: &str,
) -> Result<Option<Value>, ApiError> {
    let (kappa, _) = find(node, token, reference, op::KAPPA_READ).await?;
    let account = &kappa.call.claims.account;
    let port = node.kappas.port(&key(account, reference));
    let mut port = port.lock().await;
    let queued = port.queued(node, account, reference).await?;
    let Some(k) = queued.front().cloned() else {
        return Ok(None);
    };
    let bytes = node
        .store
        .get_record(RecordKind::KappaOut, &k)
        .await?
        .ok_or_else(|| ApiError::new(ErrorCode::Internal, "an outport message vanished"))?;
    node.store
        .put_records(vec![(RecordKind::KappaOut, k, None)])
        .await?;
    queued.pop_front();
    Ok(Some(serde_json::from_slice(&bytes).map_err(|e| {
        ApiError::new(
            ErrorCode::Internal,
            format!("stored message is corrupt: {e}"),
        )
    })?))
}

/// `DELETE /kappa/{ref}`: the kappa, its outport and its namespace.
pub(crate) async fn remove(node: &Node, claims: &Claims, reference: &str) -> Result<(), ApiError> {
    let account = &claims.account;
    let port_key = key(account, reference);
    let port = node.kappas.port(&port_key);
    let _port = port.lock().await;
    let Some(kappa) = get(node, account, reference).await? else {
        return Err(not_found(reference));
    };
    // The record first: from here on the kappa is gone for every caller.
    let mut changes = vec![(RecordKind::Kappa, port_key.clone(), None)];
    for kind in [RecordKind::KappaOut, RecordKind::KappaMessage] {
        for (k, _) in node
            .store
            .list_records(kind, &out_prefix(account, reference))
            .await?
        {
            changes.push((kind, k, None));
        }
    }
    node.store.put_records(changes).await?;
    loop {
        let keys = node
            .store
            .kv_keys(account, &kappa.namespace, "", None, 1000)
            .await?;
        if keys.is_empty() {
            break;
        }
        let part = NsCommit {
            namespace: kappa.namespace.clone(),
            writes: keys.into_iter().map(|k| (k, None)).collect(),
            ..Default::default()
        };
        node.store.kv_commit(account, vec![part]).await?;
    }
    node.kappas.forget(&port_key);
    tracing::info!(kappa = %reference, "kappa deleted");
    Ok(())
}

pub(crate) async fn list(node: &Node, claims: &Claims) -> Result<Value, ApiError> {
    let account = claims.account.clone();
    let mut out = Vec::new();
    for (_, bytes) in node
        .store
        .list_records(RecordKind::Kappa, &format!("{account}/"))
        .await?
    {
        let Ok(k) = serde_json::from_slice::<Kappa>(&bytes) else {
            continue;
        };
        if !caller::may_run(node, claims, &k.function).await? {
            continue;
        }
        let queued = node
            .store
            .list_records(RecordKind::KappaOut, &out_prefix(&account, &k.reference))
            .await?
            .len();
        out.push(k.public(queued));
    }
    Ok(json!({ "kappas": out }))
}
