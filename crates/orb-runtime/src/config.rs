//! `wasi:config/store`, in both versions components are built for:
//! `0.2.0-rc.1` and `0.2.0-draft-2024-09-27` (Spin's; same functions, vendored
//! unchanged in `config-draft-wit`). Both read the call's globals joined
//! with its namespace (globals first, then the namespace's values) — the
//! seed's "join" mode. Namespace values that are JSON strings are returned
//! as the string; other values as their text (bytes that are not UTF-8 are
//! shown lossily). Reading a namespace key this way counts as a read of the
//! call's transaction.

use crate::host::HostState;
use wasmtime::component::{HasSelf, Linker};

mod rc1 {
    wasmtime::component::bindgen!({
        path: "config-wit",
        world: "wasi:config/imports",
        imports: { default: async | trappable },
    });
}

mod draft {
    wasmtime::component::bindgen!({
        path: "config-draft-wit",
        world: "wasi:config/imports",
        imports: { default: async | trappable },
    });
}

fn as_config(bytes: Vec<u8>) -> String {
    match serde_json::from_slice::<serde_json::Value>(&bytes) {
        Ok(serde_json::Value::String(s)) => s,
        _ => String::from_utf8_lossy(&bytes).into_owned(),
    }
}

impl HostState {
    async fn config_get(&mut self, key: String) -> Result<Option<String>, String> {
        if let Some((_, v)) = self.config.iter().find(|(k, _)| *k == key) {
            return Ok(Some(v.clone()));
        }
        if self.kv.is_none() || !orb_core::valid_key(&key) {
            return Ok(None);
        }
        let ns = self.kv_namespace().unwrap_or_default().to_string();
        match self.kv_read(&ns, &key).await {
            Ok(v) => Ok(v.map(as_config)),
            Err(e) => Err(e.to_string()),
        }
    }

    async fn config_get_all(&mut self) -> Result<Vec<(String, String)>, String> {
        let mut out = self.config.clone();
        if let Some(ns) = self.kv_namespace().map(str::to_string) {
            let keys = self.kv_list(&ns).await.map_err(|e| e.to_string())?;
            for k in keys {
                if out.iter().any(|(g, _)| *g == k) {
                    continue;
                }
                if let Some(v) = self.kv_read(&ns, &k).await.map_err(|e| e.to_string())? {
                    out.push((k, as_config(v)));
                }
            }
        }
        Ok(out)
    }
}

/// The same two functions for each version (their types are the version's own).
macro_rules! config_host {
    ($store:path) => {
        impl $store for HostState {
            async fn get(
                &mut self,
                key: String,
            ) -> wasmtime::Result<Result<Option<String>, Error>> {
                Ok(self.config_get(key).await.map_err(Error::Upstream))
            }

            async fn get_all(&mut self) -> wasmtime::Result<Result<Vec<(String, String)>, Error>> {
                Ok(self.config_get_all().await.map_err(Error::Upstream))
            }
        }
    };
}

mod rc1_host {
    use super::HostState;
    use super::rc1::wasi::config::store::Error;
    config_host!(super::rc1::wasi::config::store::Host);
}

mod draft_host {
    use super::HostState;
    use super::draft::wasi::config::store::Error;
    config_host!(super::draft::wasi::config::store::Host);
}

pub(crate) fn add_to_linker(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    rc1::wasi::config::store::add_to_linker::<HostState, HasSelf<HostState>>(linker, |h| h)?;
    draft::wasi::config::store::add_to_linker::<HostState, HasSelf<HostState>>(linker, |h| h)
}
