//! The network's names: every bucket, stream, object store and subject in
//! one place (ARCHITECTURE.md, "Network", lists who writes each).

/// KV: one record per node (key = node id): its signed hello and its
/// life-cycle state. No TTL: a gone node stays listed as `gone`.
pub const NODES_BUCKET: &str = "orb_nodes";
/// KV with per-key TTL: a node's heartbeat (key = node id). The key
/// disappears when the node stops renewing it.
pub const ALIVE_BUCKET: &str = "orb_alive";
/// KV with per-key TTL: one key per once-only duty, held by one super node.
pub const LEASES_BUCKET: &str = "orb_leases";
/// KV: the network's own facts (key `meta`: layout version, replicas).
pub const META_BUCKET: &str = "orb_network";
/// KV: account records (key = account id), written by super nodes.
pub const ACCOUNTS_BUCKET: &str = "orb_accounts";
/// KV: revoked token lineages (key = hex revocation id), written by any node.
pub const REVOCATIONS_BUCKET: &str = "orb_revocations";
/// KV: an account's records every node must see alike (aliases, public
/// routes, whitelists); key = `<kind>.<base64url of the node's key>`.
pub const RECORDS_BUCKET: &str = "orb_records";
/// KV: seeding slots (key = `<hex>.<k>`, value = the holder's node id).
pub const SEEDING_BUCKET: &str = "orb_seeding";
/// Object store: component bytes under their `sha256:<hex>` id.
pub const COMPONENTS_STORE: &str = "orb_components";
/// Stream of announcements (deploys; later alias switches, deprecations).
pub const ANNOUNCE_STREAM: &str = "ORB_ANNOUNCE";
/// Subjects of the announcement stream.
pub const ANNOUNCE_SUBJECTS: &str = "orb.announce.>";
/// Stream of reports (hash mismatches; later failed checks).
pub const REPORTS_STREAM: &str = "ORB_REPORTS";
/// Subjects of the report stream.
pub const REPORTS_SUBJECTS: &str = "orb.report.>";

/// The key of the network's facts in [`META_BUCKET`].
pub const META_KEY: &str = "meta";
/// The key of the network's root public key (`ed25519/<hex>`) in [`META_BUCKET`].
pub const ROOT_KEY: &str = "root_public_key";
/// The layout version `network init` writes; bumped when a bucket or stream changes shape.
pub const LAYOUT_VERSION: u32 = 1;

/// Duty: move `joining` nodes through `verifying` to `active`.
pub const DUTY_ADMIT: &str = "admit";
/// Duty: keep every function at `min_seeders` live seeders.
pub const DUTY_REPAIR: &str = "repair";
/// Duty: mark nodes whose heartbeat expired `gone`.
pub const DUTY_REAPER: &str = "reaper";

/// Subject of a deploy announcement for a function (`<hex>` without `sha256:`).
pub fn announce_deploy(hex: &str) -> String {
    format!("orb.announce.deploy.{hex}")
}

/// Where deprecations are on the announcement stream.
pub const ANNOUNCE_DEPRECATE_PREFIX: &str = "orb.announce.deprecate.";

/// Subject of a deprecation of a function (`<hex>` without `sha256:`).
pub fn announce_deprecate(hex: &str) -> String {
    format!("{ANNOUNCE_DEPRECATE_PREFIX}{hex}")
}

/// Requests to validate and announce an uploaded function; super nodes
/// answer them in the queue group [`SUPERS_QUEUE`].
pub const VALIDATE: &str = "orb.validate";

/// Subject of a hash-mismatch report.
pub const REPORT_HASH_MISMATCH: &str = "orb.report.hash_mismatch";

/// The durable consumer a node reads announcements with (one per node).
pub fn announce_consumer(node: &crate::NodeId) -> String {
    format!("node-{}", node.as_str())
}

/// Request/reply subject of calls of a function: every seeder of it
/// subscribes in the queue group [`SEEDERS_QUEUE`], so each call reaches one.
pub fn call_subject(hex: &str) -> String {
    format!("orb.call.{hex}")
}

/// The queue group of a function's seeders on [`call_subject`].
pub const SEEDERS_QUEUE: &str = "seeders";

/// Request/reply subject of a call that found no live seeder: a super node
/// (queue group [`SUPERS_QUEUE`]) starts seeding the function and runs it.
pub fn fallback_subject(hex: &str) -> String {
    format!("orb.fallback.{hex}")
}

/// Every fallback subject, for the super nodes' subscription.
pub const FALLBACK_SUBJECTS: &str = "orb.fallback.*";

/// The queue group of super nodes on [`FALLBACK_SUBJECTS`].
pub const SUPERS_QUEUE: &str = "supers";

/// Request/reply subject a super node uses to ask one node to seed a
/// function (replica repair).
pub fn seed_request_subject(node: &crate::NodeId) -> String {
    format!("orb.seed.{}", node.as_str())
}

/// Request/reply subject of an operator's control requests to one node
/// (`orb network drain`): [`crate::control`].
pub fn control_subject(node: &crate::NodeId) -> String {
    format!("orb.control.{}", node.as_str())
}
