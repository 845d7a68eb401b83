//! Accounts, tokens and whitelists: the root key, the admin bootstrap,
//! minting, revoking and rotating tokens, offline recovery. The caller is
//! verified by the handler ([`crate::caller`]) before these run.

use crate::caller::{Claims, check_namespace_name, denied};
use crate::clock::now_rfc3339;
use crate::services::net;
use crate::{ApiError, Node};
use anyhow::Context as _;
use orb_auth::{Access, Authority, Grant, Minted, Rate, ScheduleLimits};
use orb_core::{Account, ErrorCode, FunctionId};
use serde::Deserialize;
use serde_json::json;
use sha2::{Digest, Sha256};
use std::path::Path;
use std::time::Duration;

/// Reads `<data>/root.key` or creates it (mode 0600).
pub fn load_root_key(data_dir: &Path) -> anyhow::Result<Authority> {
    let path = data_dir.join("root.key");
    if path.exists() {
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        return Authority::from_private_key(&text)
            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()));
    }
    let auth = Authority::generate();
    write_secret(&path, &auth.private_key_text().expect("a generated key"))?;
    tracing::info!(path = %path.display(), "created the node's root key");
    Ok(auth)
}

pub(crate) fn write_secret(path: &Path, text: &str) -> anyhow::Result<()> {
    write_secret_file(path, text, true)
}

/// Writes `text` and a newline to `path`, mode 0600, synced; an existing
/// file is replaced only when `replace`.
pub fn write_secret_file(path: &Path, text: &str, replace: bool) -> anyhow::Result<()> {
    use std::io::Write as _;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true);
    if replace {
        opts.create(true).truncate(true);
    } else {
        opts.create_new(true);
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        opts.mode(0o600);
    }
    let mut f = opts
        .open(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    f.write_all(text.as_bytes())?;
    f.write_all(b"\n")?;
    f.sync_all()?;
    Ok(())
}

fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.trim().as_bytes()))
}

pub async fn bootstrap(node: &Node) -> anyhow::Result<()> {
    let revoked = node.store.list_revocations().await?;
    node.auth.revoke(revoked);
    let accounts = node.store.list_accounts().await?;
    if net::is_networked(node) {
        // The network's admin account was created by `orb network init`
        // and mirrored into this store before this runs.
        let admin = accounts
            .iter()
            .find(|a| a.admin)
            .context("the network has no admin account: run `orb network init --network …`")?;
        let _ = node.admin.set(admin.id.clone());
        return Ok(());
    }
    let admin = match accounts.iter().find(|a| a.admin) {
        Some(a) => a.id.clone(),
        None => {
            let (account, minted) = create_account(node, "admin", true)
                .await
                .map_err(|e| anyhow::anyhow!("{}", e.0))?;
            let path = node.config.data_dir.join("admin.token");
            write_secret(&path, &minted.token)?;
            tracing::info!(path = %path.display(), account = %account.id, "created the admin account; its private token is in this file");
            account.id
        }
    };
    let _ = node.admin.set(admin);
    Ok(())
}

/// A new account and its private token, minted with `auth` (the node's or,
/// for `orb network init`, the network's root key). Nothing is stored.
pub fn new_account(
    auth: &Authority,
    name: &str,
    admin: bool,
) -> Result<(Account, Minted), ApiError> {
    let id = format!("acc_{}", uuid::Uuid::now_v7().simple());
    let minted = auth.mint_private(&id).map_err(|e| ApiError(e.into()))?;
    let account = Account {
        id,
        name: name.to_string(),
        admin,
        token_hash: token_hash(&minted.token),
        token_lineage: minted.revocation_id.clone(),
        created_at: now_rfc3339(),
    };
    Ok((account, minted))
}

async fn create_account(
    node: &Node,
    name: &str,
    admin: bool,
) -> Result<(Account, Minted), ApiError> {
    let (account, minted) = new_account(&node.auth, name, admin)?;
    net::publish_account(node, &account).await?;
    node.store.create_account(&account).await?;
    Ok((account, minted))
}

/// Stores an account record that came from the network (created, or its
/// private token rotated, on a super node).
#[cfg_attr(not(feature = "network"), allow(dead_code))]
pub(crate) async fn mirror_account(node: &Node, account: Account) -> Result<(), ApiError> {
    if account.admin {
        let _ = node.admin.set(account.id.clone());
    }
    node.store.create_account(&account).await?;
    Ok(())
}

// ---- what the routes do ------------------------------------------------------

#[derive(Deserialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewAccount {
    /// A name for people.
    #[serde(default)]
    pub name: String,
    /// May create accounts (needs the admin's private token).
    #[serde(default)]
    pub admin: bool,
}

/// Whether creating this account needs the admin's private token (always,
/// unless self-registration is on and it is not an admin account).
pub fn needs_admin(node: &Node, body: &NewAccount) -> bool {
    !node.config.open_registration || body.admin
}

/// Refuses a caller that is not the admin account.
pub async fn require_admin(node: &Node, claims: &Claims) -> Result<(), ApiError> {
    let is_admin = node
        .store
        .get_account(&claims.account)
        .await?
        .is_some_and(|a| a.admin);
    if !is_admin {
        return Err(denied(
            "only the admin account can create accounts (self-registration is off)",
        ));
    }
    Ok(())
}

/// `POST /v1/accounts`, once the caller passed [`needs_admin`]'s check.
pub async fn post_account(node: &Node, body: NewAccount) -> Result<serde_json::Value, ApiError> {
    let (account, minted) = create_account(node, &body.name, body.admin).await?;
    Ok(json!({
        "account": account.id,
        "name": account.name,
        "admin": account.admin,
        "token": minted.token,
        "revocation_id": minted.revocation_id,
    }))
}

/// Body of `POST /v1/tokens`: a [`Grant`] plus `expires` (`30d`).
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"namespaces": {"home": "rw"}, "functions": ["sha256:2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae"], "rate": "100/60s", "expires": "30d"}))]
pub struct MintRequest {
    /// Namespaces the token may use: `r`, `w` or `rw` each.
    #[serde(default)]
    pub namespaces: std::collections::BTreeMap<String, String>,
    /// May upload code.
    #[serde(default)]
    pub upload: bool,
    /// The functions (by hash) it may call; every function of the
    /// account when absent.
    #[serde(default)]
    pub functions: Option<Vec<String>>,
    /// Calls per period: `"5/60s"` or `{"count": 5, "per": "60s"}`.
    #[serde(default)]
    pub rate: Option<serde_json::Value>,
    /// Schedules it may create: `"1@30s"` or `{"max": 1, "min_interval": "30s"}`.
    #[serde(default)]
    pub schedules: Option<serde_json::Value>,
    /// Hosts its calls may reach over HTTP (patterns as in `PUT /v1/outbound`).
    #[serde(default)]
    pub outbound_hosts: Vec<String>,
    /// Triggers it may fire.
    #[serde(default)]
    pub triggers: Vec<String>,
    /// A lifetime like `30d`, `12h`.
    #[serde(default)]
    pub expires: Option<String>,
}

fn bad(msg: impl Into<String>) -> ApiError {
    ApiError::new(ErrorCode::InvalidRequest, msg)
}

fn parse_rate(v: &serde_json::Value) -> Result<Rate, ApiError> {
    match v {
        serde_json::Value::String(s) => Rate::parse(s).map_err(bad),
        other => serde_json::from_value::<Rate>(other.clone())
            .map_err(|e| {
                bad(format!(
                    "`rate` must be like {{\"count\":5,\"per\":\"60s\"}} or \"5/60s\": {e}"
                ))
            })
            .and_then(|r| {
                if r.count == 0 || r.per.is_zero() {
                    Err(bad(
                        "`rate` must allow at least one call per non-zero period",
                    ))
                } else {
                    Ok(r)
                }
            }),
    }
}

fn parse_schedules(v: &serde_json::Value) -> Result<ScheduleLimits, ApiError> {
    let limits = match v {
        serde_json::Value::String(s) => ScheduleLimits::parse(s).map_err(bad),
        other => serde_json::from_value::<ScheduleLimits>(other.clone()).map_err(|e| {
            bad(format!(
                "`schedules` must be like {{\"max\":1,\"min_interval\":\"30s\"}} or \"1@30s\": {e}"
            ))
        }),
    }?;
    if limits.max == 0 {
        return Err(bad(
            "`schedules` must allow at least one schedule; leave `schedules` out for a token that may create none",
        ));
    }
    Ok(limits)
}

pub async fn post_token(
    node: &Node,
    claims: &Claims,
    body: MintRequest,
) -> Result<Minted, ApiError> {
    let mut namespaces = std::collections::BTreeMap::new();
    for (ns, mode) in body.namespaces {
        check_namespace_name(&ns)?;
        let access = Access::parse(&mode).ok_or_else(|| {
            bad(format!(
                "namespace `{ns}`: access must be \"r\", \"w\" or \"rw\", got \"{mode}\""
            ))
        })?;
        namespaces.insert(ns, access);
    }
    if let Some(fs) = &body.functions {
        for f in fs {
            f.parse::<FunctionId>()
                .map_err(|e| ApiError::new(ErrorCode::InvalidFunctionId, e.to_string()))?;
        }
    }
    let grant = Grant {
        namespaces,
        upload: body.upload,
        functions: body.functions.map(|fs| {
            fs.iter()
                .map(|f| f.parse::<FunctionId>().expect("checked").to_string())
                .collect()
        }),
        rate: body.rate.as_ref().map(parse_rate).transpose()?,
        schedules: body.schedules.as_ref().map(parse_schedules).transpose()?,
        outbound_hosts: {
            orb_core::outbound::parse_host_patterns(&body.outbound_hosts)
                .map_err(|e| bad(format!("`outbound_hosts`: {e}")))?;
            body.outbound_hosts
        },
        triggers: body.triggers,
    };
    let expires: Option<Duration> = body
        .expires
        .as_deref()
        .map(|e| {
            humantime::parse_duration(e)
                .map_err(|err| bad(format!("`expires` must be a duration like 30d: {err}")))
        })
        .transpose()?;
    node.auth
        .mint_public(claims, &grant, expires)
        .map_err(|e| ApiError(e.into()))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RevokeRequest {
    /// The token to revoke (it and everything derived from it).
    pub token: String,
}

/// Revokes a token of the caller's account and everything derived from it
/// (attenuated copies, and public tokens minted by a revoked private token).
pub async fn post_revoke(
    node: &Node,
    claims: &Claims,
    body: RevokeRequest,
) -> Result<serde_json::Value, ApiError> {
    // The token to revoke must carry a valid signature and belong to the
    // same account; expired, narrowed or already revoked tokens qualify.
    let target = node
        .auth
        .claims_of(&body.token)
        .map_err(|e| ApiError(e.into()))?;
    if target.account != claims.account {
        return Err(denied("that token belongs to another account"));
    }
    let last = target
        .revocation_ids
        .last()
        .cloned()
        .expect("at least one block");
    revoke_ids(node, vec![last]).await
}

/// `POST /v1/tokens/rotate`: a new private token for the caller's account,
/// and the old one's lineage revoked, in one durable transaction. Everything
/// derived from the old token goes with it (its attenuated copies, the
/// public tokens it minted); the admin's `<data-dir>/admin.token` is
/// rewritten.
pub async fn post_rotate(node: &Node, claims: &Claims) -> Result<serde_json::Value, ApiError> {
    let mut account = node
        .store
        .get_account(&claims.account)
        .await?
        .ok_or_else(|| {
            ApiError::new(
                ErrorCode::TokenInvalid,
                "this token's account no longer exists",
            )
        })?;
    let minted = node
        .auth
        .mint_private(&account.id)
        .map_err(|e| ApiError(e.into()))?;
    let mut ids = vec![claims.lineage.clone()];
    if account.token_lineage != claims.lineage {
        ids.push(account.token_lineage.clone());
    }
    account.token_hash = token_hash(&minted.token);
    account.token_lineage = minted.revocation_id.clone();
    // The network first: a rotation the network did not take is refused
    // whole (503), never applied on one node only.
    net::publish_revocations(node, &ids).await?;
    net::publish_account(node, &account).await?;
    node.store.replace_account_token(&account, &ids).await?;
    node.auth.revoke(ids.clone());
    if account.admin && !net::is_networked(node) {
        let path = node.config.data_dir.join("admin.token");
        write_secret(&path, &minted.token)
            .map_err(|e| ApiError::new(ErrorCode::Internal, e.to_string()))?;
    }
    tracing::warn!(account = %account.id, revoked = ?ids, "private token rotated");
    Ok(json!({
        "account": account.id,
        "token": minted.token,
        "revocation_id": minted.revocation_id,
        "revoked": ids,
    }))
}

/// `orb admin recover`: offline (the node stopped), a new private token for
/// `account` (the admin's when `None`) from the data directory's root key.
/// Nothing is revoked (rotate afterwards if the old token leaked); the
/// recovery is appended to `<data-dir>/recover.log` and logged. The admin's
/// new token is also written to `<data-dir>/admin.token`.
pub async fn recover(data_dir: &Path, account: Option<&str>) -> anyhow::Result<(String, String)> {
    let key = data_dir.join("root.key");
    anyhow::ensure!(
        key.exists(),
        "{} has no root.key: is it an Orb data directory?",
        data_dir.display()
    );
    let auth = load_root_key(data_dir)?;
    let store = orb_store::RedbStore::open(data_dir, orb_store::StoreConfig::default())
        .with_context(|| {
            format!(
                "cannot open the store in {} (stop the node first: recovery works offline)",
                data_dir.display()
            )
        })?;
    use orb_store::Store as _;
    let accounts = store.list_accounts().await?;
    let mut target = match account {
        Some(id) => accounts
            .into_iter()
            .find(|a| a.id == id || a.name == id)
            .with_context(|| format!("no account `{id}` in {}", data_dir.display()))?,
        None => accounts
            .into_iter()
            .find(|a| a.admin)
            .context("this data directory has no admin account")?,
    };
    let minted = auth
        .mint_private(&target.id)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    target.token_hash = token_hash(&minted.token);
    target.token_lineage = minted.revocation_id.clone();
    store.replace_account_token(&target, &[]).await?;
    store.flush().await?;
    if target.admin {
        write_secret(&data_dir.join("admin.token"), &minted.token)?;
    }
    let line = format!(
        "{} recovered account {} ({}): new private token lineage {}\n",
        now_rfc3339(),
        target.id,
        target.name,
        minted.revocation_id
    );
    use std::io::Write as _;
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(data_dir.join("recover.log"))
        .and_then(|mut f| f.write_all(line.as_bytes()))
        .with_context(|| {
            format!(
                "cannot append to {}",
                data_dir.join("recover.log").display()
            )
        })?;
    tracing::warn!(account = %target.id, lineage = %minted.revocation_id, "account access recovered offline");
    Ok((target.id, minted.token))
}

async fn revoke_ids(node: &Node, ids: Vec<String>) -> Result<serde_json::Value, ApiError> {
    net::publish_revocations(node, &ids).await?;
    node.store.add_revocations(&ids).await?;
    node.auth.revoke(ids.clone());
    Ok(json!({ "revoked": ids }))
}

/// `PUT /v1/namespaces/{ns}/whitelist` (`ns` checked, the caller's private
/// token authorized by the handler).
pub async fn put_whitelist(
    node: &Node,
    claims: &Claims,
    ns: &str,
    body: serde_json::Value,
) -> Result<serde_json::Value, ApiError> {
    let list = match &body {
        serde_json::Value::Array(a) => a.clone(),
        serde_json::Value::Object(o) => o
            .get("functions")
            .and_then(|f| f.as_array())
            .cloned()
            .ok_or_else(|| bad("body must be {\"functions\": [\"sha256:…\"]}"))?,
        _ => return Err(bad("body must be {\"functions\": [\"sha256:…\"]}")),
    };
    let mut ids = Vec::new();
    for item in list {
        let s = item
            .as_str()
            .ok_or_else(|| bad("whitelist entries must be function hashes (strings)"))?;
        let id = s.parse::<FunctionId>().map_err(|e| {
            ApiError::new(
                ErrorCode::InvalidFunctionId,
                format!("{e}; whitelists hold hashes, not aliases"),
            )
        })?;
        if !ids.contains(&id) {
            ids.push(id);
        }
    }
    net::publish_whitelist(node, &claims.account, ns, &ids).await?;
    node.store.set_whitelist(&claims.account, ns, &ids).await?;
    Ok(json!({ "namespace": ns, "functions": ids }))
}

/// `GET /v1/namespaces/{ns}/whitelist` (the caller authorized for `ns`).
pub async fn get_whitelist(
    node: &Node,
    claims: &Claims,
    ns: &str,
) -> Result<serde_json::Value, ApiError> {
    let ids = node
        .store
        .get_whitelist(&claims.account, ns)
        .await?
        .unwrap_or_default();
    Ok(json!({ "namespace": ns, "functions": ids }))
}
