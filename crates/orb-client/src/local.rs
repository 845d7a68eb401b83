//! In-process execution (feature `local`, on by default): the same
//! [`orb_runtime::Runtime`] a node runs, with a local namespace store
//! ([`orb_store::RedbStore`]) in a folder.
//!
//! Layout of the folder: `<dir>/compiled/` (compiled artifacts, keyed by hash
//! and engine configuration, like a node's) and `<dir>/store/orb.redb`
//! (functions run locally and the local namespaces).
//!
//! A local call follows the node's rules for namespaces: `set` is written
//! before the function runs (and kept even if it fails), the guest's reads
//! record revisions and its writes are buffered, and everything commits in
//! one durable transaction with [`orb_store::Store::kv_commit`] — re-running
//! the call on a conflict (up to 5 tries, the retries one at a time), like
//! the node does. There are no accounts, tokens or whitelists locally: the
//! owner of the folder may open every local namespace.

use crate::{CallOptions, ClientError, Invocation};
use orb_core::{ErrorCode, FunctionId, FunctionInfo, OrbError};
use orb_runtime::{CacheSource, KvAccess, KvBackend, LoadedFunction, Runtime, RuntimeConfig};
use orb_store::{Commit, NsCommit, RedbStore, Store, StoreConfig};
use serde_json::{Map, Value as Json, json};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// The one account of a local store.
const ACCOUNT: &str = "local";
/// Tries of a call whose namespace reads were changed by a concurrent call.
const MAX_ATTEMPTS: u32 = 5;

fn internal(message: impl std::fmt::Display) -> ClientError {
    local_error(OrbError::new(ErrorCode::Internal, message.to_string()))
}

/// A local failure, typed with the same codes a node answers with.
pub(crate) fn local_error(error: OrbError) -> ClientError {
    ClientError::Api {
        status: error.status(),
        error,
    }
}

/// Runs components in this process against a local namespace store.
/// Cheap to share: wrap it in an [`Arc`] (the [`crate::Client`] does).
pub struct LocalRunner {
    dir: PathBuf,
    runtime: Arc<Runtime>,
    store: Arc<RedbStore>,
    /// First tries share it; a re-run after a conflict holds it alone, so
    /// retries cannot starve (the node keeps one per namespace).
    gate: Arc<tokio::sync::RwLock<()>>,
    calls: AtomicU64,
}

impl std::fmt::Debug for LocalRunner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalRunner")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

impl LocalRunner {
    /// Opens (or creates) a local runner in `dir`. One process at a time may
    /// open a folder (the store is locked while open).
    pub fn open(dir: impl AsRef<Path>) -> Result<Self, ClientError> {
        let dir = dir.as_ref().to_path_buf();
        std::fs::create_dir_all(&dir)
            .map_err(|e| internal(format!("cannot create {}: {e}", dir.display())))?;
        let runtime = Runtime::new(RuntimeConfig {
            cache_dir: Some(dir.join("compiled")),
            max_instances: 16,
            ..Default::default()
        })
        .map_err(|e| internal(format!("cannot start the local runtime: {e:#}")))?;
        let store = RedbStore::open(&dir.join("store"), StoreConfig::default()).map_err(|e| {
            internal(format!(
                "cannot open the local store in {}: {e}",
                dir.display()
            ))
        })?;
        // With the store locked this process owns the folder, so artifacts
        // of other engine configurations (an earlier Orb) can go; a failure
        // only leaves them, as before.
        let _ = runtime.prune_stale_artifacts();
        Ok(Self {
            dir,
            runtime: Arc::new(runtime),
            store: Arc::new(store),
            gate: Arc::default(),
            calls: AtomicU64::new(0),
        })
    }

    /// The folder this runner keeps its state in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Calls run locally so far.
    pub fn calls(&self) -> u64 {
        self.calls.load(Ordering::Relaxed)
    }

    /// Validates, compiles (or loads the cached artifact) and keeps a
    /// component, so that later local calls may name it by hash.
    pub async fn add_function(&self, bytes: &[u8]) -> Result<FunctionInfo, ClientError> {
        let id = FunctionId::of(bytes);
        let f = self.load_bytes(&id, bytes).await?;
        let info = FunctionInfo {
            hash: id,
            size: bytes.len() as u64,
            exports: f.exports(),
            created_at: String::new(),
        };
        if !self
            .store
            .owns(ACCOUNT, &info.hash)
            .await
            .map_err(internal)?
        {
            self.store
                .put_function(ACCOUNT, &info, bytes::Bytes::copy_from_slice(bytes))
                .await
                .map_err(internal)?;
        }
        Ok(info)
    }

    /// Whether the local store holds the function with this hash.
    pub async fn has_function(&self, id: &FunctionId) -> Result<bool, ClientError> {
        self.store.owns(ACCOUNT, id).await.map_err(internal)
    }

    async fn load_bytes(
        &self,
        id: &FunctionId,
        bytes: &[u8],
    ) -> Result<Arc<LoadedFunction>, ClientError> {
        if let Some(f) = self.runtime.get_loaded(id) {
            return Ok(f);
        }
        let (rt, id, bytes) = (self.runtime.clone(), id.clone(), bytes.to_vec());
        let (f, _): (_, CacheSource) = tokio::task::spawn_blocking(move || rt.load(&id, &bytes))
            .await
            .map_err(|e| internal(format!("compile task failed: {e}")))?
            .map_err(local_error)?;
        Ok(f)
    }

    async fn load_id(&self, id: &FunctionId) -> Result<Arc<LoadedFunction>, ClientError> {
        if let Some(f) = self.runtime.get_loaded(id) {
            return Ok(f);
        }
        let bytes = self
            .store
            .function_bytes(id)
            .await
            .map_err(internal)?
            .ok_or_else(|| {
                local_error(
                    OrbError::new(
                        ErrorCode::FunctionNotFound,
                        format!(
                            "no function {id} in the local store {}; call it once with its bytes \
                             (or `add_function`) so it can run locally",
                            self.dir.display()
                        ),
                    )
                    .with_details(json!({ "function": id.to_string() })),
                )
            })?;
        self.load_bytes(id, &bytes).await
    }

    /// Runs `export` of a function: `component` when given (kept in the
    /// local store for later calls by hash), else the stored one with hash
    /// `id`. `opts` mean what they mean on a node.
    pub async fn invoke(
        &self,
        id: &FunctionId,
        component: Option<&[u8]>,
        export: &str,
        params: &Json,
        opts: &CallOptions,
    ) -> Result<Invocation, ClientError> {
        check_namespace_fields(opts)?;
        let f = match component {
            Some(bytes) => {
                self.add_function(bytes).await?;
                self.load_bytes(id, bytes).await?
            }
            None => self.load_id(id).await?,
        };
        let mut checked = Some(f.check_params(export, params).map_err(local_error)?);
        let globals = globals_to_config(&opts.globals);
        let access = opts.namespace.as_ref().map(|ns| KvAccess {
            namespace: ns.clone(),
            backend: Arc::new(LocalKv {
                store: self.store.clone(),
            }),
            preset: opts
                .set
                .iter()
                .flatten()
                .map(|(k, v)| (k.clone(), serde_json::to_vec(v).expect("serialisable")))
                .collect(),
            read_only: false,
            max_value_bytes: orb_core::MAX_VALUE_BYTES,
            write_only: false,
        });
        self.calls.fetch_add(1, Ordering::Relaxed);
        let mut attempt = 0;
        let outcome = loop {
            attempt += 1;
            let (_shared, _alone);
            if attempt == 1 {
                _shared = Some(self.gate.read().await);
            } else {
                _alone = Some(self.gate.write().await);
            }
            let call = match checked.take() {
                Some(c) => c,
                None => f.check_params(export, params).map_err(local_error)?,
            };
            // Local runs make no outbound requests (no token, no policy).
            let request = orb_runtime::CallRequest {
                globals: globals.clone(),
                limits: None,
                kv: access.clone(),
                outbound: None,
            };
            let mut outcome = self.runtime.call(&f, call, request).await;
            let Some(access) = &access else { break outcome };
            if self
                .commit(access, opts.write_to.as_deref(), &mut outcome)
                .await?
            {
                break outcome;
            }
            if attempt >= MAX_ATTEMPTS {
                outcome.result = Err(OrbError::new(
                    ErrorCode::Conflict,
                    format!(
                        "local namespace `{}` kept changing under this call; gave up after \
                         {MAX_ATTEMPTS} tries — retry later",
                        access.namespace
                    ),
                )
                .with_details(json!({ "attempts": attempt })));
                break outcome;
            }
        };
        let activation = local_activation_id();
        match outcome.result {
            Ok(result) => Ok(Invocation {
                activation,
                function: id.clone(),
                result,
                duration_us: outcome.duration.as_micros() as u64,
                fuel: outcome.fuel,
                local: true,
            }),
            Err(mut e) => {
                if !e.details.is_object() {
                    e.details = json!({});
                }
                if let Some(d) = e.details.as_object_mut() {
                    d.insert("function".into(), json!(id.to_string()));
                    d.insert("activation".into(), json!(activation));
                    d.insert("local".into(), json!(true));
                    if !outcome.logs.is_empty() {
                        d.insert("logs".into(), json!(outcome.logs));
                    }
                }
                Err(local_error(e))
            }
        }
    }

    /// The node's commit rule: on success the call's reads are validated and
    /// its writes (plus `write_to`) applied; on failure only its `set` pairs
    /// are written. `false` on a conflict (re-run the call).
    async fn commit(
        &self,
        access: &KvAccess,
        write_to: Option<&str>,
        outcome: &mut orb_runtime::CallOutcome,
    ) -> Result<bool, ClientError> {
        let parts: Vec<NsCommit> = outcome
            .take_commit(access, write_to)
            .into_iter()
            .map(|(namespace, t)| NsCommit {
                namespace,
                reads: t.reads.into_iter().collect(),
                writes: t.writes.into_iter().collect(),
                listed: t.listed,
            })
            .collect();
        if parts.is_empty() {
            return Ok(true);
        }
        match self
            .store
            .kv_commit(ACCOUNT, parts)
            .await
            .map_err(internal)?
        {
            Commit::Done => Ok(true),
            Commit::Conflict => Ok(false),
            Commit::OverQuota(q) => {
                outcome.result = Err(OrbError::new(
                    ErrorCode::QuotaExceeded,
                    format!(
                        "the local store's {} quota ({}) would be exceeded ({})",
                        q.what, q.limit, q.would_be
                    ),
                ));
                Ok(true)
            }
        }
    }

    /// A local key's JSON value (`None` when absent).
    pub async fn kv_get(&self, ns: &str, key: &str) -> Result<Option<Json>, ClientError> {
        let entry = self
            .store
            .kv_get(ACCOUNT, ns, key)
            .await
            .map_err(internal)?;
        entry
            .map(|e| serde_json::from_slice(&e.value).map_err(internal))
            .transpose()
    }

    /// Writes a local key durably; returns its revision.
    pub async fn kv_put(&self, ns: &str, key: &str, value: &Json) -> Result<u64, ClientError> {
        if !orb_core::valid_key(key) {
            return Err(invalid_key("key", key));
        }
        let bytes = serde_json::to_vec(value).expect("serialisable");
        match self
            .store
            .kv_put(ACCOUNT, ns, key, &bytes)
            .await
            .map_err(internal)?
        {
            Ok(rev) => Ok(rev),
            Err(q) => Err(local_error(OrbError::new(
                ErrorCode::QuotaExceeded,
                format!(
                    "the local store's {} quota ({}) would be exceeded",
                    q.what, q.limit
                ),
            ))),
        }
    }

    /// Removes a local key; `false` when it did not exist.
    pub async fn kv_delete(&self, ns: &str, key: &str) -> Result<bool, ClientError> {
        self.store
            .kv_delete(ACCOUNT, ns, key)
            .await
            .map_err(internal)
    }

    /// Local keys with `prefix`, in order.
    pub async fn kv_keys(&self, ns: &str, prefix: &str) -> Result<Vec<String>, ClientError> {
        let mut out: Vec<String> = Vec::new();
        loop {
            let page = self
                .store
                .kv_keys(ACCOUNT, ns, prefix, out.last().map(String::as_str), 1000)
                .await
                .map_err(internal)?;
            let done = page.len() < 1000;
            out.extend(page);
            if done {
                return Ok(out);
            }
        }
    }

    /// A local namespace in the shape of `GET /v1/namespaces/{ns}/export`
    /// (`{"namespace","keys":{key: value}}`), e.g. to import it into a node.
    pub async fn ns_export(&self, ns: &str) -> Result<Json, ClientError> {
        let mut keys = Map::new();
        for k in self.kv_keys(ns, "").await? {
            if let Some(v) = self.kv_get(ns, &k).await? {
                keys.insert(k, v);
            }
        }
        Ok(json!({ "namespace": ns, "keys": keys }))
    }
}

/// `set` and `write_to` need a namespace, and keys must be valid keys.
fn check_namespace_fields(opts: &CallOptions) -> Result<(), ClientError> {
    let Some(ns) = &opts.namespace else {
        if opts.set.is_some() || opts.write_to.is_some() {
            return Err(local_error(OrbError::new(
                ErrorCode::InvalidRequest,
                "`set` and `write_to` need a `namespace`",
            )));
        }
        return Ok(());
    };
    let valid_ns = !ns.is_empty()
        && ns.len() <= 64
        && ns
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b));
    if !valid_ns {
        return Err(local_error(OrbError::new(
            ErrorCode::InvalidRequest,
            format!("namespace `{ns}` is not a valid name: [a-z0-9._-], 1–64 characters"),
        )));
    }
    for k in opts.set.iter().flatten().map(|(k, _)| k) {
        if !orb_core::valid_key(k) {
            return Err(invalid_key("set", k));
        }
    }
    match &opts.write_to {
        Some(k) if !orb_core::valid_key(k) => Err(invalid_key("write_to", k)),
        _ => Ok(()),
    }
}

fn invalid_key(field: &str, key: &str) -> ClientError {
    local_error(OrbError::new(
        ErrorCode::InvalidKey,
        format!(
            "`{field}` key `{key}` is not a valid key: 1–{} bytes, no NUL",
            orb_core::MAX_KEY_BYTES
        ),
    ))
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

/// `local-<time><counter>`: unique in this process, ordered by time.
fn local_activation_id() -> String {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let n = SEQ.fetch_add(1, Ordering::Relaxed);
    format!("local-{nanos:x}-{n:x}")
}

/// The guest's view of local namespaces: committed state in the local store.
struct LocalKv {
    store: Arc<RedbStore>,
}

#[async_trait::async_trait]
impl KvBackend for LocalKv {
    async fn get(&self, namespace: &str, key: &str) -> Result<Option<(Vec<u8>, u64)>, String> {
        self.store
            .kv_get(ACCOUNT, namespace, key)
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
            .kv_keys(ACCOUNT, namespace, "", after, limit)
            .await
            .map_err(|e| e.to_string())
    }

    /// Locally there are no tokens: every local namespace opens read-write.
    async fn may_open(&self, _namespace: &str) -> Option<orb_runtime::BucketAccess> {
        Some(orb_runtime::BucketAccess::READ_WRITE)
    }
}
