//! Orb's sandbox: everything that touches wasmtime lives here.
//!
//! Owns: the engine configuration (pooling allocator, epoch interruption,
//! fuel), validation and compilation of components, the on-disk cache of
//! compiled artifacts (keyed by component hash + engine configuration), the
//! interfaces guests may import (WASI 0.2 without files, env, sockets or host
//! stdio; `wasi:config`; `wasi:logging`; `wasi:http` for HTTP functions, and
//! outbound requests under a per-call policy with SSRF checks and secret
//! headers injected by the host ([`OutboundPolicy`])), per-call limits, and the JSON ↔
//! component-value mapping ([`values`]).
//!
//! Must not know: HTTP, the storage backend, accounts or tokens. Callers hand
//! it bytes and JSON and get back JSON, logs, fuel and typed errors
//! ([`orb_core::OrbError`] with codes that say who is to blame).

mod config;
mod host;
mod http;
mod kv;
mod outbound;
mod runtime;
pub mod values;

pub use host::{LogSink, SUPPORTED_PACKAGES};
pub use http::{
    HTTP_EXPORT, HttpBodyError, HttpBuffered, HttpFinish, HttpOutcome, HttpRequestOptions,
    HttpResponseBody,
};
pub use kv::{BucketAccess, KvAccess, KvBackend, KvTransaction, NsTransaction};
pub use outbound::{
    InjectedHeader, OutboundConfig, OutboundPolicy, RequestGate, address_allowed, forbidden_reason,
};
pub use runtime::{
    ArtifactKey, CacheSource, CallOutcome, CallRequest, CheckedCall, LoadedFunction, Metering,
    Runtime, RuntimeConfig,
};
