//! Domain services: one module per domain, taking a verified caller
//! ([`crate::caller::Claims`], or the account) and plain types, returning
//! plain types and [`crate::ApiError`]. They talk to the store and the
//! runtime through [`crate::Node`].
//!
//! The layering rule (checked by `crate::layers`' tests):
//! - handlers (`crate::handlers`, axum) → services → store / runtime;
//!   `caller`, `clock`, `error`, `config`, `metrics` sit at the bottom and
//!   import no layer above them.
//! - Services never import the handlers or axum, and take no request
//!   headers: the only exception is `http.rs`, whose domain is serving HTTP
//!   (`/http/…` requests and responses are what it runs).
//! - Services import each other without cycles: `functions` → `aliases` →
//!   `calls` → `queue`/`sequences` → `invoke`, and the domains on top
//!   (`triggers`, `schedules`, `kappa`, `http`, `activations`).
//! - A service that can only name what it authorizes after a lookup (a
//!   call's alias, a kappa's function, a sequence's steps, an `/http/` route,
//!   the call of a schedule or a rule) takes the presented
//!   [`crate::caller::Token`] and checks it through `crate::caller`.
//! - Where a call runs is the [`placement::Executor`] seam. The network is
//!   glue to `orb-net` behind the `network` cargo feature, in two modules:
//!   `net.rs` below the domains (the node's handle on the network, and what
//!   `accounts`, `functions` and `calls` write to it) and `network.rs` above
//!   them (joining, seeding, routing: it runs calls and stores functions
//!   through the domains). Without the feature nothing links NATS.

pub(crate) mod accounts;
pub(crate) mod activations;
pub(crate) mod aliases;
pub(crate) mod calls;
pub(crate) mod functions;
pub(crate) mod http;
pub(crate) mod invoke;
pub(crate) mod kappa;
pub(crate) mod namespaces;
pub(crate) mod net;
pub(crate) mod network;
pub(crate) mod outbound;
pub(crate) mod placement;
pub(crate) mod queue;
pub(crate) mod schedules;
pub(crate) mod sequences;
pub(crate) mod stats;
pub(crate) mod triggers;
