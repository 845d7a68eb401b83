//! `wasi:keyvalue@0.2.0-draft` for guests: the namespace a call names, seen
//! through a per-call transaction.
//!
//! Reads go to the backend (recording the revision seen); writes are
//! buffered and visible to the call's own reads. Nothing is stored here:
//! the caller commits [`KvTransaction`] atomically after the call, only if
//! every revision read is unchanged, and re-runs the call otherwise
//! (optimistic concurrency, serializable).

use crate::host::HostState;
use std::collections::BTreeMap;
use std::sync::Arc;
use wasmtime::component::{HasSelf, Linker, Resource};

mod bindings {
    wasmtime::component::bindgen!({
        path: "keyvalue-wit",
        world: "wasi:keyvalue/imports",
        imports: { default: async | trappable },
        with: {
            "wasi:keyvalue/store.bucket": super::Bucket,
        },
        trappable_error_type: {
            "wasi:keyvalue/store.error" => super::KvError,
        },
    });
}
use bindings::wasi::keyvalue::{atomics, batch, store};

/// Where a namespace's committed state is read from (implemented by the node).
#[async_trait::async_trait]
pub trait KvBackend: Send + Sync {
    /// The value (JSON text) and revision of `key`.
    async fn get(&self, key: &str) -> Result<Option<(Vec<u8>, u64)>, String>;
    /// Keys in order after `after`, at most `limit`.
    async fn keys(&self, after: Option<&str>, limit: usize) -> Result<Vec<String>, String>;
}

/// The namespace a call may open, and where to read it.
#[derive(Clone)]
pub struct KvAccess {
    pub namespace: String,
    pub backend: Arc<dyn KvBackend>,
    /// Writes applied before the function runs (the call's `set`), visible to it.
    pub preset: BTreeMap<String, Vec<u8>>,
    /// The token may only read this namespace: guest writes are denied.
    pub read_only: bool,
}

impl std::fmt::Debug for KvAccess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KvAccess")
            .field("namespace", &self.namespace)
            .finish_non_exhaustive()
    }
}

/// What a call read and wrote.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct KvTransaction {
    /// key → revision seen (`None`: absent).
    pub reads: BTreeMap<String, Option<u64>>,
    /// key → new value (`None`: deleted).
    pub writes: BTreeMap<String, Option<Vec<u8>>>,
}

pub(crate) struct KvState {
    pub(crate) access: KvAccess,
    pub(crate) tx: KvTransaction,
}

/// An open bucket (always the call's namespace).
pub struct Bucket;

/// A keyvalue error as the guest sees it.
#[derive(Debug)]
pub struct KvError(store::Error);

impl From<store::Error> for KvError {
    fn from(e: store::Error) -> Self {
        KvError(e)
    }
}

fn other(msg: impl Into<String>) -> KvError {
    KvError(store::Error::Other(msg.into()))
}

type KvResult<T> = Result<T, KvError>;

impl HostState {
    fn kv(&mut self) -> KvResult<&mut KvState> {
        self.kv.as_mut().ok_or_else(|| {
            other(
                "this call names no namespace: pass `namespace` with the call to use wasi:keyvalue",
            )
        })
    }

    pub(crate) async fn kv_read(&mut self, key: &str) -> KvResult<Option<Vec<u8>>> {
        let kv = self.kv()?;
        if let Some(w) = kv.tx.writes.get(key) {
            return Ok(w.clone());
        }
        let got = kv.access.backend.get(key).await.map_err(other)?;
        kv.tx
            .reads
            .entry(key.to_string())
            .or_insert(got.as_ref().map(|(_, r)| *r));
        Ok(got.map(|(v, _)| v))
    }

    fn kv_write(&mut self, key: String, value: Option<Vec<u8>>) -> KvResult<()> {
        if self.kv()?.access.read_only {
            return Err(KvError(store::Error::AccessDenied));
        }
        if !orb_core::valid_key(&key) {
            return Err(other(format!(
                "keys are 1–{} bytes without NUL",
                orb_core::MAX_KEY_BYTES
            )));
        }
        if let Some(v) = &value {
            if v.len() > orb_core::MAX_VALUE_BYTES {
                return Err(other(format!(
                    "values are at most {} bytes",
                    orb_core::MAX_VALUE_BYTES
                )));
            }
            if serde_json::from_slice::<serde_json::Value>(v).is_err() {
                return Err(other(
                    "values are JSON text (write `\"text\"` for a string)",
                ));
            }
        }
        self.kv()?.tx.writes.insert(key, value);
        Ok(())
    }
}

impl store::Host for HostState {
    async fn open(&mut self, identifier: String) -> KvResult<Resource<Bucket>> {
        let ns = self.kv()?.access.namespace.clone();
        if !identifier.is_empty() && identifier != ns {
            return Err(KvError(store::Error::AccessDenied));
        }
        self.table.push(Bucket).map_err(|e| other(e.to_string()))
    }

    fn convert_error(&mut self, err: KvError) -> wasmtime::Result<store::Error> {
        Ok(err.0)
    }
}

impl store::HostBucket for HostState {
    async fn get(&mut self, _: Resource<Bucket>, key: String) -> KvResult<Option<Vec<u8>>> {
        self.kv_read(&key).await
    }

    async fn set(&mut self, _: Resource<Bucket>, key: String, value: Vec<u8>) -> KvResult<()> {
        self.kv_write(key, Some(value))
    }

    async fn delete(&mut self, _: Resource<Bucket>, key: String) -> KvResult<()> {
        self.kv_write(key, None)
    }

    async fn exists(&mut self, _: Resource<Bucket>, key: String) -> KvResult<bool> {
        Ok(self.kv_read(&key).await?.is_some())
    }

    async fn list_keys(
        &mut self,
        _: Resource<Bucket>,
        cursor: Option<u64>,
    ) -> KvResult<store::KeyResponse> {
        const PAGE: usize = 1000;
        let kv = self.kv()?;
        // Committed keys merged with this call's own writes.
        let mut keys: Vec<String> = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let page = kv
                .access
                .backend
                .keys(after.as_deref(), 10_000)
                .await
                .map_err(other)?;
            let done = page.len() < 10_000;
            after = page.last().cloned();
            keys.extend(page);
            if done {
                break;
            }
        }
        for (k, v) in &kv.tx.writes {
            match v {
                Some(_) if !keys.contains(k) => keys.push(k.clone()),
                None => keys.retain(|x| x != k),
                _ => {}
            }
        }
        keys.sort();
        let start = cursor.unwrap_or(0) as usize;
        let page: Vec<String> = keys.iter().skip(start).take(PAGE).cloned().collect();
        let next = (start + page.len() < keys.len()).then_some((start + page.len()) as u64);
        Ok(store::KeyResponse {
            keys: page,
            cursor: next,
        })
    }

    async fn drop(&mut self, bucket: Resource<Bucket>) -> wasmtime::Result<()> {
        self.table.delete(bucket)?;
        Ok(())
    }
}

impl atomics::Host for HostState {
    async fn increment(&mut self, _: Resource<Bucket>, key: String, delta: u64) -> KvResult<u64> {
        let current = match self.kv_read(&key).await? {
            None => 0u64,
            Some(bytes) => std::str::from_utf8(&bytes)
                .ok()
                .and_then(|s| s.trim().parse::<u64>().ok())
                .ok_or_else(|| {
                    other(format!("`{key}` does not hold a non-negative JSON integer"))
                })?,
        };
        let next = current
            .checked_add(delta)
            .ok_or_else(|| other("increment overflows u64"))?;
        self.kv_write(key, Some(next.to_string().into_bytes()))?;
        Ok(next)
    }
}

impl batch::Host for HostState {
    async fn get_many(
        &mut self,
        _: Resource<Bucket>,
        keys: Vec<String>,
    ) -> KvResult<Vec<Option<(String, Vec<u8>)>>> {
        let mut out = Vec::with_capacity(keys.len());
        for k in keys {
            let v = self.kv_read(&k).await?;
            out.push(v.map(|v| (k, v)));
        }
        Ok(out)
    }

    async fn set_many(
        &mut self,
        _: Resource<Bucket>,
        pairs: Vec<(String, Vec<u8>)>,
    ) -> KvResult<()> {
        for (k, v) in pairs {
            self.kv_write(k, Some(v))?;
        }
        Ok(())
    }

    async fn delete_many(&mut self, _: Resource<Bucket>, keys: Vec<String>) -> KvResult<()> {
        for k in keys {
            self.kv_write(k, None)?;
        }
        Ok(())
    }
}

pub(crate) fn add_to_linker(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    store::add_to_linker::<HostState, HasSelf<HostState>>(linker, |h| h)?;
    atomics::add_to_linker::<HostState, HasSelf<HostState>>(linker, |h| h)?;
    batch::add_to_linker::<HostState, HasSelf<HostState>>(linker, |h| h)?;
    Ok(())
}
