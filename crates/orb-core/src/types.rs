use crate::FunctionId;
use serde::{Deserialize, Serialize};

/// One parameter of an export: its WIT name and a WIT-like type string.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ParamInfo {
    pub name: String,
    #[serde(rename = "type")]
    pub ty: String,
}

/// A callable export of a component.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExportInfo {
    /// `greet` for a world-level function, `pkg:name/iface#func` inside an interface.
    pub name: String,
    pub params: Vec<ParamInfo>,
    /// The result type, `None` for functions that return nothing.
    pub result: Option<String>,
}

/// One sample call run when a function is deployed to a network: an
/// export called with the plainest parameters its signature takes (zero,
/// empty, the first case), or `GET /` for an HTTP handler. Its fuel is the
/// function's "complexity" (seed 001); a sample may fail (the plain
/// parameters are not always meaningful), and says how.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SampleCall {
    pub export: String,
    /// Fuel the call took (also when it failed).
    pub fuel: u64,
    pub duration_us: u64,
    /// The error code when it failed (`function_trap`, …), or
    /// `no_sample` when no parameters can be made for it (resources).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// What Orb knows about a stored function.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FunctionInfo {
    pub hash: FunctionId,
    pub size: u64,
    pub exports: Vec<ExportInfo>,
    /// Upload time, RFC 3339.
    pub created_at: String,
}

/// Where an activation is in its life.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActivationStatus {
    #[default]
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
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Activation {
    /// Time-ordered unique id (UUIDv7).
    pub id: String,
    /// The account the call ran for.
    #[serde(default)]
    pub account: String,
    /// The lineage (revocation id of the first block) of the token the call
    /// ran for: a public token sees only the activations of its lineage.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lineage: Option<String>,
    /// The function that ran; `None` for a trigger firing or a sequence,
    /// whose work is in the activations they [`caused`](Self::caused).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub function: Option<FunctionId>,
    /// The export that ran (empty for a trigger firing or a sequence).
    #[serde(default)]
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
    /// The trigger whose firing this is, or whose rule ran this call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trigger: Option<String>,
    /// The rule that ran this call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    /// The kappa whose message this call handled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kappa: Option<String>,
    /// The activation that caused this one (a trigger firing, a sequence).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cause: Option<String>,
    /// The activations this one caused, in order (a firing's rule runs, a
    /// sequence's steps).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub caused: Vec<String>,
    /// The outgoing HTTP requests the call made or tried, in order
    /// (`wasi:http/outgoing-handler`); never holds an injected credential.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub outbound: Vec<crate::OutboundRequest>,
    /// The network node (its id) that ran the call, when the call was
    /// routed to another node of a network; absent on a single node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
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
