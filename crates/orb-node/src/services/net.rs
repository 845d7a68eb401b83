//! What the domain services ask of the network, and the node's handle on
//! it ([`Joined`]): whether this node is networked, writing accounts and
//! revocations to the network's directory before the node stores them,
//! announcing an upload. The node on the network itself (joining, seeding,
//! routing) is `network.rs`, above the domains; this module is below them,
//! so the services that write (accounts, functions, calls) never import it.
//!
//! A node built without the `network` feature, or started without
//! `--network`, is a single node: every function here is then a no-op or
//! answers `not_networked`, and nothing links NATS.

use crate::{ApiError, Node};
#[cfg(feature = "network")]
pub(crate) use handle::{Joined, Seeding};
use orb_core::{Account, ErrorCode};

/// The network's view for `GET /v1/network/nodes`.
pub async fn nodes(node: &Node) -> Result<serde_json::Value, ApiError> {
    #[cfg(feature = "network")]
    if let Some(joined) = &node.network {
        let nodes = orb_net::membership::list_nodes(&joined.net)
            .await
            .map_err(unavailable)?;
        return Ok(serde_json::json!({
            "this_node": joined.key.id(),
            "nodes": nodes,
        }));
    }
    let _ = node;
    Err(not_networked())
}

/// Writes an account record to the network before the node stores it
/// (a single node: nothing to do).
pub async fn publish_account(node: &Node, account: &Account) -> Result<(), ApiError> {
    #[cfg(feature = "network")]
    if let Some(joined) = &node.network {
        let record = serde_json::to_vec(account).expect("an account serialises");
        return orb_net::Directory::put_account(&joined.net, &account.id, record.into())
            .await
            .map_err(unavailable);
    }
    let _ = (node, account);
    Ok(())
}

/// Revokes token lineages network-wide before the node stores them.
pub async fn publish_revocations(node: &Node, ids: &[String]) -> Result<(), ApiError> {
    #[cfg(feature = "network")]
    if let Some(joined) = &node.network {
        return orb_net::Directory::revoke(&joined.net, ids)
            .await
            .map_err(unavailable);
    }
    let _ = (node, ids);
    Ok(())
}

/// Tells the network about a function an account uploaded here (a single
/// node: nothing to do): its bytes go into the network's component store,
/// then a super node (any live one: queue group `supers` on
/// `orb.validate`) checks the uploader's token itself, fetches and re-hashes
/// the bytes, validates and compiles them, runs the sample calls (their
/// fuel is the function's complexity) and announces it, signed (seed 001:
/// "the supernode will initially run the function … and sends a
/// notification"). Returns the sample calls.
pub async fn announce(
    node: &Node,
    token: &crate::caller::Token,
    info: &orb_core::FunctionInfo,
    bytes: &[u8],
    placement: Option<PlacementRequest>,
) -> Result<Vec<orb_core::SampleCall>, ApiError> {
    #[cfg(feature = "network")]
    if let Some(joined) = &node.network {
        let token = token
            .bearer()
            .ok_or_else(|| ApiError(orb_auth::AuthError::Missing.into()))?;
        let placement = placement.unwrap_or_default();
        let defaults = orb_net::Placement::default();
        let placement = orb_net::Placement {
            min_seeders: placement.min_seeders.unwrap_or(defaults.min_seeders),
            max_seeders: placement.max_seeders.unwrap_or(defaults.max_seeders),
            required: placement.require,
        };
        placement
            .check()
            .map_err(|e| ApiError::new(ErrorCode::InvalidRequest, e.to_string()))?;
        orb_net::deploy::put_component(&joined.net, &info.hash, bytes)
            .await
            .map_err(unavailable)?;
        let request = ValidateRequest {
            token: token.to_string(),
            function: info.hash.clone(),
            placement,
        };
        let payload = serde_json::to_vec(&request).expect("a request serialises");
        let reply = orb_net::rpc::request(
            &joined.net,
            orb_net::names::VALIDATE.to_string(),
            payload.into(),
            VALIDATE_WITHIN,
        )
        .await
        .map_err(|e| match e {
            orb_net::rpc::RequestFailed::NoResponders(_) => ApiError::new(
                ErrorCode::NetworkUnavailable,
                format!(
                    "no super node is live to validate and announce {}; its bytes are in the network's store: upload it again when one is",
                    info.hash
                ),
            ),
            e => ApiError::new(
                ErrorCode::NetworkUnavailable,
                format!("{} was not validated and announced: {e}; upload it again", info.hash),
            ),
        })?;
        return match serde_json::from_slice::<ValidateReply>(&reply) {
            Ok(ValidateReply::Announced { samples }) => Ok(samples),
            Ok(ValidateReply::Refused { error }) => Err(ApiError(error)),
            Err(e) => Err(ApiError::new(
                ErrorCode::Internal,
                format!("a super node's answer does not parse: {e}"),
            )),
        };
    }
    let _ = (node, token, info, bytes, placement);
    Ok(Vec::new())
}

/// How long an upload waits for a super node to validate, sample and
/// announce it (a big component compiles for a while on a busy node).
#[cfg(feature = "network")]
const VALIDATE_WITHIN: std::time::Duration = std::time::Duration::from_secs(120);

/// An upload a super node is asked to validate and announce
/// (`orb.validate`): the uploader's token (the super node checks it
/// itself), the function (its bytes are in the component store) and the
/// placement asked for.
#[cfg(feature = "network")]
#[derive(serde::Serialize, serde::Deserialize)]
pub(crate) struct ValidateRequest {
    pub(crate) token: String,
    pub(crate) function: orb_core::FunctionId,
    pub(crate) placement: orb_net::Placement,
}

/// A super node's answer to a [`ValidateRequest`].
#[cfg(feature = "network")]
#[derive(serde::Serialize, serde::Deserialize)]
#[serde(tag = "answer", rename_all = "snake_case")]
pub(crate) enum ValidateReply {
    /// Validated, sampled and announced.
    Announced { samples: Vec<orb_core::SampleCall> },
    /// Not announced, and why (the token, the bytes, the component).
    Refused { error: orb_core::OrbError },
}

/// A function's bytes from the network's component store, re-hashed (bytes
/// that do not hash to `id` are refused and reported); a single node has
/// none to give.
pub async fn fetch(node: &Node, id: &orb_core::FunctionId) -> Result<bytes::Bytes, ApiError> {
    #[cfg(feature = "network")]
    if let Some(joined) = &node.network {
        use orb_net::NetError;
        return orb_net::deploy::fetch_verified(&joined.net, &joined.key, id)
            .await
            .map(bytes::Bytes::from)
            .map_err(|e| match e {
                NetError::FunctionNotFound(_) => ApiError::new(
                    ErrorCode::FunctionNotFound,
                    format!("the network holds no bytes for {id}"),
                ),
                NetError::HashMismatch { .. } => ApiError::new(
                    ErrorCode::Internal,
                    format!(
                        "the network's bytes for {id} do not hash to it; refused and reported ({e})"
                    ),
                ),
                e => unavailable(e),
            });
    }
    let _ = node;
    Err(ApiError::new(
        ErrorCode::FunctionNotFound,
        format!("no function {id} on this node; upload it (POST /v1/functions) and retry"),
    ))
}

/// Withdraws an account's function from the network (a single node:
/// nothing to do): a signed deprecation on the announcement stream, which
/// every node reads (now, or when it comes back) and drops the account's
/// claim on the function; one no account claims is no longer seeded.
pub async fn deprecate(
    node: &Node,
    account: &str,
    id: &orb_core::FunctionId,
) -> Result<(), ApiError> {
    #[cfg(feature = "network")]
    if let Some(joined) = &node.network {
        let deprecation = orb_net::deploy::Deprecation {
            function: id.clone(),
            owner: account.to_string(),
            announced_by: joined.key.id().clone(),
            at_ms: orb_net::network::now_ms(),
        };
        orb_net::deploy::deprecate(
            &joined.net,
            &joined.key,
            &deprecation,
            orb_net::network::PUBLISH_BUDGET,
        )
        .await
        .map_err(unavailable)?;
        return Ok(());
    }
    let _ = (node, account, id);
    Ok(())
}

/// The functions announced for `account` that this node does not hold, as
/// their announcements describe them (a single node: none): so an account
/// lists the same functions through every node.
pub fn announced_elsewhere(node: &Node, account: &str) -> Vec<orb_core::FunctionInfo> {
    #[cfg(feature = "network")]
    if let Some(joined) = &node.network {
        return joined
            .known
            .lock()
            .expect("known lock")
            .values()
            .filter(|k| k.owners.contains(account))
            .filter_map(|k| k.info.clone())
            .collect();
    }
    let _ = (node, account);
    Vec::new()
}

/// Where a function uploaded to a network may be seeded, from the upload's
/// query (`?min_seeders=2&max_seeders=4&require=region=eu`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PlacementRequest {
    pub min_seeders: Option<u32>,
    pub max_seeders: Option<u32>,
    /// `key=value` attributes a seeder must carry (all of them).
    pub require: std::collections::BTreeMap<String, String>,
}

/// The most seeders a function may ask for (`min_seeders`, `max_seeders`).
pub const MAX_SEEDERS: u32 = 64;

impl PlacementRequest {
    /// `None` when the query names no placement; unknown keys are refused.
    pub fn from_query(query: &[(String, String)]) -> Result<Option<PlacementRequest>, ApiError> {
        let bad = |m: String| ApiError::new(ErrorCode::InvalidRequest, m);
        let mut p = PlacementRequest::default();
        for (k, v) in query {
            let count = || {
                v.parse::<u32>()
                    .ok()
                    .filter(|n| (1..=MAX_SEEDERS).contains(n))
                    .ok_or_else(|| {
                        bad(format!(
                            "`{k}` must be an integer from 1 to {MAX_SEEDERS}, got `{v}`"
                        ))
                    })
            };
            match k.as_str() {
                "min_seeders" => p.min_seeders = Some(count()?),
                "max_seeders" => p.max_seeders = Some(count()?),
                "require" => {
                    let (key, value) = orb_core::attribute::parse(v)
                        .map_err(|e| bad(format!("`require`: {e}")))?;
                    p.require.insert(key, value);
                }
                other => {
                    return Err(bad(format!(
                        "unknown query parameter `{other}` (an upload takes min_seeders, max_seeders, require)"
                    )));
                }
            }
        }
        if query.iter().filter(|(k, _)| k == "require").count() > MAX_SEEDERS as usize {
            return Err(bad(format!("at most {MAX_SEEDERS} `require` attributes")));
        }
        if let (Some(min), Some(max)) = (p.min_seeders, p.max_seeders)
            && min > max
        {
            return Err(bad(format!(
                "min_seeders ({min}) is more than max_seeders ({max})"
            )));
        }
        Ok((p != PlacementRequest::default()).then_some(p))
    }
}

/// The kinds of record every node of a network holds alike.
#[cfg(feature = "network")]
pub(crate) const SHARED_RECORDS: &[orb_store::RecordKind] = &[
    orb_store::RecordKind::Alias,
    orb_store::RecordKind::PublicRoute,
];

/// The kind name of a whitelist in the network's shared records (a
/// whitelist is its own table in the store, not a record).
#[cfg(feature = "network")]
pub(crate) const WHITELIST_RECORD: &str = "whitelist";

/// Writes shared records (aliases, the public-route index) to the network
/// before the node stores them; other kinds stay on this node.
pub async fn publish_records(
    node: &Node,
    changes: &[orb_store::RecordChange],
) -> Result<(), ApiError> {
    #[cfg(feature = "network")]
    if let Some(joined) = &node.network {
        for (kind, key, value) in changes {
            if SHARED_RECORDS.contains(kind) {
                orb_net::Directory::put_record(
                    &joined.net,
                    kind.as_str(),
                    key,
                    value.clone().map(Into::into),
                )
                .await
                .map_err(unavailable)?;
            }
        }
        return Ok(());
    }
    let _ = (node, changes);
    Ok(())
}

/// Writes a namespace's whitelist to the network before the node stores it.
pub async fn publish_whitelist(
    node: &Node,
    account: &str,
    namespace: &str,
    functions: &[orb_core::FunctionId],
) -> Result<(), ApiError> {
    #[cfg(feature = "network")]
    if let Some(joined) = &node.network {
        let value = serde_json::to_vec(functions).expect("ids serialise");
        return orb_net::Directory::put_record(
            &joined.net,
            WHITELIST_RECORD,
            &format!("{account}/{namespace}"),
            Some(value.into()),
        )
        .await
        .map_err(unavailable);
    }
    let _ = (node, account, namespace, functions);
    Ok(())
}

/// Whether `account` owns the function: stored here, or, on a network,
/// announced as the account's (a node holds only what it seeds).
pub async fn owns(node: &Node, account: &str, id: &orb_core::FunctionId) -> Result<bool, ApiError> {
    if node.store.owns(account, id).await? {
        return Ok(true);
    }
    #[cfg(feature = "network")]
    if let Some(joined) = &node.network {
        return Ok(joined
            .known
            .lock()
            .expect("known lock")
            .get(id)
            .is_some_and(|k| k.owners.contains(account)));
    }
    Ok(false)
}

/// Whether this node is on a network.
pub fn is_networked(node: &Node) -> bool {
    #[cfg(feature = "network")]
    if node.network.is_some() {
        return true;
    }
    let _ = node;
    false
}

pub(crate) fn not_networked() -> ApiError {
    ApiError::new(
        ErrorCode::NotNetworked,
        "this node is a single node, not part of a network; start it with `orb serve --network nats://…`",
    )
}

#[cfg(feature = "network")]
pub(crate) fn unavailable(e: orb_net::NetError) -> ApiError {
    ApiError::new(
        ErrorCode::NetworkUnavailable,
        format!("the network did not answer: {e}; retry, or check its NATS servers"),
    )
}

#[cfg(feature = "network")]
mod handle {
    use crate::config::NetworkSettings;
    use orb_core::FunctionId;
    use orb_net::deploy::Placement;
    use orb_net::{FunctionLoad, Member, Network, NodeKey, SuperNode, Timing};
    use std::collections::{BTreeMap, BTreeSet, HashMap};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A node's handle on its network.
    pub(crate) struct Joined {
        pub net: Network,
        pub key: Arc<NodeKey>,
        pub settings: NetworkSettings,
        pub attributes: BTreeMap<String, String>,
        pub timing: Timing,
        /// Sends routed calls (one inbox for all of them).
        pub(crate) caller: orb_net::rpc::Caller,
        pub(crate) member: tokio::sync::Mutex<Option<Member>>,
        pub(crate) duties: tokio::sync::Mutex<Option<SuperNode>>,
        pub(crate) mirror: std::sync::Mutex<Option<tokio::task::JoinHandle<()>>>,
        /// Functions this node serves: the task answering its call subject.
        pub(crate) seeding: std::sync::Mutex<HashMap<FunctionId, Seeding>>,
        /// Calls per function since the last heartbeat (the scale loop's
        /// input): taken by each heartbeat.
        pub(crate) window: std::sync::Mutex<Window>,
        /// What the announcements said: each function's owners and placement.
        pub(crate) known: std::sync::Mutex<HashMap<FunctionId, Known>>,
        /// Calls running on this node through the network (its own and
        /// forwarded ones): at `slots`, forwarded calls are answered busy.
        pub(crate) in_flight: AtomicUsize,
        pub(crate) slots: usize,
        /// `true` while every slot is taken: this node then withdraws from
        /// its queue groups, so NATS sends calls to the other seeders.
        pub(crate) saturated: tokio::sync::watch::Sender<bool>,
        /// Set by an operator's drain (`orb network drain`): this node then
        /// seeds nothing new; what it seeds it keeps serving until it stops.
        pub(crate) draining: std::sync::atomic::AtomicBool,
        /// Background tasks (the announcement feed, the fallback service).
        pub(crate) tasks: std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>,
    }

    /// A function this node serves: the task answering its call subject.
    /// Dropping it (without aborting the task) stops the serving cleanly:
    /// the task drains its subscription, answers what was on its way and
    /// ends.
    pub(crate) struct Seeding {
        pub(crate) task: tokio::task::JoinHandle<()>,
        pub(crate) _stop: tokio::sync::watch::Sender<()>,
    }

    /// Calls per function (by `<hex>`) since `since`.
    pub(crate) struct Window {
        pub(crate) since: std::time::Instant,
        pub(crate) functions: BTreeMap<String, FunctionLoad>,
    }

    impl Default for Window {
        fn default() -> Self {
            Window {
                since: std::time::Instant::now(),
                functions: BTreeMap::new(),
            }
        }
    }

    #[derive(Default, Clone)]
    pub(crate) struct Known {
        pub(crate) owners: BTreeSet<String>,
        pub(crate) placement: Option<Placement>,
        /// As the latest announcement describes it (size, exports with
        /// their signatures, when): listed on nodes that do not hold it.
        pub(crate) info: Option<orb_core::FunctionInfo>,
    }

    impl Joined {
        pub(crate) fn is_seeding(&self, id: &FunctionId) -> bool {
            self.seeding.lock().expect("seeding lock").contains_key(id)
        }

        /// Counts a call of `hex` that ran here for `took`.
        pub(crate) fn ran(&self, hex: &str, took: std::time::Duration) {
            let took = took.as_micros() as u64;
            let mut w = self.window.lock().expect("window lock");
            // On every call: no key allocated once the function is there.
            match w.functions.get_mut(hex) {
                Some(f) => {
                    f.calls += 1;
                    f.call_us += took;
                }
                None => {
                    w.functions.insert(
                        hex.to_string(),
                        FunctionLoad {
                            calls: 1,
                            call_us: took,
                            busy: 0,
                        },
                    );
                }
            }
        }

        /// Counts a call of `hex` answered busy.
        pub(crate) fn busy(&self, hex: &str) {
            let mut w = self.window.lock().expect("window lock");
            w.functions.entry(hex.to_string()).or_default().busy += 1;
        }

        /// The window's figures, and a new window from now.
        pub(crate) fn take_window(&self) -> (u64, BTreeMap<String, FunctionLoad>) {
            let mut w = self.window.lock().expect("window lock");
            let old = std::mem::take(&mut *w);
            (old.since.elapsed().as_millis() as u64, old.functions)
        }

        pub(crate) fn slot(&self) -> Option<Slot<'_>> {
            let n = self.in_flight.fetch_add(1, Ordering::SeqCst);
            if n >= self.slots {
                self.in_flight.fetch_sub(1, Ordering::SeqCst);
                return None;
            }
            if n + 1 >= self.slots {
                self.saturated.send_replace(true);
            }
            Some(Slot(self))
        }
    }

    /// One call's place in [`Joined::in_flight`].
    pub(crate) struct Slot<'a>(&'a Joined);

    impl Drop for Slot<'_> {
        fn drop(&mut self) {
            let before = self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
            if before <= self.0.slots {
                self.0
                    .saturated
                    .send_if_modified(|s| std::mem::replace(s, false));
            }
        }
    }
}
