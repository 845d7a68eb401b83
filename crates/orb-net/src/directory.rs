//! One set of accounts for the whole network: the network's root public
//! key, account records, revoked token ids and the accounts' shared records
//! (aliases, public routes, whitelists), shared through KV buckets.
//!
//! Who writes what (ARCHITECTURE.md, "Network"):
//! - `orb network init` writes the root public key once (create-only; the
//!   private half stays with the operator and the super nodes);
//! - super nodes write account records (creating an account and rotating
//!   its private token need the root private key);
//! - any node writes revocations (revoking needs no key).
//!
//! Records are opaque JSON to this crate (the node knows what an account
//! is). Every node mirrors both buckets: [`Directory::follow`] hands it
//! every record there is, then every change, in order; applying a record
//! twice must be harmless (records are whole values, revocations a set).

use crate::{NetError, Network, names};
use async_nats::jetstream::kv::{self, Operation};
use bytes::Bytes;
use futures_util::StreamExt;
use tokio::sync::mpsc;

/// A change to mirror, in bucket order.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    /// An account record (the node's JSON) under its id.
    Account { id: String, record: Bytes },
    /// A token lineage (hex revocation id) that is revoked from now on.
    Revoked { id: String },
    /// A shared record of `kind` under `key` (the node's names), or its
    /// removal (`None`).
    Record {
        kind: String,
        key: String,
        value: Option<Bytes>,
    },
}

/// `<kind>.<base64url(key)>`: any key of the node's fits NATS's key rules.
fn record_key(kind: &str, key: &str) -> String {
    use base64::Engine as _;
    format!(
        "{kind}.{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(key)
    )
}

fn parse_record_key(k: &str) -> Option<(String, String)> {
    use base64::Engine as _;
    let (kind, enc) = k.split_once('.')?;
    let key = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(enc)
        .ok()?;
    Some((kind.to_string(), String::from_utf8(key).ok()?))
}

/// The network's directory of accounts and revocations.
pub struct Directory;

impl Directory {
    /// The network's root public key (`ed25519/<hex>`), if set.
    pub async fn root_public_key(net: &Network) -> Result<Option<String>, NetError> {
        let value = net
            .meta_store
            .get(names::ROOT_KEY)
            .await
            .map_err(|e| NetError::js("read the network's root key", e))?;
        Ok(value.map(|v| String::from_utf8_lossy(&v).trim().to_string()))
    }

    /// Sets the root public key once. `Ok(false)`: one was there already
    /// (it is left alone; compare it with [`Directory::root_public_key`]).
    pub async fn set_root_public_key(net: &Network, key: &str) -> Result<bool, NetError> {
        match net
            .meta_store
            .create(names::ROOT_KEY, Bytes::from(key.to_string()))
            .await
        {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == kv::CreateErrorKind::AlreadyExists => Ok(false),
            Err(e) => Err(NetError::js("write the network's root key", e)),
        }
    }

    /// Writes an account record (a super node, after minting its token).
    pub async fn put_account(net: &Network, id: &str, record: Bytes) -> Result<(), NetError> {
        check_key(id)?;
        net.accounts
            .put(id, record)
            .await
            .map(|_| ())
            .map_err(|e| NetError::js(format!("write account {id}"), e))
    }

    /// Revokes token lineages network-wide.
    pub async fn revoke(net: &Network, ids: &[String]) -> Result<(), NetError> {
        for id in ids {
            check_key(id)?;
            net.revocations
                .put(id, Bytes::from_static(b"1"))
                .await
                .map_err(|e| NetError::js(format!("write revocation {id}"), e))?;
        }
        Ok(())
    }

    /// Writes (`Some`) or removes (`None`) a shared record.
    pub async fn put_record(
        net: &Network,
        kind: &str,
        key: &str,
        value: Option<Bytes>,
    ) -> Result<(), NetError> {
        if kind.is_empty() || !kind.bytes().all(|b| b.is_ascii_lowercase() || b == b'-') {
            return Err(NetError::Invalid(format!("record kind `{kind}`")));
        }
        let k = record_key(kind, key);
        match value {
            Some(v) => net
                .records
                .put(k, v)
                .await
                .map(|_| ())
                .map_err(|e| NetError::js(format!("write record {kind} {key}"), e)),
            None => net
                .records
                .delete(k)
                .await
                .map_err(|e| NetError::js(format!("remove record {kind} {key}"), e)),
        }
    }

    /// Mirrors the buckets: sends every record there is, then `None` once
    /// (the snapshot is complete: the node may serve), then every change as
    /// it happens, until `tx` is closed. A watch that breaks (a server
    /// fails) is opened again from the last revision seen, so nothing is
    /// skipped; records may then arrive twice.
    pub async fn follow(net: Network, tx: mpsc::Sender<Option<Change>>) -> Result<(), NetError> {
        let (accounts, revocations) = (net.accounts.clone(), net.revocations.clone());
        let mut a_next =
            snapshot(&accounts, &tx, |id, record| Change::Account { id, record }).await?;
        let mut r_next = snapshot(&revocations, &tx, |id, _| Change::Revoked { id }).await?;
        let records = net.records.clone();
        let mut s_next = snapshot(&records, &tx, |k, value| match parse_record_key(&k) {
            Some((kind, key)) => Change::Record {
                kind,
                key,
                value: Some(value),
            },
            None => Change::Record {
                kind: String::new(),
                key: k,
                value: None,
            },
        })
        .await?;
        if tx.send(None).await.is_err() {
            return Ok(());
        }
        loop {
            let mut a = accounts
                .watch_all_from_revision(a_next)
                .await
                .map_err(|e| NetError::js("watch accounts", e))?;
            let mut r = revocations
                .watch_all_from_revision(r_next)
                .await
                .map_err(|e| NetError::js("watch revocations", e))?;
            let mut s = records
                .watch_all_from_revision(s_next)
                .await
                .map_err(|e| NetError::js("watch records", e))?;
            loop {
                let (entry, next) = tokio::select! {
                    e = a.next() => (e, &mut a_next),
                    e = r.next() => (e, &mut r_next),
                    e = s.next() => (e, &mut s_next),
                };
                let entry = match entry {
                    Some(Ok(entry)) => entry,
                    Some(Err(e)) => {
                        tracing::warn!(error = %e, "directory watch failed; watching again");
                        break;
                    }
                    None => break,
                };
                *next = entry.revision + 1;
                let change = if entry.bucket == names::RECORDS_BUCKET {
                    let Some((kind, key)) = parse_record_key(&entry.key) else {
                        continue;
                    };
                    Change::Record {
                        kind,
                        key,
                        value: (entry.operation == Operation::Put).then_some(entry.value),
                    }
                } else if entry.operation != Operation::Put {
                    continue;
                } else if entry.bucket == names::ACCOUNTS_BUCKET {
                    Change::Account {
                        id: entry.key,
                        record: entry.value,
                    }
                } else {
                    Change::Revoked { id: entry.key }
                };
                if tx.send(Some(change)).await.is_err() {
                    return Ok(());
                }
            }
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
    }
}

/// Sends every live record of `store`; returns the revision to watch from.
async fn snapshot(
    store: &kv::Store,
    tx: &mpsc::Sender<Option<Change>>,
    make: impl Fn(String, Bytes) -> Change,
) -> Result<u64, NetError> {
    let status = store
        .status()
        .await
        .map_err(|e| NetError::js("read bucket status", e))?;
    let next = status.info.state.last_sequence + 1;
    let mut keys = store
        .keys()
        .await
        .map_err(|e| NetError::js("list keys", e))?;
    while let Some(key) = keys.next().await {
        let key = key.map_err(|e| NetError::js("list keys", e))?;
        if let Some(value) = store
            .get(key.as_str())
            .await
            .map_err(|e| NetError::js(format!("read {key}"), e))?
            && tx.send(Some(make(key, value))).await.is_err()
        {
            break;
        }
    }
    Ok(next)
}

fn check_key(id: &str) -> Result<(), NetError> {
    let ok = !id.is_empty()
        && id.len() <= 128
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(NetError::Invalid(format!(
            "`{id}` is not a valid directory key (letters, digits, `_`, `-`)"
        )))
    }
}
