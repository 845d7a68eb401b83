//! The network's errors. Each says what failed and, where it can, what to do.

use orb_core::FunctionId;

/// An error from the network layer.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    /// No NATS server answered at the given URLs.
    #[error("cannot reach the network's NATS servers at {urls}: {source}")]
    Connect {
        urls: String,
        source: async_nats::ConnectError,
    },
    /// The network's buckets/streams are missing: `orb network init` was not run.
    #[error(
        "the network is not initialised ({what} is missing): run `orb network init --network URLS` once"
    )]
    NotInitialised { what: String },
    /// A JetStream operation failed (server unavailable, timeout, quorum lost).
    #[error("{op}: {detail}")]
    JetStream { op: String, detail: String },
    /// The node key file exists but cannot be used.
    #[error("node key {path}: {detail}")]
    Key { path: String, detail: String },
    /// A signed record did not verify against the node id it names.
    #[error("signature of node {node} does not verify: {detail}")]
    BadSignature { node: String, detail: String },
    /// Fetched bytes do not hash to the id they were stored under.
    #[error(
        "bytes stored under {expected} hash to {actual}: refused (reported on orb.report.hash_mismatch)"
    )]
    HashMismatch {
        expected: FunctionId,
        actual: FunctionId,
    },
    /// No object with this id in the component store.
    #[error("function {0} is not in the network's component store: deploy it first")]
    FunctionNotFound(FunctionId),
    /// A time budget ran out while retrying.
    #[error("{op}: gave up after {secs:.1} s of retries: {last}")]
    Budget { op: String, secs: f64, last: String },
    /// Bad input (a label, an attribute, a record that does not parse).
    #[error("{0}")]
    Invalid(String),
}

impl NetError {
    pub(crate) fn js(op: impl Into<String>, err: impl std::fmt::Display) -> Self {
        NetError::JetStream {
            op: op.into(),
            detail: err.to_string(),
        }
    }
}
