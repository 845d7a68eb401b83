use orb_core::Limits;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::PathBuf;

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// A node's configuration: `orb.toml`, overridden by `ORB_*` environment
/// variables, overridden by flags (the CLI does the merging).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NodeConfig {
    /// Address to listen on. Loopback by default: there are no tokens yet.
    pub listen: SocketAddr,
    /// Data folder: store, compiled artifacts.
    pub data_dir: PathBuf,
    /// Largest component accepted, bytes.
    pub max_component_bytes: u64,
    /// Linear memory per instance, bytes.
    pub memory_limit_bytes: u64,
    /// Wall-clock limit per call, milliseconds.
    pub timeout_ms: u64,
    /// Optional fuel limit per call.
    pub fuel_limit: Option<u64>,
    /// Log capture cap per activation, bytes.
    pub log_limit_bytes: u64,
    /// Activations kept (oldest pruned).
    pub max_activations: u64,
    /// Instances alive at once (pooling allocator size).
    pub max_instances: u32,
    /// Guard linear memories with virtual memory instead of compiled-in
    /// bounds checks: faster memory-heavy loops, slower instance recycling
    /// (see `orb_runtime::RuntimeConfig::guard_pages`). Off by default.
    pub guard_pages: bool,
    pub log_format: LogFormat,
    /// Keys an account may hold over all its namespaces.
    pub max_keys_per_account: u64,
    /// Bytes (of JSON values) an account may hold over all its namespaces.
    pub max_bytes_per_account: u64,
    /// Writes are refused with 507 `storage_full` while the disk holding
    /// the data folder has less than this free (reads keep working; writes
    /// resume once space returns).
    pub min_free_disk_bytes: u64,
    /// Anyone may create an account with `POST /v1/accounts` (off by default).
    pub open_registration: bool,
    /// `/healthz` and `/metrics` answer without a token (on by default).
    pub open_health: bool,
    /// Serve HTTPS with this certificate chain (PEM); needs `tls_key`.
    pub tls_cert: Option<PathBuf>,
    /// Private key (PEM) for `tls_cert`.
    pub tls_key: Option<PathBuf>,
    /// Serve HTTPS with a generated development certificate
    /// (`<data_dir>/tls/self-signed.{crt,key}`, reused on the next start).
    pub tls_self_signed: bool,
    /// Asynchronous calls (and schedule ticks) running at once, node-wide.
    pub async_workers: usize,
    /// Asynchronous calls of one account running at once.
    pub async_per_account: usize,
    /// Asynchronous calls one account may have waiting; more → 429 `queue_full`.
    pub max_queued_per_account: usize,
    /// What a schedule does about ticks missed while the node was down.
    pub missed_ticks: MissedTicks,
    /// Largest request body an HTTP function (`/http/…`) is handed; more → 413 `too_large`.
    pub max_http_request_bytes: u64,
    /// Largest namespace value, in bytes (HTTP API, imports, guests' writes).
    pub max_value_bytes: usize,
    /// Largest response body an HTTP function may stream; past it the stream is cut.
    pub max_http_response_bytes: u64,
    /// Non-public addresses functions may reach over outbound HTTP anyway,
    /// as CIDRs (`127.0.0.1/32`, `10.1.0.0/16`, `::1/128`) or bare
    /// addresses. Empty by default: loopback, private, link-local,
    /// unspecified, multicast… are refused (SSRF).
    pub outbound_allow_private: Vec<String>,
    /// Outbound HTTP: resolving and connecting (TCP, TLS), milliseconds.
    pub outbound_connect_timeout_ms: u64,
    /// Outbound HTTP: until the response head, and for the whole request
    /// with its body, milliseconds (the guest may ask for less, never more;
    /// the call's own timeout still applies).
    pub outbound_timeout_ms: u64,
    /// Outbound HTTP: largest response body a function may read; past it
    /// the stream fails.
    pub outbound_max_response_bytes: u64,
    /// Outbound HTTP: requests per call; the next one is refused
    /// (`HTTP-request-denied`).
    pub outbound_max_requests: u32,
    /// Requests per client address to each public `/http/` route by callers
    /// without a token, `COUNT/PERIOD` (`"100/1s"`); `"off"` for none.
    pub public_route_rate: String,
    /// Connections: from the accept (TLS handshake included) to the first
    /// request's complete head, and from a head's first byte to its end,
    /// milliseconds; past it the connection is closed.
    pub header_read_timeout_ms: u64,
    /// Connections: how long one may wait for its next request, or for the
    /// client to read a response or send more of a request body,
    /// milliseconds. The clock stops while a request is being handled.
    pub idle_timeout_ms: u64,
    /// Connections open at once, node-wide; more are refused (closed at
    /// once, `503 overloaded` on plain HTTP). Lowered, with a warning, to
    /// what the open-files limit allows.
    pub max_connections: usize,
    /// Connections open at once from one client address (IPv6: one /64)
    /// that have not yet carried a valid token; `0` for no limit (e.g.
    /// behind a reverse proxy).
    pub max_connections_per_address: usize,
    /// Largest request head (request line and headers; HTTP/2: header
    /// list), bytes; more → 431. At least 8192.
    pub max_request_head_bytes: u64,
    /// The network this node joins (`[network]` in `orb.toml`,
    /// `orb serve --network`); no `urls`: a single node.
    pub network: NetworkSettings,
}

/// How a node joins a network (issue 19; needs the `network` feature,
/// which the `orb` binary has).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct NetworkSettings {
    /// NATS servers of the network (`nats://h1:4222`, …); any one is
    /// enough to reach it. Empty: a single node.
    pub urls: Vec<String>,
    /// Also run the super-node duties (admission, reaping, minting).
    #[serde(rename = "super")]
    pub super_node: bool,
    /// The network's root private key (written by `orb network init`);
    /// a super node needs it, a node does not.
    pub root_key: Option<PathBuf>,
    /// The NATS credentials this node connects with (`nats-node.nk`, or
    /// `nats-super.nk` for a super node; written by `orb network init`),
    /// when the network's servers require them. None: no credentials.
    pub creds: Option<PathBuf>,
    /// `key=value` labels placement constraints match on (`region=eu`).
    pub attributes: Vec<String>,
    /// Calls this node runs at once for the network (its own and the ones
    /// other nodes forward); past it, forwarded calls are answered busy and
    /// go to another seeder. 0: the node's `max_instances`.
    pub call_slots: usize,
    /// The scale loop's thresholds (`[network.scale]`; a super node runs
    /// the loop): more seeders as load grows, fewer as it falls.
    pub scale: ScaleSettings,
}

/// When a function gets another seeder or loses one (`orb_net::scale`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ScaleSettings {
    /// Utilisation (time in the function's calls ÷ its seeders' call
    /// slots) at or above which it gets one more seeder, up to
    /// `max_seeders`. A busy answer counts as hot whatever the figure.
    pub up_at: f64,
    /// Utilisation below which, with no busy answer, it counts as quiet.
    pub down_at: f64,
    /// How long it must be quiet to lose one seeder (down to
    /// `min_seeders`), milliseconds.
    pub down_after_ms: u64,
    /// The least time between two changes of its seeder count, ms.
    pub cooldown_ms: u64,
}

impl Default for ScaleSettings {
    fn default() -> Self {
        ScaleSettings {
            up_at: 0.5,
            down_at: 0.1,
            down_after_ms: 30_000,
            cooldown_ms: 5_000,
        }
    }
}

impl NetworkSettings {
    /// Whether a network is configured.
    pub fn enabled(&self) -> bool {
        !self.urls.is_empty()
    }
}

/// Policy for schedule ticks missed while the node was down.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MissedTicks {
    /// One catch-up run at start, then the normal cadence (never a burst).
    #[default]
    One,
    /// No catch-up: wait for the next tick.
    Skip,
}

impl Default for NodeConfig {
    fn default() -> Self {
        let l = Limits::default();
        Self {
            listen: "127.0.0.1:7070".parse().expect("valid default address"),
            data_dir: PathBuf::from(".orb"),
            max_component_bytes: 64 << 20,
            memory_limit_bytes: l.memory_bytes,
            timeout_ms: l.timeout_ms,
            fuel_limit: l.fuel,
            log_limit_bytes: l.log_bytes,
            max_activations: 10_000,
            max_instances: 200,
            guard_pages: false,
            log_format: LogFormat::Text,
            max_keys_per_account: 1_000_000,
            min_free_disk_bytes: 64 << 20,
            max_bytes_per_account: 1 << 30,
            open_registration: false,
            open_health: true,
            tls_cert: None,
            tls_key: None,
            tls_self_signed: false,
            async_workers: 8,
            async_per_account: 4,
            max_queued_per_account: 10_000,
            missed_ticks: MissedTicks::One,
            max_http_request_bytes: 10 << 20,
            max_value_bytes: orb_core::MAX_VALUE_BYTES,
            max_http_response_bytes: 32 << 20,
            outbound_allow_private: Vec::new(),
            outbound_connect_timeout_ms: 5_000,
            outbound_timeout_ms: 30_000,
            outbound_max_response_bytes: 10 << 20,
            outbound_max_requests: 16,
            public_route_rate: "100/1s".into(),
            header_read_timeout_ms: 10_000,
            idle_timeout_ms: 60_000,
            max_connections: 10_000,
            max_connections_per_address: 256,
            max_request_head_bytes: 64 << 10,
            network: NetworkSettings::default(),
        }
    }
}

impl NodeConfig {
    /// Per-call limits from this configuration.
    pub fn limits(&self) -> Limits {
        Limits {
            memory_bytes: self.memory_limit_bytes,
            timeout_ms: self.timeout_ms,
            fuel: self.fuel_limit,
            log_bytes: self.log_limit_bytes,
        }
    }

    /// Outbound HTTP limits; a bad `outbound_allow_private` entry is an error.
    pub fn outbound(&self) -> anyhow::Result<orb_runtime::OutboundConfig> {
        let allow_private = self
            .outbound_allow_private
            .iter()
            .map(|s| {
                let s = s.trim();
                s.parse::<ipnet::IpNet>()
                    .or_else(|_| s.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                    .map_err(|_| {
                        anyhow::anyhow!(
                            "outbound_allow_private: `{s}` is not a CIDR like 127.0.0.1/32 or an IP address"
                        )
                    })
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(orb_runtime::OutboundConfig {
            connect_timeout: std::time::Duration::from_millis(self.outbound_connect_timeout_ms),
            timeout: std::time::Duration::from_millis(self.outbound_timeout_ms),
            max_response_bytes: self.outbound_max_response_bytes,
            max_requests: self.outbound_max_requests,
            allow_private,
        })
    }

    /// Parses `orb.toml` text.
    /// The limiter for anonymous public-route requests (`None`: off).
    pub fn public_route_limiter(&self) -> anyhow::Result<Option<orb_auth::AddressLimiter>> {
        match self.public_route_rate.trim() {
            "off" | "" => Ok(None),
            text => orb_auth::Rate::parse(text)
                .map(|r| Some(orb_auth::AddressLimiter::new(r)))
                .map_err(|e| anyhow::anyhow!("public_route_rate: {e}")),
        }
    }

    pub fn from_toml(text: &str) -> Result<Self, toml::de::Error> {
        toml::from_str(text)
    }
}
