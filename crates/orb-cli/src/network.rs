//! `orb network …`: the network's NATS side, read and set up directly
//! (no node needed). Nodes join with `orb serve --network`.

use crate::args::{NatsArgs, NetworkCommand};
use crate::output::print_json;
use anyhow::Context as _;
use orb_net::access::{self, AuthFiles, Connection, Role};
use orb_net::membership::{NodeView, list_nodes};
use orb_net::network::Network;
use orb_net::{Directory, NodeId, control};
use serde_json::json;
use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

pub async fn run(cmd: NetworkCommand, json_out: bool) -> anyhow::Result<()> {
    match cmd {
        NetworkCommand::Init {
            urls,
            creds,
            auth_only,
            replicas,
            secrets_dir,
        } => {
            if auth_only {
                print_auth(&access::write_credentials(&secrets_dir)?, json_out);
                return Ok(());
            }
            anyhow::ensure!(
                !urls.is_empty(),
                "give the network's NATS servers: --network URLS (or ORB_NETWORK); --auth-only writes the credentials alone"
            );
            let conn = access::connect_as(&urls, "orb-cli", creds.as_deref()).await?;
            let client = conn.client.clone();
            let replicas = replicas.unwrap_or_else(|| {
                // JetStream refuses more replicas than servers.
                let info = client.server_info();
                match info.cluster {
                    None => 1,
                    Some(_) => info.connect_urls.len().clamp(1, 3),
                }
            });
            let report = guarded(&conn, Network::init(&client, replicas)).await?;
            // The roles' credentials: made here while the servers require
            // none (for turning it on later), else only refreshed where
            // they are (a new set elsewhere would fit no server).
            let auth = if creds.is_none() || secrets_dir.join(Role::Operator.file_name()).exists() {
                Some(access::write_credentials(&secrets_dir)?)
            } else {
                None
            };
            let net = guarded(&conn, Network::open(client)).await?;
            let root = guarded(&conn, root_and_admin(&net, &secrets_dir)).await?;
            if json_out {
                print_json(&json!({
                    "created": report.created,
                    "existing": report.existing,
                    "replicas": report.replicas,
                    "root_public_key": root.public_key,
                    "root_key_file": root.written.then(|| secrets_dir.join("root.key")),
                    "admin_token_file": root.written.then(|| secrets_dir.join("admin.token")),
                    "nats_credentials": auth.as_ref().map(auth_json),
                }));
            } else {
                for name in &report.created {
                    println!("created   {name}");
                }
                for name in &report.existing {
                    println!("existing  {name}");
                }
                if root.written {
                    eprintln!(
                        "the network's root key is in {} (give it to super nodes: --network-key) and the admin's private token in {}; keep both secret",
                        secrets_dir.join("root.key").display(),
                        secrets_dir.join("admin.token").display()
                    );
                }
                if let Some(auth) = &auth {
                    print_auth(auth, false);
                }
                if report.created.is_empty() && !root.written {
                    eprintln!(
                        "the network on {} was already initialised; nothing changed",
                        urls.join(",")
                    );
                } else {
                    eprintln!(
                        "the network on {} is ready (replicas: {})",
                        urls.join(","),
                        report.replicas
                    );
                }
            }
            Ok(())
        }
        NetworkCommand::Nodes { nats } => {
            let (conn, net) = open(&nats).await?;
            let nodes = guarded(&conn, list_nodes(&net)).await?;
            if json_out {
                print_json(&json!({ "nodes": nodes }));
            } else if nodes.is_empty() {
                eprintln!("no nodes have joined this network");
            } else {
                for n in &nodes {
                    println!("{}", line(n));
                }
            }
            Ok(())
        }
        NetworkCommand::Function { function, nats } => {
            let id: orb_core::FunctionId = function.parse().map_err(|_| {
                anyhow::anyhow!(
                    "`{function}` is not a function id: give `sha256:<64 hex digits>` (`orb fn ls` lists them)"
                )
            })?;
            let (conn, net) = open(&nats).await?;
            let Some(a) = guarded(&conn, orb_net::deploy::latest_announcement(&net, &id)).await?
            else {
                anyhow::bail!("no announcement names {id}: it was never deployed to this network");
            };
            let view = guarded(&conn, orb_net::inventory::view(&net, &a)).await?;
            if json_out {
                let mut v = serde_json::to_value(&view)?;
                v["owner"] = json!(a.owner);
                print_json(&v);
            } else {
                print_function(&view, &a.owner);
            }
            Ok(())
        }
        NetworkCommand::Drain { node, nats, wait } => {
            let (conn, net) = open(&nats).await?;
            guarded(
                &conn,
                drain(&net, &node, Duration::from_secs(wait), json_out),
            )
            .await
        }
    }
}

/// Connects with the given credentials and opens the network.
async fn open(nats: &NatsArgs) -> anyhow::Result<(Connection, Network)> {
    let conn = access::connect_as(&nats.urls, "orb-cli", nats.creds.as_deref()).await?;
    let net = guarded(&conn, Network::open(conn.client.clone())).await?;
    Ok((conn, net))
}

/// Runs `op` on `conn`: a refusal by the servers ends it at once, and an
/// error it caused (a timeout) is reported as that refusal.
async fn guarded<T, E: Into<anyhow::Error>>(
    conn: &Connection,
    op: impl std::future::Future<Output = Result<T, E>>,
) -> anyhow::Result<T> {
    match conn.guard(op).await? {
        Ok(v) => Ok(v),
        Err(e) => Err(conn.refusal().map_or_else(|| e.into(), anyhow::Error::from)),
    }
}

fn auth_json(auth: &AuthFiles) -> serde_json::Value {
    let seeds: serde_json::Map<String, serde_json::Value> = auth
        .seeds
        .iter()
        .map(|(role, path)| (role.to_string(), json!(path)))
        .collect();
    json!({ "seeds": seeds, "created": auth.created, "server_config": auth.config })
}

fn print_auth(auth: &AuthFiles, json_out: bool) {
    if json_out {
        print_json(&json!({ "nats_credentials": auth_json(auth) }));
        return;
    }
    if !auth.created.is_empty() {
        eprintln!(
            "NATS credentials: {} (the operator: `orb network … --creds`), {} (super nodes: `orb serve --network-creds`), {} (nodes); keep them secret",
            auth.seed(Role::Operator).display(),
            auth.seed(Role::Super).display(),
            auth.seed(Role::Node).display()
        );
    }
    eprintln!(
        "to require them, include {} in every NATS server's configuration (include \"nats-auth.conf\") and reload the servers",
        auth.config.display()
    );
}

fn print_function(v: &orb_net::inventory::FunctionView, owner: &str) {
    println!("{}", v.function);
    println!("  owner      {owner}");
    println!("  size       {} bytes", v.size);
    println!("  exports    {}", v.exports.join(", "));
    println!(
        "  announced  by {} after {} sample call(s); complexity {} fuel",
        v.announced_by.short(),
        v.samples.len(),
        v.complexity
    );
    for s in &v.samples {
        println!(
            "    sample {}  {} fuel{}",
            s.export,
            s.fuel,
            s.error
                .as_ref()
                .map_or(String::new(), |e| format!("  ({e})"))
        );
    }
    let required: Vec<String> = v
        .placement
        .required
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    println!(
        "  placement  min_seeders={} max_seeders={}{}",
        v.placement.min_seeders,
        v.placement.max_seeders,
        if required.is_empty() {
            String::new()
        } else {
            format!(" require {}", required.join(","))
        }
    );
    println!(
        "  seeders    {} live of min_seeders {}; {} wanted now (the load decides, up to max_seeders {})",
        v.live_seeders, v.placement.min_seeders, v.want, v.placement.max_seeders
    );
    for s in &v.seeders {
        println!(
            "    slot {}  {}  {:<9} {}",
            s.slot,
            s.node.as_str(),
            s.state.map_or("unknown", |st| st.as_str()),
            if s.alive { "alive" } else { "-" }
        );
    }
}

/// `orb network drain NODE`: asks the node, then follows its functions
/// until each has `min_seeders` live seeders elsewhere (or `wait` runs out).
async fn drain(net: &Network, node: &str, wait: Duration, json_out: bool) -> anyhow::Result<()> {
    let id = find_node(net, node).await?;
    let started = Instant::now();
    let reply = control::request_drain(net, &id).await?;
    if !json_out {
        eprintln!(
            "node {} is draining; it seeded {} function(s)",
            id.short(),
            reply.seeding.len()
        );
    }
    let mut moved = control::progress(net, &id, &reply.seeding).await?;
    let mut told = BTreeSet::new();
    loop {
        if !json_out {
            for m in moved.iter().filter(|m| m.done()) {
                if told.insert(m.function.clone()) {
                    eprintln!(
                        "  {}  seeded elsewhere ({} live of min_seeders {})",
                        m.function, m.live_elsewhere, m.min_seeders
                    );
                }
            }
        }
        if moved.iter().all(|m| m.done()) || started.elapsed() >= wait {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        moved = control::progress(net, &id, &reply.seeding).await?;
    }
    let drained = moved.iter().all(|m| m.done());
    if json_out {
        print_json(&json!({
            "node": id.as_str(),
            "state": reply.state,
            "functions": moved,
            "drained": drained,
            "seconds": started.elapsed().as_secs_f64(),
        }));
    } else if drained {
        eprintln!(
            "node {} is drained in {:.1} s: safe to stop it",
            id.short(),
            started.elapsed().as_secs_f64()
        );
    }
    if drained || wait.is_zero() {
        return Ok(());
    }
    let left: Vec<String> = moved
        .iter()
        .filter(|m| !m.done())
        .map(|m| {
            format!(
                "{} ({} live of min_seeders {})",
                m.function, m.live_elsewhere, m.min_seeders
            )
        })
        .collect();
    anyhow::bail!(
        "after {} s these still need node {}: {}; no other active node may seed them (see `orb network nodes` and their placement), or wait longer (--wait)",
        wait.as_secs(),
        id.short(),
        left.join(", ")
    )
}

/// A node by its id or a unique prefix of it.
async fn find_node(net: &Network, text: &str) -> anyhow::Result<NodeId> {
    let prefix = text.to_ascii_lowercase();
    anyhow::ensure!(
        !prefix.is_empty() && prefix.bytes().all(|b| b.is_ascii_hexdigit()),
        "`{text}` is not a node id: give its id or a prefix of it (hex digits; `orb network nodes` lists them)"
    );
    let nodes = list_nodes(net).await?;
    let found: Vec<&NodeView> = nodes
        .iter()
        .filter(|n| n.id.as_str().starts_with(&prefix))
        .collect();
    match found.as_slice() {
        [n] => Ok(n.id.clone()),
        [] => anyhow::bail!(
            "no node of this network has an id starting with `{text}` (`orb network nodes` lists them)"
        ),
        many => anyhow::bail!(
            "`{text}` is the start of {} node ids: give more of it",
            many.len()
        ),
    }
}

struct Root {
    public_key: String,
    /// Whether this call made the root key and the admin account (and wrote
    /// their files).
    written: bool,
}

/// The network's root key pair and admin account, made once: the private
/// key and the admin's token go into `dir` (mode 0600, never overwritten),
/// the public key into the network, the admin account into its directory.
async fn root_and_admin(net: &Network, dir: &Path) -> anyhow::Result<Root> {
    if let Some(public_key) = Directory::root_public_key(net).await? {
        return Ok(Root {
            public_key,
            written: false,
        });
    }
    let key_file = dir.join("root.key");
    let token_file = dir.join("admin.token");
    for f in [&key_file, &token_file] {
        anyhow::ensure!(
            !f.exists(),
            "{} exists already and this network has no root key: move the old file away (it belongs to another network) or pass --secrets-dir",
            f.display()
        );
    }
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let auth = orb_auth::Authority::generate();
    let (admin, token) =
        orb_node::new_account(&auth, "admin", true).map_err(|e| anyhow::anyhow!("{}", e.0))?;
    let private = auth.private_key_text().expect("a generated key");
    orb_node::write_secret_file(&key_file, &private, false)?;
    orb_node::write_secret_file(&token_file, &token, false)?;
    let public_key = auth.public_key_text();
    // The admin first: a node that sees the root key finds its admin.
    Directory::put_account(net, &admin.id, serde_json::to_vec(&admin)?.into()).await?;
    if !Directory::set_root_public_key(net, &public_key).await? {
        let _ = std::fs::remove_file(&key_file);
        let _ = std::fs::remove_file(&token_file);
        anyhow::bail!(
            "another `orb network init` set this network's root key at the same time; use its files"
        );
    }
    Ok(Root {
        public_key,
        written: true,
    })
}

/// One node as a line: id, state, liveness, role, slots, attributes.
fn line(n: &NodeView) -> String {
    let attributes: Vec<String> = n
        .hello
        .attributes
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    let load = n.load.as_ref().map_or(String::new(), |l| {
        format!(
            "calls={}/{} seeding={} ",
            l.in_flight, l.call_slots, l.seeding
        )
    });
    format!(
        "{}  {:<9} {:<5} {:<5} slots={} cores={} {load}{}",
        n.id.as_str(),
        n.state.as_str(),
        if n.alive { "alive" } else { "-" },
        if n.hello.super_node { "super" } else { "node" },
        n.hello.capacity.instance_slots,
        n.hello.capacity.cores,
        attributes.join(" ")
    )
    .trim_end()
    .to_string()
}
