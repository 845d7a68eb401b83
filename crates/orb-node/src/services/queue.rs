//! Asynchronous calls: `"async": true` answers 202 with an activation id and
//! the call runs later, in the background.
//!
//! The queue is durable: a queued call is a record in the store (written
//! with the activation, status `queued`, before the 202), removed right
//! after its final activation is recorded (in that order: a crash in between
//! runs the call again rather than losing it). A node that stops cleanly
//! finishes the calls it started and keeps the rest queued; the next start
//! runs them, each once. (After a crash, a call that was running may run
//! again: at least once.)
//!
//! Status moves queued → running → succeeded | failed. A failed call is
//! retried per its `retry` policy (default none), with exponential backoff;
//! when retries are exhausted it is dead-lettered (`GET /v1/dead-letters`).
//! Concurrency is bounded node-wide (`async_workers`) and per account
//! (`async_per_account`).

use crate::clock::now_rfc3339;
use crate::services::calls::{Origin, Prepared, RunContext};
use crate::{ApiError, Node};
use orb_core::{Activation, ActivationStatus, ErrorCode, OrbError};
use orb_store::RecordKind;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::{Notify, Semaphore, broadcast};

/// A queued call as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Job {
    call: Prepared,
    /// Tries so far.
    attempts: u32,
    /// Unix milliseconds before which it does not run (backoff).
    not_before_ms: u64,
    /// The activation as queued (kept to answer status reads).
    queued_at: String,
    /// A trigger's rule, a sequence… (copied into the activation).
    #[serde(default)]
    origin: Origin,
    /// In memory only: not yet stored (reserved under the limit), or running.
    #[serde(skip)]
    state: JobState,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
enum JobState {
    /// Counted against the account's limit while its record is written.
    Reserved,
    #[default]
    Waiting,
    Running,
}

/// The longest retry wait, whatever the backoff doubles to.
const MAX_BACKOFF: Duration = Duration::from_secs(3600);

/// A dead-lettered call.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DeadLetter {
    pub activation: String,
    pub function: String,
    pub export: String,
    pub attempts: u32,
    pub error: Option<OrbError>,
    pub failed_at: String,
    /// The lineage of the token that queued the call: a public token sees
    /// only its own dead letters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lineage: Option<String>,
}

/// The node's queue state (the store holds the truth; this is the index).
pub(crate) struct Queue {
    jobs: Mutex<BTreeMap<String, Job>>,
    running: Mutex<HashMap<String, usize>>,
    wake: Notify,
    workers: Arc<Semaphore>,
    /// Ids of activations that reached a final status.
    pub(crate) finished: broadcast::Sender<String>,
}

impl Queue {
    pub(crate) fn new(workers: usize) -> Self {
        Self {
            jobs: Mutex::default(),
            running: Mutex::default(),
            wake: Notify::new(),
            workers: Arc::new(Semaphore::new(workers.max(1))),
            finished: broadcast::channel(1024).0,
        }
    }
}

impl Queue {
    pub(crate) async fn permit(&self) -> Option<tokio::sync::OwnedSemaphorePermit> {
        self.workers.clone().acquire_owned().await.ok()
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn queued_activation(id: &str, p: &Prepared, attempts: u32, origin: &Origin) -> Activation {
    let mut a = Activation {
        id: id.to_string(),
        account: p.claims.account.clone(),
        lineage: Some(p.claims.lineage.clone()),
        function: Some(p.function.clone()),
        export: p.req.export.clone(),
        status: ActivationStatus::Queued,
        start: now_rfc3339(),
        duration_us: 0,
        fuel: 0,
        result: None,
        error: None,
        logs: String::new(),
        logs_truncated: false,
        alias: p.alias.clone(),
        attempts,
        ..Default::default()
    };
    origin.stamp(&mut a);
    a
}

fn backoff(p: &Prepared) -> Result<Duration, ApiError> {
    let text = p
        .req
        .retry
        .as_ref()
        .and_then(|r| r.backoff.clone())
        .unwrap_or_else(|| "1s".into());
    let d = humantime::parse_duration(&text).map_err(|e| {
        ApiError::new(
            ErrorCode::InvalidRequest,
            format!("`retry.backoff` `{text}` is not a duration like `500ms` or `2s`: {e}"),
        )
    })?;
    if d > MAX_BACKOFF {
        return Err(ApiError::new(
            ErrorCode::InvalidRequest,
            format!("`retry.backoff` `{text}` is over the limit of 1h"),
        ));
    }
    Ok(d)
}

/// The wait before retry number `attempts` (1-based): the backoff doubled
/// each time, at most [`MAX_BACKOFF`].
fn retry_wait(base: Duration, attempts: u32) -> Duration {
    base.saturating_mul(1 << attempts.saturating_sub(1).min(20))
        .min(MAX_BACKOFF)
}

/// Queues a prepared call; answers `{"activation", "status": "queued"}`.
pub(crate) async fn enqueue(node: &Node, call: Prepared) -> Result<Value, ApiError> {
    let id = enqueue_with(node, call, Origin::default()).await?;
    Ok(json!({ "activation": id, "status": "queued" }))
}

/// Queues a prepared call with its origin; returns its activation id.
pub(crate) async fn enqueue_with(
    node: &Node,
    mut call: Prepared,
    origin: Origin,
) -> Result<String, ApiError> {
    backoff(&call)?;
    call.req.is_async = false;
    let id = uuid::Uuid::now_v7().to_string();
    let activation = queued_activation(&id, &call, 0, &origin);
    let job = Job {
        call,
        attempts: 0,
        not_before_ms: 0,
        queued_at: activation.start.clone(),
        origin,
        state: JobState::Reserved,
    };
    // Count and reserve under one lock, so racing calls cannot pass the limit.
    {
        let mut jobs = node.queue.jobs.lock().expect("queue lock");
        let account = &job.call.claims.account;
        let waiting = jobs
            .values()
            .filter(|j| &j.call.claims.account == account)
            .count();
        if waiting >= node.config.max_queued_per_account {
            return Err(ApiError(
                OrbError::new(
                    ErrorCode::QueueFull,
                    format!(
                        "this account has {waiting} asynchronous calls waiting (the limit); retry when some have run"
                    ),
                )
                .with_details(json!({ "limit": node.config.max_queued_per_account })),
            ));
        }
        jobs.insert(id.clone(), job.clone());
    }
    let stored = async {
        node.store.put_activation(&activation).await?;
        node.store
            .put_records(vec![(
                RecordKind::Queue,
                id.clone(),
                Some(serde_json::to_vec(&job).expect("serialisable")),
            )])
            .await
    };
    let stored = stored.await;
    {
        let mut jobs = node.queue.jobs.lock().expect("queue lock");
        if stored.is_err() {
            jobs.remove(&id);
        } else if let Some(j) = jobs.get_mut(&id) {
            j.state = JobState::Waiting;
        }
    }
    stored?;
    node.queue.wake.notify_one();
    Ok(id)
}

/// Loads the stored queue into memory. Done before the node serves, so a
/// status read or long poll right after a restart sees the queued calls.
pub(crate) async fn load(node: &Node) {
    match node.store.list_records(RecordKind::Queue, "").await {
        Ok(records) => {
            let mut jobs = node.queue.jobs.lock().expect("queue lock");
            for (id, bytes) in records {
                match serde_json::from_slice::<Job>(&bytes) {
                    Ok(job) => {
                        jobs.insert(id, job);
                    }
                    Err(e) => {
                        tracing::error!(activation = %id, error = %e, "unreadable queued call")
                    }
                }
            }
            if !jobs.is_empty() {
                tracing::info!(queued = jobs.len(), "resuming queued asynchronous calls");
            }
        }
        Err(e) => tracing::error!(error = %e, "cannot read the queue"),
    }
}

/// Runs the queue until the node shuts down (after [`load`]).
pub(crate) async fn run(node: Arc<Node>) {
    loop {
        if node.shutting_down.load(std::sync::atomic::Ordering::SeqCst) {
            return;
        }
        let next_due = dispatch(&node);
        let wait = match next_due {
            Some(ms) => Duration::from_millis(ms.saturating_sub(now_ms()).max(1)),
            None => Duration::from_secs(1),
        };
        let _ = tokio::time::timeout(wait, node.queue.wake.notified()).await;
    }
}

/// Starts every due job that a worker and its account's limit allow.
/// Returns the earliest time a waiting job becomes due.
fn dispatch(node: &Arc<Node>) -> Option<u64> {
    let now = now_ms();
    let mut next_due = None;
    let mut jobs = node.queue.jobs.lock().expect("queue lock");
    let mut running = node.queue.running.lock().expect("running lock");
    let ids: Vec<String> = jobs.keys().cloned().collect();
    for id in ids {
        let job = &jobs[&id];
        if job.state != JobState::Waiting {
            continue;
        }
        if job.not_before_ms > now {
            next_due = Some(next_due.map_or(job.not_before_ms, |n: u64| n.min(job.not_before_ms)));
            continue;
        }
        let account = job.call.claims.account.clone();
        let busy = running.get(&account).copied().unwrap_or(0);
        if busy >= node.config.async_per_account {
            continue;
        }
        let Ok(permit) = node.queue.workers.clone().try_acquire_owned() else {
            break;
        };
        *running.entry(account.clone()).or_default() += 1;
        let job = jobs.get_mut(&id).expect("listed");
        job.state = JobState::Running;
        let job = job.clone();
        let node = node.clone();
        tokio::spawn(async move {
            run_job(&node, &id, job).await;
            drop(permit);
            if let Some(n) = node
                .queue
                .running
                .lock()
                .expect("running lock")
                .get_mut(&account)
            {
                *n = n.saturating_sub(1);
            }
            node.queue.wake.notify_one();
        });
    }
    next_due
}

async fn run_job(node: &Node, id: &str, mut job: Job) {
    job.attempts += 1;
    let mut running = queued_activation(id, &job.call, job.attempts, &job.origin);
    running.status = ActivationStatus::Running;
    running.start = job.queued_at.clone();
    if let Err(e) = node.store.put_activation(&running).await {
        tracing::warn!(activation = id, error = %e, "cannot mark the call running");
    }
    let ctx = RunContext {
        activation: Some(id.to_string()),
        schedule: None,
        attempts: job.attempts,
        origin: job.origin.clone(),
        kappa: None,
        token: None,
    };
    let outcome = node.executor.run(node, &job.call, None, ctx).await;
    let (activation, retryable) = match outcome {
        Ok(a) => {
            let retryable = a.error.is_some();
            (a, retryable)
        }
        // Could not run at all (gone, no longer allowed): no retry helps.
        Err(e) => {
            let mut a = running.clone();
            a.status = ActivationStatus::Failed;
            a.error = Some(e.0);
            (a, false)
        }
    };
    let max = job.call.req.retry.as_ref().map_or(0, |r| r.max);
    let mut changes = Vec::new();
    let mut finished = true;
    if activation.error.is_none() {
        changes.push((RecordKind::Queue, id.to_string(), None));
    } else if retryable && job.attempts <= max {
        // Back to the queue with the error of this try visible.
        let base = backoff(&job.call).unwrap_or(Duration::from_secs(1));
        job.not_before_ms =
            now_ms().saturating_add(retry_wait(base, job.attempts).as_millis() as u64);
        job.state = JobState::Waiting;
        finished = false;
        changes.push((
            RecordKind::Queue,
            id.to_string(),
            Some(serde_json::to_vec(&job).expect("serialisable")),
        ));
    } else {
        let dead = DeadLetter {
            activation: id.to_string(),
            function: job.call.function.to_string(),
            export: activation.export.clone(),
            attempts: job.attempts,
            error: activation.error.clone(),
            failed_at: now_rfc3339(),
            lineage: Some(job.call.claims.lineage.clone()),
        };
        changes.push((RecordKind::Queue, id.to_string(), None));
        changes.push((
            RecordKind::DeadLetter,
            format!("{}/{id}", activation.account),
            Some(serde_json::to_vec(&dead).expect("serialisable")),
        ));
    }
    let mut record = activation;
    if !finished {
        record.status = ActivationStatus::Queued;
    }
    let stored = async {
        node.store.put_activation(&record).await?;
        node.store.put_records(changes).await
    };
    if let Err(e) = stored.await {
        tracing::error!(activation = id, error = %e, "cannot record the asynchronous call's outcome");
    }
    let mut jobs = node.queue.jobs.lock().expect("queue lock");
    if finished {
        jobs.remove(id);
        let _ = node.queue.finished.send(id.to_string());
    } else {
        jobs.insert(id.to_string(), job);
    }
}

/// Waits for the asynchronous calls and schedule ticks that are running to
/// finish (shutdown); holding the returned slots keeps new ones from starting.
pub(crate) async fn drain(node: &Node, workers: usize) -> Option<tokio::sync::SemaphorePermit<'_>> {
    node.queue
        .workers
        .acquire_many(workers.max(1) as u32)
        .await
        .ok()
}

/// Waits until activation `id` is final, at most `wait`.
pub(crate) async fn wait_final(node: &Node, id: &str, wait: Duration) {
    let mut rx = node.queue.finished.subscribe();
    let pending = node.queue.jobs.lock().expect("queue lock").contains_key(id);
    if !pending {
        return;
    }
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Ok(done)) if done == id => return,
            Ok(Ok(_)) => continue,
            Ok(Err(broadcast::error::RecvError::Lagged(_))) => {
                if !node.queue.jobs.lock().expect("queue lock").contains_key(id) {
                    return;
                }
            }
            Ok(Err(_)) | Err(_) => return,
        }
    }
}

/// `GET /v1/dead-letters`.
pub(crate) async fn dead_letters(
    node: &Node,
    claims: &crate::caller::Claims,
) -> Result<Value, ApiError> {
    let mut out = Vec::new();
    for (_, bytes) in node
        .store
        .list_records(RecordKind::DeadLetter, &format!("{}/", claims.account))
        .await?
    {
        if let Ok(d) = serde_json::from_slice::<DeadLetter>(&bytes)
            && crate::caller::sees(claims, d.lineage.as_deref())
        {
            out.push(d);
        }
    }
    Ok(json!({ "dead_letters": out }))
}

/// `DELETE /v1/dead-letters/{id}`: `false` when there is none.
pub(crate) async fn forget_dead_letter(
    node: &Node,
    claims: &crate::caller::Claims,
    id: &str,
) -> Result<bool, ApiError> {
    let key = format!("{}/{id}", claims.account);
    let visible = node
        .store
        .get_record(RecordKind::DeadLetter, &key)
        .await?
        .and_then(|b| serde_json::from_slice::<DeadLetter>(&b).ok())
        .is_some_and(|d| crate::caller::sees(claims, d.lineage.as_deref()));
    if !visible {
        return Ok(false);
    }
    node.store
        .put_records(vec![(RecordKind::DeadLetter, key, None)])
        .await?;
    Ok(true)
}
