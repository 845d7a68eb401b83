use serde::{Deserialize, Serialize};
use std::fmt;

/// Who caused an error. Decides the HTTP status class.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Blame {
    /// The request was wrong: 4xx.
    Caller,
    /// The function misbehaved (trap, timeout, limits): 422.
    Function,
    /// Orb itself failed: 5xx.
    Platform,
}

macro_rules! codes {
    ($( $(#[$doc:meta])* $variant:ident = ($code:literal, $status:literal, $blame:ident), )*) => {
        /// Every error a client can see, with its stable wire code.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum ErrorCode { $( $(#[$doc])* $variant, )* }

        impl ErrorCode {
            /// All codes, for documentation and tests.
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$variant,)*];

            /// The stable snake_case code sent on the wire.
            pub fn as_str(self) -> &'static str {
                match self { $(ErrorCode::$variant => $code,)* }
            }
            /// The HTTP status for this code.
            pub fn status(self) -> u16 {
                match self { $(ErrorCode::$variant => $status,)* }
            }
            /// Who is to blame.
            pub fn blame(self) -> Blame {
                match self { $(ErrorCode::$variant => Blame::$blame,)* }
            }
            /// Parses a wire code.
            pub fn parse(s: &str) -> Option<ErrorCode> {
                match s { $($code => Some(ErrorCode::$variant),)* _ => None }
            }
        }
    };
}

codes! {
    /// The request body or query is malformed.
    InvalidRequest = ("invalid_request", 400, Caller),
    /// A parameter is missing, unknown or of the wrong type.
    InvalidParams = ("invalid_params", 400, Caller),
    /// The uploaded bytes are not a valid WebAssembly component.
    InvalidComponent = ("invalid_component", 400, Caller),
    /// The component imports interfaces this node does not provide.
    UnsupportedImport = ("unsupported_import", 400, Caller),
    /// A string is not a function id.
    InvalidFunctionId = ("invalid_function_id", 400, Caller),
    /// No function with this hash (upload it, then retry).
    FunctionNotFound = ("function_not_found", 404, Caller),
    /// The function has no export with this name.
    ExportNotFound = ("export_not_found", 404, Caller),
    /// No activation with this id.
    ActivationNotFound = ("activation_not_found", 404, Caller),
    /// No such route.
    NotFound = ("not_found", 404, Caller),
    /// The HTTP method is not allowed on this route.
    MethodNotAllowed = ("method_not_allowed", 405, Caller),
    /// The body is over the size limit.
    TooLarge = ("too_large", 413, Caller),
    /// No token was sent.
    TokenMissing = ("token_missing", 401, Caller),
    /// The token is not a valid token of this network (garbage, tampered, wrong key, too big).
    TokenInvalid = ("token_invalid", 401, Caller),
    /// The token has expired.
    TokenExpired = ("token_expired", 401, Caller),
    /// The token (or one it derives from) was revoked.
    TokenRevoked = ("token_revoked", 401, Caller),
    /// The token does not allow this.
    PermissionDenied = ("permission_denied", 403, Caller),
    /// A public token named a namespace whose whitelist lacks this function.
    CodeNotWhitelisted = ("code_not_whitelisted", 403, Caller),
    /// No such account.
    AccountNotFound = ("account_not_found", 404, Caller),
    /// The account's namespaces would exceed its key or byte quota.
    QuotaExceeded = ("quota_exceeded", 403, Caller),
    /// Concurrent calls kept changing what this call read; retried and gave up.
    Conflict = ("conflict", 409, Caller),
    /// Too many calls for this token's rate limit.
    RateLimited = ("rate_limited", 429, Caller),
    /// No such key in the namespace.
    KeyNotFound = ("key_not_found", 404, Caller),
    /// A key is empty, over 1 KiB or contains NUL.
    InvalidKey = ("invalid_key", 400, Caller),
    /// A value is not JSON.
    InvalidValue = ("invalid_value", 400, Caller),
    /// A namespace name breaks the naming rules.
    InvalidName = ("invalid_name", 400, Caller),
    /// No alias with this name in the account.
    AliasNotFound = ("alias_not_found", 404, Caller),
    /// An alias has no earlier target to roll back to.
    NothingToRollBack = ("nothing_to_roll_back", 409, Caller),
    /// No trigger with this name in the account.
    TriggerNotFound = ("trigger_not_found", 404, Caller),
    /// No rule with this name in the account.
    RuleNotFound = ("rule_not_found", 404, Caller),
    /// No kappa with this reference in the account.
    KappaNotFound = ("kappa_not_found", 404, Caller),
    /// No schedule with this id in the account.
    ScheduleNotFound = ("schedule_not_found", 404, Caller),
    /// A schedule's timing (`every`, `cron`, `timezone`, `start_at`, `end_at`) is invalid.
    InvalidSchedule = ("invalid_schedule", 400, Caller),
    /// The schedule repeats more often than the token's minimum interval.
    ScheduleTooFrequent = ("schedule_too_frequent", 403, Caller),
    /// The token's maximum number of schedules is reached.
    ScheduleLimitReached = ("schedule_limit_reached", 403, Caller),
    /// `/http/…` named a function that does not export `wasi:http/incoming-handler`.
    NotAnHttpFunction = ("not_an_http_function", 400, Caller),
    /// Another account already serves a public HTTP route under this alias name.
    PublicRouteTaken = ("public_route_taken", 409, Caller),
    /// The account already has its maximum of asynchronous calls queued.
    QueueFull = ("queue_full", 429, Caller),
    /// No secret with this name in the account.
    SecretNotFound = ("secret_not_found", 404, Caller),
    /// This node is not part of a network (start it with `orb serve --network URLS`).
    NotNetworked = ("not_networked", 404, Caller),
    /// Minting tokens and creating accounts need the network's root key,
    /// which only super nodes hold: send the request to a super node.
    SuperNodeRequired = ("super_node_required", 421, Caller),
    /// The request uses something a networked node does not offer yet
    /// (namespaces across nodes come with the network's part 2).
    NotInNetwork = ("not_in_network", 409, Caller),
    /// The function trapped (panic, unreachable, bad memory access…).
    FunctionTrap = ("function_trap", 422, Function),
    /// The function ran past its wall-clock limit.
    FunctionTimeout = ("function_timeout", 422, Function),
    /// The function tried to grow its memory past the limit.
    MemoryLimit = ("memory_limit", 422, Function),
    /// The function used up its fuel.
    FuelExhausted = ("fuel_exhausted", 422, Function),
    /// The function returned a value Orb cannot represent as JSON.
    FunctionBadResult = ("function_bad_result", 422, Function),
    /// An HTTP function's response body passed the node's cap (the stream was cut).
    ResponseTooLarge = ("response_too_large", 422, Function),
    /// The node is at capacity; retry later.
    Overloaded = ("overloaded", 503, Platform),
    /// The node is shutting down.
    ShuttingDown = ("shutting_down", 503, Platform),
    /// The network (its NATS servers) cannot be reached or did not answer in time.
    NetworkUnavailable = ("network_unavailable", 503, Platform),
    /// The disk holding the node's data is (nearly) full: writes are refused until space is freed; reads keep working.
    StorageFull = ("storage_full", 507, Platform),
    /// Orb itself failed.
    Internal = ("internal", 500, Platform),
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An error with a stable code, a message that says what to do, and details.
///
/// This is the shape of every error body: `{"error": OrbError}`.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrbError {
    /// Stable snake_case code.
    pub code: String,
    /// Human-readable message.
    pub message: String,
    /// Structured details (parameter name, expected type, exports…).
    #[serde(default, skip_serializing_if = "serde_json::Value::is_null")]
    pub details: serde_json::Value,
}

impl OrbError {
    /// A new error with no details.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code: code.as_str().to_string(),
            message: message.into(),
            details: serde_json::Value::Null,
        }
    }

    /// Adds structured details.
    pub fn with_details(mut self, details: serde_json::Value) -> Self {
        self.details = details;
        self
    }

    /// The typed code, when it is one this version knows.
    pub fn error_code(&self) -> Option<ErrorCode> {
        ErrorCode::parse(&self.code)
    }

    /// The HTTP status for this error (500 for unknown codes).
    pub fn status(&self) -> u16 {
        self.error_code().map_or(500, ErrorCode::status)
    }
}

impl fmt::Display for OrbError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for OrbError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blame_matches_status_class() {
        for code in ErrorCode::ALL {
            let s = code.status();
            match code.blame() {
                Blame::Caller => assert!((400..500).contains(&s) && s != 422, "{code}"),
                Blame::Function => assert_eq!(s, 422, "{code}"),
                Blame::Platform => assert!(s >= 500, "{code}"),
            }
            assert_eq!(ErrorCode::parse(code.as_str()), Some(*code));
        }
    }
}
