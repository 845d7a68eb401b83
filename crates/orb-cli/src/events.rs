//! `orb trigger …`, `orb rule …` and `orb kappa …`.

use crate::args::{KappaCommand, RuleCommand, TriggerCommand};
use crate::commands::parse_params;
use crate::output::{plain, print_json};
use anyhow::Context as _;
use orb_client::Client;
use reqwest::Method;
use serde_json::{Value, json};

pub async fn trigger_cmd(
    client: &Client,
    cmd: TriggerCommand,
    json_out: bool,
) -> anyhow::Result<()> {
    let out = match cmd {
        TriggerCommand::Create {
            name,
            namespace,
            prefix,
            description,
        } => {
            let mut body = json!({});
            for (k, v) in [
                ("namespace", namespace),
                ("prefix", prefix),
                ("description", description),
            ] {
                if let Some(v) = v {
                    body[k] = json!(v);
                }
            }
            let path = format!("/v1/triggers/{name}");
            let out = client.request_json(Method::PUT, &path, Some(&body)).await?;
            if !json_out {
                println!("{}", trigger_line(&out));
                return Ok(());
            }
            out
        }
        TriggerCommand::Fire { name, payload } => {
            let payload = Value::Object(parse_params(&payload, None)?);
            let path = format!("/v1/triggers/{name}");
            let out = client
                .request_json(Method::POST, &path, Some(&payload))
                .await?;
            if !json_out {
                println!("{}", plain(&out["activation"]));
                for r in out["rules"].as_array().into_iter().flatten() {
                    match r.get("activation") {
                        Some(a) => eprintln!("  rule {} → {}", plain(&r["rule"]), plain(a)),
                        None => eprintln!(
                            "  rule {} not started: {}",
                            plain(&r["rule"]),
                            plain(&r["error"]["message"])
                        ),
                    }
                }
                return Ok(());
            }
            out
        }
        TriggerCommand::Ls => {
            let out = client
                .request_json(Method::GET, "/v1/triggers", None)
                .await?;
            if !json_out {
                for t in out["triggers"].as_array().into_iter().flatten() {
                    println!("{}", trigger_line(t));
                }
                return Ok(());
            }
            out
        }
        TriggerCommand::Show { name } => {
            let path = format!("/v1/triggers/{name}");
            let out = client.request_json(Method::GET, &path, None).await?;
            if !json_out {
                println!("{}", trigger_line(&out));
                for r in out["rules"].as_array().into_iter().flatten() {
                    println!("  {}", rule_line(r));
                }
                return Ok(());
            }
            out
        }
        TriggerCommand::Rm { name } => {
            let path = format!("/v1/triggers/{name}");
            client.request_json(Method::DELETE, &path, None).await?;
            if !json_out {
                println!("deleted trigger {name} and its rules");
                return Ok(());
            }
            json!({ "deleted": name })
        }
    };
    if json_out {
        print_json(&out);
    }
    Ok(())
}

fn trigger_line(t: &Value) -> String {
    match t.get("namespace") {
        Some(ns) => format!(
            "{}  on changes in {} under `{}`",
            plain(&t["name"]),
            plain(ns),
            t["prefix"].as_str().unwrap_or("")
        ),
        None => plain(&t["name"]),
    }
}

fn rule_line(r: &Value) -> String {
    format!(
        "{}  {} → {} {}{}",
        plain(&r["name"]),
        plain(&r["trigger"]),
        plain(&r["function"]),
        plain(&r["export"]),
        if r["enabled"] == false {
            "  (disabled)"
        } else {
            ""
        }
    )
}

pub async fn rule_cmd(client: &Client, cmd: RuleCommand, json_out: bool) -> anyhow::Result<()> {
    let out = match cmd {
        RuleCommand::Create {
            name,
            trigger,
            function,
            export,
            params,
            namespace,
            write_to,
            disabled,
        } => {
            let mut body = json!({
                "trigger": trigger,
                "function": function,
                "export": export,
                "params": parse_params(&params, None)?,
                "enabled": !disabled,
            });
            if let Some(ns) = namespace {
                body["namespace"] = json!(ns);
            }
            if let Some(k) = write_to {
                body["write_to"] = json!(k);
            }
            let path = format!("/v1/rules/{name}");
            client.request_json(Method::PUT, &path, Some(&body)).await?
        }
        RuleCommand::Ls => {
            let out = client.request_json(Method::GET, "/v1/rules", None).await?;
            if !json_out {
                for r in out["rules"].as_array().into_iter().flatten() {
                    println!("{}", rule_line(r));
                }
                return Ok(());
            }
            out
        }
        RuleCommand::Show { name } => {
            let path = format!("/v1/rules/{name}");
            client.request_json(Method::GET, &path, None).await?
        }
        RuleCommand::Rm { name } => {
            let path = format!("/v1/rules/{name}");
            client.request_json(Method::DELETE, &path, None).await?;
            json!({ "deleted": name })
        }
    };
    if json_out {
        print_json(&out);
    } else if out.get("trigger").is_some() {
        println!("{}", rule_line(&out));
    } else if let Some(name) = out.get("deleted") {
        println!("deleted rule {}", plain(name));
    }
    Ok(())
}

pub async fn kappa_cmd(client: &Client, cmd: KappaCommand, json_out: bool) -> anyhow::Result<()> {
    let out = match cmd {
        KappaCommand::Deploy { function, export } => {
            let function = if function.ends_with(".wasm") {
                let bytes =
                    std::fs::read(&function).with_context(|| format!("cannot read {function}"))?;
                client.upload(bytes.into()).await?.hash.to_string()
            } else {
                function
            };
            let mut body = json!({ "function": function });
            if let Some(e) = export {
                body["export"] = json!(e);
            }
            let out = client
                .request_json(Method::PUT, "/kappa", Some(&body))
                .await?;
            if !json_out {
                println!("{}", plain(&out["ref"]));
                return Ok(());
            }
            out
        }
        KappaCommand::Send { reference, message } => {
            let message: Value = serde_json::from_str(&message)
                .context("the message must be JSON (quote strings: '\"text\"')")?;
            let path = format!("/kappa/{reference}");
            let out = client
                .request_json(Method::POST, &path, Some(&message))
                .await?;
            if !json_out {
                let emitted = if out["emitted"] == true {
                    "output on the outport"
                } else {
                    "no output"
                };
                println!("{}  ({emitted})", plain(&out["activation"]));
                return Ok(());
            }
            out
        }
        KappaCommand::Recv { reference } => {
            let path = format!("/kappa/{reference}");
            let out = client.request_json(Method::GET, &path, None).await?;
            if out.is_null() {
                eprintln!("the outport is empty");
                return Ok(());
            }
            print_json(&out);
            return Ok(());
        }
        KappaCommand::Ls => {
            let out = client.request_json(Method::GET, "/kappa", None).await?;
            if !json_out {
                for k in out["kappas"].as_array().into_iter().flatten() {
                    println!(
                        "{}  {} {}  outport {}",
                        plain(&k["ref"]),
                        plain(&k["function"]),
                        plain(&k["export"]),
                        plain(&k["outport"])
                    );
                }
                return Ok(());
            }
            out
        }
        KappaCommand::Rm { reference } => {
            let path = format!("/kappa/{reference}");
            client.request_json(Method::DELETE, &path, None).await?;
            json!({ "deleted": reference })
        }
    };
    if json_out {
        print_json(&out);
    }
    Ok(())
}
