//! Who may do what on the network's NATS servers: three roles, each a NATS
//! nkey user with subject permissions the servers enforce.
//!
//! `orb network init` (or `init --auth-only`, before the servers require
//! credentials) writes one nkey user seed per role into the secrets
//! directory (`nats-operator.nk`, `nats-super.nk`, `nats-node.nk`, mode
//! 0600, never overwritten) and `nats-auth.conf`, the `authorization`
//! block every server of the network includes. The permission lists are
//! [`permissions`]; ARCHITECTURE.md ("Network", "Permissions") gives the
//! reason for each line.
//!
//! Refusals: the servers answer a refused publish or subscription with an
//! asynchronous `-ERR 'Permissions Violation …'`, not on the request that
//! caused it (a refused request just gets no answer). [`connect_as`] logs
//! each one naming the role and what to do, and keeps them in
//! [`Refusals`], so a command can fail at once with
//! [`NetError::Refused`] instead of waiting for a timeout.

use crate::NetError;
use crate::identity::{check_private, tmp_path, write_private};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// A role on the network's NATS servers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    /// The command line (`orb network init`, `nodes`, `function`, `drain`):
    /// everything.
    Operator,
    /// Super nodes: what a node may, plus leases, accounts, seed requests
    /// and the fallback queue group.
    Super,
    /// Plain nodes.
    Node,
}

impl Role {
    /// Every role, in the order `nats-auth.conf` lists them.
    pub const ALL: [Role; 3] = [Role::Operator, Role::Super, Role::Node];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Operator => "operator",
            Role::Super => "super",
            Role::Node => "node",
        }
    }

    /// The seed file's name in the secrets directory.
    pub fn file_name(self) -> String {
        format!("nats-{}.nk", self.as_str())
    }

    fn parse(text: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == text)
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The name of the servers' authorization include in the secrets directory.
pub const AUTH_CONF: &str = "nats-auth.conf";

/// One permission line and why the role needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    /// A subject (wildcards allowed), for subscriptions optionally followed
    /// by a space and the only queue group allowed on it.
    pub subject: &'static str,
    pub why: &'static str,
}

const fn rule(subject: &'static str, why: &'static str) -> Rule {
    Rule { subject, why }
}

/// What every member (node or super node) may publish.
const MEMBER_PUBLISH: &[Rule] = &[
    rule(
        "$JS.API.INFO",
        "JetStream account info (is JetStream there)",
    ),
    rule(
        "$JS.API.STREAM.INFO.*",
        "open the buckets, streams and the object store (Network::open)",
    ),
    rule(
        "$JS.API.STREAM.MSG.GET.*",
        "read a stream message by sequence or last by subject (announcements)",
    ),
    rule("$JS.API.DIRECT.GET.>", "read KV keys and object metadata"),
    rule(
        "$JS.API.CONSUMER.CREATE.>",
        "consumers: KV watches and listings, object reads, its durable `node-<id>` on ORB_ANNOUNCE",
    ),
    rule(
        "$JS.API.CONSUMER.DURABLE.CREATE.>",
        "the same through the older durable-consumer endpoint",
    ),
    rule("$JS.API.CONSUMER.INFO.>", "consumer state"),
    rule(
        "$JS.API.CONSUMER.MSG.NEXT.>",
        "pull the next announcements from its durable consumer",
    ),
    rule("$JS.ACK.>", "acknowledge announcements it read"),
    rule("$JS.FC.>", "answer flow control of ordered consumers"),
    rule(
        "$KV.orb_nodes.>",
        "its record at join and its own draining/gone (a super node: admission, reaping)",
    ),
    rule("$KV.orb_alive.>", "its heartbeat"),
    rule(
        "$KV.orb_seeding.>",
        "claim and give back seeding slots (a super node: the want, freeing dead nodes' slots)",
    ),
    rule(
        "$KV.orb_records.>",
        "aliases, public routes, whitelists changed through it",
    ),
    rule(
        "$KV.orb_revocations.>",
        "revocations made through it (POST /v1/tokens/revoke)",
    ),
    rule(
        "$O.orb_components.>",
        "put the bytes of functions deployed through it",
    ),
    rule(
        "orb.validate",
        "ask a super node to validate and announce an upload through it",
    ),
    rule(
        "orb.announce.deprecate.*",
        "withdraw an account's function through it (a signed deprecation on ORB_ANNOUNCE)",
    ),
    rule("orb.report.>", "report hash mismatches (ORB_REPORTS)"),
    rule("orb.call.*", "route calls to a function's seeders"),
    rule(
        "orb.fallback.*",
        "route a call that found no seeder to the super nodes",
    ),
    rule(
        "_INBOX.>",
        "answer requests (calls, seed and control requests) and take JetStream replies",
    ),
];

/// What a super node may publish beyond a member.
const SUPER_PUBLISH: &[Rule] = &[
    rule(
        "orb.announce.deploy.*",
        "announce an upload it validated (ORB_ANNOUNCE)",
    ),
    rule(
        "$KV.orb_leases.>",
        "take, renew and release the duties' leases",
    ),
    rule(
        "$KV.orb_accounts.>",
        "create accounts and rotate their tokens (it holds the root key)",
    ),
    rule(
        "orb.seed.*",
        "replica repair: ask a node to seed a function or to stop",
    ),
];

/// What no member may publish (also outside its allow list; listed so a
/// later, broader allow line cannot open them by mistake).
const MEMBER_DENY: &[Rule] = &[
    rule(
        "orb.control.>",
        "drain requests are the operator's (`orb network drain`)",
    ),
    rule(
        "$KV.orb_network.>",
        "the network's facts are written by init",
    ),
    rule(
        "$JS.API.STREAM.CREATE.>",
        "the buckets, streams and store are made by init",
    ),
    rule("$JS.API.STREAM.UPDATE.>", "nor reconfigured by a member"),
    rule("$JS.API.STREAM.DELETE.>", "nor deleted"),
    rule("$JS.API.STREAM.PURGE.>", "nor purged"),
    rule(
        "$JS.API.STREAM.MSG.DELETE.>",
        "nor rewritten message by message",
    ),
    rule(
        "$JS.API.CONSUMER.DELETE.>",
        "another node's durable consumer is not a member's to remove",
    ),
];

/// What only super nodes may publish: denied to a node.
const NODE_DENY: &[Rule] = &[
    rule(
        "orb.announce.deploy.>",
        "deploys are announced by the super node that validated them",
    ),
    rule("orb.seed.>", "replica repair is a super node's duty"),
    rule("$KV.orb_leases.>", "leases are for super nodes"),
    rule(
        "$KV.orb_accounts.>",
        "accounts are minted by super nodes (root key)",
    ),
];

/// What every member may subscribe to.
const MEMBER_SUBSCRIBE: &[Rule] = &[
    rule(
        "_INBOX.>",
        "answers to its requests, JetStream replies and consumer deliveries",
    ),
    rule(
        "orb.call.* seeders",
        "answer calls of functions it seeds, only in the `seeders` queue group",
    ),
    rule(
        "orb.seed.*",
        "seed requests sent to it (queue group = its id)",
    ),
    rule(
        "orb.control.*",
        "control requests sent to it (queue group = its id)",
    ),
];

/// What a super node may subscribe to beyond a member.
const SUPER_SUBSCRIBE: &[Rule] = &[
    rule(
        "orb.fallback.* supers",
        "answer calls that found no seeder, only in the `supers` queue group",
    ),
    rule(
        "orb.validate supers",
        "validate and announce uploads, only in the `supers` queue group",
    ),
];

const EVERYTHING: &[Rule] = &[rule(">", "the operator may do everything")];

/// A role's permissions, as the servers get them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Permissions {
    pub publish_allow: Vec<Rule>,
    pub publish_deny: Vec<Rule>,
    pub subscribe_allow: Vec<Rule>,
}

/// The permissions of `role`.
pub fn permissions(role: Role) -> Permissions {
    match role {
        Role::Operator => Permissions {
            publish_allow: EVERYTHING.to_vec(),
            publish_deny: Vec::new(),
            subscribe_allow: EVERYTHING.to_vec(),
        },
        Role::Super => Permissions {
            publish_allow: [MEMBER_PUBLISH, SUPER_PUBLISH].concat(),
            publish_deny: MEMBER_DENY.to_vec(),
            subscribe_allow: [MEMBER_SUBSCRIBE, SUPER_SUBSCRIBE].concat(),
        },
        Role::Node => Permissions {
            publish_allow: MEMBER_PUBLISH.to_vec(),
            publish_deny: [MEMBER_DENY, NODE_DENY].concat(),
            subscribe_allow: MEMBER_SUBSCRIBE.to_vec(),
        },
    }
}

/// The `authorization` block for the servers: one nkey user per role
/// (`users`: role and its public key `U…`).
pub fn server_config(users: &[(Role, String)]) -> String {
    fn list(out: &mut String, name: &str, rules: &[Rule]) {
        if rules.is_empty() {
            return;
        }
        out.push_str(&format!("          {name}: [\n"));
        for r in rules {
            out.push_str(&format!("            # {}\n", r.why));
            out.push_str(&format!("            \"{}\",\n", r.subject));
        }
        out.push_str("          ]\n");
    }
    let mut out = String::from(
        "# The Orb network's NATS authorization, written by `orb network init`.\n\
         # Include it in every server's configuration (`include \"nats-auth.conf\"`)\n\
         # and reload the servers (`nats-server --signal reload`). Clients then\n\
         # connect with the role's seed: `--creds nats-<role>.nk`.\n\
         # The reasons for each line: ARCHITECTURE.md, \"Network\", \"Permissions\".\n\
         authorization {\n  users = [\n",
    );
    for (role, public) in users {
        let p = permissions(*role);
        out.push_str(&format!("    # role: {role}\n"));
        out.push_str(&format!(
            "    {{\n      nkey: \"{public}\"\n      permissions: {{\n"
        ));
        out.push_str("        publish: {\n");
        list(&mut out, "allow", &p.publish_allow);
        list(&mut out, "deny", &p.publish_deny);
        out.push_str("        }\n        subscribe: {\n");
        list(&mut out, "allow", &p.subscribe_allow);
        out.push_str("        }\n      }\n    }\n");
    }
    out.push_str("  ]\n}\n");
    out
}

/// A role's credentials: its nkey user seed, read from a file.
pub struct Credentials {
    /// The role the file says it is for (its first line); none for a bare seed.
    pub role: Option<Role>,
    seed: String,
    /// The user's public key (`U…`).
    pub public_key: String,
    pub path: PathBuf,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("role", &self.role)
            .field("public_key", &self.public_key)
            .field("path", &self.path)
            .finish()
    }
}

const HEADER: &str = "# Orb network NATS credentials (an nkey user seed; keep it secret), role:";

impl Credentials {
    /// Reads a seed file (`nats-<role>.nk`; a file holding just an nkey
    /// user seed works too). Refuses one readable by others.
    pub fn load(path: &Path) -> Result<Credentials, NetError> {
        let err = |detail: String| NetError::Credentials {
            path: path.display().to_string(),
            detail,
        };
        let text = std::fs::read_to_string(path).map_err(|e| {
            err(format!(
                "cannot read: {e} (`orb network init` writes nats-operator.nk, nats-super.nk and nats-node.nk into its --secrets-dir)"
            ))
        })?;
        check_private(path).map_err(err)?;
        let role = text
            .lines()
            .find_map(|l| l.strip_prefix(HEADER))
            .and_then(|r| Role::parse(r.trim()));
        let seed = text
            .lines()
            .map(str::trim)
            .find(|l| l.starts_with("SU"))
            .ok_or_else(|| err("holds no nkey user seed (a line starting with SU)".into()))?
            .to_string();
        let pair = nkeys::KeyPair::from_seed(&seed)
            .map_err(|e| err(format!("the seed does not parse: {e}")))?;
        Ok(Credentials {
            role,
            public_key: pair.public_key(),
            seed,
            path: path.to_path_buf(),
        })
    }

    /// Who these credentials are, for messages: `the credentials of role
    /// node (FILE)`.
    pub fn describe(&self) -> String {
        match self.role {
            Some(r) => format!("the credentials of role {r} ({})", self.path.display()),
            None => format!("the nkey in {}", self.path.display()),
        }
    }
}

/// What [`write_credentials`] did.
#[derive(Debug, Clone, PartialEq)]
pub struct AuthFiles {
    /// Each role's seed file.
    pub seeds: Vec<(Role, PathBuf)>,
    /// Seed files this call made (the others were there and kept).
    pub created: Vec<PathBuf>,
    /// The servers' `authorization` include.
    pub config: PathBuf,
}

impl AuthFiles {
    /// The seed file of `role`.
    pub fn seed(&self, role: Role) -> &Path {
        self.seeds
            .iter()
            .find(|(r, _)| *r == role)
            .map(|(_, p)| p.as_path())
            .unwrap_or_else(|| Path::new(""))
    }
}

/// Writes a seed per role into `dir` (mode 0600; a seed file already there
/// is kept, never overwritten) and `nats-auth.conf` from their public
/// keys (rewritten each time, so a newer Orb's permissions reach it).
pub fn write_credentials(dir: &Path) -> Result<AuthFiles, NetError> {
    let io = |path: &Path, e: std::io::Error| NetError::Credentials {
        path: path.display().to_string(),
        detail: format!("cannot write: {e}"),
    };
    std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
    let mut users = Vec::new();
    let mut files = AuthFiles {
        seeds: Vec::new(),
        created: Vec::new(),
        config: dir.join(AUTH_CONF),
    };
    for role in Role::ALL {
        let path = dir.join(role.file_name());
        if !path.exists() {
            let pair = nkeys::KeyPair::new_user();
            let seed = pair.seed().map_err(|e| NetError::Credentials {
                path: path.display().to_string(),
                detail: format!("cannot encode a new seed: {e}"),
            })?;
            let text = format!("{HEADER} {role}\n{seed}\n");
            match write_private(&path, text.as_bytes()) {
                Ok(()) => files.created.push(path.clone()),
                // Another init wrote it first: keep theirs.
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(io(&path, e)),
            }
        }
        let creds = Credentials::load(&path)?;
        if creds.role.is_some_and(|r| r != role) {
            return Err(NetError::Credentials {
                path: path.display().to_string(),
                detail: format!(
                    "says it is for role {}, not {role}: move it away and run init again",
                    creds.role.map_or("?", Role::as_str)
                ),
            });
        }
        users.push((role, creds.public_key));
        files.seeds.push((role, path));
    }
    let config = server_config(&users);
    let tmp = tmp_path(&files.config);
    std::fs::write(&tmp, config)
        .and_then(|()| std::fs::rename(&tmp, &files.config))
        .map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            io(&files.config, e)
        })?;
    Ok(files)
}

/// A publish or subscription the servers refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// `publish` or `subscription`.
    pub op: String,
    pub subject: String,
    /// The server's words.
    pub message: String,
}

impl Refusal {
    /// Reads a server's `Permissions Violation for Publish to "subj"` (or
    /// `… for Subscription to "subj" …`); none for other errors.
    pub fn parse(message: &str) -> Option<Refusal> {
        let lower = message.to_ascii_lowercase();
        let rest = lower.split("permissions violation for ").nth(1)?;
        let op = if rest.starts_with("publish") {
            "publish"
        } else if rest.starts_with("subscription") {
            "subscription"
        } else {
            return None;
        };
        // The subject keeps its case: take it from the original text.
        let start = message.find('"')? + 1;
        let len = message[start..].find('"')?;
        Some(Refusal {
            op: op.into(),
            subject: message[start..start + len].to_string(),
            message: message.to_string(),
        })
    }
}

/// The refusals a connection received (most recent last), and a way to
/// wait for one.
#[derive(Clone)]
pub struct Refusals(Arc<tokio::sync::watch::Sender<Vec<Refusal>>>);

impl Default for Refusals {
    fn default() -> Self {
        Refusals(Arc::new(tokio::sync::watch::channel(Vec::new()).0))
    }
}

impl Refusals {
    fn record(&self, r: Refusal) {
        self.0.send_modify(|v| v.push(r));
    }

    /// Every refusal so far.
    pub fn all(&self) -> Vec<Refusal> {
        self.0.borrow().clone()
    }

    /// Waits up to `within` for a refusal that `pred` accepts.
    pub async fn wait_for(
        &self,
        within: Duration,
        pred: impl Fn(&Refusal) -> bool,
    ) -> Option<Refusal> {
        let mut rx = self.0.subscribe();
        tokio::time::timeout(within, rx.wait_for(|v| v.iter().any(&pred)))
            .await
            .ok()?
            .ok()?
            .iter()
            .find(|r| pred(r))
            .cloned()
    }

    /// Waits for a refusal after the first `seen` ones (forever, if none comes).
    pub async fn after(&self, seen: usize) -> Refusal {
        let mut rx = self.0.subscribe();
        let found = match rx.wait_for(|v| v.len() > seen).await {
            Ok(v) => Some(v[seen].clone()),
            Err(_) => None,
        };
        match found {
            Some(r) => r,
            // The sender lives in `self`: it cannot close while we wait.
            None => std::future::pending().await,
        }
    }
}

/// A connection to the network's servers under a role.
#[derive(Clone)]
pub struct Connection {
    pub client: async_nats::Client,
    /// The role of the credentials it connected with; none without any
    /// (a server without authorization) or for a bare seed.
    pub role: Option<Role>,
    /// What the servers refused it.
    pub refusals: Refusals,
}

impl Connection {
    /// Runs `op`, unless the servers refuse this connection something
    /// first: then it ends at once with [`NetError::Refused`] (a refused
    /// request would otherwise wait for its timeout).
    pub async fn guard<F: std::future::Future>(&self, op: F) -> Result<F::Output, NetError> {
        let seen = self.refusals.all().len();
        tokio::select! {
            out = op => Ok(out),
            r = self.refusals.after(seen) => Err(refused(self.role, r)),
        }
    }

    /// The latest refusal as an error (to report instead of the timeout or
    /// failure it caused).
    pub fn refusal(&self) -> Option<NetError> {
        self.refusals.all().pop().map(|r| refused(self.role, r))
    }
}

/// The error for a refusal, with what to do.
pub fn refused(role: Option<Role>, r: Refusal) -> NetError {
    let s = r.subject.as_str();
    let hint = if s.starts_with("orb.control.") {
        "control requests (`orb network drain`) are the operator's: use the operator credentials (--creds nats-operator.nk)"
    } else if s.starts_with("orb.announce.deploy.")
        || s == "orb.validate"
        || s.starts_with("orb.seed.")
        || s.starts_with("$KV.orb_leases.")
        || s.starts_with("$KV.orb_accounts.")
        || s.starts_with("orb.fallback.")
    {
        "this is a super node's: start super nodes with the super credentials (--network-creds nats-super.nk)"
    } else if s.starts_with("$JS.API.STREAM.") || s.starts_with("$KV.orb_network.") {
        "creating or changing the network's buckets and streams is the operator's: run `orb network init` with --creds nats-operator.nk"
    } else {
        "these credentials' role may not do this (ARCHITECTURE.md, Network, Permissions); if this Orb is newer than the servers' nats-auth.conf, run `orb network init` again and reload the servers"
    };
    NetError::Refused {
        role: role.map_or_else(|| "unnamed".to_string(), |r| r.to_string()),
        op: r.op,
        subject: r.subject,
        hint: hint.to_string(),
    }
}

/// Connects to NATS at `urls` (any of them; the client learns the rest of
/// the cluster and reconnects on its own) with the nkey in `creds`, or
/// without credentials (a server without authorization). Refusals are
/// logged, naming the role, and kept in [`Connection::refusals`].
pub async fn connect_as(
    urls: &[String],
    name: &str,
    creds: Option<&Path>,
) -> Result<Connection, NetError> {
    let creds = creds.map(Credentials::load).transpose()?;
    let role = creds.as_ref().and_then(|c| c.role);
    let refusals = Refusals::default();
    let who = creds.as_ref().map_or_else(
        || "a client without credentials".to_string(),
        Credentials::describe,
    );
    let mut options = async_nats::ConnectOptions::new()
        .name(name)
        .connection_timeout(Duration::from_secs(5))
        .max_reconnects(None)
        .event_callback({
            let refusals = refusals.clone();
            let who = who.clone();
            move |event| {
                let refusals = refusals.clone();
                let who = who.clone();
                async move { on_event(event, role, &who, &refusals) }
            }
        });
    if let Some(c) = &creds {
        options = options.nkey(c.seed.clone());
    }
    let client = options.connect(urls).await.map_err(|source| {
        use async_nats::ConnectErrorKind as K;
        match source.kind() {
            K::AuthorizationViolation | K::Authentication => NetError::Unauthorized {
                urls: urls.join(","),
                who: who.clone(),
                hint: if creds.is_some() {
                    "these servers do not know these credentials: give the seed `orb network init` wrote for this network (nats-<role>.nk beside its nats-auth.conf) and check every server includes that nats-auth.conf (then reload them)".into()
                } else {
                    "these servers require credentials: pass --creds FILE (orb network …) or --network-creds FILE (orb serve; or ORB_NETWORK_CREDS, [network] creds), a nats-<role>.nk that `orb network init` wrote".into()
                },
            },
            _ => NetError::Connect {
                urls: urls.join(","),
                source,
            },
        }
    })?;
    Ok(Connection {
        client,
        role,
        refusals,
    })
}

fn on_event(event: async_nats::Event, role: Option<Role>, who: &str, refusals: &Refusals) {
    use async_nats::{Event, ServerError};
    match event {
        Event::ServerError(ServerError::Other(message)) => match Refusal::parse(&message) {
            Some(r) => {
                let e = refused(role, r.clone());
                tracing::error!(credentials = %who, op = %r.op, subject = %r.subject, "{e}");
                refusals.record(r);
            }
            None => tracing::warn!(credentials = %who, "NATS server error: {message}"),
        },
        Event::ServerError(ServerError::AuthorizationViolation) => tracing::error!(
            credentials = %who,
            "the NATS servers refused this connection's credentials (authorization violation): check that every server includes this network's nats-auth.conf"
        ),
        other => tracing::debug!(credentials = %who, "NATS: {other}"),
    }
}

/// Connects a node: as [`connect_as`], and checks the credentials fit the
/// node's part (a super node with the node's credentials could not hold
/// leases or mint: refused before it starts).
pub async fn connect_member(
    urls: &[String],
    name: &str,
    creds: Option<&Path>,
    super_node: bool,
) -> Result<async_nats::Client, NetError> {
    let conn = connect_as(urls, name, creds).await?;
    match (conn.role, super_node) {
        (Some(Role::Node), true) => Err(NetError::Credentials {
            path: creds.map(|p| p.display().to_string()).unwrap_or_default(),
            detail: "are the node's; a super node needs the super credentials (nats-super.nk): leases, accounts and seed requests are refused to a node".into(),
        }),
        (Some(Role::Operator), _) => {
            tracing::warn!(
                "this node connects with the operator's credentials (everything is allowed): give it nats-{}.nk",
                if super_node { "super" } else { "node" }
            );
            Ok(conn.client)
        }
        _ => Ok(conn.client),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_parse() {
        let r =
            Refusal::parse(r#"Permissions Violation for Publish to "$KV.orb_leases.x""#).unwrap();
        assert_eq!(
            (r.op.as_str(), r.subject.as_str()),
            ("publish", "$KV.orb_leases.x")
        );
        let r = Refusal::parse(
            r#"Permissions Violation for Subscription to "orb.fallback.*" using queue "x""#,
        )
        .unwrap();
        assert_eq!(
            (r.op.as_str(), r.subject.as_str()),
            ("subscription", "orb.fallback.*")
        );
        assert_eq!(Refusal::parse("Stale Connection"), None);
    }

    #[test]
    fn a_node_may_not_do_what_is_the_operators_or_a_super_nodes() {
        let node = permissions(Role::Node);
        let denied: Vec<&str> = node.publish_deny.iter().map(|r| r.subject).collect();
        for s in [
            "orb.control.>",
            "orb.seed.>",
            "$KV.orb_leases.>",
            "$KV.orb_accounts.>",
            "$KV.orb_network.>",
            "$JS.API.STREAM.DELETE.>",
            "$JS.API.STREAM.CREATE.>",
        ] {
            assert!(denied.contains(&s), "{s} is not denied to a node");
        }
        let sup = permissions(Role::Super);
        let allowed: Vec<&str> = sup.publish_allow.iter().map(|r| r.subject).collect();
        for s in ["$KV.orb_leases.>", "$KV.orb_accounts.>", "orb.seed.*"] {
            assert!(allowed.contains(&s), "{s} is not allowed to a super node");
        }
        // Nothing a super node is allowed is also denied to it.
        for r in &sup.publish_deny {
            assert!(!allowed.contains(&r.subject), "{}", r.subject);
        }
    }

    #[test]
    fn credentials_are_written_once_private_and_the_config_names_them() {
        let dir = tempfile::tempdir().unwrap();
        let first = write_credentials(dir.path()).unwrap();
        assert_eq!(first.created.len(), 3);
        let again = write_credentials(dir.path()).unwrap();
        assert!(again.created.is_empty(), "a second run keeps the seeds");
        let conf = std::fs::read_to_string(&first.config).unwrap();
        for role in Role::ALL {
            let c = Credentials::load(first.seed(role)).unwrap();
            assert_eq!(c.role, Some(role));
            assert!(conf.contains(&c.public_key), "{role} missing in {conf}");
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                let mode = std::fs::metadata(first.seed(role))
                    .unwrap()
                    .permissions()
                    .mode();
                assert_eq!(mode & 0o777, 0o600);
            }
        }
        assert!(conf.contains("\"orb.fallback.* supers\""), "{conf}");
    }
}
