//! Orb's core vocabulary: plain types shared by every other crate.
//!
//! Owns: function ids (`sha256:<hex>`), the error taxonomy (stable codes, HTTP
//! status, who is to blame), activation records, export signatures, limits.
//!
//! Must not know: wasmtime, redb, HTTP frameworks, the clock or the file
//! system. Nothing in here does I/O; everything is `serde`-serialisable data.

mod error;
mod id;
mod types;

pub use error::{Blame, ErrorCode, OrbError};
pub use id::{FunctionId, InvalidFunctionId};
pub use types::{
    Activation, ActivationStatus, ExportInfo, FunctionInfo, Limits, ParamInfo, truncate_utf8,
};
