//! `orb schedule …` and `orb alias …`.

use crate::args::{AliasCommand, ScheduleAddArgs, ScheduleCommand};
use crate::commands::parse_params;
use crate::output::{plain, print_json};
use orb_client::Client;
use orb_core::FunctionId;
use reqwest::Method;
use serde_json::{Value, json};

pub async fn schedule_cmd(
    client: &Client,
    cmd: ScheduleCommand,
    json_out: bool,
) -> anyhow::Result<()> {
    match cmd {
        ScheduleCommand::Add(add) => {
            let ScheduleAddArgs {
                function,
                export,
                params,
                every,
                cron,
                timezone,
                namespace,
                write_to,
                run_now,
                start_at,
                end_at,
            } = *add;
            let mut spec = json!({
                "function": function,
                "export": export,
                "params": parse_params(&params, None)?,
                "run_now": run_now,
            });
            for (k, v) in [
                ("every", every),
                ("cron", cron),
                ("timezone", timezone),
                ("namespace", namespace),
                ("write_to", write_to),
                ("start_at", start_at),
                ("end_at", end_at),
            ] {
                if let Some(v) = v {
                    spec[k] = json!(v);
                }
            }
            let s = client.create_schedule(&spec).await?;
            if json_out {
                print_json(&s);
            } else {
                println!("{}", plain(&s["id"]));
                eprintln!("next run: {}", plain(&s["state"]["next_run"]));
            }
        }
        ScheduleCommand::Ls => {
            let out = client.list_schedules().await?;
            if json_out {
                print_json(&out);
            } else {
                for s in out["schedules"].as_array().into_iter().flatten() {
                    print_line(s);
                }
            }
        }
        ScheduleCommand::Show { id } => {
            let s = client
                .request_json(Method::GET, &format!("/v1/schedules/{id}"), None)
                .await?;
            if json_out {
                print_json(&s);
            } else {
                print_line(&s);
                if let Some(e) = s["state"].get("last_error").filter(|e| !e.is_null()) {
                    println!(
                        "  last error: {} {}",
                        plain(&e["code"]),
                        plain(&e["message"])
                    );
                }
            }
        }
        ScheduleCommand::Rm { id } => {
            client.delete_schedule(&id).await?;
            if json_out {
                print_json(&json!({ "deleted": id }));
            }
        }
    }
    Ok(())
}

fn print_line(s: &Value) {
    let cadence = s
        .get("every")
        .filter(|v| !v.is_null())
        .map(|v| format!("every {}", plain(v)))
        .or_else(|| s.get("cron").map(|v| format!("cron {}", plain(v))))
        .unwrap_or_default();
    let st = &s["state"];
    println!(
        "{}  {} {}  {}  runs {} failures {}  next {}  last {}",
        plain(&s["id"]),
        plain(&s["function"]),
        plain(&s["export"]),
        cadence,
        plain(&st["runs"]),
        plain(&st["failures"]),
        plain(&st["next_run"]),
        plain(&st["last_status"]),
    );
}

pub async fn alias_cmd(client: &Client, cmd: AliasCommand, json_out: bool) -> anyhow::Result<()> {
    let out = match cmd {
        AliasCommand::Set {
            name,
            hash,
            steps,
            namespace,
            public,
        } => match hash {
            Some(hash) => {
                let id: FunctionId = hash
                    .parse()
                    .map_err(|_| anyhow::anyhow!("`{hash}` is not a hash (sha256:<64 hex>)"))?;
                if namespace.is_none() && !public {
                    client.set_alias(&name, &id).await?
                } else {
                    let mut body = json!({ "function": id.to_string() });
                    if public {
                        body["public"] = json!(true);
                    }
                    if let Some(ns) = namespace {
                        body["namespace"] = json!(ns);
                    }
                    client
                        .request_json(Method::PUT, &format!("/v1/aliases/{name}"), Some(&body))
                        .await?
                }
            }
            None => {
                let steps = steps
                    .iter()
                    .map(|s| {
                        let (f, e) = s
                            .rsplit_once(':')
                            .ok_or_else(|| anyhow::anyhow!("--step `{s}` must be HASH:EXPORT"))?;
                        Ok(json!({ "function": f, "export": e }))
                    })
                    .collect::<anyhow::Result<Vec<_>>>()?;
                client
                    .request_json(
                        Method::PUT,
                        &format!("/v1/aliases/{name}"),
                        Some(&json!({ "steps": steps })),
                    )
                    .await?
            }
        },
        AliasCommand::Ls => {
            client
                .request_json(Method::GET, "/v1/aliases", None)
                .await?
        }
        AliasCommand::Show { name } => {
            client
                .request_json(Method::GET, &format!("/v1/aliases/{name}"), None)
                .await?
        }
        AliasCommand::Rollback { name } => client.rollback_alias(&name).await?,
        AliasCommand::Rm { name } => {
            client
                .request_json(Method::DELETE, &format!("/v1/aliases/{name}"), None)
                .await?;
            json!({ "deleted": name })
        }
    };
    if json_out {
        print_json(&out);
    } else if let Some(list) = out.get("aliases").and_then(Value::as_array) {
        for a in list {
            println!("{}  {}", plain(&a["name"]), plain(&a["function"]));
        }
    } else if out.get("function").is_some() {
        println!("{}  {}", plain(&out["name"]), plain(&out["function"]));
    } else if let Some(steps) = out.get("steps").and_then(Value::as_array) {
        let steps: Vec<String> = steps
            .iter()
            .map(|s| format!("{}:{}", plain(&s["function"]), plain(&s["export"])))
            .collect();
        println!("{}  sequence {}", plain(&out["name"]), steps.join(" → "));
    }
    Ok(())
}
