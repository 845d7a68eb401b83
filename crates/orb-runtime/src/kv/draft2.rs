//! `wasi:keyvalue@0.2.0-draft2` exactly as Spin ships it (its
//! `keyvalue-2024-10-17` WIT, vendored unchanged in `keyvalue-draft2-wit`):
//! store with a string cursor, atomics with a signed increment and
//! compare-and-swap, batch whose `get-many` answers every key with an
//! `option` value.
//!
//! Compare-and-swap inside a call: `cas.new` reads the key (the read joins the
//! call's transaction), `swap` writes only if the call has not changed the
//! key since; the commit then checks that no one else did either. Either way
//! the swap is atomic with the rest of the call.

use super::{Bucket, KEYS_PAGE, KvFault};
use crate::host::HostState;
use wasmtime::component::{HasSelf, Linker, Resource};

mod bindings {
    wasmtime::component::bindgen!({
        path: "keyvalue-draft2-wit",
        world: "wasi:keyvalue/imports",
        imports: { default: async | trappable },
        with: {
            "wasi:keyvalue/store.bucket": crate::kv::Bucket,
            "wasi:keyvalue/atomics.cas": super::Cas,
        },
        trappable_error_type: {
            "wasi:keyvalue/store.error" => super::KvError,
        },
    });
}
use bindings::wasi::keyvalue::{atomics, batch, store};

/// A compare-and-swap handle: the key and the value seen when it was made.
pub struct Cas {
    bucket: Bucket,
    key: String,
    seen: Option<Vec<u8>>,
}

/// A keyvalue error as a draft2 guest sees it.
#[derive(Debug)]
pub struct KvError(store::Error);

impl From<KvFault> for KvError {
    fn from(f: KvFault) -> Self {
        KvError(to_error(f))
    }
}

fn to_error(f: KvFault) -> store::Error {
    match f {
        KvFault::NoSuchStore => store::Error::NoSuchStore,
        KvFault::AccessDenied => store::Error::AccessDenied,
        KvFault::Other(m) => store::Error::Other(m),
    }
}

type R<T> = Result<T, KvError>;

shared_keyvalue!(cursor: String, get_many: Vec<(String, Option<Vec<u8>>)>);

/// `get-many` as Spin declares it: every key, with its value or `none`.
fn get_many_shape(found: Vec<(String, Option<Vec<u8>>)>) -> Vec<(String, Option<Vec<u8>>)> {
    found
}

/// Cursors this store hands out: the last key of the page, marked so that
/// anything else is refused rather than misread.
const CURSOR_MARK: &str = "orb-after:";

/// The cursor (see [`CURSOR_MARK`]) names the last key of the previous page.
fn list_keys_page(keys: Vec<String>, cursor: Option<String>) -> R<store::KeyResponse> {
    let start = match &cursor {
        Some(c) => {
            let Some(after) = c.strip_prefix(CURSOR_MARK) else {
                return Err(KvError(store::Error::Other(format!(
                    "list-keys: `{}` is not a cursor this store returned; pass none to start, then the previous page's cursor",
                    c.chars().take(40).collect::<String>()
                ))));
            };
            keys.partition_point(|k| k.as_str() <= after)
        }
        None => 0,
    };
    let page: Vec<String> = keys.iter().skip(start).take(KEYS_PAGE).cloned().collect();
    let next = (start + page.len() < keys.len())
        .then(|| page.last().map(|k| format!("{CURSOR_MARK}{k}")))
        .flatten();
    Ok(store::KeyResponse {
        keys: page,
        cursor: next,
    })
}

impl atomics::HostCas for HostState {
    async fn new(&mut self, b: Resource<Bucket>, key: String) -> R<Resource<Cas>> {
        let b = bucket(self, &b)?;
        let seen = self.kv_read(&b.namespace, &key).await?;
        self.table
            .push(Cas {
                bucket: b,
                key,
                seen,
            })
            .map_err(table_error)
    }

    async fn current(&mut self, cas: Resource<Cas>) -> R<Option<Vec<u8>>> {
        Ok(self.table.get(&cas).map_err(table_error)?.seen.clone())
    }

    async fn drop(&mut self, cas: Resource<Cas>) -> wasmtime::Result<()> {
        self.table.delete(cas)?;
        Ok(())
    }
}

impl atomics::Host for HostState {
    async fn increment(&mut self, b: Resource<Bucket>, key: String, delta: i64) -> R<i64> {
        let b = bucket(self, &b)?;
        let next = self
            .kv_increment(&b, key, delta.into(), (i64::MIN.into(), i64::MAX.into()))
            .await?;
        Ok(next as i64)
    }

    async fn swap(
        &mut self,
        cas: Resource<Cas>,
        value: Vec<u8>,
    ) -> wasmtime::Result<Result<(), atomics::CasError>> {
        let Cas { bucket, key, seen } = self.table.delete(cas)?;
        let now = match self.kv_read(&bucket.namespace, &key).await {
            Ok(v) => v,
            Err(f) => return Ok(Err(atomics::CasError::StoreError(to_error(f)))),
        };
        if now != seen {
            let fresh = self.table.push(Cas {
                bucket,
                key,
                seen: now,
            })?;
            return Ok(Err(atomics::CasError::CasFailed(fresh)));
        }
        Ok(self
            .kv_write(&bucket, key, Some(value))
            .map_err(|f| atomics::CasError::StoreError(to_error(f))))
    }
}
