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
    /// Per-call values the function reads through `wasi:config`.
    pub globals: Map<String, Json>,
    /// The namespace the function may use (`wasi:keyvalue`).
    pub namespace: Option<String>,
    /// Pairs written to the namespace before the function runs.
    pub set: Option<Map<String, Json>>,
    /// Store the result under this key of the namespace.
    pub write_to: Option<String>,
}

/// Client for one Orb server.
#[derive(Clone)]
pub struct Client {
    base: String,
    http: reqwest::Client,
    token: Option<String>,
}

/// Adds the client's bearer token to a request.
trait Authed {
    fn authed(self, client: &Client) -> Self;
}

impl Authed for reqwest::RequestBuilder {
    fn authed(self, client: &Client) -> Self {
        match &client.token {
            Some(t) => self.bearer_auth(t),
            None => self,
        }
    }
}

impl Client {
    /// `base` is like `http://127.0.0.1:7070` or `https://orb.example:7070`
    /// (HTTPS trusts the system's CA certificates).
    pub fn new(base: &str) -> Result<Self, ClientError> {
        Self::build(base, reqwest::Client::builder())
    }

    /// Like [`Client::new`], also trusting the CA certificate(s) in `ca_pem`
    /// (PEM; e.g. a node's `<data_dir>/tls/self-signed.crt`).
    pub fn with_ca(base: &str, ca_pem: &[u8]) -> Result<Self, ClientError> {
        let fail = |message: String| ClientError::Transport {
            url: base.into(),
            message,
        };
        let certs = reqwest::Certificate::from_pem_bundle(ca_pem)
            .map_err(|e| fail(format!("invalid CA certificate: {e}")))?;
        if certs.is_empty() {
            return Err(fail("no PEM certificate in the CA file".into()));
        }
        Self::build(base, reqwest::Client::builder().tls_certs_merge(certs))
    }

    fn build(base: &str, builder: reqwest::ClientBuilder) -> Result<Self, ClientError> {
        install_crypto_provider();
        let http = builder.build().map_err(|e| ClientError::Transport {
            url: base.into(),
            message: e.to_string(),
        })?;
        Ok(Self {
            base: base.trim_end_matches('/').to_string(),
            http,
            token: None,
        })
    }

    /// Sends `token` (a private or public token) with every request.
    pub fn with_token(mut self, token: impl Into<String>) -> Self {
        let t: String = token.into();
        self.token = Some(t.trim().to_string()).filter(|t| !t.is_empty());
        self
    }

    /// The server's base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// A transport error with its causes (`error sending request: … invalid
    /// peer certificate: UnknownIssuer`), and a hint for certificate errors.
    fn transport(&self, e: impl std::error::Error) -> ClientError {
        let mut message = e.to_string();
        let mut source = e.source();
        while let Some(cause) = source {
            let text = cause.to_string();
            if !message.contains(&text) {
                message.push_str(": ");
                message.push_str(&text);
            }
            source = cause.source();
        }
        if message.contains("certificate") {
            message.push_str(" (to trust the server's CA certificate: `--ca FILE` / ORB_CA)");
        }
        ClientError::Transport {
            url: self.base.clone(),
            message,
        }
    }

    /// Sends a request with the token; transport failures become [`ClientError::Transport`].
    async fn send(&self, rb: reqwest::RequestBuilder) -> Result<reqwest::Response, ClientError> {
        rb.authed(self).send().await.map_err(|e| self.transport(e))
    }

    async fn decode<T: serde::de::DeserializeOwned>(
        &self,
        resp: reqwest::Response,
    ) -> Result<T, ClientError> {
        let status = resp.status().as_u16();
        let body = resp.bytes().await.map_err(|e| self.transport(e))?;
        if (200..300).contains(&status) {
            let body: &[u8] = if body.is_empty() { b"null" } else { &body };
            return serde_json::from_slice(body).map_err(|e| {
                self.transport(std::io::Error::other(format!("unexpected response: {e}")))
            });
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
            .send(
                self.http
                    .post(format!("{}/v1/functions", self.base))
                    .header("content-type", "application/wasm")
                    .body(body),
            )
            .await?;
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
        let mut body = json!({
            "function": function.to_string(),
            "export": export,
            "params": params,
            "globals": opts.globals,
        });
        if let Some(ns) = opts.namespace {
            body["namespace"] = json!(ns);
        }
        if let Some(set) = opts.set {
            body["set"] = Json::Object(set);
        }
        if let Some(key) = opts.write_to {
            body["write_to"] = json!(key);
        }
        let resp = self
            .send(
                self.http
                    .post(format!("{}/v1/invoke", self.base))
                    .json(&body),
            )
            .await?;
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
            .send(self.http.get(format!("{}/v1/functions/{id}", self.base)))
            .await?;
        self.decode(resp).await
    }

    pub async fn list_functions(&self) -> Result<Vec<FunctionInfo>, ClientError> {
        #[derive(Deserialize)]
        struct L {
            functions: Vec<FunctionInfo>,
        }
        let resp = self
            .send(self.http.get(format!("{}/v1/functions", self.base)))
            .await?;
        Ok(self.decode::<L>(resp).await?.functions)
    }

    pub async fn delete_function(&self, id: &FunctionId) -> Result<(), ClientError> {
        let resp = self
            .send(self.http.delete(format!("{}/v1/functions/{id}", self.base)))
            .await?;
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
        let resp = self.send(self.http.get(url)).await?;
        let v: Json = self.decode(resp).await?;
        Ok(v.get("activations")
            .and_then(Json::as_array)
            .cloned()
            .unwrap_or_default())
    }

    pub async fn get_activation(&self, id: &str) -> Result<Json, ClientError> {
        let resp = self
            .send(self.http.get(format!("{}/v1/activations/{id}", self.base)))
            .await?;
        self.decode(resp).await
    }

    async fn post_json(&self, path: &str, body: &Json) -> Result<Json, ClientError> {
        let resp = self
            .send(self.http.post(format!("{}{path}", self.base)).json(body))
            .await?;
        self.decode(resp).await
    }

    /// Any JSON route: `method` on `path` (e.g. `/v1/schedules`) with an
    /// optional JSON body; the decoded JSON answer (`null` for 204).
    pub async fn request_json(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Json>,
    ) -> Result<Json, ClientError> {
        let mut rb = self.http.request(method, format!("{}{path}", self.base));
        if let Some(b) = body {
            rb = rb.json(b);
        }
        let resp = self.send(rb).await?;
        self.decode(resp).await
    }

    /// Creates a schedule (`POST /v1/schedules`); returns it with its id.
    pub async fn create_schedule(&self, spec: &Json) -> Result<Json, ClientError> {
        self.post_json("/v1/schedules", spec).await
    }

    /// The account's schedules with their state.
    pub async fn list_schedules(&self) -> Result<Json, ClientError> {
        self.request_json(reqwest::Method::GET, "/v1/schedules", None)
            .await
    }

    pub async fn delete_schedule(&self, id: &str) -> Result<(), ClientError> {
        self.request_json(
            reqwest::Method::DELETE,
            &format!("/v1/schedules/{id}"),
            None,
        )
        .await
        .map(|_| ())
    }

    /// Points alias `name` at `function` (owner's private token).
    pub async fn set_alias(&self, name: &str, function: &FunctionId) -> Result<Json, ClientError> {
        let body = json!({ "function": function.to_string() });
        self.request_json(
            reqwest::Method::PUT,
            &format!("/v1/aliases/{name}"),
            Some(&body),
        )
        .await
    }

    /// Points alias `name` back at its previous target.
    pub async fn rollback_alias(&self, name: &str) -> Result<Json, ClientError> {
        self.post_json(&format!("/v1/aliases/{name}/rollback"), &json!({}))
            .await
    }

    /// Waits up to `wait` for an asynchronous call's activation to be final.
    pub async fn wait_activation(
        &self,
        id: &str,
        wait: std::time::Duration,
    ) -> Result<Json, ClientError> {
        let path = format!("/v1/activations/{id}?wait={}ms", wait.as_millis());
        self.request_json(reqwest::Method::GET, &path, None).await
    }

    /// Creates an account (admin token, or open registration). Returns
    /// `{"account","token",…}`; the token is shown only once.
    pub async fn create_account(&self, name: &str) -> Result<Json, ClientError> {
        self.post_json("/v1/accounts", &json!({ "name": name }))
            .await
    }

    /// Mints a public token under the client's private token. `grant` is the
    /// body of `POST /v1/tokens`.
    pub async fn mint_token(&self, grant: &Json) -> Result<Json, ClientError> {
        self.post_json("/v1/tokens", grant).await
    }

    /// Revokes `token` and everything derived from it.
    pub async fn revoke_token(&self, token: &str) -> Result<Json, ClientError> {
        self.post_json("/v1/tokens/revoke", &json!({ "token": token }))
            .await
    }

    fn key_url(&self, ns: &str, key: &str) -> Result<reqwest::Url, ClientError> {
        let mut url = reqwest::Url::parse(&self.base).map_err(|e| self.transport(e))?;
        url.path_segments_mut()
            .map_err(|_| self.transport(std::io::Error::other("base URL cannot take a path")))?
            .extend(["v1", "namespaces", ns, "keys", key]);
        Ok(url)
    }

    /// A key's JSON value.
    pub async fn kv_get(&self, ns: &str, key: &str) -> Result<Json, ClientError> {
        let resp = self.send(self.http.get(self.key_url(ns, key)?)).await?;
        self.decode(resp).await
    }

    /// Writes a key (durable when this returns); `{"revision"}`.
    pub async fn kv_put(&self, ns: &str, key: &str, value: &Json) -> Result<Json, ClientError> {
        let resp = self
            .send(self.http.put(self.key_url(ns, key)?).json(value))
            .await?;
        self.decode(resp).await
    }

    /// Deletes a key.
    pub async fn kv_delete(&self, ns: &str, key: &str) -> Result<(), ClientError> {
        let resp = self.send(self.http.delete(self.key_url(ns, key)?)).await?;
        self.decode::<Json>(resp).await.map(|_| ())
    }

    /// Keys of a namespace with `prefix` (all pages).
    pub async fn kv_keys(&self, ns: &str, prefix: &str) -> Result<Vec<String>, ClientError> {
        let mut out = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let mut url = reqwest::Url::parse(&format!("{}/v1/namespaces/{ns}/keys", self.base))
                .map_err(|e| self.transport(e))?;
            url.query_pairs_mut()
                .append_pair("prefix", prefix)
                .append_pair("limit", "1000");
            if let Some(a) = &after {
                url.query_pairs_mut().append_pair("after", a);
            }
            let resp = self.send(self.http.get(url)).await?;
            let v: Json = self.decode(resp).await?;
            out.extend(
                v["keys"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|k| k.as_str().map(str::to_string)),
            );
            match v["next"].as_str() {
                Some(n) => after = Some(n.to_string()),
                None => return Ok(out),
            }
        }
    }

    /// A namespace as `{"namespace","keys":{key: value}}`.
    pub async fn ns_export(&self, ns: &str) -> Result<Json, ClientError> {
        let resp = self
            .send(
                self.http
                    .get(format!("{}/v1/namespaces/{ns}/export", self.base)),
            )
            .await?;
        self.decode(resp).await
    }

    /// Writes an export into `ns` atomically.
    pub async fn ns_import(&self, ns: &str, export: &Json) -> Result<Json, ClientError> {
        self.post_json(&format!("/v1/namespaces/{ns}/import"), export)
            .await
    }

    /// The account's namespaces (`[{"name","keys","bytes"}]`).
    pub async fn list_namespaces(&self) -> Result<Vec<Json>, ClientError> {
        let resp = self
            .send(self.http.get(format!("{}/v1/namespaces", self.base)))
            .await?;
        let v: Json = self.decode(resp).await?;
        Ok(v["namespaces"].as_array().cloned().unwrap_or_default())
    }

    /// Replaces a namespace's whitelist.
    pub async fn set_whitelist(
        &self,
        namespace: &str,
        functions: &[String],
    ) -> Result<Json, ClientError> {
        let resp = self
            .send(
                self.http
                    .put(format!("{}/v1/namespaces/{namespace}/whitelist", self.base))
                    .json(&json!({ "functions": functions })),
            )
            .await?;
        self.decode(resp).await
    }

    /// A namespace's whitelist.
    pub async fn get_whitelist(&self, namespace: &str) -> Result<Vec<String>, ClientError> {
        let resp = self
            .send(
                self.http
                    .get(format!("{}/v1/namespaces/{namespace}/whitelist", self.base)),
            )
            .await?;
        let v: Json = self.decode(resp).await?;
        Ok(v["functions"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|f| f.as_str().map(str::to_string))
            .collect())
    }
}

/// Installs rustls' `ring` crypto provider as the process default, unless one
/// is installed already. [`Client`] does this itself; call it before building
/// another `reqwest::Client` in a process that links this crate (reqwest's
/// rustls backend has no built-in provider here).
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
