//! The network's foundations against a real 3-server NATS JetStream
//! cluster on loopback (the binary from `scripts/install-nats`).

use orb_core::FunctionId;
use orb_net::deploy::{self, AnnouncementFeed, HashMismatchReport, Placement};
use orb_net::lease;
use orb_net::membership::{self, Capacity, NodeState, NodeView, Signed};
use orb_net::network::{self, PUBLISH_BUDGET};
use orb_net::testing::Cluster;
use orb_net::{Member, NetError, Network, NodeId, NodeKey, SuperNode, Timing, names};
use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

async fn connect(cluster: &Cluster, name: &str) -> async_nats::Client {
    network::connect(&cluster.urls(), name).await.unwrap()
}

async fn setup() -> (Cluster, Network) {
    let cluster = Cluster::start(3).await;
    let client = connect(&cluster, "setup").await;
    Network::init(&client, 3).await.unwrap();
    let net = Network::open(client).await.unwrap();
    (cluster, net)
}

/// Polls `f` until it returns Some or `limit` passes; panics with `what`.
async fn wait_for<T, F, Fut>(limit: Duration, what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(
            start.elapsed() < limit,
            "timed out after {limit:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn attrs(pairs: &[&str]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|p| membership::parse_attribute(p).unwrap())
        .collect()
}

fn capacity() -> Capacity {
    Capacity::of_this_machine(8, "test-engine-key")
}

async fn join(net: &Network, labels: &[&str]) -> Member {
    Member::join(
        net.clone(),
        Arc::new(NodeKey::generate().unwrap()),
        attrs(labels),
        capacity(),
        false,
        Timing::fast(),
    )
    .await
    .unwrap()
}

async fn view(net: &Network, id: &NodeId) -> Option<NodeView> {
    membership::list_nodes(net)
        .await
        .unwrap()
        .into_iter()
        .find(|v| &v.id == id)
}

async fn wait_state(net: &Network, id: &NodeId, state: NodeState, limit: Duration) -> NodeView {
    wait_for(
        limit,
        &format!("node {} to be {}", id.short(), state.as_str()),
        || async { view(net, id).await.filter(|v| v.state == state) },
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn init_is_idempotent_and_open_says_what_to_do_before_it() {
    let cluster = Cluster::start(3).await;
    let client = connect(&cluster, "init").await;

    let err = Network::open(client.clone()).await.unwrap_err();
    assert!(matches!(err, NetError::NotInitialised { .. }), "{err}");
    assert!(err.to_string().contains("orb network init"), "{err}");

    let first = Network::init(&client, 3).await.unwrap();
    let mut all = vec![
        names::META_BUCKET,
        names::NODES_BUCKET,
        names::ALIVE_BUCKET,
        names::LEASES_BUCKET,
        names::ACCOUNTS_BUCKET,
        names::REVOCATIONS_BUCKET,
        names::SEEDING_BUCKET,
        names::RECORDS_BUCKET,
        names::ANNOUNCE_STREAM,
        names::REPORTS_STREAM,
        names::COMPONENTS_STORE,
    ];
    all.sort();
    let mut created = first.created.clone();
    created.sort();
    assert_eq!(created, all);
    assert!(first.existing.is_empty());

    // A second init, from a client on another server, changes nothing.
    let other = async_nats::connect(cluster.url(2)).await.unwrap();
    let second = Network::init(&other, 3).await.unwrap();
    assert!(second.created.is_empty(), "{:?}", second.created);
    let mut existing = second.existing.clone();
    existing.sort();
    assert_eq!(existing, all);

    let net = Network::open(other).await.unwrap();
    assert_eq!(net.meta.replicas, 3);
    // Every stream behind the buckets is replicated 3 times.
    let mut js_stream = net.js.get_stream("KV_orb_nodes").await.unwrap();
    assert_eq!(js_stream.info().await.unwrap().config.num_replicas, 3);

    assert!(Network::init(&client, 0).await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_join_and_are_listed_with_attributes_and_states() {
    let (_cluster, net) = setup().await;
    let sup_key = NodeKey::generate().unwrap();
    let sup = SuperNode::start(net.clone(), sup_key.id().clone(), Timing::fast()).unwrap();

    let a = join(&net, &["region=eu-west", "gpu=none"]).await;
    let b = join(&net, &["region=us-east"]).await;
    let c = join(&net, &[]).await;

    // Right after join the record exists and starts in `joining` (or has
    // already moved on); the admission duty takes it to `active`.
    let first = view(&net, a.id()).await.expect("listed right after join");
    assert!(
        matches!(
            first.state,
            NodeState::Joining | NodeState::Verifying | NodeState::Active
        ),
        "{:?}",
        first.state
    );
    let limit = Duration::from_secs(20);
    for m in [&a, &b, &c] {
        let v = wait_state(&net, m.id(), NodeState::Active, limit).await;
        assert!(v.alive);
        assert_eq!(&v.changed_by, sup_key.id(), "admitted by the super node");
    }
    let va = view(&net, a.id()).await.unwrap();
    assert_eq!(va.hello.attributes, attrs(&["region=eu-west", "gpu=none"]));
    assert_eq!(va.hello.capacity.instance_slots, 8);
    assert_eq!(va.hello.capacity.engine_key, "test-engine-key");
    assert_eq!(va.hello.capacity.orb_version, env!("CARGO_PKG_VERSION"));
    assert!(va.hello.capacity.cores >= 1);
    assert_eq!(&va.hello.node_id, a.id());

    // draining, then a clean leave.
    assert!(b.drain().await.unwrap());
    let vb = wait_state(&net, b.id(), NodeState::Draining, limit).await;
    assert!(vb.alive, "a draining node keeps its heartbeat");
    let c_id = c.id().clone();
    c.leave().await.unwrap();
    let vc = wait_state(&net, &c_id, NodeState::Gone, limit).await;
    assert_eq!(vc.reason.as_deref(), Some("left"));
    assert!(!vc.alive);

    // A record under a victim's id carrying a hello signed by another key
    // is refused by admission and never becomes active.
    let victim = NodeKey::generate().unwrap();
    let forger = NodeKey::generate().unwrap();
    let record = membership::NodeRecord {
        hello: Signed::sign(
            &forger,
            &membership::Hello {
                node_id: victim.id().clone(),
                attributes: BTreeMap::new(),
                capacity: capacity(),
                super_node: false,
                issued_ms: 0,
            },
        ),
        state: NodeState::Joining,
        reason: None,
        changed_by: forger.id().clone(),
        changed_ms: 0,
    };
    // Give it a heartbeat so only admission, not the reaper, decides.
    net.alive
        .put(victim.id().as_str(), "{}".into())
        .await
        .unwrap();
    net.nodes
        .put(
            victim.id().as_str(),
            serde_json::to_vec(&record).unwrap().into(),
        )
        .await
        .unwrap();
    let refused = wait_for(limit, "the forged hello to be refused", || async {
        let (rec, _) = membership::read_record(&net, victim.id()).await.unwrap()?;
        (rec.state == NodeState::Gone).then_some(rec)
    })
    .await;
    assert!(
        refused
            .reason
            .as_deref()
            .unwrap_or("")
            .starts_with("refused:"),
        "{:?}",
        refused.reason
    );

    // Bad labels are refused before anything is written.
    assert!(membership::parse_attribute("no-equals").is_err());
    assert!(membership::parse_attribute("bad key=1").is_err());
    drop(sup);
    drop(a);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_stops_heartbeating_is_marked_gone_within_the_bound() {
    let (_cluster, net) = setup().await;
    let timing = Timing::fast();
    let sup_key = NodeKey::generate().unwrap();
    let _sup = SuperNode::start(net.clone(), sup_key.id().clone(), timing.clone()).unwrap();
    let victim = join(&net, &["role=victim"]).await;
    let survivor = join(&net, &["role=survivor"]).await;
    let limit = Duration::from_secs(20);
    wait_state(&net, victim.id(), NodeState::Active, limit).await;
    wait_state(&net, survivor.id(), NodeState::Active, limit).await;

    // Crash: the heartbeat task stops, nothing is cleaned up.
    let id = victim.id().clone();
    drop(victim);
    let killed = Instant::now();
    let bound = timing.gone_bound();
    // Deadline: three times the stated bound (a loaded 2-core machine),
    // and the measured time is printed.
    let gone = wait_state(&net, &id, NodeState::Gone, bound * 3).await;
    eprintln!(
        "marked gone {:.2} s after the last heartbeat task stopped (stated bound {:.1} s)",
        killed.elapsed().as_secs_f64(),
        bound.as_secs_f64()
    );
    assert!(gone.reason.unwrap().contains("no heartbeat"));
    assert_eq!(&gone.changed_by, sup_key.id());
    assert!(!gone.alive);
    let s = view(&net, survivor.id()).await.unwrap();
    assert_eq!(
        s.state,
        NodeState::Active,
        "a node that heartbeats stays active"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lease_duties_move_to_another_super_node_when_the_holder_stops() {
    let (_cluster, net) = setup().await;
    let timing = Timing::fast();
    let k1 = NodeKey::generate().unwrap();
    let k2 = NodeKey::generate().unwrap();
    let mut supers = [
        Some(SuperNode::start(net.clone(), k1.id().clone(), timing.clone()).unwrap()),
        Some(SuperNode::start(net.clone(), k2.id().clone(), timing.clone()).unwrap()),
    ];
    let ids = [k1.id().clone(), k2.id().clone()];
    let limit = Duration::from_secs(20);
    let holder = wait_for(limit, "a reaper lease holder", || async {
        lease::holder(&net, names::DUTY_REAPER).await.unwrap()
    })
    .await
    .holder;
    let idx = ids
        .iter()
        .position(|i| *i == holder)
        .expect("held by one of the two");
    let other = ids[1 - idx].clone();

    // Crash the holder (no release): the other takes both duties once the
    // leases expire.
    supers[idx] = None;
    for duty in lease::DUTIES {
        wait_for(
            timing.gone_bound_with_failover() * 3,
            &format!("the {duty} lease to move"),
            || async {
                lease::holder(&net, duty)
                    .await
                    .unwrap()
                    .filter(|v| v.holder == other)
            },
        )
        .await;
    }
    // And it does them: admits a node, reaps it when it crashes.
    let m = join(&net, &[]).await;
    let v = wait_state(&net, m.id(), NodeState::Active, limit).await;
    assert_eq!(v.changed_by, other);
    let id = m.id().clone();
    drop(m);
    let v = wait_state(&net, &id, NodeState::Gone, timing.gone_bound() * 3).await;
    assert_eq!(v.changed_by, other);

    // A clean shutdown releases at once.
    let remaining = supers[1 - idx].take().unwrap();
    remaining.shutdown().await;
    assert!(
        lease::holder(&net, names::DUTY_REAPER)
            .await
            .unwrap()
            .is_none()
    );
}

fn component_bytes(tag: &str, len: usize) -> Vec<u8> {
    // Bigger than one object-store chunk (128 KiB) so reassembly is exercised.
    let mut b = Vec::with_capacity(len);
    let mut x: u32 = 2166136261;
    for c in tag.bytes() {
        x = (x ^ u32::from(c)).wrapping_mul(16777619);
    }
    while b.len() < len {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        b.extend_from_slice(&x.to_le_bytes());
    }
    b.truncate(len);
    b
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deployed_bytes_are_fetched_and_rehashed_and_tampered_bytes_refused() {
    let (cluster, net) = setup().await;
    let deployer = NodeKey::generate().unwrap();
    let bytes = component_bytes("good", 300_000);
    let placement = Placement {
        min_seeders: 2,
        max_seeders: 3,
        required: attrs(&["region=eu-west"]),
    };
    let (ann, _seq) = deploy::deploy(
        &net,
        &deployer,
        &bytes,
        "acct-alice",
        vec!["run".into(), "handle".into()],
        placement.clone(),
    )
    .await
    .unwrap();
    assert_eq!(ann.function, FunctionId::of(&bytes));

    // Another node, its own connection through another server.
    let seeder_key = NodeKey::generate().unwrap();
    let seeder_net = Network::open(async_nats::connect(cluster.url(2)).await.unwrap())
        .await
        .unwrap();
    let feed = AnnouncementFeed::open(&seeder_net, seeder_key.id())
        .await
        .unwrap();
    let got = feed.catch_up().await.unwrap();
    assert_eq!(got.len(), 1);
    let a = got[0].announcement().unwrap();
    assert_eq!(a.function, FunctionId::of(&bytes));
    assert_eq!(a.owner, "acct-alice");
    assert_eq!(a.size, 300_000);
    assert_eq!(a.exports, vec!["run".to_string(), "handle".to_string()]);
    assert_eq!(a.placement, placement);
    assert_eq!(&a.announced_by, deployer.id());
    assert!(a.placement.admits(&attrs(&["region=eu-west", "x=y"])));
    assert!(!a.placement.admits(&attrs(&["region=us-east"])));
    let fetched = deploy::fetch_verified(&seeder_net, &seeder_key, &a.function)
        .await
        .unwrap();
    assert_eq!(fetched, bytes);

    // Deploying the same bytes again stores nothing new and is fine.
    deploy::deploy(
        &net,
        &deployer,
        &bytes,
        "acct-alice",
        vec![],
        Placement::default(),
    )
    .await
    .unwrap();

    // Tampered: other bytes stored under the id of `wanted`.
    let wanted = component_bytes("wanted", 200_000);
    let evil = component_bytes("evil", 200_000);
    let wanted_id = FunctionId::of(&wanted);
    deploy::put_component(&net, &wanted_id, &evil)
        .await
        .unwrap();
    let err = deploy::fetch_verified(&seeder_net, &seeder_key, &wanted_id)
        .await
        .unwrap_err();
    match &err {
        NetError::HashMismatch { expected, actual } => {
            assert_eq!(expected, &wanted_id);
            assert_eq!(actual, &FunctionId::of(&evil));
        }
        other => panic!("expected a hash mismatch, got {other}"),
    }
    // ... and reported, signed by the seeder.
    let reports = net.js.get_stream(names::REPORTS_STREAM).await.unwrap();
    let msg = reports
        .get_last_raw_message_by_subject(names::REPORT_HASH_MISMATCH)
        .await
        .unwrap();
    let signed: Signed = serde_json::from_slice(&msg.payload).unwrap();
    let report: HashMismatchReport = signed.open().unwrap();
    assert_eq!(report.expected, wanted_id);
    assert_eq!(report.actual, FunctionId::of(&evil));
    assert_eq!(&report.reporter, seeder_key.id());

    // Unknown id: a clear not-found.
    let unknown = FunctionId::of(b"never deployed");
    let err = deploy::fetch_verified(&seeder_net, &seeder_key, &unknown)
        .await
        .unwrap_err();
    assert!(matches!(err, NetError::FunctionNotFound(_)), "{err}");
    assert!(err.to_string().contains("deploy it first"));

    // Bad placement is refused before anything is stored or announced.
    let bad = Placement {
        min_seeders: 3,
        max_seeders: 1,
        required: BTreeMap::new(),
    };
    assert!(
        deploy::deploy(&net, &deployer, b"x", "acct", vec![], bad)
            .await
            .is_err()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_was_offline_catches_up_on_announcements() {
    let (_cluster, net) = setup().await;
    let deployer = NodeKey::generate().unwrap();
    let node = NodeKey::generate().unwrap();
    let deploy_one = |tag: &'static str| {
        let net = net.clone();
        let bytes = component_bytes(tag, 1000);
        let deployer = &deployer;
        async move {
            deploy::deploy(&net, deployer, &bytes, "acct", vec![], Placement::default())
                .await
                .unwrap()
                .0
                .function
        }
    };
    let first = deploy_one("one").await;
    {
        let feed = AnnouncementFeed::open(&net, node.id()).await.unwrap();
        let seen = feed.catch_up().await.unwrap();
        assert_eq!(
            seen.iter()
                .map(|r| r.event.function().clone())
                .collect::<Vec<_>>(),
            vec![first]
        );
    } // the node goes offline
    let missed = vec![
        deploy_one("two").await,
        deploy_one("three").await,
        deploy_one("four").await,
    ];
    let feed = AnnouncementFeed::open(&net, node.id()).await.unwrap();
    let caught = feed.catch_up().await.unwrap();
    assert_eq!(
        caught
            .iter()
            .map(|r| r.event.function().clone())
            .collect::<Vec<_>>(),
        missed,
        "exactly what it missed, in order"
    );
    assert!(caught.windows(2).all(|w| w[0].seq < w[1].seq));
    assert!(feed.catch_up().await.unwrap().is_empty());

    // A node that never read the feed gets everything from the start.
    let newcomer = NodeKey::generate().unwrap();
    let all = AnnouncementFeed::open(&net, newcomer.id())
        .await
        .unwrap()
        .catch_up()
        .await
        .unwrap();
    assert_eq!(all.len(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_a_nats_server_while_publishing_loses_no_acknowledged_announcement() {
    let (mut cluster, net) = setup().await;
    let mut stream = net.js.get_stream(names::ANNOUNCE_STREAM).await.unwrap();
    let leader = stream
        .info()
        .await
        .unwrap()
        .cluster
        .clone()
        .and_then(|c| c.leader)
        .expect("an R3 stream has a leader");
    let victim = cluster.index_of(&leader).expect("leader is one of ours");

    let key = Arc::new(NodeKey::generate().unwrap());
    let total = 150usize;
    let (acked_tx, mut acked_rx) = tokio::sync::mpsc::unbounded_channel::<(usize, FunctionId)>();
    let publisher = {
        let net = net.clone();
        let key = key.clone();
        tokio::spawn(async move {
            let mut failures = Vec::new();
            for i in 0..total {
                let id = FunctionId::of(format!("function {i}").as_bytes());
                let a = deploy::Announcement {
                    function: id.clone(),
                    owner: "acct".into(),
                    size: 1,
                    exports: vec![],
                    placement: Placement::default(),
                    announced_by: key.id().clone(),
                    at_ms: i as u64,
                    signatures: vec![],
                    samples: vec![],
                };
                match deploy::announce(&net, &key, &a, PUBLISH_BUDGET).await {
                    Ok(_) => acked_tx.send((i, id)).unwrap(),
                    Err(e) => failures.push(format!("{i}: {e}")),
                }
            }
            failures
        })
    };
    // Kill the stream leader (SIGKILL) once a third has been acknowledged.
    let mut acked = Vec::new();
    while acked.len() < total / 3 {
        acked.push(acked_rx.recv().await.expect("publisher runs"));
    }
    let killed = Instant::now();
    cluster.kill(victim);
    eprintln!("killed {leader} (stream leader) after {} acks", acked.len());
    let failures = publisher.await.unwrap();
    while let Ok(a) = acked_rx.try_recv() {
        acked.push(a);
    }
    eprintln!(
        "{} acked, {} failed; publishing finished {:.1} s after the kill",
        acked.len(),
        failures.len(),
        killed.elapsed().as_secs_f64()
    );
    assert!(
        failures.is_empty(),
        "every announcement is acknowledged within the {PUBLISH_BUDGET:?} budget: {failures:?}"
    );

    // Read the stream back through a surviving server.
    let survivor = (0..3).find(|&i| i != victim).unwrap();
    let reader = Network::open(async_nats::connect(cluster.url(survivor)).await.unwrap())
        .await
        .unwrap();
    let reader_key = NodeKey::generate().unwrap();
    let feed = AnnouncementFeed::open(&reader, reader_key.id())
        .await
        .unwrap();
    let stored: Vec<FunctionId> = feed
        .catch_up()
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.event.function().clone())
        .collect();
    for (i, id) in &acked {
        assert!(stored.contains(id), "acknowledged announcement {i} lost");
    }
    assert_eq!(
        stored.len(),
        acked.len(),
        "retries with the same Nats-Msg-Id stored no duplicates"
    );

    // The killed server comes back and the cluster carries on.
    cluster.restart(victim).await;
    let again = FunctionId::of(b"after restart");
    deploy::announce(
        &net,
        &key,
        &deploy::Announcement {
            function: again,
            owner: "acct".into(),
            size: 1,
            exports: vec![],
            placement: Placement::default(),
            announced_by: key.id().clone(),
            at_ms: 0,
            signatures: vec![],
            samples: vec![],
        },
        PUBLISH_BUDGET,
    )
    .await
    .unwrap();
}
