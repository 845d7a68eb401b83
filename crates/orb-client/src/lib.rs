//! The Rust SDK for Orb: call functions like local functions, on a node or
//! in this process.
//!
//! Owns: the wire shapes seen from the caller's side, the hash-first protocol
//! (send the hash, upload only on `function_not_found`, retry; a cache of the
//! hashes known to be on the server), typed errors carrying the server's
//! codes, and where a call runs ([`Execution`]).
//!
//! Must not know: server internals (routes beyond the public API, the store's
//! tables). With the `local` feature (on by default) it links `orb-runtime`
//! and `orb-store` — the same runtime and embedded store a node uses — so
//! that a local run behaves exactly like a remote one (`local` module);
//! without it the crate speaks HTTP only and pulls in no wasmtime.
//!
//! # Calls
//!
//! A function is named by a [`FunctionRef`]: its hash, its bytes, a path to
//! its `.wasm`, or an alias. Parameters are a JSON object keyed by the
//! export's parameter names, or any `Serialize` type that becomes one;
//! results deserialize into any `DeserializeOwned` type.
//!
//! ```no_run
//! # async fn demo() -> Result<(), orb_client::ClientError> {
//! use orb_client::Client;
//! use serde::Serialize;
//!
//! #[derive(Serialize)]
//! struct Add { a: i32, b: i32 }
//!
//! let client = Client::connect("http://127.0.0.1:7070", "<token>")?;
//! let wasm = std::path::Path::new("build/guests/calc.wasm");
//! // Hash first; the bytes are uploaded only if the node lacks them.
//! let sum: i32 = client.invoke_typed(wasm, "add", &Add { a: 2, b: 40 }).await?;
//! assert_eq!(sum, 42);
//!
//! // With a namespace, `set`, globals and `write_to`:
//! let answer: String = client
//!     .call("thermostat", "decide")          // an alias
//!     .param("setpoint", &20.0)
//!     .namespace("home-7f3a9c")
//!     .set("readings/hall", &18.5)
//!     .global("unit", "celsius")
//!     .write_to("furnace")
//!     .send()
//!     .await?;
//!
//! // Asynchronous: queued on the node; wait for the activation.
//! let id = client.call(wasm, "add").params(&Add { a: 1, b: 2 }).spawn().await?;
//! let activation = client.wait_activation(&id, std::time::Duration::from_secs(5)).await?;
//! # Ok(()) }
//! ```
//!
//! # Where a call runs: [`Execution`]
//!
//! - **Remote** (default): on the node, over HTTP.
//! - **Local**: in this process, with `orb_runtime::Runtime` (compiled
//!   artifacts cached in `<dir>/compiled`) and a local namespace store
//!   (`orb_store::RedbStore` in `<dir>/store`): the same parameter checks,
//!   limits, `wasi:keyvalue` transactions (`set` first, serializable commit,
//!   re-run on conflict), `write_to` and error codes as a node. No token,
//!   accounts or whitelists: the folder's owner may do anything locally.
//!   Aliases resolve on a server only; a hash runs locally once the local
//!   store has its bytes (from an earlier call with bytes or a path, or
//!   `LocalRunner::add_function`).
//! - **Auto**: on the node; locally **only when the node cannot take the
//!   call**: no connection (refused, timed out — see
//!   [`Client::with_timeout`] —, name not resolved), or 503
//!   `shutting_down`/`overloaded`. A request whose connection broke before
//!   any answer is retried once on a fresh connection first. Any other
//!   answer — success, a function error, `invalid_params`,
//!   `code_not_whitelisted`, a bad token — is returned as is, never re-run
//!   locally. Every call tries the node first; nothing is remembered between
//!   calls. [`Invocation::local`] says where a call ran. Without a local
//!   runner, or for an alias, the node's error is returned.
//!
//! **State does not follow the call.** A local run reads and writes the
//! local namespace of the same name; those writes stay in the local store,
//! and nothing is synchronised in either direction (the node never sees
//! them, the local store never sees the node's). To move state, export and
//! import it (`LocalRunner::ns_export`, [`Client::ns_import`]).
//! Asynchronous calls and schedules always need the node.
//!
#![cfg_attr(feature = "local", doc = "```no_run")]
#![cfg_attr(not(feature = "local"), doc = "```ignore")]
//! # async fn demo() -> Result<(), orb_client::ClientError> {
//! use orb_client::{Client, Execution};
//! let device = Client::connect("http://127.0.0.1:7070", "<public token>")?
//!     .with_local(".orb-device")?          // compile cache + local namespaces
//!     .with_execution(Execution::Auto);
//! let firmware = std::path::Path::new("thermostat.wasm");
//! let inv = device
//!     .call(firmware, "decide")
//!     .param("setpoint", &20.0)
//!     .namespace("home-7f3a9c")
//!     .invoke()
//!     .await?;
//! println!("furnace {} ({})", inv.result, if inv.local { "offline" } else { "online" });
//! # Ok(()) }
//! ```
//!
//! # Errors
//!
//! [`ClientError::code`] is the server's stable code (`function_not_found`,
//! `invalid_params`, `code_not_whitelisted`, `function_trap`, …), also for
//! local runs, with [`ClientError::status`] the HTTP status a node answers
//! with; [`ClientError::Unreachable`] is a missing connection,
//! [`ClientError::Serde`] a result that does not fit the requested type,
//! [`ClientError::LocalUnavailable`] a local run that cannot happen.
//!
//! A local run needs no server at all:
//!
#![cfg_attr(feature = "local", doc = "```")]
#![cfg_attr(not(feature = "local"), doc = "```ignore")]
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let dir = std::env::temp_dir().join(format!("orb-doctest-{}", std::process::id()));
//! let client = orb_client::Client::local_only(&dir).unwrap();
//! // Not a component: the local runtime refuses it with the node's code.
//! let err = client.call(&b"not wasm"[..], "f").invoke().await.unwrap_err();
//! assert_eq!(err.code(), Some(orb_client::ErrorCode::InvalidComponent));
//! assert_eq!(err.status(), Some(400));
//! # drop(client);
//! # let _ = std::fs::remove_dir_all(&dir);
//! # }
//! ```

#[cfg(feature = "local")]
pub mod local;
mod sdk;

use bytes::Bytes;
pub use orb_core::{ErrorCode, FunctionId, FunctionInfo, OrbError};
pub use sdk::{Call, Execution, FunctionRef};
use sdk::{Source, Target, from_json, read_error, to_json};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value as Json, json};
use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

/// What went wrong talking to Orb.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server answered with an error body.
    #[error("{error} (HTTP {status})")]
    Api { status: u16, error: OrbError },
    /// The server answered garbage, or the request could not be built.
    #[error("cannot reach Orb at {url}: {message}")]
    Transport { url: String, message: String },
    /// No connection: refused, timed out, name not resolved.
    /// [`Execution::Auto`] runs the call locally on this.
    #[error("cannot reach Orb at {url}: {message}")]
    Unreachable { url: String, message: String },
    /// Parameters did not serialize, or a result did not deserialize into
    /// the type asked for (`send::<R>()`, [`Client::invoke_typed`]).
    #[error("{message}")]
    Serde { message: String },
    /// [`Execution::Local`] was asked for but cannot run this call: no local
    /// runner ([`Client::with_local`]), an alias (aliases resolve on a server
    /// only), or a hash the local store has no bytes for.
    #[error("cannot run locally: {message}")]
    LocalUnavailable { message: String },
}

impl ClientError {
    /// The server's error code (or the local runtime's, for a local call),
    /// when there is one.
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            ClientError::Api { error, .. } => error.error_code(),
            _ => None,
        }
    }

    /// The HTTP status of an API error (for a local call: the status a node
    /// would have answered with).
    pub fn status(&self) -> Option<u16> {
        match self {
            ClientError::Api { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// The error body, when there is one (`code`, `message`, `details`).
    pub fn orb_error(&self) -> Option<&OrbError> {
        match self {
            ClientError::Api { error, .. } => Some(error),
            _ => None,
        }
    }

    /// Whether the node could not take the call at all: no connection
    /// (refused, timed out, unresolvable) or 503 `shutting_down` /
    /// `overloaded`. This is when [`Execution::Auto`] runs the call locally.
    pub fn is_unreachable(&self) -> bool {
        match self {
            ClientError::Unreachable { .. } => true,
            ClientError::Api { .. } => matches!(
                self.code(),
                Some(ErrorCode::ShuttingDown | ErrorCode::Overloaded)
            ),
            _ => false,
        }
    }
}

/// A successful call, as the server reports it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Invocation {
    pub activation: String,
    pub function: FunctionId,
    pub result: Json,
    pub duration_us: u64,
    pub fuel: u64,
    /// `true` when the call ran in this process ([`Execution::Local`], or
    /// [`Execution::Auto`] with the node unreachable).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub local: bool,
}

/// Optional parts of a call.
#[derive(Debug, Clone, Default)]
pub struct CallOptions {
    /// Per-call values the function reads through `wasi:config`.
    pub globals: Map<String, Json>,
    /// The namespace the function may use (`wasi:keyvalue`).
    pub namespace: Option<String>,
    /// Pairs written to the namespace before the function runs.
    pub set: Option<Map<String, Json>>,
    /// Store the result under this key of the namespace.
    pub write_to: Option<String>,
}

/// Client for one Orb server (and, with the `local` feature, an in-process
/// runner for [`Execution::Local`] and [`Execution::Auto`]). Cheap to clone:
/// clones share the HTTP connection pool, the cache of known hashes and the
/// local runner.
#[derive(Clone)]
pub struct Client {
    base: String,
    http: reqwest::Client,
    token: Option<String>,
    timeout: Option<std::time::Duration>,
    execution: Execution,
    shared: Arc<Shared>,
    #[cfg(feature = "local")]
    local: Option<Arc<local::LocalRunner>>,
}

/// A file's modification time and length when it was hashed, and its hash.
type PathStamp = (Option<SystemTime>, u64, FunctionId);

/// State shared by a client's clones.
#[derive(Default)]
struct Shared {
    /// Hashes known to be on the server (a call or an upload succeeded).
    known: Mutex<HashSet<FunctionId>>,
    /// path → (modified, length, hash): a known file is not read again.
    paths: Mutex<HashMap<PathBuf, PathStamp>>,
    uploads: AtomicU64,
}

/// Adds the client's bearer token to a request.
trait Authed {
    fn authed(self, client: &Client) -> Self;
}

impl Authed for reqwest::RequestBuilder {
    fn authed(self, client: &Client) -> Self {
        match &client.token {
            Some(t) => self.bearer_auth(t),
            None => self,
        }
    }
}

impl Client {
    /// `base` is like `http://127.0.0.1:7070` or `https://orb.example:7070`
    /// (HTTPS trusts the system's CA certificates).
    pub fn new(base: &str) -> Result<Self, ClientError> {
        Self::build(base, reqwest::Client::builder())
    }

    /// Like [`Client::new`], also trusting the CA certificate(s) in `ca_pem`
    /// (PEM; e.g. a node's `<data_dir>/tls/self-signed.crt`).
    pub fn with_ca(base: &str, ca_pem: &[u8]) -> Result<Self, ClientError> {
        let fail = |message: String| ClientError::Transport {
            url: base.into(),
            message,
        };
        let certs = reqwest::Certificate::from_pem_bundle(ca_pem)
            .map_err(|e| fail(format!("invalid CA certificate: {e}")))?;
        if certs.is_empty() {
            return Err(fail("no PEM certificate in the CA file".into()));
        }
        Self::build(base, reqwest::Client::builder().tls_certs_merge(certs))
    }

    fn build(base: &str, builder: reqwest::ClientBuilder) -> Result<Self, ClientError> {
        install_crypto_provider();
        let builder = builder.connect_timeout(std::time::Duration::from_secs(10));
        let http = builder.build().map_err(|e| ClientError::Transport {
            url: base.into(),
            message: e.to_string(),
        })?;
        Ok(Self {
            base: base.trim_end_matches('/').to_string(),
            http,
            token: None,
            timeout: None,
            execution: Execution::Remote,
            shared: Arc::default(),
            #[cfg(feature = "local")]
            local: None,
        })
    }

    /// A client for `base` that sends `token` (private or public) with every
    /// request: `Client::connect(url, token)` is `Client::new(url)?.with_token(token)`.
    pub fn connect(base: &str, token: impl Into<String>) -> Result<Self, ClientError> {
        Ok(Self::new(base)?.with_token(token))
    }

    /// A client that only runs calls in this process, with its state in
    /// `dir` (see [`local::LocalRunner`]); no server.
    #[cfg(feature = "local")]
    pub fn local_only(dir: impl AsRef<std::path::Path>) -> Result<Self, ClientError> {
        Ok(Self::new("http://127.0.0.1:0")?
            .with_local(dir)?
            .with_execution(Execution::Local))
    }

    /// Where calls run by default (per call: [`Call::execution`]).
    pub fn with_execution(mut self, execution: Execution) -> Self {
        self.execution = execution;
        self
    }

    /// The default [`Execution`].
    pub fn execution(&self) -> Execution {
        self.execution
    }

    /// Gives up on a request after `timeout` (default: no limit but a 10 s
    /// connect timeout). A timed-out call counts as unreachable for
    /// [`Execution::Auto`].
    pub fn with_timeout(mut self, timeout: std::time::Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Opens (or creates) a local runner with its state in `dir`, used by
    /// [`Execution::Local`] and [`Execution::Auto`].
    #[cfg(feature = "local")]
    pub fn with_local(self, dir: impl AsRef<std::path::Path>) -> Result<Self, ClientError> {
        Ok(self.with_local_runner(Arc::new(local::LocalRunner::open(dir)?)))
    }

    /// Uses an already open local runner (several clients may share one).
    #[cfg(feature = "local")]
    pub fn with_local_runner(mut self, runner: Arc<local::LocalRunner>) -> Self {
        self.local = Some(runner);
        self
    }

    /// The local runner, when there is one.
    #[cfg(feature = "local")]
    pub fn local(&self) -> Option<&Arc<local::LocalRunner>> {
        self.local.as_ref()
    }

    /// Components this client has uploaded (hash-first: only after the
    /// server answered `function_not_found`).
    pub fn uploads(&self) -> u64 {
        self.shared.uploads.load(Ordering::Relaxed)
    }

    /// Whether this client knows the server has the function.
    pub fn is_known(&self, id: &FunctionId) -> bool {
        self.shared.known.lock().expect("known lock").contains(id)
    }

    fn remember(&self, id: &FunctionId) {
        self.shared
            .known
            .lock()
            .expect("known lock")
            .insert(id.clone());
    }

    fn forget(&self, id: &FunctionId) {
        self.shared.known.lock().expect("known lock").remove(id);
    }

    /// Sends `token` (a private or public token) with every request.
    pub fn with_token(mut self, token: impl Into<String>) -> Self {
        let t: String = token.into();
        self.token = Some(t.trim().to_string()).filter(|t| !t.is_empty());
        self
    }

    /// The server's base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// A transport error with its causes (`error sending request: … invalid
    /// peer certificate: UnknownIssuer`), and a hint for certificate errors.
    fn transport(&self, e: impl std::error::Error) -> ClientError {
        let mut message = e.to_string();
        let mut source = e.source();
        while let Some(cause) = source {
            let text = cause.to_string();
            if !message.contains(&text) {
                message.push_str(": ");
                message.push_str(&text);
            }
            source = cause.source();
        }
        if message.contains("certificate") {
            message.push_str(" (to trust the server's CA certificate: `--ca FILE` / ORB_CA)");
        }
        ClientError::Transport {
            url: self.base.clone(),
            message,
        }
    }

    /// Sends a request with the token; transport failures become
    /// [`ClientError::Unreachable`] (no connection, timeout) or
    /// [`ClientError::Transport`].
    async fn send(&self, rb: reqwest::RequestBuilder) -> Result<reqwest::Response, ClientError> {
        let rb = match self.timeout {
            Some(t) => rb.timeout(t),
            None => rb,
        };
        rb.authed(self).send().await.map_err(|e| {
            let unreachable = e.is_connect() || e.is_timeout();
            match self.transport(e) {
                ClientError::Transport { url, message } if unreachable => {
                    ClientError::Unreachable { url, message }
                }
                other => other,
            }
        })
    }

    async fn decode<T: serde::de::DeserializeOwned>(
        &self,
        resp: reqwest::Response,
    ) -> Result<T, ClientError> {
        let status = resp.status().as_u16();
        let body = resp.bytes().await.map_err(|e| self.transport(e))?;
        if (200..300).contains(&status) {
            let body: &[u8] = if body.is_empty() { b"null" } else { &body };
            return serde_json::from_slice(body).map_err(|e| {
                self.transport(std::io::Error::other(format!("unexpected response: {e}")))
            });
        }
        #[derive(Deserialize)]
        struct Wrapper {
            error: OrbError,
        }
        match serde_json::from_slice::<Wrapper>(&body) {
            Ok(w) => Err(ClientError::Api {
                status,
                error: w.error,
            }),
            Err(_) => Err(ClientError::Api {
                status,
                error: OrbError::new(
                    ErrorCode::Internal,
                    format!("HTTP {status}: {}", String::from_utf8_lossy(&body)),
                ),
            }),
        }
    }

    /// Uploads a component. `body` lets the caller wrap the bytes (progress).
    pub async fn upload_body(&self, body: reqwest::Body) -> Result<FunctionInfo, ClientError> {
        let resp = self
            .send(
                self.http
                    .post(format!("{}/v1/functions", self.base))
                    .header("content-type", "application/wasm")
                    .body(body),
            )
            .await?;
        self.decode(resp).await
    }

    /// Uploads a component (counted by [`Client::uploads`]; its hash is then
    /// known to be on the server).
    pub async fn upload(&self, bytes: Bytes) -> Result<FunctionInfo, ClientError> {
        let info = self.upload_body(reqwest::Body::from(bytes)).await?;
        self.remember(&info.hash);
        Ok(info)
    }

    /// Makes sure the server has the function: uploads bytes (or a file)
    /// unless this client already knows the server has their hash. Returns
    /// the hash.
    pub async fn deploy(
        &self,
        function: impl Into<FunctionRef>,
    ) -> Result<FunctionId, ClientError> {
        let target = self.resolve(function.into())?;
        let id = target.id.clone().ok_or_else(|| ClientError::Api {
            status: 400,
            error: OrbError::new(
                ErrorCode::InvalidRequest,
                "deploy needs the component's bytes, a path or a hash, not an alias",
            ),
        })?;
        if self.is_known(&id) {
            return Ok(id);
        }
        match target.bytes()? {
            Some(bytes) => {
                self.shared.uploads.fetch_add(1, Ordering::Relaxed);
                self.upload(bytes).await?;
            }
            None => {
                self.get_function(&id).await?;
                self.remember(&id);
            }
        }
        Ok(id)
    }

    /// Calls `export` of a function — a hash (`&FunctionId`), the
    /// component's bytes, a path to a `.wasm` file, or an alias — with a
    /// JSON object of named parameters, where the client's [`Execution`]
    /// says. Remote calls are hash-first: by hash, uploading the bytes only
    /// when the server answers `function_not_found`, then again by hash.
    pub async fn invoke(
        &self,
        function: impl Into<FunctionRef>,
        export: &str,
        params: Json,
        opts: CallOptions,
    ) -> Result<Invocation, ClientError> {
        self.run(function.into(), export, params, opts, self.execution)
            .await
    }

    /// [`Client::invoke`] with serde-typed parameters (a struct whose fields
    /// are the export's parameter names) and result.
    pub async fn invoke_typed<P: Serialize, R: DeserializeOwned>(
        &self,
        function: impl Into<FunctionRef>,
        export: &str,
        params: &P,
    ) -> Result<R, ClientError> {
        let params = to_json(params)?;
        let out = self
            .invoke(function, export, params, CallOptions::default())
            .await?;
        from_json(out.result)
    }

    /// A call with options, sent with [`Call::send`] (typed result),
    /// [`Call::invoke`] (the whole [`Invocation`]) or [`Call::spawn`]
    /// (asynchronous; the activation id).
    pub fn call(&self, function: impl Into<FunctionRef>, export: &str) -> Call<'_> {
        Call {
            client: self,
            function: function.into(),
            export: export.to_string(),
            params: Ok(Json::Object(Map::new())),
            opts: CallOptions::default(),
            execution: self.execution,
        }
    }

    /// Queues an asynchronous call on the server (hash-first like
    /// [`Client::invoke`]); returns the activation id to pass to
    /// [`Client::wait_activation`]. Always remote.
    pub async fn invoke_async(
        &self,
        function: impl Into<FunctionRef>,
        export: &str,
        params: Json,
        opts: CallOptions,
    ) -> Result<String, ClientError> {
        let target = self.resolve(function.into())?;
        let v = self.remote(&target, export, &params, &opts, true).await?;
        v["activation"].as_str().map(str::to_string).ok_or_else(|| {
            self.transport(std::io::Error::other(format!("no activation id in {v}")))
        })
    }

    /// The hash-first protocol: call by hash; if the server does not know
    /// the function, upload it and call again.
    pub async fn invoke_bytes(
        &self,
        component: &[u8],
        export: &str,
        params: Json,
        opts: CallOptions,
    ) -> Result<Invocation, ClientError> {
        self.invoke(component, export, params, opts).await
    }

    async fn run(
        &self,
        function: FunctionRef,
        export: &str,
        params: Json,
        opts: CallOptions,
        execution: Execution,
    ) -> Result<Invocation, ClientError> {
        let target = self.resolve(function)?;
        match execution {
            Execution::Remote => self.remote_call(&target, export, &params, &opts).await,
            Execution::Local => self.local_call(&target, export, &params, &opts).await,
            Execution::Auto => {
                let mut remote = self.remote_call(&target, export, &params, &opts).await;
                if let Err(ClientError::Transport { .. }) = remote {
                    // The connection broke mid-request (a pooled connection
                    // to a node that stopped): once more on a fresh one.
                    remote = self.remote_call(&target, export, &params, &opts).await;
                }
                self.auto_fallback(remote, &target, export, &params, &opts)
                    .await
            }
        }
    }

    /// [`Execution::Auto`]: the remote answer, or a local run when the node
    /// could not take the call.
    async fn auto_fallback(
        &self,
        remote: Result<Invocation, ClientError>,
        target: &Target,
        export: &str,
        params: &Json,
        opts: &CallOptions,
    ) -> Result<Invocation, ClientError> {
        match remote {
            Err(e) if e.is_unreachable() => self
                .local_call(target, export, params, opts)
                .await
                .map_err(|local| match local {
                    // No local runner, or nothing to run locally: the
                    // server's error says more.
                    ClientError::LocalUnavailable { .. } => e,
                    other => other,
                }),
            other => other,
        }
    }

    async fn remote_call(
        &self,
        target: &Target,
        export: &str,
        params: &Json,
        opts: &CallOptions,
    ) -> Result<Invocation, ClientError> {
        let v = self.remote(target, export, params, opts, false).await?;
        serde_json::from_value(v)
            .map_err(|e| self.transport(std::io::Error::other(format!("unexpected response: {e}"))))
    }

    /// `POST /v1/invoke`, hash-first.
    async fn remote(
        &self,
        target: &Target,
        export: &str,
        params: &Json,
        opts: &CallOptions,
        is_async: bool,
    ) -> Result<Json, ClientError> {
        let mut body = json!({
            "function": target.name,
            "export": export,
            "params": params,
            "globals": opts.globals,
        });
        if let Some(ns) = &opts.namespace {
            body["namespace"] = json!(ns);
        }
        if let Some(set) = &opts.set {
            body["set"] = Json::Object(set.clone());
        }
        if let Some(key) = &opts.write_to {
            body["write_to"] = json!(key);
        }
        if is_async {
            body["async"] = json!(true);
        }
        let post = |body: &Json| {
            self.send(
                self.http
                    .post(format!("{}/v1/invoke", self.base))
                    .json(body),
            )
        };
        let first = async { self.decode::<Json>(post(&body).await?).await }.await;
        let out = match first {
            Err(e) if e.code() == Some(ErrorCode::FunctionNotFound) && target.id.is_some() => {
                let id = target.id.as_ref().expect("checked");
                self.forget(id);
                let Some(bytes) = target.bytes()? else {
                    return Err(e);
                };
                self.shared.uploads.fetch_add(1, Ordering::Relaxed);
                self.upload(bytes).await?;
                self.decode::<Json>(post(&body).await?).await?
            }
            other => other?,
        };
        if let Some(id) = &target.id {
            self.remember(id);
        }
        Ok(out)
    }

    #[cfg(feature = "local")]
    async fn local_call(
        &self,
        target: &Target,
        export: &str,
        params: &Json,
        opts: &CallOptions,
    ) -> Result<Invocation, ClientError> {
        let unavailable = |message: String| ClientError::LocalUnavailable { message };
        let Some(runner) = &self.local else {
            return Err(unavailable(
                "this client has no local runner: Client::with_local(dir)".into(),
            ));
        };
        let Some(id) = &target.id else {
            return Err(unavailable(format!(
                "`{}` is an alias; aliases resolve on a server only — call by hash, bytes or path to run locally",
                target.name
            )));
        };
        let bytes = target.bytes()?;
        runner
            .invoke(id, bytes.as_deref(), export, params, opts)
            .await
    }

    #[cfg(not(feature = "local"))]
    async fn local_call(
        &self,
        _target: &Target,
        _export: &str,
        _params: &Json,
        _opts: &CallOptions,
    ) -> Result<Invocation, ClientError> {
        Err(ClientError::LocalUnavailable {
            message: "orb-client was built without the `local` feature".into(),
        })
    }

    /// What a [`FunctionRef`] names: the hash (when known) and how to get
    /// the bytes.
    fn resolve(&self, f: FunctionRef) -> Result<Target, ClientError> {
        Ok(match f {
            FunctionRef::Hash(id) => Target {
                name: id.to_string(),
                id: Some(id),
                source: Source::None,
            },
            FunctionRef::Bytes(b) => {
                let id = FunctionId::of(&b);
                Target {
                    name: id.to_string(),
                    id: Some(id),
                    source: Source::Bytes(b),
                }
            }
            FunctionRef::Path(p) => {
                let meta = std::fs::metadata(&p).map_err(|e| read_error(&p, e))?;
                let stamp = (meta.modified().ok(), meta.len());
                let cached = self
                    .shared
                    .paths
                    .lock()
                    .expect("paths lock")
                    .get(&p)
                    .filter(|(m, l, _)| (*m, *l) == stamp)
                    .map(|(_, _, id)| id.clone());
                let (id, source) = match cached {
                    // Hashed before and unchanged: read again only if needed.
                    Some(id) => (id, Source::Path(p)),
                    None => {
                        let b = Bytes::from(std::fs::read(&p).map_err(|e| read_error(&p, e))?);
                        let id = FunctionId::of(&b);
                        self.shared
                            .paths
                            .lock()
                            .expect("paths lock")
                            .insert(p, (stamp.0, stamp.1, id.clone()));
                        (id, Source::Bytes(b))
                    }
                };
                Target {
                    name: id.to_string(),
                    id: Some(id),
                    source,
                }
            }
            FunctionRef::Name(name) => match name.parse::<FunctionId>() {
                Ok(id) => Target {
                    name,
                    id: Some(id),
                    source: Source::None,
                },
                Err(_) => Target {
                    name,
                    id: None,
                    source: Source::None,
                },
            },
        })
    }

    pub async fn get_function(&self, id: &FunctionId) -> Result<FunctionInfo, ClientError> {
        let resp = self
            .send(self.http.get(format!("{}/v1/functions/{id}", self.base)))
            .await?;
        self.decode(resp).await
    }

    pub async fn list_functions(&self) -> Result<Vec<FunctionInfo>, ClientError> {
        #[derive(Deserialize)]
        struct L {
            functions: Vec<FunctionInfo>,
        }
        let resp = self
            .send(self.http.get(format!("{}/v1/functions", self.base)))
            .await?;
        Ok(self.decode::<L>(resp).await?.functions)
    }

    pub async fn delete_function(&self, id: &FunctionId) -> Result<(), ClientError> {
        let resp = self
            .send(self.http.delete(format!("{}/v1/functions/{id}", self.base)))
            .await?;
        self.decode::<Json>(resp).await.map(|_| ())
    }

    /// Activations, newest first (raw JSON records).
    pub async fn list_activations(
        &self,
        function: Option<&FunctionId>,
        limit: usize,
    ) -> Result<Vec<Json>, ClientError> {
        let mut url = format!("{}/v1/activations?limit={limit}", self.base);
        if let Some(f) = function {
            url.push_str(&format!("&function={f}"));
        }
        let resp = self.send(self.http.get(url)).await?;
        let v: Json = self.decode(resp).await?;
        Ok(v.get("activations")
            .and_then(Json::as_array)
            .cloned()
            .unwrap_or_default())
    }

    pub async fn get_activation(&self, id: &str) -> Result<Json, ClientError> {
        let resp = self
            .send(self.http.get(format!("{}/v1/activations/{id}", self.base)))
            .await?;
        self.decode(resp).await
    }

    async fn post_json(&self, path: &str, body: &Json) -> Result<Json, ClientError> {
        let resp = self
            .send(self.http.post(format!("{}{path}", self.base)).json(body))
            .await?;
        self.decode(resp).await
    }

    /// Any JSON route: `method` on `path` (e.g. `/v1/schedules`) with an
    /// optional JSON body; the decoded JSON answer (`null` for 204).
    pub async fn request_json(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Json>,
    ) -> Result<Json, ClientError> {
        let mut rb = self.http.request(method, format!("{}{path}", self.base));
        if let Some(b) = body {
            rb = rb.json(b);
        }
        let resp = self.send(rb).await?;
        self.decode(resp).await
    }

    /// Creates a schedule (`POST /v1/schedules`); returns it with its id.
    pub async fn create_schedule(&self, spec: &Json) -> Result<Json, ClientError> {
        self.post_json("/v1/schedules", spec).await
    }

    /// The account's schedules with their state.
    pub async fn list_schedules(&self) -> Result<Json, ClientError> {
        self.request_json(reqwest::Method::GET, "/v1/schedules", None)
            .await
    }

    pub async fn delete_schedule(&self, id: &str) -> Result<(), ClientError> {
        self.request_json(
            reqwest::Method::DELETE,
            &format!("/v1/schedules/{id}"),
            None,
        )
        .await
        .map(|_| ())
    }

    /// Points alias `name` at `function` (owner's private token).
    pub async fn set_alias(&self, name: &str, function: &FunctionId) -> Result<Json, ClientError> {
        let body = json!({ "function": function.to_string() });
        self.request_json(
            reqwest::Method::PUT,
            &format!("/v1/aliases/{name}"),
            Some(&body),
        )
        .await
    }

    /// Points alias `name` back at its previous target.
    pub async fn rollback_alias(&self, name: &str) -> Result<Json, ClientError> {
        self.post_json(&format!("/v1/aliases/{name}/rollback"), &json!({}))
            .await
    }

    /// Waits up to `wait` for an asynchronous call's activation to be final.
    pub async fn wait_activation(
        &self,
        id: &str,
        wait: std::time::Duration,
    ) -> Result<Json, ClientError> {
        let path = format!("/v1/activations/{id}?wait={}ms", wait.as_millis());
        self.request_json(reqwest::Method::GET, &path, None).await
    }

    /// Creates an account (admin token, or open registration). Returns
    /// `{"account","token",…}`; the token is shown only once.
    pub async fn create_account(&self, name: &str) -> Result<Json, ClientError> {
        self.post_json("/v1/accounts", &json!({ "name": name }))
            .await
    }

    /// Mints a public token under the client's private token. `grant` is the
    /// body of `POST /v1/tokens`.
    pub async fn mint_token(&self, grant: &Json) -> Result<Json, ClientError> {
        self.post_json("/v1/tokens", grant).await
    }

    /// Revokes `token` and everything derived from it.
    /// A new private token for the account; the caller's is revoked with
    /// everything derived from it (`{"token","revocation_id","revoked"}`).
    pub async fn rotate_token(&self) -> Result<Json, ClientError> {
        self.post_json("/v1/tokens/rotate", &json!({})).await
    }

    pub async fn revoke_token(&self, token: &str) -> Result<Json, ClientError> {
        self.post_json("/v1/tokens/revoke", &json!({ "token": token }))
            .await
    }

    fn key_url(&self, ns: &str, key: &str) -> Result<reqwest::Url, ClientError> {
        let mut url = reqwest::Url::parse(&self.base).map_err(|e| self.transport(e))?;
        url.path_segments_mut()
            .map_err(|_| self.transport(std::io::Error::other("base URL cannot take a path")))?
            .extend(["v1", "namespaces", ns, "keys", key]);
        Ok(url)
    }

    /// A key's JSON value (a value that is not JSON text fails to decode:
    /// read it with [`Client::kv_get_bytes`]).
    pub async fn kv_get(&self, ns: &str, key: &str) -> Result<Json, ClientError> {
        let resp = self.send(self.http.get(self.key_url(ns, key)?)).await?;
        self.decode(resp).await
    }

    /// A key's value as the bytes stored (JSON values as their text).
    pub async fn kv_get_bytes(&self, ns: &str, key: &str) -> Result<Vec<u8>, ClientError> {
        let rb = self
            .http
            .get(self.key_url(ns, key)?)
            .header(reqwest::header::ACCEPT, "application/octet-stream");
        let resp = self.send(rb).await?;
        if !resp.status().is_success() {
            return self.decode::<Json>(resp).await.map(|_| Vec::new());
        }
        Ok(resp.bytes().await.map_err(|e| self.transport(e))?.to_vec())
    }

    /// Writes a key's value as raw bytes (durable when this returns); `{"revision"}`.
    pub async fn kv_put_bytes(
        &self,
        ns: &str,
        key: &str,
        value: Vec<u8>,
    ) -> Result<Json, ClientError> {
        let rb = self
            .http
            .put(self.key_url(ns, key)?)
            .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
            .body(value);
        let resp = self.send(rb).await?;
        self.decode(resp).await
    }

    /// Writes a key (durable when this returns); `{"revision"}`.
    pub async fn kv_put(&self, ns: &str, key: &str, value: &Json) -> Result<Json, ClientError> {
        let resp = self
            .send(self.http.put(self.key_url(ns, key)?).json(value))
            .await?;
        self.decode(resp).await
    }

    /// Deletes a key.
    pub async fn kv_delete(&self, ns: &str, key: &str) -> Result<(), ClientError> {
        let resp = self.send(self.http.delete(self.key_url(ns, key)?)).await?;
        self.decode::<Json>(resp).await.map(|_| ())
    }

    /// Keys of a namespace with `prefix` (all pages).
    pub async fn kv_keys(&self, ns: &str, prefix: &str) -> Result<Vec<String>, ClientError> {
        let mut out = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let mut url = reqwest::Url::parse(&format!("{}/v1/namespaces/{ns}/keys", self.base))
                .map_err(|e| self.transport(e))?;
            url.query_pairs_mut()
                .append_pair("prefix", prefix)
                .append_pair("limit", "1000");
            if let Some(a) = &after {
                url.query_pairs_mut().append_pair("after", a);
            }
            let resp = self.send(self.http.get(url)).await?;
            let v: Json = self.decode(resp).await?;
            out.extend(
                v["keys"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|k| k.as_str().map(str::to_string)),
            );
            match v["next"].as_str() {
                Some(n) => after = Some(n.to_string()),
                None => return Ok(out),
            }
        }
    }

    /// A namespace as `{"namespace","keys":{key: value}}`.
    pub async fn ns_export(&self, ns: &str) -> Result<Json, ClientError> {
        let resp = self
            .send(
                self.http
                    .get(format!("{}/v1/namespaces/{ns}/export", self.base)),
            )
            .await?;
        self.decode(resp).await
    }

    /// Writes an export into `ns` atomically.
    pub async fn ns_import(&self, ns: &str, export: &Json) -> Result<Json, ClientError> {
        self.post_json(&format!("/v1/namespaces/{ns}/import"), export)
            .await
    }

    /// The account's namespaces (`[{"name","keys","bytes"}]`).
    pub async fn list_namespaces(&self) -> Result<Vec<Json>, ClientError> {
        let resp = self
            .send(self.http.get(format!("{}/v1/namespaces", self.base)))
            .await?;
        let v: Json = self.decode(resp).await?;
        Ok(v["namespaces"].as_array().cloned().unwrap_or_default())
    }

    /// Replaces a namespace's whitelist.
    pub async fn set_whitelist(
        &self,
        namespace: &str,
        functions: &[String],
    ) -> Result<Json, ClientError> {
        let resp = self
            .send(
                self.http
                    .put(format!("{}/v1/namespaces/{namespace}/whitelist", self.base))
                    .json(&json!({ "functions": functions })),
            )
            .await?;
        self.decode(resp).await
    }

    /// A namespace's whitelist.
    pub async fn get_whitelist(&self, namespace: &str) -> Result<Vec<String>, ClientError> {
        let resp = self
            .send(
                self.http
                    .get(format!("{}/v1/namespaces/{namespace}/whitelist", self.base)),
            )
            .await?;
        let v: Json = self.decode(resp).await?;
        Ok(v["functions"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|f| f.as_str().map(str::to_string))
            .collect())
    }
}

/// Installs rustls' `ring` crypto provider as the process default, unless one
/// is installed already. [`Client`] does this itself; call it before building
/// another `reqwest::Client` in a process that links this crate (reqwest's
/// rustls backend has no built-in provider here).
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
