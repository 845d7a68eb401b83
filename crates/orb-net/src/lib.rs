//! The Orb network on NATS JetStream (issue 19, part 1: foundations).
//!
//! Owns: a node's identity (an ed25519 key; the node id is its public key),
//! `network init` (the buckets, streams and object store below), membership
//! (a signed hello, heartbeats, life-cycle states), leases for the duties
//! that must run once across several super nodes (admission, reaping), and
//! the deploy/announce primitives (component bytes in an object store under
//! their `sha256:` id, announcements on a stream, a seeder-side fetch that
//! re-hashes before accepting).
//!
//! Nothing here is home-made consensus: every shared fact lives in a
//! Raft-replicated JetStream stream, KV bucket or object store, and every
//! contested write is a compare-and-set on a KV revision. Single-node Orb
//! never links this crate; see ARCHITECTURE.md, "Network".
//!
//! Depends on: orb-core (function ids), async-nats, ring.

pub mod access;
pub mod control;
pub mod deploy;
pub mod directory;
pub mod error;
pub mod identity;
pub mod inventory;
pub mod lease;
pub mod membership;
pub mod names;
pub mod network;
pub mod rpc;
pub mod scale;
pub mod supernode;
#[doc(hidden)]
pub mod testing;

pub use deploy::{Announcement, Placement};
pub use directory::Directory;
pub use error::NetError;
pub use identity::{NodeId, NodeKey};
pub use lease::{Lease, LeaseState};
pub use membership::{
    Capacity, FunctionLoad, Hello, Load, Member, NodeRecord, NodeState, NodeView,
};
pub use network::{Network, Timing};
pub use supernode::SuperNode;
