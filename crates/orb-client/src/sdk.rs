//! The SDK's call surface: what names a function ([`FunctionRef`]), where a
//! call runs ([`Execution`]) and the call builder ([`Call`]).

use crate::{CallOptions, Client, ClientError, Invocation};
use bytes::Bytes;
use orb_core::{ErrorCode, FunctionId, OrbError};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value as Json};
use std::path::{Path, PathBuf};

/// Where a call runs.
///
/// - `Remote` (the default): on the server, over HTTP.
/// - `Local`: in this process, with the same runtime a node uses
///   (`orb-runtime`) and a local namespace store in a folder (feature
///   `local`; [`Client::with_local`]). No server, no token.
/// - `Auto`: on the server; **only** when the node cannot take the call —
///   no connection (refused, timed out, name not resolved) or 503
///   `shutting_down`/`overloaded` ([`ClientError::is_unreachable`]) — the
///   call runs locally instead. Every other answer (a function error,
///   `code_not_whitelisted`, a bad token, …) is returned as is: it would be
///   the same locally, or it is a decision the server made. Each call tries
///   the server first; nothing is remembered between calls.
///
/// Namespace writes made by a local run stay in the local store: nothing is
/// synchronised with the server, in either direction (export the local
/// namespace with [`crate::local::LocalRunner::ns_export`] and import it
/// with [`Client::ns_import`] to move it).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Execution {
    #[default]
    Remote,
    Local,
    Auto,
}

/// A function to call: its hash, its bytes, a path to its `.wasm` file, or
/// an alias (a server-side name; remote only).
///
/// `&str`/`String` convert to a hash when they parse as one
/// (`sha256:<64 hex>`) and to an alias otherwise; paths are `&Path`/`PathBuf`.
#[derive(Debug, Clone)]
pub enum FunctionRef {
    Hash(FunctionId),
    Bytes(Bytes),
    Path(PathBuf),
    Name(String),
}

impl From<FunctionId> for FunctionRef {
    fn from(id: FunctionId) -> Self {
        FunctionRef::Hash(id)
    }
}
impl From<&FunctionId> for FunctionRef {
    fn from(id: &FunctionId) -> Self {
        FunctionRef::Hash(id.clone())
    }
}
impl From<Bytes> for FunctionRef {
    fn from(b: Bytes) -> Self {
        FunctionRef::Bytes(b)
    }
}
impl From<Vec<u8>> for FunctionRef {
    fn from(b: Vec<u8>) -> Self {
        FunctionRef::Bytes(b.into())
    }
}
impl From<&Vec<u8>> for FunctionRef {
    fn from(b: &Vec<u8>) -> Self {
        FunctionRef::Bytes(Bytes::copy_from_slice(b))
    }
}
impl From<&[u8]> for FunctionRef {
    fn from(b: &[u8]) -> Self {
        FunctionRef::Bytes(Bytes::copy_from_slice(b))
    }
}
impl From<&Path> for FunctionRef {
    fn from(p: &Path) -> Self {
        FunctionRef::Path(p.to_path_buf())
    }
}
impl From<PathBuf> for FunctionRef {
    fn from(p: PathBuf) -> Self {
        FunctionRef::Path(p)
    }
}
impl From<&PathBuf> for FunctionRef {
    fn from(p: &PathBuf) -> Self {
        FunctionRef::Path(p.clone())
    }
}
impl From<&str> for FunctionRef {
    fn from(s: &str) -> Self {
        FunctionRef::from(s.to_string())
    }
}
impl From<String> for FunctionRef {
    fn from(s: String) -> Self {
        match s.parse::<FunctionId>() {
            Ok(id) => FunctionRef::Hash(id),
            Err(_) => FunctionRef::Name(s),
        }
    }
}
impl From<&FunctionRef> for FunctionRef {
    fn from(f: &FunctionRef) -> Self {
        f.clone()
    }
}

/// Where the bytes of a call's function come from.
pub(crate) enum Source {
    None,
    Bytes(Bytes),
    /// A file hashed before and unchanged since (read only when needed).
    Path(PathBuf),
}

/// A resolved [`FunctionRef`]: the name sent to the server, the hash when
/// there is one, and the bytes.
pub(crate) struct Target {
    pub name: String,
    pub id: Option<FunctionId>,
    pub source: Source,
}

impl Target {
    /// The component's bytes, if the caller gave them (reading the file).
    pub fn bytes(&self) -> Result<Option<Bytes>, ClientError> {
        match &self.source {
            Source::None => Ok(None),
            Source::Bytes(b) => Ok(Some(b.clone())),
            Source::Path(p) => {
                let b = Bytes::from(std::fs::read(p).map_err(|e| read_error(p, e))?);
                // A file rewritten since it was hashed is a different function.
                if self.id.as_ref() != Some(&FunctionId::of(&b)) {
                    return Err(ClientError::Api {
                        status: 400,
                        error: OrbError::new(
                            ErrorCode::InvalidRequest,
                            format!("{} changed while it was being called; retry", p.display()),
                        ),
                    });
                }
                Ok(Some(b))
            }
        }
    }
}

pub(crate) fn read_error(p: &Path, e: std::io::Error) -> ClientError {
    ClientError::Api {
        status: 400,
        error: OrbError::new(
            ErrorCode::InvalidRequest,
            format!("cannot read the component {}: {e}", p.display()),
        ),
    }
}

pub(crate) fn to_json<P: Serialize + ?Sized>(p: &P) -> Result<Json, ClientError> {
    serde_json::to_value(p).map_err(|e| ClientError::Serde {
        message: format!("parameters do not serialize to JSON: {e}"),
    })
}

pub(crate) fn from_json<R: DeserializeOwned>(v: Json) -> Result<R, ClientError> {
    let text = v.to_string();
    serde_json::from_value(v).map_err(|e| ClientError::Serde {
        message: format!(
            "the result {} does not fit {}: {e}",
            truncate(&text, 200),
            std::any::type_name::<R>()
        ),
    })
}

fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

/// A call being put together: `client.call(f, "export").params(&p)
/// .namespace("home").write_to("k").send::<R>().await`.
#[must_use = "a call does nothing until it is sent"]
pub struct Call<'a> {
    pub(crate) client: &'a Client,
    pub(crate) function: FunctionRef,
    pub(crate) export: String,
    pub(crate) params: Result<Json, ClientError>,
    pub(crate) opts: CallOptions,
    pub(crate) execution: Execution,
}

impl Call<'_> {
    /// The parameters: anything that serializes to a JSON object keyed by
    /// the export's parameter names (a struct, a map, `json!({…})`).
    pub fn params<P: Serialize + ?Sized>(mut self, params: &P) -> Self {
        self.params = to_json(params);
        self
    }

    /// One named parameter (adds to the others).
    pub fn param<V: Serialize + ?Sized>(mut self, name: &str, value: &V) -> Self {
        self.params = match (self.params, to_json(value)) {
            (Ok(Json::Object(mut m)), Ok(v)) => {
                m.insert(name.to_string(), v);
                Ok(Json::Object(m))
            }
            (Ok(_), Ok(_)) => Err(ClientError::Serde {
                message: "`param` needs the parameters to be a JSON object".into(),
            }),
            (Err(e), _) | (_, Err(e)) => Err(e),
        };
        self
    }

    /// The namespace the function reads and writes (`wasi:keyvalue`).
    pub fn namespace(mut self, ns: &str) -> Self {
        self.opts.namespace = Some(ns.to_string());
        self
    }

    /// Per-call values the function reads through `wasi:config`.
    pub fn globals(mut self, globals: Map<String, Json>) -> Self {
        self.opts.globals = globals;
        self
    }

    /// One global (adds to the others).
    pub fn global<V: Serialize + ?Sized>(mut self, name: &str, value: &V) -> Self {
        match to_json(value) {
            Ok(v) => {
                self.opts.globals.insert(name.to_string(), v);
            }
            Err(e) => self.params = Err(e),
        }
        self
    }

    /// Writes `key = value` to the namespace before the function runs.
    pub fn set<V: Serialize + ?Sized>(mut self, key: &str, value: &V) -> Self {
        match to_json(value) {
            Ok(v) => {
                self.opts
                    .set
                    .get_or_insert_with(Map::new)
                    .insert(key.to_string(), v);
            }
            Err(e) => self.params = Err(e),
        }
        self
    }

    /// Stores the result under `key` of the namespace, atomically with the
    /// function's own writes.
    pub fn write_to(mut self, key: &str) -> Self {
        self.opts.write_to = Some(key.to_string());
        self
    }

    /// All options at once.
    pub fn options(mut self, opts: CallOptions) -> Self {
        self.opts = opts;
        self
    }

    /// Where this call runs (default: the client's).
    pub fn execution(mut self, execution: Execution) -> Self {
        self.execution = execution;
        self
    }

    /// Runs the call; the whole [`Invocation`] (activation id, JSON result,
    /// duration, fuel, whether it ran locally).
    pub async fn invoke(self) -> Result<Invocation, ClientError> {
        let params = self.params?;
        self.client
            .run(
                self.function,
                &self.export,
                params,
                self.opts,
                self.execution,
            )
            .await
    }

    /// Runs the call and deserializes its result into `R`.
    pub async fn send<R: DeserializeOwned>(self) -> Result<R, ClientError> {
        from_json(self.invoke().await?.result)
    }

    /// Queues the call on the server (`"async": true`); returns the
    /// activation id ([`Client::wait_activation`]). Always remote.
    pub async fn spawn(self) -> Result<String, ClientError> {
        let params = self.params?;
        self.client
            .invoke_async(self.function, &self.export, params, self.opts)
            .await
    }
}
