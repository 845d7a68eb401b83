//! Leases: how several super nodes share a duty that must run once
//! (admission, reaping) with no designated leader.
//!
//! A lease is a key in the `orb_leases` bucket (key = duty name) written
//! with a per-key TTL. Taking it is a compare-and-set on "no live value"
//! (the key is absent or only a delete marker remains); renewing it is a
//! compare-and-set on the holder's last revision, which also resets the
//! TTL. A holder that stops renewing loses the key when the server expires
//! it, and the next super node that tries takes it. The holder treats the
//! lease as its own only until `last successful renewal (send time) + TTL -
//! margin`, so it stops acting before anyone else can start. Duties write
//! with compare-and-set as well, so even two holders (clock drift beyond
//! the margin) could not undo each other's work, only repeat it.

use crate::names;
use crate::network::now_ms;
use crate::{NetError, Network, NodeId};
use async_nats::jetstream::context::PublishErrorKind;
use async_nats::jetstream::kv::Operation;
use serde::{Deserialize, Serialize};
use std::time::{Duration, Instant};

/// What a lease key holds.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct LeaseValue {
    pub holder: NodeId,
    pub acquired_ms: u64,
}

/// Whether this process holds the lease.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeaseState {
    Held,
    NotHeld,
}

/// One duty's lease as seen by one would-be holder.
pub struct Lease {
    net: Network,
    duty: String,
    holder: NodeId,
    ttl: Duration,
    revision: Option<u64>,
    valid_until: Option<Instant>,
    acquired_ms: u64,
}

/// Time kept in hand for clock-rate differences between holder and server.
const MARGIN: Duration = Duration::from_millis(250);

impl Lease {
    pub fn new(net: Network, duty: &str, holder: NodeId, ttl: Duration) -> Self {
        Lease {
            net,
            duty: duty.to_string(),
            holder,
            ttl,
            revision: None,
            valid_until: None,
            acquired_ms: 0,
        }
    }

    /// Whether this process may act on the duty right now.
    pub fn state(&self) -> LeaseState {
        match (self.revision, self.valid_until) {
            (Some(_), Some(until)) if Instant::now() < until => LeaseState::Held,
            _ => LeaseState::NotHeld,
        }
    }

    /// Takes the lease if it is free, renews it if held. Call it at least
    /// every third of the TTL.
    pub async fn tick(&mut self) -> LeaseState {
        let sent = Instant::now();
        let expect = match self.revision {
            Some(rev) if self.state() == LeaseState::Held => rev,
            _ => {
                self.revision = None;
                match self.net.leases.entry(self.duty.as_str()).await {
                    Ok(None) => 0,
                    Ok(Some(e)) if matches!(e.operation, Operation::Delete | Operation::Purge) => {
                        e.revision
                    }
                    Ok(Some(_)) => return LeaseState::NotHeld,
                    Err(e) => {
                        tracing::debug!(duty = %self.duty, error = %e, "lease read failed");
                        return LeaseState::NotHeld;
                    }
                }
            }
        };
        if expect == 0 || self.revision.is_none() {
            self.acquired_ms = now_ms();
        }
        let value = serde_json::to_vec(&LeaseValue {
            holder: self.holder.clone(),
            acquired_ms: self.acquired_ms,
        })
        .expect("lease value serialises");
        match self
            .net
            .kv_put_ttl(
                &self.net.leases,
                &self.duty,
                value.into(),
                self.ttl,
                Some(expect),
            )
            .await
        {
            Ok(rev) => {
                if self.revision.is_none() {
                    tracing::info!(duty = %self.duty, holder = %self.holder.short(), "lease taken");
                }
                self.revision = Some(rev);
                self.valid_until = Some(sent + self.ttl.saturating_sub(MARGIN));
            }
            Err(e) if e.kind() == PublishErrorKind::WrongLastSequence => {
                if self.revision.is_some() {
                    tracing::warn!(duty = %self.duty, "lease lost to another super node");
                }
                self.revision = None;
                self.valid_until = None;
            }
            Err(e) => {
                // Keep the revision: if the server comes back before
                // valid_until passes, the next renewal still matches.
                tracing::debug!(duty = %self.duty, error = %e, "lease write failed");
            }
        }
        self.state()
    }

    /// Gives the lease up at once (a clean shutdown), so another super
    /// node need not wait for the TTL.
    pub async fn release(&mut self) {
        if let Some(rev) = self.revision.take() {
            let _ = self
                .net
                .leases
                .delete_expect_revision(self.duty.as_str(), Some(rev))
                .await;
        }
        self.valid_until = None;
    }
}

/// Who holds `duty` now, as the bucket says (None: free or expired).
pub async fn holder(net: &Network, duty: &str) -> Result<Option<LeaseValue>, NetError> {
    match net
        .leases
        .get(duty)
        .await
        .map_err(|e| NetError::js(format!("read lease {duty}"), e))?
    {
        Some(bytes) => Ok(serde_json::from_slice(&bytes).ok()),
        None => Ok(None),
    }
}

/// Every duty a super node may hold.
pub const DUTIES: &[&str] = &[names::DUTY_ADMIT, names::DUTY_REAPER];
