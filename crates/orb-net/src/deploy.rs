//! Deploy and announce: a component's bytes go into the `orb_components`
//! object store under their `sha256:<hex>` id, then a signed announcement
//! goes on the `ORB_ANNOUNCE` stream. Nodes read announcements through
//! their own durable consumer, so a node that was offline catches up from
//! where it stopped. A seeder fetches the bytes and re-hashes them before
//! accepting them: bytes that do not hash to their id are refused and a
//! report goes on `ORB_REPORTS`.

use crate::membership::Signed;
use crate::network::{PUBLISH_BUDGET, now_ms};
use crate::{NetError, Network, NodeId, NodeKey, names};
use async_nats::jetstream::consumer::{self, AckPolicy, DeliverPolicy};
use async_nats::jetstream::object_store::GetErrorKind;
use futures_util::StreamExt;
use orb_core::FunctionId;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;
use tokio::io::AsyncReadExt;

/// Where a function may be seeded and how many copies it wants.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Placement {
    pub min_seeders: u32,
    pub max_seeders: u32,
    /// Attributes a seeder must carry (`key=value`, all must match).
    #[serde(default)]
    pub required: BTreeMap<String, String>,
}

impl Default for Placement {
    fn default() -> Self {
        Placement {
            min_seeders: 2,
            max_seeders: 5,
            required: BTreeMap::new(),
        }
    }
}

impl Placement {
    pub fn check(&self) -> Result<(), NetError> {
        if self.min_seeders == 0 || self.min_seeders > self.max_seeders {
            return Err(NetError::Invalid(format!(
                "placement: need 1 <= min_seeders <= max_seeders (got {} and {})",
                self.min_seeders, self.max_seeders
            )));
        }
        Ok(())
    }

    /// Whether a node with `attributes` may seed under this placement.
    pub fn admits(&self, attributes: &BTreeMap<String, String>) -> bool {
        self.required
            .iter()
            .all(|(k, v)| attributes.get(k) == Some(v))
    }
}

/// A deploy announcement.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Announcement {
    pub function: FunctionId,
    /// The deploying account.
    pub owner: String,
    pub size: u64,
    pub exports: Vec<String>,
    pub placement: Placement,
    /// The node that announced them: the super node that validated the
    /// bytes and ran the sample calls.
    pub announced_by: NodeId,
    pub at_ms: u64,
    /// The exports with their WIT signatures (what `GET /v1/functions`
    /// lists on a node that does not hold the function).
    #[serde(default)]
    pub signatures: Vec<orb_core::ExportInfo>,
    /// The sample calls run at deploy, one per export (seed 001's
    /// "complexity": the fuel they took).
    #[serde(default)]
    pub samples: Vec<orb_core::SampleCall>,
}

impl Announcement {
    /// The most fuel any sample call took: the function's complexity.
    pub fn complexity(&self) -> u64 {
        self.samples.iter().map(|s| s.fuel).max().unwrap_or(0)
    }
}

/// The owner withdraws a function from the network (`DELETE
/// /v1/functions/{id}` on a networked node): every node drops the owner's
/// claim on it, and a function no account owns any more is no longer
/// seeded. Uploading it again announces it again.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Deprecation {
    pub function: FunctionId,
    /// The account that withdraws it.
    pub owner: String,
    /// The node where the owner asked (it checked the owner's token).
    pub announced_by: NodeId,
    pub at_ms: u64,
}

/// What the announcement stream carries.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    Deploy(Announcement),
    Deprecate(Deprecation),
}

impl Event {
    pub fn function(&self) -> &FunctionId {
        match self {
            Event::Deploy(a) => &a.function,
            Event::Deprecate(d) => &d.function,
        }
    }
}

/// An announcement read from the stream, with its stream sequence.
#[derive(Debug, Clone)]
pub struct Received {
    pub seq: u64,
    pub event: Event,
}

impl Received {
    /// The deploy announcement, if this is one.
    pub fn announcement(&self) -> Option<&Announcement> {
        match &self.event {
            Event::Deploy(a) => Some(a),
            Event::Deprecate(_) => None,
        }
    }
}

/// What a seeder publishes when fetched bytes do not match their id.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct HashMismatchReport {
    pub expected: FunctionId,
    pub actual: FunctionId,
    pub reporter: NodeId,
    pub at_ms: u64,
}

fn object_name(id: &FunctionId) -> String {
    id.to_string()
}

/// Stores `bytes` under their id (skipped when the store already holds an
/// object under that id whose own digest matches) and announces them.
/// Returns the announcement and its stream sequence. Validation (that the
/// bytes are a component this network runs) is the caller's, as on a
/// single node.
pub async fn deploy(
    net: &Network,
    key: &NodeKey,
    bytes: &[u8],
    owner: &str,
    exports: Vec<String>,
    placement: Placement,
) -> Result<(Announcement, u64), NetError> {
    placement.check()?;
    if owner.is_empty() {
        return Err(NetError::Invalid("deploy: the owner is empty".into()));
    }
    let id = FunctionId::of(bytes);
    put_component(net, &id, bytes).await?;
    let announcement = Announcement {
        function: id,
        owner: owner.to_string(),
        size: bytes.len() as u64,
        exports,
        placement,
        announced_by: key.id().clone(),
        at_ms: now_ms(),
        signatures: Vec::new(),
        samples: Vec::new(),
    };
    let seq = announce(net, key, &announcement, PUBLISH_BUDGET).await?;
    Ok((announcement, seq))
}

/// Puts `bytes` in the component store under `id` as they are (no check
/// that they hash to `id`: [`deploy`] computes the id; this is also how a
/// test plants tampered bytes).
pub async fn put_component(net: &Network, id: &FunctionId, bytes: &[u8]) -> Result<(), NetError> {
    let name = object_name(id);
    // The same bytes already stored under this name (the object's digest,
    // checked when it was written, matches): re-putting 18 MB is waste.
    if let Ok(info) = net.components.info(&name).await
        && !info.deleted
        && info.digest.as_deref() == Some(digest_header(bytes).as_str())
    {
        return Ok(());
    }
    let mut reader = bytes;
    net.components
        .put(name.as_str(), &mut reader)
        .await
        .map(|_| ())
        .map_err(|e| NetError::js(format!("store {id}"), e))
}

/// The object store's digest header for `bytes` (`SHA-256=<base64url>`).
fn digest_header(bytes: &[u8]) -> String {
    use base64::Engine;
    let raw = hex::decode(FunctionId::of(bytes).hex()).expect("hex of a digest");
    format!(
        "SHA-256={}",
        base64::engine::general_purpose::URL_SAFE.encode(raw)
    )
}

/// Publishes a signed announcement, retrying with the same message id
/// until it is acknowledged (by a quorum of the stream's replicas) or
/// `budget` runs out. Returns its stream sequence.
pub async fn announce(
    net: &Network,
    key: &NodeKey,
    announcement: &Announcement,
    budget: Duration,
) -> Result<u64, NetError> {
    announcement.placement.check()?;
    let signed = Signed::sign(key, announcement);
    let payload = serde_json::to_vec(&signed).expect("announcement serialises");
    // The id names this exact announcement: a retry reuses it, a new
    // announcement of the same function (new time) gets a new one.
    let msg_id = format!("deploy-{}", &FunctionId::of(&payload).hex()[..32]);
    let ack = net
        .publish_acked(
            names::announce_deploy(&announcement.function.hex()),
            &msg_id,
            payload.into(),
            budget,
        )
        .await?;
    Ok(ack.sequence)
}

/// Publishes a signed deprecation on the announcement stream (same
/// guarantees as [`announce`]: acknowledged by a quorum, retried on a time
/// budget with one message id). Returns its stream sequence.
pub async fn deprecate(
    net: &Network,
    key: &NodeKey,
    deprecation: &Deprecation,
    budget: Duration,
) -> Result<u64, NetError> {
    let signed = Signed::sign(key, deprecation);
    let payload = serde_json::to_vec(&signed).expect("deprecation serialises");
    let msg_id = format!("deprecate-{}", &FunctionId::of(&payload).hex()[..32]);
    let ack = net
        .publish_acked(
            names::announce_deprecate(&deprecation.function.hex()),
            &msg_id,
            payload.into(),
            budget,
        )
        .await?;
    Ok(ack.sequence)
}

/// Fetches a function's bytes and re-hashes them. Bytes that hash to
/// another id are refused ([`NetError::HashMismatch`]) and reported on
/// `orb.report.hash_mismatch`, signed by `reporter`.
pub async fn fetch_verified(
    net: &Network,
    reporter: &NodeKey,
    id: &FunctionId,
) -> Result<Vec<u8>, NetError> {
    let mut object = match net.components.get(object_name(id)).await {
        Ok(o) => o,
        Err(e) if e.kind() == GetErrorKind::NotFound => {
            return Err(NetError::FunctionNotFound(id.clone()));
        }
        Err(e) => return Err(NetError::js(format!("fetch {id}"), e)),
    };
    let mut bytes = Vec::new();
    object
        .read_to_end(&mut bytes)
        .await
        .map_err(|e| NetError::js(format!("read {id}"), e))?;
    let actual = FunctionId::of(&bytes);
    if &actual != id {
        let report = HashMismatchReport {
            expected: id.clone(),
            actual: actual.clone(),
            reporter: reporter.id().clone(),
            at_ms: now_ms(),
        };
        let payload = serde_json::to_vec(&Signed::sign(reporter, &report)).expect("report");
        let msg_id = format!("mismatch-{}", &FunctionId::of(&payload).hex()[..32]);
        if let Err(e) = net
            .publish_acked(
                names::REPORT_HASH_MISMATCH.into(),
                &msg_id,
                payload.into(),
                PUBLISH_BUDGET,
            )
            .await
        {
            tracing::warn!(error = %e, function = %id, "hash mismatch not reported");
        }
        tracing::warn!(expected = %id, %actual, "fetched bytes refused: hash mismatch");
        return Err(NetError::HashMismatch {
            expected: id.clone(),
            actual,
        });
    }
    Ok(bytes)
}

/// The latest deploy announcement of a function (its current placement),
/// if any, with its signature checked.
pub async fn latest_announcement(
    net: &Network,
    id: &FunctionId,
) -> Result<Option<Announcement>, NetError> {
    use async_nats::jetstream::stream::LastRawMessageErrorKind;
    let stream = crate::network::with_retry(names::ANNOUNCE_STREAM, || {
        net.js.get_stream(names::ANNOUNCE_STREAM)
    })
    .await?;
    let last = |subject: String| {
        let stream = &stream;
        async move {
            match stream.get_last_raw_message_by_subject(&subject).await {
                Ok(m) => Ok(Some(m)),
                Err(e) if e.kind() == LastRawMessageErrorKind::NoMessageFound => Ok(None),
                Err(e) => Err(NetError::js(format!("read the announcements of {id}"), e)),
            }
        }
    };
    let Some(msg) = last(names::announce_deploy(&id.hex())).await? else {
        return Ok(None);
    };
    let signed: Signed =
        serde_json::from_slice(&msg.payload).map_err(|e| NetError::Invalid(e.to_string()))?;
    let a: Announcement = signed.open()?;
    if a.announced_by != signed.by || &a.function != id {
        return Err(NetError::Invalid(format!(
            "the announcement of {id} is not signed by its announcer or names another function"
        )));
    }
    // Withdrawn since: its owner deprecated it after this deploy. (Another
    // account's later deprecation leaves this owner's claim.)
    if let Some(d) = last(names::announce_deprecate(&id.hex())).await?
        && d.sequence > msg.sequence
    {
        let signed: Signed =
            serde_json::from_slice(&d.payload).map_err(|e| NetError::Invalid(e.to_string()))?;
        let d: Deprecation = signed.open()?;
        if d.owner == a.owner {
            return Ok(None);
        }
    }
    Ok(Some(a))
}

/// A node's view of the announcement stream: a durable consumer named
/// after the node, so the server remembers what it has read across
/// restarts. Consumers of nodes that stay away 30 days are removed.
pub struct AnnouncementFeed {
    consumer: consumer::Consumer<consumer::pull::Config>,
    /// A durable feed acknowledges what it read; a replay does not.
    durable: bool,
}

/// How long a node may stay offline and still catch up where it stopped
/// (after that its consumer is removed and it reads the stream from the start).
pub const FEED_INACTIVE: Duration = Duration::from_secs(30 * 24 * 3600);

impl AnnouncementFeed {
    pub async fn open(net: &Network, node: &NodeId) -> Result<AnnouncementFeed, NetError> {
        let stream = crate::network::with_retry(names::ANNOUNCE_STREAM, || {
            net.js.get_stream(names::ANNOUNCE_STREAM)
        })
        .await?;
        let name = names::announce_consumer(node);
        let config = consumer::pull::Config {
            durable_name: Some(name.clone()),
            deliver_policy: DeliverPolicy::All,
            ack_policy: AckPolicy::Explicit,
            filter_subject: names::ANNOUNCE_SUBJECTS.into(),
            inactive_threshold: FEED_INACTIVE,
            ..Default::default()
        };
        // Creating a consumer needs the stream's leader: retried like a lookup.
        let consumer = crate::network::with_retry("open announcement consumer", || {
            stream.get_or_create_consumer(&name, config.clone())
        })
        .await?;
        Ok(AnnouncementFeed {
            consumer,
            durable: true,
        })
    }

    /// Everything the stream holds, in order, from the start, without
    /// moving any node's place in it: what a node replays at start to know
    /// every function announced before it stopped, not only what it held.
    /// Read again from the start while the servers fail to answer (a
    /// stream leader being elected), for up to the open budget.
    pub async fn replay_all(net: &Network) -> Result<Vec<Received>, NetError> {
        crate::network::retrying(
            "replay the announcements",
            || async { Self::replay(net).await?.catch_up().await },
            |e: &NetError| match e {
                NetError::NotInitialised { what } => {
                    Some(NetError::NotInitialised { what: what.clone() })
                }
                _ => None,
            },
        )
        .await
    }

    /// An ephemeral consumer of the whole stream (removed by the server a
    /// minute after its last read): see [`AnnouncementFeed::replay_all`].
    async fn replay(net: &Network) -> Result<AnnouncementFeed, NetError> {
        let stream = crate::network::with_retry(names::ANNOUNCE_STREAM, || {
            net.js.get_stream(names::ANNOUNCE_STREAM)
        })
        .await?;
        let config = consumer::pull::Config {
            deliver_policy: DeliverPolicy::All,
            ack_policy: AckPolicy::None,
            filter_subject: names::ANNOUNCE_SUBJECTS.into(),
            inactive_threshold: Duration::from_secs(60),
            ..Default::default()
        };
        let consumer = crate::network::with_retry("open an announcement replay", || {
            stream.create_consumer(config.clone())
        })
        .await?;
        Ok(AnnouncementFeed {
            consumer,
            durable: false,
        })
    }

    /// Reads what is waiting (up to `max`), acknowledging each so it is not
    /// read again. Announcements whose signature does not verify are
    /// acknowledged and skipped (logged).
    pub async fn next_batch(&self, max: usize) -> Result<Vec<Received>, NetError> {
        let mut messages = self
            .consumer
            .fetch()
            .max_messages(max)
            .messages()
            .await
            .map_err(|e| NetError::js("fetch announcements", e))?;
        let mut out = Vec::new();
        while let Some(m) = messages.next().await {
            let m = m.map_err(|e| NetError::js("fetch announcements", e))?;
            let seq = m
                .info()
                .map(|i| i.stream_sequence)
                .map_err(|e| NetError::js("announcement metadata", e))?;
            let deprecation = m.subject.starts_with(names::ANNOUNCE_DEPRECATE_PREFIX);
            let parsed = serde_json::from_slice::<Signed>(&m.payload)
                .map_err(|e| NetError::Invalid(e.to_string()))
                .and_then(|s| {
                    let (event, by) = if deprecation {
                        let d: Deprecation = s.open()?;
                        let by = d.announced_by.clone();
                        (Event::Deprecate(d), by)
                    } else {
                        let a: Announcement = s.open()?;
                        let by = a.announced_by.clone();
                        (Event::Deploy(a), by)
                    };
                    if by != s.by {
                        return Err(NetError::Invalid("announced_by is not the signer".into()));
                    }
                    Ok(event)
                });
            match parsed {
                Ok(event) => out.push(Received { seq, event }),
                Err(e) => tracing::warn!(seq, error = %e, "announcement skipped"),
            }
            if self.durable {
                m.double_ack()
                    .await
                    .map_err(|e| NetError::js("acknowledge announcement", e))?;
            }
        }
        Ok(out)
    }

    /// Reads everything waiting, batch by batch, until none is left.
    pub async fn catch_up(&self) -> Result<Vec<Received>, NetError> {
        let mut all = Vec::new();
        loop {
            let batch = self.next_batch(256).await?;
            if batch.is_empty() {
                return Ok(all);
            }
            all.extend(batch);
        }
    }
}
