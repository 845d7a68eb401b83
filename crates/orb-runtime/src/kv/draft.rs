//! `wasi:keyvalue@0.2.0-draft`: store, atomics (increment on u64), batch.

use super::{Bucket, KEYS_PAGE, KvFault};
use crate::host::HostState;
use wasmtime::component::{HasSelf, Linker, Resource};

mod bindings {
    wasmtime::component::bindgen!({
        path: "keyvalue-wit",
        world: "wasi:keyvalue/imports",
        imports: { default: async | trappable },
        with: {
            "wasi:keyvalue/store.bucket": crate::kv::Bucket,
        },
        trappable_error_type: {
            "wasi:keyvalue/store.error" => super::KvError,
        },
    });
}
use bindings::wasi::keyvalue::{atomics, batch, store};

/// A keyvalue error as a draft guest sees it.
#[derive(Debug)]
pub struct KvError(store::Error);

impl From<KvFault> for KvError {
    fn from(f: KvFault) -> Self {
        KvError(match f {
            KvFault::NoSuchStore => store::Error::NoSuchStore,
            KvFault::AccessDenied => store::Error::AccessDenied,
            KvFault::Other(m) => store::Error::Other(m),
        })
    }
}

type R<T> = Result<T, KvError>;

shared_keyvalue!(cursor: u64, get_many: Vec<Option<(String, Vec<u8>)>>);

/// `get-many` in this version: absent keys are `none` in place.
fn get_many_shape(found: Vec<(String, Option<Vec<u8>>)>) -> Vec<Option<(String, Vec<u8>)>> {
    found.into_iter().map(|(k, v)| v.map(|v| (k, v))).collect()
}

/// The cursor is an offset into the ordered key list.
fn list_keys_page(keys: Vec<String>, cursor: Option<u64>) -> R<store::KeyResponse> {
    let start = cursor.unwrap_or(0) as usize;
    let page: Vec<String> = keys.iter().skip(start).take(KEYS_PAGE).cloned().collect();
    let next = (start + page.len() < keys.len()).then_some((start + page.len()) as u64);
    Ok(store::KeyResponse {
        keys: page,
        cursor: next,
    })
}

impl atomics::Host for HostState {
    async fn increment(&mut self, b: Resource<Bucket>, key: String, delta: u64) -> R<u64> {
        let b = bucket(self, &b)?;
        let next = self
            .kv_increment(&b, key, delta.into(), (0, u64::MAX.into()))
            .await?;
        Ok(next as u64)
    }
}
