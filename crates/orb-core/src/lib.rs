//! Orb's core vocabulary: plain types shared by every other crate.
//!
//! Owns: function ids (`sha256:<hex>`), the error taxonomy (stable codes, HTTP
//! status, who is to blame), activation records, export signatures, limits, outbound host patterns.
//!
//! Must not know: wasmtime, redb, HTTP frameworks, the clock or the file
//! system. Nothing in here does I/O; everything is `serde`-serialisable data.

pub mod attribute;
mod error;
mod id;
pub mod outbound;
mod types;

pub use error::{Blame, ErrorCode, OrbError};
pub use id::{FunctionId, InvalidFunctionId};
pub use outbound::{HostPattern, InvalidHostPattern, OutboundRequest};
pub use types::{
    Account, Activation, ActivationStatus, ExportInfo, FunctionInfo, Limits, ParamInfo, SampleCall,
    truncate_utf8,
};

/// Whether `name` is a valid namespace name: 1–64 characters of
/// `[a-z0-9._-]`, starting with a letter or digit.
pub fn valid_namespace_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-'))
}

/// Largest key, bytes.
pub const MAX_KEY_BYTES: usize = 1024;
/// The default largest namespace value, bytes (a node's `max_value_bytes`).
pub const MAX_VALUE_BYTES: usize = 1 << 20;

/// Whether `key` is a valid key: 1–1024 bytes of UTF-8 without NUL.
pub fn valid_key(key: &str) -> bool {
    !key.is_empty() && key.len() <= MAX_KEY_BYTES && !key.contains('\0')
}
