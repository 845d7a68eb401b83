//! Orb's storage: the [`Store`] trait and its embedded backend, [`RedbStore`].
//!
//! Owns: durable records of functions (component bytes + metadata) and
//! activations (bounded retention), and the rules for their keys.
//!
//! Must not know: wasmtime, HTTP, tokens. The trait has no redb types in it so
//! a NATS JetStream backend can implement it for the network.

mod redb_store;

use async_trait::async_trait;
use bytes::Bytes;
use orb_core::{Account, Activation, FunctionId, FunctionInfo};

pub use redb_store::{RedbStore, StoreConfig};

/// A storage failure. Always Orb's fault, never the caller's.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("storage backend error: {0}")]
    Backend(String),
    #[error("stored record is corrupt: {0}")]
    Corrupt(String),
    /// The disk holding the store is (nearly) full: the write was refused
    /// before anything was written, and reads keep working.
    #[error("{0}")]
    Full(String),
    /// The store file is damaged (truncated, overwritten, altered outside
    /// the database): it is refused at open, never read.
    #[error("{0}")]
    Damaged(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

/// A stored value: its JSON text and a revision that grows on every write.
#[derive(Debug, Clone, PartialEq)]
pub struct KvEntry {
    pub value: Vec<u8>,
    pub revision: u64,
}

/// Per-account limits on namespace contents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    pub max_keys: u64,
    pub max_bytes: u64,
}

impl Default for Quota {
    fn default() -> Self {
        Self {
            max_keys: 1_000_000,
            max_bytes: 1 << 30,
        }
    }
}

/// A write that would take the account past its quota.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuotaExceeded {
    /// `"keys"` or `"bytes"`.
    pub what: &'static str,
    pub limit: u64,
    pub would_be: u64,
}

/// What one call read and writes in one namespace, for [`Store::kv_commit`].
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NsCommit {
    pub namespace: String,
    /// key → the revision read (`None`: it was absent).
    pub reads: Vec<(String, Option<u64>)>,
    /// key → new value JSON text (`None`: delete).
    pub writes: Vec<(String, Option<Vec<u8>>)>,
    /// The namespace's full key list as read (`list-keys`): the commit also
    /// fails if a key was added or removed since.
    pub listed: Option<Vec<String>>,
}

/// How a [`Store::kv_commit`] ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Commit {
    Done,
    /// Something the call read has changed since.
    Conflict,
    OverQuota(QuotaExceeded),
}

/// A namespace and its size.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct NamespaceInfo {
    pub name: String,
    pub keys: u64,
    pub bytes: u64,
}

/// A page of activations, newest first.
#[derive(Debug, Clone, Default)]
pub struct ActivationQuery {
    /// Only activations of this account.
    pub account: String,
    /// Only activations of this function.
    pub function: Option<FunctionId>,
    /// Only activations older than this id (for paging).
    pub before: Option<String>,
    /// At most this many (capped by the backend).
    pub limit: usize,
}

/// Kinds of small durable records the node keeps besides functions,
/// activations and namespaces. The store keeps their bytes under a key
/// (the node decides both); it knows nothing of what they mean.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RecordKind {
    /// `<account>/<alias>` → the alias's target and history.
    Alias,
    /// `<activation id>` → an asynchronous call waiting to run.
    Queue,
    /// `<account>/<activation id>` → an asynchronous call that failed for good.
    DeadLetter,
    /// `<account>/<schedule id>` → a schedule and its state.
    Schedule,
    Trigger,
    Rule,
    Kappa,
    /// A kappa's outport messages, in order.
    KappaOut,
    /// `<account>/<kappa>/<message id>` → how a message was handled (its
    /// sender's idempotency key).
    KappaMessage,
    /// `<alias name>` → the account serving it as a public HTTP route.
    PublicRoute,
    /// `<account>` → the account's outbound HTTP policy.
    Outbound,
    /// `<account>/<name>` → a secret (opaque to the store).
    Secret,
}

impl RecordKind {
    pub fn as_str(self) -> &'static str {
        match self {
            RecordKind::Alias => "alias",
            RecordKind::Queue => "queue",
            RecordKind::DeadLetter => "dead",
            RecordKind::Schedule => "schedule",
            RecordKind::Trigger => "trigger",
            RecordKind::Rule => "rule",
            RecordKind::Kappa => "kappa",
            RecordKind::KappaOut => "kappa-out",
            RecordKind::KappaMessage => "kappa-msg",
            RecordKind::PublicRoute => "public-route",
            RecordKind::Outbound => "outbound",
            RecordKind::Secret => "secret",
        }
    }
}

/// One change of [`Store::put_records`]: `None` removes the record.
pub type RecordChange = (RecordKind, String, Option<Vec<u8>>);

/// Durable state of a node.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Stores a component (once, content-addressed) and records that
    /// `account` owns it. Returns `false` when the account already had it.
    async fn put_function(
        &self,
        account: &str,
        info: &FunctionInfo,
        bytes: Bytes,
    ) -> StoreResult<bool>;
    /// Metadata of a stored component, whoever owns it.
    async fn function_info(&self, id: &FunctionId) -> StoreResult<Option<FunctionInfo>>;
    /// Whether `account` owns the function.
    async fn owns(&self, account: &str, id: &FunctionId) -> StoreResult<bool>;
    async fn function_bytes(&self, id: &FunctionId) -> StoreResult<Option<Bytes>>;
    /// The account's functions (with the account's upload time).
    async fn list_functions(&self, account: &str) -> StoreResult<Vec<FunctionInfo>>;
    /// Drops the account's ownership; the bytes go when no owner is left.
    /// Returns `(existed_for_account, bytes_removed)`.
    async fn delete_function(&self, account: &str, id: &FunctionId) -> StoreResult<(bool, bool)>;

    async fn create_account(&self, account: &Account) -> StoreResult<()>;
    async fn get_account(&self, id: &str) -> StoreResult<Option<Account>>;
    async fn list_accounts(&self) -> StoreResult<Vec<Account>>;

    /// Persists revoked token ids (hex revocation ids).
    async fn add_revocations(&self, ids: &[String]) -> StoreResult<()>;
    /// Stores `account` (its new private token's hash and lineage) and
    /// revokes `ids` in one durable transaction: a token rotation.
    async fn replace_account_token(&self, account: &Account, ids: &[String]) -> StoreResult<()>;
    async fn list_revocations(&self) -> StoreResult<Vec<String>>;

    /// The function hashes public tokens may run against a namespace.
    async fn set_whitelist(
        &self,
        account: &str,
        namespace: &str,
        functions: &[FunctionId],
    ) -> StoreResult<()>;
    async fn get_whitelist(
        &self,
        account: &str,
        namespace: &str,
    ) -> StoreResult<Option<Vec<FunctionId>>>;

    /// A key's value (JSON text) and revision.
    async fn kv_get(
        &self,
        account: &str,
        namespace: &str,
        key: &str,
    ) -> StoreResult<Option<KvEntry>>;
    /// Writes a key durably (fsync before returning); returns its new
    /// revision, or the quota it would break (nothing is written then).
    async fn kv_put(
        &self,
        account: &str,
        namespace: &str,
        key: &str,
        value: &[u8],
    ) -> StoreResult<Result<u64, QuotaExceeded>>;
    /// Removes a key durably; `false` when it did not exist.
    async fn kv_delete(&self, account: &str, namespace: &str, key: &str) -> StoreResult<bool>;
    /// Keys with `prefix`, in order, strictly after `after`, at most `limit`.
    async fn kv_keys(
        &self,
        account: &str,
        namespace: &str,
        prefix: &str,
        after: Option<&str>,
        limit: usize,
    ) -> StoreResult<Vec<String>>;
    /// Commits a call's writes, over one or more namespaces, atomically and
    /// durably — only if every key read still has the revision read (`None`:
    /// still absent), every listed key set is unchanged, and the account
    /// stays within its quota; otherwise writes nothing. Concurrent commits
    /// may share one fsync (group commit).
    /// [`Store::kv_commit`], writing `records` in the same transaction when
    /// (and only when) it commits: a kappa's state and its outport.
    async fn kv_commit_with_records(
        &self,
        account: &str,
        parts: Vec<NsCommit>,
        records: Vec<RecordChange>,
    ) -> StoreResult<Commit>;
    async fn kv_commit(&self, account: &str, parts: Vec<NsCommit>) -> StoreResult<Commit>;
    /// The account's namespaces that hold at least one key.
    async fn list_namespaces(&self, account: &str) -> StoreResult<Vec<NamespaceInfo>>;

    /// Applies record changes atomically and durably.
    async fn put_records(&self, changes: Vec<RecordChange>) -> StoreResult<()>;
    async fn get_record(&self, kind: RecordKind, key: &str) -> StoreResult<Option<Vec<u8>>>;
    /// Records of `kind` whose key starts with `prefix`, in key order.
    async fn list_records(
        &self,
        kind: RecordKind,
        prefix: &str,
    ) -> StoreResult<Vec<(String, Vec<u8>)>>;

    /// Records (or replaces) an activation. May be buffered; [`Store::flush`]
    /// makes every recorded activation durable.
    async fn put_activation(&self, activation: &Activation) -> StoreResult<()>;
    async fn get_activation(&self, id: &str) -> StoreResult<Option<Activation>>;
    async fn list_activations(&self, query: &ActivationQuery) -> StoreResult<Vec<Activation>>;

    /// Makes everything written so far durable (called on shutdown).
    async fn flush(&self) -> StoreResult<()>;
}
