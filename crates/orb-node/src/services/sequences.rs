//! Sequences: an alias that names a list of (function, export) steps.
//!
//! Calling the alias (`POST /v1/invoke {"function": "<alias>", "params"}`)
//! runs the steps in order. The call's parameters go to the first step; each
//! step's result — a JSON object (a WIT record) — is the next step's
//! parameters; the last step's result is the sequence's. An error stops the
//! chain. Every step is checked and run like a call by the caller's token
//! (so it counts against the token's rate and needs the token's right to
//! call that function), with the call's `globals` and `namespace`; `set`
//! goes with the first step, `write_to` with the last.
//!
//! Each step is an activation with `cause` = the sequence's activation,
//! which lists them in `caused` and carries the alias, the total duration
//! and fuel, and the step that failed.

use crate::caller::Token;
use crate::clock::now_rfc3339;
use crate::services::aliases::Alias;
use crate::services::calls::{self, InvokeRequest, InvokeResponse, Origin, RunContext};
use crate::{ApiError, Node};
use orb_core::{Activation, ActivationStatus, ErrorCode, FunctionId, OrbError};
use serde_json::{Value, json};

/// The sequence a request names, if it names one by alias.
pub(crate) async fn lookup(
    node: &Node,
    token: &Token,
    req: &InvokeRequest,
) -> Result<Option<Alias>, ApiError> {
    let Some(name) = req.function.as_deref() else {
        return Ok(None);
    };
    if req.component.is_some() || name.starts_with("sha256:") || FunctionId::looks_like_id(name) {
        return Ok(None);
    }
    let Some(account) = crate::caller::account_hint(node, token) else {
        return Ok(None);
    };
    if !orb_core::valid_namespace_name(name) {
        return Ok(None);
    }
    Ok(crate::services::aliases::get(node, &account, name)
        .await?
        .filter(|a| !a.steps.is_empty()))
}

/// Runs a sequence for the caller; the answer of its last step.
pub(crate) async fn run(
    node: &Node,
    token: &Token,
    req: InvokeRequest,
    seq: Alias,
) -> Result<InvokeResponse, ApiError> {
    if !req.export.is_empty() {
        return Err(ApiError::new(
            ErrorCode::InvalidRequest,
            format!(
                "alias `{}` is a sequence, which has no exports: call it with POST /v1/invoke {{\"function\": \"{}\", \"params\": …}} and no `export`",
                seq.name, seq.name
            ),
        ));
    }
    if req.is_async {
        return Err(ApiError::new(
            ErrorCode::InvalidRequest,
            "a sequence runs synchronously; call it without `async` (queue its steps' functions one by one instead)",
        ));
    }
    calls::check_namespace_fields(&req, node.config.max_value_bytes)?;
    let id = uuid::Uuid::now_v7().to_string();
    let start = now_rfc3339();
    let started = std::time::Instant::now();
    let mut params = req.params.clone();
    let mut caused = Vec::new();
    let mut fuel = 0;
    let mut account = String::new();
    let mut lineage = None;
    let mut last_function = seq.steps[0].function.clone();
    let mut result = Value::Null;
    let mut failure: Option<OrbError> = None;
    let count = seq.steps.len();
    for (i, step) in seq.steps.iter().enumerate() {
        let last = i + 1 == count;
        let step_req = InvokeRequest {
            function: Some(step.function.to_string()),
            export: step.export.clone(),
            params: std::mem::take(&mut params),
            globals: req.globals.clone(),
            namespace: req.namespace.clone(),
            set: if i == 0 { req.set.clone() } else { None },
            write_to: if last { req.write_to.clone() } else { None },
            ..Default::default()
        };
        let ran = async {
            let (p, ready) = calls::prepare(node, token, step_req).await?;
            let ctx = RunContext {
                token: Some(token.clone()),
                origin: Origin {
                    cause: Some(id.clone()),
                    ..Default::default()
                },
                ..Default::default()
            };
            let a = node.executor.run(node, &p, Some(ready), ctx).await?;
            node.store.put_activation(&a).await?;
            Ok::<_, ApiError>(a)
        }
        .await;
        let a = match ran {
            Ok(a) => a,
            Err(e) => {
                failure = Some(step_failed(e.0, &seq.name, i, None));
                break;
            }
        };
        account.clone_from(&a.account);
        lineage.clone_from(&a.lineage);
        caused.push(a.id.clone());
        fuel += a.fuel;
        last_function = step.function.clone();
        if let Some(e) = a.error {
            failure = Some(step_failed(e, &seq.name, i, Some(&a.id)));
            break;
        }
        let out = a.result.unwrap_or(Value::Null);
        if last {
            result = out;
        } else if out.is_object() {
            params = out;
        } else {
            let e = OrbError::new(
                ErrorCode::FunctionBadResult,
                format!(
                    "step {} (`{}`) returned {out}, not an object: a step's result is the next step's parameters, so it must be a record",
                    i + 1,
                    step.export
                ),
            );
            failure = Some(step_failed(e, &seq.name, i, Some(&a.id)));
            break;
        }
    }
    if let Some(e) = failure.as_mut()
        && let Some(d) = e.details.as_object_mut()
    {
        d.insert("activation".into(), Value::String(id.clone()));
    }
    let activation = Activation {
        id: id.clone(),
        account,
        lineage,
        status: if failure.is_none() {
            ActivationStatus::Succeeded
        } else {
            ActivationStatus::Failed
        },
        start,
        duration_us: started.elapsed().as_micros() as u64,
        fuel,
        result: failure.is_none().then(|| result.clone()),
        error: failure.clone(),
        alias: Some(seq.name.clone()),
        caused,
        ..Default::default()
    };
    // Nothing ran (the first step was refused): no record of a sequence.
    if !activation.caused.is_empty() {
        node.store.put_activation(&activation).await?;
    }
    match failure {
        Some(e) => Err(ApiError(e)),
        None => Ok(InvokeResponse {
            activation: id,
            function: last_function,
            result,
            duration_us: activation.duration_us,
            fuel,
        }),
    }
}

/// A step's error, with where the chain stopped in its details.
fn step_failed(mut e: OrbError, sequence: &str, index: usize, step: Option<&str>) -> OrbError {
    if !e.details.is_object() {
        e.details = json!({});
    }
    if let Some(d) = e.details.as_object_mut() {
        d.insert("sequence".into(), Value::String(sequence.to_string()));
        d.insert("step".into(), json!(index + 1));
        if let Some(s) = step {
            d.insert("step_activation".into(), Value::String(s.to_string()));
        }
    }
    e
}
