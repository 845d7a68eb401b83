//! The node on a network (`orb serve --network URLS [--super]`, cargo
//! feature `network`): joining, leaving, the network-wide directory of
//! accounts and revocations, and what `/v1/network/*` reads.
//!
//! This is glue between the services and `orb-net` (which knows NATS and
//! nothing of the node). A node built without the feature, or started
//! without `--network`, is a single node: every function here is then a
//! no-op or answers `not_networked`, and nothing links NATS.
//!
//! Accounts are network-wide: the network's root public key verifies every
//! token on every node; only super nodes hold the private half, so only
//! they mint (accounts, public tokens, rotations). Account records and
//! revocations are written to the network first and mirrored into every
//! node's own store by [`follow`]; a node serves only once it has mirrored
//! what the network held when it started.

use crate::{ApiError, Node};
use orb_core::{Account, ErrorCode};

/// The network's view for `GET /v1/network/nodes`.
pub async fn nodes(node: &Node) -> Result<serde_json::Value, ApiError> {
    #[cfg(feature = "network")]
    if let Some(joined) = &node.network {
        let nodes = orb_net::membership::list_nodes(&joined.net)
            .await
            .map_err(unavailable)?;
        return Ok(serde_json::json!({
            "this_node": joined.key.id(),
            "nodes": nodes,
        }));
    }
    let _ = node;
    Err(not_networked())
}

/// Writes an account record to the network before the node stores it
/// (a single node: nothing to do).
pub async fn publish_account(node: &Node, account: &Account) -> Result<(), ApiError> {
    #[cfg(feature = "network")]
    if let Some(joined) = &node.network {
        let record = serde_json::to_vec(account).expect("an account serialises");
        return orb_net::Directory::put_account(&joined.net, &account.id, record.into())
            .await
            .map_err(unavailable);
    }
    let _ = (node, account);
    Ok(())
}

/// Revokes token lineages network-wide before the node stores them.
pub async fn publish_revocations(node: &Node, ids: &[String]) -> Result<(), ApiError> {
    #[cfg(feature = "network")]
    if let Some(joined) = &node.network {
        return orb_net::Directory::revoke(&joined.net, ids)
            .await
            .map_err(unavailable);
    }
    let _ = (node, ids);
    Ok(())
}

/// Whether this node is on a network.
pub fn is_networked(node: &Node) -> bool {
    #[cfg(feature = "network")]
    if node.network.is_some() {
        return true;
    }
    let _ = node;
    false
}

fn not_networked() -> ApiError {
    ApiError::new(
        ErrorCode::NotNetworked,
        "this node is a single node, not part of a network; start it with `orb serve --network nats://…`",
    )
}

#[cfg(feature = "network")]
fn unavailable(e: orb_net::NetError) -> ApiError {
    ApiError::new(
        ErrorCode::NetworkUnavailable,
        format!("the network did not answer: {e}; retry, or check its NATS servers"),
    )
}

#[cfg(feature = "network")]
pub(crate) use joined::{Joined, connect, follow, join, leave};

#[cfg(feature = "network")]
mod joined {
    use crate::config::NetworkSettings;
    use crate::{Node, services::accounts};
    use anyhow::Context as _;
    use orb_auth::Authority;
    use orb_core::Account;
    use orb_net::directory::Change;
    use orb_net::{Capacity, Directory, Member, Network, NodeKey, SuperNode, Timing};
    use std::collections::BTreeMap;
    use std::path::Path;
    use std::sync::Arc;

    /// A node's handle on its network.
    pub(crate) struct Joined {
        pub net: Network,
        pub key: Arc<NodeKey>,
        pub settings: NetworkSettings,
        pub attributes: BTreeMap<String, String>,
        pub timing: Timing,
        member: tokio::sync::Mutex<Option<Member>>,
        duties: tokio::sync::Mutex<Option<SuperNode>>,
        mirror: std::sync::Mutex<Option<tokio::task::JoinHandle<()>>>,
    }

    /// Connects to the network, checks it is initialised, and builds the
    /// token authority from its root key: the private half for a super node
    /// (`settings.root_key`, which must match the network's public half),
    /// the public half alone for a node.
    pub(crate) async fn connect(
        settings: &NetworkSettings,
        data_dir: &Path,
    ) -> anyhow::Result<(Joined, Authority)> {
        let mut attributes = BTreeMap::new();
        for a in &settings.attributes {
            let (k, v) = orb_net::membership::parse_attribute(a)?;
            attributes.insert(k, v);
        }
        std::fs::create_dir_all(data_dir)
            .with_context(|| format!("cannot create data dir {}", data_dir.display()))?;
        let key = Arc::new(NodeKey::load_or_create(data_dir)?);
        let client =
            orb_net::network::connect(&settings.urls, &format!("orb-node-{}", key.id().short()))
                .await?;
        let net = Network::open(client).await?;
        let public = Directory::root_public_key(&net)
            .await?
            .context("the network has no root key yet: run `orb network init --network …` once")?;
        let auth = if settings.super_node {
            let path = settings.root_key.as_ref().context(
                "a super node needs the network's root key: pass --network-key FILE (written by `orb network init`)",
            )?;
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read the network key {}", path.display()))?;
            let auth = Authority::from_private_key(&text)
                .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
            anyhow::ensure!(
                auth.public_key_text() == public,
                "{} is not this network's root key (its public half is {}, the network's is {public})",
                path.display(),
                auth.public_key_text()
            );
            auth
        } else {
            Authority::from_public_key(&public).map_err(|e| anyhow::anyhow!("{e}"))?
        };
        tracing::info!(node = %key.id().short(), super_node = settings.super_node, "connected to the network");
        Ok((
            Joined {
                net,
                key,
                settings: settings.clone(),
                attributes,
                timing: Timing::default(),
                member: Default::default(),
                duties: Default::default(),
                mirror: Default::default(),
            },
            auth,
        ))
    }

    /// Mirrors the network's accounts and revocations into this node's
    /// store and authority; returns once the snapshot is applied, then
    /// keeps applying changes in the background.
    pub(crate) async fn follow(node: &Arc<Node>) -> anyhow::Result<()> {
        let joined = node.network.as_ref().expect("networked");
        let (tx, mut rx) = tokio::sync::mpsc::channel(256);
        let net = joined.net.clone();
        tokio::spawn(async move {
            if let Err(e) = Directory::follow(net, tx).await {
                tracing::error!(error = %e, "the network's directory cannot be followed");
            }
        });
        // The snapshot, before serving.
        loop {
            match rx.recv().await {
                Some(Some(change)) => apply(node, change).await?,
                Some(None) => break,
                None => anyhow::bail!("the network's directory could not be read"),
            }
        }
        let task = {
            let node = node.clone();
            tokio::spawn(async move {
                while let Some(Some(change)) = rx.recv().await {
                    if let Err(e) = apply(&node, change).await {
                        tracing::error!(error = %e, "a directory change was not applied");
                    }
                }
            })
        };
        *joined.mirror.lock().expect("mirror lock") = Some(task);
        Ok(())
    }

    async fn apply(node: &Node, change: Change) -> anyhow::Result<()> {
        match change {
            Change::Account { id, record } => {
                let account: Account = serde_json::from_slice(&record)
                    .with_context(|| format!("account record {id} does not parse"))?;
                anyhow::ensure!(account.id == id, "account record {id} names {}", account.id);
                accounts::mirror_account(node, account)
                    .await
                    .map_err(|e| anyhow::anyhow!("{}", e.0))?;
            }
            Change::Revoked { id } => {
                node.store
                    .add_revocations(std::slice::from_ref(&id))
                    .await?;
                node.auth.revoke([id]);
            }
        }
        Ok(())
    }

    /// Joins (hello, heartbeats) and, on a super node, starts its duties.
    pub(crate) async fn join(node: &Node) -> anyhow::Result<()> {
        let joined = node.network.as_ref().expect("networked");
        let capacity =
            Capacity::of_this_machine(node.config.max_instances, node.runtime.engine_key());
        let member = Member::join(
            joined.net.clone(),
            joined.key.clone(),
            joined.attributes.clone(),
            capacity,
            joined.settings.super_node,
            joined.timing.clone(),
        )
        .await?;
        *joined.member.lock().await = Some(member);
        if joined.settings.super_node {
            let duties = SuperNode::start(
                joined.net.clone(),
                joined.key.id().clone(),
                joined.timing.clone(),
            )?;
            *joined.duties.lock().await = Some(duties);
        }
        Ok(())
    }

    /// Leaves cleanly: duties released (another super node takes them at
    /// once), the record marked `gone` ("left"), the heartbeat removed.
    pub(crate) async fn leave(node: &Node) {
        let Some(joined) = node.network.as_ref() else {
            return;
        };
        if let Some(duties) = joined.duties.lock().await.take() {
            duties.shutdown().await;
        }
        if let Some(member) = joined.member.lock().await.take()
            && let Err(e) = member.leave().await
        {
            tracing::warn!(error = %e, "could not mark this node as left; the reaper will");
        }
        if let Some(task) = joined.mirror.lock().expect("mirror lock").take() {
            task.abort();
        }
        tracing::info!("left the network");
    }
}
