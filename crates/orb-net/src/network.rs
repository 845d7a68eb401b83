//! A connection to the network and `network init`.

use crate::{NetError, names};
use async_nats::HeaderMap;
use async_nats::jetstream::{self, kv, object_store, stream};
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use std::time::{Duration, Instant};

/// How often things happen, and so how fast failures are seen.
///
/// The bound on noticing a dead node (see [`Timing::gone_bound`]) follows
/// from these values; NATS per-message TTLs count in whole seconds.
#[derive(Debug, Clone)]
pub struct Timing {
    /// A node renews its heartbeat key this often.
    pub heartbeat_every: Duration,
    /// The heartbeat key's TTL (whole seconds, >= 1): the key disappears this
    /// long after the last renewal.
    pub heartbeat_ttl: Duration,
    /// The reaper and admission duties scan this often.
    pub duty_every: Duration,
    /// A lease's TTL (whole seconds, >= 1); the holder renews it every third of it.
    pub lease_ttl: Duration,
}

impl Default for Timing {
    fn default() -> Self {
        Timing {
            heartbeat_every: Duration::from_secs(1),
            heartbeat_ttl: Duration::from_secs(3),
            duty_every: Duration::from_secs(1),
            lease_ttl: Duration::from_secs(5),
        }
    }
}

/// The server removes an expired message within about this long after its
/// TTL (its expiry timer's granularity, measured as below one second here).
pub const SERVER_EXPIRY_SLACK: Duration = Duration::from_secs(1);

impl Timing {
    /// Short intervals for tests (still whole-second TTLs).
    pub fn fast() -> Self {
        Timing {
            heartbeat_every: Duration::from_millis(300),
            heartbeat_ttl: Duration::from_secs(2),
            duty_every: Duration::from_millis(300),
            lease_ttl: Duration::from_secs(2),
        }
    }

    /// Upper bound from a node's last heartbeat to its record saying `gone`,
    /// while a reaper holds its lease: the key's TTL, the server's expiry
    /// slack, one reaper scan.
    pub fn gone_bound(&self) -> Duration {
        self.heartbeat_ttl + SERVER_EXPIRY_SLACK + self.duty_every
    }

    /// The same bound when the super node holding the reaper lease dies at
    /// the same moment: add the lease's TTL, its expiry slack and one
    /// acquisition attempt by another super node.
    pub fn gone_bound_with_failover(&self) -> Duration {
        self.gone_bound() + self.lease_ttl + SERVER_EXPIRY_SLACK + self.duty_every
    }

    pub(crate) fn check(&self) -> Result<(), NetError> {
        for (name, d) in [
            ("heartbeat_ttl", self.heartbeat_ttl),
            ("lease_ttl", self.lease_ttl),
        ] {
            if d < Duration::from_secs(1) || d.subsec_nanos() != 0 {
                return Err(NetError::Invalid(format!(
                    "{name} must be whole seconds and at least 1 s (NATS message TTLs count in seconds)"
                )));
            }
        }
        if self.heartbeat_every * 2 > self.heartbeat_ttl {
            return Err(NetError::Invalid(
                "heartbeat_every must be at most half of heartbeat_ttl".into(),
            ));
        }
        Ok(())
    }
}

/// What `network init` wrote in the meta bucket.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct NetworkMeta {
    pub layout_version: u32,
    pub replicas: usize,
}

/// What `init` did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct InitReport {
    /// Buckets/streams/stores made by this call.
    pub created: Vec<String>,
    /// Those that were there already.
    pub existing: Vec<String>,
    pub replicas: usize,
}

/// A connection to an initialised network: the NATS client and handles to
/// every bucket, stream and store.
#[derive(Clone)]
pub struct Network {
    pub client: async_nats::Client,
    pub js: jetstream::Context,
    pub nodes: kv::Store,
    pub alive: kv::Store,
    pub leases: kv::Store,
    pub accounts: kv::Store,
    pub revocations: kv::Store,
    pub seeding: kv::Store,
    pub records: kv::Store,
    /// The `orb_network` bucket (`meta`, the root public key).
    pub meta_store: kv::Store,
    pub components: object_store::ObjectStore,
    pub meta: NetworkMeta,
}

impl std::fmt::Debug for Network {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Network").field("meta", &self.meta).finish()
    }
}

/// Connects to NATS at `urls` (any of them; the client learns the rest of
/// the cluster and reconnects on its own when a server goes away), without
/// credentials; [`crate::access::connect_as`] connects with a role's.
pub async fn connect(urls: &[String], name: &str) -> Result<async_nats::Client, NetError> {
    Ok(crate::access::connect_as(urls, name, None).await?.client)
}

fn kv_configs(replicas: usize) -> Vec<kv::Config> {
    vec![
        kv::Config {
            bucket: names::META_BUCKET.into(),
            description: "Orb network facts".into(),
            history: 1,
            num_replicas: replicas,
            ..Default::default()
        },
        kv::Config {
            bucket: names::NODES_BUCKET.into(),
            description: "Orb nodes: signed hello and life-cycle state".into(),
            history: 5,
            num_replicas: replicas,
            ..Default::default()
        },
        kv::Config {
            bucket: names::ALIVE_BUCKET.into(),
            description: "Orb node heartbeats (per-key TTL)".into(),
            history: 1,
            num_replicas: replicas,
            limit_markers: Some(Duration::from_secs(60)),
            ..Default::default()
        },
        kv::Config {
            bucket: names::ACCOUNTS_BUCKET.into(),
            description: "Orb accounts (written by super nodes)".into(),
            history: 5,
            num_replicas: replicas,
            ..Default::default()
        },
        kv::Config {
            bucket: names::RECORDS_BUCKET.into(),
            description: "Orb shared records: aliases, public routes, whitelists".into(),
            history: 1,
            num_replicas: replicas,
            ..Default::default()
        },
        kv::Config {
            bucket: names::SEEDING_BUCKET.into(),
            description: "Orb seeding slots (<hex>.<k> = node id)".into(),
            history: 1,
            num_replicas: replicas,
            ..Default::default()
        },
        kv::Config {
            bucket: names::REVOCATIONS_BUCKET.into(),
            description: "Orb revoked token lineages".into(),
            history: 1,
            num_replicas: replicas,
            ..Default::default()
        },
        kv::Config {
            bucket: names::LEASES_BUCKET.into(),
            description: "Orb duty leases (per-key TTL)".into(),
            history: 1,
            num_replicas: replicas,
            limit_markers: Some(Duration::from_secs(60)),
            ..Default::default()
        },
    ]
}

fn stream_configs(replicas: usize) -> Vec<stream::Config> {
    vec![
        stream::Config {
            name: names::ANNOUNCE_STREAM.into(),
            description: Some("Orb announcements: deploys, alias switches, deprecations".into()),
            subjects: vec![names::ANNOUNCE_SUBJECTS.into()],
            num_replicas: replicas,
            storage: stream::StorageType::File,
            // Publishers retry with the same Nats-Msg-Id for up to
            // PUBLISH_BUDGET; the window must cover it.
            duplicate_window: Duration::from_secs(120),
            ..Default::default()
        },
        stream::Config {
            name: names::REPORTS_STREAM.into(),
            description: Some("Orb reports: hash mismatches".into()),
            subjects: vec![names::REPORTS_SUBJECTS.into()],
            num_replicas: replicas,
            storage: stream::StorageType::File,
            max_age: Duration::from_secs(30 * 24 * 3600),
            duplicate_window: Duration::from_secs(120),
            ..Default::default()
        },
    ]
}

/// How long a publisher keeps retrying an announcement (same Nats-Msg-Id):
/// longer than a Raft leader election (4-9 s measured on loopback).
pub const PUBLISH_BUDGET: Duration = Duration::from_secs(30);

impl Network {
    /// Creates every bucket, stream and store the network needs, with
    /// `replicas` copies each (1, or 3 on a 3-server cluster). Idempotent:
    /// what exists is left as it is and reported as existing.
    pub async fn init(
        client: &async_nats::Client,
        replicas: usize,
    ) -> Result<InitReport, NetError> {
        if replicas == 0 || replicas > 5 {
            return Err(NetError::Invalid(format!(
                "replicas must be 1 to 5 (got {replicas}); use 3 on a 3-server cluster"
            )));
        }
        let js = jetstream::new(client.clone());
        let mut report = InitReport {
            replicas,
            ..Default::default()
        };
        for config in kv_configs(replicas) {
            let name = config.bucket.clone();
            match js.get_key_value(&name).await {
                Ok(_) => report.existing.push(name),
                Err(_) => {
                    create_on_time(&format!("create bucket {name}"), || {
                        js.create_key_value(config.clone())
                    })
                    .await?;
                    report.created.push(name);
                }
            }
        }
        for config in stream_configs(replicas) {
            let name = config.name.clone();
            match js.get_stream(&name).await {
                Ok(_) => report.existing.push(name),
                Err(_) => {
                    create_on_time(&format!("create stream {name}"), || {
                        js.create_stream(config.clone())
                    })
                    .await?;
                    report.created.push(name);
                }
            }
        }
        let name = names::COMPONENTS_STORE.to_string();
        match js.get_object_store(&name).await {
            Ok(_) => report.existing.push(name),
            Err(_) => {
                create_on_time(&format!("create object store {name}"), || {
                    js.create_object_store(object_store::Config {
                        bucket: name.clone(),
                        description: Some("Orb component bytes by sha256 id".into()),
                        num_replicas: replicas,
                        ..Default::default()
                    })
                })
                .await?;
                report.created.push(name);
            }
        }
        let meta = js
            .get_key_value(names::META_BUCKET)
            .await
            .map_err(|e| NetError::js("open meta bucket", e))?;
        let value = serde_json::to_vec(&NetworkMeta {
            layout_version: names::LAYOUT_VERSION,
            replicas,
        })
        .expect("meta serialises");
        // create, not put: a second init never rewrites what the first wrote.
        match meta.create(names::META_KEY, value.into()).await {
            Ok(_) => {}
            Err(e) if e.kind() == kv::CreateErrorKind::AlreadyExists => {}
            Err(e) => return Err(NetError::js("write network meta", e)),
        }
        Ok(report)
    }

    /// Opens an initialised network. Right after a server of the cluster
    /// fails, a bucket's stream may have no leader for some seconds (Raft
    /// election): lookups are retried for up to [`OPEN_BUDGET`], and only a
    /// stream the servers say does not exist is "not initialised".
    pub async fn open(client: async_nats::Client) -> Result<Network, NetError> {
        let js = jetstream::new(client.clone());
        let missing = |what: &str| NetError::NotInitialised {
            what: what.to_string(),
        };
        let kv = |name: &'static str| {
            let js = js.clone();
            async move { with_retry(name, || js.get_key_value(name)).await }
        };
        let meta_store = kv(names::META_BUCKET).await?;
        let meta: NetworkMeta =
            match with_retry("read network meta", || meta_store.get(names::META_KEY)).await? {
                Some(bytes) => serde_json::from_slice(&bytes)
                    .map_err(|e| NetError::Invalid(format!("network meta does not parse: {e}")))?,
                None => return Err(missing("orb_network/meta")),
            };
        if meta.layout_version != names::LAYOUT_VERSION {
            return Err(NetError::Invalid(format!(
                "the network's layout is version {}, this Orb knows version {}: upgrade Orb",
                meta.layout_version,
                names::LAYOUT_VERSION
            )));
        }
        let nodes = kv(names::NODES_BUCKET).await?;
        let alive = kv(names::ALIVE_BUCKET).await?;
        let leases = kv(names::LEASES_BUCKET).await?;
        let accounts = kv(names::ACCOUNTS_BUCKET).await?;
        let revocations = kv(names::REVOCATIONS_BUCKET).await?;
        let seeding = kv(names::SEEDING_BUCKET).await?;
        let records = kv(names::RECORDS_BUCKET).await?;
        let components = with_retry(names::COMPONENTS_STORE, || {
            js.get_object_store(names::COMPONENTS_STORE)
        })
        .await?;
        for s in [names::ANNOUNCE_STREAM, names::REPORTS_STREAM] {
            with_retry(s, || js.get_stream(s)).await?;
        }
        Ok(Network {
            client,
            js,
            nodes,
            alive,
            leases,
            accounts,
            revocations,
            seeding,
            records,
            meta_store,
            components,
            meta,
        })
    }

    /// Publishes `payload` on a stream subject and waits for the stream's
    /// acknowledgement, retrying with the same `Nats-Msg-Id` until `budget`
    /// runs out (a leader election takes seconds; the stream's duplicate
    /// window drops the copies of a retry whose first try was stored).
    pub async fn publish_acked(
        &self,
        subject: String,
        msg_id: &str,
        payload: Bytes,
        budget: Duration,
    ) -> Result<jetstream::publish::PublishAck, NetError> {
        let start = Instant::now();
        let mut last;
        loop {
            let mut headers = HeaderMap::new();
            headers.insert(async_nats::header::NATS_MESSAGE_ID, msg_id);
            match self
                .js
                .publish_with_headers(subject.clone(), headers, payload.clone())
                .await
            {
                Ok(ack) => match ack.await {
                    Ok(ack) => return Ok(ack),
                    Err(e) => last = e.to_string(),
                },
                Err(e) => last = e.to_string(),
            }
            if start.elapsed() >= budget {
                return Err(NetError::Budget {
                    op: format!("publish {subject}"),
                    secs: start.elapsed().as_secs_f64(),
                    last,
                });
            }
            tracing::debug!(%subject, %msg_id, error = %last, "publish not acknowledged; retrying");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Writes `value` under `key` in `store` with a per-key TTL, optionally
    /// only if the key's last revision is `expect` (compare-and-set; 0 =
    /// the key must not exist). Returns the new revision.
    pub(crate) async fn kv_put_ttl(
        &self,
        store: &kv::Store,
        key: &str,
        value: Bytes,
        ttl: Duration,
        expect: Option<u64>,
    ) -> Result<u64, jetstream::context::PublishError> {
        let mut subject = store.put_prefix.clone().unwrap_or(store.prefix.clone());
        subject.push_str(key);
        let mut headers = HeaderMap::new();
        headers.insert(
            async_nats::header::NATS_MESSAGE_TTL,
            ttl.as_secs().to_string().as_str(),
        );
        if let Some(rev) = expect {
            headers.insert(
                async_nats::header::NATS_EXPECTED_LAST_SUBJECT_SEQUENCE,
                rev.to_string().as_str(),
            );
        }
        let ack = self
            .js
            .publish_with_headers(subject, headers, value)
            .await?
            .await?;
        Ok(ack.sequence)
    }
}

/// Milliseconds since the Unix epoch (for records humans read; no decision
/// compares two machines' clocks).
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// How long [`Network::open`] retries a lookup that failed for a reason
/// other than "no such stream" (above the 4–9 s of a Raft election).
pub const OPEN_BUDGET: Duration = Duration::from_secs(20);

/// Runs `op` until it succeeds, `final_error` turns an error into the
/// answer, or [`OPEN_BUDGET`] runs out (then the last error).
pub(crate) async fn retrying<T, E, F, Fut>(
    what: &str,
    mut op: F,
    final_error: impl Fn(&E) -> Option<NetError>,
) -> Result<T, NetError>
where
    E: std::fmt::Display,
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, E>>,
{
    let deadline = Instant::now() + OPEN_BUDGET;
    loop {
        match op().await {
            Ok(v) => return Ok(v),
            Err(e) => {
                if let Some(answer) = final_error(&e) {
                    return Err(answer);
                }
                if Instant::now() >= deadline {
                    return Err(NetError::js(what, e));
                }
                tracing::debug!(error = %e, "{what}: retrying");
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        }
    }
}

/// Runs `op` until it succeeds, the servers say the stream behind it does not
/// exist (→ [`NetError::NotInitialised`]), or [`OPEN_BUDGET`] runs out.
pub(crate) async fn with_retry<T, E, F, Fut>(what: &str, op: F) -> Result<T, NetError>
where
    E: std::error::Error + 'static,
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, E>>,
{
    retrying(what, op, |e: &E| {
        stream_not_found(e).then(|| NetError::NotInitialised { what: what.into() })
    })
    .await
}

/// Creates a bucket, stream or store, sending the request again while the
/// servers do not answer in time (a replicated stream's creation waits for
/// its Raft group, which can outlast one request on a loaded machine) for up
/// to [`OPEN_BUDGET`]. Creating with the same configuration again is
/// harmless: the servers answer with what exists.
async fn create_on_time<T, E, F, Fut>(what: &str, op: F) -> Result<T, NetError>
where
    E: std::fmt::Display,
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, E>>,
{
    // Each create call has its own error type; all say "timed out".
    retrying(what, op, |e: &E| {
        let e = e.to_string();
        (!e.contains("timed out")).then(|| NetError::js(what, e))
    })
    .await
}

/// True when some error in the chain is JetStream's "stream not found".
fn stream_not_found(err: &(dyn std::error::Error + 'static)) -> bool {
    use async_nats::jetstream::context::{GetStreamError, GetStreamErrorKind};
    use async_nats::jetstream::{Error as JsError, ErrorCode};
    let mut next = Some(err);
    while let Some(e) = next {
        if let Some(g) = e.downcast_ref::<GetStreamError>()
            && let GetStreamErrorKind::JetStream(j) = g.kind()
        {
            return j.error_code() == ErrorCode::STREAM_NOT_FOUND;
        }
        if let Some(j) = e.downcast_ref::<JsError>() {
            return j.error_code() == ErrorCode::STREAM_NOT_FOUND;
        }
        next = e.source();
    }
    false
}
