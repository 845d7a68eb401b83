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
use orb_core::{Activation, FunctionId, FunctionInfo};

pub use redb_store::{RedbStore, StoreConfig};

/// A storage failure. Always Orb's fault, never the caller's.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("storage backend error: {0}")]
    Backend(String),
    #[error("stored record is corrupt: {0}")]
    Corrupt(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

/// A page of activations, newest first.
#[derive(Debug, Clone, Default)]
pub struct ActivationQuery {
    /// Only activations of this function.
    pub function: Option<FunctionId>,
    /// Only activations older than this id (for paging).
    pub before: Option<String>,
    /// At most this many (capped by the backend).
    pub limit: usize,
}

/// Durable state of a node.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Stores a component and its metadata. Returns `false` when it was
    /// already there (content-addressed: same hash, same bytes).
    async fn put_function(&self, info: &FunctionInfo, bytes: Bytes) -> StoreResult<bool>;
    async fn function_info(&self, id: &FunctionId) -> StoreResult<Option<FunctionInfo>>;
    async fn function_bytes(&self, id: &FunctionId) -> StoreResult<Option<Bytes>>;
    async fn list_functions(&self) -> StoreResult<Vec<FunctionInfo>>;
    /// Removes a function; `false` when it did not exist.
    async fn delete_function(&self, id: &FunctionId) -> StoreResult<bool>;

    /// Records (or replaces) an activation. May be buffered; [`Store::flush`]
    /// makes every recorded activation durable.
    async fn put_activation(&self, activation: &Activation) -> StoreResult<()>;
    async fn get_activation(&self, id: &str) -> StoreResult<Option<Activation>>;
    async fn list_activations(&self, query: &ActivationQuery) -> StoreResult<Vec<Activation>>;

    /// Makes everything written so far durable (called on shutdown).
    async fn flush(&self) -> StoreResult<()>;
}
