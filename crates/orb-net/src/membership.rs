//! Membership: a node joins with a signed hello, keeps a heartbeat key
//! alive, and moves through `joining -> verifying -> active -> draining ->
//! gone`.
//!
//! Who writes what (ARCHITECTURE.md, "Network"):
//! - the node writes its own record (`joining` with a fresh signed hello, or
//!   `draining`/`gone` when it drains or leaves) and its heartbeat key;
//! - a super node holding the `admit` lease moves `joining` to `verifying`
//!   (checks the hello's signature against the node id, the capacity and
//!   the Orb version) and then to `active`, or to `gone` with the reason;
//! - a super node holding the `reaper` lease moves any node whose heartbeat
//!   key has expired to `gone`.
//!
//! Every state change but the node's own join is a compare-and-set on the
//! record's revision, so concurrent writers never lose each other's change.

use crate::network::now_ms;
use crate::{NetError, Network, NodeId, NodeKey, Timing};
use async_nats::jetstream::kv::{Operation, UpdateErrorKind};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use std::collections::BTreeMap;
use std::sync::Arc;
use tokio::task::JoinHandle;

/// A value signed by a node: the exact JSON text that was signed, who
/// signed it, and the ed25519 signature (hex).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Signed {
    pub body: String,
    pub by: NodeId,
    pub sig: String,
}

impl Signed {
    pub fn sign<T: Serialize>(key: &NodeKey, value: &T) -> Signed {
        let body = serde_json::to_string(value).expect("signed value serialises");
        let sig = key.sign(body.as_bytes());
        Signed {
            body,
            by: key.id().clone(),
            sig,
        }
    }

    /// Checks the signature, then parses the body.
    pub fn open<T: DeserializeOwned>(&self) -> Result<T, NetError> {
        self.by.verify(self.body.as_bytes(), &self.sig)?;
        serde_json::from_str(&self.body)
            .map_err(|e| NetError::Invalid(format!("signed body does not parse: {e}")))
    }
}

/// What a node offers.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Capacity {
    pub cores: u32,
    pub memory_bytes: u64,
    /// Function instances the node runs at once.
    pub instance_slots: u32,
    /// The runtime's engine configuration key (compiled artifacts are only
    /// shareable between nodes with the same key).
    pub engine_key: String,
    pub orb_version: String,
}

impl Capacity {
    /// This machine's cores and memory, with the given slots and engine key.
    pub fn of_this_machine(instance_slots: u32, engine_key: &str) -> Capacity {
        let cores = std::thread::available_parallelism()
            .map(|n| n.get() as u32)
            .unwrap_or(1);
        Capacity {
            cores,
            memory_bytes: total_memory_bytes().unwrap_or(0),
            instance_slots,
            engine_key: engine_key.to_string(),
            orb_version: env!("CARGO_PKG_VERSION").to_string(),
        }
    }
}

fn total_memory_bytes() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// A node's signed introduction.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Hello {
    pub node_id: NodeId,
    /// Free-form `key=value` labels (placement constraints match on them).
    pub attributes: BTreeMap<String, String>,
    pub capacity: Capacity,
    /// Whether the node also runs super-node duties.
    pub super_node: bool,
    pub issued_ms: u64,
}

/// Checks one `key=value` attribute and splits it (the rule is
/// [`orb_core::attribute`]'s).
pub fn parse_attribute(s: &str) -> Result<(String, String), NetError> {
    orb_core::attribute::parse(s).map_err(NetError::Invalid)
}

fn check_attribute(k: &str, v: &str) -> Result<(), NetError> {
    orb_core::attribute::check(k, v).map_err(NetError::Invalid)
}

/// A node's life-cycle state.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "snake_case")]
pub enum NodeState {
    Joining,
    Verifying,
    Active,
    Draining,
    Gone,
}

impl NodeState {
    pub fn as_str(self) -> &'static str {
        match self {
            NodeState::Joining => "joining",
            NodeState::Verifying => "verifying",
            NodeState::Active => "active",
            NodeState::Draining => "draining",
            NodeState::Gone => "gone",
        }
    }
}

/// What the `orb_nodes` bucket holds per node.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct NodeRecord {
    /// The node's signed [`Hello`].
    pub hello: Signed,
    pub state: NodeState,
    /// Why the node is in this state (for `gone`: left, no heartbeat, refused).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Who made the last state change (the node itself or a super node).
    pub changed_by: NodeId,
    pub changed_ms: u64,
}

/// A node as listed: its verified hello, state, and whether its heartbeat
/// key is live right now.
#[derive(Debug, Clone, Serialize)]
pub struct NodeView {
    pub id: NodeId,
    pub hello: Hello,
    pub state: NodeState,
    pub reason: Option<String>,
    pub changed_by: NodeId,
    pub alive: bool,
    /// Its load as its last heartbeat said (`None`: no live heartbeat, or
    /// a node that does not report it).
    pub load: Option<Load>,
}

/// A node's load, sent with each heartbeat (so at most `heartbeat_every`
/// old when read).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Load {
    /// Calls running on the node through the network.
    pub in_flight: u32,
    /// How many it runs at once before it answers busy.
    pub call_slots: u32,
    /// Functions it seeds.
    pub seeding: u32,
    /// The window `functions` covers: since the previous heartbeat,
    /// milliseconds.
    #[serde(default)]
    pub window_ms: u64,
    /// The functions it ran calls of or answered busy for in the window,
    /// by `<hex>` (the scale loop's input: [`crate::scale`]).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub functions: BTreeMap<String, FunctionLoad>,
}

/// One function's calls on one node in one heartbeat window.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct FunctionLoad {
    /// Calls of it that ended in the window (forwarded ones and its own).
    pub calls: u64,
    /// Their total duration, microseconds.
    pub call_us: u64,
    /// Forwarded calls of it answered busy (every call slot was taken).
    pub busy: u64,
}

/// What a node reports its load with (set by [`Member::report_load`]).
type LoadSource = Box<dyn Fn() -> Option<Load> + Send + Sync>;

/// Reads one node's record and its revision.
pub async fn read_record(
    net: &Network,
    id: &NodeId,
) -> Result<Option<(NodeRecord, u64)>, NetError> {
    match net
        .nodes
        .entry(id.as_str())
        .await
        .map_err(|e| NetError::js("read node record", e))?
    {
        Some(e) if e.operation == Operation::Put => {
            let rec: NodeRecord = serde_json::from_slice(&e.value).map_err(|err| {
                NetError::Invalid(format!("node record {id} does not parse: {err}"))
            })?;
            Ok(Some((rec, e.revision)))
        }
        _ => Ok(None),
    }
}

/// Moves a node's record from one of `from` to `to`, by compare-and-set;
/// re-reads and retries when another writer got there first. Returns
/// whether this call made the change.
pub async fn transition(
    net: &Network,
    id: &NodeId,
    from: &[NodeState],
    to: NodeState,
    reason: Option<String>,
    by: &NodeId,
) -> Result<bool, NetError> {
    for _ in 0..8 {
        let Some((mut rec, rev)) = read_record(net, id).await? else {
            return Ok(false);
        };
        if !from.contains(&rec.state) {
            return Ok(false);
        }
        rec.state = to;
        rec.reason = reason.clone();
        rec.changed_by = by.clone();
        rec.changed_ms = now_ms();
        let value = serde_json::to_vec(&rec).expect("record serialises");
        match net.nodes.update(id.as_str(), value.into(), rev).await {
            Ok(_) => return Ok(true),
            Err(e) if e.kind() == UpdateErrorKind::WrongLastRevision => continue,
            Err(e) => return Err(NetError::js("update node record", e)),
        }
    }
    Ok(false)
}

/// Every record in the bucket with its revision, sorted by node id.
pub async fn list_nodes_raw(net: &Network) -> Result<Vec<(NodeId, NodeRecord, u64)>, NetError> {
    let mut keys = net
        .nodes
        .keys()
        .await
        .map_err(|e| NetError::js("list nodes", e))?;
    let mut ids = Vec::new();
    while let Some(k) = keys.next().await {
        let k = k.map_err(|e| NetError::js("list nodes", e))?;
        if let Ok(id) = NodeId::parse(&k) {
            ids.push(id);
        }
    }
    ids.sort();
    let mut out = Vec::new();
    for id in ids {
        if let Some((rec, rev)) = read_record(net, &id).await? {
            out.push((id, rec, rev));
        }
    }
    Ok(out)
}

/// Compare-and-set of one record read at revision `rev`: false when
/// another writer changed it since (the caller looks again next pass).
pub async fn transition_at(
    net: &Network,
    id: &NodeId,
    mut rec: NodeRecord,
    rev: u64,
    to: NodeState,
    reason: Option<String>,
    by: &NodeId,
) -> Result<bool, NetError> {
    rec.state = to;
    rec.reason = reason;
    rec.changed_by = by.clone();
    rec.changed_ms = now_ms();
    let value = serde_json::to_vec(&rec).expect("record serialises");
    match net.nodes.update(id.as_str(), value.into(), rev).await {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == UpdateErrorKind::WrongLastRevision => Ok(false),
        Err(e) => Err(NetError::js("update node record", e)),
    }
}

/// Whether the node's heartbeat key is live.
pub async fn is_alive(net: &Network, id: &NodeId) -> Result<bool, NetError> {
    Ok(last_heartbeat(net, id).await?.is_some())
}

/// A node's live heartbeat, if it has one (a value that does not parse
/// still counts as live, with no load).
pub async fn last_heartbeat(net: &Network, id: &NodeId) -> Result<Option<Heartbeat>, NetError> {
    Ok(net
        .alive
        .get(id.as_str())
        .await
        .map_err(|e| NetError::js("read heartbeat", e))?
        .map(|v| {
            serde_json::from_slice(&v).unwrap_or(Heartbeat {
                seq: 0,
                at_ms: 0,
                load: None,
            })
        }))
}

/// Every node the network knows, gone ones included, sorted by id. A
/// record whose hello does not verify is left out (and logged).
pub async fn list_nodes(net: &Network) -> Result<Vec<NodeView>, NetError> {
    let mut out = Vec::new();
    for (id, rec, _) in list_nodes_raw(net).await? {
        let hello: Hello = match rec.hello.open() {
            Ok(h) => h,
            Err(e) => {
                tracing::warn!(node = %id.short(), error = %e, "node record with a bad hello");
                continue;
            }
        };
        let beat = last_heartbeat(net, &id).await?;
        out.push(NodeView {
            id,
            hello,
            state: rec.state,
            reason: rec.reason,
            changed_by: rec.changed_by,
            alive: beat.is_some(),
            load: beat.and_then(|b| b.load),
        });
    }
    Ok(out)
}

/// What a heartbeat key holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Heartbeat {
    pub seq: u64,
    pub at_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub load: Option<Load>,
}

/// A node that has joined: it keeps its heartbeat alive until dropped or
/// told to leave. Dropping it without [`Member::leave`] is a crash as the
/// network sees it: the heartbeat stops and the reaper marks it gone.
pub struct Member {
    net: Network,
    key: Arc<NodeKey>,
    task: JoinHandle<()>,
    load: Arc<std::sync::OnceLock<LoadSource>>,
}

impl Drop for Member {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Member {
    /// Joins: writes the first heartbeat, then the record (`joining`, a
    /// fresh signed hello), then keeps the heartbeat alive. If the record
    /// is ever found `gone` or missing while this node still runs (a
    /// partition longer than the heartbeat TTL), the node joins again.
    pub async fn join(
        net: Network,
        key: Arc<NodeKey>,
        attributes: BTreeMap<String, String>,
        capacity: Capacity,
        super_node: bool,
        timing: Timing,
    ) -> Result<Member, NetError> {
        timing.check()?;
        for (k, v) in &attributes {
            check_attribute(k, v)?;
        }
        let mut seq = 0;
        heartbeat(&net, &key, &timing, &mut seq, None).await?;
        let load: Arc<std::sync::OnceLock<LoadSource>> = Arc::default();
        let make_record = {
            let key = key.clone();
            move || NodeRecord {
                hello: Signed::sign(
                    &key,
                    &Hello {
                        node_id: key.id().clone(),
                        attributes: attributes.clone(),
                        capacity: capacity.clone(),
                        super_node,
                        issued_ms: now_ms(),
                    },
                ),
                state: NodeState::Joining,
                reason: None,
                changed_by: key.id().clone(),
                changed_ms: now_ms(),
            }
        };
        put_record(&net, key.id(), &make_record()).await?;
        tracing::info!(node = %key.id().short(), "joined the network");
        let task = {
            let net = net.clone();
            let key = key.clone();
            let load = load.clone();
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(timing.heartbeat_every).await;
                    let now = load.get().and_then(|f| f());
                    if let Err(e) = heartbeat(&net, &key, &timing, &mut seq, now).await {
                        tracing::warn!(error = %e, "heartbeat not written");
                        continue;
                    }
                    match read_record(&net, key.id()).await {
                        Ok(Some((rec, _))) if rec.state != NodeState::Gone => {}
                        Ok(_) => {
                            tracing::warn!(
                                "this node was marked gone while running; joining again"
                            );
                            if let Err(e) = put_record(&net, key.id(), &make_record()).await {
                                tracing::warn!(error = %e, "rejoin failed");
                            }
                        }
                        Err(e) => tracing::debug!(error = %e, "own record not read"),
                    }
                }
            })
        };
        Ok(Member {
            net,
            key,
            task,
            load,
        })
    }

    /// Sends `load()` with every heartbeat from now on (set once; a later
    /// call is ignored).
    pub fn report_load(&self, load: impl Fn() -> Option<Load> + Send + Sync + 'static) {
        let _ = self.load.set(Box::new(load));
    }

    pub fn id(&self) -> &NodeId {
        self.key.id()
    }

    /// Marks this node `draining` (it keeps its heartbeat; seeding moves
    /// elsewhere once seeding exists).
    pub async fn drain(&self) -> Result<bool, NetError> {
        transition(
            &self.net,
            self.key.id(),
            &[NodeState::Joining, NodeState::Verifying, NodeState::Active],
            NodeState::Draining,
            Some("drained".into()),
            self.key.id(),
        )
        .await
    }

    /// Leaves cleanly: stops the heartbeat, marks the record `gone`
    /// ("left") and removes the heartbeat key.
    pub async fn leave(self) -> Result<(), NetError> {
        self.task.abort();
        transition(
            &self.net,
            self.key.id(),
            &[
                NodeState::Joining,
                NodeState::Verifying,
                NodeState::Active,
                NodeState::Draining,
            ],
            NodeState::Gone,
            Some("left".into()),
            self.key.id(),
        )
        .await?;
        self.net
            .alive
            .delete(self.key.id().as_str())
            .await
            .map_err(|e| NetError::js("remove heartbeat", e))
    }
}

async fn put_record(net: &Network, id: &NodeId, rec: &NodeRecord) -> Result<(), NetError> {
    let value = serde_json::to_vec(rec).expect("record serialises");
    net.nodes
        .put(id.as_str(), value.into())
        .await
        .map(|_| ())
        .map_err(|e| NetError::js("write node record", e))
}

async fn heartbeat(
    net: &Network,
    key: &NodeKey,
    timing: &Timing,
    seq: &mut u64,
    load: Option<Load>,
) -> Result<(), NetError> {
    *seq += 1;
    let value = serde_json::to_vec(&Heartbeat {
        seq: *seq,
        at_ms: now_ms(),
        load,
    })
    .expect("heartbeat serialises");
    net.kv_put_ttl(
        &net.alive,
        key.id().as_str(),
        value.into(),
        timing.heartbeat_ttl,
        None,
    )
    .await
    .map(|_| ())
    .map_err(|e| NetError::js("write heartbeat", e))
}

/// The admission check a super node runs on a `joining` node's hello.
pub fn verify_hello(id: &NodeId, rec: &NodeRecord) -> Result<Hello, String> {
    if &rec.hello.by != id {
        return Err(format!(
            "hello signed by {} is stored under {}",
            rec.hello.by.short(),
            id.short()
        ));
    }
    let hello: Hello = rec.hello.open().map_err(|e| e.to_string())?;
    if &hello.node_id != id {
        return Err("hello names another node id".into());
    }
    for (k, v) in &hello.attributes {
        check_attribute(k, v).map_err(|e| e.to_string())?;
    }
    if hello.capacity.instance_slots == 0 {
        return Err("capacity: instance_slots is 0".into());
    }
    let ours = env!("CARGO_PKG_VERSION");
    if major_minor(&hello.capacity.orb_version) != major_minor(ours) {
        return Err(format!(
            "Orb {} cannot join a network of Orb {ours}: versions must share major.minor",
            hello.capacity.orb_version
        ));
    }
    Ok(hello)
}

fn major_minor(v: &str) -> (String, String) {
    let mut parts = v.split('.');
    (
        parts.next().unwrap_or("").to_string(),
        parts.next().unwrap_or("").to_string(),
    )
}
