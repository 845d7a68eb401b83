//! Triggers and rules: named events, and the calls they start.
//!
//! A trigger is a name in an account. It fires
//! - on `POST /v1/triggers/{name}` with a JSON object as payload,
//! - on a schedule's tick (a schedule with `"trigger"` instead of a function),
//! - on a committed change to a key under `prefix` in `namespace` (payload
//!   `{"namespace", "key", "value", "deleted"}`).
//!
//! A rule binds a trigger to a function export. When the trigger fires, each
//! enabled rule's call is queued as an asynchronous call (durable, retried
//! per its policy, bounded like every async call) with parameters taken from
//! the payload — only the ones the export declares — and the rule's static
//! `params` on top (the owner's values win over the event's). Each firing is
//! an activation (`trigger` set, no function) whose result lists the rule
//! activations it caused; each of those carries `trigger`, `rule` and
//! `cause` (the firing's id).
//!
//! Rules run with the authority of the private token that created them; the
//! token is checked again (revocation, expiry) at every firing.
//!
//! Namespace-change firings are at most once: a change announced while the
//! node crashes is not replayed. A rule whose `write_to` falls under its own
//! trigger's prefix is refused (it would fire itself forever).

use crate::caller::{self, Claims, Token};
use crate::clock::now_rfc3339;
use crate::services::calls::{self, InvokeRequest, Origin, Prepared};
use crate::{ApiError, Node};
use orb_core::{Activation, ActivationStatus, ErrorCode, OrbError};
use orb_store::RecordKind;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use std::collections::HashMap;
use std::sync::{Arc, RwLock};

/// Body of `PUT /v1/triggers/{name}`.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TriggerRequest {
    /// Fire on committed changes in this namespace…
    #[serde(default)]
    pub namespace: Option<String>,
    /// …to keys starting with this prefix (default: every key).
    #[serde(default)]
    pub prefix: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
}

/// A trigger as stored and shown.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Trigger {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub prefix: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub created_at: String,
}

/// Body of `PUT /v1/rules/{name}`.
#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RuleRequest {
    pub trigger: String,
    /// A hash or an alias (resolved again at every firing).
    pub function: String,
    pub export: String,
    /// Static parameters, on top of the payload's.
    #[serde(default)]
    pub params: Map<String, Value>,
    #[serde(default)]
    pub globals: Map<String, Value>,
    #[serde(default)]
    pub namespace: Option<String>,
    #[serde(default)]
    pub write_to: Option<String>,
    #[serde(default = "yes")]
    pub enabled: bool,
}

fn yes() -> bool {
    true
}

/// A rule as stored; [`Rule::public`] is what the API shows.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Rule {
    pub name: String,
    pub spec: RuleRequest,
    pub created_at: String,
    /// The checked call with the creator's claims: stored, never shown.
    call: Prepared,
}

impl Rule {
    fn public(&self) -> Value {
        let mut v = serde_json::to_value(&self.spec).expect("serialisable");
        if let Some(o) = v.as_object_mut() {
            o.insert("name".into(), Value::String(self.name.clone()));
            o.insert("created_at".into(), Value::String(self.created_at.clone()));
            o.insert(
                "resolved_function".into(),
                Value::String(self.call.function.to_string()),
            );
        }
        v
    }
}

/// Which triggers listen to which namespaces: (account, namespace) →
/// (trigger, prefix). The store holds the truth; this is loaded at start.
#[derive(Default)]
pub(crate) struct Index {
    by_namespace: RwLock<HashMap<AccountNamespace, Vec<NamedPrefix>>>,
}

/// (account, namespace).
type AccountNamespace = (String, String);
/// (trigger, key prefix).
type NamedPrefix = (String, String);

impl Index {
    fn set(&self, account: &str, t: &Trigger) {
        let mut all = self.by_namespace.write().expect("triggers lock");
        for list in all.values_mut() {
            list.retain(|(name, _)| name != &t.name);
        }
        all.retain(|_, list| !list.is_empty());
        if let Some(ns) = &t.namespace {
            all.entry((account.to_string(), ns.clone()))
                .or_default()
                .push((t.name.clone(), t.prefix.clone()));
        }
    }

    fn remove(&self, account: &str, name: &str) {
        let mut all = self.by_namespace.write().expect("triggers lock");
        for ((acc, _), list) in all.iter_mut() {
            if acc == account {
                list.retain(|(n, _)| n != name);
            }
        }
        all.retain(|_, list| !list.is_empty());
    }

    /// The key prefixes `account`'s triggers watch in `namespace` (looked
    /// up once per commit, not per key).
    pub(crate) fn prefixes(&self, account: &str, namespace: &str) -> Vec<String> {
        let all = self.by_namespace.read().expect("triggers lock");
        all.get(&(account.to_string(), namespace.to_string()))
            .map(|list| list.iter().map(|(_, p)| p.clone()).collect())
            .unwrap_or_default()
    }

    fn matching(&self, account: &str, namespace: &str, key: &str) -> Vec<String> {
        let all = self.by_namespace.read().expect("triggers lock");
        all.get(&(account.to_string(), namespace.to_string()))
            .map(|list| {
                list.iter()
                    .filter(|(_, prefix)| key.starts_with(prefix.as_str()))
                    .map(|(name, _)| name.clone())
                    .collect()
            })
            .unwrap_or_default()
    }
}

fn key(account: &str, name: &str) -> String {
    format!("{account}/{name}")
}

fn check_name(what: &str, name: &str) -> Result<(), ApiError> {
    if orb_core::valid_namespace_name(name) {
        Ok(())
    } else {
        Err(ApiError::new(
            ErrorCode::InvalidName,
            format!(
                "`{name}` is not a valid {what} name: 1–64 characters of a-z, 0-9, `.`, `_`, `-`, starting with a letter or digit"
            ),
        ))
    }
}

fn trigger_not_found(name: &str) -> ApiError {
    ApiError(
        OrbError::new(
            ErrorCode::TriggerNotFound,
            format!(
                "no trigger `{name}` in this account; create it with `orb trigger create {name}`"
            ),
        )
        .with_details(json!({ "trigger": name })),
    )
}

fn rule_not_found(name: &str) -> ApiError {
    ApiError(
        OrbError::new(
            ErrorCode::RuleNotFound,
            format!("no rule `{name}` in this account; see `orb rule ls`"),
        )
        .with_details(json!({ "rule": name })),
    )
}

fn decode<T: serde::de::DeserializeOwned>(what: &str, bytes: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(bytes).map_err(|e| {
        ApiError::new(
            ErrorCode::Internal,
            format!("stored {what} is corrupt: {e}"),
        )
    })
}

pub(crate) async fn get_trigger(
    node: &Node,
    account: &str,
    name: &str,
) -> Result<Option<Trigger>, ApiError> {
    match node
        .store
        .get_record(RecordKind::Trigger, &key(account, name))
        .await?
    {
        Some(bytes) => Ok(Some(decode("trigger", &bytes)?)),
        None => Ok(None),
    }
}

async fn rules_of(node: &Node, account: &str) -> Result<Vec<Rule>, ApiError> {
    let mut out = Vec::new();
    for (k, bytes) in node
        .store
        .list_records(RecordKind::Rule, &format!("{account}/"))
        .await?
    {
        match serde_json::from_slice::<Rule>(&bytes) {
            Ok(r) => out.push(r),
            Err(e) => tracing::error!(rule = %k, error = %e, "unreadable rule"),
        }
    }
    Ok(out)
}

/// A public token sees the triggers its grant's `triggers` lists (those it
/// may fire), and no rules: rules carry the developer's calls.
fn sees_trigger(claims: &Claims, name: &str) -> bool {
    claims
        .grant
        .as_ref()
        .is_none_or(|g| g.triggers.iter().any(|t| t == name))
}

/// Loads the namespace triggers into the index. Done before serving.
pub(crate) async fn load(node: &Node) {
    match node.store.list_records(RecordKind::Trigger, "").await {
        Ok(records) => {
            for (k, bytes) in records {
                let account = k.split_once('/').map_or("", |(a, _)| a);
                match serde_json::from_slice::<Trigger>(&bytes) {
                    Ok(t) => node.triggers.set(account, &t),
                    Err(e) => tracing::error!(trigger = %k, error = %e, "unreadable trigger"),
                }
            }
        }
        Err(e) => tracing::error!(error = %e, "cannot read the triggers"),
    }
}

/// `PUT /v1/triggers/{name}`: creates or replaces; `true` when created.
pub(crate) async fn put_trigger(
    node: &Node,
    account: &str,
    name: &str,
    body: TriggerRequest,
) -> Result<(bool, Value), ApiError> {
    check_name("trigger", name)?;
    if let Some(ns) = &body.namespace {
        caller::check_namespace_name(ns)?;
    } else if body.prefix.is_some() {
        return Err(ApiError::new(
            ErrorCode::InvalidRequest,
            "`prefix` needs a `namespace`: the trigger fires on changes to keys under the prefix in that namespace",
        ));
    }
    let existing = get_trigger(node, account, name).await?;
    let t = Trigger {
        name: name.to_string(),
        namespace: body.namespace,
        prefix: body.prefix.unwrap_or_default(),
        description: body.description,
        created_at: existing
            .as_ref()
            .map_or_else(now_rfc3339, |t| t.created_at.clone()),
    };
    node.store
        .put_records(vec![(
            RecordKind::Trigger,
            key(account, name),
            Some(serde_json::to_vec(&t).expect("serialisable")),
        )])
        .await?;
    node.triggers.set(account, &t);
    tracing::info!(trigger = name, namespace = ?t.namespace, "trigger set");
    Ok((
        existing.is_none(),
        serde_json::to_value(&t).expect("serialisable"),
    ))
}

pub(crate) async fn list_triggers(node: &Node, claims: &Claims) -> Result<Value, ApiError> {
    let mut out = Vec::new();
    for (_, bytes) in node
        .store
        .list_records(RecordKind::Trigger, &format!("{}/", claims.account))
        .await?
    {
        if let Ok(t) = serde_json::from_slice::<Trigger>(&bytes)
            && sees_trigger(claims, &t.name)
        {
            out.push(t);
        }
    }
    Ok(json!({ "triggers": out }))
}

/// `GET /v1/triggers/{name}`: the trigger and its rules.
pub(crate) async fn show_trigger(
    node: &Node,
    claims: &Claims,
    name: &str,
) -> Result<Value, ApiError> {
    let account = claims.account.clone();
    let t = get_trigger(node, &account, name)
        .await?
        .filter(|_| sees_trigger(claims, name))
        .ok_or_else(|| trigger_not_found(name))?;
    let rules: Vec<Value> = rules_of(node, &account)
        .await?
        .iter()
        .filter(|r| r.spec.trigger == name && claims.grant.is_none())
        .map(Rule::public)
        .collect();
    let mut v = serde_json::to_value(t).expect("serialisable");
    v["rules"] = Value::Array(rules);
    Ok(v)
}

/// `DELETE /v1/triggers/{name}`: the trigger and its rules.
pub(crate) async fn delete_trigger(
    node: &Node,
    account: &str,
    name: &str,
) -> Result<Value, ApiError> {
    if get_trigger(node, account, name).await?.is_none() {
        return Err(trigger_not_found(name));
    }
    let rules: Vec<String> = rules_of(node, account)
        .await?
        .into_iter()
        .filter(|r| r.spec.trigger == name)
        .map(|r| r.name)
        .collect();
    let mut changes = vec![(RecordKind::Trigger, key(account, name), None)];
    changes.extend(
        rules
            .iter()
            .map(|r| (RecordKind::Rule, key(account, r), None)),
    );
    node.store.put_records(changes).await?;
    node.triggers.remove(account, name);
    Ok(json!({ "deleted": name, "rules_deleted": rules }))
}

/// `PUT /v1/rules/{name}`: creates or replaces; `true` when created. The
/// rule's call is checked like a call of the caller's `token` (of the
/// private token that owns `account`).
pub(crate) async fn put_rule(
    node: &Node,
    token: &Token,
    account: &str,
    name: &str,
    spec: RuleRequest,
) -> Result<(bool, Value), ApiError> {
    check_name("rule", name)?;
    let trigger = get_trigger(node, account, &spec.trigger)
        .await?
        .ok_or_else(|| trigger_not_found(&spec.trigger))?;
    if let (Some(tns), Some(ns), Some(k)) = (&trigger.namespace, &spec.namespace, &spec.write_to)
        && tns == ns
        && k.starts_with(&trigger.prefix)
    {
        return Err(ApiError::new(
            ErrorCode::InvalidRequest,
            format!(
                "`write_to` `{k}` in `{ns}` is under the prefix `{}` of trigger `{}`: the rule would fire itself forever; write elsewhere",
                trigger.prefix, trigger.name
            ),
        ));
    }
    let req = InvokeRequest {
        function: Some(spec.function.clone()),
        export: spec.export.clone(),
        params: Value::Object(spec.params.clone()),
        globals: spec.globals.clone(),
        namespace: spec.namespace.clone(),
        write_to: spec.write_to.clone(),
        ..Default::default()
    };
    let call = calls::prepare_target(node, token, req).await?;
    let f = calls::check_access(node, &call).await?;
    let names = f.param_names(&spec.export)?;
    if let Some(unknown) = spec.params.keys().find(|k| !names.contains(k)) {
        return Err(ApiError(
            OrbError::new(
                ErrorCode::InvalidParams,
                format!(
                    "static parameter `{unknown}` is not a parameter of `{}` (it takes: {})",
                    spec.export,
                    names.join(", ")
                ),
            )
            .with_details(json!({ "param": unknown, "reason": "unknown" })),
        ));
    }
    let existing = node
        .store
        .get_record(RecordKind::Rule, &key(account, name))
        .await?;
    let rule = Rule {
        name: name.to_string(),
        spec,
        created_at: now_rfc3339(),
        call,
    };
    node.store
        .put_records(vec![(
            RecordKind::Rule,
            key(account, name),
            Some(serde_json::to_vec(&rule).expect("serialisable")),
        )])
        .await?;
    tracing::info!(rule = name, trigger = %rule.spec.trigger, "rule set");
    Ok((existing.is_none(), rule.public()))
}

pub(crate) async fn list_rules(node: &Node, claims: &Claims) -> Result<Value, ApiError> {
    let rules: Vec<Value> = rules_of(node, &claims.account)
        .await?
        .iter()
        .filter(|_| claims.grant.is_none())
        .map(Rule::public)
        .collect();
    Ok(json!({ "rules": rules }))
}

pub(crate) async fn show_rule(node: &Node, claims: &Claims, name: &str) -> Result<Value, ApiError> {
    match node
        .store
        .get_record(RecordKind::Rule, &key(&claims.account, name))
        .await?
        .filter(|_| claims.grant.is_none())
    {
        Some(bytes) => Ok(decode::<Rule>("rule", &bytes)?.public()),
        None => Err(rule_not_found(name)),
    }
}

pub(crate) async fn delete_rule(node: &Node, account: &str, name: &str) -> Result<(), ApiError> {
    let k = key(account, name);
    if node.store.get_record(RecordKind::Rule, &k).await?.is_none() {
        return Err(rule_not_found(name));
    }
    node.store
        .put_records(vec![(RecordKind::Rule, k, None)])
        .await?;
    Ok(())
}

/// `POST /v1/triggers/{name}`: fires with the body as payload (the caller
/// may fire it: a public token needs it in its grant's `triggers`).
pub(crate) async fn fire_api(
    node: &Node,
    claims: &Claims,
    name: &str,
    payload: Value,
) -> Result<Value, ApiError> {
    let payload = match payload {
        Value::Null => Value::Object(Map::new()),
        Value::Object(o) => Value::Object(o),
        other => {
            return Err(ApiError::new(
                ErrorCode::InvalidRequest,
                format!("the payload must be a JSON object, got {other}"),
            ));
        }
    };
    if get_trigger(node, &claims.account, name).await?.is_none() {
        return Err(trigger_not_found(name));
    }
    let by = Firing {
        lineage: Some(&claims.lineage),
        ..Default::default()
    };
    let a = fire(node, &claims.account, name, payload, by).await?;
    let rules = a
        .result
        .as_ref()
        .and_then(|r| r.get("rules"))
        .cloned()
        .unwrap_or_else(|| json!([]));
    Ok(json!({ "activation": a.id, "trigger": name, "rules": rules }))
}

/// What fired a trigger besides its caller.
#[derive(Default, Clone, Copy)]
pub(crate) struct Firing<'a> {
    /// The schedule whose tick this is.
    pub schedule: Option<&'a str>,
    /// The triggers whose rules led to the change that fires this one.
    pub chain: &'a [String],
    /// The lineage of the token that fired it (`POST /v1/triggers/{name}`).
    pub lineage: Option<&'a str>,
}

/// Fires `trigger`: queues each enabled rule's call and records the firing.
pub(crate) async fn fire(
    node: &Node,
    account: &str,
    trigger: &str,
    payload: Value,
    by: Firing<'_>,
) -> Result<Activation, ApiError> {
    let schedule = by.schedule;
    let id = uuid::Uuid::now_v7().to_string();
    let start = now_rfc3339();
    let started = std::time::Instant::now();
    let mut listed = Vec::new();
    let mut caused = Vec::new();
    for rule in rules_of(node, account).await? {
        if rule.spec.trigger != trigger || !rule.spec.enabled {
            continue;
        }
        match start_rule(node, &rule, &payload, &id, by.chain).await {
            Ok(act) => {
                listed.push(json!({ "rule": rule.name, "activation": act }));
                caused.push(act);
            }
            Err(e) => {
                tracing::warn!(rule = %rule.name, error = %e.0.message, "rule not started");
                listed.push(json!({ "rule": rule.name, "error": e.0 }));
            }
        }
    }
    metrics::counter!(crate::metrics::TRIGGER_FIRINGS).increment(1);
    let activation = Activation {
        id,
        account: account.to_string(),
        status: ActivationStatus::Succeeded,
        start,
        duration_us: started.elapsed().as_micros() as u64,
        result: Some(json!({ "payload": payload, "rules": listed })),
        schedule: schedule.map(str::to_string),
        trigger: Some(trigger.to_string()),
        lineage: by.lineage.map(str::to_string),
        caused,
        ..Default::default()
    };
    node.store.put_activation(&activation).await?;
    Ok(activation)
}

/// Checks a rule's call against the payload and queues it; its activation id.
async fn start_rule(
    node: &Node,
    rule: &Rule,
    payload: &Value,
    cause: &str,
    chain: &[String],
) -> Result<String, ApiError> {
    let mut call = rule.call.clone();
    if let Some(alias) = &call.alias {
        call.function =
            crate::services::aliases::resolve(node, &call.claims.account, alias).await?;
        call.req.function = Some(call.function.to_string());
    }
    let f = calls::check_access(node, &call).await?;
    let names = f.param_names(&call.req.export)?;
    let mut params = Map::new();
    if let Value::Object(o) = payload {
        for (k, v) in o {
            if names.contains(k) {
                params.insert(k.clone(), v.clone());
            }
        }
    }
    for (k, v) in &rule.spec.params {
        params.insert(k.clone(), v.clone());
    }
    call.req.params = Value::Object(params);
    // Refused here (listed in the firing) rather than failing in the queue.
    f.check_params(&call.req.export, &call.req.params)?;
    crate::services::queue::enqueue_with(
        node,
        call,
        Origin {
            trigger: Some(rule.spec.trigger.clone()),
            rule: Some(rule.name.clone()),
            cause: Some(cause.to_string()),
            kappa: None,
            chain: chain.iter().chain([&rule.spec.trigger]).cloned().collect(),
        },
    )
    .await
}

/// Changes waiting to fire their namespace triggers, in commit order.
pub(crate) type Changes =
    tokio::sync::mpsc::UnboundedReceiver<Arc<crate::services::namespaces::Change>>;

/// Fires the namespace triggers on committed changes until shutdown starts,
/// then hands the channel back for [`fire_pending`]. The channel exists from
/// `Node::open`, so no change is missed, and it is unbounded, so a burst is
/// delayed, never dropped.
pub(crate) async fn run_changes(node: Arc<Node>, mut rx: Changes) -> Changes {
    loop {
        let change = tokio::select! {
            _ = node.stopped() => return rx,
            r = rx.recv() => r,
        };
        let Some(change) = change else { return rx };
        fire_change(&node, &change).await;
    }
}

/// On shutdown, once the last call has committed: fires the changes still
/// waiting (their rule calls are queued durably, to run after the restart).
pub(crate) async fn fire_pending(node: &Node, mut rx: Changes) {
    while let Ok(change) = rx.try_recv() {
        fire_change(node, &change).await;
    }
}

async fn fire_change(node: &Node, change: &crate::services::namespaces::Change) {
    metrics::gauge!(crate::metrics::TRIGGER_BACKLOG).decrement(1.0);
    let names = node
        .triggers
        .matching(&change.account, &change.namespace, &change.key);
    for name in names {
        if change.cause_triggers.contains(&name) {
            // A rule of this trigger (or of one it fired) made the change.
            tracing::debug!(trigger = %name, key = %change.key, chain = ?change.cause_triggers, "this trigger's own rules led to this change; not fired again");
            continue;
        }
        let mut payload = json!({
            "namespace": change.namespace,
            "key": change.key,
            "value": change.value,
            "deleted": change.deleted,
        });
        if let Some(b) = &change.base64 {
            payload["base64"] = json!(b);
        }
        let by = Firing {
            schedule: None,
            chain: &change.cause_triggers,
            lineage: None,
        };
        if let Err(e) = fire(node, &change.account, &name, payload, by).await {
            tracing::warn!(trigger = %name, error = %e.0.message, "namespace trigger failed to fire");
        }
    }
}
