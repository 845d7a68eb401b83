//! A Rust client for Orb's HTTP API.
//!
//! Owns: the wire shapes seen from the caller's side, the hash-first protocol
//! (send the hash, upload only on `function_not_found`, retry), typed errors
//! carrying the server's codes.
//!
//! Must not know: wasmtime, storage, server internals. It speaks HTTP only.
//!
//! ```no_run
//! # async fn demo() -> Result<(), orb_client::ClientError> {
//! let client = orb_client::Client::new("http://127.0.0.1:7070")?;
//! let bytes = std::fs::read("hello.wasm").unwrap();
//! let out = client
//!     .invoke_bytes(&bytes, "greet", serde_json::json!({"name": "Ada"}), Default::default())
//!     .await?;
//! println!("{}", out.result);
//! # Ok(()) }
//! ```

use bytes::Bytes;
use orb_core::{ErrorCode, FunctionId, FunctionInfo, OrbError};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value as Json, json};

/// What went wrong talking to Orb.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server answered with an error body.
    #[error("{error} (HTTP {status})")]
    Api { status: u16, error: OrbError },
    /// The server could not be reached or answered garbage.
    #[error("cannot reach Orb at {url}: {message}")]
    Transport { url: String, message: String },
}

impl ClientError {
    /// The server's error code, when there is one.
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            ClientError::Api { error, .. } => error.error_code(),
            ClientError::Transport { .. } => None,
        }
    }
}

/// A successful call, as the server reports it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Invocation {
    pub activation: String,
    pub function: FunctionId,
    pub result: Json,
    pub duration_us: u64,
    pub fuel: u64,
}

/// Optional parts of a call.
#[derive(Debug, Clone, Default)]
pub struct CallOptions {
    pub globals: Map<String, Json>,
}

/// Client for one Orb server.
#[derive(Clone)]
pub struct Client {
    base: String,
    http: reqwest::Client,
}

impl Client {
    /// `base` is like `http://127.0.0.1:7070`.
    pub fn new(base: &str) -> Result<Self, ClientError> {
        let http = reqwest::Client::builder()
            .build()
            .map_err(|e| ClientError::Transport {
                url: base.into(),
                message: e.to_string(),
            })?;
        Ok(Self {
            base: base.trim_end_matches('/').to_string(),
            http,
        })
    }

    /// The server's base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    fn transport(&self, e: impl std::fmt::Display) -> ClientError {
        ClientError::Transport {
            url: self.base.clone(),
            message: e.to_string(),
        }
    }

    async fn decode<T: serde::de::DeserializeOwned>(
        &self,
        resp: reqwest::Response,
    ) -> Result<T, ClientError> {
        let status = resp.status().as_u16();
        let body = resp.bytes().await.map_err(|e| self.transport(e))?;
        if (200..300).contains(&status) {
            let body: &[u8] = if body.is_empty() { b"null" } else { &body };
            return serde_json::from_slice(body)
                .map_err(|e| self.transport(format!("unexpected response: {e}")));
        }
        #[derive(Deserialize)]
        struct Wrapper {
            error: OrbError,
        }
        match serde_json::from_slice::<Wrapper>(&body) {
            Ok(w) => Err(ClientError::Api {
                status,
                error: w.error,
            }),
            Err(_) => Err(ClientError::Api {
                status,
                error: OrbError::new(
                    ErrorCode::Internal,
                    format!("HTTP {status}: {}", String::from_utf8_lossy(&body)),
                ),
            }),
        }
    }

    /// Uploads a component. `body` lets the caller wrap the bytes (progress).
    pub async fn upload_body(&self, body: reqwest::Body) -> Result<FunctionInfo, ClientError> {
        let resp = self
            .http
            .post(format!("{}/v1/functions", self.base))
            .header("content-type", "application/wasm")
            .body(body)
            .send()
            .await
            .map_err(|e| self.transport(e))?;
        self.decode(resp).await
    }

    /// Uploads a component.
    pub async fn upload(&self, bytes: Bytes) -> Result<FunctionInfo, ClientError> {
        self.upload_body(reqwest::Body::from(bytes)).await
    }

    /// Calls `export` of the function with this hash.
    pub async fn invoke(
        &self,
        function: &FunctionId,
        export: &str,
        params: Json,
        opts: CallOptions,
    ) -> Result<Invocation, ClientError> {
        let body = json!({
            "function": function.to_string(),
            "export": export,
            "params": params,
            "globals": opts.globals,
        });
        let resp = self
            .http
            .post(format!("{}/v1/invoke", self.base))
            .json(&body)
            .send()
            .await
            .map_err(|e| self.transport(e))?;
        self.decode(resp).await
    }

    /// The hash-first protocol: call by hash; if the server does not know
    /// the function, upload it and call again.
    pub async fn invoke_bytes(
        &self,
        component: &[u8],
        export: &str,
        params: Json,
        opts: CallOptions,
    ) -> Result<Invocation, ClientError> {
        let id = FunctionId::of(component);
        match self.invoke(&id, export, params.clone(), opts.clone()).await {
            Err(e) if e.code() == Some(ErrorCode::FunctionNotFound) => {
                self.upload(Bytes::copy_from_slice(component)).await?;
                self.invoke(&id, export, params, opts).await
            }
            other => other,
        }
    }

    pub async fn get_function(&self, id: &FunctionId) -> Result<FunctionInfo, ClientError> {
        let resp = self
            .http
            .get(format!("{}/v1/functions/{id}", self.base))
            .send()
            .await
            .map_err(|e| self.transport(e))?;
        self.decode(resp).await
    }

    pub async fn list_functions(&self) -> Result<Vec<FunctionInfo>, ClientError> {
        #[derive(Deserialize)]
        struct L {
            functions: Vec<FunctionInfo>,
        }
        let resp = self
            .http
            .get(format!("{}/v1/functions", self.base))
            .send()
            .await
            .map_err(|e| self.transport(e))?;
        Ok(self.decode::<L>(resp).await?.functions)
    }

    pub async fn delete_function(&self, id: &FunctionId) -> Result<(), ClientError> {
        let resp = self
            .http
            .delete(format!("{}/v1/functions/{id}", self.base))
            .send()
            .await
            .map_err(|e| self.transport(e))?;
        self.decode::<Json>(resp).await.map(|_| ())
    }

    /// Activations, newest first (raw JSON records).
    pub async fn list_activations(
        &self,
        function: Option<&FunctionId>,
        limit: usize,
    ) -> Result<Vec<Json>, ClientError> {
        let mut url = format!("{}/v1/activations?limit={limit}", self.base);
        if let Some(f) = function {
            url.push_str(&format!("&function={f}"));
        }
        let resp = self
            .http
            .get(url)
            .send()
            .await
            .map_err(|e| self.transport(e))?;
        let v: Json = self.decode(resp).await?;
        Ok(v.get("activations")
            .and_then(Json::as_array)
            .cloned()
            .unwrap_or_default())
    }

    pub async fn get_activation(&self, id: &str) -> Result<Json, ClientError> {
        let resp = self
            .http
            .get(format!("{}/v1/activations/{id}", self.base))
            .send()
            .await
            .map_err(|e| self.transport(e))?;
        self.decode(resp).await
    }
}
