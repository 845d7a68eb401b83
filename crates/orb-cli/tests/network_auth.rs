//! A network whose NATS servers require credentials, end to end: `orb
//! network init --auth-only` writes the three roles' seeds and
//! `nats-auth.conf`, a real 3-server cluster includes it, `orb network
//! init` runs with the operator's seed, a super node and two nodes join with
//! theirs, a function deployed through a node is called through all, its
//! seeder dies and the super node falls back and has the other node seed
//! it, and draining is refused to the node's credentials but not the
//! operator's. The servers' logs show no refusal of any node.

mod common;

use common::{Server, orb_network, this_node, wait_nodes};
use orb_net::testing::Cluster;
use serde_json::{Value, json};
use std::path::Path;
use std::time::{Duration, Instant};

fn parse(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

fn arg(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Calls through `s` until it answers 200 (seeding is asynchronous).
async fn call_until_ok(s: &Server, hash: &str) -> Value {
    let start = Instant::now();
    loop {
        let (st, v) = s.call(hash, "add", json!({"a": 2, "b": 40})).await;
        if st == 200 {
            return v;
        }
        assert!(start.elapsed() < Duration::from_secs(30), "{st} {v}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn roles_join_with_their_credentials_and_only_the_operator_drains() {
    let tmp = tempfile::tempdir().unwrap();
    let secrets = tmp.path().join("net");

    // Bootstrap: the credentials and the servers' include first.
    let (ok, out, err) = orb_network(&[
        "--json",
        "init",
        "--auth-only",
        "--secrets-dir",
        arg(&secrets),
    ]);
    assert!(ok, "{err}");
    let auth = parse(&out)["nats_credentials"].clone();
    assert_eq!(auth["created"].as_array().unwrap().len(), 3, "{auth}");
    for role in ["operator", "super", "node"] {
        let path = secrets.join(format!("nats-{role}.nk"));
        assert_eq!(auth["seeds"][role], arg(&path), "{auth}");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "{}", path.display());
        }
    }
    let seeds_before: Vec<String> = ["operator", "super", "node"]
        .iter()
        .map(|r| std::fs::read_to_string(secrets.join(format!("nats-{r}.nk"))).unwrap())
        .collect();
    let cluster = Cluster::start_authorized_in(3, &secrets).await;
    let urls = cluster.urls().join(",");
    let operator = secrets.join("nats-operator.nk");
    let super_creds = secrets.join("nats-super.nk");
    let node_creds = secrets.join("nats-node.nk");

    // Without credentials the servers refuse; the error says what to do.
    let (ok, _, err) = orb_network(&["init", "--network", &urls, "--secrets-dir", arg(&secrets)]);
    assert!(!ok);
    assert!(err.contains("error[network_unauthorized]"), "{err}");
    assert!(err.contains("--creds"), "{err}");

    // A node may not create the network's streams.
    let (ok, _, err) = orb_network(&[
        "init",
        "--network",
        &urls,
        "--creds",
        arg(&node_creds),
        "--secrets-dir",
        arg(&secrets),
    ]);
    assert!(!ok);
    assert!(err.contains("error[network_forbidden]"), "{err}");
    assert!(err.contains("$JS.API.STREAM.CREATE."), "{err}");

    let (ok, out, err) = orb_network(&[
        "--json",
        "init",
        "--network",
        &urls,
        "--creds",
        arg(&operator),
        "--secrets-dir",
        arg(&secrets),
    ]);
    assert!(ok, "{err}");
    let init = parse(&out);
    assert_eq!(
        init["nats_credentials"]["created"],
        json!([]),
        "a second run keeps the seeds: {init}"
    );
    let seeds_after: Vec<String> = ["operator", "super", "node"]
        .iter()
        .map(|r| std::fs::read_to_string(secrets.join(format!("nats-{r}.nk"))).unwrap())
        .collect();
    assert_eq!(seeds_before, seeds_after);
    let admin = std::fs::read_to_string(secrets.join("admin.token"))
        .unwrap()
        .trim()
        .to_string();

    // A node without credentials, or a super node with the node's, does
    // not start; the error says what to do.
    for (extra, code, hint) in [
        (vec![], "error[network_unauthorized]", "--network-creds"),
        (
            vec!["--super", "--network-creds", arg(&node_creds)],
            "error[network_credentials]",
            "nats-super.nk",
        ),
    ] {
        let dir = tmp.path().join("refused");
        let mut cmd = tokio::process::Command::new(common::orb_bin());
        cmd.args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--network",
            &urls,
            "--data-dir",
        ])
        .arg(&dir)
        .args(&extra)
        .env_remove("ORB_NETWORK_CREDS")
        .kill_on_drop(true);
        let out = tokio::time::timeout(Duration::from_secs(60), cmd.output())
            .await
            .expect("orb serve with refused credentials exits")
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{err}");
        assert!(err.contains(code) && err.contains(hint), "{err}");
    }

    // A super node (flags) and two nodes: one with `[network] creds` in its
    // orb.toml, one with the flag.
    let start = |name: &str, toml: &str, extra: &[&str]| {
        let dir = tmp.path().join(name);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("orb.toml"), toml).unwrap();
        let mut args = vec!["--network", urls.as_str()];
        args.extend_from_slice(extra);
        Server::start_networked(&dir, &args, &admin)
    };
    let sup = start(
        "super",
        "",
        &[
            "--super",
            "--network-key",
            arg(&secrets.join("root.key")),
            "--network-creds",
            arg(&super_creds),
        ],
    );
    let mut workers = [
        start(
            "w1",
            &format!("[network]\ncreds = {:?}\n", arg(&node_creds)),
            &["--attr", "tier=worker"],
        ),
        start(
            "w2",
            "",
            &["--attr", "tier=worker", "--network-creds", arg(&node_creds)],
        ),
    ];
    wait_nodes(&sup, Duration::from_secs(30), |ns| {
        ns.len() == 3 && ns.iter().all(|n| n["state"] == "active")
    })
    .await;
    let ids = [this_node(&workers[0]).await, this_node(&workers[1]).await];

    // Deployed through a node (component store, announcement) for one
    // worker to seed, and called through every node.
    let r = workers[0]
        .http
        .post(format!(
            "{}/v1/functions?require=tier=worker&min_seeders=1&max_seeders=1",
            workers[0].url
        ))
        .header("authorization", workers[0].bearer())
        .header("content-type", "application/wasm")
        .body(common::guest("calc"))
        .send()
        .await
        .unwrap();
    let (st, v) = common::decode(r).await;
    assert_eq!(st, 201, "{v}");
    let hash = v["hash"].as_str().unwrap().to_string();
    for s in [&workers[0], &workers[1], &sup] {
        let out = call_until_ok(s, &hash).await;
        assert_eq!(out["result"], 42, "{out}");
    }
    // The seeder, as a node's credentials read it through `orb network`.
    let seeder = wait_seeder(&urls, &hash, &node_creds, |_| true).await;
    let victim = ids.iter().position(|id| *id == seeder).unwrap();
    let spare = 1 - victim;

    // An account made on the super node (orb_accounts) works on a node; a
    // token revoked on a node (orb_revocations) is refused on the super node.
    let (st, acc) = sup
        .post_json("/v1/accounts", &json!({"name": "shop"}))
        .await;
    assert_eq!(st, 201, "{acc}");
    let shop = acc["token"].as_str().unwrap().to_string();
    let public = sup.mint_as(&json!({}), Some(&shop)).await;
    let start_at = Instant::now();
    loop {
        let (st, _) = workers[spare].get_as("/v1/functions", Some(&shop)).await;
        if st == 200 {
            break;
        }
        assert!(start_at.elapsed() < Duration::from_secs(10), "{st}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (st, v) = workers[spare]
        .post_json_as("/v1/tokens/revoke", &json!({"token": public}), Some(&shop))
        .await;
    assert_eq!(st, 200, "{v}");
    let start_at = Instant::now();
    loop {
        let (st, _) = sup.get_as("/v1/activations", Some(&public)).await;
        if st == 401 {
            break;
        }
        assert!(start_at.elapsed() < Duration::from_secs(10), "{st}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // The seeder dies: calls fall back to the super node (orb.fallback.*
    // in the `supers` group) and the repair duty asks the other worker to
    // seed (orb.seed.<id>, a super node's).
    workers[victim].kill9();
    let out = call_until_ok(&sup, &hash).await;
    assert_eq!(out["result"], 42, "{out}");
    wait_seeder(&urls, &hash, &node_creds, |id| id == ids[spare]).await;
    for s in [&workers[spare], &sup] {
        let out = call_until_ok(s, &hash).await;
        assert_eq!(out["result"], 42, "{out}");
    }

    // Nothing a node or the super node did was refused by the servers
    // (their logs name each refused client; the CLI's refused init above
    // is not a node's).
    let refused = node_refusals(&cluster);
    assert!(
        refused.is_empty(),
        "the servers refused a node: {refused:#?}"
    );
    assert!(
        cluster.logs().contains("Publish Violation"),
        "the servers log refusals (the node's init above)"
    );

    // Reading the network is allowed to a node's credentials …
    let node_id = ids[spare].clone();
    let (ok, out, err) = orb_network(&["nodes", "--network", &urls, "--creds", arg(&node_creds)]);
    assert!(ok, "{err}");
    assert!(out.contains(&node_id), "{out}");
    // … draining is the operator's: refused by the servers, said at once.
    let (ok, _, err) = orb_network(&[
        "drain",
        &node_id,
        "--network",
        &urls,
        "--creds",
        arg(&node_creds),
    ]);
    assert!(!ok);
    assert!(err.contains("error[network_forbidden]"), "{err}");
    assert!(err.contains(&format!("orb.control.{node_id}")), "{err}");
    assert!(err.contains("nats-operator.nk"), "{err}");
    let (_, v) = sup.get("/v1/network/nodes").await;
    let n = v["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["id"] == node_id.as_str())
        .unwrap()
        .clone();
    assert_eq!(
        n["state"], "active",
        "the refused drain changed nothing: {n}"
    );

    // With the operator's credentials (here from the environment) it works.
    let out = std::process::Command::new(common::orb_bin())
        .args([
            "--json",
            "network",
            "drain",
            &node_id,
            "--network",
            &urls,
            "--wait",
            "0",
        ])
        .env("ORB_NETWORK_CREDS", &operator)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let report = parse(&String::from_utf8_lossy(&out.stdout));
    assert_eq!(report["node"], node_id.as_str(), "{report}");
    assert_eq!(report["state"], "draining", "{report}");
    wait_nodes(&sup, Duration::from_secs(30), |ns| {
        ns.iter()
            .any(|n| n["id"] == node_id.as_str() && n["state"] == "draining")
    })
    .await;
    // Calls are still answered (the draining node keeps answering; the
    // super node falls back for it once it gave its slot back).
    for s in [&workers[spare], &sup] {
        let out = call_until_ok(s, &hash).await;
        assert_eq!(out["result"], 42, "{out}");
    }

    // Withdrawn through a node (a signed deprecation on ORB_ANNOUNCE).
    let r = workers[spare]
        .http
        .delete(format!("{}/v1/functions/{hash}", workers[spare].url))
        .header("authorization", workers[spare].bearer())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204, "{:?}", r.text().await);
    let refused = node_refusals(&cluster);
    assert!(
        refused.is_empty(),
        "the servers refused a node: {refused:#?}"
    );
}

/// What the servers refused any node, from their logs (each line names
/// the refused client: `orb-node-<id>`).
fn node_refusals(cluster: &Cluster) -> Vec<String> {
    cluster
        .logs()
        .lines()
        .filter(|l| l.contains("Violation") && l.contains("orb-node-"))
        .map(str::to_string)
        .collect()
}

/// Polls `orb network function HASH --json` with `creds` until it lists
/// one live, active seeder that `pred` accepts; its id.
async fn wait_seeder(urls: &str, hash: &str, creds: &Path, pred: impl Fn(&str) -> bool) -> String {
    let start = Instant::now();
    loop {
        let (ok, out, err) = orb_network(&[
            "--json",
            "function",
            hash,
            "--network",
            urls,
            "--creds",
            arg(creds),
        ]);
        assert!(ok, "{err}");
        let v = parse(&out);
        let live: Vec<&str> = v["seeders"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| s["alive"] == true && s["state"] == "active")
            .filter_map(|s| s["node"].as_str())
            .collect();
        if let [one] = live.as_slice()
            && pred(one)
        {
            return one.to_string();
        }
        assert!(start.elapsed() < Duration::from_secs(30), "{v:#}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}
