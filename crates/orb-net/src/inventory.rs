//! Who seeds what: a function's seeding slots in the `orb_seeding` bucket.
//!
//! A function has `max_seeders` slots, keys `<hex>.<k>` for `k` in
//! `0..max_seeders`, each holding the id of the node that claimed it. A node
//! seeds a function only while it holds one of its slots, and claims one by
//! *creating* its key (compare-and-set: two nodes never hold one slot), so
//! `max_seeders` holds exactly. A node claims only slots below the
//! function's *want* (`<hex>.want` in the same bucket: `min_seeders` until
//! the scale loop, [`crate::scale`], changes it). A slot whose holder is
//! gone is freed by the super node holding the `repair` lease (delete on
//! the revision it read), which then asks another node to seed.

use crate::deploy::{Announcement, Placement};
use crate::membership::{NodeState, list_nodes};
use crate::{NetError, Network, NodeId};
use async_nats::jetstream::kv;
use bytes::Bytes;
use futures_util::StreamExt;
use orb_core::FunctionId;
use serde::Serialize;
use std::collections::BTreeMap;

/// One claimed slot.
#[derive(Debug, Clone, PartialEq)]
pub struct Slot {
    pub slot: u32,
    pub node: NodeId,
    /// The key's revision (to free it by compare-and-set).
    pub revision: u64,
}

fn key(id: &FunctionId, slot: u32) -> String {
    format!("{}.{slot}", id.hex())
}

/// The claimed slots of a function.
pub async fn slots(net: &Network, id: &FunctionId, max: u32) -> Result<Vec<Slot>, NetError> {
    let mut out = Vec::new();
    for k in 0..max {
        match net
            .seeding
            .entry(key(id, k))
            .await
            .map_err(|e| NetError::js("read a seeding slot", e))?
        {
            Some(e) if e.operation == kv::Operation::Put => out.push(Slot {
                slot: k,
                node: NodeId::parse(&String::from_utf8_lossy(&e.value))?,
                revision: e.revision,
            }),
            _ => {}
        }
    }
    Ok(out)
}

/// Claims a free slot below `want` for `node` (or finds the one it holds
/// among the `max`). `None`: the slots below `want` are all held by other
/// nodes (the scale loop raises `want` when load needs more seeders).
pub async fn claim(
    net: &Network,
    id: &FunctionId,
    node: &NodeId,
    want: u32,
    max: u32,
) -> Result<Option<u32>, NetError> {
    let held = slots(net, id, max).await?;
    if let Some(s) = held.iter().find(|s| &s.node == node) {
        return Ok(Some(s.slot));
    }
    for k in 0..want.min(max) {
        if held.iter().any(|s| s.slot == k) {
            continue;
        }
        match net
            .seeding
            .create(key(id, k), Bytes::from(node.as_str().to_string()))
            .await
        {
            Ok(_) => return Ok(Some(k)),
            Err(e) if e.kind() == kv::CreateErrorKind::AlreadyExists => continue,
            Err(e) => return Err(NetError::js("claim a seeding slot", e)),
        }
    }
    Ok(None)
}

/// Gives back every slot `node` holds of `id` (it stops seeding).
pub async fn release(
    net: &Network,
    id: &FunctionId,
    node: &NodeId,
    max: u32,
) -> Result<(), NetError> {
    for s in slots(net, id, max).await? {
        if &s.node == node {
            free(net, id, &s).await?;
        }
    }
    Ok(())
}

/// Frees a slot if it is still at the revision read (`false`: it changed).
pub async fn free(net: &Network, id: &FunctionId, slot: &Slot) -> Result<bool, NetError> {
    match net
        .seeding
        .delete_expect_revision(key(id, slot.slot), Some(slot.revision))
        .await
    {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == kv::UpdateErrorKind::WrongLastRevision => Ok(false),
        Err(e) => Err(NetError::js("free a seeding slot", e)),
    }
}

/// Every slot key of the bucket held by `node` (a node that leaves gives
/// all of them back).
pub async fn release_all(net: &Network, node: &NodeId) -> Result<(), NetError> {
    let mut keys = match net.seeding.keys().await {
        Ok(k) => k,
        Err(e) => return Err(NetError::js("list seeding slots", e)),
    };
    let mut mine = Vec::new();
    while let Some(k) = keys.next().await {
        let k = k.map_err(|e| NetError::js("list seeding slots", e))?;
        if let Some(e) = net
            .seeding
            .entry(k.clone())
            .await
            .map_err(|e| NetError::js("read a seeding slot", e))?
            && e.operation == kv::Operation::Put
            && e.value.as_ref() == node.as_str().as_bytes()
        {
            mine.push((k, e.revision));
        }
    }
    for (k, rev) in mine {
        let _ = net.seeding.delete_expect_revision(k, Some(rev)).await;
    }
    Ok(())
}

/// A function as the network sees it: its announcement and its seeders
/// (`GET /v1/network/functions/{id}`, `orb network function`).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct FunctionView {
    pub function: FunctionId,
    pub size: u64,
    pub exports: Vec<String>,
    pub placement: Placement,
    /// The super node that validated and announced it.
    pub announced_by: NodeId,
    /// The most fuel a sample call at deploy took (seed 001's complexity).
    pub complexity: u64,
    /// The sample calls run at deploy, one per export.
    pub samples: Vec<orb_core::SampleCall>,
    pub seeders: Vec<SeederView>,
    /// How many seeders are `active` with a live heartbeat.
    pub live_seeders: u32,
    /// How many seeders it should have now (the scale loop's want, between
    /// `min_seeders` and `max_seeders`).
    pub want: u32,
}

/// One claimed slot and what is known of its holder (`None`: the node has
/// no record).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SeederView {
    pub node: NodeId,
    pub slot: u32,
    pub state: Option<NodeState>,
    pub alive: bool,
    pub attributes: Option<BTreeMap<String, String>>,
}

/// The view of an announced function: its slots joined with the nodes.
pub async fn view(net: &Network, a: &Announcement) -> Result<FunctionView, NetError> {
    let nodes = list_nodes(net).await?;
    let seeders: Vec<SeederView> = slots(net, &a.function, a.placement.max_seeders)
        .await?
        .into_iter()
        .map(|s| {
            let n = nodes.iter().find(|n| n.id == s.node);
            SeederView {
                slot: s.slot,
                state: n.map(|n| n.state),
                alive: n.is_some_and(|n| n.alive),
                attributes: n.map(|n| n.hello.attributes.clone()),
                node: s.node,
            }
        })
        .collect();
    let live_seeders = seeders
        .iter()
        .filter(|s| s.alive && s.state == Some(NodeState::Active))
        .count() as u32;
    let want = crate::scale::want(net, &a.function, &a.placement).await?;
    Ok(FunctionView {
        want,
        function: a.function.clone(),
        size: a.size,
        exports: a.exports.clone(),
        placement: a.placement.clone(),
        announced_by: a.announced_by.clone(),
        complexity: a.complexity(),
        samples: a.samples.clone(),
        seeders,
        live_seeders,
    })
}
