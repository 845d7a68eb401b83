//! An Orb node: the HTTP API (axum), metrics, configuration and shutdown,
//! wiring the sandbox ([`orb_runtime`]) to storage ([`orb_store`]).
//!
//! Owns: routes and their JSON shapes (the API contract in `BRIEF.md`), the
//! mapping of [`orb_core::OrbError`] to HTTP responses, the call pipeline
//! (resolve → load → check params → run → record activation), metrics names.
//!
//! Layers, pointing down only: `handlers` (axum: parse, authorize into a
//! verified caller, map errors) → `services` (one module per domain) → the
//! store and the runtime, with `caller`, `clock`, `error`, `config` and
//! `metrics` at the bottom. This file is the composition root: [`Node`] is
//! the state every layer reads, and `open`/`serve` wire the layers.
//!
//! Must not know: wasmtime types (it talks to `orb-runtime` in JSON), redb
//! (it talks to the `Store` trait), the CLI.

mod caller;
mod clock;
mod config;
mod error;
#[cfg(feature = "fuzzing")]
pub mod fuzzing;
mod handlers;
#[cfg(test)]
mod layers;
mod listener;
mod metrics;
mod services;
mod tls;

use services::{accounts, http, kappa, namespaces, outbound, queue, schedules, triggers};

pub use config::{LogFormat, MissedTicks, NetworkSettings, NodeConfig};
pub use error::ApiError;
pub use services::calls::{InvokeRequest, InvokeResponse};

/// A new account record and its private token, minted under `auth` and
/// stored nowhere: how `orb network init` makes the network's admin account.
pub fn new_account(
    auth: &orb_auth::Authority,
    name: &str,
    admin: bool,
) -> Result<(orb_core::Account, String), ApiError> {
    accounts::new_account(auth, name, admin).map(|(a, m)| (a, m.token))
}

/// Writes a secret (a key, a token) to a file of mode 0600, synced;
/// `replace: false` refuses to overwrite an existing file.
pub fn write_secret_file(path: &std::path::Path, text: &str, replace: bool) -> anyhow::Result<()> {
    accounts::write_secret_file(path, text, replace)
}

/// Offline recovery of an account's (default: the admin's) access from its
/// data directory: `(account id, new private token)`. See `orb admin recover`.
pub async fn recover(
    data_dir: &std::path::Path,
    account: Option<&str>,
) -> anyhow::Result<(String, String)> {
    accounts::recover(data_dir, account).await
}

use anyhow::Context as _;
use orb_runtime::{Runtime, RuntimeConfig};
use orb_store::{RedbStore, Store, StoreConfig};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

/// Everything a request handler needs.
pub struct Node {
    pub(crate) runtime: Arc<Runtime>,
    pub(crate) store: Arc<dyn Store>,
    pub(crate) config: NodeConfig,
    pub(crate) metrics: metrics::Metrics,
    pub(crate) shutting_down: AtomicBool,
    /// Becomes `true` when shutdown starts: long-lived responses (watches)
    /// end on it so the graceful shutdown does not wait for them forever.
    pub(crate) stopping: tokio::sync::watch::Sender<bool>,
    /// Tokens: root key, verification cache, revocations, rate limits.
    pub(crate) auth: Arc<orb_auth::Authority>,
    /// Per-namespace gates: first attempts of calls run side by side (shared),
    /// a call retried after a conflict runs alone (exclusive), so a retry
    /// always commits and 100 racing read-modify-writes all land.
    pub(crate) ns_gates:
        std::sync::Mutex<std::collections::HashMap<String, Arc<tokio::sync::RwLock<()>>>>,
    /// Held across an alias's read-modify-write (set, rollback, delete), so
    /// concurrent changes to aliases never lose a target or its history.
    pub(crate) alias_writes: tokio::sync::Mutex<()>,
    /// Committed changes that match a namespace trigger, in commit order, for
    /// `triggers::run_changes`. Unbounded: a burst (an import of 10,000 keys)
    /// waits here instead of being dropped; `orb_trigger_backlog` counts it.
    pub(crate) trigger_changes: tokio::sync::mpsc::UnboundedSender<Arc<namespaces::Change>>,
    /// Its receiving end, taken by `serve`.
    pub(crate) trigger_changes_rx:
        std::sync::Mutex<Option<tokio::sync::mpsc::UnboundedReceiver<Arc<namespaces::Change>>>>,
    /// Committed namespace changes, for `GET /v1/namespaces/{ns}/watch`.
    pub(crate) changes: tokio::sync::broadcast::Sender<Arc<namespaces::Change>>,
    /// Asynchronous calls: the queue's index and its workers.
    pub(crate) queue: queue::Queue,
    /// Schedules and their ticks.
    pub(crate) scheduler: schedules::Scheduler,
    /// Which triggers fire on which namespaces' changes.
    pub(crate) triggers: triggers::Index,
    /// One message at a time per kappa.
    pub(crate) kappas: kappa::Ports,
    /// The admin account, once bootstrapped.
    pub(crate) admin: std::sync::OnceLock<String>,
    /// HTTP function requests whose guest still runs (shutdown waits).
    pub(crate) http_tasks: http::Tasks,
    /// Encrypts secrets at rest (`<data>/secrets.key`).
    pub(crate) secrets_key: outbound::SecretsKey,
    /// Anonymous requests of public `/http/` routes, per route and address.
    pub(crate) public_limiter: Option<orb_auth::AddressLimiter>,
    /// Where calls run (`services::placement`): here, on a single node.
    pub(crate) executor: Box<dyn services::placement::Executor>,
    /// The network this node is part of (`orb serve --network`); `None`:
    /// a single node.
    #[cfg(feature = "network")]
    pub(crate) network: Option<services::net::Joined>,
    /// Set when the node serves HTTPS.
    tls: Option<tls::Tls>,
    /// Connection limits and who holds what (`listener.rs`).
    connections: listener::Connections,
}

impl Node {
    /// Opens the data folder (store + compile cache) and builds the runtime:
    /// a single node. A configuration naming a network goes through
    /// [`Node::start`].
    pub fn open(config: NodeConfig) -> anyhow::Result<Arc<Self>> {
        anyhow::ensure!(
            !config.network.enabled(),
            "this configuration names a network: start the node with Node::start"
        );
        Self::open_with(config, None)
    }

    /// Opens the node, connecting first to its network when the
    /// configuration names one (`orb serve --network`), then bootstraps it:
    /// ready to [`Node::serve`].
    pub async fn start(config: NodeConfig) -> anyhow::Result<Arc<Self>> {
        if !config.network.enabled() {
            let node = Self::open_with(config, None)?;
            node.bootstrap().await?;
            return Ok(node);
        }
        #[cfg(feature = "network")]
        {
            let (joined, auth) =
                services::network::connect(&config.network, &config.data_dir, config.max_instances)
                    .await?;
            let node = Self::open_with(config, Some((joined, auth)))?;
            // Accounts and revocations as the network holds them, before
            // anything is served; then the admin, then the hello.
            services::network::follow(&node).await?;
            node.bootstrap().await?;
            services::network::join(&node).await?;
            Ok(node)
        }
        #[cfg(not(feature = "network"))]
        anyhow::bail!("this build of Orb has no network support (cargo feature `network`)")
    }

    #[cfg(feature = "network")]
    fn open_with(
        config: NodeConfig,
        network: Option<(services::net::Joined, orb_auth::Authority)>,
    ) -> anyhow::Result<Arc<Self>> {
        let (network, network_auth) = match network {
            Some((j, a)) => (Some(j), Some(a)),
            None => (None, None),
        };
        Self::build(config, network_auth, |n| {
            if network.is_some() {
                n.executor = Box::new(services::network::Routed);
            }
            n.network = network;
        })
    }

    #[cfg(not(feature = "network"))]
    fn open_with(
        config: NodeConfig,
        network: Option<std::convert::Infallible>,
    ) -> anyhow::Result<Arc<Self>> {
        let _ = network;
        Self::build(config, None, |_| {})
    }

    fn build(
        config: NodeConfig,
        network_auth: Option<orb_auth::Authority>,
        finish: impl FnOnce(&mut Node),
    ) -> anyhow::Result<Arc<Self>> {
        std::fs::create_dir_all(&config.data_dir)
            .with_context(|| format!("cannot create data dir {}", config.data_dir.display()))?;
        let tls = tls::load(&config)?;
        // The node's own root key: tokens on a single node, and always the
        // key compiled artifacts are authenticated under.
        let local_key = accounts::load_root_key(&config.data_dir)?;
        let artifact_secret = local_key
            .private_key_text()
            .expect("a node's own root key has its private half");
        let auth = network_auth.unwrap_or(local_key);
        let store = RedbStore::open(
            &config.data_dir,
            StoreConfig {
                max_activations: config.max_activations,
                quota: orb_store::Quota {
                    max_keys: config.max_keys_per_account,
                    max_bytes: config.max_bytes_per_account,
                },
                min_free_bytes: config.min_free_disk_bytes,
            },
        )
        .with_context(|| format!("cannot open the store in {}", config.data_dir.display()))?;
        let runtime = Runtime::new(RuntimeConfig {
            limits: config.limits(),
            cache_dir: Some(config.data_dir.join("compiled")),
            max_instances: config.max_instances,
            outbound: config.outbound()?,
            guard_pages: config.guard_pages,
            // Compiled artifacts are authenticated under a key derived from
            // the node's root key.
            artifact_key: Some(orb_runtime::ArtifactKey({
                use sha2::Digest as _;
                sha2::Sha256::new()
                    .chain_update(b"orb compiled-artifact mac\0")
                    .chain_update(artifact_secret.as_bytes())
                    .finalize()
                    .into()
            })),
            ..Default::default()
        })?;
        // The node owns `<data>/compiled`: an upgrade, or another memory
        // limit or `guard_pages`, would leave the old engine's artifacts there
        // for good.
        match runtime.prune_stale_artifacts() {
            Ok((0, _)) => {}
            Ok((configs, bytes)) => tracing::info!(
                configs,
                mib = bytes / (1 << 20),
                "removed compiled artifacts of earlier engine configurations"
            ),
            Err(e) => tracing::warn!(error = %e, "cannot prune the compiled-artifact cache"),
        }
        let secrets_key = outbound::SecretsKey::load(&config.data_dir)?;
        let public_limiter = config.public_route_limiter()?;
        // The recorder first: the connection metrics are registered at 0.
        let metrics = metrics::Metrics::install();
        let connections = listener::Connections::new(&config)?;
        let (trigger_changes, trigger_changes_rx) = tokio::sync::mpsc::unbounded_channel();
        let mut node = Self {
            runtime: Arc::new(runtime),
            store: Arc::new(store),
            metrics,
            queue: queue::Queue::new(config.async_workers),
            scheduler: Default::default(),
            triggers: Default::default(),
            kappas: Default::default(),
            config,
            shutting_down: AtomicBool::new(false),
            stopping: tokio::sync::watch::channel(false).0,
            auth: Arc::new(auth),
            admin: std::sync::OnceLock::new(),
            http_tasks: Default::default(),
            ns_gates: Default::default(),
            alias_writes: Default::default(),
            trigger_changes,
            trigger_changes_rx: std::sync::Mutex::new(Some(trigger_changes_rx)),
            changes: tokio::sync::broadcast::channel(4096).0,
            secrets_key,
            public_limiter,
            executor: Box::new(services::placement::Local),
            #[cfg(feature = "network")]
            network: None,
            tls,
            connections,
        };
        finish(&mut node);
        Ok(Arc::new(node))
    }

    /// Loads revoked tokens and makes sure an admin account exists. On first
    /// start it writes the admin's private token to `<data-dir>/admin.token`
    /// (mode 0600). Call once before serving.
    pub async fn bootstrap(&self) -> anyhow::Result<()> {
        accounts::bootstrap(self).await
    }

    /// The axum application (all routes, CORS, tracing).
    pub fn router(self: &Arc<Self>) -> axum::Router {
        handlers::router(self.clone())
    }

    /// Serves on `listener` until `shutdown` resolves, lets in-flight calls
    /// finish, then makes every write durable.
    pub async fn serve(
        self: Arc<Self>,
        listener: tokio::net::TcpListener,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let app = self
            .router()
            .into_make_service_with_connect_info::<SocketAddr>();
        queue::load(&self).await;
        schedules::load(&self).await;
        triggers::load(&self).await;
        let changes = self
            .trigger_changes_rx
            .lock()
            .expect("trigger changes lock")
            .take()
            .context("a node serves once")?;
        let background = [
            tokio::spawn(queue::run(self.clone())),
            tokio::spawn(schedules::run(self.clone())),
        ];
        let trigger_task = tokio::spawn(triggers::run_changes(self.clone(), changes));
        let node = self.clone();
        let shutdown = async move {
            shutdown.await;
            node.shutting_down
                .store(true, std::sync::atomic::Ordering::SeqCst);
            node.stopping.send_replace(true);
            tracing::info!("shutting down: finishing in-flight calls");
        };
        match &self.tls {
            Some(tls) => tls::serve(listener, tls, &self.connections, app, shutdown).await?,
            None => {
                let guard = self.connections.guard(true);
                crate::listener::serve(listener, &self.connections, guard, app, shutdown).await?
            }
        }
        // HTTP functions may run on after their response head was sent.
        self.http_tasks.drain().await;
        // Queued calls not started stay queued for the next start; the ones
        // running (and schedule ticks) finish first.
        for task in background {
            task.abort();
        }
        // Every worker slot is held until the flush is done: nothing starts
        // after it.
        let _idle = queue::drain(&self, self.config.async_workers).await;
        // Nothing commits any more: fire what changed since the trigger loop
        // stopped (the rule calls are queued durably for the next start).
        match trigger_task.await {
            Ok(pending) => triggers::fire_pending(&self, pending).await,
            Err(e) => tracing::error!(error = %e, "the trigger loop failed"),
        }
        #[cfg(feature = "network")]
        services::network::leave(&self).await;
        self.store.flush().await?;
        tracing::info!("store flushed; bye");
        Ok(())
    }

    /// A worker slot for background work (async calls, schedule ticks); the
    /// shutdown waits for every slot to come back.
    pub(crate) async fn queue_permit(&self) -> Option<tokio::sync::OwnedSemaphorePermit> {
        self.queue.permit().await
    }

    /// Resolves once shutdown has started.
    pub(crate) async fn stopped(&self) {
        let mut rx = self.stopping.subscribe();
        let _ = rx.wait_for(|v| *v).await;
    }

    /// `"https"` when the node serves TLS, else `"http"`.
    pub fn scheme(&self) -> &'static str {
        if self.tls.is_some() { "https" } else { "http" }
    }

    /// SHA-256 fingerprint (`AA:BB:…`) of the TLS certificate, when serving TLS.
    pub fn tls_fingerprint(&self) -> Option<&str> {
        self.tls.as_ref().map(|t| t.fingerprint.as_str())
    }

    /// Deploys a component from bytes into the admin account (used by
    /// `orb up` for the examples).
    pub async fn deploy(&self, bytes: bytes::Bytes) -> Result<orb_core::FunctionInfo, ApiError> {
        let admin = self.admin.get().cloned().ok_or_else(|| {
            ApiError::new(
                orb_core::ErrorCode::Internal,
                "the node is not bootstrapped (call Node::bootstrap)",
            )
        })?;
        services::functions::deploy(self, &admin, bytes)
            .await
            .map(|(info, _)| info)
    }
}
