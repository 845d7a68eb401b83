//! Orb's security model: Biscuit tokens, permissions, verification cache,
//! revocation set and rate limits.
//!
//! Owns: the token format (authority facts `account`, `kind`, `grant` — the
//! permissions as JSON — and an expiry check), minting private and public
//! tokens with the node's root key, offline attenuation (appended blocks can
//! only add checks, so they can only narrow), verification with Datalog run
//! limits, the bounded cache of verified tokens, revocation by id, and rate
//! limiting keyed by lineage (the revocation id of the first block).
//!
//! Must not know: HTTP, storage (callers persist accounts and revocations
//! and feed revocations back with [`Authority::revoke`]), wasmtime.

mod grant;
mod limit;
mod token;

pub use limit::AddressLimiter;

pub use grant::{Access, Grant, Narrowing, Rate, ScheduleLimits};
pub use token::{
    AuthError, Authority, Claims, Inspection, Kind, MAX_BLOCKS, MAX_TOKEN_BYTES, Minted, Request,
    attenuate, inspect,
};
