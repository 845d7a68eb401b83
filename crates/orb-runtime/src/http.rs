//! HTTP functions: components that export `wasi:http/incoming-handler@0.2.x`
//! (what `wasmtime serve` and Spin run), one fresh instance per request.
//!
//! [`Runtime::serve_http`] hands the request to the guest with its body
//! streamed (capped), and returns the response as soon as the guest sets it
//! while its body keeps streaming (capped too). The guest runs in its own
//! task under the same limits as calls (epoch deadline — also as a wall-clock
//! bound on the whole request, since a guest waiting on a slow client runs no
//! wasm —, fuel, memory limiter, instance pool); [`HttpFinish`] resolves to
//! the outcome once both the guest and the response body are done.
//!
//! All the HTTP plumbing (request/response resources, body streams) is
//! `wasmtime-wasi-http`'s; this module only adds limits and accounting.

use crate::runtime::{RunError, arm, classify, instantiate_error};
use crate::{LoadedFunction, Runtime};
use bytes::Bytes;
use http_body_util::BodyExt as _;
use http_body_util::combinators::UnsyncBoxBody;
use hyper::body::{Body, Frame, SizeHint};
use orb_core::{ErrorCode, Limits, OrbError};
use serde_json::json;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use wasmtime::Store;
use wasmtime_wasi_http::WasiHttpView as _;
use wasmtime_wasi_http::p2::bindings::http::types::Scheme;

/// The export every HTTP function has, as recorded in activations.
pub const HTTP_EXPORT: &str = "wasi:http/incoming-handler";

/// Per-request settings.
#[derive(Debug, Clone)]
pub struct HttpRequestOptions {
    /// Overrides of the engine's default limits (only lower is honoured for memory).
    pub limits: Option<Limits>,
    /// Request body bytes the guest may read; past it the guest's body
    /// stream fails and the request ends as `too_large`.
    pub max_request_bytes: u64,
    /// Response body bytes sent; past it the stream is cut and the request
    /// ends as `response_too_large`.
    pub max_response_bytes: u64,
    /// The scheme the guest sees (`https` when the node serves TLS).
    pub https: bool,
    /// Hosts the guest may reach over `wasi:http/outgoing-handler` and the
    /// secret headers to inject; `None` refuses every request.
    pub outbound: Option<Arc<crate::OutboundPolicy>>,
    /// The namespace the guest opens as its `"default"` (or `""`) bucket
    /// through `wasi:keyvalue`, also read by `wasi:config`. What it did
    /// comes back in [`HttpOutcome::kv`] for the caller to commit.
    pub kv: Option<crate::KvAccess>,
    /// Readable through `wasi:config/store` (before the namespace).
    pub globals: Vec<(String, String)>,
}

/// A body-stream failure on the way out (the guest failed mid-body, or the
/// response passed its cap).
#[derive(Debug)]
pub struct HttpBodyError(pub String);

impl std::fmt::Display for HttpBodyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for HttpBodyError {}

/// The response body, streamed from the guest.
pub type HttpResponseBody = UnsyncBoxBody<Bytes, HttpBodyError>;

/// How one HTTP request went.
#[derive(Debug)]
pub struct HttpOutcome {
    /// The status the guest answered with, when it answered.
    pub status: Option<u16>,
    /// Request body bytes the guest read.
    pub bytes_in: u64,
    /// Response body bytes handed to the client.
    pub bytes_out: u64,
    /// The guest's failure (trap, limits, caps), if any.
    pub error: Option<OrbError>,
    pub logs: String,
    pub logs_truncated: bool,
    pub fuel: u64,
    pub duration: Duration,
    /// The outgoing HTTP requests the guest made or tried, in order.
    pub outbound: Vec<orb_core::OutboundRequest>,
    /// What the guest read and wrote through `wasi:keyvalue` (commit it).
    pub kv: crate::KvTransaction,
}

impl HttpOutcome {
    /// Whether the guest sent an outgoing request.
    pub fn side_effect(&self) -> bool {
        self.outbound.iter().any(|r| r.sent())
    }

    /// The activation result: `{"status", "bytes_in", "bytes_out"}`.
    pub fn result_json(&self) -> serde_json::Value {
        json!({ "status": self.status, "bytes_in": self.bytes_in, "bytes_out": self.bytes_out })
    }
}

/// Resolves to the request's [`HttpOutcome`] once the guest has returned and
/// the response body is finished (sent, cut or dropped by the client).
pub struct HttpFinish {
    guest: tokio::task::JoinHandle<GuestEnd>,
    body_done: tokio::sync::oneshot::Receiver<()>,
    counters: Arc<Counters>,
    status: Option<u16>,
    limits: HttpRequestOptions,
}

impl HttpFinish {
    pub async fn finish(self) -> HttpOutcome {
        // The body signals by being dropped or ending; either way it is done.
        let _ = self.body_done.await;
        let end = join(self.guest).await;
        outcome(end, &self.counters, self.status, &self.limits)
    }
}

#[derive(Default)]
struct Counters {
    bytes_in: AtomicU64,
    bytes_out: AtomicU64,
    request_over: AtomicBool,
    response_over: AtomicBool,
}

/// What the guest task reports when the guest returns (or fails).
struct GuestEnd {
    error: Option<OrbError>,
    logs: String,
    logs_truncated: bool,
    fuel: u64,
    duration: Duration,
    outbound: Vec<orb_core::OutboundRequest>,
    kv: crate::KvTransaction,
}

async fn join(task: tokio::task::JoinHandle<GuestEnd>) -> GuestEnd {
    match task.await {
        Ok(end) => end,
        Err(e) => GuestEnd {
            error: Some(OrbError::new(
                ErrorCode::Internal,
                format!("the HTTP function's task failed: {e}"),
            )),
            logs: String::new(),
            logs_truncated: false,
            fuel: 0,
            duration: Duration::ZERO,
            outbound: Vec::new(),
            kv: Default::default(),
        },
    }
}

fn outcome(
    end: GuestEnd,
    counters: &Counters,
    status: Option<u16>,
    opts: &HttpRequestOptions,
) -> HttpOutcome {
    // A cap explains what follows from it (a guest failing on a cut stream).
    let error = if counters.request_over.load(Ordering::SeqCst) {
        Some(request_too_large(opts.max_request_bytes))
    } else if counters.response_over.load(Ordering::SeqCst) {
        Some(
            OrbError::new(
                ErrorCode::ResponseTooLarge,
                format!(
                    "the function's response body passed the limit of {} bytes; the rest was cut",
                    opts.max_response_bytes
                ),
            )
            .with_details(json!({ "limit": opts.max_response_bytes })),
        )
    } else {
        end.error
    };
    HttpOutcome {
        status,
        bytes_in: counters.bytes_in.load(Ordering::SeqCst),
        bytes_out: counters.bytes_out.load(Ordering::SeqCst),
        error,
        logs: end.logs,
        logs_truncated: end.logs_truncated,
        fuel: end.fuel,
        duration: end.duration,
        outbound: end.outbound,
        kv: end.kv,
    }
}

fn request_too_large(limit: u64) -> OrbError {
    OrbError::new(
        ErrorCode::TooLarge,
        format!("the request body is over the limit of {limit} bytes"),
    )
    .with_details(json!({ "limit": limit }))
}

impl Runtime {
    /// Serves one HTTP request with a fresh instance of `f`.
    ///
    /// `Ok` once the guest has set its response: the response (its body
    /// streams on from the guest) and the [`HttpFinish`] that resolves to the
    /// outcome. `Err` when there is no response: the function is not an HTTP
    /// function, no instance slot was free, or the guest failed (trap,
    /// timeout, limits) or returned before answering — the outcome holds the
    /// classified error, logs and fuel for the activation record.
    pub async fn serve_http<B>(
        &self,
        f: &LoadedFunction,
        req: hyper::Request<B>,
        opts: HttpRequestOptions,
    ) -> Result<(hyper::Response<HttpResponseBody>, HttpFinish), Box<HttpOutcome>>
    where
        B: Body<Data = Bytes> + Send + 'static,
        B::Error: std::fmt::Display,
    {
        let counters = Arc::new(Counters::default());
        let fail = |error: OrbError, counters: &Counters| {
            Box::new(HttpOutcome {
                status: None,
                bytes_in: counters.bytes_in.load(Ordering::SeqCst),
                bytes_out: 0,
                error: Some(error),
                logs: String::new(),
                logs_truncated: false,
                fuel: 0,
                duration: Duration::ZERO,
                outbound: Vec::new(),
                kv: Default::default(),
            })
        };
        let Some(proxy) = f.proxy.clone() else {
            return Err(fail(
                OrbError::new(
                    ErrorCode::NotAnHttpFunction,
                    format!(
                        "function {} does not export wasi:http/incoming-handler; call its exports with JSON instead",
                        f.id()
                    ),
                )
                .with_details(json!({ "function": f.id().to_string() })),
                &counters,
            ));
        };
        let limits = opts.limits.clone().unwrap_or_else(|| self.limits().clone());
        let (state, logs) = self.host_state(
            &limits,
            opts.globals.clone(),
            opts.kv.clone(),
            opts.outbound.clone(),
        );
        let mut store = Store::new(self.engine(), state);
        store.limiter(|s| &mut s.limiter);

        let (parts, body) = req.into_parts();
        let body = CappedRequest {
            inner: body
                .map_err(|e| wasmtime_wasi_http::Error::InternalError(Some(e.to_string())))
                .boxed_unsync(),
            cap: opts.max_request_bytes,
            counters: counters.clone(),
        };
        let req = hyper::Request::from_parts(parts, body);
        let scheme = if opts.https {
            Scheme::Https
        } else {
            Scheme::Http
        };
        let (tx, rx) = tokio::sync::oneshot::channel();
        let setup = (|| -> wasmtime::Result<_> {
            let mut http = store.data_mut().http();
            let req = http.new_incoming_request(scheme, req)?;
            let out = http.new_response_outparam(tx)?;
            Ok((req, out))
        })();
        let (req, out) = match setup {
            Ok(v) => v,
            Err(e) => {
                return Err(fail(
                    OrbError::new(
                        ErrorCode::InvalidRequest,
                        format!("the request cannot be handed to the function: {e}"),
                    ),
                    &counters,
                ));
            }
        };

        let timeout = Duration::from_millis(limits.timeout_ms);
        let guest = tokio::spawn(async move {
            let started = Instant::now();
            let fuel_budget = limits.fuel.unwrap_or(u64::MAX);
            let run = async {
                arm(&mut store, &limits, fuel_budget)?;
                let proxy = proxy
                    .instantiate_async(&mut store)
                    .await
                    .map_err(instantiate_error)?;
                proxy
                    .wasi_http_incoming_handler()
                    .call_handle(&mut store, req, out)
                    .await
                    .map_err(RunError::Guest)
            };
            // The epoch deadline stops a guest that computes; this stops one
            // that waits (on a slow client, say) past the same limit.
            let result = match tokio::time::timeout(timeout, run).await {
                Ok(r) => r,
                Err(_) => Err(RunError::Guest(wasmtime::Error::new(
                    wasmtime::Trap::Interrupt,
                ))),
            };
            let duration = started.elapsed();
            // Without fuel accounting (`Metering::fuel` off) the fuel used reads 0.
            let fuel = store
                .get_fuel()
                .map_or(0, |left| fuel_budget.saturating_sub(left));
            let memory_hit = store.data().limiter.hit;
            let outbound_log = store.data().http_hooks.log.clone();
            let kv = store.data_mut().kv.take().map(|k| k.tx).unwrap_or_default();
            // Dropping the store drops the guest's body streams: the response
            // body ends (or fails, if the guest did not finish it).
            drop(store);
            let outbound = crate::outbound::take_log(&outbound_log);
            let error = result.err().map(|e| classify(e, memory_hit, &limits));
            let (logs, logs_truncated) = logs.finish();
            GuestEnd {
                error,
                logs,
                logs_truncated,
                fuel,
                duration,
                outbound,
                kv,
            }
        });

        match rx.await {
            Ok(Ok(resp)) => {
                let status = resp.status().as_u16();
                let (done_tx, done_rx) = tokio::sync::oneshot::channel();
                let resp = resp.map(|body| {
                    CappedResponse {
                        inner: body,
                        cap: opts.max_response_bytes,
                        counters: counters.clone(),
                        done: Some(done_tx),
                    }
                    .boxed_unsync()
                });
                Ok((
                    resp,
                    HttpFinish {
                        guest,
                        body_done: done_rx,
                        counters,
                        status: Some(status),
                        limits: opts,
                    },
                ))
            }
            Ok(Err(code)) => {
                // The guest answered with an error instead of a response.
                let end = join(guest).await;
                let mut o = outcome(end, &counters, None, &opts);
                if o.error.is_none() {
                    o.error = Some(
                        OrbError::new(
                            ErrorCode::FunctionBadResult,
                            format!("the function answered with the error {code:?} instead of a response"),
                        )
                        .with_details(json!({ "http_error": format!("{code:?}") })),
                    );
                }
                Err(Box::new(o))
            }
            Err(_) => {
                // The outparam was dropped unset: the guest returned or failed.
                let end = join(guest).await;
                let mut o = outcome(end, &counters, None, &opts);
                if o.error.is_none() {
                    o.error = Some(OrbError::new(
                        ErrorCode::FunctionBadResult,
                        "the function returned without setting a response",
                    ));
                }
                Err(Box::new(o))
            }
        }
    }
}

/// A response held back until the guest is done (see
/// [`Runtime::serve_http_to_end`]).
#[derive(Debug)]
pub struct HttpBuffered {
    /// The response head and its whole body, when the guest answered and
    /// nothing failed on the way.
    pub response: Option<(hyper::http::response::Parts, Bytes)>,
    pub outcome: HttpOutcome,
}

impl Runtime {
    /// Like [`Runtime::serve_http`], but runs the guest to its end and
    /// collects the response body (still capped) instead of streaming it:
    /// for callers that must act (commit a transaction, or run the request
    /// again) before anything reaches the client.
    pub async fn serve_http_to_end(
        &self,
        f: &LoadedFunction,
        req: hyper::Request<http_body_util::Full<Bytes>>,
        opts: HttpRequestOptions,
    ) -> HttpBuffered {
        match self.serve_http(f, req, opts).await {
            Err(outcome) => HttpBuffered {
                response: None,
                outcome: *outcome,
            },
            Ok((resp, finish)) => {
                let (parts, body) = resp.into_parts();
                let collected = body.collect().await;
                let outcome = finish.finish().await;
                let response = match collected {
                    Ok(c) if outcome.error.is_none() => Some((parts, c.to_bytes())),
                    _ => None,
                };
                HttpBuffered { response, outcome }
            }
        }
    }
}

/// The request body on its way to the guest: counted, and failed past the
/// cap (the guest's stream reports an error; the request ends `too_large`).
struct CappedRequest {
    inner: UnsyncBoxBody<Bytes, wasmtime_wasi_http::Error>,
    cap: u64,
    counters: Arc<Counters>,
}

impl Body for CappedRequest {
    type Data = Bytes;
    type Error = wasmtime_wasi_http::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        if self.counters.request_over.load(Ordering::SeqCst) {
            return Poll::Ready(None);
        }
        let frame = match Pin::new(&mut self.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => frame,
            other => return other,
        };
        if let Some(data) = frame.data_ref() {
            let seen = self
                .counters
                .bytes_in
                .fetch_add(data.len() as u64, Ordering::SeqCst)
                + data.len() as u64;
            if seen > self.cap {
                self.counters.request_over.store(true, Ordering::SeqCst);
                return Poll::Ready(Some(Err(wasmtime_wasi_http::Error::HttpRequestBodySize(
                    Some(seen),
                ))));
            }
        }
        Poll::Ready(Some(Ok(frame)))
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// The guest's response body on its way to the client: counted, and cut
/// past the cap. Dropping it (end, cut or client gone) signals `done`.
struct CappedResponse {
    inner: UnsyncBoxBody<Bytes, wasmtime_wasi_http::Error>,
    cap: u64,
    counters: Arc<Counters>,
    done: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Body for CappedResponse {
    type Data = Bytes;
    type Error = HttpBodyError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        if self.done.is_none() {
            return Poll::Ready(None);
        }
        let frame = match Pin::new(&mut self.inner).poll_frame(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(None) => {
                self.done.take();
                return Poll::Ready(None);
            }
            Poll::Ready(Some(Err(e))) => {
                self.done.take();
                return Poll::Ready(Some(Err(HttpBodyError(format!(
                    "the function's response body failed: {e}"
                )))));
            }
            Poll::Ready(Some(Ok(frame))) => frame,
        };
        if let Some(data) = frame.data_ref() {
            let before = self.counters.bytes_out.load(Ordering::SeqCst);
            if before + data.len() as u64 > self.cap {
                self.counters.response_over.store(true, Ordering::SeqCst);
                self.done.take();
                return Poll::Ready(Some(Err(HttpBodyError(format!(
                    "the function's response body passed the limit of {} bytes",
                    self.cap
                )))));
            }
            self.counters
                .bytes_out
                .fetch_add(data.len() as u64, Ordering::SeqCst);
        }
        Poll::Ready(Some(Ok(frame)))
    }

    fn is_end_stream(&self) -> bool {
        self.done.is_none() || self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
