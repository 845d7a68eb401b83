//! Outbound HTTP policy and the credentials service.
//!
//! - `PUT|GET /v1/outbound` `{"hosts": [patterns]}`: the hosts functions may
//!   reach when called with the account's private token (record
//!   `outbound/<account>`). A public token brings its own list (its grant's
//!   `outbound_hosts`); the account policy does not widen it.
//! - `PUT /v1/secrets/{name}` `{"value", "hosts", "header", "format"}`,
//!   `GET /v1/secrets`, `DELETE /v1/secrets/{name}` (private token only): a
//!   secret bound to hosts and a header. Its value is encrypted at rest with
//!   ChaCha20-Poly1305 (`ring`) under the node's `<data>/secrets.key` (mode
//!   0600; the record's key is the AEAD's associated data, so a value cannot
//!   be moved to another account or name), never returned, logged or put in
//!   an activation. The runtime injects it into matching outgoing requests
//!   after the guest handed them over, so no function ever sees it.

use crate::caller::{Claims, Request, op};
use crate::{ApiError, Node};
use anyhow::Context as _;
use orb_core::{ErrorCode, FunctionId, HostPattern, OrbError};
use orb_runtime::{InjectedHeader, OutboundPolicy, RequestGate};
use orb_store::RecordKind;
use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::path::Path;
use std::sync::Arc;

/// The node's key for secrets at rest.
pub(crate) struct SecretsKey {
    key: LessSafeKey,
    rng: SystemRandom,
}

impl SecretsKey {
    /// Reads `<data>/secrets.key` (64 hex digits) or creates it (mode 0600).
    pub(crate) fn load(data_dir: &Path) -> anyhow::Result<Self> {
        let path = data_dir.join("secrets.key");
        let rng = SystemRandom::new();
        let bytes = if path.exists() {
            let text = std::fs::read_to_string(&path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            hex::decode(text.trim())
                .ok()
                .filter(|b| b.len() == 32)
                .ok_or_else(|| {
                    anyhow::anyhow!("{}: not a key (64 hex digits expected)", path.display())
                })?
        } else {
            let mut b = vec![0u8; 32];
            rng.fill(&mut b)
                .map_err(|_| anyhow::anyhow!("no randomness for the secrets key"))?;
            crate::services::accounts::write_secret(&path, &hex::encode(&b))?;
            tracing::info!(path = %path.display(), "created the node's secrets key");
            b
        };
        let key = UnboundKey::new(&CHACHA20_POLY1305, &bytes)
            .map_err(|_| anyhow::anyhow!("{}: unusable key", path.display()))?;
        Ok(Self {
            key: LessSafeKey::new(key),
            rng,
        })
    }

    fn seal(&self, aad: &str, plain: &str) -> Result<(String, String), ApiError> {
        let mut nonce = [0u8; NONCE_LEN];
        self.rng
            .fill(&mut nonce)
            .map_err(|_| ApiError::new(ErrorCode::Internal, "no randomness for a nonce"))?;
        let mut buf = plain.as_bytes().to_vec();
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad.as_bytes()),
                &mut buf,
            )
            .map_err(|_| ApiError::new(ErrorCode::Internal, "could not encrypt the secret"))?;
        Ok((hex::encode(nonce), hex::encode(buf)))
    }

    fn open(&self, aad: &str, nonce: &str, sealed: &str) -> Option<String> {
        let nonce: [u8; NONCE_LEN] = hex::decode(nonce).ok()?.try_into().ok()?;
        let mut buf = hex::decode(sealed).ok()?;
        let plain = self
            .key
            .open_in_place(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad.as_bytes()),
                &mut buf,
            )
            .ok()?;
        String::from_utf8(plain.to_vec()).ok()
    }
}

/// An account's outbound policy record (and the body of `PUT /v1/outbound`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"hosts": ["api.example.com", "*.example.org", "127.0.0.1:8080"]}))]
pub(crate) struct Policy {
    /// Host patterns: `HOST` or `HOST:PORT`; `*.` matches the names below;
    /// no scheme or path.
    pub hosts: Vec<String>,
}

/// A stored secret: everything but the value in clear.
#[derive(Clone, Serialize, Deserialize)]
struct SecretRecord {
    name: String,
    hosts: Vec<String>,
    header: String,
    format: String,
    created_at: String,
    nonce: String,
    sealed: String,
}

/// Body of `PUT /v1/secrets/{name}`.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"value": "s3cr3t", "hosts": ["api.example.com"], "header": "authorization", "format": "Bearer {}"}))]
pub(crate) struct SecretBody {
    /// The secret; never returned, logged or shown to functions.
    value: String,
    /// The host patterns whose requests get the header.
    hosts: Vec<String>,
    /// The header to set.
    header: String,
    /// `{}` is replaced by the value (default `{}`).
    #[serde(default)]
    format: Option<String>,
}

const MAX_HOSTS: usize = 256;
const MAX_SECRET_BYTES: usize = 8 << 10;
const MAX_SECRETS: usize = 256;

fn invalid(msg: impl Into<String>) -> ApiError {
    ApiError::new(ErrorCode::InvalidRequest, msg)
}

fn check_hosts(hosts: &[String]) -> Result<Vec<HostPattern>, ApiError> {
    if hosts.len() > MAX_HOSTS {
        return Err(invalid(format!("at most {MAX_HOSTS} host patterns")));
    }
    orb_core::outbound::parse_host_patterns(hosts).map_err(|e| {
        ApiError(
            OrbError::new(ErrorCode::InvalidRequest, e.to_string())
                .with_details(json!({ "host": e.input })),
        )
    })
}

/// Secret names: 1–64 of `[A-Za-z0-9._-]`, starting with a letter or digit.
fn check_name(name: &str) -> Result<(), ApiError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.starts_with(|c: char| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if ok {
        Ok(())
    } else {
        Err(ApiError(
            OrbError::new(
                ErrorCode::InvalidName,
                format!(
                    "`{name}` is not a secret name: 1–64 of letters, digits, `.`, `_`, `-`, starting with a letter or digit"
                ),
            )
            .with_details(json!({ "name": name })),
        ))
    }
}

/// Headers a secret may not set: they frame the message or route it.
const FRAMING_HEADERS: &[&str] = &[
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "upgrade",
    "te",
    "trailer",
    "keep-alive",
    "proxy-connection",
    "http2-settings",
];

fn record_key(account: &str, name: &str) -> String {
    format!("{account}/{name}")
}

async fn load_policy(node: &Node, account: &str) -> Result<Policy, ApiError> {
    Ok(node
        .store
        .get_record(RecordKind::Outbound, account)
        .await?
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default())
}

async fn load_secrets(node: &Node, account: &str) -> Result<Vec<SecretRecord>, ApiError> {
    Ok(node
        .store
        .list_records(RecordKind::Secret, &format!("{account}/"))
        .await?
        .into_iter()
        .filter_map(|(_, b)| serde_json::from_slice(&b).ok())
        .collect())
}

/// Who made a call: its outbound requests are checked against this token.
pub(crate) struct OutboundCaller<'a> {
    pub claims: &'a Claims,
    pub function: &'a FunctionId,
    pub namespace: Option<&'a str>,
}

/// The caller's token, checked again for each outbound request: still
/// valid, and allowed by every attenuation block (`orb token attenuate
/// --host`).
fn token_gate(node: &Node, c: &OutboundCaller<'_>) -> RequestGate {
    let auth = node.auth.clone();
    let claims = c.claims.clone();
    let function = c.function.to_string();
    let namespace = c.namespace.map(str::to_string);
    RequestGate(Arc::new(move |host: &str, port: u16| {
        let req = Request {
            operation: op::INVOKE,
            function: Some(&function),
            namespace: namespace.as_deref(),
        };
        auth.recheck_outbound(&claims, &req, host, port)
            .map_err(|e| e.to_string())
    }))
}

/// What a call may reach: a public token's `outbound_hosts`, or (a private
/// token, or an anonymous request to a public route) the account's policy;
/// plus the account's secrets and the caller token's gate. Queued,
/// scheduled and rule calls pass their stored claims. A call with nowhere
/// to go gets no policy, and no gate is built for it.
pub(crate) async fn policy_for(
    node: &Node,
    account: &str,
    caller: Option<OutboundCaller<'_>>,
) -> Result<Option<Arc<OutboundPolicy>>, ApiError> {
    let grant = caller.as_ref().and_then(|c| c.claims.grant.as_ref());
    let listed = match grant {
        Some(g) => g.outbound_hosts.clone(),
        None => load_policy(node, account).await?.hosts,
    };
    if listed.is_empty() {
        return Ok(None);
    }
    // Patterns were checked when stored; skip any that no longer parse.
    let hosts: Vec<HostPattern> = listed
        .iter()
        .filter_map(|h| HostPattern::parse(h).ok())
        .collect();
    let mut inject = Vec::new();
    for s in load_secrets(node, account).await? {
        let Some(value) = node
            .secrets_key
            .open(&record_key(account, &s.name), &s.nonce, &s.sealed)
        else {
            tracing::warn!(account, secret = %s.name, "a secret cannot be decrypted with this node's secrets.key; not injected");
            continue;
        };
        inject.push(InjectedHeader {
            hosts: s
                .hosts
                .iter()
                .filter_map(|h| HostPattern::parse(h).ok())
                .collect(),
            header: s.header.clone(),
            value: s.format.replacen("{}", &value, 1),
            name: s.name,
        });
    }
    Ok(Some(Arc::new(OutboundPolicy {
        hosts,
        inject,
        gate: caller.map(|c| token_gate(node, &c)),
    })))
}

pub(crate) async fn put_outbound(
    node: &Node,
    claims: &Claims,
    body: Policy,
) -> Result<Value, ApiError> {
    check_hosts(&body.hosts)?;
    let hosts: Vec<String> = body
        .hosts
        .iter()
        .map(|h| h.trim().to_ascii_lowercase())
        .collect();
    let policy = Policy { hosts };
    node.store
        .put_records(vec![(
            RecordKind::Outbound,
            claims.account.clone(),
            Some(serde_json::to_vec(&policy).expect("serialisable")),
        )])
        .await?;
    Ok(json!({ "hosts": policy.hosts }))
}

pub(crate) async fn get_outbound(node: &Node, claims: &Claims) -> Result<Value, ApiError> {
    Ok(json!({ "hosts": load_policy(node, &claims.account).await?.hosts }))
}

fn describe(s: &SecretRecord) -> Value {
    json!({
        "name": s.name,
        "hosts": s.hosts,
        "header": s.header,
        "format": s.format,
        "created_at": s.created_at,
    })
}

pub(crate) async fn put_secret(
    node: &Node,
    claims: &Claims,
    name: &str,
    body: SecretBody,
) -> Result<(bool, Value), ApiError> {
    check_name(name)?;
    if body.value.is_empty() || body.value.len() > MAX_SECRET_BYTES {
        return Err(invalid(format!(
            "`value` must be 1–{MAX_SECRET_BYTES} bytes"
        )));
    }
    if body.hosts.is_empty() {
        return Err(invalid(
            "`hosts` must name at least one host the secret is sent to",
        ));
    }
    check_hosts(&body.hosts)?;
    let header = body.header.trim().to_ascii_lowercase();
    if http::HeaderName::from_bytes(header.as_bytes()).is_err() {
        return Err(invalid(format!(
            "`header`: `{header}` is not a header name"
        )));
    }
    if FRAMING_HEADERS.contains(&header.as_str()) {
        return Err(invalid(format!(
            "`header`: a secret cannot set `{header}` (it frames or routes the request)"
        )));
    }
    let format = body.format.unwrap_or_else(|| "{}".to_string());
    if format.matches("{}").count() != 1 {
        return Err(invalid(
            "`format` must hold `{}` exactly once, where the value goes (like \"Bearer {}\")",
        ));
    }
    // The formatted value must be a header value; say so without echoing it.
    if http::HeaderValue::from_str(&format.replacen("{}", &body.value, 1)).is_err() {
        return Err(invalid(
            "the formatted secret is not a valid header value (visible ASCII, no line breaks)",
        ));
    }
    let key = record_key(&claims.account, name);
    let existing = node.store.get_record(RecordKind::Secret, &key).await?;
    if existing.is_none() && load_secrets(node, &claims.account).await?.len() >= MAX_SECRETS {
        return Err(invalid(format!(
            "an account holds at most {MAX_SECRETS} secrets; delete one first"
        )));
    }
    let (nonce, sealed) = node.secrets_key.seal(&key, &body.value)?;
    let record = SecretRecord {
        name: name.to_string(),
        hosts: body
            .hosts
            .iter()
            .map(|h| h.trim().to_ascii_lowercase())
            .collect(),
        header,
        format,
        created_at: crate::clock::now_rfc3339(),
        nonce,
        sealed,
    };
    node.store
        .put_records(vec![(
            RecordKind::Secret,
            key,
            Some(serde_json::to_vec(&record).expect("serialisable")),
        )])
        .await?;
    tracing::info!(account = %claims.account, secret = %name, "secret stored");
    Ok((existing.is_none(), describe(&record)))
}

pub(crate) async fn list_secrets(node: &Node, claims: &Claims) -> Result<Value, ApiError> {
    let list: Vec<Value> = load_secrets(node, &claims.account)
        .await?
        .iter()
        .map(describe)
        .collect();
    Ok(json!({ "secrets": list }))
}

pub(crate) async fn delete_secret(
    node: &Node,
    claims: &Claims,
    name: &str,
) -> Result<(), ApiError> {
    check_name(name)?;
    let key = record_key(&claims.account, name);
    if node
        .store
        .get_record(RecordKind::Secret, &key)
        .await?
        .is_none()
    {
        return Err(ApiError(
            OrbError::new(
                ErrorCode::SecretNotFound,
                format!("no secret `{name}` in this account"),
            )
            .with_details(json!({ "name": name })),
        ));
    }
    node.store
        .put_records(vec![(RecordKind::Secret, key, None)])
        .await?;
    tracing::info!(account = %claims.account, secret = %name, "secret deleted");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_round_trip_and_are_bound_to_their_record() {
        let dir = tempfile::tempdir().unwrap();
        let k = SecretsKey::load(dir.path()).unwrap();
        let (nonce, sealed) = k.seal("acc/a", "s3cr3t").unwrap();
        assert!(!sealed.contains(&hex::encode("s3cr3t")));
        assert_eq!(k.open("acc/a", &nonce, &sealed).as_deref(), Some("s3cr3t"));
        assert_eq!(k.open("acc/b", &nonce, &sealed), None, "bound to its key");
        // Reloaded from disk: the same key, mode 0600.
        let k2 = SecretsKey::load(dir.path()).unwrap();
        assert_eq!(k2.open("acc/a", &nonce, &sealed).as_deref(), Some("s3cr3t"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(dir.path().join("secrets.key"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn names() {
        assert!(check_name("github-token").is_ok());
        assert!(check_name("A.b_c").is_ok());
        assert!(check_name("").is_err());
        assert!(check_name("-x").is_err());
        assert!(check_name("a/b").is_err());
        assert!(check_name(&"x".repeat(65)).is_err());
    }
}
