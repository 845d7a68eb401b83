use crate::host::{self, HostState, LogSink, MemoryLimiter};
use crate::values::{json_to_val, type_name, val_to_json};
use orb_core::{ErrorCode, ExportInfo, FunctionId, Limits, OrbError, ParamInfo};
use serde_json::{Map, Value as Json, json};
use std::collections::BTreeMap;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};
use wasmtime::component::types::ComponentItem;
use wasmtime::component::{Component, ComponentExportIndex, InstancePre, Linker, Type, Val};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store, Trap};
use wasmtime_wasi::WasiCtxBuilder;

/// Bytes of each pooled memory and table reset in place (not decommitted)
/// between calls.
const KEEP_RESIDENT: usize = 1 << 20;

/// How often the epoch ticks; the granularity of timeouts.
const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Engine-wide settings. Per-call limits can be lowered per call.
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// Default per-call limits. `memory_bytes` is also the pool's slot size.
    pub limits: Limits,
    /// Where compiled artifacts are cached; `None` disables the disk cache.
    pub cache_dir: Option<PathBuf>,
    /// Instances that may exist at once (pooling allocator size).
    pub max_instances: u32,
    /// Limits of outbound HTTP (what a call may reach is per call).
    pub outbound: crate::OutboundConfig,
    /// Which meters the engine compiles in (both on in every node).
    pub metering: Metering,
    /// Linear memories guarded by virtual memory (guard pages, bounds
    /// checks by the MMU) instead of explicit bounds checks compiled into
    /// the code. Guard pages make memory-heavy loops faster (7–17 %) and
    /// keep calls fast with many thousands of functions loaded (P7), but
    /// cost an `mprotect` (and a TLB shootdown on every core) whenever an
    /// instance that grew its memory is recycled — per request for most
    /// guests. Off by default: Orb runs many short calls (BENCHMARKS.md,
    /// P1 and P3). Both are equally safe; compiled artifacts are cached per
    /// setting.
    pub guard_pages: bool,
    /// Authenticates compiled artifacts in the cache (HMAC-SHA256 over the
    /// function id and the artifact, appended to the file): one that fails
    /// the check is recompiled, never loaded. `None`: a key kept in the
    /// cache's engine folder (`mac.key`, mode 0600) is used.
    pub artifact_key: Option<ArtifactKey>,
}

/// The key compiled artifacts are authenticated with.
#[derive(Clone)]
pub struct ArtifactKey(pub [u8; 32]);

impl std::fmt::Debug for ArtifactKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ArtifactKey(…)")
    }
}

/// Bytes of the MAC at the end of a cached artifact.
const MAC_BYTES: usize = 32;

impl Default for RuntimeConfig {
    fn default() -> Self {
        Self {
            limits: Limits::default(),
            cache_dir: None,
            max_instances: 200,
            outbound: Default::default(),
            metering: Metering::default(),
            guard_pages: false,
            artifact_key: None,
        }
    }
}

/// The engine's meters. Nodes keep both on; turning one off exists to
/// measure what it costs (`cargo bench -p orb-runtime --bench call`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Metering {
    /// Epoch interruption: wall-clock timeouts and yielding to tokio. Off
    /// means a call is never stopped by its `timeout_ms`.
    pub epoch: bool,
    /// Fuel accounting: `fuel` in activations and fuel limits. Off means
    /// fuel limits are not enforced and the fuel used reads 0.
    pub fuel: bool,
}

impl Default for Metering {
    fn default() -> Self {
        Self {
            epoch: true,
            fuel: true,
        }
    }
}

/// Where a loaded function came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheSource {
    /// Already in this process.
    Memory,
    /// A compiled artifact from the disk cache (no compilation).
    Disk,
    /// Compiled now (and written to the disk cache).
    Compiled,
}

struct ExportSig {
    info: ExportInfo,
    /// `wasi:http/incoming-handler#handle`: served over HTTP, not callable with JSON.
    http: bool,
    index: ComponentExportIndex,
    params: Vec<(String, Type)>,
    results: Vec<Type>,
}

/// A compiled, linked function ready to be instantiated.
pub struct LoadedFunction {
    id: FunctionId,
    pub(crate) pre: InstancePre<HostState>,
    exports: Vec<ExportSig>,
    /// Set when the component exports `wasi:http/incoming-handler@0.2.x`.
    pub(crate) proxy: Option<wasmtime_wasi_http::p2::bindings::ProxyPre<HostState>>,
}

impl LoadedFunction {
    pub fn id(&self) -> &FunctionId {
        &self.id
    }

    /// Whether the component is an HTTP function: it exports
    /// `wasi:http/incoming-handler@0.2.x` (served by [`Runtime::serve_http`]).
    pub fn is_http(&self) -> bool {
        self.proxy.is_some()
    }

    /// The callable exports with their signatures.
    pub fn exports(&self) -> Vec<ExportInfo> {
        self.exports.iter().map(|e| e.info.clone()).collect()
    }

    /// The parameter names of an export (`export_not_found` if none).
    pub fn param_names(&self, export: &str) -> Result<Vec<String>, OrbError> {
        Ok(self
            .export(export)?
            .params
            .iter()
            .map(|(n, _)| n.clone())
            .collect())
    }

    fn export(&self, name: &str) -> Result<&ExportSig, OrbError> {
        // Exact name first; then a unique short name for interface exports.
        if let Some(e) = self.exports.iter().find(|e| e.info.name == name) {
            return not_http(e);
        }
        let mut short = self
            .exports
            .iter()
            .filter(|e| e.info.name.rsplit_once('#').is_some_and(|(_, f)| f == name));
        if let (Some(e), None) = (short.next(), short.next()) {
            return not_http(e);
        }
        let names: Vec<&str> = self.exports.iter().map(|e| e.info.name.as_str()).collect();
        Err(OrbError::new(
            ErrorCode::ExportNotFound,
            format!(
                "function {} has no export `{name}`; its exports are: {}",
                self.id,
                if names.is_empty() {
                    "(none)".to_string()
                } else {
                    names.join(", ")
                }
            ),
        )
        .with_details(json!({ "export": name, "exports": names })))
    }

    /// Parameters given as text (a URL query) typed by the export's
    /// signature: text goes as is to `string`, `char`, `enum` and
    /// `option<string>` parameters and is parsed as JSON for the others (an
    /// unparsable value stays text and fails the type check with a clear
    /// message). Pairs naming no parameter are returned apart.
    pub fn params_from_text(
        &self,
        export: &str,
        pairs: Vec<(String, String)>,
    ) -> Result<(Map<String, Json>, TextPairs), OrbError> {
        let sig = self.export(export)?;
        let mut params = Map::new();
        let mut rest = Vec::new();
        for (name, text) in pairs {
            let Some((_, ty)) = sig.params.iter().find(|(n, _)| *n == name) else {
                rest.push((name, text));
                continue;
            };
            let textual = match ty {
                Type::String | Type::Char | Type::Enum(_) => true,
                Type::Option(o) => matches!(o.ty(), Type::String | Type::Char | Type::Enum(_)),
                _ => false,
            };
            let value = if textual {
                Json::String(text)
            } else {
                serde_json::from_str(&text).unwrap_or(Json::String(text))
            };
            params.insert(name, value);
        }
        Ok((params, rest))
    }

    /// The plainest parameters of `export` ([`crate::values::sample_json`]
    /// for each), for a sample call; `None` when one of them cannot be
    /// given as JSON (or the export is not a callable one).
    pub fn sample_params(&self, export: &str) -> Option<Json> {
        let sig = self.export(export).ok()?;
        let mut obj = Map::new();
        for (name, ty) in &sig.params {
            obj.insert(name.clone(), crate::values::sample_json(ty)?);
        }
        Some(Json::Object(obj))
    }

    /// Checks `params` against the export's signature and converts them.
    /// Nothing runs; a mismatch is an `invalid_params` error naming the
    /// parameter and the expected type.
    pub fn check_params(&self, export: &str, params: &Json) -> Result<CheckedCall, OrbError> {
        let sig = self.export(export)?;
        let empty = Map::new();
        let obj = match params {
            Json::Null => &empty,
            Json::Object(o) => o,
            other => {
                return Err(OrbError::new(
                    ErrorCode::InvalidParams,
                    format!("params must be a JSON object keyed by parameter name, got {other}"),
                ));
            }
        };
        let sig_text = signature(&sig.info);
        if let Some(unknown) = obj
            .keys()
            .find(|k| !sig.params.iter().any(|(n, _)| n == *k))
        {
            return Err(OrbError::new(
                ErrorCode::InvalidParams,
                format!(
                    "unknown parameter `{unknown}`; `{}` takes {sig_text}",
                    sig.info.name
                ),
            )
            .with_details(
                json!({ "param": unknown, "reason": "unknown", "signature": sig_text }),
            ));
        }
        let mut vals = Vec::with_capacity(sig.params.len());
        for (name, ty) in &sig.params {
            let v = match obj.get(name) {
                Some(v) => v,
                None if matches!(ty, Type::Option(_)) => &Json::Null,
                None => {
                    return Err(OrbError::new(
                        ErrorCode::InvalidParams,
                        format!("missing parameter `{name}` of type {}", type_name(ty)),
                    )
                    .with_details(json!({
                        "param": name, "expected": type_name(ty), "reason": "missing",
                        "signature": sig_text,
                    })));
                }
            };
            let val = json_to_val(ty, v, name).map_err(|m| {
                OrbError::new(
                    ErrorCode::InvalidParams,
                    format!(
                        "parameter `{}`: expected {}, {}",
                        m.path, m.expected, m.message
                    ),
                )
                .with_details(json!({
                    "param": name, "path": m.path, "expected": m.expected,
                    "reason": "type", "signature": sig_text,
                }))
            })?;
            vals.push(val);
        }
        Ok(CheckedCall {
            export: sig.info.name.clone(),
            index: sig.index,
            params: vals,
            results: sig.results.len(),
        })
    }
}

/// The HTTP handler export takes resources, not JSON: it is served at
/// `/http/{alias-or-hash}/…`.
fn not_http(e: &ExportSig) -> Result<&ExportSig, OrbError> {
    if !e.http {
        return Ok(e);
    }
    Err(OrbError::new(
        ErrorCode::InvalidRequest,
        format!(
            "`{}` is an HTTP handler: send HTTP requests to /http/{{alias-or-hash}}/… instead of calling it with JSON",
            e.info.name
        ),
    )
    .with_details(json!({ "export": e.info.name, "http": true })))
}

fn signature(e: &ExportInfo) -> String {
    let params: Vec<String> = e
        .params
        .iter()
        .map(|p| format!("{}: {}", p.name, p.ty))
        .collect();
    match &e.result {
        Some(r) => format!("({}) -> {r}", params.join(", ")),
        None => format!("({})", params.join(", ")),
    }
}

/// `name=value` pairs as text.
pub type TextPairs = Vec<(String, String)>;

/// A call whose parameters passed the type check.
pub struct CheckedCall {
    export: String,
    index: ComponentExportIndex,
    params: Vec<Val>,
    results: usize,
}

impl CheckedCall {
    /// The resolved export name.
    pub fn export(&self) -> &str {
        &self.export
    }
}

/// Call-scoped inputs beyond parameters.
#[derive(Debug, Clone, Default)]
pub struct CallRequest {
    /// Readable through `wasi:config/store`.
    pub globals: Vec<(String, String)>,
    /// Overrides of the engine's default limits (only lower is honoured for memory).
    pub limits: Option<Limits>,
    /// The namespace the guest may open through `wasi:keyvalue`.
    pub kv: Option<crate::KvAccess>,
    /// Hosts the guest may reach over `wasi:http/outgoing-handler` and the
    /// secret headers to inject; `None` refuses every request.
    pub outbound: Option<Arc<crate::OutboundPolicy>>,
}

/// What came out of running a function.
#[derive(Debug)]
pub struct CallOutcome {
    /// The result as JSON, or the function's own failure (422 codes).
    pub result: Result<Json, OrbError>,
    pub logs: String,
    pub logs_truncated: bool,
    pub fuel: u64,
    pub duration: Duration,
    /// What the call read and wrote through `wasi:keyvalue` (commit it).
    pub kv: crate::KvTransaction,
    /// The outgoing HTTP requests it made or tried, in order.
    pub outbound: Vec<orb_core::OutboundRequest>,
}

impl CallOutcome {
    /// What the finished call commits, per namespace, taking it out of
    /// `kv`: on success everything it read and wrote, plus its result as
    /// the JSON value of `write_to` in the call's namespace; on failure only
    /// the call's `set` pairs. Namespaces with nothing to commit are left
    /// out (empty: nothing to commit).
    pub fn take_commit(
        &mut self,
        access: &crate::KvAccess,
        write_to: Option<&str>,
    ) -> Vec<(String, crate::NsTransaction)> {
        let tx = std::mem::take(&mut self.kv);
        let mut parts: BTreeMap<String, crate::NsTransaction> = match &self.result {
            Ok(_) => tx.namespaces,
            Err(_) => {
                let mut preset = crate::NsTransaction::default();
                for (k, v) in &access.preset {
                    preset.writes.insert(k.clone(), Some(v.clone()));
                }
                BTreeMap::from([(access.namespace.clone(), preset)])
            }
        };
        if let (Ok(value), Some(key)) = (&self.result, write_to) {
            let value = serde_json::to_vec(value).expect("JSON values serialise");
            parts
                .entry(access.namespace.clone())
                .or_default()
                .writes
                .insert(key.to_string(), Some(value));
        }
        parts.into_iter().filter(|(_, t)| !t.is_empty()).collect()
    }

    /// Whether the call sent an outgoing request (it may have changed
    /// something elsewhere: never re-run it).
    pub fn side_effect(&self) -> bool {
        self.outbound.iter().any(|r| r.sent())
    }
}

/// The sandbox. Cheap to share behind an `Arc`.
pub struct Runtime {
    engine: Engine,
    linker: Linker<HostState>,
    config: RuntimeConfig,
    engine_key: String,
    /// Authenticates cached artifacts (`None` without a disk cache).
    mac: Option<ring::hmac::Key>,
    loaded: RwLock<HashMap<FunctionId, Arc<LoadedFunction>>>,
    stop_ticker: Arc<AtomicBool>,
    outbound: Arc<crate::OutboundConfig>,
}

impl Drop for Runtime {
    fn drop(&mut self) {
        self.stop_ticker.store(true, Ordering::Relaxed);
    }
}

fn platform(msg: impl std::fmt::Display) -> OrbError {
    OrbError::new(ErrorCode::Internal, msg.to_string())
}

impl Runtime {
    /// Builds the engine, the linker and the epoch ticker (one thread per
    /// runtime, never one per call).
    pub fn new(config: RuntimeConfig) -> anyhow::Result<Self> {
        let mut pool = PoolingAllocationConfig::default();
        let n = config.max_instances.max(1);
        pool.total_component_instances(n)
            .total_core_instances(n.saturating_mul(8))
            .total_memories(n.saturating_mul(4))
            .total_tables(n.saturating_mul(8))
            .total_stacks(n)
            .max_core_instances_per_component(64)
            .max_memories_per_component(16)
            .max_tables_per_component(32)
            .table_elements(100_000)
            .max_component_instance_size(4 << 20)
            .max_core_instance_size(4 << 20)
            .max_memory_size(config.limits.memory_bytes as usize)
            .max_unused_warm_slots(n.min(100));
        // Reset slots by scanning for the pages a call dirtied
        // (`PAGEMAP_SCAN`, Linux ≥ 6.7; elsewhere `Auto` falls back) and
        // zeroing those in place, up to 1 MiB per memory and table, instead
        // of `madvise` + a page fault per touched page on the next call.
        // Measured: a warm Rust call 46 → 23 µs (BENCHMARKS.md, P3). Cost:
        // an idle warm slot may keep up to that much resident.
        pool.linear_memory_keep_resident(KEEP_RESIDENT)
            .table_keep_resident(KEEP_RESIDENT)
            .pagemap_scan(wasmtime::Enabled::Auto);

        let mut cfg = Config::new();
        // Orb runs WASI 0.2 (p2) guests, which never use the component
        // model's concurrency (`run_concurrent`, streams, futures). Without
        // it a `Store` carries no concurrent-task state to build and tear
        // down per call, and its drop builds no error value. Measured: a warm
        // no-op call 21.7 → 18.0 µs (Rust), 5.7 → 3.3 µs (WAT) (BENCHMARKS.md, P3).
        cfg.concurrency_support(false)
            .wasm_component_model(true)
            .epoch_interruption(config.metering.epoch)
            .consume_fuel(config.metering.fuel)
            .allocation_strategy(InstanceAllocationStrategy::Pooling(pool))
            .memory_reservation(config.limits.memory_bytes.max(1 << 20).next_power_of_two() * 2);
        if config.guard_pages {
            cfg.memory_guard_size(32 << 20);
        } else {
            // No guard region and no signal-based traps: Cranelift emits a
            // bounds check per access, and a recycled slot keeps its pages
            // read-write (wasmtime's `MemoryImageSlot::instantiate` only
            // re-protects memories that rely on virtual memory).
            cfg.signals_based_traps(false).memory_guard_size(0);
        }
        let engine = Engine::new(&cfg).map_err(anyhow::Error::from)?;

        let mut linker = Linker::new(&engine);
        host::add_to_linker(&mut linker).map_err(anyhow::Error::from)?;

        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        let engine_key = format!("{:016x}", hasher.finish());
        let mac = match (&config.cache_dir, &config.artifact_key) {
            (None, _) => None,
            (Some(_), Some(k)) => Some(k.0),
            (Some(dir), None) => Some(local_artifact_key(&dir.join(&engine_key))?),
        }
        .map(|k| ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &k));

        let stop = Arc::new(AtomicBool::new(false));
        let (ticker_engine, ticker_stop) = (engine.clone(), stop.clone());
        if config.metering.epoch {
            std::thread::Builder::new()
                .name("orb-epoch".into())
                .spawn(move || {
                    while !ticker_stop.load(Ordering::Relaxed) {
                        std::thread::sleep(EPOCH_TICK);
                        ticker_engine.increment_epoch();
                    }
                })?;
        }

        Ok(Self {
            engine,
            linker,
            outbound: Arc::new(config.outbound.clone()),
            config,
            engine_key,
            mac,
            loaded: RwLock::default(),
            stop_ticker: stop,
        })
    }

    /// Identifies the engine configuration (part of the compile-cache key).
    pub fn engine_key(&self) -> &str {
        &self.engine_key
    }

    /// Removes the artifacts that other engine configurations compiled into
    /// the cache (an earlier Orb, another memory limit, guard pages or
    /// meters): this engine can never load them, and nothing else would
    /// delete them. Call it only where this runtime owns the cache directory
    /// (a node's data folder).
    /// Returns how many configurations' folders went, and their bytes.
    pub fn prune_stale_artifacts(&self) -> std::io::Result<(usize, u64)> {
        let Some(dir) = &self.config.cache_dir else {
            return Ok((0, 0));
        };
        let entries = match std::fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((0, 0)),
            Err(e) => return Err(e),
        };
        let (mut removed, mut bytes) = (0, 0);
        for entry in entries {
            let entry = entry?;
            let name = entry.file_name();
            // Only folders named like an engine key (`{:016x}`) are ours.
            let is_key = name
                .to_str()
                .is_some_and(|n| n.len() == 16 && n.bytes().all(|b| b.is_ascii_hexdigit()));
            if !is_key || name == self.engine_key.as_str() || !entry.file_type()?.is_dir() {
                continue;
            }
            for file in std::fs::read_dir(entry.path())? {
                bytes += file?.metadata().map_or(0, |m| m.len());
            }
            std::fs::remove_dir_all(entry.path())?;
            removed += 1;
        }
        Ok((removed, bytes))
    }

    /// The default limits.
    pub fn limits(&self) -> &Limits {
        &self.config.limits
    }

    fn artifact_path(&self, id: &FunctionId) -> Option<PathBuf> {
        self.config
            .cache_dir
            .as_ref()
            .map(|d| d.join(&self.engine_key).join(format!("{}.cwasm", id.hex())))
    }

    /// The function if this process has it loaded.
    pub fn get_loaded(&self, id: &FunctionId) -> Option<Arc<LoadedFunction>> {
        self.loaded.read().expect("loaded lock").get(id).cloned()
    }

    /// Loads a function from memory or the disk cache without compiling.
    /// Blocking (maps a file); call from a blocking context.
    pub fn load_cached(&self, id: &FunctionId) -> Option<(Arc<LoadedFunction>, CacheSource)> {
        if let Some(f) = self.get_loaded(id) {
            return Some((f, CacheSource::Memory));
        }
        let path = self.artifact_path(id)?;
        let file = match std::fs::read(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "cannot read a compiled artifact");
                return None;
            }
        };
        // Authenticated before anything is loaded: a file that is not what
        // this node compiled for this id (tampered, truncated, another
        // function's, written without the key) is recompiled, never run.
        let artifact = match self.authenticated(id, &file) {
            Some(a) => a,
            None => {
                tracing::warn!(path = %path.display(), %id, "compiled artifact failed authentication; recompiling");
                let _ = std::fs::remove_file(&path);
                return None;
            }
        };
        // SAFETY: the bytes carry a valid MAC under this node's key over this
        // id, so they are what `Component::serialize` of this engine
        // configuration wrote for it (its directory is named after the
        // engine key).
        let component = match unsafe { Component::deserialize(&self.engine, artifact) } {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "discarding unusable compiled artifact");
                let _ = std::fs::remove_file(&path);
                return None;
            }
        };
        match self.link(id.clone(), component) {
            Ok(f) => Some((self.remember(f), CacheSource::Disk)),
            Err(e) => {
                tracing::warn!(%id, error = %e, "cached artifact failed to link");
                None
            }
        }
    }

    fn remember(&self, f: LoadedFunction) -> Arc<LoadedFunction> {
        let f = Arc::new(f);
        self.loaded
            .write()
            .expect("loaded lock")
            .insert(f.id.clone(), f.clone());
        f
    }

    /// Loads from cache or validates and compiles `bytes`. Blocking and CPU
    /// heavy; call from a blocking context. Errors are the caller's
    /// (`invalid_component`, `unsupported_import`) or Orb's.
    pub fn load(
        &self,
        id: &FunctionId,
        bytes: &[u8],
    ) -> Result<(Arc<LoadedFunction>, CacheSource), OrbError> {
        if let Some(hit) = self.load_cached(id) {
            return Ok(hit);
        }
        let component = self.compile(bytes)?;
        let f = self.link(id.clone(), component.clone())?;
        if let Some(path) = self.artifact_path(id)
            && let Some(key) = &self.mac
            && let Err(e) = write_artifact(&path, id, &component, key)
        {
            tracing::warn!(path = %path.display(), error = %e, "could not cache compiled artifact");
        }
        Ok((self.remember(f), CacheSource::Compiled))
    }

    fn compile(&self, bytes: &[u8]) -> Result<Component, OrbError> {
        if bytes.starts_with(b"\0asm\x01\0\0\0") {
            return Err(OrbError::new(
                ErrorCode::InvalidComponent,
                "this is a core WebAssembly module, not a component; Orb runs WASI 0.2 \
                 components (build for wasm32-wasip2, or wrap the module with \
                 `wasm-tools component new`)",
            ));
        }
        if !bytes.starts_with(b"\0asm\x0d\0\x01\0") {
            return Err(OrbError::new(
                ErrorCode::InvalidComponent,
                "not a WebAssembly component: the bytes do not start with the component header \
                 (\\0asm, layer 1)",
            ));
        }
        Component::new(&self.engine, bytes).map_err(|e| {
            let detail = error_chain(&e);
            // The engine runs without component-model concurrency (see
            // `Runtime::new`), so the async ABI fails validation here.
            let hint = if detail.contains("component model async") {
                "; Orb runs WASI 0.2 components, without the component model's async ABI \
                 (WASI 0.3): build for wasm32-wasip2"
            } else {
                ""
            };
            OrbError::new(
                ErrorCode::InvalidComponent,
                format!("the component failed validation: {detail}{hint}"),
            )
        })
    }

    fn link(&self, id: FunctionId, component: Component) -> Result<LoadedFunction, OrbError> {
        let pre = self.linker.instantiate_pre(&component).map_err(|e| {
            let ty = component.component_type();
            let unsupported: Vec<String> = ty
                .imports(&self.engine)
                .map(|(name, _)| name.to_string())
                .filter(|name| !host::SUPPORTED_PACKAGES.iter().any(|p| name.starts_with(p)))
                .collect();
            OrbError::new(
                ErrorCode::UnsupportedImport,
                format!(
                    "the component imports what this node does not provide: {}",
                    if unsupported.is_empty() {
                        error_chain(&e)
                    } else {
                        unsupported.join(", ")
                    }
                ),
            )
            .with_details(json!({
                "unsupported": unsupported,
                "supported": host::SUPPORTED_PACKAGES,
                "linker": error_chain(&e),
            }))
        })?;
        let exports = self.exports_of(&component)?;
        let proxy = exports
            .iter()
            .any(|e| e.http)
            .then(|| wasmtime_wasi_http::p2::bindings::ProxyPre::new(pre.clone()).ok())
            .flatten();
        Ok(LoadedFunction {
            id,
            pre,
            exports,
            proxy,
        })
    }

    fn exports_of(&self, component: &Component) -> Result<Vec<ExportSig>, OrbError> {
        let ty = component.component_type();
        let mut out = Vec::new();
        for (name, item) in ty.exports(&self.engine) {
            match item.ty {
                ComponentItem::ComponentFunc(f) => {
                    let index = component
                        .get_export_index(None, name)
                        .ok_or_else(|| platform(format!("export `{name}` has no index")))?;
                    out.push(sig(name.to_string(), index, &f));
                }
                ComponentItem::ComponentInstance(inst) => {
                    let Some(inst_idx) = component.get_export_index(None, name) else {
                        continue;
                    };
                    if is_http_handler(name) {
                        if let Some(index) = component.get_export_index(Some(&inst_idx), "handle") {
                            out.push(http_sig(name, index));
                        }
                        continue;
                    }
                    for (fname, fitem) in inst.exports(&self.engine) {
                        if let ComponentItem::ComponentFunc(f) = fitem.ty {
                            let Some(index) = component.get_export_index(Some(&inst_idx), fname)
                            else {
                                continue;
                            };
                            out.push(sig(format!("{name}#{fname}"), index, &f));
                        }
                    }
                }
                _ => {}
            }
        }
        Ok(out)
    }

    /// Removes a function from memory and from the disk cache.
    pub fn forget(&self, id: &FunctionId) {
        self.loaded.write().expect("loaded lock").remove(id);
        if let Some(path) = self.artifact_path(id) {
            let _ = std::fs::remove_file(path);
        }
    }

    /// Runs one checked call on a fresh instance. Errors before the guest
    /// runs are Orb's (`overloaded`, `internal`); the guest's own failures
    /// are in [`CallOutcome::result`].
    pub async fn call(
        &self,
        f: &LoadedFunction,
        call: CheckedCall,
        req: CallRequest,
    ) -> CallOutcome {
        let limits = req.limits.unwrap_or_else(|| self.config.limits.clone());
        let (state, logs) = self.host_state(&limits, req.globals, req.kv, req.outbound);
        let started = Instant::now();
        let mut store = Store::new(&self.engine, state);
        store.limiter(|s| &mut s.limiter);
        let fuel_budget = limits.fuel.unwrap_or(u64::MAX);
        // The epoch deadline stops a guest that computes; this stops one
        // that waits (on an outgoing request, say) past the same limit.
        let timeout = Duration::from_millis(limits.timeout_ms);
        let result = match tokio::time::timeout(
            timeout,
            self.run(&mut store, f, &call, &limits, fuel_budget),
        )
        .await
        {
            Ok(r) => r,
            Err(_) => Err(RunError::Guest(wasmtime::Error::new(Trap::Interrupt))),
        };
        let duration = started.elapsed();
        // Without fuel accounting (`Metering::fuel` off) the fuel used reads 0.
        let fuel = store
            .get_fuel()
            .map_or(0, |left| fuel_budget.saturating_sub(left));
        let memory_hit = store.data().limiter.hit;
        let kv = store.data_mut().kv.take().map(|k| k.tx).unwrap_or_default();
        let outbound_log = store.data().http_hooks.log.clone();
        drop(store);
        let outbound = crate::outbound::take_log(&outbound_log);
        let result = result.map_err(|e| classify(e, memory_hit, &limits));
        let (logs, logs_truncated) = logs.finish();
        CallOutcome {
            result,
            logs,
            logs_truncated,
            fuel,
            duration,
            kv,
            outbound,
        }
    }

    /// Per-call host state: WASI without host resources, the capped log
    /// sink, the memory limiter, `wasi:http` with outbound requests under
    /// `outbound` (none without a policy).
    pub(crate) fn host_state(
        &self,
        limits: &Limits,
        globals: Vec<(String, String)>,
        kv: Option<crate::KvAccess>,
        outbound: Option<Arc<crate::OutboundPolicy>>,
    ) -> (HostState, LogSink) {
        let logs = LogSink::new(limits.log_bytes as usize);
        let mut wasi = WasiCtxBuilder::new();
        wasi.stdout(logs.clone())
            .stderr(logs.clone())
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false);
        let state = HostState {
            wasi: wasi.build(),
            table: Default::default(),
            config: globals,
            logs: logs.clone(),
            limiter: MemoryLimiter {
                max_bytes: limits.memory_bytes.min(self.config.limits.memory_bytes) as usize,
                hit: false,
            },
            kv: kv.map(crate::kv::KvState::new),
            http: Default::default(),
            http_hooks: crate::outbound::OutboundHooks::new(outbound, self.outbound.clone()),
        };
        (state, logs)
    }

    pub(crate) fn engine(&self) -> &Engine {
        &self.engine
    }

    async fn run(
        &self,
        store: &mut Store<HostState>,
        f: &LoadedFunction,
        call: &CheckedCall,
        limits: &Limits,
        fuel_budget: u64,
    ) -> Result<Json, RunError> {
        arm(store, limits, fuel_budget)?;
        let instance = f
            .pre
            .instantiate_async(&mut *store)
            .await
            .map_err(instantiate_error)?;
        let func = instance
            .get_func(&mut *store, call.index)
            .ok_or_else(|| RunError::Platform(wasmtime::format_err!("export vanished")))?;
        let mut results = vec![Val::Bool(false); call.results];
        func.call_async(&mut *store, &call.params, &mut results)
            .await
            .map_err(RunError::Guest)?;
        match results.as_slice() {
            [] => Ok(Json::Null),
            [one] => val_to_json(one).map_err(RunError::BadResult),
            many => many
                .iter()
                .map(val_to_json)
                .collect::<Result<Vec<_>, _>>()
                .map(Json::Array)
                .map_err(RunError::BadResult),
        }
    }
}

/// Sets the fuel budget and the wall-clock deadline (checked every epoch
/// tick; the guest yields to tokio at each tick).
pub(crate) fn arm(
    store: &mut Store<HostState>,
    limits: &Limits,
    fuel_budget: u64,
) -> Result<(), RunError> {
    // `get_fuel` fails only when the engine counts no fuel (`Metering::fuel` off).
    if store.get_fuel().is_ok() {
        store.set_fuel(fuel_budget).map_err(RunError::Platform)?;
    }
    let deadline = Instant::now() + Duration::from_millis(limits.timeout_ms);
    store.set_epoch_deadline(1);
    store.epoch_deadline_callback(move |_| {
        if Instant::now() >= deadline {
            Ok(wasmtime::UpdateDeadline::Interrupt)
        } else {
            Ok(wasmtime::UpdateDeadline::Yield(1))
        }
    });
    Ok(())
}

pub(crate) fn instantiate_error(e: wasmtime::Error) -> RunError {
    if e.is::<wasmtime::PoolConcurrencyLimitError>() {
        RunError::Overloaded(e)
    } else {
        RunError::Guest(e)
    }
}

pub(crate) enum RunError {
    Guest(wasmtime::Error),
    Overloaded(wasmtime::Error),
    Platform(wasmtime::Error),
    BadResult(String),
}

pub(crate) fn classify(e: RunError, memory_hit: bool, limits: &Limits) -> OrbError {
    match e {
        RunError::Overloaded(e) => OrbError::new(
            ErrorCode::Overloaded,
            format!("the node has no free instance slot ({e}); retry shortly"),
        ),
        RunError::Platform(e) => platform(error_chain(&e)),
        RunError::BadResult(msg) => OrbError::new(ErrorCode::FunctionBadResult, msg),
        RunError::Guest(e) => {
            let trap = e.downcast_ref::<Trap>().copied();
            let detail = error_chain(&e);
            match trap {
                Some(Trap::Interrupt) => OrbError::new(
                    ErrorCode::FunctionTimeout,
                    format!(
                        "the function ran longer than its {} ms limit and was stopped",
                        limits.timeout_ms
                    ),
                )
                .with_details(json!({ "timeout_ms": limits.timeout_ms })),
                Some(Trap::OutOfFuel) => OrbError::new(
                    ErrorCode::FuelExhausted,
                    format!(
                        "the function used up its fuel limit of {}",
                        limits.fuel.unwrap_or(0)
                    ),
                )
                .with_details(json!({ "fuel_limit": limits.fuel })),
                _ if memory_hit => OrbError::new(
                    ErrorCode::MemoryLimit,
                    format!(
                        "the function tried to grow its memory past the {} MiB limit and failed",
                        limits.memory_bytes >> 20
                    ),
                )
                .with_details(json!({ "memory_limit_bytes": limits.memory_bytes, "trap": detail })),
                _ => OrbError::new(
                    ErrorCode::FunctionTrap,
                    format!(
                        "the function trapped ({}); see the activation's logs, and the `trap` detail for the backtrace",
                        trap.map_or_else(|| root_cause(&e), |t| t.to_string())
                    ),
                )
                .with_details(json!({ "trap": detail })),
            }
        }
    }
}

/// The innermost cause: what went wrong, without wasmtime's backtrace.
fn root_cause(e: &wasmtime::Error) -> String {
    e.chain()
        .last()
        .map_or_else(|| e.to_string(), |c| c.to_string())
}

pub(crate) fn error_chain(e: &wasmtime::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for cause in e.chain() {
        let s = cause.to_string();
        if !parts.iter().any(|p| p.contains(&s)) {
            parts.push(s);
        }
    }
    parts.join(": ")
}

/// `wasi:http/incoming-handler@0.2.x`, the export `wasmtime serve` and Spin run.
pub(crate) fn is_http_handler(name: &str) -> bool {
    name.strip_prefix("wasi:http/incoming-handler@0.2.")
        .is_some_and(|patch| !patch.is_empty())
}

/// The HTTP handler, described for `orb fn show` (its parameters are
/// resources, which have no JSON form).
fn http_sig(name: &str, index: ComponentExportIndex) -> ExportSig {
    let param = |n: &str, ty: &str| ParamInfo {
        name: n.to_string(),
        ty: ty.to_string(),
    };
    ExportSig {
        info: ExportInfo {
            name: format!("{name}#handle"),
            params: vec![
                param("request", "own<incoming-request>"),
                param("response-out", "own<response-outparam>"),
            ],
            result: None,
        },
        http: true,
        index,
        params: Vec::new(),
        results: Vec::new(),
    }
}

fn sig(
    name: String,
    index: ComponentExportIndex,
    f: &wasmtime::component::types::ComponentFunc,
) -> ExportSig {
    let params: Vec<(String, Type)> = f.params().map(|(n, t)| (n.to_string(), t)).collect();
    let results: Vec<Type> = f.results().collect();
    let result = match results.as_slice() {
        [] => None,
        [one] => Some(type_name(one)),
        many => Some(format!(
            "tuple<{}>",
            many.iter().map(type_name).collect::<Vec<_>>().join(", ")
        )),
    };
    let info = ExportInfo {
        name,
        params: params
            .iter()
            .map(|(n, t)| ParamInfo {
                name: n.clone(),
                ty: type_name(t),
            })
            .collect(),
        result,
    };
    ExportSig {
        info,
        http: false,
        index,
        params,
        results,
    }
}

/// The MAC of a cached artifact: over the function id, then the bytes.
fn artifact_mac(key: &ring::hmac::Key, id: &FunctionId, artifact: &[u8]) -> ring::hmac::Tag {
    let mut ctx = ring::hmac::Context::with_key(key);
    ctx.update(id.hex().as_bytes());
    ctx.update(artifact);
    ctx.sign()
}

/// The cache's own key when the embedder gives none: created once (0600).
fn local_artifact_key(dir: &Path) -> anyhow::Result<[u8; 32]> {
    let path = dir.join("mac.key");
    if let Ok(text) = std::fs::read_to_string(&path)
        && let Ok(bytes) = hex::decode(text.trim())
        && let Ok(key) = <[u8; 32]>::try_from(bytes.as_slice())
    {
        return Ok(key);
    }
    let mut key = [0u8; 32];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut key)
        .map_err(|_| anyhow::anyhow!("no randomness for the artifact key"))?;
    std::fs::create_dir_all(dir)?;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        opts.mode(0o600);
    }
    use std::io::Write as _;
    opts.open(&path)?.write_all(hex::encode(key).as_bytes())?;
    Ok(key)
}

impl Runtime {
    /// The artifact inside a cached file whose MAC checks out.
    fn authenticated<'a>(&self, id: &FunctionId, file: &'a [u8]) -> Option<&'a [u8]> {
        let key = self.mac.as_ref()?;
        let split = file.len().checked_sub(MAC_BYTES)?;
        let (artifact, tag) = file.split_at(split);
        let want = artifact_mac(key, id, artifact);
        // Constant time: every byte is compared whatever the first differs.
        let diff = want
            .as_ref()
            .iter()
            .zip(tag)
            .fold(0u8, |acc, (x, y)| acc | (x ^ y));
        (diff == 0).then_some(artifact)
    }
}

fn write_artifact(
    path: &Path,
    id: &FunctionId,
    component: &Component,
    key: &ring::hmac::Key,
) -> anyhow::Result<()> {
    let mut bytes = component.serialize().map_err(anyhow::Error::from)?;
    let tag = artifact_mac(key, id, &bytes);
    bytes.extend_from_slice(tag.as_ref());
    let dir = path.parent().expect("artifact path has a parent");
    std::fs::create_dir_all(dir)?;
    let tmp = dir.join(format!(
        ".{}.tmp{}",
        path.file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("artifact"),
        std::process::id()
    ));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}
