use crate::FunctionId;
use serde::{Deserialize, Serialize};

/// One parameter of an export: its WIT name and a WIT-like type string.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ParamInfo {
    pub name: String,
    #[serde(rename = "type")]
    pub ty: String,
}

/// A callable export of a component.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExportInfo {
    /// `greet` for a world-level function, `pkg:name/iface#func` inside an interface.
    pub name: String,
    pub params: Vec<ParamInfo>,
    /// The result type, `None` for functions that return nothing.
    pub result: Option<String>,
}

/// What Orb knows about a stored function.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FunctionInfo {
    pub hash: FunctionId,
    pub size: u64,
    pub exports: Vec<ExportInfo>,
    /// Upload time, RFC 3339.
    pub created_at: String,
}

/// Where an activation is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActivationStatus {
    Queued,
    Running,
    Succeeded,
    Failed,
}

/// An account: owns functions, namespaces, activations and tokens.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Account {
    pub id: String,
    #[serde(default)]
    pub name: String,
    /// May create accounts.
    #[serde(default)]
    pub admin: bool,
    /// SHA-256 (hex) of the private token; the token itself is never stored.
    pub token_hash: String,
    /// Revocation id of the private token's first block.
    pub token_lineage: String,
    pub created_at: String,
}

/// The record of one call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Activation {
    /// Time-ordered unique id (UUIDv7).
    pub id: String,
    /// The account the call ran for.
    #[serde(default)]
    pub account: String,
    pub function: FunctionId,
    pub export: String,
    pub status: ActivationStatus,
    /// Start time, RFC 3339 with milliseconds.
    pub start: String,
    pub duration_us: u64,
    /// Fuel consumed (WebAssembly instructions, roughly).
    pub fuel: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<crate::OrbError>,
    /// stdout, stderr and `wasi:logging` lines, capped.
    pub logs: String,
    /// Whether the log was cut at the cap.
    #[serde(default)]
    pub logs_truncated: bool,
    /// The alias the caller named, when it named one (`function` is the hash
    /// it resolved to at the time).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alias: Option<String>,
    /// The schedule whose tick this was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<String>,
    /// Tries of an asynchronous call so far (retries with backoff).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub attempts: u32,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// Per-call resource limits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Limits {
    /// Linear memory per instance, bytes.
    pub memory_bytes: u64,
    /// Wall-clock limit, milliseconds.
    pub timeout_ms: u64,
    /// Fuel limit; `None` means unlimited (fuel is still counted).
    pub fuel: Option<u64>,
    /// Log cap per activation, bytes.
    pub log_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            memory_bytes: 64 << 20,
            timeout_ms: 10_000,
            fuel: None,
            log_bytes: 64 << 10,
        }
    }
}

/// Cuts `s` to at most `max` bytes on a char boundary.
pub fn truncate_utf8(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}
