use crate::{ActivationQuery, Store, StoreError, StoreResult};
use async_trait::async_trait;
use bytes::Bytes;
use orb_core::{Activation, FunctionId, FunctionInfo};
use redb::{
    Database, Durability, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition,
};
use std::path::Path;
use std::sync::Arc;

/// hash hex → component bytes.
const COMPONENTS: TableDefinition<&str, &[u8]> = TableDefinition::new("components");
/// hash hex → FunctionInfo JSON.
const FUNCTIONS: TableDefinition<&str, &[u8]> = TableDefinition::new("functions");
/// activation id (UUIDv7, time-ordered) → Activation JSON.
const ACTIVATIONS: TableDefinition<&str, &[u8]> = TableDefinition::new("activations");
/// "<hash hex>/<activation id>" → () — activations by function.
const ACT_BY_FN: TableDefinition<&str, ()> = TableDefinition::new("activations_by_function");

/// Settings of the embedded store.
#[derive(Debug, Clone)]
pub struct StoreConfig {
    /// Activations kept; the oldest are pruned beyond this.
    pub max_activations: u64,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            max_activations: 10_000,
        }
    }
}

/// The embedded store: one redb file, `orb.redb`, in the data folder.
///
/// Functions are committed with immediate durability. Activations are
/// committed without fsync (they become durable with the next durable commit
/// or [`Store::flush`]); redb guarantees the file reopens at a consistent
/// commit either way.
#[derive(Clone)]
pub struct RedbStore {
    db: Arc<Database>,
    config: StoreConfig,
}

fn backend(e: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(e.to_string())
}

impl RedbStore {
    /// Opens (or creates) `<dir>/orb.redb`.
    pub fn open(dir: &Path, config: StoreConfig) -> StoreResult<Self> {
        std::fs::create_dir_all(dir).map_err(backend)?;
        let db = Database::create(dir.join("orb.redb")).map_err(backend)?;
        let txn = db.begin_write().map_err(backend)?;
        {
            txn.open_table(COMPONENTS).map_err(backend)?;
            txn.open_table(FUNCTIONS).map_err(backend)?;
            txn.open_table(ACTIVATIONS).map_err(backend)?;
            txn.open_table(ACT_BY_FN).map_err(backend)?;
        }
        txn.commit().map_err(backend)?;
        Ok(Self {
            db: Arc::new(db),
            config,
        })
    }

    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Database, &StoreConfig) -> StoreResult<T> + Send + 'static,
    ) -> StoreResult<T> {
        let this = self.clone();
        tokio::task::spawn_blocking(move || f(&this.db, &this.config))
            .await
            .map_err(backend)?
    }
}

fn decode<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> StoreResult<T> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt(e.to_string()))
}

fn encode<T: serde::Serialize>(v: &T) -> StoreResult<Vec<u8>> {
    serde_json::to_vec(v).map_err(backend)
}

#[async_trait]
impl Store for RedbStore {
    async fn put_function(&self, info: &FunctionInfo, bytes: Bytes) -> StoreResult<bool> {
        let key = info.hash.hex();
        let meta = encode(info)?;
        self.blocking(move |db, _| {
            let txn = db.begin_write().map_err(backend)?;
            let created;
            {
                let mut fns = txn.open_table(FUNCTIONS).map_err(backend)?;
                created = fns.get(key.as_str()).map_err(backend)?.is_none();
                if created {
                    fns.insert(key.as_str(), meta.as_slice()).map_err(backend)?;
                    let mut comps = txn.open_table(COMPONENTS).map_err(backend)?;
                    comps
                        .insert(key.as_str(), bytes.as_ref())
                        .map_err(backend)?;
                }
            }
            txn.commit().map_err(backend)?;
            Ok(created)
        })
        .await
    }

    async fn function_info(&self, id: &FunctionId) -> StoreResult<Option<FunctionInfo>> {
        let key = id.hex();
        self.blocking(move |db, _| {
            let txn = db.begin_read().map_err(backend)?;
            let t = txn.open_table(FUNCTIONS).map_err(backend)?;
            t.get(key.as_str())
                .map_err(backend)?
                .map(|v| decode(v.value()))
                .transpose()
        })
        .await
    }

    async fn function_bytes(&self, id: &FunctionId) -> StoreResult<Option<Bytes>> {
        let key = id.hex();
        self.blocking(move |db, _| {
            let txn = db.begin_read().map_err(backend)?;
            let t = txn.open_table(COMPONENTS).map_err(backend)?;
            Ok(t.get(key.as_str())
                .map_err(backend)?
                .map(|v| Bytes::copy_from_slice(v.value())))
        })
        .await
    }

    async fn list_functions(&self) -> StoreResult<Vec<FunctionInfo>> {
        self.blocking(move |db, _| {
            let txn = db.begin_read().map_err(backend)?;
            let t = txn.open_table(FUNCTIONS).map_err(backend)?;
            let mut out = Vec::new();
            for entry in t.iter().map_err(backend)? {
                let (_, v) = entry.map_err(backend)?;
                out.push(decode(v.value())?);
            }
            Ok(out)
        })
        .await
    }

    async fn delete_function(&self, id: &FunctionId) -> StoreResult<bool> {
        let key = id.hex();
        self.blocking(move |db, _| {
            let txn = db.begin_write().map_err(backend)?;
            let existed;
            {
                let mut fns = txn.open_table(FUNCTIONS).map_err(backend)?;
                existed = fns.remove(key.as_str()).map_err(backend)?.is_some();
                let mut comps = txn.open_table(COMPONENTS).map_err(backend)?;
                comps.remove(key.as_str()).map_err(backend)?;
            }
            txn.commit().map_err(backend)?;
            Ok(existed)
        })
        .await
    }

    async fn put_activation(&self, activation: &Activation) -> StoreResult<()> {
        let id = activation.id.clone();
        let index_key = format!("{}/{}", activation.function.hex(), activation.id);
        let value = encode(activation)?;
        self.blocking(move |db, cfg| {
            let mut txn = db.begin_write().map_err(backend)?;
            txn.set_durability(Durability::None).map_err(backend)?;
            {
                let mut acts = txn.open_table(ACTIVATIONS).map_err(backend)?;
                let mut by_fn = txn.open_table(ACT_BY_FN).map_err(backend)?;
                acts.insert(id.as_str(), value.as_slice())
                    .map_err(backend)?;
                by_fn.insert(index_key.as_str(), ()).map_err(backend)?;
                // Retention: prune the oldest in batches.
                let len = acts.len().map_err(backend)?;
                if len > cfg.max_activations + 64 {
                    let excess = (len - cfg.max_activations) as usize;
                    let mut victims = Vec::with_capacity(excess);
                    for entry in acts.iter().map_err(backend)?.take(excess) {
                        let (k, v) = entry.map_err(backend)?;
                        let a: Activation = decode(v.value())?;
                        victims.push((k.value().to_string(), a.function.hex()));
                    }
                    for (k, f) in victims {
                        acts.remove(k.as_str()).map_err(backend)?;
                        by_fn.remove(format!("{f}/{k}").as_str()).map_err(backend)?;
                    }
                }
            }
            txn.commit().map_err(backend)?;
            Ok(())
        })
        .await
    }

    async fn get_activation(&self, id: &str) -> StoreResult<Option<Activation>> {
        let id = id.to_string();
        self.blocking(move |db, _| {
            let txn = db.begin_read().map_err(backend)?;
            let t = txn.open_table(ACTIVATIONS).map_err(backend)?;
            t.get(id.as_str())
                .map_err(backend)?
                .map(|v| decode(v.value()))
                .transpose()
        })
        .await
    }

    async fn list_activations(&self, query: &ActivationQuery) -> StoreResult<Vec<Activation>> {
        let q = query.clone();
        self.blocking(move |db, _| {
            let limit = q.limit.clamp(1, 1000);
            let txn = db.begin_read().map_err(backend)?;
            let acts = txn.open_table(ACTIVATIONS).map_err(backend)?;
            let mut out = Vec::new();
            match &q.function {
                None => {
                    let range = match &q.before {
                        Some(b) => acts.range::<&str>(..b.as_str()),
                        None => acts.range::<&str>(..),
                    }
                    .map_err(backend)?;
                    for entry in range.rev().take(limit) {
                        let (_, v) = entry.map_err(backend)?;
                        out.push(decode(v.value())?);
                    }
                }
                Some(f) => {
                    let by_fn = txn.open_table(ACT_BY_FN).map_err(backend)?;
                    let lo = format!("{}/", f.hex());
                    let hi = match &q.before {
                        Some(b) => format!("{}/{b}", f.hex()),
                        None => format!("{}0", f.hex()), // '0' sorts right after '/'
                    };
                    for entry in by_fn
                        .range(lo.as_str()..hi.as_str())
                        .map_err(backend)?
                        .rev()
                        .take(limit)
                    {
                        let (k, _) = entry.map_err(backend)?;
                        let key = k.value();
                        let id = key.split_once('/').map_or(key, |(_, id)| id);
                        if let Some(v) = acts.get(id).map_err(backend)? {
                            out.push(decode(v.value())?);
                        }
                    }
                }
            }
            Ok(out)
        })
        .await
    }

    async fn flush(&self) -> StoreResult<()> {
        self.blocking(|db, _| {
            let mut txn = db.begin_write().map_err(backend)?;
            txn.set_durability(Durability::Immediate).map_err(backend)?;
            txn.commit().map_err(backend)?;
            Ok(())
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use orb_core::ActivationStatus;

    fn act(id: &str, f: &FunctionId) -> Activation {
        Activation {
            id: id.into(),
            function: f.clone(),
            export: "greet".into(),
            status: ActivationStatus::Succeeded,
            start: "2026-01-01T00:00:00Z".into(),
            duration_us: 1,
            fuel: 2,
            result: Some(serde_json::json!("hi")),
            error: None,
            logs: String::new(),
            logs_truncated: false,
        }
    }

    #[tokio::test]
    async fn functions_and_activations_survive_reopen_and_prune() {
        let dir = tempfile::tempdir().unwrap();
        let f1 = FunctionId::of(b"one");
        let f2 = FunctionId::of(b"two");
        {
            let s = RedbStore::open(
                dir.path(),
                StoreConfig {
                    max_activations: 10,
                },
            )
            .unwrap();
            let info = FunctionInfo {
                hash: f1.clone(),
                size: 3,
                exports: vec![],
                created_at: "t".into(),
            };
            assert!(
                s.put_function(&info, Bytes::from_static(b"one"))
                    .await
                    .unwrap()
            );
            assert!(
                !s.put_function(&info, Bytes::from_static(b"one"))
                    .await
                    .unwrap()
            );
            for i in 0..100 {
                let f = if i % 2 == 0 { &f1 } else { &f2 };
                s.put_activation(&act(&format!("a{i:04}"), f))
                    .await
                    .unwrap();
            }
            s.flush().await.unwrap();
        }
        let s = RedbStore::open(
            dir.path(),
            StoreConfig {
                max_activations: 10,
            },
        )
        .unwrap();
        assert_eq!(
            s.function_bytes(&f1).await.unwrap().unwrap().as_ref(),
            b"one"
        );
        assert_eq!(s.list_functions().await.unwrap().len(), 1);
        let all = s
            .list_activations(&ActivationQuery {
                limit: 1000,
                ..Default::default()
            })
            .await
            .unwrap();
        assert!(all.len() <= 10 + 64 && all.len() >= 10, "{}", all.len());
        assert_eq!(all[0].id, "a0099");
        let only_f1 = s
            .list_activations(&ActivationQuery {
                function: Some(f1.clone()),
                limit: 5,
                before: None,
            })
            .await
            .unwrap();
        assert_eq!(only_f1.len(), 5);
        assert!(only_f1.iter().all(|a| a.function == f1));
        assert_eq!(only_f1[0].id, "a0098");
        let page2 = s
            .list_activations(&ActivationQuery {
                function: Some(f1.clone()),
                limit: 2,
                before: Some("a0096".into()),
            })
            .await
            .unwrap();
        assert_eq!(page2[0].id, "a0094");
        assert!(s.delete_function(&f1).await.unwrap());
        assert!(s.function_bytes(&f1).await.unwrap().is_none());
        assert!(!s.delete_function(&f1).await.unwrap());
    }
}
