use crate::args::{ActCommand, Cli, Command, FnCommand, InvokeArgs, LogFormatArg, NodeArgs};
use crate::output::{plain, print_json};
use anyhow::{Context, bail};
use bytes::Bytes;
use indicatif::{ProgressBar, ProgressStyle};
use orb_client::{CallOptions, Client, ClientError};
use orb_core::{ErrorCode, FunctionId, FunctionInfo, OrbError};
use orb_node::{LogFormat, Node, NodeConfig};
use serde_json::{Map, Value, json};
use std::path::{Path, PathBuf};
use std::time::Duration;

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let json_out = cli.json;
    match cli.command {
        Command::Serve { node } => serve(node, None).await,
        Command::Up { node, examples } => serve(node, Some(examples)).await,
        Command::Hash { file, output } => hash(&file, output.as_deref(), json_out),
        Command::Deploy { file } => {
            deploy(&client(&cli.server, &cli.ca, &cli.token)?, &file, json_out).await
        }
        Command::Invoke(args) => invoke(&cli.server, &cli.ca, &cli.token, args, json_out).await,
        Command::Fn(cmd) => fn_cmd(&client(&cli.server, &cli.ca, &cli.token)?, cmd, json_out).await,
        Command::Act(cmd) => {
            act_cmd(&client(&cli.server, &cli.ca, &cli.token)?, cmd, json_out).await
        }
        Command::Account(cmd) => {
            crate::tokens::account_cmd(&client(&cli.server, &cli.ca, &cli.token)?, cmd, json_out)
                .await
        }
        Command::Token(cmd) => {
            crate::tokens::token_cmd(
                &client(&cli.server, &cli.ca, &cli.token)?,
                cli.token.as_deref(),
                cmd,
                json_out,
            )
            .await
        }
        Command::Network(cmd) => crate::network::run(cmd, json_out).await,
        Command::Admin(crate::args::AdminCommand::Recover { data_dir, account }) => {
            let (account, token) = orb_node::recover(&data_dir, account.as_deref()).await?;
            if json_out {
                print_json(&json!({ "account": account, "token": token }));
            } else {
                println!("{token}");
                eprintln!(
                    "new private token for {account} (logged in {})",
                    data_dir.join("recover.log").display()
                );
            }
            Ok(())
        }
        Command::Ns(cmd) => {
            crate::tokens::ns_cmd(&client(&cli.server, &cli.ca, &cli.token)?, cmd, json_out).await
        }
        Command::Schedule(cmd) => {
            crate::schedules::schedule_cmd(
                &client(&cli.server, &cli.ca, &cli.token)?,
                cmd,
                json_out,
            )
            .await
        }
        Command::Alias(cmd) => {
            crate::schedules::alias_cmd(&client(&cli.server, &cli.ca, &cli.token)?, cmd, json_out)
                .await
        }
        Command::Trigger(cmd) => {
            crate::events::trigger_cmd(&client(&cli.server, &cli.ca, &cli.token)?, cmd, json_out)
                .await
        }
        Command::Rule(cmd) => {
            crate::events::rule_cmd(&client(&cli.server, &cli.ca, &cli.token)?, cmd, json_out).await
        }
        Command::Kappa(cmd) => {
            crate::events::kappa_cmd(&client(&cli.server, &cli.ca, &cli.token)?, cmd, json_out)
                .await
        }
        Command::Secret(cmd) => {
            crate::secrets::secret_cmd(&client(&cli.server, &cli.ca, &cli.token)?, cmd, json_out)
                .await
        }
        Command::Outbound(cmd) => {
            crate::secrets::outbound_cmd(&client(&cli.server, &cli.ca, &cli.token)?, cmd, json_out)
                .await
        }
    }
}

/// A client for `server`, trusting `--ca` when given.
fn client(server: &str, ca: &Option<PathBuf>, token: &Option<String>) -> anyhow::Result<Client> {
    let client = match ca {
        Some(path) => {
            let pem = std::fs::read(path)
                .with_context(|| format!("cannot read the CA certificate {}", path.display()))?;
            Client::with_ca(server, &pem)?
        }
        None => Client::new(server)?,
    };
    Ok(match token {
        Some(t) => client.with_token(t.clone()),
        None => client,
    })
}

/// flags > `ORB_*` environment (clap reads both) > `orb.toml` > defaults.
pub fn node_config(args: &NodeArgs) -> anyhow::Result<NodeConfig> {
    let file = match &args.config {
        Some(p) => Some(p.clone()),
        None => Some(PathBuf::from("orb.toml")).filter(|p| p.exists()),
    };
    let mut cfg = match &file {
        Some(p) => {
            let text = std::fs::read_to_string(p)
                .with_context(|| format!("cannot read config {}", p.display()))?;
            NodeConfig::from_toml(&text)
                .with_context(|| format!("invalid config {}", p.display()))?
        }
        None => NodeConfig::default(),
    };
    if let Some(v) = args.listen {
        cfg.listen = v;
    }
    if let Some(v) = &args.data_dir {
        cfg.data_dir = v.clone();
    }
    if let Some(v) = args.log_format {
        cfg.log_format = match v {
            LogFormatArg::Text => LogFormat::Text,
            LogFormatArg::Json => LogFormat::Json,
        };
    }
    if let Some(v) = args.timeout {
        cfg.timeout_ms = v.as_millis().max(1) as u64;
    }
    if let Some(v) = args.memory_limit_mib {
        cfg.memory_limit_bytes = v << 20;
    }
    if let Some(v) = args.fuel_limit {
        cfg.fuel_limit = Some(v);
    }
    if let Some(v) = args.max_component_mib {
        cfg.max_component_bytes = v << 20;
    }
    if let Some(v) = args.log_limit_kib {
        cfg.log_limit_bytes = v << 10;
    }
    if let Some(v) = args.max_activations {
        cfg.max_activations = v;
    }
    if let Some(v) = &args.tls_cert {
        cfg.tls_cert = Some(v.clone());
    }
    if let Some(v) = &args.tls_key {
        cfg.tls_key = Some(v.clone());
    }
    if args.tls_self_signed {
        cfg.tls_self_signed = true;
    }
    if !args.network.is_empty() {
        cfg.network.urls = args.network.clone();
    }
    if args.super_node {
        cfg.network.super_node = true;
    }
    if let Some(v) = &args.network_key {
        cfg.network.root_key = Some(v.clone());
    }
    if let Some(v) = &args.network_creds {
        cfg.network.creds = Some(v.clone());
    }
    if !args.attributes.is_empty() {
        cfg.network.attributes = args.attributes.clone();
    }
    Ok(cfg)
}

fn init_logs(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("ORB_LOG").unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new("info,wasmtime=warn,cranelift=warn")
    });
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}

async fn serve(args: NodeArgs, examples: Option<PathBuf>) -> anyhow::Result<()> {
    let cfg = node_config(&args)?;
    init_logs(cfg.log_format);
    let listener = tokio::net::TcpListener::bind(cfg.listen)
        .await
        .with_context(|| format!("cannot listen on {}", cfg.listen))?;
    let addr = listener.local_addr()?;
    let data_dir = cfg.data_dir.clone();
    anyhow::ensure!(
        examples.is_none() || !cfg.network.enabled(),
        "`orb up` runs a single node with the examples; to join a network use `orb serve --network …`"
    );
    let networked = cfg.network.enabled();
    let node = Node::start(cfg).await?;
    tracing::info!(%addr, data_dir = %data_dir.display(), networked, "orb node ready");
    let url = format!("{}://{addr}", node.scheme());
    if let Some(fp) = node.tls_fingerprint() {
        println!("tls certificate sha256 fingerprint: {fp}");
    }
    if let Some(dir) = examples {
        deploy_examples(&node, &dir, &url, &data_dir.join("admin.token")).await?;
    }
    println!("orb listening on {url}");
    node.serve(listener, shutdown_signal()).await
}

async fn deploy_examples(
    node: &Node,
    dir: &Path,
    url: &str,
    admin_token: &Path,
) -> anyhow::Result<()> {
    let mut files: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(rd) => rd
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "wasm"))
            .collect(),
        Err(_) => {
            println!(
                "no examples in {} (build them with scripts/build-guests); serving without them",
                dir.display()
            );
            return Ok(());
        }
    };
    files.sort();
    println!(
        "deploying {} example(s) from {}",
        files.len(),
        dir.display()
    );
    let mut deployed = Vec::new();
    for path in files {
        let name = path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("?")
            .to_string();
        let bytes =
            std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
        let pb = spinner(&format!("compiling {name}"));
        let result = node.deploy(Bytes::from(bytes)).await;
        pb.finish_and_clear();
        match result {
            Ok(info) => deployed.push((name, info)),
            Err(e) => println!("  {name}: skipped ({}: {})", e.0.code, e.0.message),
        }
    }
    for (name, info) in &deployed {
        println!("\n{name}  {}", info.hash);
        for line in export_lines(info) {
            println!("{line}");
        }
    }
    if let Some((_, hello)) = deployed.iter().find(|(n, _)| n == "hello") {
        println!(
            "\nThe admin account's private token is in {}:",
            admin_token.display()
        );
        println!(
            "  export ORB_TOKEN=$(cat {}) ORB_SERVER={url}",
            admin_token.display()
        );
        println!("\nTry:");
        println!(
            "  curl -H \"authorization: Bearer $ORB_TOKEN\" '{url}/v1/functions/{}/greet?name=Ada'",
            hello.hash
        );
        println!(
            "  curl -X POST {url}/v1/invoke -H \"authorization: Bearer $ORB_TOKEN\" -H 'content-type: application/json' \\\n       -d '{{\"function\":\"{}\",\"export\":\"greet\",\"params\":{{\"name\":\"Ada\"}},\"globals\":{{\"greeting\":\"Howdy\"}}}}'",
            hello.hash
        );
        println!("  orb invoke {} greet name=Ada", hello.hash);
    }
    println!();
    Ok(())
}

fn spinner(msg: &str) -> ProgressBar {
    let pb = ProgressBar::new_spinner();
    pb.set_style(
        ProgressStyle::with_template("{spinner} {msg} {elapsed}").expect("valid template"),
    );
    pb.set_message(msg.to_string());
    pb.enable_steady_tick(Duration::from_millis(100));
    pb
}

fn hash(file: &Path, output: Option<&Path>, json_out: bool) -> anyhow::Result<()> {
    let bytes = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
    let id = FunctionId::of(&bytes);
    if let Some(out) = output {
        std::fs::write(out, format!("{id}\n"))
            .with_context(|| format!("cannot write {}", out.display()))?;
    }
    if json_out {
        print_json(&json!({ "hash": id, "size": bytes.len() }));
    } else {
        println!("{id}");
    }
    Ok(())
}

async fn upload_with_progress(
    client: &Client,
    bytes: Vec<u8>,
    name: &str,
) -> Result<FunctionInfo, ClientError> {
    let total = bytes.len() as u64;
    let pb = ProgressBar::new(total);
    pb.set_style(
        ProgressStyle::with_template("{msg} [{bar:30}] {bytes}/{total_bytes}")
            .expect("valid template")
            .progress_chars("=> "),
    );
    pb.set_message(format!("uploading {name}"));
    let chunks: Vec<Bytes> = Bytes::from(bytes)
        .chunks(256 * 1024)
        .map(Bytes::copy_from_slice)
        .collect();
    let pb2 = pb.clone();
    let stream = futures_util::stream::iter(chunks.into_iter().map(move |c| {
        pb2.inc(c.len() as u64);
        if pb2.position() >= total {
            pb2.set_message("compiling");
        }
        Ok::<_, std::io::Error>(c)
    }));
    let result = client.upload_body(reqwest::Body::wrap_stream(stream)).await;
    pb.finish_and_clear();
    result
}

async fn deploy(client: &Client, file: &Path, json_out: bool) -> anyhow::Result<()> {
    let bytes = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
    let name = file
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("component")
        .to_string();
    let info = upload_with_progress(client, bytes, &name).await?;
    if json_out {
        print_json(&info);
    } else {
        // stdout is the hash alone (`F=$(orb deploy f.wasm)`); the exports
        // are for the person at the terminal.
        println!("{}", info.hash);
        for line in export_lines(&info) {
            eprintln!("{line}");
        }
    }
    Ok(())
}

/// One line per export; very long signatures (generated plumbing such as
/// componentize-py's `exports#init`) are cut — `orb fn show --json` has them whole.
fn export_lines(info: &FunctionInfo) -> Vec<String> {
    const WIDTH: usize = 160;
    let mut lines = Vec::with_capacity(info.exports.len());
    for e in &info.exports {
        let params: Vec<String> = e
            .params
            .iter()
            .map(|p| format!("{}: {}", p.name, p.ty))
            .collect();
        let result = e
            .result
            .as_ref()
            .map(|r| format!(" -> {r}"))
            .unwrap_or_default();
        let line = format!("  {}({}){result}", e.name, params.join(", "));
        if line.chars().count() > WIDTH {
            let cut: String = line.chars().take(WIDTH - 1).collect();
            lines.push(format!("{cut}…"));
        } else {
            lines.push(line);
        }
    }
    lines
}

/// `name=value` (JSON when it parses, else a string) and `name:=json`.
pub fn parse_params(pairs: &[String], base: Option<&str>) -> anyhow::Result<Map<String, Value>> {
    let mut out = match base {
        Some(text) => {
            match serde_json::from_str::<Value>(text).context("--params is not valid JSON")? {
                Value::Object(m) => m,
                _ => bail!("--params must be a JSON object"),
            }
        }
        None => Map::new(),
    };
    for pair in pairs {
        if let Some((name, raw)) = pair.split_once(":=") {
            let v = serde_json::from_str(raw)
                .with_context(|| format!("`{name}:=` needs JSON, got `{raw}`"))?;
            out.insert(name.to_string(), v);
        } else if let Some((name, raw)) = pair.split_once('=') {
            let v = serde_json::from_str(raw).unwrap_or_else(|_| Value::String(raw.to_string()));
            out.insert(name.to_string(), v);
        } else {
            bail!("parameter `{pair}` must be `name=value` or `name:=json`");
        }
    }
    Ok(out)
}

async fn invoke(
    server: &str,
    ca: &Option<PathBuf>,
    token: &Option<String>,
    args: InvokeArgs,
    json_out: bool,
) -> anyhow::Result<()> {
    let params = Value::Object(parse_params(&args.params, args.params_json.as_deref())?);
    let globals = match &args.globals {
        Some(text) => {
            match serde_json::from_str::<Value>(text).context("--globals is not valid JSON")? {
                Value::Object(m) => m,
                _ => bail!("--globals must be a JSON object"),
            }
        }
        None => Map::new(),
    };
    let is_hash = FunctionId::looks_like_id(&args.target);
    if args.local {
        if args.namespace.is_some() {
            bail!(
                "--local runs without namespaces for now; drop --local to use `--ns` on the server"
            );
        }
        if is_hash {
            bail!("--local runs a component file; give the path to the .wasm instead of its hash");
        }
        return invoke_local(&args, params, globals, json_out).await;
    }
    let client = client(server, ca, token)?;
    let set = match &args.set {
        Some(text) => {
            match serde_json::from_str::<Value>(text).context("--set is not valid JSON")? {
                Value::Object(m) => Some(m),
                _ => bail!("--set must be a JSON object"),
            }
        }
        None => None,
    };
    let by_name = !is_hash && !Path::new(&args.target).exists();
    if args.is_async || by_name {
        return invoke_by_body(&client, &args, params, globals, set, json_out).await;
    }
    let opts = CallOptions {
        globals,
        namespace: args.namespace.clone(),
        set,
        write_to: args.write_to.clone(),
    };
    let out = if is_hash {
        let id: FunctionId = args.target.parse()?;
        client.invoke(&id, &args.export, params, opts).await?
    } else {
        let path = PathBuf::from(&args.target);
        let bytes = std::fs::read(&path).with_context(|| {
            format!(
                "`{}` is neither a hash (sha256:…) nor a readable .wasm file",
                args.target
            )
        })?;
        let id = FunctionId::of(&bytes);
        // Hash first; upload only if the server does not have it.
        match client
            .invoke(&id, &args.export, params.clone(), opts.clone())
            .await
        {
            Err(e) if e.code() == Some(ErrorCode::FunctionNotFound) => {
                if !json_out {
                    eprintln!("{id} is not on the server; uploading");
                }
                let name = path
                    .file_name()
                    .and_then(|n| n.to_str())
                    .unwrap_or("component")
                    .to_string();
                upload_with_progress(&client, bytes, &name).await?;
                client.invoke(&id, &args.export, params, opts).await?
            }
            other => other?,
        }
    };
    if json_out {
        print_json(&out);
    } else {
        println!("{}", plain(&out.result));
    }
    Ok(())
}

/// `orb invoke` through `POST /v1/invoke`: for `--async` (uploads a `.wasm`
/// path first if the server lacks it, queues the call, prints the activation
/// id) and for a TARGET that is neither a hash nor a file (an alias).
async fn invoke_by_body(
    client: &Client,
    args: &InvokeArgs,
    params: Value,
    globals: Map<String, Value>,
    set: Option<Map<String, Value>>,
    json_out: bool,
) -> anyhow::Result<()> {
    let function = if FunctionId::looks_like_id(&args.target) || !Path::new(&args.target).exists() {
        args.target.clone()
    } else {
        let bytes = std::fs::read(&args.target).with_context(|| {
            format!(
                "`{}` is neither a hash (sha256:…) nor a readable .wasm file",
                args.target
            )
        })?;
        let id = FunctionId::of(&bytes);
        if let Err(e) = client.get_function(&id).await {
            if e.code() != Some(ErrorCode::FunctionNotFound) {
                return Err(e.into());
            }
            upload_with_progress(client, bytes, &args.target).await?;
        }
        id.to_string()
    };
    let mut body = json!({
        "function": function,
        "export": args.export,
        "params": params,
        "globals": globals,
        "async": args.is_async,
    });
    if let Some(ns) = &args.namespace {
        body["namespace"] = json!(ns);
    }
    if let Some(set) = set {
        body["set"] = Value::Object(set);
    }
    if let Some(key) = &args.write_to {
        body["write_to"] = json!(key);
    }
    let out = client
        .request_json(reqwest::Method::POST, "/v1/invoke", Some(&body))
        .await?;
    if json_out {
        print_json(&out);
    } else if args.is_async {
        let a = plain(&out["activation"]);
        println!("{a}");
        eprintln!("queued; `orb act wait {a}` waits for the result");
    } else {
        println!("{}", plain(&out["result"]));
    }
    Ok(())
}

async fn invoke_local(
    args: &InvokeArgs,
    params: Value,
    globals: Map<String, Value>,
    json_out: bool,
) -> anyhow::Result<()> {
    let path = PathBuf::from(&args.target);
    let bytes = std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
    let id = FunctionId::of(&bytes);
    let cache_dir = args
        .cache_dir
        .clone()
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/orb/compiled")));
    let runtime = orb_runtime::Runtime::new(orb_runtime::RuntimeConfig {
        cache_dir,
        max_instances: 4,
        ..Default::default()
    })?;
    let rt = std::sync::Arc::new(runtime);
    let rt2 = rt.clone();
    let (f, _) = tokio::task::spawn_blocking(move || rt2.load(&id, &bytes)).await??;
    let checked = f.check_params(&args.export, &params)?;
    let globals = globals
        .into_iter()
        .map(|(k, v)| {
            (
                k,
                match v {
                    Value::String(s) => s,
                    o => o.to_string(),
                },
            )
        })
        .collect();
    let out = rt
        .call(
            &f,
            checked,
            orb_runtime::CallRequest {
                globals,
                limits: None,
                kv: None,
                outbound: None,
            },
        )
        .await;
    if !out.logs.is_empty() && !json_out {
        eprint!("{}", out.logs);
    }
    match out.result {
        Ok(result) => {
            if json_out {
                print_json(&json!({
                    "function": f.id(), "result": result, "duration_us": out.duration.as_micros() as u64,
                    "fuel": out.fuel, "logs": out.logs, "local": true,
                }));
            } else {
                println!("{}", plain(&result));
            }
            Ok(())
        }
        Err(e) => Err(anyhow::Error::new(e)),
    }
}

async fn fn_cmd(client: &Client, cmd: FnCommand, json_out: bool) -> anyhow::Result<()> {
    match cmd {
        FnCommand::Ls => {
            let fns = client.list_functions().await?;
            if json_out {
                print_json(&json!({ "functions": fns }));
            } else if fns.is_empty() {
                println!("no functions (orb deploy FILE)");
            } else {
                for f in fns {
                    let names: Vec<&str> = f.exports.iter().map(|e| e.name.as_str()).collect();
                    println!(
                        "{}  {:>9}  {}  {}",
                        f.hash,
                        f.size,
                        f.created_at,
                        names.join(", ")
                    );
                }
            }
        }
        FnCommand::Show { hash } => {
            let info = client.get_function(&parse_hash(&hash)?).await?;
            if json_out {
                print_json(&info);
            } else {
                println!(
                    "{}  {} bytes  uploaded {}",
                    info.hash, info.size, info.created_at
                );
                for line in export_lines(&info) {
                    println!("{line}");
                }
            }
        }
        FnCommand::Rm { hash } => {
            let id = parse_hash(&hash)?;
            client.delete_function(&id).await?;
            if json_out {
                print_json(&json!({ "deleted": id }));
            } else {
                println!("deleted {id}");
            }
        }
    }
    Ok(())
}

fn parse_hash(s: &str) -> anyhow::Result<FunctionId> {
    s.parse::<FunctionId>()
        .map_err(|e| anyhow::Error::new(OrbError::new(ErrorCode::InvalidFunctionId, e.to_string())))
}

async fn act_cmd(client: &Client, cmd: ActCommand, json_out: bool) -> anyhow::Result<()> {
    match cmd {
        ActCommand::Ls { function, limit } => {
            let f = function.as_deref().map(parse_hash).transpose()?;
            let acts = client.list_activations(f.as_ref(), limit).await?;
            if json_out {
                print_json(&json!({ "activations": acts }));
            } else {
                for a in acts {
                    let s = |k: &str| a.get(k).map(plain).unwrap_or_default();
                    let code = a.pointer("/error/code").map(plain).unwrap_or_default();
                    // A trigger's firing runs no export: name the trigger instead.
                    let what = match (s("export"), s("trigger")) {
                        (e, t) if e.is_empty() && !t.is_empty() => format!("trigger {t}"),
                        (e, _) if e.is_empty() => "-".to_string(),
                        (e, _) => e,
                    };
                    println!(
                        "{}  {}  {:<9} {:>8}us  {}  {}",
                        s("id"),
                        s("start"),
                        s("status"),
                        s("duration_us"),
                        what,
                        code
                    );
                }
            }
        }
        ActCommand::DeadLetters => {
            let out = client
                .request_json(reqwest::Method::GET, "/v1/dead-letters", None)
                .await?;
            if json_out {
                print_json(&out);
            } else {
                for d in out["dead_letters"].as_array().into_iter().flatten() {
                    println!(
                        "{}  {}  {}  tries {}  {}",
                        plain(&d["activation"]),
                        plain(&d["failed_at"]),
                        plain(&d["export"]),
                        plain(&d["attempts"]),
                        plain(&d["error"]["code"])
                    );
                }
            }
        }
        ActCommand::Wait { .. } | ActCommand::Show { .. } => {
            let a = match cmd {
                ActCommand::Wait { id, timeout } => client.wait_activation(&id, timeout).await?,
                ActCommand::Show { id } => client.get_activation(&id).await?,
                _ => unreachable!("matched above"),
            };
            if json_out {
                print_json(&a);
            } else {
                for k in [
                    "id",
                    "function",
                    "export",
                    "status",
                    "start",
                    "duration_us",
                    "fuel",
                ] {
                    println!("{k:>11}: {}", a.get(k).map(plain).unwrap_or_default());
                }
                if let Some(r) = a.get("result") {
                    println!(
                        "     result: {}",
                        serde_json::to_string(r).unwrap_or_default()
                    );
                }
                if let Some(e) = a.get("error") {
                    println!(
                        "      error: {} {}",
                        plain(&e["code"]),
                        plain(&e["message"])
                    );
                }
                let logs = a.get("logs").map(plain).unwrap_or_default();
                if !logs.is_empty() {
                    println!("       logs:\n{logs}");
                }
            }
        }
    }
    Ok(())
}
