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
    /// The NATS servers refused the connection's credentials (or want some).
    #[error("the NATS servers at {urls} refused to let {who} in: {hint}")]
    Unauthorized {
        urls: String,
        who: String,
        hint: String,
    },
    /// The NATS servers refused a publish or subscription to this role.
    #[error("the NATS servers refused {op} to `{subject}` for the {role} credentials: {hint}")]
    Refused {
        role: String,
        op: String,
        subject: String,
        hint: String,
    },
    /// A credentials file cannot be used.
    #[error("network credentials {path}: {detail}")]
    Credentials { path: String, detail: String },
}

impl NetError {
    /// The error's stable code (`orb` prints it as `error[code]`).
    pub fn code(&self) -> &'static str {
        match self {
            NetError::Connect { .. } => "network_unreachable",
            NetError::NotInitialised { .. } => "network_not_initialised",
            NetError::JetStream { .. } => "network_unavailable",
            NetError::Key { .. } => "node_key",
            NetError::BadSignature { .. } => "bad_signature",
            NetError::HashMismatch { .. } => "hash_mismatch",
            NetError::FunctionNotFound(_) => "function_not_found",
            NetError::Budget { .. } => "network_unavailable",
            NetError::Invalid(_) => "invalid_request",
            NetError::Unauthorized { .. } => "network_unauthorized",
            NetError::Refused { .. } => "network_forbidden",
            NetError::Credentials { .. } => "network_credentials",
        }
    }

    pub(crate) fn js(op: impl Into<String>, err: impl std::fmt::Display) -> Self {
        NetError::JetStream {
            op: op.into(),
            detail: err.to_string(),
        }
    }
}
