//! A super node's duties. Each runs under its own lease, so any number of
//! super nodes may run and any may fail: the duty moves to whichever takes
//! the lease next (bound: [`crate::Timing::gone_bound_with_failover`]).

use crate::lease::{Lease, LeaseState};
use crate::membership::{self, NodeState, list_nodes_raw, transition, transition_at, verify_hello};
use crate::{NetError, Network, NodeId, Timing, names};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use tokio::task::JoinHandle;

/// A running super node (its duty loop). Dropping it is a crash as the
/// network sees it: its leases expire and another super node takes them.
pub struct SuperNode {
    id: NodeId,
    task: JoinHandle<()>,
    stop: Arc<AtomicBool>,
    done: Option<tokio::sync::oneshot::Receiver<()>>,
}

impl Drop for SuperNode {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl SuperNode {
    /// Starts the duty loop: every `timing.duty_every`, for each duty, take
    /// or renew its lease and, while it is held, run one pass of the duty.
    pub fn start(net: Network, id: NodeId, timing: Timing) -> Result<SuperNode, NetError> {
        timing.check()?;
        let stop = Arc::new(AtomicBool::new(false));
        let (done_tx, done_rx) = tokio::sync::oneshot::channel();
        let task = {
            let stop = stop.clone();
            let id = id.clone();
            tokio::spawn(async move {
                let mut admit =
                    Lease::new(net.clone(), names::DUTY_ADMIT, id.clone(), timing.lease_ttl);
                let mut reaper = Lease::new(
                    net.clone(),
                    names::DUTY_REAPER,
                    id.clone(),
                    timing.lease_ttl,
                );
                while !stop.load(Ordering::Relaxed) {
                    if admit.tick().await == LeaseState::Held
                        && let Err(e) = admit_pass(&net, &id, &admit).await
                    {
                        tracing::warn!(error = %e, "admission pass failed");
                    }
                    if reaper.tick().await == LeaseState::Held
                        && let Err(e) = reap_pass(&net, &id, &reaper, &timing).await
                    {
                        tracing::warn!(error = %e, "reaper pass failed");
                    }
                    tokio::time::sleep(timing.duty_every).await;
                }
                admit.release().await;
                reaper.release().await;
                let _ = done_tx.send(());
            })
        };
        Ok(SuperNode {
            id,
            task,
            stop,
            done: Some(done_rx),
        })
    }

    pub fn id(&self) -> &NodeId {
        &self.id
    }

    /// Stops cleanly: finishes the current pass and releases its leases so
    /// another super node takes them at once.
    pub async fn shutdown(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(done) = self.done.take() {
            let _ = done.await;
        }
    }
}

/// Moves every `joining` (or half-verified) node through `verifying` to
/// `active`, or to `gone` with the reason its hello was refused.
async fn admit_pass(net: &Network, me: &NodeId, lease: &Lease) -> Result<(), NetError> {
    for (id, rec, _) in list_nodes_raw(net).await? {
        if lease.state() != LeaseState::Held {
            return Ok(());
        }
        match rec.state {
            NodeState::Joining => {
                if !transition(
                    net,
                    &id,
                    &[NodeState::Joining],
                    NodeState::Verifying,
                    None,
                    me,
                )
                .await?
                {
                    continue;
                }
            }
            NodeState::Verifying => {}
            _ => continue,
        }
        let (to, reason) = match verify_hello(&id, &rec) {
            Ok(_) => (NodeState::Active, None),
            Err(why) => (NodeState::Gone, Some(format!("refused: {why}"))),
        };
        transition(net, &id, &[NodeState::Verifying], to, reason, me).await?;
    }
    Ok(())
}

/// Marks `gone` every node whose heartbeat key has expired.
async fn reap_pass(
    net: &Network,
    me: &NodeId,
    lease: &Lease,
    timing: &Timing,
) -> Result<(), NetError> {
    for (id, rec, rev) in list_nodes_raw(net).await? {
        if rec.state == NodeState::Gone {
            continue;
        }
        if lease.state() != LeaseState::Held {
            return Ok(());
        }
        // The record was read before the heartbeat: a node that rejoins in
        // between has a new revision and the compare-and-set below fails.
        if membership::is_alive(net, &id).await? {
            continue;
        }
        let reason = format!(
            "no heartbeat for {} s (heartbeat TTL)",
            timing.heartbeat_ttl.as_secs()
        );
        if transition_at(net, &id, rec, rev, NodeState::Gone, Some(reason), me).await? {
            tracing::info!(node = %id.short(), "marked gone: heartbeat expired");
        }
    }
    Ok(())
}
