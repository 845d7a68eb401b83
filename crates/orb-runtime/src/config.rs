//! `wasi:config/store@0.2.0-rc.1`: the call's globals, joined with its
//! namespace (globals first, then the namespace's values) — the seed's
//! "join" mode. Namespace values that are JSON strings are returned as the
//! string; other values as their JSON text. Reading a namespace key this way
//! counts as a read of the call's transaction.

use crate::host::HostState;
use wasmtime::component::{HasSelf, Linker};

mod bindings {
    wasmtime::component::bindgen!({
        path: "config-wit",
        world: "wasi:config/imports",
        imports: { default: async | trappable },
    });
}
use bindings::wasi::config::store;

fn as_config(bytes: Vec<u8>) -> String {
    match serde_json::from_slice::<serde_json::Value>(&bytes) {
        Ok(serde_json::Value::String(s)) => s,
        _ => String::from_utf8_lossy(&bytes).into_owned(),
    }
}

impl store::Host for HostState {
    async fn get(&mut self, key: String) -> wasmtime::Result<Result<Option<String>, store::Error>> {
        if let Some((_, v)) = self.config.iter().find(|(k, _)| *k == key) {
            return Ok(Ok(Some(v.clone())));
        }
        if self.kv.is_none() || !orb_core::valid_key(&key) {
            return Ok(Ok(None));
        }
        let ns = self.kv_namespace().unwrap_or_default().to_string();
        Ok(match self.kv_read(&ns, &key).await {
            Ok(v) => Ok(v.map(as_config)),
            Err(e) => Err(store::Error::Upstream(e.to_string())),
        })
    }

    async fn get_all(&mut self) -> wasmtime::Result<Result<Vec<(String, String)>, store::Error>> {
        let mut out = self.config.clone();
        if let Some(ns) = self.kv_namespace().map(str::to_string) {
            let keys = match self.kv_list(&ns).await {
                Ok(k) => k,
                Err(e) => return Ok(Err(store::Error::Upstream(e.to_string()))),
            };
            for k in keys {
                if out.iter().any(|(g, _)| *g == k) {
                    continue;
                }
                match self.kv_read(&ns, &k).await {
                    Ok(Some(v)) => out.push((k, as_config(v))),
                    Ok(None) => {}
                    Err(e) => return Ok(Err(store::Error::Upstream(e.to_string()))),
                }
            }
        }
        Ok(Ok(out))
    }
}

pub(crate) fn add_to_linker(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    store::add_to_linker::<HostState, HasSelf<HostState>>(linker, |h| h)
}
