//! `orb account`, `orb token`, `orb ns`.

use crate::args::{AccountCommand, NsCommand, TokenCommand};
use crate::output::print_json;
use anyhow::{Context, bail};
use orb_client::Client;
use serde_json::{Map, Value, json};

pub async fn account_cmd(
    client: &Client,
    cmd: AccountCommand,
    json_out: bool,
) -> anyhow::Result<()> {
    match cmd {
        AccountCommand::Create { name } => {
            let out = client.create_account(&name).await?;
            if json_out {
                print_json(&out);
            } else {
                println!("account {}", out["account"].as_str().unwrap_or_default());
                println!("private token (shown once; keep it secret):");
                println!("{}", out["token"].as_str().unwrap_or_default());
            }
        }
    }
    Ok(())
}

fn need_token(explicit: Option<String>, global: Option<&str>) -> anyhow::Result<String> {
    explicit
        .or_else(|| global.map(str::to_string))
        .context("no token: pass it as an argument, or with --token / ORB_TOKEN")
}

pub async fn token_cmd(
    client: &Client,
    global: Option<&str>,
    cmd: TokenCommand,
    json_out: bool,
) -> anyhow::Result<()> {
    match cmd {
        TokenCommand::Mint {
            namespaces,
            upload,
            functions,
            rate,
            schedules,
            outbound_hosts,
            triggers,
            expires,
        } => {
            let mut ns = Map::new();
            for item in namespaces {
                let (name, mode) = item
                    .split_once(':')
                    .with_context(|| format!("--ns `{item}` must be NAME:r, NAME:w or NAME:rw"))?;
                ns.insert(name.to_string(), Value::String(mode.to_string()));
            }
            let mut body =
                json!({ "namespaces": ns, "upload": upload, "outbound_hosts": outbound_hosts });
            if !triggers.is_empty() {
                body["triggers"] = json!(triggers);
            }
            if !functions.is_empty() {
                body["functions"] = json!(functions);
            }
            if let Some(r) = rate {
                body["rate"] = json!(r);
            }
            if let Some(s) = schedules {
                body["schedules"] = json!(s);
            }
            if let Some(e) = expires {
                body["expires"] = json!(e);
            }
            let out = client.mint_token(&body).await?;
            if json_out {
                print_json(&out);
            } else {
                println!("{}", out["token"].as_str().unwrap_or_default());
            }
        }
        TokenCommand::Attenuate {
            target,
            operations,
            functions,
            namespaces,
            hosts,
            expires,
        } => {
            let token = need_token(target, global)?;
            // A bad pattern is the flag's fault, not the token's: say so.
            orb_core::outbound::parse_host_patterns(&hosts).map_err(|e| {
                anyhow::Error::new(orb_core::OrbError::new(
                    orb_core::ErrorCode::InvalidRequest,
                    format!("--host {e}"),
                ))
            })?;
            let narrowing = orb_auth::Narrowing {
                operations: (!operations.is_empty()).then_some(operations),
                functions: (!functions.is_empty()).then_some(functions),
                namespaces: (!namespaces.is_empty()).then_some(namespaces),
                hosts: (!hosts.is_empty()).then_some(hosts),
                expires_in: expires
                    .map(|e| {
                        humantime::parse_duration(&e).with_context(|| format!("--expires `{e}`"))
                    })
                    .transpose()?,
            };
            let out = orb_auth::attenuate(&token, &narrowing)
                .map_err(|e| anyhow::Error::new(orb_core::OrbError::from(e)))?;
            if json_out {
                print_json(&json!({ "token": out }));
            } else {
                println!("{out}");
            }
        }
        TokenCommand::Inspect { target } => {
            let token = need_token(target, global)?;
            let i = orb_auth::inspect(&token)
                .map_err(|e| anyhow::Error::new(orb_core::OrbError::from(e)))?;
            if json_out {
                print_json(&i);
            } else {
                println!("lineage: {}", i.lineage);
                for (n, (block, id)) in i.blocks.iter().zip(&i.revocation_ids).enumerate() {
                    let title = if n == 0 {
                        "authority (permissions, expiry)".to_string()
                    } else {
                        format!("attenuation {n}")
                    };
                    println!("\nblock {n}: {title}\nrevocation id: {id}");
                    for line in block.lines() {
                        println!("  {line}");
                    }
                }
            }
        }
        TokenCommand::Rotate => {
            let out = client.rotate_token().await?;
            if json_out {
                print_json(&out);
            } else {
                println!("{}", out["token"].as_str().unwrap_or_default());
                eprintln!("the old private token and everything derived from it are revoked");
            }
        }
        TokenCommand::Revoke { target } => {
            let out = client.revoke_token(&target).await?;
            if json_out {
                print_json(&out);
            } else {
                println!("revoked (and everything derived from it)");
            }
        }
    }
    Ok(())
}

pub async fn ns_cmd(client: &Client, cmd: NsCommand, json_out: bool) -> anyhow::Result<()> {
    match cmd {
        NsCommand::Ls {
            namespace: None, ..
        } => {
            let list = client.list_namespaces().await?;
            if json_out {
                print_json(&json!({ "namespaces": list }));
            } else {
                for n in list {
                    println!(
                        "{}  {} keys  {} bytes",
                        crate::output::plain(&n["name"]),
                        n["keys"],
                        n["bytes"]
                    );
                }
            }
        }
        NsCommand::Ls {
            namespace: Some(ns),
            prefix,
        } => {
            let keys = client.kv_keys(&ns, &prefix).await?;
            if json_out {
                print_json(&json!({ "namespace": ns, "keys": keys }));
            } else {
                for k in keys {
                    println!("{k}");
                }
            }
        }
        NsCommand::Get { namespace, key } => {
            let bytes = client.kv_get_bytes(&namespace, &key).await?;
            match serde_json::from_slice::<Value>(&bytes) {
                Ok(v) if json_out => print_json(&v),
                Ok(v) => println!("{}", crate::output::plain(&v)),
                // Bytes that are not JSON: as they are (base64 with --json).
                Err(_) if json_out => {
                    use base64::Engine as _;
                    let b64 = base64::engine::general_purpose::STANDARD.encode(&bytes);
                    print_json(&json!({ "base64": b64 }));
                }
                Err(_) => {
                    use std::io::Write as _;
                    std::io::stdout().write_all(&bytes)?;
                }
            }
        }
        NsCommand::Put {
            namespace,
            key,
            value,
        } => {
            let v: Value = serde_json::from_str(&value).unwrap_or(Value::String(value));
            let out = client.kv_put(&namespace, &key, &v).await?;
            if json_out {
                print_json(&out);
            } else {
                println!("{namespace}/{key} revision {}", out["revision"]);
            }
        }
        NsCommand::Export { namespace, output } => {
            let v = client.ns_export(&namespace).await?;
            let text = serde_json::to_string_pretty(&v)?;
            match output {
                Some(path) => {
                    std::fs::write(&path, text + "\n")
                        .with_context(|| format!("cannot write {}", path.display()))?;
                    if !json_out {
                        let n = v["keys"].as_object().map_or(0, |m| m.len());
                        eprintln!("exported {n} keys of `{namespace}` to {}", path.display());
                    }
                }
                None => println!("{text}"),
            }
        }
        NsCommand::Import { namespace, file } => {
            let text = if file.as_os_str() == "-" {
                std::io::read_to_string(std::io::stdin())?
            } else {
                std::fs::read_to_string(&file)
                    .with_context(|| format!("cannot read {}", file.display()))?
            };
            let v: Value = serde_json::from_str(&text).context("the export is not JSON")?;
            let out = client.ns_import(&namespace, &v).await?;
            if json_out {
                print_json(&out);
            } else {
                println!("imported {} keys into `{namespace}`", out["imported"]);
            }
        }
        NsCommand::Rm { namespace, key } => {
            client.kv_delete(&namespace, &key).await?;
            if !json_out {
                println!("deleted {namespace}/{key}");
            }
        }
        NsCommand::Whitelist {
            namespace,
            set,
            add,
            remove,
            clear,
        } => {
            let changing = clear || !set.is_empty() || !add.is_empty() || !remove.is_empty();
            let list = if changing {
                if clear && !set.is_empty() {
                    bail!("--clear and --set do not go together");
                }
                let mut list = if clear || !set.is_empty() {
                    set
                } else {
                    client.get_whitelist(&namespace).await?
                };
                for a in add {
                    if !list.contains(&a) {
                        list.push(a);
                    }
                }
                list.retain(|f| !remove.contains(f));
                let out = client.set_whitelist(&namespace, &list).await?;
                out["functions"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|f| f.as_str().map(str::to_string))
                    .collect()
            } else {
                client.get_whitelist(&namespace).await?
            };
            if json_out {
                print_json(&json!({ "namespace": namespace, "functions": list }));
            } else if list.is_empty() {
                println!(
                    "whitelist of `{namespace}` is empty: public tokens cannot run anything against it"
                );
            } else {
                for f in list {
                    println!("{f}");
                }
            }
        }
    }
    Ok(())
}
