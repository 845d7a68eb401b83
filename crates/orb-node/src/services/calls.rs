//! The call pipeline: resolve → load (memory, disk cache, compile) → check
//! parameters → run → record the activation. `prepare` checks a call (the
//! caller's token for the function it names), `execute` runs it here and
//! commits what it did to its namespaces.

use crate::caller::{self, Token};
use crate::clock::now_rfc3339;
use crate::metrics as m;
use crate::services::functions::{load, not_found, parse_id, upload};
use crate::{ApiError, Node};
use base64::Engine as _;
use bytes::Bytes;
use orb_core::{Activation, ActivationStatus, ErrorCode, FunctionId, OrbError};
use orb_runtime::{CallRequest, LoadedFunction};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value as Json, json};
use std::sync::Arc;
use std::sync::atomic::Ordering;

/// Body of `POST /v1/invoke`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InvokeRequest {
    /// `sha256:<hex>`. May be omitted when `component` is given.
    #[serde(default)]
    pub function: Option<String>,
    /// The export to call (none for a sequence).
    #[serde(default)]
    pub export: String,
    #[serde(default)]
    pub params: Json,
    #[serde(default)]
    pub globals: Map<String, Json>,
    /// The component itself, base64: stored and run in one round trip.
    #[serde(default)]
    pub component: Option<String>,
    /// The namespace the function reads and writes (`wasi:keyvalue`, `wasi:config`).
    #[serde(default)]
    pub namespace: Option<String>,
    #[serde(default)]
    pub set: Option<Map<String, Json>>,
    #[serde(default)]
    pub write_to: Option<String>,
    /// Queue the call and answer 202 with its activation id.
    #[serde(default, rename = "async")]
    pub is_async: bool,
    /// Retries of a failed asynchronous call (default none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<RetryPolicy>,
}

/// How a failed asynchronous call is retried before it is dead-lettered.
#[derive(Debug, Clone, Default, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RetryPolicy {
    /// Retries after the first try.
    pub max: u32,
    /// Wait before the first retry (`"500ms"`, `"2s"`); doubles each time.
    #[serde(default)]
    pub backoff: Option<String>,
}

/// A successful call.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct InvokeResponse {
    pub activation: String,
    pub function: FunctionId,
    pub result: Json,
    pub duration_us: u64,
    pub fuel: u64,
}

fn globals_to_config(globals: &Map<String, Json>) -> Vec<(String, String)> {
    globals
        .iter()
        .map(|(k, v)| {
            let s = match v {
                Json::String(s) => s.clone(),
                other => other.to_string(),
            };
            (k.clone(), s)
        })
        .collect()
}

/// Held while a call runs and commits (see `Node::ns_gates`).
pub(crate) enum Gate {
    Shared(#[allow(dead_code)] tokio::sync::OwnedRwLockReadGuard<()>),
    Exclusive(#[allow(dead_code)] tokio::sync::OwnedRwLockWriteGuard<()>),
}

/// A call's hold on its namespace's gate in `Node::ns_gates`; the last
/// holder to go removes the gate, so the map keeps only namespaces in use.
pub(crate) struct NsGate<'a> {
    node: &'a Node,
    key: String,
    gate: Arc<tokio::sync::RwLock<()>>,
}

impl<'a> NsGate<'a> {
    pub(crate) fn take(node: &'a Node, key: String) -> Self {
        let gate = node
            .ns_gates
            .lock()
            .expect("gates lock")
            .entry(key.clone())
            .or_default()
            .clone();
        Self { node, key, gate }
    }
}

impl std::ops::Deref for NsGate<'_> {
    type Target = Arc<tokio::sync::RwLock<()>>;
    fn deref(&self) -> &Self::Target {
        &self.gate
    }
}

impl Drop for NsGate<'_> {
    fn drop(&mut self) {
        let mut gates = self.node.ns_gates.lock().expect("gates lock");
        // Every holder got its clone from the map under this lock, so two
        // (the map's and ours) means nobody else holds or waits on it.
        if Arc::strong_count(&self.gate) == 2 {
            gates.remove(&self.key);
        }
    }
}

/// Tries of a call whose namespace reads were changed by a concurrent call.
pub(crate) const MAX_ATTEMPTS: u32 = 5;

/// The guest's view of the call's namespace, with `set` applied first.
fn namespace_access(
    node: &Node,
    claims: &caller::Claims,
    function: &FunctionId,
    ns: &str,
    req: &InvokeRequest,
) -> Result<orb_runtime::KvAccess, ApiError> {
    // Keys and sizes were checked by `check_namespace_fields` (in `prepare`).
    let preset = req
        .set
        .iter()
        .flatten()
        .map(|(k, v)| (k.clone(), serde_json::to_vec(v).expect("serialisable")))
        .collect();
    Ok(kv_access(node, claims, function, ns, preset))
}

/// A guest's view of namespace `ns` for the holder of `claims`, with
/// `preset` written first. A grant's mode is exactly what the guest gets:
/// `r` cannot write, `w` cannot read.
pub(crate) fn kv_access(
    node: &Node,
    claims: &caller::Claims,
    function: &FunctionId,
    ns: &str,
    preset: std::collections::BTreeMap<String, Vec<u8>>,
) -> orb_runtime::KvAccess {
    let mode = claims.grant.as_ref().and_then(|g| g.namespaces.get(ns));
    orb_runtime::KvAccess {
        namespace: ns.to_string(),
        backend: Arc::new(NodeKv {
            store: node.store.clone(),
            auth: node.auth.clone(),
            claims: claims.clone(),
            function: function.clone(),
        }),
        preset,
        read_only: mode.is_some_and(|a| !a.can_write()),
        write_only: mode.is_some_and(|a| !a.can_read()),
        max_value_bytes: node.config.max_value_bytes,
    }
}

/// Reads namespaces' committed state for a guest, and decides which other
/// namespaces (buckets) it may open: those the caller's token could name.
struct NodeKv {
    store: Arc<dyn orb_store::Store>,
    auth: Arc<orb_auth::Authority>,
    claims: caller::Claims,
    function: FunctionId,
}

#[async_trait::async_trait]
impl orb_runtime::KvBackend for NodeKv {
    async fn get(&self, namespace: &str, key: &str) -> Result<Option<(Vec<u8>, u64)>, String> {
        self.store
            .kv_get(&self.claims.account, namespace, key)
            .await
            .map(|e| e.map(|e| (e.value, e.revision)))
            .map_err(|e| e.to_string())
    }

    async fn keys(
        &self,
        namespace: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<String>, String> {
        self.store
            .kv_keys(&self.claims.account, namespace, "", after, limit)
            .await
            .map_err(|e| e.to_string())
    }

    /// A private token opens any namespace of its account. A public token
    /// opens one its grant names, for this function when it is on that
    /// namespace's whitelist — the same rules as naming it with the call —
    /// with exactly the grant's mode. Either way the token's attenuation
    /// blocks must allow calling this function on that namespace (a token
    /// narrowed to `--ns home1` cannot open `home2`), and it must still be
    /// valid (not revoked, not expired).
    async fn may_open(&self, namespace: &str) -> Option<orb_runtime::BucketAccess> {
        let function = self.function.to_string();
        let req = caller::Request {
            operation: caller::op::INVOKE,
            function: Some(&function),
            namespace: Some(namespace),
        };
        if let Err(e) = self.auth.recheck(&self.claims, &req) {
            tracing::debug!(namespace, error = %e, "bucket refused by the token");
            return None;
        }
        let Some(grant) = &self.claims.grant else {
            return Some(orb_runtime::BucketAccess::READ_WRITE);
        };
        let access = grant.namespaces.get(namespace)?;
        let whitelisted = self
            .store
            .get_whitelist(&self.claims.account, namespace)
            .await
            .ok()
            .flatten()
            .is_some_and(|l| l.contains(&self.function));
        whitelisted.then_some(orb_runtime::BucketAccess {
            read: access.can_read(),
            write: access.can_write(),
        })
    }
}

/// Commits what a call did to its namespaces: on success its reads are
/// validated and its writes (plus `write_to`) applied; on failure only its
/// `set` pairs are written. Returns `false` on a conflict (re-run the call).
/// A quota refusal becomes the call's error. `cause_triggers` are the
/// triggers whose rules led to the call (none of them fires on these
/// changes again).
#[allow(clippy::too_many_arguments)]
async fn commit(
    node: &Node,
    account: &str,
    access: &orb_runtime::KvAccess,
    write_to: Option<&str>,
    cause_triggers: &[String],
    kappa: Option<&KappaCommit>,
    activation: &str,
    outcome: &mut orb_runtime::CallOutcome,
) -> Result<bool, ApiError> {
    let parts = outcome.take_commit(access, write_to);
    // A kappa's output and its message id commit with its state.
    let records = match (kappa, &outcome.result) {
        (Some(k), Ok(value)) => k.records(value, activation),
        _ => Vec::new(),
    };
    match commit_parts(node, account, parts, records, cause_triggers).await? {
        Err(over_quota) => {
            outcome.result = Err(over_quota.0);
            Ok(true)
        }
        Ok(done) => Ok(done),
    }
}

/// Commits per-namespace transactions, and `records` in the same store
/// transaction: `Ok(true)` done (watchers and triggers told), `Ok(false)` a
/// conflict, `Err` the quota refused it.
pub(crate) async fn commit_parts(
    node: &Node,
    account: &str,
    parts: Vec<(String, orb_runtime::NsTransaction)>,
    records: Vec<orb_store::RecordChange>,
    cause_triggers: &[String],
) -> Result<Result<bool, ApiError>, ApiError> {
    let parts: Vec<orb_store::NsCommit> = parts
        .into_iter()
        .map(|(namespace, t)| orb_store::NsCommit {
            namespace,
            reads: t.reads.into_iter().collect(),
            writes: t.writes.into_iter().collect(),
            listed: t.listed,
        })
        .collect();
    if parts.is_empty() && records.is_empty() {
        return Ok(Ok(true));
    }
    // Watchers and namespace triggers get the committed changes.
    let announce: Vec<_> = parts
        .iter()
        .map(|p| (p.namespace.clone(), p.writes.clone()))
        .collect();
    match node
        .store
        .kv_commit_with_records(account, parts, records)
        .await?
    {
        orb_store::Commit::Done => {
            for (ns, writes) in announce {
                crate::services::namespaces::publish(node, account, &ns, &writes, cause_triggers);
            }
            Ok(Ok(true))
        }
        orb_store::Commit::OverQuota(q) => Ok(Err(crate::services::namespaces::over_quota(q))),
        orb_store::Commit::Conflict => Ok(Ok(false)),
    }
}

/// A call that passed every check and may run: who asks, what runs.
/// Serialized as is into the async queue and into schedules.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Prepared {
    pub claims: caller::Claims,
    pub function: FunctionId,
    /// The alias the caller named, if any.
    #[serde(default)]
    pub alias: Option<String>,
    pub req: InvokeRequest,
}

/// Checks a request and everything it names, without running it: the
/// namespace rules, the function (hash, alias or inline component), the
/// token, ownership, whitelist, the export and its parameters.
pub(crate) async fn prepare(
    node: &Node,
    token: &Token,
    req: InvokeRequest,
) -> Result<(Prepared, Ready), ApiError> {
    let prepared = prepare_target(node, token, req).await?;
    let ready = check_prepared(node, &prepared).await?;
    Ok((prepared, ready))
}

/// [`prepare`] without the parameter check (rules complete their
/// parameters from each event): the namespace fields, the function, the
/// token.
pub(crate) async fn prepare_target(
    node: &Node,
    token: &Token,
    req: InvokeRequest,
) -> Result<Prepared, ApiError> {
    prepare_target_as(node, token, req, true).await
}

/// A call another node of the network forwarded with the token its caller
/// presented: verified here again, from the token alone (the forwarding
/// node is not trusted), but its rate was already taken where it entered.
#[cfg_attr(not(feature = "network"), allow(dead_code))]
pub(crate) async fn prepare_forwarded(
    node: &Node,
    token: &Token,
    req: InvokeRequest,
) -> Result<(Prepared, Ready), ApiError> {
    let prepared = prepare_target_as(node, token, req, false).await?;
    let ready = check_prepared(node, &prepared).await?;
    Ok((prepared, ready))
}

async fn prepare_target_as(
    node: &Node,
    token: &Token,
    mut req: InvokeRequest,
    take_rate: bool,
) -> Result<Prepared, ApiError> {
    if node.shutting_down.load(Ordering::SeqCst) {
        return Err(ApiError::new(
            ErrorCode::ShuttingDown,
            "the node is shutting down; retry on another node",
        ));
    }
    check_namespace_fields(&req, node.config.max_value_bytes)?;
    if req.namespace.is_some() && crate::services::net::is_networked(node) {
        return Err(ApiError::new(
            ErrorCode::NotInNetwork,
            "namespaces are not shared across the nodes of a network yet, so a networked node runs no call that names one (never against a node-local copy); call a single node, or leave out `namespace`",
        ));
    }
    let mut alias = None;
    let (id, inline) = match (&req.component, &req.function) {
        (Some(b64), named) => {
            // Standard alphabet; padding optional and unused trailing bits
            // ignored, as most encoders and decoders do.
            const LENIENT: base64::engine::GeneralPurpose = base64::engine::GeneralPurpose::new(
                &base64::alphabet::STANDARD,
                base64::engine::GeneralPurposeConfig::new()
                    .with_decode_allow_trailing_bits(true)
                    .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
            );
            let bytes = LENIENT.decode(b64.as_bytes()).map_err(|e| {
                ApiError::new(
                    ErrorCode::InvalidRequest,
                    format!("`component` is not valid base64: {e}"),
                )
            })?;
            let actual = FunctionId::of(&bytes);
            if let Some(named) = named {
                let named = parse_id(named)?;
                if named != actual {
                    return Err(ApiError(
                        OrbError::new(
                            ErrorCode::InvalidRequest,
                            format!("`function` is {named} but the component's hash is {actual}"),
                        )
                        .with_details(
                            json!({ "expected": named.to_string(), "actual": actual.to_string() }),
                        ),
                    ));
                }
            }
            (actual, Some(Bytes::from(bytes)))
        }
        (None, Some(named)) => {
            let (id, a) = crate::services::aliases::resolve_target(node, token, named).await?;
            alias = a;
            (id, None)
        }
        (None, None) => {
            return Err(ApiError::new(
                ErrorCode::InvalidRequest,
                "`function` (a hash or an alias) or `component` is required",
            ));
        }
    };
    let fn_text = id.to_string();
    let request = caller::Request {
        operation: caller::op::INVOKE,
        function: Some(&fn_text),
        namespace: req.namespace.as_deref(),
    };
    let claims = if take_rate {
        caller::authorize(node, token, request).await?
    } else {
        caller::verify(node, token, request)?
    };
    if let Some(bytes) = inline {
        caller::require_upload(&claims)?;
        upload(node, token, &claims.account, bytes, None).await?;
    }
    req.component = None;
    req.function = Some(fn_text);
    Ok(Prepared {
        claims,
        function: id,
        alias,
        req,
    })
}

/// `set` and `write_to` need a namespace; the namespace a valid name; their
/// keys and values the namespace rules. Checked before anything is queued or
/// scheduled, so a bad key is refused up front, never at the first run.
pub(crate) fn check_namespace_fields(
    req: &InvokeRequest,
    max_value_bytes: usize,
) -> Result<(), ApiError> {
    let Some(ns) = &req.namespace else {
        if req.set.is_some() || req.write_to.is_some() {
            return Err(ApiError::new(
                ErrorCode::InvalidRequest,
                "`set` and `write_to` need a `namespace`",
            ));
        }
        return Ok(());
    };
    caller::check_namespace_name(ns)?;
    let bad_key = |field: &str, k: &str| {
        ApiError::new(
            ErrorCode::InvalidKey,
            format!(
                "`{field}` key `{k}` is not a valid key: 1–{} bytes, no NUL",
                orb_core::MAX_KEY_BYTES
            ),
        )
    };
    for (k, v) in req.set.iter().flatten() {
        if !orb_core::valid_key(k) {
            return Err(bad_key("set", k));
        }
        let len = serde_json::to_vec(v).map_or(0, |t| t.len());
        if len > max_value_bytes {
            return Err(ApiError(
                OrbError::new(
                    ErrorCode::TooLarge,
                    format!(
                        "`set` value of key `{k}` is {len} bytes; values are at most {max_value_bytes} bytes (max_value_bytes)"
                    ),
                )
                .with_details(json!({ "key": k, "limit": max_value_bytes })),
            ));
        }
    }
    match &req.write_to {
        Some(key) if !orb_core::valid_key(key) => Err(bad_key("write_to", key)),
        _ => Ok(()),
    }
}

/// A checked call ready to run: the loaded function and its converted
/// parameters (converted once; `execute` converts again only to re-run).
pub(crate) struct Ready {
    f: Arc<LoadedFunction>,
    call: orb_runtime::CheckedCall,
}

/// The checks that depend on the stored state: the token still valid
/// (revocation, expiry — stored claims are checked again), ownership, the
/// token's call rules and whitelist, the export and parameters. Run again
/// before a queued or scheduled call runs, since things may have changed
/// meanwhile.
pub(crate) async fn check_prepared(node: &Node, p: &Prepared) -> Result<Ready, ApiError> {
    let f = check_access(node, p).await?;
    let call = f.check_params(&p.req.export, &p.req.params)?;
    Ok(Ready { f, call })
}

/// [`check_prepared`] without the parameters: the token, ownership, the
/// call rules; returns the loaded function.
pub(crate) async fn check_access(
    node: &Node,
    p: &Prepared,
) -> Result<Arc<LoadedFunction>, ApiError> {
    // Stored claims (queued, scheduled, rule and kappa calls) are checked
    // again, attenuation blocks included, for what this run does.
    let fn_text = p.function.to_string();
    node.auth
        .recheck(
            &p.claims,
            &caller::Request {
                operation: caller::op::INVOKE,
                function: Some(&fn_text),
                namespace: p.req.namespace.as_deref(),
            },
        )
        .map_err(|e| ApiError(e.into()))?;
    // An account only calls functions it owns (the hash-first flow uploads on 404).
    if !node.store.owns(&p.claims.account, &p.function).await? {
        return Err(not_found(&p.function));
    }
    caller::check_call(
        node,
        &p.claims,
        &p.function,
        p.req.namespace.as_deref(),
        p.req.set.is_some() || p.req.write_to.is_some(),
    )
    .await?;
    load(node, &p.function).await
}

/// What a kappa's message commits with its state, in the same transaction.
#[derive(Debug, Clone)]
pub(crate) struct KappaCommit {
    /// The outport record a result other than `null` is appended under.
    pub out_key: String,
    /// The sender's message id (`Idempotency-Key`), recorded with the answer.
    pub message_key: Option<String>,
}

impl KappaCommit {
    fn records(&self, value: &Json, activation: &str) -> Vec<orb_store::RecordChange> {
        let emitted = !value.is_null();
        let mut out = Vec::new();
        if emitted {
            out.push((
                orb_store::RecordKind::KappaOut,
                self.out_key.clone(),
                Some(serde_json::to_vec(value).expect("serialisable")),
            ));
        }
        if let Some(m) = &self.message_key {
            let answer = json!({ "activation": activation, "emitted": emitted });
            out.push((
                orb_store::RecordKind::KappaMessage,
                m.clone(),
                Some(serde_json::to_vec(&answer).expect("serialisable")),
            ));
        }
        out
    }
}

/// Where a run came from, for its activation record.
#[derive(Debug, Clone, Default)]
pub(crate) struct RunContext {
    /// The activation id to use (async calls reserve theirs when queued).
    pub activation: Option<String>,
    /// A kappa's message: its output commits with its state.
    pub kappa: Option<KappaCommit>,
    pub schedule: Option<String>,
    pub attempts: u32,
    pub origin: Origin,
    /// The token the caller presented, when the call comes from a request
    /// (not for queued, scheduled, rule or kappa runs, which carry stored
    /// claims). A single node does not need it; an executor that runs the
    /// call on another node forwards it, so that node verifies the caller's
    /// signature itself instead of trusting the claims it is sent.
    #[allow(dead_code)] // read by a forwarding executor; `Local` has no use for it
    pub token: Option<Token>,
}

/// What caused a call besides its caller: a trigger's rule, a sequence, a
/// kappa's message. Stored with queued calls; copied into the activation.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct Origin {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trigger: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kappa: Option<String>,
    /// The activation that caused this one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cause: Option<String>,
    /// The triggers whose rules led to this call, outermost first, ending
    /// with `trigger` (see [`Origin::trigger_chain`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub chain: Vec<String>,
}

impl Origin {
    /// The triggers whose rules led to this call; calls queued before the
    /// chain was recorded have only their own `trigger`.
    pub(crate) fn trigger_chain(&self) -> Vec<String> {
        if self.chain.is_empty() {
            self.trigger.iter().cloned().collect()
        } else {
            self.chain.clone()
        }
    }

    /// Copies the origin into an activation record.
    pub(crate) fn stamp(&self, a: &mut Activation) {
        a.trigger.clone_from(&self.trigger);
        a.rule.clone_from(&self.rule);
        a.kappa.clone_from(&self.kappa);
        a.cause.clone_from(&self.cause);
    }
}

/// Runs a prepared call (re-running on namespace conflicts, unless it sent
/// an outgoing request: a side effect is never repeated) and returns its
/// activation record, not yet stored. A function's failure is in the record;
/// `Err` is for calls that could not run at all (the function is gone, the
/// parameters no longer fit).
pub(crate) async fn execute(
    node: &Node,
    p: &Prepared,
    ready: Ready,
    ctx: RunContext,
) -> Result<Activation, ApiError> {
    let (claims, id, req) = (&p.claims, &p.function, &p.req);
    let Ready { f, call } = ready;
    // Parameters are converted once; only a re-run after a conflict converts again.
    let mut checked = Some(call);
    let export = checked
        .as_ref()
        .map(|c| c.export().to_string())
        .unwrap_or_default();
    let globals = globals_to_config(&req.globals);
    let kv = match &req.namespace {
        Some(ns) => Some(namespace_access(node, claims, id, ns, req)?),
        None => None,
    };
    // Queued, scheduled and rule calls carry the claims they were made with.
    let outbound = crate::services::outbound::policy_for(
        node,
        &claims.account,
        Some(crate::services::outbound::OutboundCaller {
            claims,
            function: id,
            namespace: req.namespace.as_deref(),
        }),
    )
    .await?;
    let start = now_rfc3339();
    let gate = kv
        .as_ref()
        .map(|a| NsGate::take(node, format!("{}\0{}", claims.account, a.namespace)));
    let cause_triggers = ctx.origin.trigger_chain();
    let activation_id = ctx
        .activation
        .clone()
        .unwrap_or_else(|| uuid::Uuid::now_v7().to_string());
    let mut attempt = 0;
    let outcome = loop {
        attempt += 1;
        let _gate = match &gate {
            Some(g) if attempt == 1 => Some(Gate::Shared(Arc::clone(g).read_owned().await)),
            Some(g) => Some(Gate::Exclusive(Arc::clone(g).write_owned().await)),
            None => None,
        };
        let call = match checked.take() {
            Some(c) => c,
            None => f.check_params(&req.export, &req.params)?,
        };
        metrics::gauge!(m::IN_FLIGHT).increment(1.0);
        let request = CallRequest {
            globals: globals.clone(),
            limits: None,
            kv: kv.clone(),
            outbound: outbound.clone(),
        };
        let mut outcome = node.runtime.call(&f, call, request).await;
        metrics::gauge!(m::IN_FLIGHT).decrement(1.0);
        let Some(access) = &kv else { break outcome };
        if commit(
            node,
            &claims.account,
            access,
            req.write_to.as_deref(),
            &cause_triggers,
            ctx.kappa.as_ref(),
            &activation_id,
            &mut outcome,
        )
        .await?
        {
            break outcome;
        }
        metrics::counter!(m::KV_CONFLICTS).increment(1);
        if outcome.side_effect() {
            // It may have changed something elsewhere: running it again could
            // do that twice. The caller decides.
            let sent: Vec<&orb_core::OutboundRequest> =
                outcome.outbound.iter().filter(|r| r.sent()).collect();
            outcome.result = Err(OrbError::new(
                ErrorCode::Conflict,
                format!(
                    "namespace `{}` changed under this call; it was not re-run because it had an external side effect ({} outgoing HTTP request(s)) — nothing was written; retry if repeating them is safe",
                    access.namespace,
                    sent.len()
                ),
            )
            .with_details(json!({ "attempts": attempt, "side_effect": true, "outbound": sent })));
            break outcome;
        }
        if attempt >= MAX_ATTEMPTS {
            outcome.result = Err(OrbError::new(
                ErrorCode::Conflict,
                format!(
                    "namespace `{}` kept changing under this call; gave up after {MAX_ATTEMPTS} tries — retry later",
                    access.namespace
                ),
            )
            .with_details(json!({ "attempts": attempt })));
            break outcome;
        }
    };
    let error = finished(
        outcome.result.as_ref().err().cloned(),
        id,
        &activation_id,
        outcome.duration,
    );
    let mut activation = Activation {
        id: activation_id,
        account: claims.account.clone(),
        lineage: Some(claims.lineage.clone()),
        function: Some(id.clone()),
        export,
        status: if outcome.result.is_ok() {
            ActivationStatus::Succeeded
        } else {
            ActivationStatus::Failed
        },
        start,
        duration_us: outcome.duration.as_micros() as u64,
        fuel: outcome.fuel,
        result: outcome.result.ok(),
        error,
        logs: outcome.logs,
        logs_truncated: outcome.logs_truncated,
        alias: p.alias.clone(),
        schedule: ctx.schedule,
        attempts: ctx.attempts,
        outbound: outcome.outbound,
        ..Default::default()
    };
    ctx.origin.stamp(&mut activation);
    Ok(activation)
}

/// The bookkeeping every finished run shares (calls and HTTP requests):
/// counts it in the call metrics by outcome, and names the function and the
/// activation in the details of its error, if any.
pub(crate) fn finished(
    error: Option<OrbError>,
    function: &FunctionId,
    activation: &str,
    duration: std::time::Duration,
) -> Option<OrbError> {
    let status = match &error {
        None => "succeeded",
        Some(e) => e.error_code().map_or("internal", |c| c.as_str()),
    };
    metrics::counter!(m::CALLS, "status" => status).increment(1);
    metrics::histogram!(m::CALL_DURATION).record(duration.as_secs_f64());
    error.map(|mut e| {
        if !e.details.is_object() {
            e.details = json!({});
        }
        if let Some(d) = e.details.as_object_mut() {
            d.insert("function".into(), Json::String(function.to_string()));
            d.insert("activation".into(), Json::String(activation.to_string()));
        }
        e
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_namespace_gate_lives_only_while_someone_holds_it() {
        let dir = tempfile::tempdir().unwrap();
        let node = Node::open(crate::NodeConfig {
            data_dir: dir.path().to_path_buf(),
            ..Default::default()
        })
        .unwrap();
        let count = || node.ns_gates.lock().unwrap().len();
        let first = NsGate::take(&node, "acct\0ns".into());
        let second = NsGate::take(&node, "acct\0ns".into());
        assert!(Arc::ptr_eq(&first, &second), "one gate per namespace");
        let other = NsGate::take(&node, "acct\0other".into());
        assert_eq!(count(), 2);
        drop(first);
        assert_eq!(count(), 2, "still held by the second call");
        drop(second);
        assert_eq!(count(), 1, "the last holder removed it");
        drop(other);
        assert_eq!(count(), 0);
    }
}
