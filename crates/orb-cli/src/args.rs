use clap::{Args, Parser, Subcommand, ValueEnum};
use std::net::SocketAddr;
use std::path::PathBuf;

/// Orb: run WebAssembly functions by hash, next to durable state.
#[derive(Parser, Debug)]
#[command(name = "orb", version, about, long_about = None)]
pub struct Cli {
    /// Orb server to talk to.
    #[arg(
        long,
        global = true,
        env = "ORB_SERVER",
        default_value = "http://127.0.0.1:7070"
    )]
    pub server: String,
    /// Print machine-readable JSON instead of text.
    #[arg(long, global = true)]
    pub json: bool,
    /// Token (private or public) sent as `Authorization: Bearer`.
    #[arg(long, global = true, env = "ORB_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Also trust this CA certificate (PEM) for an `https://` server, e.g. a
    /// node's `<data_dir>/tls/self-signed.crt`.
    #[arg(long, global = true, env = "ORB_CA", value_name = "FILE")]
    pub ca: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run a node with the example functions deployed, and print how to call them.
    Up {
        #[command(flatten)]
        node: NodeArgs,
        /// Folder of example components (`*.wasm`) to deploy.
        #[arg(long, env = "ORB_EXAMPLES", default_value = "build/guests")]
        examples: PathBuf,
    },
    /// Run a node.
    Serve {
        #[command(flatten)]
        node: NodeArgs,
    },
    /// Upload a component; prints its hash and exports.
    Deploy {
        /// Path to a `.wasm` component.
        file: PathBuf,
    },
    /// Print a component's hash (`sha256:<hex>`), optionally into a file.
    Hash {
        file: PathBuf,
        /// Write the hash to this file too (the seed's `.hash` file).
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
    /// Call a function: TARGET is a hash or a `.wasm` path (hash first, upload if needed).
    Invoke(InvokeArgs),
    /// Functions stored on the server.
    #[command(subcommand, name = "fn")]
    Fn(FnCommand),
    /// Activation records.
    #[command(subcommand)]
    Act(ActCommand),
    /// Accounts (admin).
    #[command(subcommand)]
    Account(AccountCommand),
    /// Private and public tokens.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Operator tasks on a data directory (offline).
    #[command(subcommand)]
    Admin(AdminCommand),
    /// The Orb network on NATS JetStream: create it, list its nodes and
    /// functions, drain a node.
    #[command(subcommand)]
    Network(NetworkCommand),
    /// Namespaces.
    #[command(subcommand)]
    Ns(NsCommand),
    /// Recurring calls (interval or cron).
    #[command(subcommand)]
    Schedule(ScheduleCommand),
    /// Mutable names for function hashes (versions, rollback) and sequences.
    #[command(subcommand)]
    Alias(AliasCommand),
    /// Named events that rules turn into calls (fired by POST, a schedule or
    /// namespace changes).
    #[command(subcommand)]
    Trigger(TriggerCommand),
    /// Bind a trigger to a function export.
    #[command(subcommand)]
    Rule(RuleCommand),
    /// Long-lived functions with their own state and an outport (seed 004).
    #[command(subcommand)]
    Kappa(KappaCommand),
    /// Secrets the node injects into functions' outgoing HTTP requests.
    #[command(subcommand)]
    Secret(SecretCommand),
    /// The hosts functions may reach over HTTP (private-token calls).
    #[command(subcommand)]
    Outbound(OutboundCommand),
}

#[derive(Subcommand, Debug)]
pub enum SecretCommand {
    /// Store (or replace) a secret, read from stdin or --value-file; the node
    /// adds it as HEADER to requests to the given hosts. It cannot be read back.
    Set {
        name: String,
        /// Host pattern it is sent to (`api.example.com`, `*.example.org`,
        /// `127.0.0.1:8080`); repeat for more.
        #[arg(long = "host", value_name = "PATTERN", required = true)]
        hosts: Vec<String>,
        /// The header it goes in (e.g. `authorization`).
        #[arg(long)]
        header: String,
        /// How the value is written, `{}` standing for it (e.g. "Bearer {}").
        #[arg(long)]
        format: Option<String>,
        /// Read the value from this file instead of stdin.
        #[arg(long, value_name = "FILE")]
        value_file: Option<PathBuf>,
    },
    /// List secrets (names, hosts, header; never values).
    Ls,
    /// Delete a secret.
    Rm { name: String },
}

#[derive(Subcommand, Debug)]
pub enum OutboundCommand {
    /// Replace the account's outbound host list.
    Set {
        /// Host patterns (`api.example.com`, `*.example.org`, `127.0.0.1:8080`).
        hosts: Vec<String>,
    },
    /// Show the account's outbound host list.
    Show,
}

#[derive(Subcommand, Debug)]
pub enum TriggerCommand {
    /// Create (or replace) a trigger; with --ns it fires on changes there.
    Create {
        name: String,
        /// Fire on committed changes in this namespace…
        #[arg(long = "ns", value_name = "NAME")]
        namespace: Option<String>,
        /// …to keys starting with this prefix.
        #[arg(long, requires = "namespace")]
        prefix: Option<String>,
        #[arg(long)]
        description: Option<String>,
    },
    /// Fire a trigger with a payload of `name=value` / `name:=json` pairs.
    Fire { name: String, payload: Vec<String> },
    /// List triggers.
    Ls,
    /// Show a trigger and its rules.
    Show { name: String },
    /// Delete a trigger and its rules.
    Rm { name: String },
}

#[derive(Subcommand, Debug)]
pub enum RuleCommand {
    /// Create (or replace) a rule: TRIGGER → FUNCTION EXPORT [name=value…]
    /// (static parameters, on top of the payload's).
    Create {
        name: String,
        #[arg(long)]
        trigger: String,
        /// A hash or an alias.
        function: String,
        export: String,
        params: Vec<String>,
        /// The namespace the function reads and writes.
        #[arg(long = "ns", value_name = "NAME")]
        namespace: Option<String>,
        /// Store each result under this key of the namespace.
        #[arg(long, value_name = "KEY", requires = "namespace")]
        write_to: Option<String>,
        /// Create it disabled.
        #[arg(long)]
        disabled: bool,
    },
    /// List rules.
    Ls,
    /// Show a rule.
    Show { name: String },
    /// Delete a rule.
    Rm { name: String },
}

#[derive(Subcommand, Debug)]
pub enum KappaCommand {
    /// Deploy a kappa from a function (hash, alias or `.wasm` path); prints its ref.
    Deploy {
        function: String,
        /// The export that handles messages (default: the only one).
        #[arg(long)]
        export: Option<String>,
    },
    /// Send a JSON message to a kappa's inport.
    Send { reference: String, message: String },
    /// Read (and remove) the oldest message of a kappa's outport.
    Recv { reference: String },
    /// List kappas.
    Ls,
    /// Delete a kappa, its state and its outport.
    Rm { reference: String },
}

#[derive(Subcommand, Debug)]
pub enum ScheduleCommand {
    /// Create a schedule: FUNCTION (hash or alias) EXPORT [name=value…].
    Add(Box<ScheduleAddArgs>),
    /// List schedules with their last and next runs.
    Ls,
    /// Show a schedule and its state (last run, last error…).
    Show { id: String },
    /// Delete a schedule.
    Rm { id: String },
}

#[derive(clap::Args, Debug)]
pub struct ScheduleAddArgs {
    pub function: String,
    pub export: String,
    /// Parameters as `name=value` or `name:=json`.
    pub params: Vec<String>,
    /// Repeat every interval (`30s`, `5m`).
    #[arg(long, conflicts_with = "cron", required_unless_present = "cron")]
    pub every: Option<String>,
    /// Repeat on a cron pattern (`*/5 * * * *`).
    #[arg(long)]
    pub cron: Option<String>,
    /// IANA time zone for --cron (default UTC).
    #[arg(long = "tz", requires = "cron")]
    pub timezone: Option<String>,
    /// The namespace the function reads and writes.
    #[arg(long = "ns", value_name = "NAME")]
    pub namespace: Option<String>,
    /// Store each result under this key of the namespace.
    #[arg(long, value_name = "KEY", requires = "namespace")]
    pub write_to: Option<String>,
    /// Run once now, then on the cadence.
    #[arg(long)]
    pub run_now: bool,
    /// No tick before this time (RFC 3339).
    #[arg(long)]
    pub start_at: Option<String>,
    /// No tick after this time (RFC 3339).
    #[arg(long)]
    pub end_at: Option<String>,
}

#[derive(Subcommand, Debug)]
pub enum AliasCommand {
    /// Point NAME at a function hash, or make it a sequence with --step
    /// (creates or switches it).
    Set {
        name: String,
        #[arg(required_unless_present = "steps", conflicts_with = "steps")]
        hash: Option<String>,
        /// A sequence step, `HASH:EXPORT` (repeatable, in order).
        #[arg(long = "step", value_name = "HASH:EXPORT")]
        steps: Vec<String>,
        /// Bind a namespace: an HTTP function served through this alias
        /// opens it as its `wasi:keyvalue` bucket "default" (or "").
        #[arg(long = "ns", value_name = "NS", conflicts_with = "steps")]
        namespace: Option<String>,
        /// Serve `/http/NAME/…` without a token.
        #[arg(long, conflicts_with = "steps")]
        public: bool,
    },
    /// List aliases.
    Ls,
    /// Show an alias and its earlier targets.
    Show { name: String },
    /// Point NAME back at its previous target.
    Rollback { name: String },
    /// Delete an alias.
    Rm { name: String },
}

#[derive(Subcommand, Debug)]
pub enum AccountCommand {
    /// Create an account; prints its id and private token (shown once).
    Create {
        #[arg(long, default_value = "")]
        name: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum TokenCommand {
    /// Mint a public token under your private token.
    Mint {
        /// Namespace access, `NAME:r|w|rw` (repeatable).
        #[arg(long = "ns", value_name = "NAME:MODE")]
        namespaces: Vec<String>,
        /// Allow uploading code (otherwise calls by hash only).
        #[arg(long)]
        upload: bool,
        /// Only these functions (repeatable; default: any of the account's).
        #[arg(long = "function", value_name = "HASH")]
        functions: Vec<String>,
        /// Rate limit, `COUNT/PERIOD` (e.g. `5/60s`).
        #[arg(long)]
        rate: Option<String>,
        /// Schedules, `MAX@MIN_INTERVAL` (e.g. `1@30s`).
        #[arg(long)]
        schedules: Option<String>,
        /// Hosts functions may reach (repeatable).
        #[arg(long = "outbound-host", value_name = "HOST")]
        outbound_hosts: Vec<String>,
        /// Triggers it may fire (repeatable).
        #[arg(long = "trigger", value_name = "NAME")]
        triggers: Vec<String>,
        /// Lifetime, e.g. `30d`.
        #[arg(long)]
        expires: Option<String>,
    },
    /// Narrow a token offline by appending checks (no server needed).
    Attenuate {
        /// The token to narrow (default: --token / ORB_TOKEN).
        #[arg(value_name = "TOKEN")]
        target: Option<String>,
        /// Only these operations (repeatable: invoke, functions.read, …).
        #[arg(long = "op")]
        operations: Vec<String>,
        /// Only these functions (repeatable).
        #[arg(long = "function", value_name = "HASH")]
        functions: Vec<String>,
        /// Only these namespaces (repeatable).
        #[arg(long = "ns", value_name = "NAME")]
        namespaces: Vec<String>,
        /// Outbound HTTP of its calls only to these host patterns
        /// (repeatable: `api.example.com`, `*.example.org`, `10.0.0.1:8080`),
        /// within the token's `outbound_hosts` or the account's policy.
        #[arg(long = "host", value_name = "PATTERN")]
        hosts: Vec<String>,
        /// Expire after, e.g. `1h`.
        #[arg(long)]
        expires: Option<String>,
    },
    /// Show a token's blocks (permissions, expiry) and lineage, offline.
    Inspect {
        /// Default: --token / ORB_TOKEN.
        #[arg(value_name = "TOKEN")]
        target: Option<String>,
    },
    /// Revoke a token of your account and everything derived from it.
    Revoke {
        #[arg(value_name = "TOKEN")]
        target: String,
    },
    /// Replace your private token: prints a new one and revokes the old one
    /// with everything derived from it (its copies, the public tokens it minted).
    Rotate,
}

#[derive(Subcommand, Debug)]
pub enum AdminCommand {
    /// Offline, with the node stopped: a new private token for an account
    /// (default: the admin's) from the data directory's root key. Logged to
    /// <data-dir>/recover.log; the admin's is also written to admin.token.
    Recover {
        #[arg(long, value_name = "DIR")]
        data_dir: PathBuf,
        /// Account id or name (default: the admin account).
        #[arg(long)]
        account: Option<String>,
    },
}

#[derive(Subcommand, Debug)]
pub enum NetworkCommand {
    /// Create the network's buckets, streams and component store on its NATS
    /// servers. Idempotent: what exists is kept and listed as existing.
    Init {
        /// NATS servers of the network, comma-separated or repeated
        /// (`nats://h1:4222,nats://h2:4222`); any one is enough to reach
        /// it. Not needed with --auth-only.
        #[arg(
            long = "network",
            value_name = "URLS",
            env = "ORB_NETWORK",
            value_delimiter = ','
        )]
        urls: Vec<String>,
        /// The operator's NATS credentials (`nats-operator.nk`), once the
        /// servers require them.
        #[arg(long, value_name = "FILE", env = "ORB_NETWORK_CREDS")]
        creds: Option<PathBuf>,
        /// Only write the NATS credentials of the three roles and the
        /// servers' `nats-auth.conf` into --secrets-dir (no servers needed):
        /// include that file in every server's configuration, then run
        /// init again with --creds DIR/nats-operator.nk.
        #[arg(long)]
        auth_only: bool,
        /// Copies of each bucket and stream (1–5). Default: 1 on a single
        /// NATS server, else the cluster's size up to 3.
        #[arg(long)]
        replicas: Option<usize>,
        /// Where the first init writes the network's root private key
        /// (`root.key`, for super nodes' --network-key), the admin
        /// account's private token (`admin.token`) and the NATS
        /// credentials of the three roles (`nats-operator.nk`,
        /// `nats-super.nk`, `nats-node.nk`), all mode 0600 and never
        /// overwritten, with the servers' `nats-auth.conf`.
        #[arg(long, value_name = "DIR", default_value = "orb-network")]
        secrets_dir: PathBuf,
    },
    /// The nodes the network knows (gone ones too): state, liveness, role,
    /// attributes and capacity.
    Nodes {
        #[command(flatten)]
        nats: NatsArgs,
    },
    /// A function as the network sees it: owner, size, exports, placement
    /// and its seeders (slot, node, state, liveness, attributes).
    Function {
        /// The function's id (`sha256:<hex>`).
        function: String,
        #[command(flatten)]
        nats: NatsArgs,
    },
    /// Move a node's seeding elsewhere before it stops: the node is marked
    /// `draining`, seeds nothing new and gives its seeding slots back; the
    /// repair duty asks other nodes to seed what it seeded. It keeps
    /// answering calls until it stops. Waits until every function it
    /// seeded has `min_seeders` live seeders elsewhere (then it is safe to
    /// stop); a restarted node joins again as active.
    Drain {
        /// The node's id, or a unique prefix of it (`orb network nodes`).
        node: String,
        #[command(flatten)]
        nats: NatsArgs,
        /// How long to wait for its functions to be seeded elsewhere
        /// (`0`: ask and return at once).
        #[arg(long, value_name = "SECONDS", default_value_t = 120)]
        wait: u64,
    },
}

/// Where the network's NATS servers are.
#[derive(clap::Args, Debug)]
pub struct NatsArgs {
    /// NATS servers of the network, comma-separated or repeated
    /// (`nats://h1:4222,nats://h2:4222`); any one is enough to reach it.
    #[arg(
        long = "network",
        value_name = "URLS",
        env = "ORB_NETWORK",
        value_delimiter = ',',
        required = true
    )]
    pub urls: Vec<String>,
    /// NATS credentials (`nats-operator.nk`, written by `orb network
    /// init`), when the servers require them; `drain` needs the operator's.
    #[arg(long, value_name = "FILE", env = "ORB_NETWORK_CREDS")]
    pub creds: Option<PathBuf>,
}

#[derive(Subcommand, Debug)]
pub enum NsCommand {
    /// List namespaces, or a namespace's keys.
    Ls {
        namespace: Option<String>,
        #[arg(long, default_value = "")]
        prefix: String,
    },
    /// Print a key's JSON value.
    Get { namespace: String, key: String },
    /// Write a key: VALUE is JSON when it parses, else a string.
    Put {
        namespace: String,
        key: String,
        value: String,
    },
    /// Delete a key.
    Rm { namespace: String, key: String },
    /// Write a namespace as JSON (to FILE or stdout).
    Export {
        namespace: String,
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
    /// Load a namespace from an export (FILE, or `-` for stdin).
    Import { namespace: String, file: PathBuf },
    /// Show or set the function hashes public tokens may run against a namespace.
    Whitelist {
        namespace: String,
        /// Replace the list (repeatable).
        #[arg(long = "set", value_name = "HASH")]
        set: Vec<String>,
        /// Add hashes (repeatable).
        #[arg(long = "add", value_name = "HASH")]
        add: Vec<String>,
        /// Remove hashes (repeatable).
        #[arg(long = "remove", value_name = "HASH")]
        remove: Vec<String>,
        /// Empty the list.
        #[arg(long)]
        clear: bool,
    },
}

#[derive(Args, Debug)]
pub struct InvokeArgs {
    /// `sha256:<hex>`, a path to a `.wasm` component, or an alias.
    pub target: String,
    /// Export to call.
    pub export: String,
    /// Parameters as `name=value` (value parsed as JSON when it parses, else a
    /// string) or `name:=json` (always JSON).
    pub params: Vec<String>,
    /// Parameters as one JSON object (merged under `name=value` pairs).
    #[arg(long = "params", value_name = "OBJ")]
    pub params_json: Option<String>,
    /// Globals as a JSON object, readable through `wasi:config`.
    #[arg(long, value_name = "OBJ")]
    pub globals: Option<String>,
    /// The namespace the function may read and write (`wasi:keyvalue`).
    #[arg(long = "ns", value_name = "NAME")]
    pub namespace: Option<String>,
    /// Pairs (a JSON object) written to the namespace before the call.
    #[arg(long, value_name = "OBJ", requires = "namespace")]
    pub set: Option<String>,
    /// Store the result under this key of the namespace.
    #[arg(long, value_name = "KEY", requires = "namespace")]
    pub write_to: Option<String>,
    /// Queue the call and print its activation id (`orb act wait ID`).
    #[arg(long = "async", conflicts_with = "local")]
    pub is_async: bool,
    /// Run in this process, without a server.
    #[arg(long)]
    pub local: bool,
    /// Compile cache for `--local`.
    #[arg(long, env = "ORB_LOCAL_CACHE")]
    pub cache_dir: Option<PathBuf>,
}

#[derive(Subcommand, Debug)]
pub enum FnCommand {
    /// List functions.
    Ls,
    /// Show a function's exports.
    Show { hash: String },
    /// Delete a function.
    Rm { hash: String },
}

#[derive(Subcommand, Debug)]
pub enum ActCommand {
    /// List activations, newest first.
    Ls {
        /// Only this function's.
        #[arg(long)]
        function: Option<String>,
        #[arg(long, default_value_t = 20)]
        limit: usize,
    },
    /// Show one activation, with its logs.
    Show { id: String },
    /// Wait for an asynchronous call to finish, then show it.
    Wait {
        id: String,
        /// Longest wait (`30s`).
        #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
        timeout: std::time::Duration,
    },
    /// Asynchronous calls that failed for good (after their retries).
    DeadLetters,
}

#[derive(ValueEnum, Clone, Copy, Debug)]
pub enum LogFormatArg {
    Text,
    Json,
}

/// Node settings. Each flag also reads `ORB_*` and `orb.toml`.
#[derive(Args, Debug, Clone)]
pub struct NodeArgs {
    /// Configuration file (TOML); `./orb.toml` is read when it exists.
    #[arg(long, env = "ORB_CONFIG")]
    pub config: Option<PathBuf>,
    /// Address to listen on (port 0 picks a free port).
    #[arg(long, env = "ORB_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// Data folder: store and compiled artifacts.
    #[arg(long, env = "ORB_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Node log format.
    #[arg(long, env = "ORB_LOG_FORMAT", value_enum)]
    pub log_format: Option<LogFormatArg>,
    /// Per-call wall-clock limit, e.g. `10s`, `500ms`.
    #[arg(long, env = "ORB_TIMEOUT", value_parser = humantime::parse_duration)]
    pub timeout: Option<std::time::Duration>,
    /// Per-call memory limit in MiB.
    #[arg(long, env = "ORB_MEMORY_LIMIT_MIB")]
    pub memory_limit_mib: Option<u64>,
    /// Per-call fuel limit (unlimited when unset).
    #[arg(long, env = "ORB_FUEL_LIMIT")]
    pub fuel_limit: Option<u64>,
    /// Largest component accepted, in MiB.
    #[arg(long, env = "ORB_MAX_COMPONENT_MIB")]
    pub max_component_mib: Option<u64>,
    /// Log cap per activation, in KiB.
    #[arg(long, env = "ORB_LOG_LIMIT_KIB")]
    pub log_limit_kib: Option<u64>,
    /// Activations kept before the oldest are pruned.
    #[arg(long, env = "ORB_MAX_ACTIVATIONS")]
    pub max_activations: Option<u64>,
    /// Serve HTTPS with this certificate chain (PEM); needs --tls-key.
    #[arg(long, env = "ORB_TLS_CERT", value_name = "FILE")]
    pub tls_cert: Option<PathBuf>,
    /// Private key (PEM) for --tls-cert.
    #[arg(long, env = "ORB_TLS_KEY", value_name = "FILE")]
    pub tls_key: Option<PathBuf>,
    /// Serve HTTPS with a generated development certificate
    /// (`<data_dir>/tls/self-signed.crt`, reused; prints its fingerprint).
    #[arg(long, env = "ORB_TLS_SELF_SIGNED", value_parser = clap::builder::BoolishValueParser::new())]
    pub tls_self_signed: bool,
    /// Join the network on these NATS servers (comma-separated), as a node
    /// (or a super node with --super). Without it: a single node.
    #[arg(
        long = "network",
        value_name = "URLS",
        env = "ORB_NETWORK",
        value_delimiter = ','
    )]
    pub network: Vec<String>,
    /// Also run the super-node duties (admission, reaping, minting tokens);
    /// needs --network-key.
    #[arg(long = "super", env = "ORB_SUPER", value_parser = clap::builder::BoolishValueParser::new(), requires = "network")]
    pub super_node: bool,
    /// The network's root private key (written by `orb network init`).
    #[arg(
        long,
        value_name = "FILE",
        env = "ORB_NETWORK_KEY",
        requires = "network"
    )]
    pub network_key: Option<PathBuf>,
    /// NATS credentials for the network (`nats-node.nk`, or
    /// `nats-super.nk` for a super node; written by `orb network init`),
    /// when its servers require them.
    #[arg(
        long,
        value_name = "FILE",
        env = "ORB_NETWORK_CREDS",
        requires = "network"
    )]
    pub network_creds: Option<PathBuf>,
    /// A `key=value` label placement matches on (repeatable: `--attr region=eu --attr gpu=no`).
    #[arg(
        long = "attr",
        value_name = "KEY=VALUE",
        env = "ORB_ATTRS",
        value_delimiter = ',',
        requires = "network"
    )]
    pub attributes: Vec<String>,
}
