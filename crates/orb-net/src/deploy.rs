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
    fn check(&self) -> Result<(), NetError> {
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
    /// The node that stored the bytes and announced them.
    pub announced_by: NodeId,
    pub at_ms: u64,
}

/// An announcement read from the stream, with its stream sequence.
#[derive(Debug, Clone)]
pub struct Received {
    pub seq: u64,
    pub announcement: Announcement,
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
    let msg = match stream
        .get_last_raw_message_by_subject(&names::announce_deploy(&id.hex()))
        .await
    {
        Ok(m) => m,
        Err(e) if e.kind() == LastRawMessageErrorKind::NoMessageFound => return Ok(None),
        Err(e) => return Err(NetError::js(format!("read the announcement of {id}"), e)),
    };
    let signed: Signed =
        serde_json::from_slice(&msg.payload).map_err(|e| NetError::Invalid(e.to_string()))?;
    let a: Announcement = signed.open()?;
    if a.announced_by != signed.by || &a.function != id {
        return Err(NetError::Invalid(format!(
            "the announcement of {id} is not signed by its announcer or names another function"
        )));
    }
    Ok(Some(a))
}

/// A node's view of the announcement stream: a durable consumer named
/// after the node, so the server remembers what it has read across
/// restarts. Consumers of nodes that stay away 30 days are removed.
pub struct AnnouncementFeed {
    consumer: consumer::Consumer<consumer::pull::Config>,
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
        Ok(AnnouncementFeed { consumer })
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
            let parsed = serde_json::from_slice::<Signed>(&m.payload)
                .map_err(|e| NetError::Invalid(e.to_string()))
                .and_then(|s| {
                    let a: Announcement = s.open()?;
                    if a.announced_by != s.by {
                        return Err(NetError::Invalid("announced_by is not the signer".into()));
                    }
                    Ok(a)
                });
            match parsed {
                Ok(announcement) => out.push(Received { seq, announcement }),
                Err(e) => tracing::warn!(seq, error = %e, "announcement skipped"),
            }
            m.double_ack()
                .await
                .map_err(|e| NetError::js("acknowledge announcement", e))?;
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
