//! Domain services.

pub(crate) mod accounts;
pub(crate) mod activations;
pub(crate) mod aliases;
pub(crate) mod calls;
pub(crate) mod functions;
pub(crate) mod http;
pub(crate) mod invoke;
pub(crate) mod kappa;
pub(crate) mod namespaces;
pub(crate) mod outbound;
pub(crate) mod placement;
pub(crate) mod queue;
pub(crate) mod schedules;
pub(crate) mod sequences;
pub(crate) mod triggers;
