//! Per-role NATS permissions against a real 3-server cluster that requires
//! credentials (`Cluster::start_authorized`: the seeds and `nats-auth.conf`
//! that `orb network init` writes, included by every server): what a node
//! and a super node may and may not do, refused by the servers themselves.

use bytes::Bytes;
use futures_util::StreamExt;
use orb_core::FunctionId;
use orb_net::access::{self, Connection, Role};
use orb_net::deploy::{self, Placement};
use orb_net::lease::{Lease, LeaseState};
use orb_net::membership::{self, Capacity, NodeState};
use orb_net::testing::Cluster;
use orb_net::{Directory, Member, NetError, Network, NodeKey, Timing, inventory, names, rpc};
use std::sync::Arc;
use std::time::{Duration, Instant};

async fn connect(cluster: &Cluster, role: Role) -> Connection {
    let creds = cluster.creds(role).unwrap();
    access::connect_as(&cluster.urls(), role.as_str(), Some(&creds))
        .await
        .unwrap()
}

/// An authorized cluster, initialised by the operator.
async fn setup() -> Cluster {
    let cluster = Cluster::start_authorized(3).await;
    let op = connect(&cluster, Role::Operator).await;
    Network::init(&op.client, 3).await.unwrap();
    cluster
}

/// Runs `op` on `conn` and asserts the servers refused `subject` to `role`
/// (the refusal is the server's own `-ERR`, not a timeout).
async fn assert_refused<F: std::future::Future>(
    conn: &Connection,
    role: &str,
    subject: &str,
    op: F,
) -> NetError {
    let err = match conn.guard(op).await {
        Err(e) => e,
        Ok(_) => panic!("{subject} was not refused to {role}"),
    };
    match &err {
        NetError::Refused {
            role: r,
            subject: s,
            ..
        } => {
            assert_eq!((r.as_str(), s.as_str()), (role, subject), "{err}");
        }
        other => panic!("expected a refusal of {subject}, got {other}"),
    }
    assert_eq!(err.code(), "network_forbidden");
    err
}

/// Publishes and flushes: the servers' answer to a refused publish comes
/// after the flush.
async fn publish(conn: &Connection, subject: &str) {
    conn.client
        .publish(subject.to_string(), Bytes::from_static(b"{}"))
        .await
        .unwrap();
    conn.client.flush().await.unwrap();
}

fn never() -> impl std::future::Future<Output = ()> {
    std::future::pending()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_does_its_part_and_the_servers_refuse_it_the_rest() {
    let cluster = setup().await;
    let node = connect(&cluster, Role::Node).await;
    assert_eq!(node.role, Some(Role::Node));
    let net = Network::open(node.client.clone()).await.unwrap();

    // Everything a node does today: join (heartbeat + record), put an
    // upload's bytes, read announcements through its durable consumer,
    // withdraw a function, claim and give back a seeding slot, write a
    // record and a revocation. (A deploy is announced by the super node
    // that validated it.)
    let key = Arc::new(NodeKey::generate().unwrap());
    let member = Member::join(
        net.clone(),
        key.clone(),
        Default::default(),
        Capacity::of_this_machine(4, "test"),
        false,
        Timing::fast(),
    )
    .await
    .unwrap();
    assert_eq!(
        membership::read_record(&net, key.id())
            .await
            .unwrap()
            .unwrap()
            .0
            .state,
        NodeState::Joining
    );
    assert!(membership::is_alive(&net, key.id()).await.unwrap());
    let bytes = b"not really a component";
    deploy::put_component(&net, &FunctionId::of(bytes), bytes)
        .await
        .unwrap();
    let sup = connect(&cluster, Role::Super).await;
    let sup_net = Network::open(sup.client.clone()).await.unwrap();
    let sup_key = NodeKey::generate().unwrap();
    let (a, _) = deploy::deploy(
        &sup_net,
        &sup_key,
        bytes,
        "acct",
        vec!["run".into()],
        Placement::default(),
    )
    .await
    .unwrap();
    let feed = deploy::AnnouncementFeed::open(&net, key.id())
        .await
        .unwrap();
    let got = feed.catch_up().await.unwrap();
    assert_eq!(got.len(), 1);
    let fetched = deploy::fetch_verified(&net, &key, &a.function)
        .await
        .unwrap();
    assert_eq!(&fetched[..], b"not really a component");
    deploy::deprecate(
        &net,
        &key,
        &deploy::Deprecation {
            function: a.function.clone(),
            owner: "acct".into(),
            announced_by: key.id().clone(),
            at_ms: orb_net::network::now_ms(),
        },
        orb_net::network::PUBLISH_BUDGET,
    )
    .await
    .unwrap();
    assert_eq!(
        inventory::claim(&net, &a.function, key.id(), 1, 1)
            .await
            .unwrap(),
        Some(0)
    );
    inventory::release(&net, &a.function, key.id(), 1)
        .await
        .unwrap();
    Directory::put_record(&net, "alias", "acct/x", Some(Bytes::from_static(b"1")))
        .await
        .unwrap();
    Directory::revoke(&net, &["ab".repeat(16)]).await.unwrap();
    assert!(member.drain().await.unwrap());
    member.leave().await.unwrap();
    assert!(node.refusals.all().is_empty(), "{:?}", node.refusals.all());

    // What is not a node's: refused by the servers, naming the subject.
    let deploy_subject = names::announce_deploy(&a.function.hex());
    let e = assert_refused(
        &node,
        "node",
        &deploy_subject,
        deploy::announce(&net, &key, &a, orb_net::network::PUBLISH_BUDGET),
    )
    .await;
    assert!(e.to_string().contains("nats-super.nk"), "{e}");
    let target = NodeKey::generate().unwrap();
    let control = names::control_subject(target.id());
    let e = assert_refused(&node, "node", &control, async {
        publish(&node, &control).await;
        never().await
    })
    .await;
    assert!(e.to_string().contains("nats-operator.nk"), "{e}");
    let seed = names::seed_request_subject(target.id());
    assert_refused(&node, "node", &seed, async {
        publish(&node, &seed).await;
        never().await
    })
    .await;
    let e = assert_refused(
        &node,
        "node",
        "$KV.orb_leases.x",
        net.leases.put("x", Bytes::from_static(b"1")),
    )
    .await;
    assert!(e.to_string().contains("nats-super.nk"), "{e}");
    assert_refused(
        &node,
        "node",
        "$KV.orb_accounts.x",
        Directory::put_account(&net, "x", Bytes::from_static(b"{}")),
    )
    .await;
    assert_refused(
        &node,
        "node",
        "$KV.orb_network.meta",
        net.meta_store.put("meta", Bytes::from_static(b"{}")),
    )
    .await;
    assert_refused(
        &node,
        "node",
        "$JS.API.STREAM.DELETE.ORB_ANNOUNCE",
        net.js.delete_stream(names::ANNOUNCE_STREAM),
    )
    .await;
    assert_refused(&node, "node", "$JS.API.STREAM.PURGE.KV_orb_nodes", async {
        let s = net.js.get_stream("KV_orb_nodes").await.unwrap();
        s.purge().await
    })
    .await;
    assert_refused(
        &node,
        "node",
        "$JS.API.STREAM.CREATE.EVIL",
        net.js.create_stream(async_nats::jetstream::stream::Config {
            name: "EVIL".into(),
            subjects: vec!["evil.>".into()],
            ..Default::default()
        }),
    )
    .await;
    // A lease is a super node's: a node never holds one.
    let mut lease = Lease::new(
        net.clone(),
        names::DUTY_ADMIT,
        key.id().clone(),
        Duration::from_secs(2),
    );
    let refused = node.refusals.all().len();
    assert_eq!(lease.tick().await, LeaseState::NotHeld);
    assert!(
        node.refusals
            .wait_for(Duration::from_secs(10), |r| r.subject
                == "$KV.orb_leases.admit")
            .await
            .is_some(),
        "{:?}",
        &node.refusals.all()[refused..]
    );
    // Answering fallbacks is the super nodes': the subscription is refused.
    let e = assert_refused(&node, "node", names::FALLBACK_SUBJECTS, async {
        let _sub = node
            .client
            .queue_subscribe(names::FALLBACK_SUBJECTS, names::SUPERS_QUEUE.into())
            .await
            .unwrap();
        node.client.flush().await.unwrap();
        never().await
    })
    .await;
    match e {
        NetError::Refused { op, .. } => assert_eq!(op, "subscription"),
        other => panic!("{other}"),
    }
    // … and so is validating uploads.
    assert_refused(&node, "node", names::VALIDATE, async {
        let _sub = node
            .client
            .queue_subscribe(names::VALIDATE, names::SUPERS_QUEUE.into())
            .await
            .unwrap();
        node.client.flush().await.unwrap();
        never().await
    })
    .await;
    // The operator could do all of it.
    let op = connect(&cluster, Role::Operator).await;
    let op_net = Network::open(op.client.clone()).await.unwrap();
    op_net
        .leases
        .put("x", Bytes::from_static(b"1"))
        .await
        .unwrap();
    assert!(op.refusals.all().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_super_node_holds_leases_writes_accounts_and_answers_fallbacks() {
    let cluster = setup().await;
    let sup = connect(&cluster, Role::Super).await;
    let net = Network::open(sup.client.clone()).await.unwrap();
    let key = NodeKey::generate().unwrap();

    // Leases and accounts are a super node's.
    let mut lease = Lease::new(
        net.clone(),
        names::DUTY_REAPER,
        key.id().clone(),
        Duration::from_secs(2),
    );
    assert_eq!(lease.tick().await, LeaseState::Held);
    lease.release().await;
    Directory::put_account(&net, "acct-1", Bytes::from_static(b"{\"id\":\"acct-1\"}"))
        .await
        .unwrap();
    net.leases
        .put("free-form", Bytes::from_static(b"1"))
        .await
        .unwrap();
    assert_eq!(
        &net.accounts.get("acct-1").await.unwrap().unwrap()[..],
        b"{\"id\":\"acct-1\"}"
    );

    // It answers fallbacks and validations in the `supers` queue group: a
    // node's requests reach it.
    let node = connect(&cluster, Role::Node).await;
    let hex = FunctionId::of(b"f").hex();
    for (listen, ask) in [
        (
            names::FALLBACK_SUBJECTS.to_string(),
            names::fallback_subject(&hex),
        ),
        (names::VALIDATE.to_string(), names::VALIDATE.to_string()),
    ] {
        let mut sub = sup
            .client
            .queue_subscribe(listen, names::SUPERS_QUEUE.into())
            .await
            .unwrap();
        sup.client.flush().await.unwrap();
        let answering = {
            let client = sup.client.clone();
            tokio::spawn(async move {
                while let Some(m) = sub.next().await {
                    if let Some(reply) = m.reply {
                        client
                            .publish(reply, Bytes::from_static(b"done"))
                            .await
                            .unwrap();
                    }
                }
            })
        };
        let start = Instant::now();
        let answer = loop {
            match node.client.request(ask.clone(), Bytes::new()).await {
                Ok(m) => break m,
                Err(e) => {
                    // The subscription reaches the other servers shortly after.
                    assert!(start.elapsed() < Duration::from_secs(10), "{ask}: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        };
        assert_eq!(&answer.payload[..], b"done", "{ask}");
        answering.abort();
    }
    assert!(sup.refusals.all().is_empty(), "{:?}", sup.refusals.all());
    assert!(node.refusals.all().is_empty(), "{:?}", node.refusals.all());

    // … but only in that group, and draining nodes is still the operator's.
    let e = assert_refused(&sup, "super", names::FALLBACK_SUBJECTS, async {
        let _sub = sup
            .client
            .queue_subscribe(names::FALLBACK_SUBJECTS, "others".into())
            .await
            .unwrap();
        sup.client.flush().await.unwrap();
        never().await
    })
    .await;
    assert!(matches!(e, NetError::Refused { ref op, .. } if op == "subscription"));
    let control = names::control_subject(key.id());
    assert_refused(&sup, "super", &control, async {
        publish(&sup, &control).await;
        never().await
    })
    .await;
    assert_refused(
        &sup,
        "super",
        "$JS.API.STREAM.DELETE.ORB_REPORTS",
        net.js.delete_stream(names::REPORTS_STREAM),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_servers_refuse_connections_without_known_credentials() {
    let cluster = Cluster::start_authorized(3).await;
    let urls = cluster.urls();

    let err = access::connect_as(&urls, "anon", None)
        .await
        .err()
        .expect("no credentials is refused");
    assert_eq!(err.code(), "network_unauthorized", "{err}");
    assert!(err.to_string().contains("--creds"), "{err}");

    // Seeds of another network (another init) are not these servers'.
    let other = tempfile::tempdir().unwrap();
    let files = access::write_credentials(other.path()).unwrap();
    let err = access::connect_as(&urls, "stranger", Some(files.seed(Role::Operator)))
        .await
        .err()
        .expect("unknown credentials are refused");
    assert_eq!(err.code(), "network_unauthorized", "{err}");
    assert!(err.to_string().contains("role operator"), "{err}");

    // A super node with the node's credentials would be refused its
    // duties: it is refused before it starts.
    let node_creds = cluster.creds(Role::Node).unwrap();
    let err = access::connect_member(&urls, "s", Some(&node_creds), true)
        .await
        .expect_err("a super node with node credentials");
    assert_eq!(err.code(), "network_credentials", "{err}");
    assert!(err.to_string().contains("nats-super.nk"), "{err}");
    access::connect_member(&urls, "n", Some(&node_creds), false)
        .await
        .unwrap();

    // A seed file others may read is refused.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let path = files.seed(Role::Node);
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = access::connect_as(&urls, "loose", Some(path))
            .await
            .err()
            .expect("a seed readable by others");
        assert_eq!(err.code(), "network_credentials", "{err}");
        assert!(err.to_string().contains("chmod 600"), "{err}");
    }
}

/// What the servers do not stop (nats-io/nats-server#8274): a node may
/// create a push consumer that delivers stream messages it wrote to
/// `orb.control.<id>`, a subject it may not publish to. Such deliveries
/// carry an ack subject as their reply, never an inbox, and a node's
/// request subscriptions (`rpc::Served`) drop them: only real requests
/// reach the node.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_push_consumer_aimed_at_a_request_subject_does_not_reach_the_node() {
    use async_nats::jetstream::consumer::{AckPolicy, push};
    let cluster = setup().await;
    let victim = NodeKey::generate().unwrap();
    let control = names::control_subject(victim.id());

    // The victim node listens on its control subject.
    let listener = connect(&cluster, Role::Node).await;
    let listener_net = Network::open(listener.client.clone()).await.unwrap();
    let mut served = rpc::Served::subscribe(&listener_net, &control, victim.id().as_str())
        .await
        .unwrap();
    let mut raw = listener.client.subscribe(control.clone()).await.unwrap();
    listener.client.flush().await.unwrap();

    // Another node writes a drain request as a record and has it
    // delivered to the victim's control subject.
    let attacker = connect(&cluster, Role::Node).await;
    let net = Network::open(attacker.client.clone()).await.unwrap();
    Directory::put_record(
        &net,
        "alias",
        "forged",
        Some(Bytes::from_static(b"\"Drain\"")),
    )
    .await
    .unwrap();
    let stream = net.js.get_stream("KV_orb_records").await.unwrap();
    stream
        .create_consumer(push::Config {
            deliver_subject: control.clone(),
            ack_policy: AckPolicy::None,
            ..Default::default()
        })
        .await
        .unwrap();
    let forged = tokio::time::timeout(Duration::from_secs(10), raw.next())
        .await
        .expect("the servers deliver it")
        .unwrap();
    assert_eq!(&forged.payload[..], b"\"Drain\"");
    let reply = forged
        .reply
        .clone()
        .map(|r| r.to_string())
        .unwrap_or_default();
    assert!(reply.starts_with("$JS.ACK."), "{reply}");

    // The operator's real request is the one the node gets.
    let op = connect(&cluster, Role::Operator).await;
    let asking = {
        let client = op.client.clone();
        let control = control.clone();
        tokio::spawn(async move { client.request(control, Bytes::from_static(b"real")).await })
    };
    let got = tokio::time::timeout(Duration::from_secs(10), served.next())
        .await
        .expect("the real request arrives")
        .unwrap();
    assert_eq!(&got.payload[..], b"real");
    rpc::answer(&listener_net, &got, Bytes::from_static(b"ok"))
        .await
        .unwrap();
    assert_eq!(&asking.await.unwrap().unwrap().payload[..], b"ok");
}
