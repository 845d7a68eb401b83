//! `wasi:keyvalue` for guests, in both versions components are built for:
//! `0.2.0-draft` (the `wasmtime-wasi-keyvalue` crate's; [`draft`]) and
//! `0.2.0-draft2` (Spin's, with compare-and-swap; [`draft2`]). Both are thin
//! adapters over the one transaction defined here.
//!
//! A call sees namespaces through a per-call transaction. Reads go to the
//! backend (recording the revision seen, or the key list for `list-keys`);
//! writes are buffered and visible to the call's own reads. Nothing is stored
//! here: the caller commits [`KvTransaction`] atomically after the call, only
//! if everything read is unchanged, and re-runs the call otherwise
//! (optimistic concurrency, serializable).
//!
//! Buckets: `""`, `"default"` or the call's namespace name opens the call's
//! namespace (Spin's SDKs open `"default"`, wasmCloud's `""`); any other
//! name opens that namespace only if [`KvBackend::may_open`] says the
//! caller's token allows it.

/// The parts both versions share word for word: `store.open`, the bucket
/// methods (with `list-keys` delegated to the version's `list_keys_page`),
/// and `batch` (with `get-many`'s result put in the version's shape by
/// `get_many_shape`). Expects `store`, `batch`,
/// `Bucket`, `KvError`, `R`, `bucket` and `table_error` in scope.
macro_rules! shared_keyvalue {
    (cursor: $cursor:ty, get_many: $get_many:ty) => {
        impl store::Host for HostState {
            async fn open(&mut self, identifier: String) -> R<Resource<Bucket>> {
                let b = self.kv_open(&identifier).await?;
                self.table.push(b).map_err(table_error)
            }

            fn convert_error(&mut self, err: KvError) -> wasmtime::Result<store::Error> {
                Ok(err.0)
            }
        }

        impl store::HostBucket for HostState {
            async fn get(&mut self, b: Resource<Bucket>, key: String) -> R<Option<Vec<u8>>> {
                let b = bucket(self, &b)?;
                Ok(self.kv_read(&b.namespace, &key).await?)
            }

            async fn set(&mut self, b: Resource<Bucket>, key: String, value: Vec<u8>) -> R<()> {
                let b = bucket(self, &b)?;
                Ok(self.kv_write(&b, key, Some(value))?)
            }

            async fn delete(&mut self, b: Resource<Bucket>, key: String) -> R<()> {
                let b = bucket(self, &b)?;
                Ok(self.kv_write(&b, key, None)?)
            }

            async fn exists(&mut self, b: Resource<Bucket>, key: String) -> R<bool> {
                let b = bucket(self, &b)?;
                Ok(self.kv_read(&b.namespace, &key).await?.is_some())
            }

            async fn list_keys(
                &mut self,
                b: Resource<Bucket>,
                cursor: Option<$cursor>,
            ) -> R<store::KeyResponse> {
                let b = bucket(self, &b)?;
                let keys = self
                    .kv_list_page_source(&b.namespace, cursor.is_none())
                    .await?;
                list_keys_page(keys, cursor)
            }

            async fn drop(&mut self, b: Resource<Bucket>) -> wasmtime::Result<()> {
                self.table.delete(b)?;
                Ok(())
            }
        }

        impl batch::Host for HostState {
            async fn get_many(&mut self, b: Resource<Bucket>, keys: Vec<String>) -> R<$get_many> {
                let b = bucket(self, &b)?;
                let found = self.kv_get_many(&b, keys).await?;
                Ok(get_many_shape(found))
            }

            async fn set_many(
                &mut self,
                b: Resource<Bucket>,
                pairs: Vec<(String, Vec<u8>)>,
            ) -> R<()> {
                let b = bucket(self, &b)?;
                for (k, v) in pairs {
                    self.kv_write(&b, k, Some(v))?;
                }
                Ok(())
            }

            async fn delete_many(&mut self, b: Resource<Bucket>, keys: Vec<String>) -> R<()> {
                let b = bucket(self, &b)?;
                for k in keys {
                    self.kv_write(&b, k, None)?;
                }
                Ok(())
            }
        }

        fn table_error(e: impl std::fmt::Display) -> KvError {
            KvError(store::Error::Other(e.to_string()))
        }

        fn bucket(h: &HostState, r: &Resource<Bucket>) -> R<Bucket> {
            h.table.get(r).cloned().map_err(table_error)
        }

        pub(super) fn add_to_linker(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
            store::add_to_linker::<HostState, HasSelf<HostState>>(linker, |h| h)?;
            atomics::add_to_linker::<HostState, HasSelf<HostState>>(linker, |h| h)?;
            batch::add_to_linker::<HostState, HasSelf<HostState>>(linker, |h| h)?;
            Ok(())
        }
    };
}

mod draft;
mod draft2;

/// The bucket name Spin's SDKs open (`Store::open_default`): the call's
/// own namespace, like `""` (wasmCloud's unnamed bucket).
const DEFAULT_BUCKET: &str = "default";

/// Keys per page of `list-keys`.
const KEYS_PAGE: usize = 1000;

use crate::host::HostState;
use std::collections::BTreeMap;
use std::sync::Arc;
use wasmtime::component::Linker;

/// Where committed namespace state is read from (implemented by the node).
#[async_trait::async_trait]
pub trait KvBackend: Send + Sync {
    /// The value (JSON text) and revision of `key` in `namespace`.
    async fn get(&self, namespace: &str, key: &str) -> Result<Option<(Vec<u8>, u64)>, String>;
    /// Keys of `namespace` in order after `after`, at most `limit`.
    async fn keys(
        &self,
        namespace: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<String>, String>;
    /// Whether the call may open `namespace`, which is not its own:
    /// `None` denies it, `Some(access)` allows it with exactly that access.
    async fn may_open(&self, namespace: &str) -> Option<BucketAccess>;
}

/// What a call may do in a bucket it opened: exactly its token's mode
/// (`r`, `w`, `rw`). Without `read`, every read (`get`, `exists`,
/// `list-keys`, `increment`, compare-and-swap, `wasi:config` lookups) is
/// `access-denied`; without `write`, every write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BucketAccess {
    pub read: bool,
    pub write: bool,
}

impl BucketAccess {
    pub const READ_WRITE: BucketAccess = BucketAccess {
        read: true,
        write: true,
    };
}

/// The namespace a call names, and where to read it.
#[derive(Clone)]
pub struct KvAccess {
    pub namespace: String,
    pub backend: Arc<dyn KvBackend>,
    /// Writes applied before the function runs (the call's `set`), visible to it.
    pub preset: BTreeMap<String, Vec<u8>>,
    /// The token may only read this namespace: guest writes are denied.
    pub read_only: bool,
    /// Largest value a guest may write, in bytes.
    pub max_value_bytes: usize,
    /// The token may only write this namespace (`w` without `r`): guest
    /// reads are denied.
    pub write_only: bool,
}

impl std::fmt::Debug for KvAccess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KvAccess")
            .field("namespace", &self.namespace)
            .finish_non_exhaustive()
    }
}

/// What a call read and wrote in one namespace.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NsTransaction {
    /// key → revision seen (`None`: absent).
    pub reads: BTreeMap<String, Option<u64>>,
    /// key → new value (`None`: deleted).
    pub writes: BTreeMap<String, Option<Vec<u8>>>,
    /// The committed key list the call saw through `list-keys`, if it listed:
    /// the commit also checks that no key was added or removed since.
    pub listed: Option<Vec<String>>,
}

impl NsTransaction {
    pub fn is_empty(&self) -> bool {
        self.reads.is_empty() && self.writes.is_empty() && self.listed.is_none()
    }
}

/// What a call read and wrote, per namespace.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct KvTransaction {
    pub namespaces: BTreeMap<String, NsTransaction>,
}

pub(crate) struct KvState {
    pub(crate) access: KvAccess,
    pub(crate) tx: KvTransaction,
    /// Values read, per (namespace, key): a call reads a key from the store
    /// once and sees that value again (repeatable reads, one snapshot).
    cache: std::collections::HashMap<(String, String), Option<Vec<u8>>>,
    /// The key list a `list-keys` walk pages through, per namespace: taken
    /// when the walk starts (no cursor) so the call's own writes between
    /// pages neither skip nor repeat keys.
    listing: std::collections::HashMap<String, Vec<String>>,
    /// Namespaces the call may write but not read.
    unreadable: std::collections::HashSet<String>,
}

impl KvState {
    pub(crate) fn new(access: KvAccess) -> Self {
        let writes = access
            .preset
            .iter()
            .map(|(k, v)| (k.clone(), Some(v.clone())))
            .collect();
        let mut tx = KvTransaction::default();
        tx.namespaces.insert(
            access.namespace.clone(),
            NsTransaction {
                writes,
                ..Default::default()
            },
        );
        let unreadable = access
            .write_only
            .then(|| access.namespace.clone())
            .into_iter()
            .collect();
        Self {
            access,
            tx,
            cache: Default::default(),
            listing: Default::default(),
            unreadable,
        }
    }
}

/// An open bucket: a namespace the call may use.
#[derive(Clone)]
pub struct Bucket {
    namespace: String,
    read_only: bool,
}

/// Why a keyvalue operation failed, before it is put in a version's terms.
#[derive(Debug)]
pub(crate) enum KvFault {
    NoSuchStore,
    AccessDenied,
    Other(String),
}

impl std::fmt::Display for KvFault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KvFault::NoSuchStore => f.write_str("no such store"),
            KvFault::AccessDenied => f.write_str("access denied"),
            KvFault::Other(m) => f.write_str(m),
        }
    }
}

fn other(msg: impl Into<String>) -> KvFault {
    KvFault::Other(msg.into())
}

type KvResult<T> = Result<T, KvFault>;

/// Keys per backend page while listing.
const LIST_PAGE: usize = 10_000;

impl HostState {
    fn kv(&mut self) -> KvResult<&mut KvState> {
        self.kv.as_mut().ok_or_else(|| {
            other(
                "this call names no namespace: pass `namespace` with the call to use wasi:keyvalue (an HTTP function: bind one to its alias, `orb alias set NAME HASH --ns NS`)",
            )
        })
    }

    /// The call's namespace, for `wasi:config` lookups.
    pub(crate) fn kv_namespace(&self) -> Option<&str> {
        self.kv.as_ref().map(|k| k.access.namespace.as_str())
    }

    /// Opens a bucket by name (see the module docs).
    pub(crate) async fn kv_open(&mut self, identifier: &str) -> KvResult<Bucket> {
        let kv = self.kv()?;
        if identifier.is_empty()
            || identifier == DEFAULT_BUCKET
            || identifier == kv.access.namespace
        {
            return Ok(Bucket {
                namespace: kv.access.namespace.clone(),
                read_only: kv.access.read_only,
            });
        }
        if !orb_core::valid_namespace_name(identifier) {
            return Err(KvFault::NoSuchStore);
        }
        match kv.access.backend.may_open(identifier).await {
            Some(BucketAccess {
                read: false,
                write: false,
            })
            | None => Err(KvFault::AccessDenied),
            Some(access) => {
                if !access.read {
                    kv.unreadable.insert(identifier.to_string());
                }
                Ok(Bucket {
                    namespace: identifier.to_string(),
                    read_only: !access.write,
                })
            }
        }
    }

    /// A read of `ns` by the guest: denied when its token may only write it.
    fn kv_readable(kv: &KvState, ns: &str) -> KvResult<()> {
        if kv.unreadable.contains(ns) {
            tracing::debug!(namespace = %ns, "guest read of a write-only bucket");
            return Err(KvFault::AccessDenied);
        }
        Ok(())
    }

    pub(crate) async fn kv_read(&mut self, ns: &str, key: &str) -> KvResult<Option<Vec<u8>>> {
        let kv = self.kv()?;
        Self::kv_readable(kv, ns)?;
        let tx = kv.tx.namespaces.entry(ns.to_string()).or_default();
        if let Some(w) = tx.writes.get(key) {
            return Ok(w.clone());
        }
        let id = (ns.to_string(), key.to_string());
        if let Some(v) = kv.cache.get(&id) {
            return Ok(v.clone());
        }
        let got = kv.access.backend.get(ns, key).await.map_err(other)?;
        let tx = kv.tx.namespaces.entry(ns.to_string()).or_default();
        tx.reads
            .entry(key.to_string())
            .or_insert(got.as_ref().map(|(_, r)| *r));
        let value = got.map(|(v, _)| v);
        kv.cache.insert(id, value.clone());
        Ok(value)
    }

    pub(crate) fn kv_write(
        &mut self,
        bucket: &Bucket,
        key: String,
        value: Option<Vec<u8>>,
    ) -> KvResult<()> {
        if bucket.read_only {
            // The version's `access-denied` carries no text; the log says why.
            tracing::debug!(namespace = %bucket.namespace, "guest write to a read-only bucket");
            return Err(KvFault::AccessDenied);
        }
        if !orb_core::valid_key(&key) {
            let shown: String = key.chars().take(40).collect();
            return Err(other(format!(
                "key `{shown}` ({} bytes) is not valid: keys are 1–{} bytes without NUL",
                key.len(),
                orb_core::MAX_KEY_BYTES
            )));
        }
        if let Some(v) = &value {
            let max = self.kv()?.access.max_value_bytes;
            if v.len() > max {
                return Err(other(format!(
                    "the value for `{key}` is {} bytes; values are at most {max} bytes (max_value_bytes)",
                    v.len(),
                )));
            }
        }
        self.kv()?
            .tx
            .namespaces
            .entry(bucket.namespace.clone())
            .or_default()
            .writes
            .insert(key, value);
        Ok(())
    }

    /// Every key of `ns` as this call sees it (committed keys merged with
    /// its own writes), in order. Records the committed list for the commit.
    pub(crate) async fn kv_list(&mut self, ns: &str) -> KvResult<Vec<String>> {
        let kv = self.kv()?;
        Self::kv_readable(kv, ns)?;
        let tx = kv.tx.namespaces.entry(ns.to_string()).or_default();
        let committed = match &tx.listed {
            Some(l) => l.clone(),
            None => {
                let mut keys: Vec<String> = Vec::new();
                let mut after: Option<String> = None;
                loop {
                    let page = kv
                        .access
                        .backend
                        .keys(ns, after.as_deref(), LIST_PAGE)
                        .await
                        .map_err(other)?;
                    let done = page.len() < LIST_PAGE;
                    after = page.last().cloned();
                    keys.extend(page);
                    if done {
                        break;
                    }
                }
                let tx = kv.tx.namespaces.entry(ns.to_string()).or_default();
                tx.listed = Some(keys.clone());
                keys
            }
        };
        let tx = kv.tx.namespaces.entry(ns.to_string()).or_default();
        let mut keys: std::collections::BTreeSet<String> = committed.into_iter().collect();
        for (k, v) in &tx.writes {
            match v {
                Some(_) => keys.insert(k.clone()),
                None => keys.remove(k),
            };
        }
        Ok(keys.into_iter().collect())
    }

    /// The key list of one `list-keys` walk: a fresh one when the walk
    /// starts, the same one for its later pages.
    pub(crate) async fn kv_list_page_source(
        &mut self,
        ns: &str,
        start: bool,
    ) -> KvResult<Vec<String>> {
        if !start && let Some(keys) = self.kv()?.listing.get(ns) {
            return Ok(keys.clone());
        }
        let keys = self.kv_list(ns).await?;
        self.kv()?.listing.insert(ns.to_string(), keys.clone());
        Ok(keys)
    }

    /// The values of `keys` (`None`: absent), refused as a whole when
    /// together they pass half the call's memory limit: the guest could not
    /// take them in anyway, and this way it gets an error it can act on
    /// (fetch fewer keys) instead of running out of memory.
    pub(crate) async fn kv_get_many(
        &mut self,
        bucket: &Bucket,
        keys: Vec<String>,
    ) -> KvResult<Vec<(String, Option<Vec<u8>>)>> {
        let limit = self.limiter.max_bytes / 2;
        let mut total = 0usize;
        let mut out = Vec::with_capacity(keys.len());
        for k in keys {
            let v = self.kv_read(&bucket.namespace, &k).await?;
            total += k.len() + v.as_ref().map_or(0, Vec::len);
            if total > limit {
                return Err(other(format!(
                    "get-many: query result exceeds limit of {limit} bytes (half the call's memory limit); fetch fewer keys at a time"
                )));
            }
            out.push((k, v));
        }
        Ok(out)
    }

    /// Adds `delta` to the integer under `key` (absent = 0): decimal text,
    /// which is also how a JSON integer reads (`5`, ` 5\n`), or a JSON
    /// string of one (`"5"`). The new value is written as decimal text.
    pub(crate) async fn kv_increment(
        &mut self,
        bucket: &Bucket,
        key: String,
        delta: i128,
        range: (i128, i128),
    ) -> KvResult<i128> {
        let current: i128 = match self.kv_read(&bucket.namespace, &key).await? {
            None => 0,
            Some(bytes) => parse_counter(&bytes).ok_or_else(|| {
                other(format!(
                    "`{key}` does not hold an integer (decimal text or a JSON integer), so it cannot be incremented"
                ))
            })?,
        };
        let next = current.checked_add(delta).unwrap_or(i128::MAX);
        if next < range.0 || next > range.1 {
            return Err(other(format!(
                "incrementing `{key}` ({current}) by {delta} leaves the range {}..={}",
                range.0, range.1
            )));
        }
        self.kv_write(bucket, key, Some(next.to_string().into_bytes()))?;
        Ok(next)
    }
}

/// The integer a counter value holds: decimal text (a JSON integer reads
/// the same), optionally as a JSON string.
fn parse_counter(bytes: &[u8]) -> Option<i128> {
    let text = std::str::from_utf8(bytes).ok()?.trim();
    let text = text
        .strip_prefix('"')
        .and_then(|t| t.strip_suffix('"'))
        .unwrap_or(text);
    text.parse::<i128>().ok()
}

pub(crate) fn add_to_linker(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    draft::add_to_linker(linker)?;
    draft2::add_to_linker(linker)?;
    Ok(())
}
