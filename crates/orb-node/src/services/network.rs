//! The node on a network (`orb serve --network URLS [--super]`, cargo
//! feature `network`): joining, leaving, the network-wide directory of
//! accounts and revocations, and what `/v1/network/*` reads.
//!
//! This is glue between the services and `orb-net` (which knows NATS and
//! nothing of the node). A node built without the feature, or started
//! without `--network`, is a single node: every function here is then a
//! no-op or answers `not_networked`, and nothing links NATS.
//!
//! Accounts are network-wide: the network's root public key verifies every
//! token on every node; only super nodes hold the private half, so only
//! they mint (accounts, public tokens, rotations). Account records and
//! revocations are written to the network first and mirrored into every
//! node's own store by [`follow`]; a node serves only once it has mirrored
//! what the network held when it started.

use crate::services::net::not_networked;
use crate::{ApiError, Node};

#[cfg(feature = "network")]
pub(crate) use joined::{Routed, connect, follow, join, leave};

/// `GET /v1/network/functions/{id}`: a function's placement and seeders,
/// for an account that owns it.
pub async fn function(
    node: &Node,
    account: &str,
    id: &orb_core::FunctionId,
) -> Result<serde_json::Value, ApiError> {
    #[cfg(feature = "network")]
    if node.network.is_some() {
        return joined::function_view(node, account, id).await;
    }
    let _ = (node, account, id);
    Err(not_networked())
}

#[cfg(feature = "network")]
mod joined {
    use crate::caller::Token;
    use crate::config::NetworkSettings;
    use crate::services::calls::{
        InvokeRequest, Prepared, Ready, RunContext, execute, prepare_forwarded,
    };
    use crate::services::net::{self, Joined, Seeding, unavailable};
    use crate::services::placement::{Executor, Local};
    use crate::services::{accounts, functions};
    use crate::{ApiError, Node};
    use anyhow::Context as _;
    use orb_auth::Authority;
    use orb_core::{Account, Activation, ErrorCode, FunctionId, OrbError};
    use orb_net::control::{ControlRequest, DrainReply};
    use orb_net::deploy::{AnnouncementFeed, Placement};
    use orb_net::directory::Change;
    use orb_net::inventory;
    use orb_net::rpc::{self, Incoming, RequestFailed, Served};
    use orb_net::scale;
    use orb_net::{
        Capacity, Directory, Member, NetError, Network, NodeKey, NodeState, SuperNode, Timing,
        names,
    };
    use serde::{Deserialize, Serialize};
    use std::collections::{BTreeMap, BTreeSet, HashMap};
    use std::path::Path;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    /// Connects to the network, checks it is initialised, and builds the
    /// token authority from its root key: the private half for a super node
    /// (`settings.root_key`, which must match the network's public half),
    /// the public half alone for a node.
    pub(crate) async fn connect(
        settings: &NetworkSettings,
        data_dir: &Path,
        max_instances: u32,
    ) -> anyhow::Result<(Joined, Authority)> {
        let mut attributes = BTreeMap::new();
        for a in &settings.attributes {
            let (k, v) = orb_net::membership::parse_attribute(a)?;
            attributes.insert(k, v);
        }
        std::fs::create_dir_all(data_dir)
            .with_context(|| format!("cannot create data dir {}", data_dir.display()))?;
        let key = Arc::new(NodeKey::load_or_create(data_dir)?);
        let client = orb_net::access::connect_member(
            &settings.urls,
            &format!("orb-node-{}", key.id().short()),
            settings.creds.as_deref(),
            settings.super_node,
        )
        .await?;
        let net = Network::open(client).await?;
        let public = Directory::root_public_key(&net)
            .await?
            .context("the network has no root key yet: run `orb network init --network …` once")?;
        let auth = if settings.super_node {
            let path = settings.root_key.as_ref().context(
                "a super node needs the network's root key: pass --network-key FILE (written by `orb network init`)",
            )?;
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read the network key {}", path.display()))?;
            let auth = Authority::from_private_key(&text)
                .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
            anyhow::ensure!(
                auth.public_key_text() == public,
                "{} is not this network's root key (its public half is {}, the network's is {public})",
                path.display(),
                auth.public_key_text()
            );
            auth
        } else {
            Authority::from_public_key(&public).map_err(|e| anyhow::anyhow!("{e}"))?
        };
        scale_policy(settings).check()?;
        tracing::info!(node = %key.id().short(), super_node = settings.super_node, "connected to the network");
        let caller = rpc::Caller::start(&net).await?;
        Ok((
            Joined {
                net,
                key,
                settings: settings.clone(),
                attributes,
                timing: Timing::default(),
                caller,
                member: Default::default(),
                duties: Default::default(),
                mirror: Default::default(),
                seeding: Default::default(),
                window: Default::default(),
                known: Default::default(),
                in_flight: AtomicUsize::new(0),
                saturated: tokio::sync::watch::channel(false).0,
                draining: Default::default(),
                slots: match settings.call_slots {
                    0 => max_instances as usize,
                    n => n,
                },
                tasks: Default::default(),
            },
            auth,
        ))
    }

    /// Mirrors the network's accounts and revocations into this node's
    /// store and authority; returns once the snapshot is applied, then
    /// keeps applying changes in the background.
    pub(crate) async fn follow(node: &Arc<Node>) -> anyhow::Result<()> {
        let joined = node.network.as_ref().expect("networked");
        let (tx, mut rx) = tokio::sync::mpsc::channel(256);
        let net = joined.net.clone();
        tokio::spawn(async move {
            if let Err(e) = Directory::follow(net, tx).await {
                tracing::error!(error = %e, "the network's directory cannot be followed");
            }
        });
        // The snapshot, before serving.
        loop {
            match rx.recv().await {
                Some(Some(change)) => apply(node, change).await?,
                Some(None) => break,
                None => anyhow::bail!("the network's directory could not be read"),
            }
        }
        let task = {
            let node = node.clone();
            tokio::spawn(async move {
                while let Some(Some(change)) = rx.recv().await {
                    if let Err(e) = apply(&node, change).await {
                        tracing::error!(error = %e, "a directory change was not applied");
                    }
                }
            })
        };
        *joined.mirror.lock().expect("mirror lock") = Some(task);
        Ok(())
    }

    async fn apply(node: &Node, change: Change) -> anyhow::Result<()> {
        match change {
            Change::Account { id, record } => {
                let account: Account = serde_json::from_slice(&record)
                    .with_context(|| format!("account record {id} does not parse"))?;
                anyhow::ensure!(account.id == id, "account record {id} names {}", account.id);
                accounts::mirror_account(node, account)
                    .await
                    .map_err(|e| anyhow::anyhow!("{}", e.0))?;
            }
            Change::Revoked { id } => {
                node.store
                    .add_revocations(std::slice::from_ref(&id))
                    .await?;
                node.auth.revoke([id]);
            }
            Change::Record { kind, key, value } if kind == net::WHITELIST_RECORD => {
                let (account, ns) = key
                    .split_once('/')
                    .with_context(|| format!("whitelist record `{key}`"))?;
                let ids: Vec<FunctionId> = match value {
                    Some(v) => serde_json::from_slice(&v)
                        .with_context(|| format!("whitelist record `{key}` does not parse"))?,
                    None => Vec::new(),
                };
                node.store.set_whitelist(account, ns, &ids).await?;
            }
            Change::Record { kind, key, value } => {
                match net::SHARED_RECORDS.iter().find(|k| k.as_str() == kind) {
                    Some(k) => {
                        node.store
                            .put_records(vec![(*k, key, value.map(|v| v.to_vec()))])
                            .await?
                    }
                    None => tracing::warn!(%kind, "a shared record of an unknown kind is skipped"),
                }
            }
        }
        Ok(())
    }

    /// Joins (hello, heartbeats), serves the functions this node already
    /// holds, follows the announcements and, on a super node, starts its
    /// duties and the fallback service.
    pub(crate) async fn join(node: &Arc<Node>) -> anyhow::Result<()> {
        let joined = node.network.as_ref().expect("networked");
        let capacity =
            Capacity::of_this_machine(node.config.max_instances, node.runtime.engine_key());
        let member = Member::join(
            joined.net.clone(),
            joined.key.clone(),
            joined.attributes.clone(),
            capacity,
            joined.settings.super_node,
            joined.timing.clone(),
        )
        .await?;
        let weak = Arc::downgrade(node);
        member.report_load(move || {
            let node = weak.upgrade()?;
            let joined = node.network.as_ref()?;
            let (window_ms, functions) = joined.take_window();
            Some(orb_net::Load {
                in_flight: joined.in_flight.load(Ordering::Relaxed) as u32,
                call_slots: joined.slots as u32,
                seeding: joined.seeding.lock().expect("seeding lock").len() as u32,
                window_ms,
                functions,
            })
        });
        *joined.member.lock().await = Some(member);
        if joined.settings.super_node {
            let duties = SuperNode::start(
                joined.net.clone(),
                joined.key.id().clone(),
                joined.timing.clone(),
            )?;
            *joined.duties.lock().await = Some(duties);
        }
        // Every function announced so far, with its owners (a node that
        // restarts resumes its feed where it stopped, so it would otherwise
        // know only what it holds): calls and listings through this node
        // find them.
        for r in AnnouncementFeed::replay_all(&joined.net).await? {
            match r.event {
                orb_net::deploy::Event::Deploy(a) => remember_announced(joined, &a),
                orb_net::deploy::Event::Deprecate(d) => {
                    let mut known = joined.known.lock().expect("known lock");
                    if let Some(k) = known.get_mut(&d.function) {
                        k.owners.remove(&d.owner);
                        if k.owners.is_empty() {
                            known.remove(&d.function);
                        }
                    }
                }
            }
        }
        // What this node seeded when it stopped, it serves again, if the
        // function's latest placement still admits it.
        let mut held = BTreeSet::new();
        for account in node.store.list_accounts().await? {
            for f in node.store.list_functions(&account.id).await? {
                remember(joined, &f.hash, &account.id, None);
                held.insert(f.hash);
            }
        }
        for id in held {
            match orb_net::deploy::latest_announcement(&joined.net, &id).await {
                Ok(Some(a)) if a.placement.admits(&joined.attributes) => {
                    remember_announced(joined, &a);
                    if let Err(e) = seed(node, &id).await {
                        tracing::warn!(function = %id, error = %e.0, "not served again");
                    }
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(function = %id, error = %e, "placement not read"),
            }
        }
        let feed = AnnouncementFeed::open(&joined.net, joined.key.id()).await?;
        let mut tasks = vec![
            tokio::spawn(follow_announcements(node.clone(), feed)),
            tokio::spawn(answer_seed_requests(node.clone())),
            tokio::spawn(answer_control(node.clone())),
        ];
        if joined.settings.super_node {
            tasks.push(tokio::spawn(answer_validations(node.clone())));
            tasks.push(tokio::spawn(repair_duty(node.clone())));
            tasks.push(tokio::spawn(answer_calls(
                node.clone(),
                names::FALLBACK_SUBJECTS.to_string(),
                names::SUPERS_QUEUE,
                true,
                None,
            )));
        }
        joined.tasks.lock().expect("tasks lock").extend(tasks);
        Ok(())
    }

    /// Answers the requests sent to this node alone on `subject` (it
    /// subscribes again if its subscription fails): `answer` makes each
    /// reply, in a task of its own.
    async fn serve_own<F, Fut>(node: Arc<Node>, subject: String, what: &'static str, answer: F)
    where
        F: Fn(Arc<Node>, bytes::Bytes) -> Fut,
        Fut: std::future::Future<Output = Vec<u8>> + Send + 'static,
    {
        let queue = node
            .network
            .as_ref()
            .expect("networked")
            .key
            .id()
            .as_str()
            .to_string();
        serve_in(node, subject, queue, what, answer).await
    }

    /// [`serve_own`], for requests shared with the other members of
    /// `queue` (each reaches one of them).
    async fn serve_in<F, Fut>(
        node: Arc<Node>,
        subject: String,
        queue: String,
        what: &'static str,
        answer: F,
    ) where
        F: Fn(Arc<Node>, bytes::Bytes) -> Fut,
        Fut: std::future::Future<Output = Vec<u8>> + Send + 'static,
    {
        let joined = node.network.as_ref().expect("networked");
        loop {
            let mut sub = match Served::subscribe(&joined.net, &subject, &queue).await {
                Ok(sub) => sub,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot take {what} requests; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            };
            while let Some(msg) = sub.next().await {
                let reply = answer(node.clone(), msg.payload.clone());
                let net = joined.net.clone();
                tokio::spawn(async move {
                    let _ = rpc::answer(&net, &msg, reply.await.into()).await;
                });
            }
        }
    }

    /// Answers a super node's request to seed a function (replica repair).
    async fn answer_seed_requests(node: Arc<Node>) {
        let subject =
            names::seed_request_subject(node.network.as_ref().expect("networked").key.id());
        serve_own(node, subject, "seed", |node, payload| async move {
            let joined = node.network.as_ref().expect("networked");
            let reply = match serde_json::from_slice::<SeedRequest>(&payload) {
                Ok(req) if req.stop => match unseed(&node, &req.function).await {
                    Ok(()) => SeedReply {
                        seeding: false,
                        error: None,
                    },
                    Err(e) => SeedReply {
                        seeding: joined.is_seeding(&req.function),
                        error: Some(e.to_string()),
                    },
                },
                Ok(req) => match seed(&node, &req.function).await {
                    Ok(()) => SeedReply {
                        seeding: joined.is_seeding(&req.function),
                        error: None,
                    },
                    Err(e) => SeedReply {
                        seeding: false,
                        error: Some(e.0.message),
                    },
                },
                Err(e) => SeedReply {
                    seeding: false,
                    error: Some(format!("a seed request does not parse: {e}")),
                },
            };
            serde_json::to_vec(&reply).expect("a reply serialises")
        })
        .await
    }

    /// Validates and announces uploads (a super node's duty, shared by all
    /// of them: queue group `supers` on `orb.validate`; see
    /// `net::announce`).
    async fn answer_validations(node: Arc<Node>) {
        serve_in(
            node,
            names::VALIDATE.to_string(),
            names::SUPERS_QUEUE.to_string(),
            "validate",
            |node, payload| async move {
                let reply = match serde_json::from_slice::<net::ValidateRequest>(&payload) {
                    Ok(req) => match validate(&node, req).await {
                        Ok(samples) => net::ValidateReply::Announced { samples },
                        Err(e) => net::ValidateReply::Refused { error: e.0 },
                    },
                    Err(e) => net::ValidateReply::Refused {
                        error: OrbError::new(
                            ErrorCode::InvalidRequest,
                            format!("a validation request does not parse: {e}"),
                        ),
                    },
                };
                serde_json::to_vec(&reply).expect("a reply serialises")
            },
        )
        .await
    }

    /// How long a super node looks for the bytes of an upload it is asked to
    /// validate before it says the network has none.
    const FRESH_BYTES_WITHIN: Duration = Duration::from_secs(5);

    /// Validates an upload another node (or this one) took, as a super node:
    /// the uploader's token checked here (`functions.write`, may upload),
    /// the bytes fetched and re-hashed, validated and compiled (and stored
    /// for the uploader, as on the node that took them), each export
    /// sampled, and the announcement published, signed by this node.
    async fn validate(
        node: &Arc<Node>,
        req: net::ValidateRequest,
    ) -> Result<Vec<orb_core::SampleCall>, ApiError> {
        let joined = node.network.as_ref().expect("networked");
        let token = Token::new(Some(req.token), true);
        let claims = crate::caller::verify(
            node,
            &token,
            crate::caller::Request::op(crate::caller::op::FUNCTIONS_WRITE),
        )?;
        crate::caller::require_upload(&claims)?;
        // The bytes were just written, maybe through another server: a read
        // served by a replica that has not applied that write yet (direct
        // gets may be) finds nothing, so a miss is read again for a while.
        let deadline = std::time::Instant::now() + FRESH_BYTES_WITHIN;
        let bytes = loop {
            match net::fetch(node, &req.function).await {
                Err(e)
                    if e.0.code == ErrorCode::FunctionNotFound.as_str()
                        && std::time::Instant::now() < deadline =>
                {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                other => break other?,
            }
        };
        let (info, _) = functions::deploy(node, &claims.account, bytes.clone()).await?;
        let f = functions::load(node, &req.function).await?;
        let samples = functions::sample(node, &f).await;
        let announcement = orb_net::Announcement {
            function: req.function.clone(),
            owner: claims.account.clone(),
            size: bytes.len() as u64,
            exports: info.exports.iter().map(|e| e.name.clone()).collect(),
            placement: req.placement,
            announced_by: joined.key.id().clone(),
            at_ms: orb_net::network::now_ms(),
            signatures: info.exports.clone(),
            samples: samples.clone(),
        };
        orb_net::deploy::announce(
            &joined.net,
            &joined.key,
            &announcement,
            orb_net::network::PUBLISH_BUDGET,
        )
        .await
        .map_err(|e| match e {
            NetError::Invalid(m) => ApiError::new(ErrorCode::InvalidRequest, m),
            e => unavailable(e),
        })?;
        tracing::info!(function = %req.function, owner = %claims.account, complexity = announcement.complexity(), "validated and announced");
        Ok(samples)
    }

    /// Answers an operator's control requests (`orb network drain`).
    async fn answer_control(node: Arc<Node>) {
        let subject = names::control_subject(node.network.as_ref().expect("networked").key.id());
        serve_own(node, subject, "control", |node, payload| async move {
            let reply = match serde_json::from_slice::<ControlRequest>(&payload) {
                Ok(ControlRequest::Drain) => drain(&node).await,
                Err(e) => DrainReply {
                    state: None,
                    seeding: Vec::new(),
                    error: Some(format!("a control request does not parse: {e}")),
                },
            };
            serde_json::to_vec(&reply).expect("a reply serialises")
        })
        .await
    }

    /// Drains this node (`orb_net::control`): marked `draining`, no new
    /// seeding, its seeding slots given back so the repair duty asks other
    /// nodes; it keeps answering calls of what it seeded until it stops.
    async fn drain(node: &Arc<Node>) -> DrainReply {
        let joined = node.network.as_ref().expect("networked");
        let was = joined.draining.swap(true, Ordering::SeqCst);
        let mut seeding: Vec<FunctionId> = joined
            .seeding
            .lock()
            .expect("seeding lock")
            .keys()
            .cloned()
            .collect();
        seeding.sort();
        let fail = |error: String| DrainReply {
            state: None,
            seeding: seeding.clone(),
            error: Some(error),
        };
        if !was {
            let marked = match joined.member.lock().await.as_ref() {
                Some(member) => member.drain().await,
                None => {
                    joined.draining.store(false, Ordering::SeqCst);
                    return fail("this node has not joined the network".into());
                }
            };
            match marked {
                Ok(true) => {}
                Ok(false) => {
                    joined.draining.store(false, Ordering::SeqCst);
                    return fail(
                        "its record is no longer joining, verifying or active (marked gone?): restart it to join again".into(),
                    );
                }
                Err(e) => {
                    joined.draining.store(false, Ordering::SeqCst);
                    return fail(format!("its record was not marked draining: {e}"));
                }
            }
            tracing::info!(
                functions = seeding.len(),
                "draining: seeding moves to other nodes"
            );
        }
        if let Err(e) = inventory::release_all(&joined.net, joined.key.id()).await {
            // The repair duty frees them too (it counts only active nodes).
            tracing::warn!(error = %e, "seeding slots not released; the repair duty will");
        }
        DrainReply {
            state: Some(NodeState::Draining),
            seeding,
            error: None,
        }
    }

    /// A super node's request to one node: seed a function, or (`stop`,
    /// the scale loop's step down) stop seeding it.
    #[derive(Serialize, Deserialize)]
    struct SeedRequest {
        function: FunctionId,
        #[serde(default)]
        stop: bool,
    }

    #[derive(Serialize, Deserialize)]
    struct SeedReply {
        seeding: bool,
        error: Option<String>,
    }

    /// The scale loop's thresholds from `[network.scale]`.
    fn scale_policy(settings: &NetworkSettings) -> scale::Policy {
        let s = &settings.scale;
        scale::Policy {
            up_at: s.up_at,
            down_at: s.down_at,
            down_after: Duration::from_millis(s.down_after_ms),
            cooldown: Duration::from_millis(s.cooldown_ms),
        }
    }

    /// The repair duty (one super node at a time, under the `repair`
    /// lease): every pass, for every announced function, slots held by
    /// nodes that are not active and alive are freed; the scale loop
    /// (`orb_net::scale`) sets how many seeders it wants from its seeders'
    /// last heartbeats; while fewer live nodes seed it, an admitted node
    /// that does not is asked to — preferring the one that shares the
    /// fewest attribute values with the current seeders (replicas apart);
    /// while more do, the holders of its highest slots are asked to stop.
    async fn repair_duty(node: Arc<Node>) {
        let joined = node.network.as_ref().expect("networked");
        let mut lease = orb_net::Lease::new(
            joined.net.clone(),
            names::DUTY_REPAIR,
            joined.key.id().clone(),
            joined.timing.lease_ttl,
        );
        let policy = scale_policy(&joined.settings);
        let mut memory = HashMap::new();
        loop {
            if lease.tick().await == orb_net::LeaseState::Held {
                if let Err(e) = repair_pass(&node, &policy, &mut memory).await {
                    tracing::warn!(error = %e, "repair pass failed");
                }
            } else {
                // Another super node runs the loop: its memory is its own.
                memory.clear();
            }
            tokio::time::sleep(joined.timing.duty_every).await;
        }
    }

    /// Asks `node` to seed `id` (or, with `stop`, to stop seeding it).
    async fn ask_seed(joined: &Joined, id: &FunctionId, node: &orb_net::NodeId, stop: bool) {
        let what = if stop {
            "asked to stop seeding (scale down)"
        } else {
            "asked to seed"
        };
        let req = serde_json::to_vec(&SeedRequest {
            function: id.clone(),
            stop,
        })
        .expect("serialises");
        match rpc::request(
            &joined.net,
            names::seed_request_subject(node),
            req.into(),
            Duration::from_secs(60),
        )
        .await
        {
            Ok(reply) => match serde_json::from_slice::<SeedReply>(&reply) {
                Ok(r) if r.error.is_none() && r.seeding != stop => {
                    metrics::counter!(if stop {
                        "orb_network_unseeded_total"
                    } else {
                        "orb_network_repairs_total"
                    })
                    .increment(1);
                    tracing::info!(function = %id, node = %node.short(), "{what}: done");
                }
                Ok(r) => {
                    tracing::warn!(function = %id, node = %node.short(), error = ?r.error, "{what}: refused")
                }
                Err(e) => tracing::warn!(error = %e, "a seed reply does not parse"),
            },
            Err(e) => {
                tracing::warn!(function = %id, node = %node.short(), error = %e, "{what}: no answer")
            }
        }
    }

    async fn repair_pass(
        node: &Arc<Node>,
        policy: &scale::Policy,
        memory: &mut HashMap<FunctionId, scale::Memory>,
    ) -> Result<(), NetError> {
        let joined = node.network.as_ref().expect("networked");
        let nodes = orb_net::membership::list_nodes(&joined.net).await?;
        let live: BTreeMap<&str, &orb_net::NodeView> = nodes
            .iter()
            .filter(|n| n.alive && n.state == orb_net::NodeState::Active)
            .map(|n| (n.id.as_str(), n))
            .collect();
        let known: Vec<(FunctionId, Placement)> = joined
            .known
            .lock()
            .expect("known lock")
            .iter()
            .filter_map(|(id, k)| k.placement.clone().map(|p| (id.clone(), p)))
            .collect();
        memory.retain(|id, _| known.iter().any(|(k, _)| k == id));
        for (id, placement) in known {
            let mut held = Vec::new();
            for slot in inventory::slots(&joined.net, &id, placement.max_seeders).await? {
                if live.contains_key(slot.node.as_str()) {
                    held.push(slot);
                } else if inventory::free(&joined.net, &id, &slot).await? {
                    metrics::counter!("orb_network_slots_freed_total").increment(1);
                    tracing::info!(function = %id, node = %slot.node.short(), "seeding slot freed: its node is not live");
                }
            }
            let holders: Vec<orb_net::NodeId> = held.iter().map(|s| s.node.clone()).collect();

            // The scale loop: what the live nodes' last heartbeats say.
            let hex = id.hex();
            let mut sample = scale::Sample::default();
            for n in live.values() {
                if let Some(load) = &n.load {
                    sample.add(load, &hex, holders.contains(&n.id));
                }
            }
            let stored = scale::read_want(&joined.net, &id).await?;
            let want = scale::bounded(&placement, stored);
            let next = scale::decide(
                policy,
                &placement,
                want,
                holders.len() as u32,
                &sample,
                memory.entry(id.clone()).or_default(),
                std::time::Instant::now(),
            );
            if next != want || stored.is_some_and(|w| w != next) {
                scale::write_want(&joined.net, &id, next).await?;
                if next != want {
                    metrics::counter!(if next > want {
                        "orb_network_scale_ups_total"
                    } else {
                        "orb_network_scale_downs_total"
                    })
                    .increment(1);
                    tracing::info!(
                        function = %id,
                        from = want,
                        to = next,
                        utilisation = sample.utilisation(),
                        busy = sample.busy,
                        overflow = sample.overflow,
                        "scale: seeders wanted"
                    );
                }
            }
            let want = next as usize;
            if holders.len() > want {
                // Scale down: the highest slots stop first.
                held.sort_by_key(|s| std::cmp::Reverse(s.slot));
                for s in held.iter().take(holders.len() - want) {
                    ask_seed(joined, &id, &s.node, true).await;
                }
                continue;
            }
            let missing = want.saturating_sub(holders.len());
            if missing == 0 {
                continue;
            }
            let mut candidates: Vec<&orb_net::NodeView> = live
                .values()
                .filter(|n| {
                    placement.admits(&n.hello.attributes) && !holders.iter().any(|h| h == &n.id)
                })
                .copied()
                .collect();
            let shared = |n: &orb_net::NodeView| {
                holders
                    .iter()
                    .filter_map(|h| live.get(h.as_str()))
                    .map(|h| {
                        n.hello
                            .attributes
                            .iter()
                            .filter(|(k, v)| h.hello.attributes.get(*k) == Some(v))
                            .count()
                    })
                    .sum::<usize>()
            };
            candidates.sort_by_key(|n| (shared(n), n.id.as_str().to_string()));
            for c in candidates.into_iter().take(missing) {
                ask_seed(joined, &id, &c.id, false).await;
            }
        }
        Ok(())
    }

    /// Stops seeding a function (the scale loop's step down): the task
    /// answering its subject drains (calls on their way are answered) and
    /// ends, and the slot goes back. The bytes stay, compiled.
    async fn unseed(node: &Arc<Node>, id: &FunctionId) -> Result<(), NetError> {
        let joined = node.network.as_ref().expect("networked");
        // Dropping the entry (not aborting its task) lets it drain.
        let was = joined.seeding.lock().expect("seeding lock").remove(id);
        let max = joined
            .known
            .lock()
            .expect("known lock")
            .get(id)
            .and_then(|k| k.placement.as_ref().map(|p| p.max_seeders))
            .unwrap_or(Placement::default().max_seeders);
        inventory::release(&joined.net, id, joined.key.id(), max).await?;
        if was.is_some() {
            tracing::info!(function = %id, "no longer seeding: the scale loop needs fewer seeders");
        }
        Ok(())
    }

    /// `GET /v1/network/functions/{id}`: the placement and the seeders.
    pub(crate) async fn function_view(
        node: &Node,
        account: &str,
        id: &FunctionId,
    ) -> Result<serde_json::Value, ApiError> {
        let joined = node.network.as_ref().expect("networked");
        let not_found = || {
            ApiError::new(
                ErrorCode::FunctionNotFound,
                format!("the network has no function {id} of this account"),
            )
        };
        let a = orb_net::deploy::latest_announcement(&joined.net, id)
            .await
            .map_err(unavailable)?
            .ok_or_else(not_found)?;
        let owned = a.owner == account
            || joined
                .known
                .lock()
                .expect("known lock")
                .get(id)
                .is_some_and(|k| k.owners.contains(account))
            || node.store.owns(account, id).await?;
        if !owned {
            return Err(not_found());
        }
        let view = inventory::view(&joined.net, &a)
            .await
            .map_err(unavailable)?;
        Ok(serde_json::to_value(view).expect("a view serialises"))
    }

    fn remember(joined: &Joined, id: &FunctionId, owner: &str, placement: Option<Placement>) {
        let mut known = joined.known.lock().expect("known lock");
        let k = known.entry(id.clone()).or_default();
        k.owners.insert(owner.to_string());
        if placement.is_some() {
            k.placement = placement;
        }
    }

    /// Remembers what a deploy announcement says of its function: its
    /// owner and placement, and how to list it on a node that does not hold
    /// it (size, exports with signatures, when).
    fn remember_announced(joined: &Joined, a: &orb_net::Announcement) {
        remember(joined, &a.function, &a.owner, Some(a.placement.clone()));
        let mut known = joined.known.lock().expect("known lock");
        let k = known.entry(a.function.clone()).or_default();
        if !a.signatures.is_empty() {
            k.info = Some(orb_core::FunctionInfo {
                hash: a.function.clone(),
                size: a.size,
                exports: a.signatures.clone(),
                created_at: crate::clock::rfc3339_ms(a.at_ms),
            });
        }
    }

    /// An owner withdrew a function (`orb.announce.deprecate.*`): its
    /// claim goes from this node (the store's ownership too); a function no
    /// account claims any more is no longer served here, and its slot goes
    /// back.
    async fn forget_owner(node: &Arc<Node>, d: &orb_net::deploy::Deprecation) {
        let joined = node.network.as_ref().expect("networked");
        let (unowned, max) = {
            let mut known = joined.known.lock().expect("known lock");
            let Some(k) = known.get_mut(&d.function) else {
                return;
            };
            k.owners.remove(&d.owner);
            let max = k.placement.as_ref().map(|p| p.max_seeders);
            let unowned = k.owners.is_empty();
            if unowned {
                known.remove(&d.function);
            }
            (unowned, max)
        };
        match node.store.delete_function(&d.owner, &d.function).await {
            Ok((_, true)) => node.runtime.forget(&d.function),
            Ok(_) => {}
            Err(e) => tracing::warn!(function = %d.function, error = %e, "deprecation not stored"),
        }
        if !unowned {
            return;
        }
        let task = joined
            .seeding
            .lock()
            .expect("seeding lock")
            .remove(&d.function);
        if let Some(seeding) = task {
            // Dropped, not aborted: calls on their way are answered.
            drop(seeding);
            if let Some(max) = max
                && let Err(e) =
                    inventory::release(&joined.net, &d.function, joined.key.id(), max).await
            {
                tracing::warn!(function = %d.function, error = %e, "slot not given back; the repair duty will");
            }
            tracing::info!(function = %d.function, "no longer seeding: deprecated by its owner");
        }
    }

    /// Reads announcements as they come (from where this node stopped) and
    /// seeds what the local policy takes: every function whose placement's
    /// required attributes this node carries.
    async fn follow_announcements(node: Arc<Node>, feed: AnnouncementFeed) {
        let joined = node.network.as_ref().expect("networked");
        loop {
            let batch = match feed.next_batch(64).await {
                Ok(b) => b,
                Err(e) => {
                    tracing::warn!(error = %e, "announcements not read; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            };
            if batch.is_empty() {
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
            for r in batch {
                let a = match r.event {
                    orb_net::deploy::Event::Deploy(a) => a,
                    orb_net::deploy::Event::Deprecate(d) => {
                        forget_owner(&node, &d).await;
                        continue;
                    }
                };
                remember_announced(joined, &a);
                if !a.placement.admits(&joined.attributes) {
                    let task = joined
                        .seeding
                        .lock()
                        .expect("seeding lock")
                        .remove(&a.function);
                    if let Some(seeding) = task {
                        seeding.task.abort();
                        let _ = inventory::release(
                            &joined.net,
                            &a.function,
                            joined.key.id(),
                            a.placement.max_seeders,
                        )
                        .await;
                        tracing::info!(function = %a.function, "no longer seeding: the placement changed");
                    }
                    continue;
                }
                if let Err(e) = seed(&node, &a.function).await {
                    tracing::warn!(function = %a.function, error = %e.0, "not seeded");
                }
            }
        }
    }

    /// Seeds a function: its bytes fetched from the network and re-hashed
    /// (a mismatch is refused and reported), validated and compiled like an
    /// upload, stored for every owner the announcements named, then served.
    /// Seeding also takes one of the function's `max_seeders` slots
    /// (`orb_net::inventory`): with none free, the node does not seed.
    async fn seed(node: &Arc<Node>, id: &FunctionId) -> Result<(), ApiError> {
        let joined = node.network.as_ref().expect("networked");
        if joined.draining.load(Ordering::SeqCst) {
            return Err(ApiError::new(
                ErrorCode::Conflict,
                format!("this node is draining: it seeds nothing new (not {id})"),
            ));
        }
        hold(node, id).await?;
        let placement = joined
            .known
            .lock()
            .expect("known lock")
            .get(id)
            .and_then(|k| k.placement.clone())
            .unwrap_or_default();
        let max = placement.max_seeders;
        let want = scale::want(&joined.net, id, &placement)
            .await
            .map_err(unavailable)?;
        match inventory::claim(&joined.net, id, joined.key.id(), want, max)
            .await
            .map_err(unavailable)?
        {
            Some(_) if joined.draining.load(Ordering::SeqCst) => {
                // Drained while this seeding was on its way: the slot goes
                // back, so the repair duty gives it to another node.
                inventory::release(&joined.net, id, joined.key.id(), max)
                    .await
                    .map_err(unavailable)?;
                Err(ApiError::new(
                    ErrorCode::Conflict,
                    format!("this node is draining: it seeds nothing new (not {id})"),
                ))
            }
            Some(_) => serve_function(node, id).await,
            None => {
                tracing::info!(function = %id, want, "not seeding: it has the seeders it wants now");
                Ok(())
            }
        }
    }

    /// Holds a function here (fetched, verified, compiled, stored for its
    /// owners) without serving its call subject: what a super node does for
    /// a call that found no seeder.
    async fn hold(node: &Arc<Node>, id: &FunctionId) -> Result<(), ApiError> {
        let joined = node.network.as_ref().expect("networked");
        let owners = joined
            .known
            .lock()
            .expect("known lock")
            .get(id)
            .map(|k| k.owners.clone())
            .unwrap_or_default();
        let owners = if owners.is_empty() {
            // Announced before this node's feed position (a restart): the
            // stream still has the latest announcement.
            match orb_net::deploy::latest_announcement(&joined.net, id)
                .await
                .map_err(unavailable)?
            {
                Some(a) => {
                    remember_announced(joined, &a);
                    BTreeSet::from([a.owner])
                }
                None => {
                    return Err(ApiError::new(
                        ErrorCode::FunctionNotFound,
                        format!("no announcement names {id}: deploy it first"),
                    ));
                }
            }
        } else {
            owners
        };
        let bytes = match node.store.function_bytes(id).await? {
            Some(b) => b,
            None => net::fetch(node, id).await?,
        };
        for owner in &owners {
            functions::deploy(node, owner, bytes::Bytes::clone(&bytes)).await?;
        }
        Ok(())
    }

    /// Answers the function's call subject (once per function).
    async fn serve_function(node: &Arc<Node>, id: &FunctionId) -> Result<(), ApiError> {
        let joined = node.network.as_ref().expect("networked");
        if joined.is_seeding(id) {
            return Ok(());
        }
        let (stop, stopped) = tokio::sync::watch::channel(());
        let task = tokio::spawn(answer_calls(
            node.clone(),
            names::call_subject(&id.hex()),
            names::SEEDERS_QUEUE,
            false,
            Some(stopped),
        ));
        let mut seeding = joined.seeding.lock().expect("seeding lock");
        if let Some(old) = seeding.insert(id.clone(), Seeding { task, _stop: stop }) {
            old.task.abort();
        }
        tracing::info!(function = %id, "seeding");
        Ok(())
    }

    /// A call or an HTTP request sent to another node: the token its caller
    /// presented (that node verifies it itself; none for an `/http/`
    /// request to a public route) and what to run. It travels as JSON,
    /// followed by the encoded HTTP request for [`Work::Http`] ([`frame`]).
    #[derive(Serialize, Deserialize)]
    struct Forward {
        token: Option<String>,
        /// When the gateway sent it (its clock, ms since the epoch): a
        /// seeder does not start a call the gateway has given up on.
        #[serde(default)]
        sent_ms: u64,
        work: Work,
    }

    #[derive(Serialize, Deserialize)]
    #[serde(tag = "kind", rename_all = "snake_case")]
    enum Work {
        /// A call, its target resolved to a hash (`req.function`).
        Call {
            req: Box<InvokeRequest>,
            alias: Option<String>,
        },
        /// A request to `/http/{target}` (an alias or the hash): the request,
        /// as `services::http` encodes it, follows the JSON.
        Http { target: String },
    }

    /// `value` as JSON, then `tail` as it is.
    fn frame(value: &impl Serialize, tail: &[u8]) -> bytes::Bytes {
        let mut out = serde_json::to_vec(value).expect("a message serialises");
        out.extend_from_slice(tail);
        out.into()
    }

    /// The JSON value at the start of `bytes`, and what follows it.
    fn unframe<T: serde::de::DeserializeOwned>(
        bytes: &bytes::Bytes,
    ) -> Result<(T, bytes::Bytes), serde_json::Error> {
        let mut values = serde_json::Deserializer::from_slice(bytes).into_iter::<T>();
        let value = values
            .next()
            .unwrap_or_else(|| Err(serde::de::Error::custom("an empty message")))?;
        let end = values.byte_offset();
        Ok((value, bytes.slice(end..)))
    }

    /// How long a gateway waits for a seeder to take a call before it
    /// sends the call again (it was lost on its way: it never ran).
    const TAKE_WITHIN: Duration = Duration::from_secs(5);

    /// A seeder does not start a call sent longer ago than this (by its
    /// clock): the gateway may have sent it elsewhere. Below
    /// `TAKE_WITHIN` by more than the clock skew the network tolerates.
    const TOO_LATE_MS: u64 = 3_000;

    /// What the node that got a forwarded call answers (as JSON; a
    /// [`Answer::Served`] is followed by the encoded HTTP response).
    #[derive(Serialize, Deserialize)]
    #[serde(tag = "answer", rename_all = "snake_case")]
    enum Answer {
        /// It ran (the function may have failed: see the activation; an
        /// HTTP request that gave no response ends here too).
        Ran { activation: Box<Activation> },
        /// An HTTP request was served: the response follows.
        Served { activation: Box<Activation> },
        /// At capacity: ask another seeder.
        Busy,
        /// Refused before running (token, ownership, parameters…).
        Refused { error: OrbError },
    }

    /// Answers forwarded calls on `subject` as a member of `queue`: one
    /// task per call. While every slot of this node stays taken (for
    /// `WITHDRAW_AFTER`) it withdraws
    /// (drains its subscription, answering busy to what was on its way) and
    /// comes back when a slot frees. With `fallback` (a super node, for
    /// calls that found no seeder) the function is fetched first. When
    /// `stop`'s sender is dropped (the node stops seeding the function) it
    /// drains its subscription, answers what was on its way, and ends.
    async fn answer_calls(
        node: Arc<Node>,
        subject: String,
        queue: &'static str,
        fallback: bool,
        mut stop: Option<tokio::sync::watch::Receiver<()>>,
    ) {
        let joined = node.network.as_ref().expect("networked");
        let mut saturated = joined.saturated.subscribe();
        let mut stopping = false;
        loop {
            if stopping || saturated.wait_for(|s| !*s).await.is_err() {
                return;
            }
            let mut sub = match Served::subscribe(&joined.net, &subject, queue).await {
                Ok(sub) => sub,
                Err(e) => {
                    tracing::warn!(error = %e, %subject, "cannot serve; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            };
            let mut draining = false;
            loop {
                let msg = tokio::select! {
                    msg = sub.next() => msg,
                    _ = async {
                        // Withdraw only when every slot stays taken: a
                        // node that is full for a moment answers busy
                        // (the gateway asks again) rather than leave and
                        // rejoin the queue group on every call.
                        loop {
                            if saturated.wait_for(|s| *s).await.is_err() {
                                return;
                            }
                            tokio::time::sleep(WITHDRAW_AFTER).await;
                            if *saturated.borrow() {
                                return;
                            }
                        }
                    }, if !draining => {
                        draining = true;
                        metrics::counter!("orb_network_withdrawals_total").increment(1);
                        if let Err(e) = sub.drain().await {
                            tracing::warn!(error = %e, "drain failed");
                            break;
                        }
                        continue;
                    }
                    _ = async {
                        match stop.as_mut() {
                            // Ends when the sender is dropped.
                            Some(rx) => while rx.changed().await.is_ok() {},
                            None => std::future::pending().await,
                        }
                    }, if !draining => {
                        draining = true;
                        stopping = true;
                        if let Err(e) = sub.drain().await {
                            tracing::warn!(error = %e, "drain failed");
                            break;
                        }
                        continue;
                    }
                };
                let Some(msg) = msg else { break };
                let node = node.clone();
                tokio::spawn(async move {
                    let (answer, tail) = answer(&node, &msg, fallback).await;
                    let payload = frame(&answer, &tail);
                    let joined = node.network.as_ref().expect("networked");
                    if let Err(e) = rpc::answer(&joined.net, &msg, payload).await {
                        tracing::warn!(error = %e, "a forwarded call's answer was not sent");
                    }
                });
            }
        }
    }

    /// Runs a forwarded call or HTTP request; the answer, and the encoded
    /// HTTP response that follows it (empty for anything else).
    async fn answer(node: &Arc<Node>, msg: &Incoming, fallback: bool) -> (Answer, bytes::Bytes) {
        let joined = node.network.as_ref().expect("networked");
        // `orb.call.<hex>` or `orb.fallback.<hex>`.
        let hex = msg.subject.rsplit('.').next().unwrap_or_default();
        let refused = |error: OrbError| (Answer::Refused { error }, bytes::Bytes::new());
        let Some(_slot) = joined.slot() else {
            metrics::counter!("orb_network_busy_answers_total").increment(1);
            joined.busy(hex);
            return (Answer::Busy, bytes::Bytes::new());
        };
        let (fwd, request) = match unframe::<Forward>(&msg.payload) {
            Ok(f) => f,
            Err(e) => {
                return refused(OrbError::new(
                    ErrorCode::InvalidRequest,
                    format!("a forwarded call does not parse: {e}"),
                ));
            }
        };
        if fwd.sent_ms > 0 && orb_net::network::now_ms().saturating_sub(fwd.sent_ms) > TOO_LATE_MS {
            tracing::warn!("a forwarded call came too late to take; answered busy");
            return (Answer::Busy, bytes::Bytes::new());
        }
        // Taken: the gateway now waits for the answer, not for a lost call.
        if let Err(e) = rpc::accept(&joined.net, msg).await {
            tracing::warn!(error = %e, "a forwarded call's acceptance was not sent");
        }
        let result = async {
            if fallback {
                // No seeder was live: this super node runs the call itself,
                // keeping the function compiled for the next such call; it
                // does not join the seeders (the placement may exclude it).
                let id = functions::parse_id(&format!("sha256:{hex}"))?;
                if node.store.function_info(&id).await?.is_none() {
                    metrics::counter!("orb_network_fallback_holds_total").increment(1);
                    hold(node, &id).await?;
                }
            }
            let started = std::time::Instant::now();
            let (mut activation, response) = match fwd.work {
                Work::Call { req, alias } => {
                    let token = Token::new(fwd.token, true);
                    let (mut prepared, ready) = prepare_forwarded(node, &token, *req).await?;
                    prepared.alias = alias;
                    let ctx = RunContext {
                        token: Some(token),
                        ..Default::default()
                    };
                    (execute(node, &prepared, ready, ctx).await?, None)
                }
                Work::Http { target } => {
                    crate::services::http::serve_forwarded(node, fwd.token, &target, &request)
                        .await?
                }
            };
            joined.ran(hex, started.elapsed());
            activation.node = Some(joined.key.id().as_str().to_string());
            Ok::<_, ApiError>((activation, response))
        }
        .await;
        match result {
            Ok((mut activation, Some(response))) => {
                let answer = Answer::Served {
                    activation: Box::new(activation.clone()),
                };
                let size = frame(&answer, &response).len();
                let max = rpc::max_payload(&joined.net);
                if size <= max {
                    return (answer, response);
                }
                // The response cannot travel back: the request failed.
                activation.status = orb_core::ActivationStatus::Failed;
                activation.error = Some(
                    OrbError::new(
                        ErrorCode::TooLarge,
                        format!(
                            "the function's response ({size} bytes with its routing) is over the {max} bytes a message between nodes may carry (the NATS servers' max_payload); send the request to a node that seeds the function, or raise max_payload"
                        ),
                    )
                    .with_details(serde_json::json!({ "size": size, "limit": max })),
                );
                (
                    Answer::Ran {
                        activation: Box::new(activation),
                    },
                    bytes::Bytes::new(),
                )
            }
            Ok((activation, None)) => (
                Answer::Ran {
                    activation: Box::new(activation),
                },
                bytes::Bytes::new(),
            ),
            Err(e) => refused(e.0),
        }
    }

    /// The executor of a networked node: a call from a request runs here
    /// when this node seeds the function and has a free slot; otherwise it
    /// goes to a seeder (NATS request/reply on the function's subject, all
    /// seeders in one queue group); a busy seeder's call is sent again; no
    /// live seeder → a super node seeds it and runs it. Queued, scheduled,
    /// sequence and kappa calls run here (across nodes: part 2).
    pub(crate) struct Routed;

    /// How long every call slot must stay taken before a node withdraws
    /// from its queue groups.
    const WITHDRAW_AFTER: Duration = Duration::from_millis(100);

    /// Tries of a call on the seeders' queue group before giving up busy.
    const BUSY_TRIES: usize = 4;

    /// The wait after the `tries`-th busy answer: 5, 20, 80 ms.
    fn busy_backoff(tries: usize) -> Duration {
        Duration::from_millis(5 << (2 * (tries.saturating_sub(1)).min(4)))
    }

    #[async_trait::async_trait]
    impl Executor for Routed {
        fn runs_here(&self, node: &Node, function: &FunctionId) -> bool {
            let joined = node.network.as_ref().expect("networked");
            joined.is_seeding(function) && joined.in_flight.load(Ordering::SeqCst) < joined.slots
        }

        async fn run(
            &self,
            node: &Node,
            call: &Prepared,
            checked: Option<Ready>,
            ctx: RunContext,
        ) -> Result<Activation, ApiError> {
            let joined = node.network.as_ref().expect("networked");
            let token = match (&checked, ctx.token.as_ref().and_then(|t| t.bearer())) {
                (None, Some(t)) => t.to_string(),
                _ => {
                    let _slot = joined.slot();
                    if !joined.is_seeding(&call.function) {
                        return Local.run(node, call, checked, ctx).await;
                    }
                    let started = std::time::Instant::now();
                    let out = Local.run(node, call, checked, ctx).await;
                    joined.ran(&call.function.hex(), started.elapsed());
                    return out;
                }
            };
            let (activation, _) = send(node, &call.function, |sent_ms| {
                let work = Work::Call {
                    req: Box::new(call.req.clone()),
                    alias: call.alias.clone(),
                };
                frame(
                    &Forward {
                        token: Some(token.clone()),
                        sent_ms,
                        work,
                    },
                    &[],
                )
            })
            .await?;
            Ok(activation)
        }

        async fn forward_http(
            &self,
            node: &Node,
            function: &FunctionId,
            token: Option<&str>,
            target: &str,
            request: bytes::Bytes,
        ) -> Result<(Activation, Option<bytes::Bytes>), ApiError> {
            send(node, function, |sent_ms| {
                let work = Work::Http {
                    target: target.to_string(),
                };
                let token = token.map(str::to_string);
                frame(
                    &Forward {
                        token,
                        sent_ms,
                        work,
                    },
                    &request,
                )
            })
            .await
        }
    }

    /// Sends work for `function` to one of its seeders (all in one queue
    /// group; a super node when none is live) and waits for what it ran:
    /// the activation, and the encoded HTTP response that came with it.
    /// `forward` makes the message for a send time (ms since the epoch): a
    /// busy seeder's work goes out again (after 5, 20, 80 ms), and so does
    /// work nobody took within `TAKE_WITHIN` (it was lost on its way).
    async fn send(
        node: &Node,
        function: &FunctionId,
        forward: impl Fn(u64) -> bytes::Bytes,
    ) -> Result<(Activation, Option<bytes::Bytes>), ApiError> {
        let joined = node.network.as_ref().expect("networked");
        let timeout = Duration::from_millis(node.config.timeout_ms) + Duration::from_secs(10);
        let hex = function.hex();
        let started = std::time::Instant::now();
        let mut subject = names::call_subject(&hex);
        let mut tries = 0;
        loop {
            tries += 1;
            let payload = forward(orb_net::network::now_ms());
            match joined
                .caller
                .call(subject.clone(), payload, TAKE_WITHIN, timeout)
                .await
            {
                Ok(reply) => {
                    let (answer, tail) = unframe::<Answer>(&reply).map_err(|e| {
                        ApiError::new(
                            ErrorCode::Internal,
                            format!("a seeder's answer does not parse: {e}"),
                        )
                    })?;
                    let ran = |activation: Box<Activation>, response| {
                        metrics::counter!("orb_network_forwarded_calls_total").increment(1);
                        metrics::histogram!("orb_network_routed_call_seconds")
                            .record(started.elapsed().as_secs_f64());
                        Ok((*activation, response))
                    };
                    match answer {
                        Answer::Ran { activation } => return ran(activation, None),
                        Answer::Served { activation } => return ran(activation, Some(tail)),
                        // A seeder that is stopping is as good as busy.
                        Answer::Refused { error }
                            if error.code != ErrorCode::ShuttingDown.as_str()
                                || tries >= BUSY_TRIES =>
                        {
                            return Err(ApiError(error));
                        }
                        Answer::Busy | Answer::Refused { .. } if tries < BUSY_TRIES => {
                            metrics::counter!("orb_network_reroutes_total").increment(1);
                            // A busy seeder has withdrawn, so the next
                            // try usually reaches another at once; when
                            // all are busy, a short wait lets slots free.
                            tokio::time::sleep(busy_backoff(tries)).await;
                            continue;
                        }
                        Answer::Busy | Answer::Refused { .. } => {
                            return Err(ApiError::new(
                                ErrorCode::Overloaded,
                                format!("every seeder of {function} is at capacity; retry shortly"),
                            ));
                        }
                    }
                }
                Err(RequestFailed::NotTaken { .. }) if tries < BUSY_TRIES => {
                    // Lost on its way (never ran): send it again.
                    metrics::counter!("orb_network_lost_calls_total").increment(1);
                    metrics::counter!("orb_network_reroutes_total").increment(1);
                    continue;
                }
                Err(RequestFailed::NoResponders(_)) if subject != names::fallback_subject(&hex) => {
                    metrics::counter!("orb_network_no_seeder_fallbacks_total").increment(1);
                    subject = names::fallback_subject(&hex);
                }
                Err(RequestFailed::NoResponders(_)) => {
                    return Err(ApiError::new(
                        ErrorCode::NetworkUnavailable,
                        format!(
                            "no node serves {function} and no super node is live to start it; retry when one is"
                        ),
                    ));
                }
                Err(RequestFailed::TooLarge { size, max, .. }) => {
                    return Err(ApiError(
                        OrbError::new(
                            ErrorCode::TooLarge,
                            format!(
                                "this node does not run {function}, and the request ({size} bytes with its routing) is over the {max} bytes a message between nodes may carry (the NATS servers' max_payload); send it to a node that seeds the function, or raise max_payload"
                            ),
                        )
                        .with_details(serde_json::json!({ "size": size, "limit": max })),
                    ));
                }
                Err(e) => {
                    return Err(ApiError::new(
                        ErrorCode::NetworkUnavailable,
                        format!("the call could not be routed: {e}; retry"),
                    ));
                }
            }
        }
    }

    /// Leaves cleanly: duties released (another super node takes them at
    /// once), the record marked `gone` ("left"), the heartbeat removed.
    pub(crate) async fn leave(node: &Node) {
        // Bounded: with the network unreachable the node still stops (the
        // reaper marks it gone and the repair duty frees its slots).
        if tokio::time::timeout(Duration::from_secs(10), leave_now(node))
            .await
            .is_err()
        {
            tracing::warn!(
                "the network did not answer within 10 s; stopping without leaving it cleanly"
            );
        }
    }

    async fn leave_now(node: &Node) {
        let Some(joined) = node.network.as_ref() else {
            return;
        };
        for task in joined.tasks.lock().expect("tasks lock").drain(..) {
            task.abort();
        }
        let seeded: Vec<_> = joined
            .seeding
            .lock()
            .expect("seeding lock")
            .drain()
            .map(|(_, seeding)| seeding.task)
            .collect();
        for task in seeded {
            task.abort();
        }
        // Its seeding slots go back at once: the repair duty gives them to
        // other nodes without waiting for this one to be reaped.
        if let Err(e) = inventory::release_all(&joined.net, joined.key.id()).await {
            tracing::warn!(error = %e, "seeding slots not released; the repair duty will");
        }
        if let Some(duties) = joined.duties.lock().await.take() {
            duties.shutdown().await;
        }
        if let Some(member) = joined.member.lock().await.take()
            && let Err(e) = member.leave().await
        {
            tracing::warn!(error = %e, "could not mark this node as left; the reaper will");
        }
        if let Some(task) = joined.mirror.lock().expect("mirror lock").take() {
            task.abort();
        }
        tracing::info!("left the network");
    }
}
