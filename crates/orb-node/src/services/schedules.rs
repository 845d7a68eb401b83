//! Schedules: a call repeated every interval (`"every": "30s"`) or on a cron
//! pattern (`"cron": "*/5 * * * *"`, in `timezone`, default UTC), its result
//! optionally written to a namespace key (`write_to`).
//!
//! Rules:
//! - Created with the caller's token, checked like a call (function, export,
//!   parameters, namespace, whitelist). A public token needs `schedules` in
//!   its grant: intervals below its minimum → `schedule_too_frequent`, more
//!   schedules than its maximum → `schedule_limit_reached`.
//! - Each tick is an activation (with `schedule` set). A tick due while the
//!   previous one still runs is skipped (counted): a schedule never overlaps
//!   itself.
//! - A failing schedule keeps running and shows its last error; it is never
//!   dropped. Revoking the token that made it stops its ticks (the error
//!   says so).
//! - Ticks missed while the node was down: one catch-up run at start, then
//!   the normal cadence (`missed_ticks = "skip"` waits for the next tick).
//! - Persisted: the schedule and its state are records in the store.

use crate::caller::{self, Claims, Request, Token, op};
use crate::clock::now_rfc3339;
use crate::config::MissedTicks;
use crate::services::calls::{self, InvokeRequest, Prepared, RunContext};
use crate::{ApiError, Node};
use chrono::TimeZone as _;
use orb_core::{ErrorCode, OrbError};
use orb_store::RecordKind;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, HashSet};
use std::str::FromStr as _;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::Notify;

/// The shortest interval any schedule may have.
const FLOOR: Duration = Duration::from_secs(1);

/// Body of `POST /v1/schedules`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScheduleRequest {
    /// A hash or an alias (resolved again at every tick).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub function: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub export: String,
    /// Fire this trigger at each tick instead of calling a function.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trigger: Option<String>,
    #[serde(default)]
    pub params: Value,
    #[serde(default)]
    pub globals: Map<String, Value>,
    #[serde(default)]
    pub namespace: Option<String>,
    #[serde(default)]
    pub write_to: Option<String>,
    /// An interval: `"30s"`, `"5m"` (at least a second).
    #[serde(default)]
    #[schema(pattern = r"^[1-9][0-9]{0,3}(s|m|h|d)$", example = "30s")]
    pub every: Option<String>,
    /// A 5-field cron pattern (6 with seconds).
    #[serde(default)]
    #[schema(
        pattern = r"^(\*|[1-5]?[0-9])( (\*|[01]?[0-9]|2[0-3]))( (\*|[1-9]|[12][0-9]|30))( (\*|[1-9]|1[0-2]))( (\*|[0-6]))$",
        example = "*/5 * * * *"
    )]
    pub cron: Option<String>,
    /// IANA time zone for `cron` (default `UTC`).
    #[serde(default)]
    pub timezone: Option<String>,
    /// Run once right away, then on the cadence.
    #[serde(default)]
    pub run_now: bool,
    /// RFC 3339: no tick before.
    #[serde(default)]
    #[schema(format = DateTime)]
    pub start_at: Option<String>,
    /// RFC 3339: no tick after; the schedule then ends (kept, visible).
    #[serde(default)]
    #[schema(format = DateTime)]
    pub end_at: Option<String>,
}

/// What a schedule has done.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct ScheduleState {
    /// RFC 3339 of the next tick (`None` once ended).
    pub next_run: Option<String>,
    #[serde(default)]
    next_run_ms: Option<u64>,
    pub last_run: Option<String>,
    pub last_activation: Option<String>,
    /// `succeeded` or `failed`.
    pub last_status: Option<String>,
    pub last_error: Option<OrbError>,
    /// How late the last tick started, microseconds (scheduler jitter).
    pub last_lag_us: Option<u64>,
    pub runs: u64,
    pub failures: u64,
    /// Ticks skipped because the previous one was still running.
    pub skipped: u64,
    pub ended: bool,
}

/// A schedule as stored and shown.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct Schedule {
    pub id: String,
    #[serde(flatten)]
    pub spec: ScheduleRequest,
    pub created_at: String,
    #[serde(default)]
    pub state: ScheduleState,
    /// The checked call, with the claims of the token that created it:
    /// stored, never shown ([`Schedule::public`] leaves it out). `None`
    /// for a schedule that fires a trigger.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    call: Option<Prepared>,
    /// The creator's claims, for a schedule that fires a trigger.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    owner: Option<Claims>,
}

impl Schedule {
    fn public(&self) -> Value {
        let mut v = serde_json::to_value(self).expect("serialisable");
        if let Some(o) = v.as_object_mut() {
            o.remove("call");
            o.remove("owner");
            if let Some(s) = o.get_mut("state").and_then(Value::as_object_mut) {
                s.remove("next_run_ms");
            }
            if let Some(call) = &self.call {
                o.insert(
                    "resolved_function".into(),
                    Value::String(call.function.to_string()),
                );
            }
        }
        v
    }

    /// The claims of the token that created it.
    fn claims(&self) -> &Claims {
        match (&self.call, &self.owner) {
            (Some(c), _) => &c.claims,
            (None, Some(o)) => o,
            (None, None) => unreachable!("load() and create() keep only schedules with one"),
        }
    }
}

/// The scheduler's in-memory index (the store holds the truth).
#[derive(Default)]
pub(crate) struct Scheduler {
    schedules: Mutex<BTreeMap<String, Schedule>>,
    running: Mutex<HashSet<String>>,
    wake: Notify,
    /// Held from counting a token's schedules to storing a new one, so
    /// racing creations cannot pass the token's maximum.
    creating: tokio::sync::Mutex<()>,
}

pub(crate) enum Timing {
    Every(Duration),
    Cron(Box<croner::Cron>, chrono_tz::Tz),
}

fn invalid(msg: impl Into<String>) -> ApiError {
    ApiError::new(ErrorCode::InvalidSchedule, msg)
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// 9999-12-31T23:59:59.999Z: no tick is later (RFC 3339 has four-digit
/// years; a tick past it ends the schedule).
const LAST_MS: u64 = 253_402_300_799_999;

fn ms_to_rfc3339(ms: u64) -> String {
    humantime::format_rfc3339_millis(UNIX_EPOCH + Duration::from_millis(ms.min(LAST_MS)))
        .to_string()
}

/// An RFC 3339 time (any offset, any year from 0000) in ms since the Unix
/// epoch (0 for earlier times); without an offset it is UTC.
pub(crate) fn parse_time(field: &str, text: &str) -> Result<u64, ApiError> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(text) {
        return Ok(t.timestamp_millis().max(0) as u64);
    }
    humantime::parse_rfc3339_weak(text)
        .map_err(|e| invalid(format!("`{field}` `{text}` is not an RFC 3339 time: {e}")))
        .map(|t| {
            t.duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64)
        })
}

pub(crate) fn timing(spec: &ScheduleRequest) -> Result<Timing, ApiError> {
    match (&spec.every, &spec.cron) {
        (Some(every), None) => {
            if spec.timezone.is_some() {
                return Err(invalid("`timezone` goes with `cron`, not `every`"));
            }
            let d = humantime::parse_duration(every).map_err(|e| {
                invalid(format!(
                    "`every` `{every}` is not a duration like `30s` or `5m`: {e}"
                ))
            })?;
            Ok(Timing::Every(d))
        }
        (None, Some(pattern)) => {
            let cron = croner::Cron::from_str(pattern).map_err(|e| {
                invalid(format!(
                    "`cron` `{pattern}` is not a cron pattern (minute hour day month weekday): {e}"
                ))
            })?;
            let tz_name = spec.timezone.as_deref().unwrap_or("UTC");
            let tz = chrono_tz::Tz::from_str(tz_name).map_err(|_| {
                invalid(format!(
                    "`timezone` `{tz_name}` is not an IANA time zone such as `Europe/Berlin`"
                ))
            })?;
            Ok(Timing::Cron(Box::new(cron), tz))
        }
        (Some(_), Some(_)) => Err(invalid("give `every` or `cron`, not both")),
        (None, None) => Err(invalid(
            "a schedule needs `every` (\"30s\") or `cron` (\"*/5 * * * *\")",
        )),
    }
}

/// The first tick strictly after `after_ms`.
pub(crate) fn next_after(t: &Timing, after_ms: u64) -> Option<u64> {
    match t {
        Timing::Every(d) => after_ms
            .checked_add(u64::try_from(d.as_millis()).ok()?)
            .filter(|t| *t <= LAST_MS),
        Timing::Cron(cron, tz) => {
            let at = chrono::Utc
                .timestamp_millis_opt(after_ms as i64)
                .single()?
                .with_timezone(tz);
            let next = cron.find_next_occurrence(&at, false).ok()?;
            u64::try_from(next.timestamp_millis())
                .ok()
                .filter(|t| *t <= LAST_MS)
        }
    }
}

/// The first tick on the cadence anchored at `due` that is strictly after
/// `now` — ticks in between are skipped, never run in a burst. O(1): no
/// stepping through a long downtime tick by tick.
pub(crate) fn first_tick_after(t: &Timing, due: u64, now: u64) -> Option<u64> {
    match t {
        Timing::Every(d) => {
            let d = u64::try_from(d.as_millis()).ok()?;
            if d == 0 {
                return None;
            }
            let steps = now.saturating_sub(due) / d + 1;
            due.checked_add(steps.checked_mul(d)?)
                .filter(|t| *t <= LAST_MS)
        }
        // Cron ticks are fixed on the clock: the next one after now.
        Timing::Cron(..) => next_after(t, now.max(due)),
    }
}

/// When a schedule whose tick `next` passed while the node was down runs
/// again, started at `now`: `One` catch-up run right away, or (`Skip`) the
/// next tick on its cadence.
pub(crate) fn resume_after_downtime(
    policy: MissedTicks,
    t: &Timing,
    next: u64,
    now: u64,
) -> Option<u64> {
    match policy {
        MissedTicks::One => Some(now),
        MissedTicks::Skip => first_tick_after(t, next, now),
    }
}

/// The shortest gap between ticks (for cron: over the next 50 ticks).
pub(crate) fn min_interval(t: &Timing) -> Duration {
    match t {
        Timing::Every(d) => *d,
        Timing::Cron(..) => {
            // Gaps between consecutive ticks; the partial gap from now to
            // the first tick does not count.
            let mut at = next_after(t, now_ms());
            let mut gap = u64::MAX;
            for _ in 0..50 {
                let Some(prev) = at else { break };
                let Some(next) = next_after(t, prev) else {
                    break;
                };
                gap = gap.min(next - prev);
                at = Some(next);
            }
            Duration::from_millis(if gap == u64::MAX { 0 } else { gap })
        }
    }
}

/// When the first tick of a new schedule is due.
pub(crate) fn first_tick(
    spec: &ScheduleRequest,
    t: &Timing,
    now: u64,
) -> Result<Option<u64>, ApiError> {
    let start = spec
        .start_at
        .as_deref()
        .map(|s| parse_time("start_at", s))
        .transpose()?;
    let first = match (spec.run_now, start) {
        (true, _) => Some(now),
        (false, Some(s)) if s > now => match t {
            Timing::Every(_) => Some(s),
            Timing::Cron(..) => next_after(t, s.saturating_sub(1)),
        },
        _ => next_after(t, now),
    };
    Ok(first)
}

pub(crate) fn end_ms(spec: &ScheduleRequest) -> Option<u64> {
    spec.end_at
        .as_deref()
        .and_then(|s| parse_time("end_at", s).ok())
}

fn set_next(s: &mut Schedule, next: Option<u64>) {
    let next = next.filter(|n| end_ms(&s.spec).is_none_or(|end| *n <= end));
    s.state.next_run_ms = next;
    s.state.next_run = next.map(ms_to_rfc3339);
    s.state.ended = next.is_none();
}

async fn persist(node: &Node, s: &Schedule) -> Result<(), ApiError> {
    node.store
        .put_records(vec![(
            RecordKind::Schedule,
            format!("{}/{}", s.claims().account, s.id),
            Some(serde_json::to_vec(s).expect("serialisable")),
        )])
        .await?;
    Ok(())
}

/// `POST /v1/schedules`.
pub(crate) async fn create(
    node: &Node,
    token: &Token,
    spec: ScheduleRequest,
) -> Result<Value, ApiError> {
    let t = timing(&spec)?;
    let interval = min_interval(&t);
    if interval < FLOOR {
        return Err(invalid(format!(
            "ticks would be {interval:?} apart; the shortest interval is {FLOOR:?}"
        )));
    }
    let now = now_ms();
    if let Some(end) = spec.end_at.as_deref() {
        let end = parse_time("end_at", end)?;
        if end <= now {
            return Err(invalid("`end_at` is in the past"));
        }
    }
    // Making a schedule is its own permission (an attenuated token may
    // allow calls but not schedules), besides the call's own checks.
    caller::verify(node, token, Request::op(op::SCHEDULES_WRITE))?;
    let (call, owner, claims) = match &spec.trigger {
        Some(trigger) => {
            let claims = trigger_owner(node, token, &spec, trigger).await?;
            (None, Some(claims.clone()), claims)
        }
        None => {
            let req = InvokeRequest {
                function: Some(spec.function.clone()),
                export: spec.export.clone(),
                params: spec.params.clone(),
                globals: spec.globals.clone(),
                namespace: spec.namespace.clone(),
                write_to: spec.write_to.clone(),
                ..Default::default()
            };
            let call = calls::prepare(node, token, req).await?.0;
            let claims = call.claims.clone();
            (Some(call), None, claims)
        }
    };
    let account = claims.account.clone();
    let _creating = node.scheduler.creating.lock().await;
    if let Some(grant) = &claims.grant {
        let Some(limits) = grant.schedules else {
            return Err(caller::denied(
                "this token may not create schedules (its grant has no `schedules`)",
            ));
        };
        if interval < limits.min_interval {
            return Err(ApiError(
                OrbError::new(
                    ErrorCode::ScheduleTooFrequent,
                    format!(
                        "ticks would be {} apart; this token's minimum is {}",
                        humantime::format_duration(interval),
                        humantime::format_duration(limits.min_interval)
                    ),
                )
                .with_details(json!({
                    "min_interval": humantime::format_duration(limits.min_interval).to_string(),
                })),
            ));
        }
        let lineage = claims.lineage.clone();
        let mine = node
            .scheduler
            .schedules
            .lock()
            .expect("schedules lock")
            .values()
            .filter(|s| s.claims().account == account && s.claims().lineage == lineage)
            .count();
        if mine >= limits.max as usize {
            return Err(ApiError(
                OrbError::new(
                    ErrorCode::ScheduleLimitReached,
                    format!(
                        "this token may have {} schedule(s) and has {mine}; delete one first",
                        limits.max
                    ),
                )
                .with_details(json!({ "max": limits.max })),
            ));
        }
    }
    let mut s = Schedule {
        id: uuid::Uuid::now_v7().to_string(),
        spec,
        created_at: now_rfc3339(),
        state: ScheduleState::default(),
        call,
        owner,
    };
    let first = first_tick(&s.spec, &t, now)?;
    set_next(&mut s, first);
    persist(node, &s).await?;
    let out = s.public();
    node.scheduler
        .schedules
        .lock()
        .expect("schedules lock")
        .insert(s.id.clone(), s);
    node.scheduler.wake.notify_one();
    Ok(out)
}

/// The checks for a schedule that fires a trigger: nothing of a call in
/// the body, the trigger exists, the token may fire it.
async fn trigger_owner(
    node: &Node,
    token: &Token,
    spec: &ScheduleRequest,
    trigger: &str,
) -> Result<Claims, ApiError> {
    if !spec.function.is_empty()
        || !spec.export.is_empty()
        || !spec.params.is_null()
        || !spec.globals.is_empty()
        || spec.namespace.is_some()
        || spec.write_to.is_some()
    {
        return Err(invalid(
            "a schedule fires a `trigger` or calls a `function`: the call fields go on the trigger's rules",
        ));
    }
    let claims = caller::authorize(node, token, Request::op(op::TRIGGERS_FIRE)).await?;
    if let Some(g) = &claims.grant
        && !g.triggers.iter().any(|t| t == trigger)
    {
        return Err(caller::denied(format!(
            "this token may not fire trigger `{trigger}` (its grant's `triggers` does not list it)"
        )));
    }
    if crate::services::triggers::get_trigger(node, &claims.account, trigger)
        .await?
        .is_none()
    {
        return Err(ApiError::new(
            ErrorCode::TriggerNotFound,
            format!("no trigger `{trigger}` in this account; create it first"),
        ));
    }
    Ok(claims)
}

fn visible(s: &Schedule, claims: &Claims) -> bool {
    s.claims().account == claims.account && caller::sees(claims, Some(s.claims().lineage.as_str()))
}

fn not_found(id: &str) -> ApiError {
    ApiError(
        OrbError::new(
            ErrorCode::ScheduleNotFound,
            format!("no schedule `{id}` in this account; `orb schedule ls` lists them"),
        )
        .with_details(json!({ "schedule": id })),
    )
}

/// `GET /v1/schedules`.
pub(crate) async fn list(node: &Node, claims: &Claims) -> Result<Value, ApiError> {
    let all = node.scheduler.schedules.lock().expect("schedules lock");
    let mine: Vec<Value> = all
        .values()
        .filter(|s| visible(s, claims))
        .map(Schedule::public)
        .collect();
    Ok(json!({ "schedules": mine }))
}

/// `GET /v1/schedules/{id}`.
pub(crate) async fn show(node: &Node, claims: &Claims, id: &str) -> Result<Value, ApiError> {
    let all = node.scheduler.schedules.lock().expect("schedules lock");
    all.get(id)
        .filter(|s| visible(s, claims))
        .map(Schedule::public)
        .ok_or_else(|| not_found(id))
}

/// `DELETE /v1/schedules/{id}`.
pub(crate) async fn delete(node: &Node, claims: &Claims, id: &str) -> Result<(), ApiError> {
    let account = claims.account.clone();
    let exists = node
        .scheduler
        .schedules
        .lock()
        .expect("schedules lock")
        .get(id)
        .is_some_and(|s| visible(s, claims));
    if !exists {
        return Err(not_found(id));
    }
    node.store
        .put_records(vec![(
            RecordKind::Schedule,
            format!("{account}/{id}"),
            None,
        )])
        .await?;
    node.scheduler
        .schedules
        .lock()
        .expect("schedules lock")
        .remove(id);
    Ok(())
}

/// Loads the stored schedules (applying the missed-tick policy). Done before
/// the node serves, so listing right after a restart shows them.
pub(crate) async fn load(node: &Node) {
    let now = now_ms();
    match node.store.list_records(RecordKind::Schedule, "").await {
        Ok(records) => {
            let mut all = node.scheduler.schedules.lock().expect("schedules lock");
            for (key, bytes) in records {
                let mut s: Schedule = match serde_json::from_slice::<Schedule>(&bytes) {
                    Ok(s) if s.call.is_none() && s.owner.is_none() => {
                        tracing::error!(schedule = %key, "schedule without a call or an owner");
                        continue;
                    }
                    Ok(s) => s,
                    Err(e) => {
                        tracing::error!(schedule = %key, error = %e, "unreadable schedule");
                        continue;
                    }
                };
                if let Some(next) = s.state.next_run_ms
                    && next < now
                {
                    // Missed while the node was down.
                    let resume = timing(&s.spec).ok().and_then(|t| {
                        resume_after_downtime(node.config.missed_ticks, &t, next, now)
                    });
                    set_next(&mut s, resume);
                }
                all.insert(s.id.clone(), s);
            }
            if !all.is_empty() {
                tracing::info!(schedules = all.len(), "schedules loaded");
            }
        }
        Err(e) => tracing::error!(error = %e, "cannot read schedules"),
    }
}

/// Runs the ticks until the node shuts down (after [`load`]).
pub(crate) async fn run(node: Arc<Node>) {
    loop {
        if node.shutting_down.load(std::sync::atomic::Ordering::SeqCst) {
            return;
        }
        let next = start_due(&node);
        let wait = next.map_or(Duration::from_secs(1), |n| {
            Duration::from_millis(n.saturating_sub(now_ms())).min(Duration::from_secs(1))
        });
        if !wait.is_zero() {
            let _ = tokio::time::timeout(wait, node.scheduler.wake.notified()).await;
        }
    }
}

/// Starts every due tick; returns when the next one is due.
fn start_due(node: &Arc<Node>) -> Option<u64> {
    let now = now_ms();
    let mut soonest: Option<u64> = None;
    let mut all = node.scheduler.schedules.lock().expect("schedules lock");
    let mut running = node.scheduler.running.lock().expect("running lock");
    for s in all.values_mut() {
        let Some(due) = s.state.next_run_ms else {
            continue;
        };
        if due > now {
            soonest = Some(soonest.map_or(due, |x| x.min(due)));
            continue;
        }
        let Ok(t) = timing(&s.spec) else { continue };
        // The next tick: after this one, and never in the past (no bursts).
        let next = first_tick_after(&t, due, now);
        if running.contains(&s.id) {
            s.state.skipped += 1;
            set_next(s, next);
            continue;
        }
        running.insert(s.id.clone());
        set_next(s, next);
        let (node, id, lag_us) = (node.clone(), s.id.clone(), (now - due) * 1000);
        tokio::spawn(async move {
            tick(&node, &id, lag_us).await;
            node.scheduler
                .running
                .lock()
                .expect("running lock")
                .remove(&id);
            node.scheduler.wake.notify_one();
        });
    }
    soonest
}

/// Runs one tick of schedule `id` and records it.
async fn tick(node: &Node, id: &str, lag_us: u64) {
    let Some(s) = node
        .scheduler
        .schedules
        .lock()
        .expect("schedules lock")
        .get(id)
        .cloned()
    else {
        return;
    };
    let Some(_permit) = node.queue_permit().await else {
        return;
    };
    if node.shutting_down.load(std::sync::atomic::Ordering::SeqCst) {
        return; // not recorded: the next start catches it up
    }
    let started = now_rfc3339();
    let outcome: Result<orb_core::Activation, ApiError> = async {
        node.auth
            .still_valid(s.claims())
            .map_err(|e| ApiError(e.into()))?;
        // A call's run is checked again, attenuation blocks included, in
        // `check_access`; a trigger's firing here.
        if s.call.is_none() {
            node.auth
                .recheck(s.claims(), &Request::op(op::TRIGGERS_FIRE))
                .map_err(|e| ApiError(e.into()))?;
        }
        let Some(mut call) = s.call.clone() else {
            let trigger = s.spec.trigger.as_deref().unwrap_or_default();
            let account = &s.claims().account;
            if crate::services::triggers::get_trigger(node, account, trigger)
                .await?
                .is_none()
            {
                return Err(ApiError::new(
                    ErrorCode::TriggerNotFound,
                    format!("trigger `{trigger}` was deleted; this schedule fires nothing until it exists again"),
                ));
            }
            let payload = json!({ "schedule": id, "time": started });
            let by = crate::services::triggers::Firing {
                schedule: Some(id),
                chain: &[],
                lineage: Some(&s.claims().lineage),
            };
            return crate::services::triggers::fire(node, account, trigger, payload, by).await;
        };
        if let Some(alias) = &call.alias {
            call.function = crate::services::aliases::resolve(node, &call.claims.account, alias).await?;
            call.req.function = Some(call.function.to_string());
        }
        let ctx = RunContext {
            schedule: Some(id.to_string()),
            ..Default::default()
        };
        let a = node.executor.run(node, &call, None, ctx).await?;
        node.store.put_activation(&a).await?;
        Ok(a)
    }
    .await;
    let snapshot = {
        let mut all = node.scheduler.schedules.lock().expect("schedules lock");
        let Some(s) = all.get_mut(id) else {
            return; // deleted meanwhile
        };
        record_tick(s, started, lag_us, outcome);
        s.clone()
    };
    if let Err(e) = persist(node, &snapshot).await {
        tracing::error!(schedule = id, error = %e.0, "cannot record the schedule's state");
    }
    // Deleted while this tick ran: do not bring its record back.
    let gone = !node
        .scheduler
        .schedules
        .lock()
        .expect("schedules lock")
        .contains_key(id);
    if gone {
        let key = format!("{}/{id}", snapshot.claims().account);
        let _ = node
            .store
            .put_records(vec![(RecordKind::Schedule, key, None)])
            .await;
    }
}

/// Writes a tick's outcome into the schedule's state.
fn record_tick(
    s: &mut Schedule,
    started: String,
    lag_us: u64,
    outcome: Result<orb_core::Activation, ApiError>,
) {
    s.state.runs += 1;
    s.state.last_run = Some(started);
    s.state.last_lag_us = Some(lag_us);
    match outcome {
        Ok(a) => {
            s.state.last_activation = Some(a.id.clone());
            s.state.last_status = Some(
                if a.error.is_none() {
                    "succeeded"
                } else {
                    "failed"
                }
                .into(),
            );
            if a.error.is_some() {
                s.state.failures += 1;
            }
            s.state.last_error = a.error;
        }
        Err(e) => {
            s.state.failures += 1;
            s.state.last_status = Some("failed".into());
            s.state.last_error = Some(e.0);
        }
    }
    if let Some(e) = &s.state.last_error {
        tracing::warn!(schedule = %s.id, error = %e.message, "schedule tick failed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1000;

    #[test]
    fn missed_ticks_resume_with_one_run_or_on_the_cadence_never_a_burst() {
        let every = Timing::Every(Duration::from_secs(2));
        // Due at 10 s, the node came back at 17.5 s (ticks at 10, 12, 14, 16 missed).
        let (due, now) = (10 * S, 17 * S + 500);
        assert_eq!(
            resume_after_downtime(MissedTicks::One, &every, due, now),
            Some(now),
            "one catch-up run at start"
        );
        assert_eq!(
            resume_after_downtime(MissedTicks::Skip, &every, due, now),
            Some(18 * S),
            "the next tick on the old cadence"
        );
        // After the catch-up run, the next tick is one interval on, not the missed ones.
        assert_eq!(first_tick_after(&every, now, now), Some(now + 2 * S));
        // A month of downtime on a 1 s schedule is one step, not 2.6 million.
        let second = Timing::Every(Duration::from_secs(1));
        let month = 30 * 24 * 3600 * S;
        assert_eq!(first_tick_after(&second, 0, month), Some(month + S));
    }

    #[test]
    fn ticks_past_the_year_9999_end_the_schedule_instead_of_panicking() {
        // Found while writing the `schedule` fuzz target: `every` of
        // 500000000years overflowed formatting the next tick (a panic in
        // every build), u64::MAX seconds overflowed the addition.
        let now = 1_767_225_600_000;
        for every in ["500000000years", "18446744073709551615s"] {
            let spec = ScheduleRequest {
                every: Some(every.into()),
                ..Default::default()
            };
            let t = timing(&spec).unwrap();
            assert_eq!(first_tick(&spec, &t, now).unwrap(), None, "{every}");
            assert_eq!(first_tick_after(&t, now, u64::MAX), None, "{every}");
        }
        assert_eq!(ms_to_rfc3339(u64::MAX), "9999-12-31T23:59:59.999Z");
        // A start just before the end of year 9999, and a cron tick after it.
        let spec = ScheduleRequest {
            cron: Some("0 0 1 1 *".into()),
            start_at: Some("9999-12-31T00:00:00Z".into()),
            ..Default::default()
        };
        let t = timing(&spec).unwrap();
        assert_eq!(first_tick(&spec, &t, now).unwrap(), None);
    }

    #[test]
    fn cron_resumes_at_its_next_clock_tick_and_reports_its_interval() {
        let spec = ScheduleRequest {
            cron: Some("*/5 * * * *".into()),
            timezone: Some("Europe/Berlin".into()),
            ..Default::default()
        };
        let t = timing(&spec).unwrap();
        assert_eq!(min_interval(&t), Duration::from_secs(300));
        let now = 1_800_000_000_000 + 61 * S; // a minute past a 5-minute mark
        let next = resume_after_downtime(MissedTicks::Skip, &t, now - 3600 * S, now).unwrap();
        assert!(
            next > now && next - now <= 300 * S && next.is_multiple_of(300 * S),
            "{next}"
        );
    }
}
