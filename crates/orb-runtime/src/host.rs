//! Per-call host state: WASI context, globals for `wasi:config`, the capped
//! log sink for stdout/stderr/`wasi:logging`, `wasi:http` (outbound under the
//! call's policy),
//! and the memory limiter.

use bytes::Bytes;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use wasmtime::component::{HasSelf, Linker, ResourceTable};
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamError};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

mod logging_bindings {
    wasmtime::component::bindgen!({
        inline: r#"
            package orb:host;
            world logging-host {
                import wasi:logging/logging@0.1.0-draft;
            }
            package wasi:logging@0.1.0-draft {
                interface logging {
                    enum level { trace, debug, info, warn, error, critical }
                    log: func(level: level, context: string, message: string);
                }
            }
        "#,
        world: "orb:host/logging-host",
    });
}
use logging_bindings::wasi::logging::logging as wasi_logging;

/// The state one call's store holds.
pub struct HostState {
    pub(crate) wasi: WasiCtx,
    pub(crate) table: ResourceTable,
    /// Globals of the call, read through `wasi:config` before the namespace.
    pub(crate) config: Vec<(String, String)>,
    pub(crate) logs: LogSink,
    pub(crate) limiter: MemoryLimiter,
    pub(crate) kv: Option<crate::kv::KvState>,
    /// `wasi:http` state (HTTP functions, and outbound requests under the
    /// call's policy: `outbound.rs`).
    pub(crate) http: wasmtime_wasi_http::WasiHttpCtx,
    pub(crate) http_hooks: crate::outbound::OutboundHooks,
}

impl wasmtime_wasi_http::WasiHttpView for HostState {
    fn http(&mut self) -> wasmtime_wasi_http::WasiHttpCtxView<'_> {
        wasmtime_wasi_http::WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.http_hooks,
        }
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl wasi_logging::Host for HostState {
    fn log(&mut self, level: wasi_logging::Level, context: String, message: String) {
        let level = match level {
            wasi_logging::Level::Trace => "trace",
            wasi_logging::Level::Debug => "debug",
            wasi_logging::Level::Info => "info",
            wasi_logging::Level::Warn => "warn",
            wasi_logging::Level::Error => "error",
            wasi_logging::Level::Critical => "critical",
        };
        let line = if context.is_empty() {
            format!("[{level}] {message}\n")
        } else {
            format!("[{level} {context}] {message}\n")
        };
        self.logs.append(line.as_bytes());
    }
}

/// Adds every interface Orb provides to guests.
pub(crate) fn add_to_linker(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    wasmtime_wasi::p2::add_to_linker_async(linker)?;
    crate::config::add_to_linker(linker)?;
    wasi_logging::add_to_linker::<HostState, HasSelf<HostState>>(linker, |h| h)?;
    crate::kv::add_to_linker(linker)?;
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(linker)?;
    Ok(())
}

/// Interface packages a guest may import (used to explain link errors).
pub const SUPPORTED_PACKAGES: &[&str] = &[
    "wasi:cli/",
    "wasi:io/",
    "wasi:clocks/",
    "wasi:random/",
    "wasi:filesystem/",
    "wasi:sockets/",
    "wasi:http/",
    "wasi:config/store@0.2.0-rc.1",
    "wasi:config/store@0.2.0-draft-2024-09-27",
    "wasi:logging/logging@0.1.0-draft",
    "wasi:keyvalue/store@0.2.0-draft",
    "wasi:keyvalue/atomics@0.2.0-draft",
    "wasi:keyvalue/batch@0.2.0-draft",
    "wasi:keyvalue/store@0.2.0-draft2",
    "wasi:keyvalue/atomics@0.2.0-draft2",
    "wasi:keyvalue/batch@0.2.0-draft2",
];

#[derive(Default)]
struct LogBuf {
    bytes: Vec<u8>,
    dropped: u64,
}

/// A shared, capped buffer for everything a guest prints.
///
/// Writes past the cap are accepted and counted, never failed: a guest that
/// prints 10 MB finishes normally and its log ends with a truncation marker.
#[derive(Clone)]
pub struct LogSink {
    cap: usize,
    buf: Arc<Mutex<LogBuf>>,
}

impl LogSink {
    pub fn new(cap: usize) -> Self {
        Self {
            cap,
            buf: Arc::default(),
        }
    }

    pub fn append(&self, data: &[u8]) {
        let mut b = self.buf.lock().expect("log lock");
        let room = self.cap.saturating_sub(b.bytes.len());
        let take = room.min(data.len());
        b.bytes.extend_from_slice(&data[..take]);
        b.dropped += (data.len() - take) as u64;
    }

    /// The captured text and whether it was truncated (a marker is appended).
    pub fn finish(&self) -> (String, bool) {
        let b = self.buf.lock().expect("log lock");
        let mut text = String::from_utf8_lossy(&b.bytes).into_owned();
        if b.dropped > 0 {
            if !text.ends_with('\n') {
                text.push('\n');
            }
            text.push_str(&format!(
                "[orb: log truncated, {} bytes dropped]\n",
                b.dropped
            ));
        }
        (text, b.dropped > 0)
    }
}

impl IsTerminal for LogSink {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for LogSink {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }
    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

#[async_trait::async_trait]
impl OutputStream for LogSink {
    fn write(&mut self, bytes: Bytes) -> Result<(), StreamError> {
        self.append(&bytes);
        Ok(())
    }
    fn flush(&mut self) -> Result<(), StreamError> {
        Ok(())
    }
    fn check_write(&mut self) -> Result<usize, StreamError> {
        Ok(64 * 1024)
    }
}

#[async_trait::async_trait]
impl Pollable for LogSink {
    async fn ready(&mut self) {}
}

impl tokio::io::AsyncWrite for LogSink {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.append(buf);
        Poll::Ready(Ok(buf.len()))
    }
    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// Refuses linear-memory growth past the per-call limit and remembers that
/// it did, so a trap that follows is reported as `memory_limit`.
pub struct MemoryLimiter {
    pub(crate) max_bytes: usize,
    pub(crate) hit: bool,
}

impl wasmtime::ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.max_bytes {
            self.hit = true;
            return Ok(false);
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 1_000_000)
    }
}
