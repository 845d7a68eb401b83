//! An operator's control of one node: `orb network drain NODE`.
//!
//! Draining moves a node's seeding elsewhere before it stops. The operator
//! asks the node on its [`names::control_subject`]; the node marks itself
//! `draining` (its own record, as membership's rule says), stops taking
//! new seeding (announcements and repair requests are refused), gives its
//! seeding slots back, and keeps answering calls of what it seeded until
//! it stops. The repair duty (which counts only `active`, live seeders)
//! then asks other nodes to seed those functions. [`progress`] says how
//! far that is: for each function the node seeded, how many live, active
//! seeders it has elsewhere against its `min_seeders`.
//!
//! Who may drain: whoever can publish on the network's NATS servers, as
//! for `orb network init` (per-role NATS permissions come later).

use crate::membership::NodeState;
use crate::rpc::{self, RequestFailed};
use crate::{NetError, Network, NodeId, deploy, inventory, names};
use orb_core::FunctionId;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// What an operator asks a node.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum ControlRequest {
    /// Stop seeding new functions and give this node's seeding slots back.
    Drain,
}

/// A node's answer to [`ControlRequest::Drain`].
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct DrainReply {
    /// The node's state after the request: `draining`; none when the
    /// request failed, which leaves the node's state as it was.
    pub state: Option<NodeState>,
    /// The functions it seeded: they need seeders elsewhere.
    pub seeding: Vec<FunctionId>,
    /// Why the node could not drain, if it could not.
    pub error: Option<String>,
}

/// Asks `node` to drain and returns its answer.
pub async fn request_drain(net: &Network, node: &NodeId) -> Result<DrainReply, NetError> {
    let payload = serde_json::to_vec(&ControlRequest::Drain).expect("serialises");
    let reply = rpc::request(
        net,
        names::control_subject(node),
        payload.into(),
        Duration::from_secs(15),
    )
    .await
    .map_err(|e| match e {
        RequestFailed::NoResponders(_) => NetError::Invalid(format!(
            "node {} does not answer control requests: it is not running (a stopped node seeds nothing; the repair duty has moved or will move its functions)",
            node.short()
        )),
        e => NetError::Invalid(format!("node {}: {e}", node.short())),
    })?;
    let reply: DrainReply = serde_json::from_slice(&reply)
        .map_err(|e| NetError::Invalid(format!("the node's drain answer does not parse: {e}")))?;
    match &reply.error {
        Some(why) => Err(NetError::Invalid(format!(
            "node {} could not drain: {why}",
            node.short()
        ))),
        None => Ok(reply),
    }
}

/// One function of a draining node: how many seeders it has elsewhere.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Moved {
    pub function: FunctionId,
    /// Its announced `min_seeders` (0 when no announcement is left).
    pub min_seeders: u32,
    /// Seeders other than the draining node that are `active` and alive.
    pub live_elsewhere: u32,
}

impl Moved {
    /// Whether the function no longer needs the draining node.
    pub fn done(&self) -> bool {
        self.live_elsewhere >= self.min_seeders
    }
}

/// For each of `functions`, its live, active seeders other than `node`.
pub async fn progress(
    net: &Network,
    node: &NodeId,
    functions: &[FunctionId],
) -> Result<Vec<Moved>, NetError> {
    let mut out = Vec::with_capacity(functions.len());
    for id in functions {
        let Some(a) = deploy::latest_announcement(net, id).await? else {
            // No announcement is left to place it: nothing to wait for.
            out.push(Moved {
                function: id.clone(),
                min_seeders: 0,
                live_elsewhere: 0,
            });
            continue;
        };
        let view = inventory::view(net, &a).await?;
        let live_elsewhere = view
            .seeders
            .iter()
            .filter(|s| s.alive && s.state == Some(NodeState::Active) && &s.node != node)
            .count() as u32;
        out.push(Moved {
            function: id.clone(),
            min_seeders: a.placement.min_seeders,
            live_elsewhere,
        });
    }
    Ok(out)
}
