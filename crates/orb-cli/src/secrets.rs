//! `orb secret …` and `orb outbound …`.

use crate::args::{OutboundCommand, SecretCommand};
use crate::output::{plain, print_json};
use anyhow::Context as _;
use orb_client::Client;
use reqwest::Method;
use serde_json::{Value, json};
use std::io::Read as _;

/// Reads the secret's value: the file, or stdin (one trailing newline
/// dropped, so `echo token | orb secret set …` stores `token`).
fn read_value(file: Option<&std::path::Path>) -> anyhow::Result<String> {
    let mut text = String::new();
    match file {
        Some(p) => {
            text = std::fs::read_to_string(p)
                .with_context(|| format!("cannot read the secret from {}", p.display()))?
        }
        None => {
            std::io::stdin()
                .read_to_string(&mut text)
                .context("cannot read the secret from stdin")?;
        }
    }
    let value = text
        .strip_suffix("\r\n")
        .or_else(|| text.strip_suffix('\n'))
        .unwrap_or(&text);
    if value.is_empty() {
        anyhow::bail!("the secret is empty (give it on stdin or with --value-file)");
    }
    Ok(value.to_string())
}

fn secret_line(s: &Value) -> String {
    let hosts: Vec<String> = s["hosts"]
        .as_array()
        .into_iter()
        .flatten()
        .map(plain)
        .collect();
    format!(
        "{}\t{}: {}\t{}",
        plain(&s["name"]),
        plain(&s["header"]),
        plain(&s["format"]),
        hosts.join(",")
    )
}

pub async fn secret_cmd(client: &Client, cmd: SecretCommand, json_out: bool) -> anyhow::Result<()> {
    let out = match cmd {
        SecretCommand::Set {
            name,
            hosts,
            header,
            format,
            value_file,
        } => {
            let value = read_value(value_file.as_deref())?;
            let mut body = json!({ "value": value, "hosts": hosts, "header": header });
            if let Some(f) = format {
                body["format"] = json!(f);
            }
            let path = format!("/v1/secrets/{name}");
            let out = client.request_json(Method::PUT, &path, Some(&body)).await?;
            if !json_out {
                println!("{}", secret_line(&out));
                return Ok(());
            }
            out
        }
        SecretCommand::Ls => {
            let out = client
                .request_json(Method::GET, "/v1/secrets", None)
                .await?;
            if !json_out {
                for s in out["secrets"].as_array().into_iter().flatten() {
                    println!("{}", secret_line(s));
                }
                return Ok(());
            }
            out
        }
        SecretCommand::Rm { name } => {
            let path = format!("/v1/secrets/{name}");
            client.request_json(Method::DELETE, &path, None).await?;
            if !json_out {
                println!("deleted {name}");
                return Ok(());
            }
            json!({ "deleted": name })
        }
    };
    print_json(&out);
    Ok(())
}

pub async fn outbound_cmd(
    client: &Client,
    cmd: OutboundCommand,
    json_out: bool,
) -> anyhow::Result<()> {
    let out = match cmd {
        OutboundCommand::Set { hosts } => {
            let body = json!({ "hosts": hosts });
            client
                .request_json(Method::PUT, "/v1/outbound", Some(&body))
                .await?
        }
        OutboundCommand::Show => {
            client
                .request_json(Method::GET, "/v1/outbound", None)
                .await?
        }
    };
    if json_out {
        print_json(&out);
    } else {
        for h in out["hosts"].as_array().into_iter().flatten() {
            println!("{}", plain(h));
        }
    }
    Ok(())
}
