use crate::grant::{Grant, Narrowing};
use biscuit_auth::builder::{Term, date, fact, string};
use biscuit_auth::datalog::RunLimits;
use biscuit_auth::{Biscuit, KeyPair, PrivateKey, PublicKey, UnverifiedBiscuit};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use orb_core::{ErrorCode, OrbError};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::{HashMap, HashSet};
use std::num::NonZeroU32;
use std::str::FromStr;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Largest token accepted, in bytes (decoded).
pub const MAX_TOKEN_BYTES: usize = 16 * 1024;
/// Most blocks a token may carry (authority + attenuations).
pub const MAX_BLOCKS: usize = 16;
/// Verified tokens kept in the cache.
const CACHE_CAPACITY: usize = 10_000;
/// How long an attenuated token's Datalog decision is reused.
const DECISION_TTL: Duration = Duration::from_secs(5);

/// The Datalog run limits of a token's checks. Facts and iterations bound
/// the work; the time limit is only a backstop, and generous: it is wall
/// time, so a thread preempted on a loaded machine would otherwise refuse a
/// valid token (2 ms did, under a parallel build).
fn limits() -> RunLimits {
    RunLimits {
        max_facts: 1000,
        max_iterations: 100,
        max_time: Duration::from_millis(50),
    }
}

/// A private token is an account's root credential; public tokens are
/// minted under it with a [`Grant`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Private,
    Public,
}

/// Why a token was refused. Maps to 401/403/429 codes.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AuthError {
    #[error("no token: send `Authorization: Bearer <token>`")]
    Missing,
    #[error("the token is not valid: {0}")]
    Invalid(String),
    #[error("the token expired at {0}")]
    Expired(String),
    #[error("the token was revoked")]
    Revoked,
    #[error("{0}")]
    Denied(String),
    #[error("rate limit of this token reached; retry in {retry_after_secs} s")]
    RateLimited { retry_after_secs: u64 },
    /// This authority only verifies (a network node without the root key).
    #[error(
        "this node does not hold the network's root key, so it cannot mint tokens or create accounts; send the request to a super node"
    )]
    NoRootKey,
}

impl From<AuthError> for OrbError {
    fn from(e: AuthError) -> OrbError {
        let code = match &e {
            AuthError::Missing => ErrorCode::TokenMissing,
            AuthError::Invalid(_) => ErrorCode::TokenInvalid,
            AuthError::Expired(_) => ErrorCode::TokenExpired,
            AuthError::Revoked => ErrorCode::TokenRevoked,
            AuthError::Denied(_) => ErrorCode::PermissionDenied,
            AuthError::RateLimited { .. } => ErrorCode::RateLimited,
            AuthError::NoRootKey => ErrorCode::SuperNodeRequired,
        };
        let err = OrbError::new(code, e.to_string());
        match e {
            AuthError::RateLimited { retry_after_secs } => {
                err.with_details(serde_json::json!({ "retry_after": retry_after_secs }))
            }
            _ => err,
        }
    }
}

/// What a request wants to do, as Datalog facts for attenuation checks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Request<'a> {
    pub operation: &'a str,
    pub function: Option<&'a str>,
    pub namespace: Option<&'a str>,
}

impl<'a> Request<'a> {
    /// A request for `operation` alone (no function or namespace).
    pub const fn op(operation: &'a str) -> Self {
        Self {
            operation,
            function: None,
            namespace: None,
        }
    }
}

/// A verified token's meaning.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Claims {
    pub account: String,
    pub kind: Kind,
    /// Permissions of a public token (`None` for private tokens: everything
    /// in the account).
    pub grant: Option<Grant>,
    /// Revocation id of the first block, hex: the rate-limit key.
    pub lineage: String,
    /// Revocation ids of every block, hex.
    pub revocation_ids: Vec<String>,
    /// Lineage of the private token that minted this public token.
    pub minted_by: Option<String>,
    /// Unix seconds.
    pub expires_at: Option<u64>,
    pub blocks: usize,
    /// The token itself when it carries attenuation blocks: kept with the
    /// claims so everything the call does later — a guest's bucket opens, a
    /// queued or scheduled run — is checked against every appended block
    /// ([`Authority::recheck`]), not only the HTTP request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attenuated: Option<String>,
}

/// A freshly minted token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Minted {
    pub token: String,
    pub revocation_id: String,
    pub expires_at: Option<String>,
}

/// An offline look at a token (no signature check).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Inspection {
    pub blocks: Vec<String>,
    pub revocation_ids: Vec<String>,
    pub lineage: String,
}

/// (operation, function, namespace) of a request whose decision is cached.
type RequestKey = (String, Option<String>, Option<String>);

struct Verified {
    claims: Claims,
    biscuit: Option<Biscuit>,
    /// Whether an attenuation block mentions `time` (then a cached decision
    /// must be re-proved at the end of its reuse window).
    time_checks: bool,
    /// request key → reuse the allow decision until then.
    decisions: Mutex<HashMap<RequestKey, SystemTime>>,
}

/// The node's token authority: root key, cache, revocations, rate limiters.
pub struct Authority {
    /// `None`: this authority verifies only (a network node that is not a
    /// super node holds just the network's public key).
    root: Option<KeyPair>,
    public: PublicKey,
    cache: RwLock<HashMap<[u8; 32], Arc<Verified>>>,
    revoked: RwLock<HashSet<String>>,
    limiters: Mutex<HashMap<String, (crate::Rate, Arc<DefaultDirectRateLimiter>)>>,
}

fn unix(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

fn rfc3339(secs: u64) -> String {
    humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_secs(secs)).to_string()
}

fn invalid(e: impl std::fmt::Display) -> AuthError {
    AuthError::Invalid(e.to_string())
}

fn decode_token(token: &str) -> Result<Vec<u8>, AuthError> {
    let token = token.trim();
    if token.len() > MAX_TOKEN_BYTES * 4 / 3 + 4 {
        return Err(invalid(format!("longer than {MAX_TOKEN_BYTES} bytes")));
    }
    use base64::Engine as _;
    let bytes = base64::engine::general_purpose::URL_SAFE
        .decode(token)
        .or_else(|_| base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(token))
        .map_err(|_| invalid("not base64"))?;
    if bytes.len() > MAX_TOKEN_BYTES {
        return Err(invalid(format!("longer than {MAX_TOKEN_BYTES} bytes")));
    }
    Ok(bytes)
}

fn encode_token(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE.encode(bytes)
}

impl Authority {
    /// An authority with this root private key (`ed25519-private/<hex>`).
    pub fn from_private_key(text: &str) -> Result<Self, String> {
        let key = PrivateKey::from_str(text.trim()).map_err(|e| format!("bad root key: {e}"))?;
        Ok(Self::new(KeyPair::from(&key)))
    }

    /// An authority that verifies tokens under this root public key
    /// (`ed25519/<hex>`) and mints none ([`AuthError::NoRootKey`]).
    pub fn from_public_key(text: &str) -> Result<Self, String> {
        let public =
            PublicKey::from_str(text.trim()).map_err(|e| format!("bad root public key: {e}"))?;
        Ok(Self::with(None, public))
    }

    /// A new random root key.
    pub fn generate() -> Self {
        Self::new(KeyPair::new())
    }

    fn new(root: KeyPair) -> Self {
        let public = root.public();
        Self::with(Some(root), public)
    }

    fn with(root: Option<KeyPair>, public: PublicKey) -> Self {
        Self {
            root,
            public,
            cache: RwLock::default(),
            revoked: RwLock::default(),
            limiters: Mutex::default(),
        }
    }

    /// The root private key, for persisting (`ed25519-private/<hex>`);
    /// `None` for a verify-only authority.
    pub fn private_key_text(&self) -> Option<String> {
        self.root.as_ref().map(|r| r.private().to_prefixed_string())
    }

    /// Whether this authority can mint tokens.
    pub fn can_mint(&self) -> bool {
        self.root.is_some()
    }

    /// The root public key (`ed25519/<hex>`): enough to verify any token.
    pub fn public_key_text(&self) -> String {
        self.public.to_string()
    }

    /// Empties the cache of verified tokens (revocation still applies).
    pub fn forget_cached(&self) {
        self.cache.write().expect("cache lock").clear();
    }

    /// Marks revocation ids (hex) as revoked. Effective at once.
    pub fn revoke<I: IntoIterator<Item = String>>(&self, ids: I) {
        let mut set = self.revoked.write().expect("revoked lock");
        set.extend(ids);
    }

    /// Whether claims verified earlier (kept with a queued call or a
    /// schedule) still hold now: not revoked, not expired.
    pub fn still_valid(&self, claims: &Claims) -> Result<(), AuthError> {
        if self.is_revoked(claims) {
            return Err(AuthError::Revoked);
        }
        if let Some(exp) = claims.expires_at
            && unix(SystemTime::now()) >= exp
        {
            return Err(AuthError::Expired(rfc3339(exp)));
        }
        Ok(())
    }

    fn is_revoked(&self, claims: &Claims) -> bool {
        let set = self.revoked.read().expect("revoked lock");
        claims.revocation_ids.iter().any(|id| set.contains(id))
            || claims.minted_by.as_ref().is_some_and(|m| set.contains(m))
    }

    fn mint(
        &self,
        account: &str,
        kind: Kind,
        grant: Option<&Grant>,
        minted_by: Option<&str>,
        expires: Option<SystemTime>,
    ) -> Result<Minted, AuthError> {
        let mut params: HashMap<String, Term> = HashMap::new();
        params.insert("account".into(), string(account));
        params.insert(
            "kind".into(),
            string(if kind == Kind::Private {
                "private"
            } else {
                "public"
            }),
        );
        let mut code = String::from("account({account});\nkind({kind});\n");
        if let Some(g) = grant {
            params.insert(
                "grant".into(),
                string(&serde_json::to_string(g).map_err(invalid)?),
            );
            code.push_str("grant({grant});\n");
        }
        if let Some(m) = minted_by {
            params.insert("minted_by".into(), string(m));
            code.push_str("minted_by({minted_by});\n");
        }
        if let Some(exp) = expires {
            params.insert("exp".into(), date(&exp));
            code.push_str("check if time($t), $t < {exp};\n");
        }
        let root = self.root.as_ref().ok_or(AuthError::NoRootKey)?;
        let biscuit = Biscuit::builder()
            .code_with_params(code, params, HashMap::new())
            .and_then(|b| b.build(root))
            .map_err(invalid)?;
        let bytes = biscuit.to_vec().map_err(invalid)?;
        let ids = biscuit.revocation_identifiers();
        Ok(Minted {
            token: encode_token(&bytes),
            revocation_id: hex::encode(&ids[0]),
            expires_at: expires.map(|e| rfc3339(unix(e))),
        })
    }

    /// A new account's private token.
    pub fn mint_private(&self, account: &str) -> Result<Minted, AuthError> {
        self.mint(account, Kind::Private, None, None, None)
    }

    /// A public token under `parent` (which must be a private token).
    pub fn mint_public(
        &self,
        parent: &Claims,
        grant: &Grant,
        expires_in: Option<Duration>,
    ) -> Result<Minted, AuthError> {
        if parent.kind != Kind::Private {
            return Err(AuthError::Denied("only a private token can mint public tokens; use `orb token attenuate` to narrow a public token".into()));
        }
        let expires = expires_in.map(|d| SystemTime::now() + d);
        self.mint(
            &parent.account,
            Kind::Public,
            Some(grant),
            Some(&parent.lineage),
            expires,
        )
    }

    fn verify_bytes(&self, bytes: &[u8]) -> Result<Arc<Verified>, AuthError> {
        let key: [u8; 32] = Sha256::digest(bytes).into();
        if let Some(v) = self.cache.read().expect("cache lock").get(&key) {
            return Ok(v.clone());
        }
        let biscuit = Biscuit::from(bytes, self.public).map_err(|e| invalid(format!("{e}")))?;
        if biscuit.block_count() > MAX_BLOCKS {
            return Err(invalid(format!("more than {MAX_BLOCKS} blocks")));
        }
        let mut authorizer = biscuit.authorizer().map_err(invalid)?;
        let q =
            |a: &mut biscuit_auth::Authorizer, rule: &str| -> Result<Vec<(String,)>, AuthError> {
                a.query_with_limits(rule, limits()).map_err(invalid)
            };
        // Only authority-block facts are trusted by these queries (`query_with_limits`
        // uses the authorizer's scope; `query_all*` would also see appended blocks).
        let account = q(&mut authorizer, "data($a) <- account($a)")?;
        let kind = q(&mut authorizer, "data($k) <- kind($k)")?;
        let grant = q(&mut authorizer, "data($g) <- grant($g)")?;
        let minted_by = q(&mut authorizer, "data($m) <- minted_by($m)")?;
        let (Some((account,)), Some((kind,))) = (account.first().cloned(), kind.first().cloned())
        else {
            return Err(invalid("not an Orb token (no account)"));
        };
        if account.is_empty() {
            return Err(invalid("not an Orb token (no account)"));
        }
        let kind = match kind.as_str() {
            "private" => Kind::Private,
            "public" => Kind::Public,
            _ => return Err(invalid("not an Orb token (unknown kind)")),
        };
        let grant: Option<Grant> = match (kind, grant.first()) {
            (Kind::Public, Some((g,))) => {
                Some(serde_json::from_str(g).map_err(|e| invalid(format!("bad grant: {e}")))?)
            }
            (Kind::Public, None) => return Err(invalid("public token without a grant")),
            (Kind::Private, _) => None,
        };
        let revocation_ids: Vec<String> = biscuit
            .revocation_identifiers()
            .iter()
            .map(hex::encode)
            .collect();
        let expires_at = token_expiry(&biscuit);
        let claims = Claims {
            account,
            kind,
            grant,
            lineage: revocation_ids[0].clone(),
            revocation_ids,
            minted_by: minted_by.first().map(|(m,)| m.clone()),
            expires_at,
            blocks: biscuit.block_count(),
            attenuated: (biscuit.block_count() > 1).then(|| encode_token(bytes)),
        };
        let time_checks = (1..biscuit.block_count()).any(|i| {
            biscuit
                .print_block_source(i)
                .map_or(true, |src| src.contains("time("))
        });
        let verified = Arc::new(Verified {
            time_checks,
            claims,
            biscuit: (biscuit.block_count() > 1).then_some(biscuit),
            decisions: Mutex::default(),
        });
        let mut cache = self.cache.write().expect("cache lock");
        if cache.len() >= CACHE_CAPACITY {
            cache.clear();
        }
        cache.insert(key, verified.clone());
        Ok(verified)
    }

    /// The claims of a token whose signature is valid, ignoring revocation,
    /// expiry and attenuation checks (for revoking it).
    pub fn claims_of(&self, token: &str) -> Result<Claims, AuthError> {
        let bytes = decode_token(token)?;
        Ok(self.verify_bytes(&bytes)?.claims.clone())
    }

    /// Verifies `token` for `req`: signature (cached by the hash of its
    /// bytes), revocation and expiry (every call), and the checks of
    /// attenuation blocks against the request. Permissions in the grant are
    /// the caller's to enforce (see [`Claims`]).
    pub fn verify(&self, token: &str, req: &Request<'_>) -> Result<Claims, AuthError> {
        let bytes = decode_token(token)?;
        let v = self.verify_bytes(&bytes)?;
        self.still_valid(&v.claims)?;
        let now = SystemTime::now();
        if let Some(biscuit) = &v.biscuit {
            let key = (
                req.operation.to_string(),
                req.function.map(str::to_string),
                req.namespace.map(str::to_string),
            );
            let cached = v
                .decisions
                .lock()
                .expect("decisions lock")
                .get(&key)
                .is_some_and(|until| *until > now);
            if !cached {
                run_checks(biscuit, req, None, now)?;
                // Reuse the decision only if it would still hold at the end
                // of the reuse window (expiry checks are monotone in time).
                let until = now + DECISION_TTL;
                if !v.time_checks || run_checks(biscuit, req, None, until).is_ok() {
                    let mut d = v.decisions.lock().expect("decisions lock");
                    if d.len() > 256 {
                        d.clear();
                    }
                    d.insert(key, until);
                }
            }
        }
        Ok(v.claims.clone())
    }

    /// Checks claims verified earlier against a further request made on
    /// their behalf (a guest opening another bucket, a queued or scheduled
    /// run): revocation, expiry and, for an attenuated token, the checks of
    /// every appended block.
    pub fn recheck(&self, claims: &Claims, req: &Request<'_>) -> Result<(), AuthError> {
        self.still_valid(claims)?;
        match &claims.attenuated {
            Some(token) => self.verify(token, req).map(|_| ()),
            None => Ok(()),
        }
    }

    /// Checks claims for one outbound HTTP request a guest makes on their
    /// behalf (`req` is the call's invoke request): what [`Self::recheck`]
    /// checks, plus every appended block's `hosts` narrowing against
    /// `host`/`port`.
    pub fn recheck_outbound(
        &self,
        claims: &Claims,
        req: &Request<'_>,
        host: &str,
        port: u16,
    ) -> Result<(), AuthError> {
        self.still_valid(claims)?;
        let Some(token) = &claims.attenuated else {
            return Ok(());
        };
        let bytes = decode_token(token)?;
        let v = self.verify_bytes(&bytes)?;
        match &v.biscuit {
            Some(biscuit) => {
                let candidates = orb_core::outbound::host_candidates(host, port);
                run_checks(biscuit, req, Some(&candidates), SystemTime::now()).map_err(|e| {
                    match e {
                        AuthError::Denied(_) => AuthError::Denied(format!(
                            "an attenuation block of the token does not allow outbound requests to `{host}:{port}`"
                        )),
                        other => other,
                    }
                })
            }
            None => Ok(()),
        }
    }

    /// Takes one call from the token lineage's bucket. Private tokens and
    /// grants without a rate are unlimited.
    pub fn check_rate(&self, claims: &Claims) -> Result<(), AuthError> {
        let Some(rate) = claims.grant.as_ref().and_then(|g| g.rate) else {
            return Ok(());
        };
        let limiter = {
            let mut map = self.limiters.lock().expect("limiters lock");
            let entry = map
                .entry(claims.lineage.clone())
                .or_insert_with(|| (rate, Arc::new(limiter_for(rate))));
            if entry.0 != rate {
                *entry = (rate, Arc::new(limiter_for(rate)));
            }
            entry.1.clone()
        };
        limiter.check().map_err(|not_until| {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            AuthError::RateLimited {
                retry_after_secs: wait.as_secs() + u64::from(wait.subsec_nanos() > 0),
            }
        })
    }
}

fn limiter_for(rate: crate::Rate) -> DefaultDirectRateLimiter {
    let count = NonZeroU32::new(rate.count.max(1)).expect("non-zero");
    let period = rate.per / rate.count.max(1);
    let quota = Quota::with_period(period.max(Duration::from_nanos(1)))
        .expect("non-zero period")
        .allow_burst(count);
    RateLimiter::direct(quota)
}

/// The earliest expiry in any block: the one written at minting
/// (authority block) or one added by `attenuate`. Blocks can only narrow a
/// token, so the earliest is the one that holds; it is what
/// [`Authority::still_valid`] checks for calls that run later (queued,
/// scheduled) without the token at hand.
fn token_expiry(biscuit: &Biscuit) -> Option<u64> {
    (0..biscuit.block_count())
        .filter_map(|i| biscuit.print_block_source(i).ok())
        .flat_map(|src| {
            src.lines()
                .filter(|l| l.contains("check if time($t), $t <"))
                .filter_map(|l| {
                    let ts = l.split('<').nth(1)?.trim().trim_end_matches(';').trim();
                    humantime::parse_rfc3339(ts).ok().map(unix)
                })
                .collect::<Vec<_>>()
        })
        .min()
}

/// Runs the checks of every block for `req`. `outbound` is set for an
/// outbound HTTP request the call makes: the canonical text of every host
/// pattern that matches it ([`orb_core::outbound::host_candidates`]), as
/// `host_match` facts beside `request("outbound")`; otherwise the request is
/// `request("call")`, which a `hosts` narrowing lets through.
fn run_checks(
    biscuit: &Biscuit,
    req: &Request<'_>,
    outbound: Option<&[String]>,
    at: SystemTime,
) -> Result<(), AuthError> {
    let mut b = biscuit_auth::AuthorizerBuilder::new()
        .set_limits(limits())
        .fact(fact("time", &[date(&at)]))
        .and_then(|b| b.fact(fact("operation", &[string(req.operation)])))
        .and_then(|b| {
            b.fact(fact(
                "request",
                &[string(if outbound.is_some() {
                    "outbound"
                } else {
                    "call"
                })],
            ))
        })
        .map_err(invalid)?;
    for c in outbound.unwrap_or_default() {
        b = b.fact(fact("host_match", &[string(c)])).map_err(invalid)?;
    }
    if let Some(f) = req.function {
        b = b.fact(fact("function", &[string(f)])).map_err(invalid)?;
    }
    if let Some(n) = req.namespace {
        b = b.fact(fact("namespace", &[string(n)])).map_err(invalid)?;
    }
    let mut authorizer = b
        .policy("allow if true")
        .and_then(|b| b.build(biscuit))
        .map_err(invalid)?;
    match authorizer.authorize() {
        Ok(_) => Ok(()),
        Err(biscuit_auth::error::Token::FailedLogic(logic)) => {
            let text = format!("{logic:?}");
            if text.contains("time($") {
                Err(AuthError::Expired("an attenuation's expiry".into()))
            } else {
                Err(AuthError::Denied(format!(
                    "an attenuation block of the token forbids this request ({} {})",
                    req.operation,
                    req.function.or(req.namespace).unwrap_or("")
                )))
            }
        }
        Err(biscuit_auth::error::Token::RunLimit(_)) => {
            Err(invalid("the token's checks exceed the Datalog run limits"))
        }
        Err(e) => Err(invalid(e)),
    }
}

/// Appends a block of checks to `token` (offline: no key needed). The
/// result can only do less than the input.
pub fn attenuate(token: &str, n: &Narrowing) -> Result<String, AuthError> {
    let bytes = decode_token(token)?;
    let unverified = UnverifiedBiscuit::from(&bytes).map_err(invalid)?;
    let mut code = String::new();
    let mut params: HashMap<String, Term> = HashMap::new();
    let set = |items: &[String]| Term::Set(items.iter().map(|s| string(s)).collect());
    if let Some(ops) = &n.operations {
        params.insert("ops".into(), set(ops));
        code.push_str("check if operation($op), {ops}.contains($op);\n");
    }
    if let Some(fs) = &n.functions {
        params.insert("fns".into(), set(fs));
        code.push_str(
            "check if operation($op), $op != \"invoke\" or function($f), {fns}.contains($f);\n",
        );
    }
    if let Some(ns) = &n.namespaces {
        params.insert("nss".into(), set(ns));
        code.push_str("check if namespace($n), {nss}.contains($n);\n");
    }
    if let Some(hosts) = &n.hosts {
        let patterns = orb_core::outbound::parse_host_patterns(hosts).map_err(invalid)?;
        let canonical: Vec<String> = patterns.iter().map(|p| p.canonical()).collect();
        params.insert("hosts".into(), set(&canonical));
        code.push_str("check if request(\"call\") or host_match($h), {hosts}.contains($h);\n");
    }
    if let Some(d) = n.expires_in {
        params.insert("exp".into(), date(&(SystemTime::now() + d)));
        code.push_str("check if time($t), $t < {exp};\n");
    }
    if code.is_empty() {
        return Err(invalid(
            "nothing to narrow: give operations, functions, namespaces, hosts or an expiry",
        ));
    }
    let block = biscuit_auth::builder::BlockBuilder::new()
        .code_with_params(code, params, HashMap::new())
        .map_err(invalid)?;
    let out = unverified.append(block).map_err(invalid)?;
    let bytes = out.to_vec().map_err(invalid)?;
    Ok(encode_token(&bytes))
}

/// Reads a token without verifying it (for `orb token inspect`).
pub fn inspect(token: &str) -> Result<Inspection, AuthError> {
    let bytes = decode_token(token)?;
    let u = UnverifiedBiscuit::from(&bytes).map_err(invalid)?;
    let blocks = (0..u.block_count())
        .map(|i| u.print_block_source(i).unwrap_or_default())
        .collect();
    let revocation_ids: Vec<String> = u.revocation_identifiers().iter().map(hex::encode).collect();
    Ok(Inspection {
        blocks,
        lineage: revocation_ids.first().cloned().unwrap_or_default(),
        revocation_ids,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Access, Rate};

    fn req(op: &str) -> Request<'_> {
        Request {
            operation: op,
            ..Default::default()
        }
    }

    #[test]
    fn mint_verify_attenuate_revoke() {
        let auth = Authority::generate();
        let private = auth.mint_private("acc_1").unwrap();
        let pc = auth.verify(&private.token, &req("invoke")).unwrap();
        assert_eq!(
            (pc.account.as_str(), pc.kind, pc.grant.is_none()),
            ("acc_1", Kind::Private, true)
        );

        let mut grant = Grant::default();
        grant.namespaces.insert("app1".into(), Access::Read);
        grant.rate = Some(Rate::parse("5/60s").unwrap());
        let public = auth
            .mint_public(&pc, &grant, Some(Duration::from_secs(3600)))
            .unwrap();
        let c = auth.verify(&public.token, &req("invoke")).unwrap();
        assert_eq!(c.kind, Kind::Public);
        assert_eq!(c.grant.as_ref().unwrap(), &grant);
        assert_eq!(c.minted_by.as_deref(), Some(pc.lineage.as_str()));
        assert!(c.expires_at.unwrap() > unix(SystemTime::now()));
        // Public tokens cannot mint.
        assert!(matches!(
            auth.mint_public(&c, &grant, None),
            Err(AuthError::Denied(_))
        ));

        let narrowed = attenuate(
            &public.token,
            &Narrowing {
                operations: Some(vec!["invoke".into()]),
                ..Default::default()
            },
        )
        .unwrap();
        let nc = auth.verify(&narrowed, &req("invoke")).unwrap();
        assert_eq!(nc.lineage, c.lineage);
        assert_eq!(nc.blocks, 2);
        assert!(matches!(
            auth.verify(&narrowed, &req("functions.read")),
            Err(AuthError::Denied(_))
        ));
        // An expiry added by attenuation is the claims' expiry, so calls that
        // run later on stored claims (schedules, queued calls) honour it.
        let short = attenuate(
            &public.token,
            &Narrowing {
                expires_in: Some(Duration::from_secs(60)),
                ..Default::default()
            },
        )
        .unwrap();
        let sc = auth.verify(&short, &req("invoke")).unwrap();
        let exp = sc.expires_at.unwrap();
        assert!(
            exp < c.expires_at.unwrap() && exp <= unix(SystemTime::now()) + 61,
            "{exp}"
        );
        let mut stale = sc.clone();
        stale.expires_at = Some(unix(SystemTime::now()) - 1);
        assert!(matches!(
            auth.still_valid(&stale),
            Err(AuthError::Expired(_))
        ));

        // Revoking the private token revokes what it minted.
        auth.revoke([pc.lineage.clone()]);
        assert_eq!(
            auth.verify(&public.token, &req("invoke")),
            Err(AuthError::Revoked)
        );
        assert_eq!(
            auth.verify(&narrowed, &req("invoke")),
            Err(AuthError::Revoked)
        );
    }

    #[test]
    fn a_hosts_narrowing_binds_outbound_requests_only() {
        let auth = Authority::generate();
        let private = auth.mint_private("acc").unwrap();
        let pc = auth.verify(&private.token, &req("invoke")).unwrap();
        let narrowed = attenuate(
            &private.token,
            &Narrowing {
                hosts: Some(vec!["API.example.com".into(), "*.cdn.net:443".into()]),
                ..Default::default()
            },
        )
        .unwrap();
        let call = Request {
            operation: "invoke",
            function: Some("sha256:aa"),
            namespace: None,
        };
        // The call itself is not an outbound request: the narrowing lets it through.
        let nc = auth.verify(&narrowed, &call).unwrap();
        assert!(nc.attenuated.is_some());
        for (host, port, ok) in [
            ("api.example.com", 443, true),
            ("api.example.com.", 8080, true),
            ("a.b.cdn.net", 443, true),
            ("a.b.cdn.net", 80, false),
            ("cdn.net", 443, false),
            ("example.com", 443, false),
            ("evil.net", 443, false),
        ] {
            let got = auth.recheck_outbound(&nc, &call, host, port);
            assert_eq!(got.is_ok(), ok, "{host}:{port} -> {got:?}");
            if !ok {
                assert!(
                    matches!(&got, Err(AuthError::Denied(m)) if m.contains(host)),
                    "{got:?}"
                );
            }
        }
        // The token it was narrowed from has no such block.
        assert_eq!(auth.recheck_outbound(&pc, &call, "evil.net", 443), Ok(()));
        // Other narrowings still apply to the outbound request's call.
        let ns_only = attenuate(
            &private.token,
            &Narrowing {
                namespaces: Some(vec!["home1".into()]),
                ..Default::default()
            },
        )
        .unwrap();
        let home1 = Request {
            namespace: Some("home1"),
            ..call
        };
        let c = auth.verify(&ns_only, &home1).unwrap();
        assert_eq!(auth.recheck_outbound(&c, &home1, "evil.net", 443), Ok(()));
        let home2 = Request {
            namespace: Some("home2"),
            ..call
        };
        assert!(auth.recheck_outbound(&c, &home2, "evil.net", 443).is_err());
        // Revocation reaches outbound requests too.
        auth.revoke([pc.lineage.clone()]);
        assert_eq!(
            auth.recheck_outbound(&nc, &call, "api.example.com", 443),
            Err(AuthError::Revoked)
        );
        // A bad pattern is refused when narrowing.
        let bad = attenuate(
            &private.token,
            &Narrowing {
                hosts: Some(vec!["https://x.com/".into()]),
                ..Default::default()
            },
        );
        assert!(matches!(bad, Err(AuthError::Invalid(m)) if m.contains("not a host pattern")));
    }

    #[test]
    fn foreign_and_damaged_tokens_are_invalid() {
        let a = Authority::generate();
        let b = Authority::generate();
        let t = a.mint_private("acc").unwrap().token;
        assert!(matches!(
            b.verify(&t, &req("invoke")),
            Err(AuthError::Invalid(_))
        ));
        assert!(matches!(
            a.verify("not a token", &req("invoke")),
            Err(AuthError::Invalid(_))
        ));
        let reloaded = Authority::from_private_key(&a.private_key_text().unwrap()).unwrap();
        assert!(reloaded.verify(&t, &req("invoke")).is_ok());
        assert_eq!(reloaded.public_key_text(), a.public_key_text());
    }

    #[test]
    fn rate_limit_is_per_lineage() {
        let auth = Authority::generate();
        let pc = auth
            .verify(&auth.mint_private("acc").unwrap().token, &req("x"))
            .unwrap();
        let grant = Grant {
            rate: Some(Rate::parse("2/60s").unwrap()),
            ..Default::default()
        };
        let t1 = auth
            .verify(
                &auth.mint_public(&pc, &grant, None).unwrap().token,
                &req("x"),
            )
            .unwrap();
        let t2 = auth
            .verify(
                &auth.mint_public(&pc, &grant, None).unwrap().token,
                &req("x"),
            )
            .unwrap();
        assert!(auth.check_rate(&t1).is_ok() && auth.check_rate(&t1).is_ok());
        assert!(
            matches!(auth.check_rate(&t1), Err(AuthError::RateLimited { retry_after_secs }) if retry_after_secs >= 1)
        );
        assert!(auth.check_rate(&t2).is_ok());
        assert!(auth.check_rate(&pc).is_ok(), "private tokens are unlimited");
    }

    #[test]
    fn parses_rates_and_schedules() {
        assert_eq!(
            Rate::parse("5/60s").unwrap(),
            Rate {
                count: 5,
                per: Duration::from_secs(60)
            }
        );
        assert!(Rate::parse("0/1s").is_err() && Rate::parse("5").is_err());
        let s = crate::ScheduleLimits::parse("1@30s").unwrap();
        assert_eq!((s.max, s.min_interval), (1, Duration::from_secs(30)));
    }
}
