//! `orb network …`: the network's NATS side, read and set up directly
//! (no node needed). Preview: nodes do not join from `orb serve` yet.

use crate::args::NetworkCommand;
use crate::output::print_json;
use orb_net::membership::{NodeView, list_nodes};
use orb_net::network::{Network, connect};
use serde_json::json;

pub async fn run(cmd: NetworkCommand, json_out: bool) -> anyhow::Result<()> {
    match cmd {
        NetworkCommand::Init { nats, replicas } => {
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
            if json_out {
                print_json(&json!({
                    "created": report.created,
                    "existing": report.existing,
                    "replicas": report.replicas,
                }));
            } else {
                for name in &report.created {
                    println!("created   {name}");
                }
                for name in &report.existing {
                    println!("existing  {name}");
                }
                if report.created.is_empty() {
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
