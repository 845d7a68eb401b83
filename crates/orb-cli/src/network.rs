//! `orb network …`: the network's NATS side, read and set up directly
//! (no node needed). Nodes join with `orb serve --network`.

use crate::args::NetworkCommand;
use crate::output::print_json;
use anyhow::Context as _;
use orb_net::Directory;
use orb_net::membership::{NodeView, list_nodes};
use orb_net::network::{Network, connect};
use serde_json::json;
use std::path::Path;

pub async fn run(cmd: NetworkCommand, json_out: bool) -> anyhow::Result<()> {
    match cmd {
        NetworkCommand::Init {
            nats,
            replicas,
            secrets_dir,
        } => {
            let client = connect(&nats.urls, "orb-cli").await?;
            let replicas = replicas.unwrap_or_else(|| {
                // JetStream refuses more replicas than servers.
                let info = client.server_info();
                match info.cluster {
                    None => 1,
                    Some(_) => info.connect_urls.len().clamp(1, 3),
                }
            });
            let report = Network::init(&client, replicas).await?;
            let net = Network::open(client).await?;
            let root = root_and_admin(&net, &secrets_dir).await?;
            if json_out {
                print_json(&json!({
                    "created": report.created,
                    "existing": report.existing,
                    "replicas": report.replicas,
                    "root_public_key": root.public_key,
                    "root_key_file": root.written.then(|| secrets_dir.join("root.key")),
                    "admin_token_file": root.written.then(|| secrets_dir.join("admin.token")),
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
                if report.created.is_empty() && !root.written {
                    eprintln!(
                        "the network on {} was already initialised; nothing changed",
                        nats.urls.join(",")
                    );
                } else {
                    eprintln!(
                        "the network on {} is ready (replicas: {})",
                        nats.urls.join(","),
                        report.replicas
                    );
                }
            }
            Ok(())
        }
        NetworkCommand::Nodes { nats } => {
            let net = Network::open(connect(&nats.urls, "orb-cli").await?).await?;
            let nodes = list_nodes(&net).await?;
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
    format!(
        "{}  {:<9} {:<5} {:<5} slots={} cores={} {}",
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
