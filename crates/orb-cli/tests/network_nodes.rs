//! Real `orb serve --network` processes on a real 3-server JetStream
//! cluster (the pinned nats-server: `scripts/install-nats`,
//! `ORB_NATS_SERVER`): joining, one set of accounts and revocations for the
//! whole network, dead nodes marked gone, super-node duties failing over.

mod common;

use common::{Server, assert_error, orb_bin};
use orb_net::testing::Cluster;
use orb_net::{Network, lease, network};
use serde_json::{Value, json};
use std::path::Path;
use std::time::{Duration, Instant};

/// `orb network init` into `dir`; the admin's private token.
fn init(urls: &str, dir: &Path) -> String {
    let out = std::process::Command::new(orb_bin())
        .args(["network", "init", "--network", urls, "--secrets-dir"])
        .arg(dir)
        .env_remove("ORB_NETWORK")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::read_to_string(dir.join("admin.token"))
        .unwrap()
        .trim()
        .to_string()
}

/// Polls `GET /v1/network/nodes` on `s` until `pred` holds (or panics
/// after `limit` with the last answer).
async fn wait_nodes(s: &Server, limit: Duration, pred: impl Fn(&[Value]) -> bool) -> Value {
    let start = Instant::now();
    loop {
        let (st, v) = s.get("/v1/network/nodes").await;
        assert_eq!(st, 200, "{v}");
        if pred(v["nodes"].as_array().unwrap()) {
            return v;
        }
        assert!(
            start.elapsed() < limit,
            "not reached after {limit:?}: {v:#}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn node<'a>(nodes: &'a [Value], id: &str) -> Option<&'a Value> {
    nodes.iter().find(|n| n["id"] == id)
}

fn is(nodes: &[Value], id: &str, state: &str, alive: bool) -> bool {
    node(nodes, id).is_some_and(|n| n["state"] == state && n["alive"] == alive)
}

#[tokio::test(flavor = "multi_thread")]
async fn nodes_join_share_accounts_and_revocations_and_super_duties_fail_over() {
    let cluster = Cluster::start(3).await;
    let urls = cluster.urls().join(",");
    let tmp = tempfile::tempdir().unwrap();
    let secrets = tmp.path().join("net");
    let admin = init(&urls, &secrets);
    let key = secrets.join("root.key");
    let key = key.to_str().unwrap();

    let start = |name: &str, extra: &[&str]| {
        let dir = tmp.path().join(name);
        std::fs::create_dir_all(&dir).unwrap();
        let mut args = vec!["--network", urls.as_str()];
        args.extend_from_slice(extra);
        Server::start_networked(&dir, &args, &admin)
    };
    let a = start("a", &["--super", "--network-key", key]);
    let b = start("b", &["--super", "--network-key", key]);
    let mut c = start("c", &["--attr", "region=eu-west", "--attr", "tier=edge"]);

    // Every node sees all three active and alive, and knows which it is.
    let mut ids = Vec::new();
    for s in [&a, &b, &c] {
        let v = wait_nodes(s, Duration::from_secs(30), |ns| {
            ns.len() == 3
                && ns
                    .iter()
                    .all(|n| n["state"] == "active" && n["alive"] == true)
        })
        .await;
        ids.push(v["this_node"].as_str().unwrap().to_string());
    }
    let (id_a, id_b, id_c) = (ids[0].clone(), ids[1].clone(), ids[2].clone());
    assert!(id_a != id_b && id_b != id_c && id_a != id_c, "{ids:?}");
    let v = wait_nodes(&a, Duration::from_secs(5), |_| true).await;
    let nodes = v["nodes"].as_array().unwrap();
    let c_view = node(nodes, &id_c).unwrap();
    assert_eq!(c_view["hello"]["super_node"], false, "{c_view}");
    assert_eq!(
        c_view["hello"]["attributes"]["region"], "eu-west",
        "{c_view}"
    );
    assert_eq!(c_view["hello"]["attributes"]["tier"], "edge", "{c_view}");
    assert_eq!(node(nodes, &id_a).unwrap()["hello"]["super_node"], true);

    // One root key: every node answers with the network's public key.
    let mut keys = Vec::new();
    for s in [&a, &b, &c] {
        let (st, v) = s.get_as("/v1/auth/public-key", None).await;
        assert_eq!(st, 200, "{v}");
        keys.push(v.to_string());
    }
    assert!(keys.iter().all(|k| k == &keys[0]), "{keys:?}");

    // An account made on super node A; its private token works everywhere.
    let (st, acc) = a.post_json("/v1/accounts", &json!({"name": "shop"})).await;
    assert_eq!(st, 201, "{acc}");
    let shop = acc["token"].as_str().unwrap().to_string();
    for s in [&a, &b, &c] {
        let (st, v) = s.get_as("/v1/functions", Some(&shop)).await;
        assert_eq!(st, 200, "{v}");
    }
    // A public token minted on super node B works on A and C.
    let public = b.mint_as(&json!({}), Some(&shop)).await;
    for s in [&a, &b, &c] {
        let (st, v) = s.get_as("/v1/activations", Some(&public)).await;
        assert_eq!(st, 200, "{v}");
    }
    // A plain node holds no private root key: minting is a super node's.
    let (st, v) = c.post_json("/v1/accounts", &json!({"name": "x"})).await;
    let e = assert_error(st, &v, 421, "super_node_required");
    assert!(e["message"].as_str().unwrap().contains("super node"), "{v}");
    let (st, v) = c.post_json_as("/v1/tokens", &json!({}), Some(&shop)).await;
    assert_error(st, &v, 421, "super_node_required");

    // Revoked on plain node C: refused on every node.
    let (st, v) = c
        .post_json_as("/v1/tokens/revoke", &json!({"token": public}), Some(&shop))
        .await;
    assert_eq!(st, 200, "{v}");
    let revoked_at = Instant::now();
    for s in [&a, &b, &c] {
        loop {
            let (st, v) = s.get_as("/v1/activations", Some(&public)).await;
            if st == 401 {
                assert_error(st, &v, 401, "token_revoked");
                break;
            }
            assert_eq!(st, 200, "{v}");
            assert!(
                revoked_at.elapsed() < Duration::from_secs(10),
                "the revocation did not reach {}",
                s.url
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    eprintln!(
        "revocation reached all 3 nodes within {:?}",
        revoked_at.elapsed()
    );
    // The account's private token was not touched.
    let (st, v) = b.get_as("/v1/functions", Some(&shop)).await;
    assert_eq!(st, 200, "{v}");

    // kill -9 of node C: the reaper marks it gone (bound: 5 s by default).
    c.kill9();
    let killed = Instant::now();
    let v = wait_nodes(&a, Duration::from_secs(20), |ns| {
        is(ns, &id_c, "gone", false)
    })
    .await;
    eprintln!("a killed node was marked gone after {:?}", killed.elapsed());
    let reason = node(v["nodes"].as_array().unwrap(), &id_c).unwrap()["reason"].clone();
    assert!(
        reason.as_str().is_some_and(|r| r.contains("heartbeat")),
        "{reason}"
    );

    // Super node A stops cleanly: it is listed as left, and B holds every
    // duty; a node joining now is admitted by B.
    let net = Network::open(network::connect(&cluster.urls(), "test").await.unwrap())
        .await
        .unwrap();
    assert!(a.stop().success());
    let v = wait_nodes(&b, Duration::from_secs(10), |ns| {
        is(ns, &id_a, "gone", false)
    })
    .await;
    let left = node(v["nodes"].as_array().unwrap(), &id_a).unwrap();
    assert_eq!(left["reason"], "left", "{left}");
    let deadline = Instant::now() + Duration::from_secs(30);
    for duty in ["admit", "reaper"] {
        loop {
            let holder = lease::holder(&net, duty).await.unwrap();
            if holder.as_ref().is_some_and(|h| h.holder.as_str() == id_b) {
                break;
            }
            assert!(Instant::now() < deadline, "{duty} held by {holder:?}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    let d = start("d", &[]);
    let v = wait_nodes(&d, Duration::from_secs(30), |ns| {
        ns.iter().any(|n| {
            n["state"] == "active" && n["hello"]["super_node"] == false && n["alive"] == true
        })
    })
    .await;
    let id_d = v["this_node"].as_str().unwrap();
    let admitted = node(v["nodes"].as_array().unwrap(), id_d).unwrap();
    assert_eq!(admitted["state"], "active", "{admitted}");
    assert_eq!(admitted["changed_by"], id_b.as_str(), "{admitted}");
    // The account made on A (now gone) still works on the newcomer.
    let (st, v) = d.get_as("/v1/functions", Some(&shop)).await;
    assert_eq!(st, 200, "{v}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_single_node_says_it_is_not_networked_and_bad_network_flags_are_refused() {
    let s = Server::start(&[]);
    let (st, v) = s.get("/v1/network/nodes").await;
    let e = assert_error(st, &v, 404, "not_networked");
    assert!(e["message"].as_str().unwrap().contains("--network"), "{v}");

    // A network that was never initialised, a super node without the key,
    // and a bad attribute: each stops the node at start with the fix named.
    let cluster = Cluster::start(1).await;
    let tmp = tempfile::tempdir().unwrap();
    let serve = |extra: &[&str]| {
        let out = std::process::Command::new(orb_bin())
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(tmp.path().join("n"))
            .args(["--network", &cluster.url(0)])
            .args(extra)
            .env_remove("ORB_NETWORK")
            .output()
            .unwrap();
        assert!(!out.status.success());
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let err = serve(&[]);
    assert!(err.contains("orb network init"), "{err}");
    init(&cluster.url(0), &tmp.path().join("net"));
    let err = serve(&["--super"]);
    assert!(err.contains("--network-key"), "{err}");
    let other = tmp.path().join("other.key");
    std::fs::write(
        &other,
        orb_auth::Authority::generate().private_key_text().unwrap(),
    )
    .unwrap();
    let err = serve(&["--super", "--network-key", other.to_str().unwrap()]);
    assert!(err.contains("is not this network's root key"), "{err}");
    let err = serve(&["--attr", "no-equals-sign"]);
    assert!(err.contains("key=value"), "{err}");
}
