//! `orb network init|nodes` against a real 3-server JetStream cluster (the
//! pinned nats-server: `scripts/install-nats`, `ORB_NATS_SERVER`).

mod common;

use common::orb_network as orb;
use orb_net::testing::Cluster;
use orb_net::{Capacity, Member, Network, NodeKey, Timing, membership, network};
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Arc;

fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn init_is_idempotent_and_nodes_lists_who_joined() {
    let cluster = Cluster::start(3).await;
    let urls = cluster.urls().join(",");
    let secrets = tempfile::tempdir().unwrap();
    let secrets_dir = secrets.path().join("net");
    let secrets_arg = secrets_dir.to_str().unwrap();

    // Not initialised yet: a clear error that names the fix.
    let (ok, _, err) = orb(&["nodes", "--network", &urls]);
    assert!(!ok);
    assert!(
        err.contains("not initialised") && err.contains("orb network init"),
        "{err}"
    );
    // Bad input is refused before anything is made.
    let (ok, _, err) = orb(&["init", "--network", &urls, "--replicas", "0"]);
    assert!(!ok);
    assert!(err.contains("replicas must be 1 to 5"), "{err}");

    let init = || {
        let (ok, out, err) = orb(&[
            "--json",
            "init",
            "--network",
            &urls,
            "--secrets-dir",
            secrets_arg,
        ]);
        assert!(ok, "{err}");
        json(&out)
    };
    let first = init();
    // The first init made the root key pair and the admin account: the
    // private half and the admin's token in files only the user reads.
    assert!(
        first["root_public_key"]
            .as_str()
            .is_some_and(|k| k.starts_with("ed25519/")),
        "{first}"
    );
    for f in ["root.key", "admin.token"] {
        let path = secrets_dir.join(f);
        let field = format!("{}_file", f.replace('.', "_"));
        assert_eq!(first[field.as_str()], path.to_str().unwrap(), "{first}");
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "{}", path.display());
    }
    let created: Vec<&str> = first["created"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(created.len() >= 6, "{first}");
    assert_eq!(first["existing"].as_array().unwrap().len(), 0, "{first}");
    assert_eq!(first["replicas"], 3);

    // Again: nothing new, the same set exists, the same root key, no files.
    let again = init();
    assert_eq!(again["root_public_key"], first["root_public_key"]);
    assert_eq!(again["root_key_file"], Value::Null, "{again}");
    assert_eq!(again["created"].as_array().unwrap().len(), 0, "{again}");
    let mut existing: Vec<&str> = again["existing"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    let mut created = created;
    existing.sort();
    created.sort();
    assert_eq!(existing, created);

    // No nodes yet; then one joins (in-process, as `orb serve` will).
    let (ok, out, err) = orb(&["nodes", "--network", &urls]);
    assert!(ok, "{err}");
    assert_eq!(out, "");
    assert!(err.contains("no nodes"), "{err}");

    let client = network::connect(&cluster.urls(), "test").await.unwrap();
    let net = Network::open(client).await.unwrap();
    let attributes: BTreeMap<String, String> = ["region=eu-west", "gpu=none"]
        .iter()
        .map(|p| membership::parse_attribute(p).unwrap())
        .collect();
    let member = Member::join(
        net,
        Arc::new(NodeKey::generate().unwrap()),
        attributes,
        Capacity::of_this_machine(8, "test-engine-key"),
        false,
        Timing::fast(),
    )
    .await
    .unwrap();
    let id = member.id().as_str().to_string();

    let (ok, out, err) = orb(&["--json", "nodes", "--network", &urls]);
    assert!(ok, "{err}");
    let v = json(&out);
    let nodes = v["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 1, "{v}");
    assert_eq!(nodes[0]["id"], id.as_str(), "{v}");
    assert_eq!(nodes[0]["alive"], true, "{v}");
    assert_eq!(nodes[0]["hello"]["attributes"]["region"], "eu-west", "{v}");
    assert_eq!(nodes[0]["hello"]["capacity"]["instance_slots"], 8, "{v}");
    let state = nodes[0]["state"].as_str().unwrap().to_string();

    // The plain listing: one line per node.
    let (ok, out, err) = orb(&["nodes", "--network", &cluster.url(1)]);
    assert!(ok, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 1, "{out}");
    for part in [
        id.as_str(),
        state.as_str(),
        "alive",
        "node",
        "slots=8",
        "gpu=none region=eu-west",
    ] {
        assert!(lines[0].contains(part), "{part} not in {out}");
    }

    // After it leaves it is listed as gone, not alive.
    member.leave().await.unwrap();
    let (ok, out, err) = orb(&["--json", "nodes", "--network", &urls]);
    assert!(ok, "{err}");
    let v = json(&out);
    assert_eq!(v["nodes"][0]["state"], "gone", "{v}");
    assert_eq!(v["nodes"][0]["alive"], false, "{v}");
}

#[test]
fn unreachable_servers_and_missing_urls_are_clear_errors() {
    let (ok, _, err) = orb(&["nodes", "--network", "nats://127.0.0.1:1"]);
    assert!(!ok);
    assert!(
        err.contains("cannot reach the network's NATS servers"),
        "{err}"
    );
    let (ok, _, err) = orb(&["nodes"]);
    assert!(!ok);
    assert!(err.contains("--network"), "{err}");
}
