//! Real `orb serve --network` processes on a real 3-server JetStream
//! cluster (the pinned nats-server: `scripts/install-nats`,
//! `ORB_NATS_SERVER`): joining, one set of accounts and revocations for the
//! whole network, dead nodes marked gone, super-node duties failing over.

mod common;

use common::{Server, assert_error, orb_bin, orb_network, this_node, wait_nodes};
use orb_net::testing::Cluster;
use orb_net::{Network, lease, network};
use serde_json::{Value, json};
use std::collections::BTreeSet;
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

/// A network for one test: a 3-server cluster, initialised, and a folder
/// for its nodes' data.
struct TestNet {
    cluster: Cluster,
    urls: String,
    tmp: tempfile::TempDir,
    admin: String,
    key: String,
}

impl TestNet {
    async fn start() -> TestNet {
        let cluster = Cluster::start(3).await;
        let urls = cluster.urls().join(",");
        let tmp = tempfile::tempdir().unwrap();
        let admin = init(&urls, &tmp.path().join("net"));
        let key = tmp
            .path()
            .join("net/root.key")
            .to_str()
            .unwrap()
            .to_string();
        TestNet {
            cluster,
            urls,
            tmp,
            admin,
            key,
        }
    }

    /// `orb serve --network …` in `<tmp>/name`, with `toml` as its
    /// `orb.toml` (its working directory is its data directory).
    fn node(&self, name: &str, toml: &str, extra: &[&str]) -> Server {
        let dir = self.tmp.path().join(name);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("orb.toml"), toml).unwrap();
        let mut args = vec!["--network", self.urls.as_str()];
        args.extend_from_slice(extra);
        Server::start_networked(&dir, &args, &self.admin)
    }

    fn super_node(&self, name: &str) -> Server {
        self.node(name, "", &["--super", "--network-key", &self.key])
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
    let net = TestNet::start().await;
    let a = net.super_node("a");
    let b = net.super_node("b");
    let mut c = net.node(
        "c",
        "",
        &["--attr", "region=eu-west", "--attr", "tier=edge"],
    );

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
    let nats = Network::open(network::connect(&net.cluster.urls(), "test").await.unwrap())
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
            let holder = lease::holder(&nats, duty).await.unwrap();
            if holder.as_ref().is_some_and(|h| h.holder.as_str() == id_b) {
                break;
            }
            assert!(Instant::now() < deadline, "{duty} held by {holder:?}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    let d = net.node("d", "", &[]);
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
    // The scale loop's thresholds are checked at start too.
    let bad = tmp.path().join("scale.toml");
    std::fs::write(&bad, "[network.scale]\nup_at = 0.1\ndown_at = 0.5\n").unwrap();
    let err = serve(&["--config", bad.to_str().unwrap()]);
    assert!(err.contains("down_at < up_at"), "{err}");
}

/// Waits until `s` seeds `hash`: a call through it runs on it (its
/// activation names no other node).
/// `POST /v1/functions?QUERY` on `s` with a component's bytes.
async fn upload(s: &Server, query: &str, bytes: Vec<u8>) -> (u16, Value) {
    let r = s
        .http
        .post(format!("{}/v1/functions?{query}", s.url))
        .header("authorization", s.bearer())
        .header("content-type", "application/wasm")
        .body(bytes)
        .send()
        .await
        .unwrap();
    common::decode(r).await
}

/// Uploads a guest with a placement; its hash.
async fn deploy(s: &Server, guest: &str, query: &str) -> String {
    let (st, v) = upload(s, query, common::guest(guest)).await;
    assert_eq!(st, 201, "{v}");
    v["hash"].as_str().unwrap().to_string()
}

async fn wait_seeding(s: &Server, hash: &str, export: &str, params: Value) {
    let start = Instant::now();
    loop {
        let out = call_until_ok(s, hash, export, params.clone()).await;
        let (st, act) = s
            .get(&format!(
                "/v1/activations/{}",
                out["activation"].as_str().unwrap()
            ))
            .await;
        assert_eq!(st, 200, "{act}");
        if act["node"].is_null() {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "{} does not seed {hash}",
            s.url
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Calls `export` of `hash` through `s` until it answers 200 (seeding is
/// asynchronous), or panics after 30 s with the last answer.
async fn call_until_ok(s: &Server, hash: &str, export: &str, params: Value) -> Value {
    let start = Instant::now();
    loop {
        let (st, v) = s.call(hash, export, params.clone()).await;
        if st == 200 {
            return v;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "{export} through {}: {st} {v}",
            s.url
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn functions_are_announced_seeded_by_placement_and_routed_through_any_node() {
    let net = TestNet::start().await;
    let a = net.super_node("a");
    let _b = net.super_node("b");
    // Two workers that run one call at a time, and a gateway that seeds
    // nothing this test deploys.
    let worker = "timeout_ms = 3000\n[network]\ncall_slots = 1\n";
    let w1 = net.node("w1", worker, &["--attr", "tier=worker"]);
    let w2 = net.node("w2", worker, &["--attr", "tier=worker"]);
    let g = net.node("g", "timeout_ms = 2000\n", &["--attr", "tier=gateway"]);
    wait_nodes(&g, Duration::from_secs(30), |ns| {
        ns.len() == 5 && ns.iter().all(|n| n["state"] == "active")
    })
    .await;
    let mut worker_ids = Vec::new();
    for s in [&w1, &w2] {
        worker_ids.push(this_node(s).await);
    }

    // Placement is checked at upload.
    let calc = common::guest("calc");
    let (st, v) = upload(&g, "min_seeders=3&max_seeders=2", calc.clone()).await;
    assert_error(st, &v, 400, "invalid_request");
    let (st, v) = upload(&g, "require=nope", calc.clone()).await;
    assert_error(st, &v, 400, "invalid_request");

    // Deployed through the gateway for workers only: called through every
    // node, it runs on a worker, and the activation says which.
    let (st, v) = upload(
        &g,
        "require=tier=worker&min_seeders=2&max_seeders=2",
        calc.clone(),
    )
    .await;
    assert_eq!(st, 201, "{v}");
    let hash = v["hash"].as_str().unwrap().to_string();
    // Seeding is asynchronous: until both workers serve it, a call may find
    // no seeder and run on a super node instead.
    for s in [&w1, &w2] {
        wait_seeding(s, &hash, "add", json!({"a": 0, "b": 0})).await;
    }
    for s in [&g, &a, &w1, &w2] {
        let out = call_until_ok(s, &hash, "add", json!({"a": 2, "b": 40})).await;
        assert_eq!(out["result"], 42, "{out}");
    }
    let out = call_until_ok(&g, &hash, "add", json!({"a": 1, "b": 2})).await;
    let (st, act) = g
        .get(&format!(
            "/v1/activations/{}",
            out["activation"].as_str().unwrap()
        ))
        .await;
    assert_eq!(st, 200, "{act}");
    let ran_on = act["node"].as_str().unwrap_or_default().to_string();
    assert!(worker_ids.contains(&ran_on), "ran on {ran_on:?}: {act}");
    // Aliases and whitelists are the same from every node: an alias set on
    // super node A answers through the gateway, and a public token whose
    // namespace whitelists calc (set on A, minted on A) runs it through the
    // gateway on a worker.
    let (st, v) = a
        .put_json_as(
            "/v1/aliases/adder",
            &json!({"function": hash}),
            Some(&a.token),
        )
        .await;
    assert!(st == 200 || st == 201, "{v}");
    let out = call_until_ok(&g, "adder", "add", json!({"a": 20, "b": 22})).await;
    assert_eq!(out["result"], 42, "{out}");
    let (st, v) = a
        .put_json_as(
            "/v1/namespaces/home/whitelist",
            &json!({"functions": [hash]}),
            Some(&a.token),
        )
        .await;
    assert_eq!(st, 200, "{v}");
    let public = a.mint(&json!({"namespaces": {"home": "r"}})).await;
    let start = Instant::now();
    loop {
        let (st, v) = g
            .call_as(&public, &hash, "add", json!({"a": 1, "b": 1}))
            .await;
        if st == 200 {
            assert_eq!(v["result"], 2, "{v}");
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(10), "{st} {v}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // The seeder checks what the gateway did not: the parameters.
    let (st, v) = g.call(&hash, "add", json!({"a": "two"})).await;
    assert_error(st, &v, 400, "invalid_params");
    // … and the caller's token, itself.
    let (st, v) = g
        .call_as("not-a-token", &hash, "add", json!({"a": 1, "b": 2}))
        .await;
    assert_error(st, &v, 401, "token_invalid");

    // A busy seeder's calls go to the other one: one worker runs a call
    // that spins until its timeout (3 s) while 30 more calls come in.
    let misbehave = common::guest("misbehave");
    let (st, v) = upload(&g, "require=tier=worker", misbehave).await;
    assert_eq!(st, 201, "{v}");
    let mb = v["hash"].as_str().unwrap().to_string();
    for s in [&w1, &w2] {
        wait_seeding(s, &mb, "add", json!({"a": 1, "b": 1})).await;
    }
    let spinning = {
        let (http, url, bearer) = (g.http.clone(), g.url.clone(), g.bearer());
        let mb = mb.clone();
        tokio::spawn(async move {
            let r = http
                .post(format!("{url}/v1/functions/{mb}/spin"))
                .header("authorization", bearer)
                .json(&json!({}))
                .send()
                .await
                .unwrap();
            common::decode(r).await
        })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut ran_on = BTreeSet::new();
    for i in 0..30 {
        let sent = Instant::now();
        let (st, v) = g.call(&mb, "add", json!({"a": i, "b": 1})).await;
        eprintln!("call {i} while a worker is busy: {:?}", sent.elapsed());
        assert_eq!(st, 200, "call {i} while a worker is busy: {v}");
        assert_eq!(v["result"], i + 1);
        let (_, act) = g
            .get(&format!(
                "/v1/activations/{}",
                v["activation"].as_str().unwrap()
            ))
            .await;
        ran_on.insert(act["node"].as_str().unwrap().to_string());
    }
    let (st, v) = spinning.await.unwrap();
    assert_error(st, &v, 422, "function_timeout");
    // All on the free worker; the busy one withdrew from the queue group.
    assert_eq!(ran_on.len(), 1, "{ran_on:?}, workers {worker_ids:?}");
    let free = ran_on.into_iter().next().unwrap();
    let busy = if free == worker_ids[0] { &w2 } else { &w1 };
    assert!(busy.metric("orb_network_withdrawals_total").await >= 1.0);

    // Bytes that do not hash to their id: planted in the network's store
    // and announced; no seeder serves them, and the super node asked to
    // run them refuses and reports.
    let nats = Network::open(network::connect(&net.cluster.urls(), "test").await.unwrap())
        .await
        .unwrap();
    let owner = orb_net::deploy::latest_announcement(&nats, &hash.parse().unwrap())
        .await
        .unwrap()
        .unwrap()
        .owner;
    let mut other = calc.clone();
    other.extend_from_slice(b"tampered");
    let fake: orb_core::FunctionId = orb_core::FunctionId::of(&other);
    orb_net::deploy::put_component(&nats, &fake, &calc)
        .await
        .unwrap();
    let planter = orb_net::NodeKey::generate().unwrap();
    orb_net::deploy::announce(
        &nats,
        &planter,
        &orb_net::Announcement {
            function: fake.clone(),
            owner,
            size: calc.len() as u64,
            exports: vec!["add".into()],
            placement: orb_net::Placement::default(),
            announced_by: planter.id().clone(),
            at_ms: 0,
            signatures: vec![],
            samples: vec![],
        },
        Duration::from_secs(10),
    )
    .await
    .unwrap();
    let (st, v) = g
        .call(&fake.to_string(), "add", json!({"a": 1, "b": 2}))
        .await;
    // No seeder took the bytes; the super node asked to run them refuses
    // them too, and says why.
    let e = assert_error(st, &v, 500, "internal");
    assert!(
        e["message"].as_str().unwrap().contains("do not hash to it"),
        "{v}"
    );
    let stream = nats.js.get_stream("ORB_REPORTS").await.unwrap();
    let report = stream
        .get_last_raw_message_by_subject("orb.report.hash_mismatch")
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&report.payload).to_string();
    assert!(text.contains(&fake.hex()), "{text}");

    // kill -9 of a seeder under a constant load through the gateway: the
    // calls keep succeeding on the other seeder.
    let load = Load::start(&g, &hash, 4);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut w1 = w1;
    w1.kill9();
    let killed = Instant::now();
    tokio::time::sleep(Duration::from_secs(4)).await;
    let (ok, failed) = load.finish().await;
    let fraction = f64::from(failed) / f64::from(ok + failed);
    eprintln!(
        "kill -9 of a seeder under load: {ok} calls succeeded, {failed} failed ({:.3} %), load ran {:?} past the kill",
        fraction * 100.0,
        killed.elapsed()
    );
    // Only calls in flight on the killed seeder can fail: one per loader.
    assert!(ok > 100, "{ok} calls succeeded");
    assert!(failed <= 4, "{failed} of {} calls failed", ok + failed);
}

/// Loaders calling `calc add` through one node as fast as they get answers.
struct Load {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    loaders: Vec<tokio::task::JoinHandle<(u32, u32)>>,
}

impl Load {
    fn start(g: &Server, hash: &str, n: usize) -> Load {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let loaders = (0..n)
            .map(|_| {
                let (http, bearer, stop) = (g.http.clone(), g.bearer(), stop.clone());
                let url = format!("{}/v1/functions/{hash}/add", g.url);
                tokio::spawn(async move {
                    let (mut ok, mut failed) = (0u32, 0u32);
                    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                        let sent = Instant::now();
                        let r = http
                            .post(&url)
                            .header("authorization", &bearer)
                            .json(&json!({"a": 1, "b": 2}))
                            .send()
                            .await;
                        match r {
                            Ok(r) if r.status() == 200 => ok += 1,
                            other => {
                                failed += 1;
                                // What failed, and after how long (the log
                                // of a test that fails on it).
                                let what = match other {
                                    Ok(r) => format!(
                                        "{} {}",
                                        r.status(),
                                        r.text().await.unwrap_or_default()
                                    ),
                                    Err(e) => e.to_string(),
                                };
                                eprintln!(
                                    "a loaded call failed after {:?}: {what}",
                                    sent.elapsed()
                                );
                            }
                        }
                    }
                    (ok, failed)
                })
            })
            .collect();
        Load { stop, loaders }
    }

    /// Stops the loaders: (calls that succeeded, calls that failed).
    async fn finish(self) -> (u32, u32) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let (mut ok, mut failed) = (0, 0);
        for l in self.loaders {
            let (o, f) = l.await.unwrap();
            ok += o;
            failed += f;
        }
        (ok, failed)
    }
}

/// `GET /v1/network/functions/{id}` on `s` until `pred` holds.
async fn wait_function(
    s: &Server,
    hash: &str,
    limit: Duration,
    pred: impl Fn(&Value) -> bool,
) -> Value {
    let start = Instant::now();
    loop {
        let (st, v) = s.get(&format!("/v1/network/functions/{hash}")).await;
        assert_eq!(st, 200, "{v}");
        if pred(&v) {
            return v;
        }
        assert!(
            start.elapsed() < limit,
            "not reached after {limit:?}: {v:#}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// `calc` deployed through `s` for two of the workers (`tier=worker`,
/// exactly two seeders): its hash, and its view once two are live.
async fn calc_on_two_workers(s: &Server) -> (String, Value) {
    let hash = deploy(s, "calc", "require=tier=worker&min_seeders=2&max_seeders=2").await;
    let v = wait_function(s, &hash, Duration::from_secs(30), |v| {
        seeder_ids(v).len() == 2
    })
    .await;
    (hash, v)
}

fn seeder_ids(v: &Value) -> BTreeSet<String> {
    v["seeders"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["alive"] == true && s["state"] == "active")
        .map(|s| s["node"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn max_seeders_holds_and_min_seeders_is_restored_after_a_seeder_dies() {
    let net = TestNet::start().await;
    let a = net.super_node("a");
    let _b = net.super_node("b");
    let start = |name: &str, extra: &[&str]| net.node(name, "", extra);
    let mut workers = vec![
        start("w1", &["--attr", "tier=worker", "--attr", "zone=a"]),
        start("w2", &["--attr", "tier=worker", "--attr", "zone=b"]),
        start("w3", &["--attr", "tier=worker", "--attr", "zone=c"]),
    ];
    wait_nodes(&a, Duration::from_secs(30), |ns| {
        ns.len() == 5 && ns.iter().all(|n| n["state"] == "active")
    })
    .await;

    // Two seeders, never three: the third worker finds both slots taken.
    let (hash, v) = calc_on_two_workers(&a).await;
    assert_eq!(v["placement"]["min_seeders"], 2, "{v}");
    assert_eq!(v["seeders"].as_array().unwrap().len(), 2, "{v}");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (_, v) = a.get(&format!("/v1/network/functions/{hash}")).await;
    let before = seeder_ids(&v);
    assert_eq!(before.len(), 2, "{v}");
    assert_eq!(v["seeders"].as_array().unwrap().len(), 2, "{v}");

    // Another account does not see it.
    let (st, acc) = a.post_json("/v1/accounts", &json!({"name": "other"})).await;
    assert_eq!(st, 201, "{acc}");
    let (st, v) = a
        .get_as(
            &format!("/v1/network/functions/{hash}"),
            acc["token"].as_str(),
        )
        .await;
    assert_error(st, &v, 404, "function_not_found");

    // kill -9 of one seeder: the repair duty frees its slot and asks the
    // third worker; two live seeders again.
    let mut ids = Vec::new();
    for w in &workers {
        ids.push(this_node(w).await);
    }
    let victim = ids.iter().position(|id| before.contains(id)).unwrap();
    let spare = ids.iter().position(|id| !before.contains(id)).unwrap();
    workers[victim].kill9();
    let killed = Instant::now();
    let v = wait_function(&a, &hash, Duration::from_secs(40), |v| {
        let now = seeder_ids(v);
        now.len() == 2 && now.contains(&ids[spare])
    })
    .await;
    eprintln!(
        "min_seeders restored {:?} after a seeder was killed",
        killed.elapsed()
    );
    assert!(!seeder_ids(&v).contains(&ids[victim]), "{v}");
    // And the function answers through the new seeder.
    let out = call_until_ok(&workers[spare], &hash, "add", json!({"a": 2, "b": 40})).await;
    assert_eq!(out["result"], 42);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_node_offline_during_a_deploy_catches_up_and_calls_survive_a_nats_server_kill() {
    let mut net = TestNet::start().await;
    let _a = net.super_node("a");
    let _b = net.super_node("b");
    let w1 = net.node("w1", "", &["--attr", "tier=worker"]);
    let w2 = net.node("w2", "", &["--attr", "tier=worker"]);
    let g = net.node("g", "timeout_ms = 2000\n", &[]);
    wait_nodes(&g, Duration::from_secs(30), |ns| {
        ns.len() == 5 && ns.iter().all(|n| n["state"] == "active")
    })
    .await;
    let placed = "require=tier=worker&min_seeders=2&max_seeders=2";
    let calc = deploy(&g, "calc", placed).await;
    for s in [&w1, &w2] {
        wait_seeding(s, &calc, "add", json!({"a": 1, "b": 1})).await;
    }

    // A super node validated calc and ran a sample call of each export
    // at deploy: the fuel is its complexity.
    let (_, v) = g.get("/v1/network/nodes").await;
    let supers: BTreeSet<String> = v["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["hello"]["super_node"] == true)
        .map(|n| n["id"].as_str().unwrap().to_string())
        .collect();
    let (st, view) = g.get(&format!("/v1/network/functions/{calc}")).await;
    assert_eq!(st, 200, "{view}");
    assert!(
        supers.contains(view["announced_by"].as_str().unwrap()),
        "{view}"
    );
    let samples = view["samples"].as_array().unwrap();
    let add = samples.iter().find(|s| s["export"] == "add").unwrap();
    assert!(add["fuel"].as_u64().unwrap() > 0, "{view}");
    assert!(add["error"].is_null(), "{view}");
    assert_eq!(
        view["complexity"].as_u64().unwrap(),
        samples
            .iter()
            .map(|s| s["fuel"].as_u64().unwrap())
            .max()
            .unwrap(),
        "{view}"
    );

    // `misbehave` is seeded by both workers, and alias `current` names calc.
    let mb = deploy(&g, "misbehave", placed).await;
    for s in [&w1, &w2] {
        wait_seeding(s, &mb, "add", json!({"a": 1, "b": 1})).await;
    }
    let (st, v) = g
        .put_json_as(
            "/v1/aliases/current",
            &json!({"function": calc}),
            Some(&g.token),
        )
        .await;
    assert!(st == 200 || st == 201, "{v}");

    // w2 is stopped while `hello` is deployed, `current` is switched to it
    // and `misbehave` is withdrawn by its owner; back, w2 reads what it
    // missed: it seeds hello, resolves `current` to hello, and no longer
    // serves misbehave.
    assert!(w2.stop().success());
    let hello = deploy(&g, "hello", placed).await;
    wait_seeding(&w1, &hello, "greet", json!({"name": "Ada"})).await;
    let (st, v) = g
        .put_json_as(
            "/v1/aliases/current",
            &json!({"function": hello}),
            Some(&g.token),
        )
        .await;
    assert!(st == 200 || st == 201, "{v}");
    let r = g
        .http
        .delete(format!("{}/v1/functions/{mb}", g.url))
        .header("authorization", g.bearer())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let w2 = net.node("w2", "", &["--attr", "tier=worker"]);
    wait_seeding(&w2, &hello, "greet", json!({"name": "Ada"})).await;
    let out = call_until_ok(&g, &hello, "greet", json!({"name": "Ada"})).await;
    assert_eq!(out["result"], "Hello, Ada!");
    let out = call_until_ok(&w2, "current", "greet", json!({"name": "Bo"})).await;
    assert_eq!(out["result"], "Hello, Bo!");
    let start = Instant::now();
    loop {
        let (st, v) = w2.call(&mb, "add", json!({"a": 1, "b": 1})).await;
        if st == 404 {
            assert_error(st, &v, 404, "function_not_found");
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(10), "{st} {v}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (st, v) = g.get(&format!("/v1/network/functions/{mb}")).await;
    assert_error(st, &v, 404, "function_not_found");

    // A node that joins now, and holds none of them, lists the account's
    // functions with their signatures (the withdrawn one not), and again
    // after a restart; calls through it reach the seeders.
    let listed = |v: &Value| -> BTreeSet<String> {
        v["functions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["hash"].as_str().unwrap().to_string())
            .collect()
    };
    let mut late = net.node("late", "", &[]);
    for round in 0..2 {
        let start = Instant::now();
        loop {
            let (st, v) = late.get("/v1/functions").await;
            assert_eq!(st, 200, "{v}");
            let names = listed(&v);
            if names.contains(&calc) && names.contains(&hello) {
                assert!(!names.contains(&mb), "round {round}: {v:#}");
                let f = v["functions"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|f| f["hash"] == calc.as_str())
                    .unwrap();
                let add = f["exports"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|e| e["name"] == "add")
                    .unwrap();
                assert_eq!(add["params"][0]["type"], "s32", "{f}");
                break;
            }
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "round {round}: {v:#}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let (st, f) = late.get(&format!("/v1/functions/{hello}")).await;
        assert_eq!(st, 200, "{f}");
        let out = call_until_ok(&late, "current", "greet", json!({"name": "Cy"})).await;
        assert_eq!(out["result"], "Hello, Cy!");
        // A call with its parameters as query text is typed by the
        // function's signature, here too.
        let (st, v) = late
            .get(&format!("/v1/functions/{calc}/add?a=2&b=40"))
            .await;
        assert_eq!(st, 200, "{v}");
        assert_eq!(v["result"], 42, "{v}");
        if round == 0 {
            assert!(late.stop().success());
            late = net.node("late", "", &[]);
        }
    }

    // kill -9 of each NATS server in turn (so also the one the gateway is
    // connected to) under load through the gateway, each restarted before
    // the next is killed.
    for s in [&w1, &w2] {
        wait_seeding(s, &calc, "add", json!({"a": 1, "b": 1})).await;
    }
    let load = Load::start(&g, &calc, 4);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let killed = Instant::now();
    for i in 0..3 {
        net.cluster.kill(i);
        tokio::time::sleep(Duration::from_secs(4)).await;
        net.cluster.restart(i).await;
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let (ok, failed) = load.finish().await;
    let fraction = f64::from(failed) / f64::from(ok + failed);
    eprintln!(
        "kill -9 of each NATS server in turn under load: {ok} calls succeeded, {failed} failed ({:.3} %), load ran {:?} past the kill",
        fraction * 100.0,
        killed.elapsed()
    );
    assert!(ok > 100, "{ok} calls succeeded");
    assert!(fraction <= 0.01, "{failed} of {} calls failed", ok + failed);
    // After the kills, calls go on: one more through every node.
    for s in [&g, &w1, &w2] {
        let out = call_until_ok(s, &calc, "add", json!({"a": 2, "b": 40})).await;
        assert_eq!(out["result"], 42);
    }
}

/// `orb network function ID` shows the seeder; `orb network drain NODE`:
/// the seeder is marked draining, seeds nothing new, and its function is
/// seeded elsewhere before the command returns;
/// calls are answered while it drains and after it is killed.
#[tokio::test(flavor = "multi_thread")]
async fn a_drained_node_hands_its_seeding_to_another_before_it_stops() {
    let net = TestNet::start().await;
    let a = net.super_node("a");
    let mut workers = vec![
        net.node("w1", "", &["--attr", "tier=worker"]),
        net.node("w2", "", &["--attr", "tier=worker"]),
    ];
    wait_nodes(&a, Duration::from_secs(30), |ns| {
        ns.len() == 3 && ns.iter().all(|n| n["state"] == "active")
    })
    .await;
    let mut ids = Vec::new();
    for w in &workers {
        ids.push(this_node(w).await);
    }

    let hash = deploy(
        &a,
        "calc",
        "require=tier=worker&min_seeders=1&max_seeders=1",
    )
    .await;
    let v = wait_function(&a, &hash, Duration::from_secs(30), |v| {
        seeder_ids(v).len() == 1
    })
    .await;
    let seeder = seeder_ids(&v).into_iter().next().unwrap();
    let victim = ids.iter().position(|id| *id == seeder).unwrap();
    let spare = 1 - victim;

    // The operator's view straight from NATS, as the API shows it.
    let (ok, out, err) = orb_network(&["--json", "function", &hash, "--network", &net.urls]);
    assert!(ok, "{err}");
    let seen: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    assert_eq!(seen["function"], hash.as_str(), "{seen}");
    assert_eq!(seen["placement"]["max_seeders"], 1, "{seen}");
    assert_eq!(seen["placement"]["required"]["tier"], "worker", "{seen}");
    assert_eq!(seen["seeders"][0]["node"], seeder.as_str(), "{seen}");
    assert_eq!(seen["seeders"][0]["state"], "active", "{seen}");
    assert_eq!(seen["live_seeders"], 1, "{seen}");
    assert!(
        seen["owner"].as_str().is_some_and(|o| !o.is_empty()),
        "{seen}"
    );
    assert!(seen["complexity"].as_u64().unwrap() > 0, "{seen}");
    let (ok, out, err) = orb_network(&["function", &hash, "--network", &net.urls]);
    assert!(ok, "{err}");
    assert!(out.contains("1 live of min_seeders 1"), "{out}");
    assert!(out.contains("complexity"), "{out}");
    assert!(out.contains("sample add"), "{out}");
    let (ok, _, err) = orb_network(&["function", "sha256:12", "--network", &net.urls]);
    assert!(!ok);
    assert!(err.contains("is not a function id"), "{err}");
    let never = format!("sha256:{}", "ab".repeat(32));
    let (ok, _, err) = orb_network(&["function", &never, "--network", &net.urls]);
    assert!(!ok);
    assert!(err.contains("never deployed"), "{err}");

    // Bad node names are clear errors and change nothing.
    let (ok, _, err) = orb_network(&["drain", "not-hex", "--network", &net.urls]);
    assert!(!ok);
    assert!(err.contains("is not a node id"), "{err}");
    let nobody = "0".repeat(64);
    let (ok, _, err) = orb_network(&["drain", &nobody, "--network", &net.urls]);
    assert!(!ok);
    assert!(err.contains("no node of this network"), "{err}");

    // Drain the seeder by a prefix of its id.
    let (ok, out, err) = orb_network(&[
        "--json",
        "drain",
        &seeder[..12],
        "--network",
        &net.urls,
        "--wait",
        "60",
    ]);
    assert!(ok, "{err}");
    let report: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    assert_eq!(report["node"], seeder.as_str(), "{report}");
    assert_eq!(report["state"], "draining", "{report}");
    assert_eq!(report["drained"], true, "{report}");
    let moved = report["functions"].as_array().unwrap();
    assert_eq!(moved.len(), 1, "{report}");
    assert_eq!(moved[0]["function"], hash.as_str(), "{report}");
    assert_eq!(moved[0]["live_elsewhere"], 1, "{report}");
    eprintln!("drained in {} s", report["seconds"]);

    // The network sees it draining (and still alive); the function's
    // seeder is now the other worker.
    wait_nodes(&a, Duration::from_secs(10), |ns| {
        is(ns, &seeder, "draining", true)
    })
    .await;
    let v = wait_function(&a, &hash, Duration::from_secs(10), |v| {
        seeder_ids(v) == BTreeSet::from([ids[spare].clone()])
    })
    .await;
    assert_eq!(v["seeders"].as_array().unwrap().len(), 1, "{v}");
    // Each node's load rides on its heartbeat: the spare now seeds one.
    wait_nodes(&a, Duration::from_secs(10), |ns| {
        node(ns, &ids[spare]).is_some_and(|n| {
            n["load"]["seeding"] == 1 && n["load"]["call_slots"].as_u64() > Some(0)
        })
    })
    .await;
    // Draining twice is harmless.
    let (ok, _, err) = orb_network(&["drain", &seeder, "--network", &net.urls]);
    assert!(ok, "{err}");
    assert!(err.contains("safe to stop it"), "{err}");

    // Calls are answered while it drains, and after it stops (through the
    // other seeder; the killed node's connection closes with it).
    for _ in 0..5 {
        let (st, v) = a.call(&hash, "add", json!({"a": 2, "b": 40})).await;
        assert_eq!((st, &v["result"]), (200, &json!(42)), "{v}");
    }
    workers[victim].kill9();
    tokio::time::sleep(Duration::from_secs(1)).await;
    for _ in 0..5 {
        let (st, v) = a.call(&hash, "add", json!({"a": 2, "b": 40})).await;
        assert_eq!((st, &v["result"]), (200, &json!(42)), "{v}");
    }
    // A stopped node cannot be drained: the error says so.
    let (ok, _, err) = orb_network(&["drain", &seeder, "--network", &net.urls, "--wait", "0"]);
    assert!(!ok);
    assert!(err.contains("not running"), "{err}");
}

/// The scale loop: a function starts with `min_seeders` seeders; under a
/// load they cannot take (busy answers, calls falling back to the super
/// node) it gets more, one at a time, up to `max_seeders`; when the load
/// stops, it goes back down to `min_seeders`, and still answers.
#[tokio::test(flavor = "multi_thread")]
async fn seeders_follow_the_load_between_min_and_max() {
    let net = TestNet::start().await;
    // One super node, so it runs the loop; short thresholds for a test.
    let a = net.node(
        "a",
        "[network.scale]\ndown_after_ms = 3000\ncooldown_ms = 500\n",
        &["--super", "--network-key", &net.key],
    );
    // Workers that run one call at a time, and a gateway.
    let worker = "[network]\ncall_slots = 1\n";
    let _workers: Vec<Server> = (1..=3)
        .map(|i| net.node(&format!("w{i}"), worker, &["--attr", "tier=worker"]))
        .collect();
    let g = net.node("g", "", &[]);
    wait_nodes(&g, Duration::from_secs(30), |ns| {
        ns.len() == 5 && ns.iter().all(|n| n["state"] == "active")
    })
    .await;

    let hash = deploy(
        &g,
        "calc",
        "require=tier=worker&min_seeders=1&max_seeders=3",
    )
    .await;
    let hex = hash.trim_start_matches("sha256:").to_string();
    // At first: min_seeders seeders, not every admitted node.
    let v = wait_function(&a, &hash, Duration::from_secs(30), |v| {
        seeder_ids(v).len() == 1
    })
    .await;
    assert_eq!(v["want"], 1, "{v}");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (_, v) = a.get(&format!("/v1/network/functions/{hash}")).await;
    assert_eq!(v["seeders"].as_array().unwrap().len(), 1, "{v}");
    assert_eq!(v["want"], 1, "{v}");
    call_until_ok(&g, &hash, "add", json!({"a": 1, "b": 2})).await;

    // Eight loaders against one call slot: busy answers and fallbacks.
    let load = Load::start(&g, &hash, 8);
    let grown = Instant::now();
    // The seeders' heartbeats carry the function's calls.
    wait_nodes(&a, Duration::from_secs(30), |ns| {
        ns.iter()
            .any(|n| n["load"]["functions"][&hex]["calls"].as_u64() > Some(0))
    })
    .await;
    let v = wait_function(&a, &hash, Duration::from_secs(90), |v| {
        v["want"] == 3 && seeder_ids(v).len() == 3
    })
    .await;
    eprintln!(
        "scaled from 1 to 3 seeders in {:?} under load",
        grown.elapsed()
    );
    assert_eq!(v["seeders"].as_array().unwrap().len(), 3, "{v}");
    let quiet = Instant::now();
    let (ok, failed) = load.finish().await;
    eprintln!(
        "under load: {ok} calls succeeded, {failed} failed; the loaders stopped in {:?}",
        quiet.elapsed()
    );
    // Calls lost on their way to a seeder that just stepped out of the
    // queue group are sent again (never run twice): what fails is only
    // what every seeder answered busy, four times.
    assert!(ok > 100, "{ok} calls succeeded");
    assert!(
        failed * 100 <= ok + failed,
        "{failed} of {} failed",
        ok + failed
    );
    assert!(a.metric("orb_network_scale_ups_total").await >= 2.0);

    // Quiet: one seeder fewer every down_after, down to min_seeders.
    let v = wait_function(&a, &hash, Duration::from_secs(60), |v| {
        v["want"] == 1 && v["seeders"].as_array().unwrap().len() == 1
    })
    .await;
    eprintln!(
        "back to 1 seeder {:?} after the load stopped",
        quiet.elapsed()
    );
    assert_eq!(seeder_ids(&v).len(), 1, "{v}");
    assert!(
        quiet.elapsed() >= Duration::from_secs(6),
        "two steps of down_after (3 s) each"
    );
    assert!(a.metric("orb_network_scale_downs_total").await >= 2.0);
    // The function still answers, through every node.
    for s in [&g, &a] {
        let out = call_until_ok(s, &hash, "add", json!({"a": 2, "b": 40})).await;
        assert_eq!(out["result"], 42, "{out}");
    }
    let (ok, out, err) = orb_network(&["function", &hash, "--network", &net.urls]);
    assert!(ok, "{err}");
    assert!(out.contains("1 wanted now"), "{out}");
}

/// `METHOD /http/{target}{path}` through `s` (with `token`, if any): the
/// status, the body as text, and the response's `content-type`.
async fn http_request(
    s: &Server,
    method: reqwest::Method,
    target_and_path: &str,
    token: Option<&str>,
    body: Vec<u8>,
) -> (u16, String, String) {
    let mut req = s
        .http
        .request(method, format!("{}/http/{target_and_path}", s.url))
        .header("x-echo", "routed")
        .body(body);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    let ctype = r
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    (status, ctype, r.text().await.unwrap())
}

/// [`http_request`] for an answer that is an Orb error: its status and body.
async fn http_error(
    s: &Server,
    method: reqwest::Method,
    target_and_path: &str,
    token: Option<&str>,
    body: Vec<u8>,
) -> (u16, Value) {
    let (st, _, text) = http_request(s, method, target_and_path, token, body).await;
    let v = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{st} {text}: {e}"));
    (st, v)
}

#[tokio::test(flavor = "multi_thread")]
async fn http_requests_are_routed_to_a_seeder_from_any_node() {
    let net = TestNet::start().await;
    let a = net.super_node("a");
    let w = net.node("w", "", &["--attr", "tier=worker"]);
    let g = net.node("g", "", &["--attr", "tier=gateway"]);
    wait_nodes(&g, Duration::from_secs(30), |ns| {
        ns.len() == 3 && ns.iter().all(|n| n["state"] == "active")
    })
    .await;
    let worker = this_node(&w).await;

    // http-hello, seeded by the worker only.
    let hash = deploy(
        &g,
        "http-hello",
        "require=tier=worker&min_seeders=1&max_seeders=1",
    )
    .await;
    let token = a.token.clone();
    wait_function(&g, &hash, Duration::from_secs(30), |v| {
        seeder_ids(v).contains(&worker)
    })
    .await;
    // Until the worker answers on the function's subject, a super node
    // runs requests that find no seeder; then they run on the worker.
    let start = Instant::now();
    loop {
        let (st, _, body) = http_request(
            &g,
            reqwest::Method::GET,
            &format!("{hash}/"),
            Some(&token),
            vec![],
        )
        .await;
        let newest = g.activations(&hash).await;
        if st == 200 && newest.first().is_some_and(|a| a["node"] == worker.as_str()) {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "{st} {body} {newest:#?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let seen = g.activations(&hash).await.len();
    // Through the gateway (which does not hold it): method, path, query
    // and headers reach the guest as sent; the token does not.
    let (st, ctype, body) = http_request(
        &g,
        reqwest::Method::GET,
        &format!("{hash}/hello/there?x=1&y=two"),
        Some(&token),
        vec![],
    )
    .await;
    assert_eq!(st, 200, "{body}");
    assert_eq!(ctype, "application/json");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["method"], "GET", "{v}");
    assert_eq!(v["path"], "/hello/there?x=1&y=two", "{v}");
    assert_eq!(v["x-echo"], "routed", "{v}");
    assert!(v["authorization"].is_null(), "{v}");
    // A body goes there and back byte for byte; the status comes back.
    let payload: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    let r = g
        .http
        .post(format!("{}/http/{hash}/echo", g.url))
        .bearer_auth(&token)
        .body(payload.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.bytes().await.unwrap().to_vec(), payload);
    let (st, _, _) = http_request(
        &g,
        reqwest::Method::GET,
        &format!("{hash}/status?code=418"),
        Some(&token),
        vec![],
    )
    .await;
    assert_eq!(st, 418);
    // Each activation is on the gateway, and names the worker that ran it.
    let acts = g.activations(&hash).await;
    assert_eq!(acts.len(), seen + 3, "{acts:#?}");
    assert!(
        acts[..3]
            .iter()
            .all(|a| a["node"] == worker.as_str() && a["export"] == "wasi:http/incoming-handler"),
        "{acts:#?}"
    );
    // A trap on the worker: the gateway answers the function's error.
    let (st, v) = http_error(
        &g,
        reqwest::Method::GET,
        &format!("{hash}/trap"),
        Some(&token),
        vec![],
    )
    .await;
    assert_error(st, &v, 422, "function_trap");

    // A bad token is refused.
    let (st, v) = http_error(
        &g,
        reqwest::Method::GET,
        &format!("{hash}/"),
        Some("not-a-token"),
        vec![],
    )
    .await;
    assert_error(st, &v, 401, "token_invalid");

    // A public alias set on the super node serves anonymous requests
    // through the gateway.
    let (st, v) = a
        .put_json_as(
            "/v1/aliases/site",
            &json!({"function": hash, "public": true}),
            Some(&token),
        )
        .await;
    assert!(st == 200 || st == 201, "{v}");
    let start = Instant::now();
    loop {
        let (st, _, body) = http_request(&g, reqwest::Method::GET, "site/page", None, vec![]).await;
        if st == 200 {
            let v: Value = serde_json::from_str(&body).unwrap();
            assert_eq!(v["path"], "/page", "{v}");
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(10), "{st} {body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // An alias that binds a namespace is refused on a networked node
    // (namespaces are node-local until part 2), never run on a copy.
    let (st, v) = a
        .put_json_as(
            "/v1/aliases/shop",
            &json!({"function": hash, "namespace": "carts"}),
            Some(&token),
        )
        .await;
    assert!(st == 200 || st == 201, "{v}");
    let start = Instant::now();
    loop {
        let (st, v) = http_error(&g, reqwest::Method::GET, "shop/", Some(&token), vec![]).await;
        if st != 404 {
            let e = assert_error(st, &v, 409, "not_in_network");
            assert!(e["message"].as_str().unwrap().contains("carts"), "{v}");
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(10), "{st} {v}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // A body over what a message between nodes may carry (the servers'
    // max_payload, 1 MiB here) is refused with the way out, not cut.
    let big = vec![b'x'; 2 << 20];
    let (st, v) = http_error(
        &g,
        reqwest::Method::POST,
        &format!("{hash}/echo"),
        Some(&token),
        big,
    )
    .await;
    let e = assert_error(st, &v, 413, "too_large");
    assert!(
        e["message"].as_str().unwrap().contains("max_payload"),
        "{v}"
    );
    // … and so is a response over it, from the worker.
    let (st, v) = http_error(
        &g,
        reqwest::Method::GET,
        &format!("{hash}/big?n=2000000"),
        Some(&token),
        vec![],
    )
    .await;
    let e = assert_error(st, &v, 413, "too_large");
    assert!(
        e["message"].as_str().unwrap().contains("max_payload"),
        "{v}"
    );
    // The same request to the worker itself streams it.
    let r = w
        .http
        .get(format!("{}/http/{hash}/big?n=2000000", w.url))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.bytes().await.unwrap().len(), 2_000_000);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_other_super_node_takes_the_duties_when_one_is_killed_under_load() {
    let net = TestNet::start().await;
    let mut supers = vec![net.super_node("a"), net.super_node("b")];
    let worker = |name: &str| net.node(name, "", &["--attr", "tier=worker"]);
    let mut workers = vec![worker("w1"), worker("w2"), worker("w3")];
    let g = net.node("g", "timeout_ms = 2000\n", &[]);
    wait_nodes(&g, Duration::from_secs(30), |ns| {
        ns.len() == 6 && ns.iter().all(|n| n["state"] == "active")
    })
    .await;
    let (hash, v) = calc_on_two_workers(&g).await;
    let seeders = seeder_ids(&v);
    let mut worker_ids = Vec::new();
    for w in &workers {
        worker_ids.push(this_node(w).await);
    }
    for (w, id) in workers.iter().zip(&worker_ids) {
        if seeders.contains(id) {
            wait_seeding(w, &hash, "add", json!({"a": 1, "b": 1})).await;
        }
    }

    // The super node that holds the repair duty is killed under a constant
    // load through the gateway.
    let nats = Network::open(network::connect(&net.cluster.urls(), "test").await.unwrap())
        .await
        .unwrap();
    let holder = lease::holder(&nats, orb_net::names::DUTY_REPAIR)
        .await
        .unwrap()
        .expect("a super node holds the repair duty")
        .holder
        .as_str()
        .to_string();
    let mut super_ids = Vec::new();
    for s in &supers {
        super_ids.push(this_node(s).await);
    }
    let victim = super_ids.iter().position(|id| *id == holder).unwrap();
    let survivor = super_ids[1 - victim].clone();
    let load = Load::start(&g, &hash, 4);
    tokio::time::sleep(Duration::from_secs(1)).await;
    supers[victim].kill9();
    let killed = Instant::now();

    // The survivor takes every duty once the dead one's leases expire.
    let deadline = Instant::now() + Duration::from_secs(30);
    for duty in ["admit", "reaper", "repair"] {
        loop {
            let h = lease::holder(&nats, duty).await.unwrap();
            if h.as_ref().is_some_and(|h| h.holder.as_str() == survivor) {
                break;
            }
            assert!(Instant::now() < deadline, "{duty} held by {h:?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    let took_over = killed.elapsed();

    // Its duties work: the dead super node is reaped, a seeder killed now
    // is replaced on the third worker, a node joining now is admitted, and
    // an upload now is validated and announced.
    let victim_seeder = worker_ids
        .iter()
        .position(|id| seeders.contains(id))
        .unwrap();
    let spare = worker_ids
        .iter()
        .position(|id| !seeders.contains(id))
        .unwrap();
    workers[victim_seeder].kill9();
    let seeder_killed = Instant::now();
    wait_function(&g, &hash, Duration::from_secs(40), |v| {
        let now = seeder_ids(v);
        now.len() == 2 && now.contains(&worker_ids[spare])
    })
    .await;
    let restored = seeder_killed.elapsed();
    let (ok, failed) = load.finish().await;
    let fraction = f64::from(failed) / f64::from(ok + failed);
    eprintln!(
        "kill -9 of the duty-holding super node under load: duties taken over after {took_over:?}; a seeder killed then was replaced after {restored:?}; {ok} calls succeeded, {failed} failed ({:.3} %)",
        fraction * 100.0
    );
    assert!(ok > 100, "{ok} calls succeeded");
    assert!(fraction <= 0.01, "{failed} of {} calls failed", ok + failed);
    wait_nodes(&g, Duration::from_secs(30), |ns| {
        is(ns, &holder, "gone", false)
    })
    .await;
    let d = net.node("d", "", &[]);
    let v = wait_nodes(&d, Duration::from_secs(30), |ns| {
        ns.iter().filter(|n| n["state"] == "active").count() == 5
    })
    .await;
    let id_d = v["this_node"].as_str().unwrap();
    let admitted = node(v["nodes"].as_array().unwrap(), id_d).unwrap();
    assert_eq!(admitted["changed_by"], survivor.as_str(), "{admitted}");
    let hello = deploy(&d, "hello", "").await;
    let (_, view) = d.get(&format!("/v1/network/functions/{hello}")).await;
    assert_eq!(view["announced_by"], survivor.as_str(), "{view}");
}
