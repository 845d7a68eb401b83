//! The OpenAPI document, generated from the code: the routes and their
//! operations come from the handlers' `#[utoipa::path]` attributes (the
//! router is built from them with `utoipa_axum::routes!`, so a route cannot
//! exist without its operation), the schemas from the request and response
//! types (`ToSchema`). This module adds what is the same for every
//! operation: the error responses per status (their `code` is one of the
//! codes [`ErrorCode`] maps to that status), the bearer security scheme,
//! the CORS preflight (`OPTIONS`, answered by the node without a token on
//! every path) and the links between operations (what one creates, others
//! read, change and delete).
//!
//! Bodies and answers that the services build as JSON values are described
//! by the schema-only types below; Schemathesis (`scripts/schemathesis`)
//! checks every answer of a live node against them.

use orb_core::{ErrorCode, OrbError};
use serde::Serialize;
use serde_json::{Map, Value, json};
use std::collections::BTreeSet;
use std::sync::OnceLock;
use utoipa::ToSchema;

/// The routes registered without `utoipa_axum::routes!` (so not described
/// by a handler's attribute) and the operations that describe them. Only
/// `/http/…`: one axum catch-all route, any method, described as two paths.
#[cfg(test)]
pub(super) const UNDOCUMENTED_ROUTES: &[&str] = &["/http/{*target_and_path}"];

/// Every error body: `{"error": {"code", "message", "details"?}}`.
#[derive(Serialize, ToSchema)]
#[schema(example = json!({"error": {"code": "function_not_found", "message": "no function sha256:2c26…; upload it first (POST /v1/functions)"}}))]
pub(super) struct ErrorBody {
    pub error: OrbError,
}

/// A component's bytes.
pub(super) struct Component;

impl utoipa::PartialSchema for Component {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .format(Some(utoipa::openapi::SchemaFormat::KnownFormat(
                utoipa::openapi::KnownFormat::Binary,
            )))
            .description(Some("A WebAssembly component (WASI 0.2), its bytes"))
            .into()
    }
}

impl ToSchema for Component {}

/// Any JSON value.
#[derive(Serialize)]
pub(super) struct AnyJson;

impl utoipa::PartialSchema for AnyJson {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::SchemaType::AnyValue)
            .into()
    }
}

impl ToSchema for AnyJson {}

/// `{"functions": [FunctionInfo]}`.
#[derive(Serialize, ToSchema)]
pub(super) struct FunctionList {
    pub functions: Vec<orb_core::FunctionInfo>,
}

/// `{"activations": [Activation]}`, newest first.
#[derive(Serialize, ToSchema)]
pub(super) struct ActivationList {
    pub activations: Vec<orb_core::Activation>,
}

/// A call queued by `"async": true`: poll `GET /v1/activations/{id}?wait=5s`.
#[derive(Serialize, ToSchema)]
pub(super) struct Queued {
    /// The activation id.
    pub activation: String,
    /// `queued`.
    pub status: String,
}

/// `GET /v1/network/nodes`: this node's id and every node the network
/// knows, gone ones too.
#[derive(Serialize, ToSchema)]
pub(super) struct NetworkNodes {
    /// The answering node's id.
    pub this_node: String,
    pub nodes: Vec<NetworkNode>,
}

/// A node as the network lists it.
#[derive(Serialize, ToSchema)]
pub(super) struct NetworkNode {
    pub id: String,
    /// The node's signed introduction: `node_id`, `attributes` (`key=value`
    /// labels), `capacity`, `super_node`, `issued_ms`.
    pub hello: Map<String, Value>,
    /// `joining`, `verifying`, `active`, `draining` or `gone`.
    pub state: String,
    /// Why the node is in this state (for `gone`: left, no heartbeat, refused).
    pub reason: Option<String>,
    /// Who made the last state change (the node or a super node).
    pub changed_by: String,
    /// Whether its heartbeat is live now.
    pub alive: bool,
    /// Its load as its last heartbeat said (`null` with no live heartbeat).
    pub load: Option<NetworkLoad>,
}

/// A node's load, sent with each heartbeat.
#[derive(Serialize, ToSchema)]
pub(super) struct NetworkLoad {
    /// Calls running on the node through the network.
    pub in_flight: u32,
    /// How many it runs at once before it answers busy.
    pub call_slots: u32,
    /// Functions it seeds.
    pub seeding: u32,
    /// The window `functions` covers (since its previous heartbeat), ms.
    pub window_ms: u64,
    /// The functions it ran or answered busy for in that window, by the
    /// hex of their id (absent when none): the scale loop's input.
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub functions: std::collections::BTreeMap<String, NetworkFunctionLoad>,
}

/// One function's calls on one node in one heartbeat window.
#[derive(Serialize, ToSchema)]
pub(super) struct NetworkFunctionLoad {
    /// Calls that ended in the window.
    pub calls: u64,
    /// Their total duration, microseconds.
    pub call_us: u64,
    /// Forwarded calls answered busy (every call slot was taken).
    pub busy: u64,
}

/// `GET /v1/network/functions/{id}`: a function's announcement and seeders.
#[derive(Serialize, ToSchema)]
pub(super) struct NetworkFunction {
    pub function: String,
    pub size: u64,
    pub exports: Vec<String>,
    /// `min_seeders`, `max_seeders`, `required` (attributes a seeder must have).
    pub placement: Map<String, Value>,
    /// The super node that validated and announced it.
    pub announced_by: String,
    /// The most fuel a sample call at deploy took: the function's
    /// complexity (seed 001).
    pub complexity: u64,
    /// The sample calls run at deploy: each export with the plainest
    /// parameters its signature takes (`GET /` for an HTTP handler).
    pub samples: Vec<orb_core::SampleCall>,
    pub seeders: Vec<NetworkSeeder>,
    /// How many seeders are active with a live heartbeat.
    pub live_seeders: u32,
    /// How many seeders it should have now: the scale loop's choice from
    /// its load, between `min_seeders` and `max_seeders`.
    pub want: u32,
}

/// One seeding slot of a function.
#[derive(Serialize, ToSchema)]
pub(super) struct NetworkSeeder {
    pub node: String,
    pub slot: u32,
    /// The node's state (`null` when the network no longer lists it).
    pub state: Option<String>,
    pub alive: bool,
    /// The node's attributes (`null` when the network no longer lists it).
    pub attributes: Option<Map<String, Value>>,
}

/// An account and its private token (shown once).
#[derive(Serialize, ToSchema)]
pub(super) struct NewAccountOut {
    pub account: String,
    pub name: String,
    pub admin: bool,
    /// The account's private token: keep it; it is not stored.
    pub token: String,
    pub revocation_id: String,
}

/// A minted public token.
#[derive(Serialize, ToSchema)]
pub(super) struct MintedToken {
    pub token: String,
    pub revocation_id: String,
    /// RFC 3339, when the token has an expiry.
    pub expires_at: Option<String>,
}

/// The revocation ids revoked.
#[derive(Serialize, ToSchema)]
pub(super) struct Revoked {
    pub revoked: Vec<String>,
}

/// The caller's new private token; its old lineage is revoked.
#[derive(Serialize, ToSchema)]
pub(super) struct Rotated {
    pub account: String,
    pub token: String,
    pub revocation_id: String,
    pub revoked: Vec<String>,
}

/// `PUT /v1/namespaces/{ns}/whitelist`: the hashes that public tokens may
/// run with this namespace (a bare array of hashes is accepted too).
#[derive(Serialize, ToSchema)]
#[schema(example = json!({"functions": ["sha256:2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae"]}))]
pub(super) struct WhitelistIn {
    pub functions: Vec<orb_core::FunctionId>,
}

/// A namespace's whitelist.
#[derive(Serialize, ToSchema)]
pub(super) struct Whitelist {
    pub namespace: String,
    pub functions: Vec<orb_core::FunctionId>,
}

/// The root public key (verifies any Orb token offline).
#[derive(Serialize, ToSchema)]
pub(super) struct PublicKey {
    pub public_key: String,
}

/// The account's namespaces with their sizes.
#[derive(Serialize, ToSchema)]
pub(super) struct NamespaceList {
    pub namespaces: Vec<AnyJson>,
}

/// A page of keys, in order; `next` is the `after` of the next page.
#[derive(Serialize, ToSchema)]
pub(super) struct KeyPage {
    pub namespace: String,
    pub keys: Vec<String>,
    pub next: Option<String>,
}

/// A write: the key's new revision (durable when answered).
#[derive(Serialize, ToSchema)]
pub(super) struct Written {
    pub namespace: String,
    pub key: String,
    pub revision: u64,
}

/// A namespace as one document: `keys` maps keys holding JSON to their
/// value, `bytes` (only when there are such values) other keys to their
/// bytes in base64.
#[derive(Serialize, ToSchema)]
pub(super) struct Export {
    pub namespace: String,
    pub keys: Map<String, Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bytes: Option<Map<String, Value>>,
}

/// `POST /v1/namespaces/{ns}/import`: an export, or an object of keys and
/// their JSON values.
pub(super) struct ImportIn;

impl utoipa::PartialSchema for ImportIn {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        let key = || {
            utoipa::openapi::ObjectBuilder::new()
                .schema_type(utoipa::openapi::schema::Type::String)
                .min_length(Some(1))
                .max_length(Some(1024))
                .pattern(Some("^[^\\u0000]+$"))
        };
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::Object)
            .property_names(Some(key()))
            .into()
    }
}

impl ToSchema for ImportIn {}

/// How many keys an import wrote.
#[derive(Serialize, ToSchema)]
pub(super) struct Imported {
    pub imported: u64,
}

/// `PUT /v1/aliases/{name}`: a function (optionally served publicly and
/// binding a namespace for HTTP functions), or a sequence of steps.
#[derive(Serialize, ToSchema)]
#[schema(example = json!({"function": "sha256:2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae", "public": false}))]
pub(super) struct AliasIn {
    /// The hash the alias points to.
    #[schema(nullable = false)]
    pub function: Option<orb_core::FunctionId>,
    /// Serve the alias at `/http/{name}/…` without a token (default
    /// unchanged, `false` for a new alias); 409 `public_route_taken` when
    /// another account serves a public route of that name.
    #[schema(nullable = false)]
    pub public: Option<bool>,
    /// The namespace an HTTP function served through it uses (`null`
    /// unbinds it).
    #[schema(pattern = r"^[a-z0-9][a-z0-9._-]{0,63}$")]
    pub namespace: Option<String>,
    /// A sequence instead: `[{"function", "export"}, …]`, run in order.
    #[schema(nullable = false, min_items = 1, max_items = 16)]
    pub steps: Option<Vec<crate::services::aliases::Step>>,
}

/// `{"aliases": [Alias]}`.
#[derive(Serialize, ToSchema)]
pub(super) struct AliasList {
    pub aliases: Vec<crate::services::aliases::Alias>,
}

/// A host pattern, as `PUT /v1/outbound` and secrets take them: `HOST` or
/// `HOST:PORT`, `*.` for the names below a domain, an IPv4 address, an
/// IPv6 address in brackets; no scheme or path. Labels are at most 63
/// characters (the last one not all digits) and the whole at most 253
/// (`maxLength` beside it), as `orb_core::outbound` checks.
pub(crate) const HOST_PATTERN: &str = r"^(\*|(\*\.)?([A-Za-z0-9_-]{1,63}\.)*([A-Za-z_-][A-Za-z0-9_-]{0,62}|[0-9]{1,31}[A-Za-z_-][A-Za-z0-9_-]{0,31})|((25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\.){3}(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9]))(:[1-9][0-9]{0,3})?$";

/// A secret as shown: never its value.
#[derive(Serialize, ToSchema)]
pub(super) struct Secret {
    pub name: String,
    pub hosts: Vec<String>,
    pub header: String,
    pub format: String,
    pub created_at: String,
}

/// `{"secrets": [Secret]}`.
#[derive(Serialize, ToSchema)]
pub(super) struct SecretList {
    pub secrets: Vec<Secret>,
}

/// `{"schedules": [Schedule]}`.
#[derive(Serialize, ToSchema)]
pub(super) struct ScheduleList {
    pub schedules: Vec<AnyJson>,
}

/// A schedule: its request, id, state (last and next run).
#[derive(Serialize, ToSchema)]
pub(super) struct ScheduleOut {
    pub id: String,
    pub created_at: String,
    pub state: AnyJson,
}

/// A trigger as shown.
#[derive(Serialize, ToSchema)]
pub(super) struct TriggerOut {
    pub name: String,
    pub created_at: String,
}

/// A rule as shown: its request, name and the hash its function resolved to.
#[derive(Serialize, ToSchema)]
pub(super) struct RuleOut {
    pub name: String,
    pub trigger: String,
    pub function: String,
    pub export: String,
    pub created_at: String,
}

/// A firing: the activation of the firing and each rule's queued call.
#[derive(Serialize, ToSchema)]
pub(super) struct Fired {
    pub activation: String,
    pub trigger: String,
    pub rules: Vec<AnyJson>,
}

/// A kappa as shown.
#[derive(Serialize, ToSchema)]
pub(super) struct KappaOut {
    #[serde(rename = "ref")]
    pub reference: String,
    pub function: orb_core::FunctionId,
    pub export: String,
    pub namespace: String,
    pub created_at: String,
}

/// A message handled: its activation and the messages it emitted.
#[derive(Serialize, ToSchema)]
pub(super) struct Sent {
    pub activation: String,
}

/// One event of `GET /v1/namespaces/{ns}/watch`: `set` and `delete` carry
/// `{"namespace", "key", "value"}` as JSON text, `lagged` `{"missed": n}`.
#[derive(Serialize, ToSchema)]
pub(super) struct WatchEvent {
    #[schema(pattern = "^(set|delete|lagged)$")]
    pub event: String,
    /// JSON text.
    pub data: String,
}

/// `GET /healthz`.
#[derive(Serialize, ToSchema)]
pub(super) struct Health {
    /// `ok`.
    pub status: String,
    pub version: String,
}

/// `/http/{target}`: described here, served by one catch-all route.
#[utoipa::path(
    method(get, post, put, patch, delete, head),
    path = "/http/{target}",
    tag = "http",
    operation_id = "http_root",
    summary = "Serve an HTTP request with an HTTP function",
    description = HTTP_DESCRIPTION,
    params(("target" = String, Path, description = "An alias of the token's account (or a public alias), or a hash")),
    request_body(content = Component, content_type = "application/octet-stream", description = "Any body; the function reads it"),
    responses(
        (status = 200, description = "The function's own response (any status, headers and body), streamed"),
        (status = 400, description = "not_an_http_function"),
        (status = 404, description = "alias_not_found, function_not_found"),
        (status = 422, description = "function_* when the function fails before answering"),
    ),
    security((), ("bearer" = [])),
)]
#[allow(dead_code)]
fn http_root() {}

/// `/http/{target}/{rest}`.
#[utoipa::path(
    method(get, post, put, patch, delete, head),
    path = "/http/{target}/{rest}",
    tag = "http",
    operation_id = "http_path",
    summary = "Serve an HTTP request with an HTTP function",
    description = HTTP_DESCRIPTION,
    params(
        ("target" = String, Path, description = "An alias of the token's account (or a public alias), or a hash"),
        ("rest" = String, Path, description = "The path the function sees (with the query)"),
    ),
    request_body(content = Component, content_type = "application/octet-stream", description = "Any body; the function reads it"),
    responses(
        (status = 200, description = "The function's own response (any status, headers and body), streamed"),
        (status = 400, description = "not_an_http_function"),
        (status = 404, description = "alias_not_found, function_not_found"),
        (status = 422, description = "function_* when the function fails before answering"),
    ),
    security((), ("bearer" = [])),
)]
#[allow(dead_code)]
fn http_path() {}

const HTTP_DESCRIPTION: &str = "An HTTP function (a component exporting wasi:http/incoming-handler@0.2.x), any method. The function sees the method, the path after /http/{target} with the query, the headers minus Authorization, and the body, streamed both ways. Access: Authorization: Bearer token with the call rules, or none for an alias marked public. Errors: 401/403 as for calls, 404 alias_not_found / function_not_found, 400 not_an_http_function, 413 too_large (max_http_request_bytes), 422 function_* when the function fails before answering. Each request is an activation with export wasi:http/incoming-handler. The function's own answers are its own: this document describes only Orb's.";

#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "Orb",
        version = "1",
        description = "Run shipped WebAssembly components by hash, next to durable state.\n\nErrors are `{\"error\": {\"code\", \"message\", \"details\"}}`: a stable `code` (listed per status below), a message that says what to do, and structured details. 4xx: the caller; 422: the function (trap, timeout, memory, fuel); 5xx: Orb. 401 answers carry `WWW-Authenticate: Bearer`, 429 and 503 `Retry-After`.\n\nAuthentication: `Authorization: Bearer <token>` (a Biscuit token: an account's private token, or a public token minted from it, possibly attenuated offline). Every path also answers CORS preflights (`OPTIONS`) without a token.",
        license(name = "Apache-2.0"),
    ),
    paths(http_root, http_path),
    components(schemas(ErrorBody)),
    tags(
        (name = "node", description = "Health, metrics, this document, the browser client"),
        (name = "console", description = "The web console: a page that signs in with a token and uses this API"),
        (name = "functions", description = "Upload, list, show, delete and call functions"),
        (name = "activations", description = "The records of calls, and dead letters"),
        (name = "accounts", description = "Accounts, tokens, whitelists"),
        (name = "namespaces", description = "Durable key/value namespaces"),
        (name = "aliases", description = "Names for hashes, public routes, sequences"),
        (name = "schedules", description = "Calls on an interval or a cron pattern"),
        (name = "triggers", description = "Triggers and the rules they fire"),
        (name = "kappa", description = "Kappas: functions with an inport, state and an outport"),
        (name = "outbound", description = "Outbound HTTP policy and secrets"),
        (name = "http", description = "HTTP functions"),
        (name = "cors", description = "CORS preflights, answered by the node on every path"),
    ),
)]
struct ApiDoc;

/// The document, built once: the router's operations plus [`ApiDoc`], then
/// [`finish`]ed.
pub(super) fn document() -> &'static str {
    static DOC: OnceLock<String> = OnceLock::new();
    DOC.get_or_init(|| {
        let mut doc = <ApiDoc as utoipa::OpenApi>::openapi();
        let (_, api) = super::api_router().split_for_parts();
        doc.merge(api);
        let mut v = serde_json::to_value(&doc).expect("serialisable");
        finish(&mut v);
        serde_json::to_string_pretty(&v).expect("serialisable")
    })
}

/// The codes an answer of `status` may carry.
fn codes_of(status: u16) -> Vec<&'static str> {
    ErrorCode::ALL
        .iter()
        .filter(|c| c.status() == status)
        .map(|c| c.as_str())
        .collect()
}

/// An operation's (method, path, has a body, is authenticated).
fn is_authenticated(op: &Value) -> bool {
    match op.get("security").and_then(Value::as_array) {
        // The document's default: bearer.
        None => true,
        // `[]` or an alternative `{}`: a token is not needed.
        Some(alts) => {
            !alts.is_empty()
                && alts
                    .iter()
                    .all(|a| a.as_object().is_some_and(|o| !o.is_empty()))
        }
    }
}

const METHODS: &[&str] = &["get", "put", "post", "delete", "patch", "head", "options"];

/// What is the same for every operation (see the module's doc).
fn finish(doc: &mut Value) {
    // Axum's catch-all `{*key}` is the template `{key}` in OpenAPI.
    let paths = doc["paths"].as_object_mut().expect("paths");
    let renamed: Map<String, Value> = std::mem::take(paths)
        .into_iter()
        .map(|(p, v)| (p.replace("{*", "{"), v))
        .collect();
    *paths = renamed;

    let mut statuses = BTreeSet::new();
    for (path, item) in doc["paths"].as_object_mut().expect("paths") {
        let item = item.as_object_mut().expect("path item");
        for method in METHODS {
            let Some(op) = item.get_mut(*method) else {
                continue;
            };
            body_not_null(op);
            let authenticated = is_authenticated(op);
            let has_body = op.get("requestBody").is_some();
            let has_params = op.get("parameters").is_some();
            let responses = op["responses"].as_object_mut().expect("responses");
            let mut common: Vec<(u16, &str)> = vec![
                (500, "internal: Orb failed"),
                (
                    503,
                    "overloaded (retry after `Retry-After`), shutting_down (retry on another node)",
                ),
            ];
            if authenticated {
                common.push((
                    401,
                    "token_missing, token_invalid, token_expired, token_revoked (`WWW-Authenticate: Bearer`)",
                ));
                common.push((403, "permission_denied: the token does not allow this"));
                common.push((429, "rate_limited: the token's rate (`Retry-After`)"));
            }
            if has_body || has_params {
                common.push((400, "invalid_request: a malformed body, parameter or query"));
            }
            if has_body {
                common.push((413, "too_large: the body is over this route's limit"));
            }
            for (status, description) in common {
                responses
                    .entry(status.to_string())
                    .or_insert_with(|| json!({ "description": description }));
            }
            for (status, response) in responses.iter_mut() {
                let Ok(code) = status.parse::<u16>() else {
                    continue;
                };
                if code >= 400 {
                    statuses.insert(code);
                    response["content"] = json!({
                        "application/json": {
                            "schema": { "$ref": format!("#/components/schemas/Error{code}") }
                        }
                    });
                }
            }
            let _ = path;
        }
        // CORS: the node answers every preflight itself, no token needed.
        if !item.contains_key("options") {
            let mut op = preflight();
            let path_params: Vec<Value> = METHODS
                .iter()
                .filter_map(|m| item.get(*m))
                .flat_map(|o| o["parameters"].as_array().cloned().unwrap_or_default())
                .filter(|p| p["in"] == "path")
                // The preflight answers any path.
                .map(|mut p| {
                    p["schema"] = json!({ "type": "string" });
                    p.as_object_mut().expect("parameter").remove("example");
                    p
                })
                .fold(Vec::new(), |mut acc, p| {
                    if !acc.iter().any(|q: &Value| q["name"] == p["name"]) {
                        acc.push(p);
                    }
                    acc
                });
            op["parameters"]
                .as_array_mut()
                .expect("parameters")
                .extend(path_params);
            item.insert("options".into(), op);
        }
    }
    let schemas = doc["components"]["schemas"]
        .as_object_mut()
        .expect("schemas");
    for status in statuses {
        let codes = codes_of(status);
        schemas.insert(
            format!("Error{status}"),
            json!({
                "description": format!("An error answered with status {status}: `code` is one of {}", codes.join(", ")),
                "type": "object",
                "required": ["error"],
                "properties": {
                    "error": {
                        "type": "object",
                        "required": ["code", "message"],
                        "properties": {
                            "code": { "type": "string", "enum": codes },
                            "message": { "type": "string", "description": "What went wrong and what to do" },
                            "details": { "description": "Structured details: the parameter, the limit, the exports…" }
                        }
                    }
                }
            }),
        );
    }
    doc["components"]["securitySchemes"] = json!({
        "bearer": {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "Biscuit",
            "description": "An Orb token (Biscuit, base64url): an account's private token, or a public token minted from it (POST /v1/tokens), possibly attenuated offline"
        }
    });
    doc["security"] = json!([{ "bearer": [] }]);
    refine(&mut doc["components"]["schemas"]);
    refine_parameters(doc);
    // One description over several methods (`/http/…`) gives each method
    // the same operationId: suffix the method.
    for item in doc["paths"].as_object_mut().expect("paths").values_mut() {
        let item = item.as_object_mut().expect("path item");
        let mut count = std::collections::BTreeMap::new();
        for op in item.values() {
            if let Some(id) = op["operationId"].as_str() {
                *count.entry(id.to_string()).or_insert(0) += 1;
            }
        }
        for (method, op) in item.iter_mut() {
            if let Some(id) = op["operationId"].as_str()
                && count[id] > 1
            {
                op["operationId"] = json!(format!("{id}_{method}"));
            }
        }
    }
    links(doc);
}

/// What a query parameter's attribute cannot say: the items of a list.
fn refine_parameters(doc: &mut Value) {
    let params = doc["paths"]["/v1/functions"]["post"]["parameters"]
        .as_array_mut()
        .expect("the upload's parameters");
    let require = params
        .iter_mut()
        .find(|p| p["name"] == "require")
        .expect("the upload's `require`");
    require["schema"]["items"]["pattern"] = json!(orb_core::attribute::PATTERN);
    require["schema"]["maxItems"] = json!(crate::services::net::MAX_SEEDERS);
}

/// What the types' fields cannot say by themselves: host patterns in lists,
/// the time zones the scheduler knows, and which fields go together.
fn refine(schemas: &mut Value) {
    let hosts = json!({ "type": "string", "pattern": HOST_PATTERN, "maxLength": 253, "example": "api.example.com" });
    for (schema, field) in [
        ("Policy", "hosts"),
        ("SecretBody", "hosts"),
        ("MintRequest", "outbound_hosts"),
    ] {
        let list = &mut schemas[schema]["properties"][field];
        assert!(list.is_object(), "{schema}.{field}");
        list["items"] = hosts.clone();
        list["maxItems"] = json!(256);
    }
    let zones: Vec<&str> = chrono_tz::TZ_VARIANTS.iter().map(|z| z.name()).collect();
    schemas["ScheduleRequest"]["properties"]["timezone"]["enum"] = json!(zones);
    // A call (`function` and `export`) or a trigger's firing, on an
    // interval or a cron pattern.
    let text = json!({ "type": "string", "minLength": 1 });
    schemas["ScheduleRequest"]["allOf"] = json!([
        { "oneOf": [
            { "required": ["function", "export"], "properties": { "function": text, "export": text, "trigger": { "type": "null" } } },
            { "required": ["trigger"], "properties": {
                "trigger": text,
                // The call's fields go on the trigger's rules.
                "function": { "maxLength": 0 }, "export": { "maxLength": 0 },
                "params": { "type": "null" }, "globals": { "maxProperties": 0 },
                "namespace": { "type": "null" }, "write_to": { "type": "null" }
            } }
        ] },
        { "oneOf": [
            { "required": ["every"], "properties": { "every": { "type": "string" } } },
            { "required": ["cron"], "properties": { "cron": { "type": "string" } } }
        ] }
    ]);
    // By hash or alias, or the component itself.
    schemas["InvokeRequest"]["oneOf"] = json!([
        { "required": ["function"], "properties": { "function": { "type": "string", "minLength": 1 } } },
        { "required": ["component"], "properties": { "component": { "type": "string", "minLength": 1 } } }
    ]);
    schemas["InvokeRequest"]["properties"]["component"]["contentEncoding"] = json!("base64");
    schemas["InvokeRequest"]["properties"]["component"]["pattern"] =
        json!("^([A-Za-z0-9+/]{4})*([A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$");
    // `set` and `write_to` write to the call's namespace.
    schemas["InvokeRequest"]["allOf"] = json!([{ "anyOf": [
        { "properties": { "set": { "type": "null" }, "write_to": { "type": "null" } } },
        { "required": ["namespace"], "properties": { "namespace": { "type": "string" } } }
    ] }]);
    // A prefix is of keys in a namespace.
    schemas["TriggerRequest"]["anyOf"] = json!([
        { "properties": { "prefix": { "type": "null" } } },
        { "required": ["namespace"], "properties": { "namespace": { "type": "string" } } }
    ]);
    for schema in [
        "InvokeRequest",
        "ScheduleRequest",
        "RuleRequest",
        "TriggerRequest",
    ] {
        let ns = &mut schemas[schema]["properties"]["namespace"];
        assert!(ns.is_object(), "{schema}.namespace");
        ns["pattern"] = json!(NAME_PATTERN);
        if let Some(w) = schemas[schema]["properties"].get_mut("write_to") {
            w["minLength"] = json!(1);
            w["maxLength"] = json!(1024);
            w["pattern"] = json!("^[^\\u0000]+$");
        }
    }
    schemas["InvokeRequest"]["properties"]["set"]["propertyNames"] =
        json!({ "minLength": 1, "maxLength": 1024, "pattern": "^[^\\u0000]+$" });
    let period = r"[1-9][0-9]{0,3}(s|m|h)";
    schemas["MintRequest"]["properties"]["rate"] = json!({
        "description": "Calls per period: `\"5/60s\"` or `{\"count\": 5, \"per\": \"60s\"}`",
        "oneOf": [
            { "type": "null" },
            { "type": "string", "pattern": format!("^[1-9][0-9]{{0,5}}/{period}$") },
            { "type": "object", "required": ["count", "per"], "additionalProperties": false, "properties": {
                "count": { "type": "integer", "minimum": 1, "maximum": u32::MAX },
                "per": { "anyOf": [
                    { "type": "string", "pattern": format!("^{period}$") },
                    { "type": "integer", "minimum": 1, "description": "seconds" } ] } } }
        ]
    });
    schemas["MintRequest"]["properties"]["schedules"] = json!({
        "description": "Schedules it may create: `\"1@30s\"` or `{\"max\": 1, \"min_interval\": \"30s\"}`",
        "oneOf": [
            { "type": "null" },
            { "type": "string", "pattern": format!("^[1-9][0-9]{{0,3}}@{period}$") },
            { "type": "object", "required": ["max", "min_interval"], "additionalProperties": false, "properties": {
                "max": { "type": "integer", "minimum": 1, "maximum": u32::MAX },
                "min_interval": { "anyOf": [
                    { "type": "string", "pattern": format!("^{period}$") },
                    { "type": "integer", "minimum": 0, "description": "seconds" } ] } } }
        ]
    });
    // By hash only (aliases are resolved at call time, so a grant names
    // the code itself).
    schemas["MintRequest"]["properties"]["functions"]["items"] =
        json!({ "type": "string", "pattern": "^(sha256:)?[0-9a-fA-F]{64}$" });
    schemas["MintRequest"]["properties"]["namespaces"] = json!({
        "description": "Namespaces the token may use: `r`, `w` or `rw` each",
        "type": "object",
        "propertyNames": { "pattern": NAME_PATTERN },
        "additionalProperties": { "type": "string", "enum": ["r", "w", "rw"] },
        "example": { "home": "rw" }
    });
    schemas["MintRequest"]["properties"]["expires"]["pattern"] =
        json!(r"^[1-9][0-9]{0,3}(s|m|h|d)$");
    schemas["AliasIn"]["anyOf"] = json!([
        { "required": ["function"] },
        { "required": ["steps"] }
    ]);
    // The formatted secret is a header value: visible ASCII.
    schemas["SecretBody"]["properties"]["value"]["pattern"] = json!("^[!-~]{1,8192}$");
    schemas["SecretBody"]["properties"]["format"]["pattern"] =
        json!(r"^([!-~][ -~]{0,60})?\{\}([ -~]{0,60}[!-~])?$");
    schemas["SecretBody"]["properties"]["header"]["pattern"] =
        json!(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,64}$");
}

/// A request body that may be left out is not `null`: utoipa writes an
/// optional body's schema as "the type or null".
fn body_not_null(op: &mut Value) {
    let Some(content) = op
        .get_mut("requestBody")
        .and_then(|b| b.get_mut("content"))
        .and_then(Value::as_object_mut)
    else {
        return;
    };
    for media in content.values_mut() {
        let schema = &mut media["schema"];
        if let Some(alts) = schema["oneOf"].as_array() {
            let kept: Vec<Value> = alts
                .iter()
                .filter(|a| a["type"] != "null")
                .cloned()
                .collect();
            if kept.len() == 1 && kept.len() < alts.len() {
                *schema = kept.into_iter().next().expect("one");
            }
        }
        if let Some(types) = schema["type"].as_array() {
            let kept: Vec<Value> = types.iter().filter(|t| *t != "null").cloned().collect();
            schema["type"] = if kept.len() == 1 {
                kept[0].clone()
            } else {
                json!(kept)
            };
        }
    }
}

/// A namespace, alias, trigger or rule name.
const NAME_PATTERN: &str = r"^[a-z0-9][a-z0-9._-]{0,63}$";

/// The CORS preflight of a path.
fn preflight() -> Value {
    json!({
        "tags": ["cors"],
        "summary": "CORS preflight",
        "description": "Answered by the node itself for any path, without a token: 200, an empty body, and `Access-Control-Allow-Origin`/`-Methods`/`-Headers` mirroring the request (any origin may call the API with a token; browsers use this through the browser client `/sdk/orb.js`).",
        "security": [],
        "parameters": [
            { "name": "Origin", "in": "header", "required": false, "schema": { "type": "string" }, "example": "https://example.com" },
            { "name": "Access-Control-Request-Method", "in": "header", "required": false, "schema": { "type": "string" }, "example": "POST" }
        ],
        "responses": { "200": { "description": "The preflight's answer: `Access-Control-Allow-*` headers, no body" } }
    })
}

/// Links: what a creating operation answers feeds the operations that read,
/// change and delete it (Schemathesis' stateful phase follows them).
fn links(doc: &mut Value) {
    // (from path, method, status, link name, to operationId, parameters)
    type Link<'a> = (
        &'a str,
        &'a str,
        &'a str,
        &'a str,
        &'a str,
        &'a [(&'a str, &'a str)],
    );
    let table: &[Link] = &[
        (
            "/v1/functions",
            "post",
            "201",
            "ShowFunction",
            "show_function",
            &[("target", "$response.body#/hash")],
        ),
        (
            "/v1/functions",
            "post",
            "201",
            "DeleteFunction",
            "delete_function",
            &[("target", "$response.body#/hash")],
        ),
        (
            "/v1/functions",
            "post",
            "200",
            "ShowFunction",
            "show_function",
            &[("target", "$response.body#/hash")],
        ),
        (
            "/v1/invoke",
            "post",
            "200",
            "ShowActivation",
            "show_activation",
            &[("id", "$response.body#/activation")],
        ),
        (
            "/v1/invoke",
            "post",
            "202",
            "ShowActivation",
            "show_activation",
            &[("id", "$response.body#/activation")],
        ),
        (
            "/v1/functions/{target}/{export}",
            "post",
            "200",
            "ShowActivation",
            "show_activation",
            &[("id", "$response.body#/activation")],
        ),
        (
            "/v1/aliases/{name}",
            "put",
            "200",
            "ShowAlias",
            "show_alias",
            &[("name", "$request.path.name")],
        ),
        (
            "/v1/aliases/{name}",
            "put",
            "200",
            "RollbackAlias",
            "rollback_alias",
            &[("name", "$request.path.name")],
        ),
        (
            "/v1/aliases/{name}",
            "put",
            "200",
            "DeleteAlias",
            "delete_alias",
            &[("name", "$request.path.name")],
        ),
        (
            "/v1/schedules",
            "post",
            "201",
            "ShowSchedule",
            "show_schedule",
            &[("id", "$response.body#/id")],
        ),
        (
            "/v1/schedules",
            "post",
            "201",
            "DeleteSchedule",
            "delete_schedule",
            &[("id", "$response.body#/id")],
        ),
        (
            "/v1/namespaces/{ns}/keys/{key}",
            "put",
            "200",
            "GetKey",
            "get_key",
            &[("ns", "$request.path.ns"), ("key", "$request.path.key")],
        ),
        (
            "/v1/namespaces/{ns}/keys/{key}",
            "put",
            "200",
            "DeleteKey",
            "delete_key",
            &[("ns", "$request.path.ns"), ("key", "$request.path.key")],
        ),
        (
            "/v1/namespaces/{ns}/keys/{key}",
            "put",
            "200",
            "ListKeys",
            "list_keys",
            &[("ns", "$request.path.ns")],
        ),
        (
            "/v1/namespaces/{ns}/keys/{key}",
            "put",
            "200",
            "ExportNamespace",
            "export_namespace",
            &[("ns", "$request.path.ns")],
        ),
        (
            "/v1/namespaces/{ns}/whitelist",
            "put",
            "200",
            "GetWhitelist",
            "get_whitelist",
            &[("ns", "$request.path.ns")],
        ),
        (
            "/v1/triggers/{name}",
            "put",
            "201",
            "ShowTrigger",
            "show_trigger",
            &[("name", "$request.path.name")],
        ),
        (
            "/v1/triggers/{name}",
            "put",
            "201",
            "FireTrigger",
            "fire_trigger",
            &[("name", "$request.path.name")],
        ),
        (
            "/v1/triggers/{name}",
            "put",
            "201",
            "DeleteTrigger",
            "delete_trigger",
            &[("name", "$request.path.name")],
        ),
        (
            "/v1/rules/{name}",
            "put",
            "201",
            "ShowRule",
            "show_rule",
            &[("name", "$request.path.name")],
        ),
        (
            "/v1/rules/{name}",
            "put",
            "201",
            "DeleteRule",
            "delete_rule",
            &[("name", "$request.path.name")],
        ),
        (
            "/kappa",
            "put",
            "201",
            "SendToKappa",
            "send_to_kappa",
            &[("ref", "$response.body#/ref")],
        ),
        (
            "/kappa",
            "put",
            "201",
            "ReceiveFromKappa",
            "receive_from_kappa",
            &[("ref", "$response.body#/ref")],
        ),
        (
            "/kappa",
            "put",
            "201",
            "DeleteKappa",
            "delete_kappa",
            &[("ref", "$response.body#/ref")],
        ),
        (
            "/v1/secrets/{name}",
            "put",
            "201",
            "DeleteSecret",
            "delete_secret",
            &[("name", "$request.path.name")],
        ),
    ];
    for (path, method, status, name, to, params) in table {
        let response = &mut doc["paths"][*path][*method]["responses"][*status];
        assert!(
            response.is_object(),
            "a link from {method} {path} {status}, which is not documented"
        );
        let parameters: Map<String, Value> = params
            .iter()
            .map(|(k, v)| (k.to_string(), json!(v)))
            .collect();
        response["links"][*name] = json!({ "operationId": to, "parameters": parameters });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn doc() -> Value {
        serde_json::from_str(document()).unwrap()
    }

    /// (method, path) of every operation in the document.
    fn operations(doc: &Value) -> BTreeSet<(String, String)> {
        let mut out = BTreeSet::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for m in METHODS {
                if item.get(*m).is_some() {
                    out.insert((m.to_string(), path.clone()));
                }
            }
        }
        out
    }

    /// The handlers' sources, without comments.
    fn sources() -> BTreeMap<String, String> {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/handlers");
        std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "rs"))
            // This file names what it looks for.
            .filter(|p| !p.ends_with("openapi.rs"))
            .map(|p| {
                let text = std::fs::read_to_string(&p).unwrap();
                let code: Vec<&str> = text
                    .lines()
                    .map(|l| l.split("//").next().unwrap_or_default())
                    .collect();
                (
                    p.file_name().unwrap().to_string_lossy().to_string(),
                    code.join("\n"),
                )
            })
            .collect()
    }

    /// Router → document: every route is registered through
    /// `utoipa_axum::routes!` (which takes its path and methods from the
    /// handler's `#[utoipa::path]`, so it is in the document by
    /// construction), except the listed catch-alls, each described here.
    #[test]
    fn every_route_of_the_router_is_documented() {
        let mut plain = Vec::new();
        for (file, code) in sources() {
            let mut rest = code.as_str();
            while let Some(i) = rest.find(".route(") {
                rest = &rest[i + ".route(".len()..];
                let path = rest
                    .trim_start()
                    .strip_prefix('"')
                    .and_then(|r| r.split('"').next())
                    .unwrap_or("<not a literal>")
                    .to_string();
                plain.push((file.clone(), path));
            }
            for word in [
                "axum::routing::",
                "routing::get",
                "routing::post",
                "routing::put",
            ] {
                assert!(
                    !code.contains(word) || file == "mod.rs",
                    "handlers/{file} builds an axum route by hand (`{word}`): register it with `.routes(routes!(handler))` and describe it with `#[utoipa::path]`"
                );
            }
        }
        let undocumented: Vec<_> = plain
            .iter()
            .filter(|(_, p)| !UNDOCUMENTED_ROUTES.contains(&p.as_str()))
            .collect();
        assert!(
            undocumented.is_empty(),
            "routes registered with `.route(…)` are not in /v1/openapi.json: {undocumented:?}; register them with `.routes(routes!(handler))` and a `#[utoipa::path]` on the handler"
        );
        assert_eq!(
            plain.len(),
            UNDOCUMENTED_ROUTES.len(),
            "the catch-alls: {plain:?}"
        );
        let ops = operations(&doc());
        for m in ["get", "post", "put", "patch", "delete", "head", "options"] {
            for p in ["/http/{target}", "/http/{target}/{rest}"] {
                assert!(ops.contains(&(m.into(), p.into())), "{m} {p}");
            }
        }
    }

    /// Links and generated clients name operations by `operationId`: each
    /// is used once (utoipa takes the handler's name unless told).
    #[test]
    fn operation_ids_are_unique() {
        let doc = doc();
        let mut seen = BTreeMap::new();
        for (path, item) in doc["paths"].as_object().expect("paths") {
            for (method, op) in item.as_object().expect("path item") {
                if let Some(id) = op["operationId"].as_str()
                    && let Some(first) = seen.insert(id.to_string(), format!("{method} {path}"))
                {
                    panic!("operationId `{id}` is on {first} and {method} {path}");
                }
            }
        }
    }

    /// Document → router: every documented operation reaches a handler
    /// (not the fallback's `not_found` nor `method_not_allowed`).
    #[tokio::test]
    async fn every_documented_operation_is_served() {
        use tower::ServiceExt as _;
        let dir = tempfile::tempdir().unwrap();
        let node = crate::Node::open(crate::NodeConfig {
            data_dir: dir.path().into(),
            ..Default::default()
        })
        .unwrap();
        let router = super::super::router(node);
        let doc = doc();
        let ops = operations(&doc);
        assert!(ops.len() >= 70, "{}", ops.len());
        for (method, path) in &ops {
            let uri = path
                .replace(
                    "{target}",
                    "sha256:2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae",
                )
                .replace(['{', '}'], "");
            let req = axum::http::Request::builder()
                .method(method.to_uppercase().as_str())
                .uri(&uri)
                .body(axum::body::Body::empty())
                .unwrap();
            let resp = router.clone().oneshot(req).await.unwrap();
            let status = resp.status().as_u16();
            let body = axum::body::to_bytes(resp.into_body(), 1 << 20)
                .await
                .unwrap();
            let text = String::from_utf8_lossy(&body);
            assert!(
                status != 405 && !text.contains("no such route"),
                "{method} {uri} is documented but not routed: {status} {text}"
            );
        }
    }

    /// Each error status's schema lists exactly the codes that map to it,
    /// and every operation says what its errors look like.
    #[test]
    fn errors_are_described_per_status() {
        let doc = doc();
        for code in ErrorCode::ALL {
            if let Some(schema) =
                doc["components"]["schemas"].get(format!("Error{}", code.status()))
            {
                let codes = &schema["properties"]["error"]["properties"]["code"]["enum"];
                assert!(
                    codes.as_array().unwrap().contains(&json!(code.as_str())),
                    "{code}"
                );
            }
        }
        for (method, path) in operations(&doc) {
            let op = &doc["paths"][&path][&method];
            let responses = op["responses"].as_object().unwrap();
            assert!(!responses.contains_key("default"), "{method} {path}");
            if method == "options" {
                assert_eq!(
                    op["security"],
                    json!([]),
                    "{path}: a preflight needs no token"
                );
                continue;
            }
            for status in ["500", "503"] {
                assert!(responses.contains_key(status), "{method} {path} {status}");
            }
            if is_authenticated(op) {
                assert!(responses.contains_key("401"), "{method} {path}");
            }
        }
    }
}
