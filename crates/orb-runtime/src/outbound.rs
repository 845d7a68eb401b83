//! Outbound HTTP (`wasi:http/outgoing-handler`) under a per-call policy.
//!
//! `wasmtime-wasi-http` builds the request from the guest's resources and
//! hands it to [`OutboundHooks::send_request`]; everything after that is
//! here, because the crate's default sender resolves the name itself when it
//! connects (a second lookup would allow DNS rebinding) and needs features
//! this workspace does not build. The steps, in order:
//!
//! 1. the per-call request cap (`max_requests`; the next one is
//!    `HTTP-request-denied`);
//! 2. the scheme (`http`/`https`) and the host against the call's allow-list
//!    ([`orb_core::HostPattern`]);
//! 3. resolve the name once (an IP literal is used as is) and drop every
//!    address that is not globally routable — loopback, private (RFC 1918,
//!    `fc00::/7`), link-local (`169.254/16`, `fe80::/10`), unspecified,
//!    multicast, broadcast, shared (`100.64/10`), reserved, and the
//!    IPv4-mapped/compatible/NAT64 forms of those — unless the node allows
//!    it (`allow_private` CIDRs); no address left → `destination-IP-prohibited`;
//! 4. connect to the checked address (no second lookup), TLS with rustls
//!    (`ring` provider, the platform's roots) for `https`;
//! 5. inject the call's secret headers that match the host (the guest
//!    handed the request over already and never sees them);
//! 6. timeouts (connect; first byte; whole request — the guest's
//!    `request-options` may lower them, never raise), and the response body
//!    cap (the stream fails past it).
//!
//! Every request (refused ones too) is listed for the activation with
//! method, URL, status or error, bytes and duration — never a header value.

use bytes::Bytes;
use core::future::poll_fn;
use hyper::body::{Body, Frame, SizeHint};
use orb_core::{HostPattern, OutboundRequest};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::pin::{Pin, pin};
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};
use wasmtime_wasi_http::{Error, RequestOptions, WasiBody};

/// Node-wide limits of outbound HTTP.
#[derive(Debug, Clone)]
pub struct OutboundConfig {
    /// Resolving the name and connecting (TCP and TLS).
    pub connect_timeout: Duration,
    /// Until the response head, and for the whole request including its
    /// response body.
    pub timeout: Duration,
    /// Response body bytes the guest may read; the stream fails past it.
    pub max_response_bytes: u64,
    /// Requests per call; the next one is refused.
    pub max_requests: u32,
    /// Non-public addresses that may be reached anyway (e.g. `127.0.0.1/32`).
    pub allow_private: Vec<ipnet::IpNet>,
}

impl Default for OutboundConfig {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(5),
            timeout: Duration::from_secs(30),
            max_response_bytes: 10 << 20,
            max_requests: 16,
            allow_private: Vec::new(),
        }
    }
}

/// A header the host adds to matching requests (a secret). Its value is
/// never logged, listed or shown to the guest.
#[derive(Clone)]
pub struct InjectedHeader {
    /// The secret's name (for logs; not the value).
    pub name: String,
    /// Hosts it is sent to.
    pub hosts: Vec<HostPattern>,
    /// Header name (lowercase).
    pub header: String,
    /// Header value, formatted.
    pub value: String,
}

impl std::fmt::Debug for InjectedHeader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InjectedHeader")
            .field("name", &self.name)
            .field("hosts", &self.hosts)
            .field("header", &self.header)
            .field("value", &"<redacted>")
            .finish()
    }
}

/// A last check of each outbound request by `host` and `port`, after the
/// host patterns pass: the node checks the caller's token again (revoked?
/// expired? an attenuation block that narrows hosts?). `Err` says why not.
#[derive(Clone)]
pub struct RequestGate(pub Arc<GateFn>);

/// The check behind a [`RequestGate`]: host, port → allowed, or why not.
pub type GateFn = dyn Fn(&str, u16) -> Result<(), String> + Send + Sync;

impl std::fmt::Debug for RequestGate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RequestGate")
    }
}

/// What one call may reach: hosts (its token's `outbound_hosts` or its
/// account's policy), the secret headers to inject, and the token's gate.
#[derive(Debug, Clone, Default)]
pub struct OutboundPolicy {
    pub hosts: Vec<HostPattern>,
    pub inject: Vec<InjectedHeader>,
    pub gate: Option<RequestGate>,
}

/// The requests of one call, shared between the hooks and response bodies.
pub(crate) type OutboundLog = Arc<Mutex<Vec<OutboundRequest>>>;

/// Entries listed per call at most (refused attempts past the cap are not
/// listed, so a guest looping on refusals cannot grow its activation).
fn max_listed(cfg: &OutboundConfig) -> usize {
    cfg.max_requests as usize + 16
}

/// `wasi:http` hooks of one call.
pub struct OutboundHooks {
    policy: Option<Arc<OutboundPolicy>>,
    config: Arc<OutboundConfig>,
    pub(crate) log: OutboundLog,
    started: u32,
}

impl OutboundHooks {
    pub(crate) fn new(policy: Option<Arc<OutboundPolicy>>, config: Arc<OutboundConfig>) -> Self {
        Self {
            policy,
            config,
            log: Arc::default(),
            started: 0,
        }
    }
}

/// Takes the list of requests (after the guest is done).
pub(crate) fn take_log(log: &OutboundLog) -> Vec<OutboundRequest> {
    std::mem::take(&mut *log.lock().expect("outbound log"))
}

/// A handle on one entry of the log.
#[derive(Clone)]
struct Entry {
    log: OutboundLog,
    index: Option<usize>,
    started: Instant,
}

impl Entry {
    fn update(&self, f: impl FnOnce(&mut OutboundRequest)) {
        if let Some(i) = self.index
            && let Some(e) = self.log.lock().expect("outbound log").get_mut(i)
        {
            f(e);
            e.duration_us = self.started.elapsed().as_micros() as u64;
        }
    }

    fn fail(&self, why: String) {
        self.update(|e| {
            if e.error.is_none() {
                e.error = Some(why);
            }
        });
    }
}

type SendFuture = Box<
    dyn Future<
            Output = Result<
                (
                    hyper::Response<WasiBody>,
                    Box<dyn Future<Output = Result<(), Error>> + Send>,
                ),
                Error,
            >,
        > + Send,
>;

impl wasmtime_wasi_http::WasiHttpHooks for OutboundHooks {
    fn send_request(
        &mut self,
        request: hyper::Request<WasiBody>,
        options: Option<RequestOptions>,
        _fut: Box<dyn Future<Output = Result<(), Error>> + Send>,
    ) -> SendFuture {
        let started = Instant::now();
        let index = {
            let mut log = self.log.lock().expect("outbound log");
            (log.len() < max_listed(&self.config)).then(|| {
                log.push(OutboundRequest {
                    method: request.method().to_string(),
                    url: request.uri().to_string(),
                    ..Default::default()
                });
                log.len() - 1
            })
        };
        let entry = Entry {
            log: self.log.clone(),
            index,
            started,
        };
        let deny = |entry: &Entry, why: String, err: Error| -> SendFuture {
            tracing::debug!(reason = %why, "outbound HTTP refused");
            entry.fail(why);
            Box::new(async move { Err(err) })
        };
        let Some(policy) = self.policy.clone() else {
            return deny(
                &entry,
                "outbound HTTP is not available to this call".into(),
                Error::HttpRequestDenied,
            );
        };
        if self.started >= self.config.max_requests {
            return deny(
                &entry,
                format!(
                    "over the limit of {} outbound requests per call",
                    self.config.max_requests
                ),
                Error::HttpRequestDenied,
            );
        }
        self.started += 1;
        let uri = request.uri();
        let https = match uri.scheme_str() {
            Some("http") => false,
            Some("https") => true,
            other => {
                return deny(
                    &entry,
                    format!(
                        "scheme `{}` is not supported (http, https)",
                        other.unwrap_or("")
                    ),
                    Error::HttpProtocolError,
                );
            }
        };
        let Some(host) = uri.host().map(str::to_string) else {
            return deny(
                &entry,
                "the URL has no host".into(),
                Error::HttpRequestUriInvalid,
            );
        };
        let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
        if !orb_core::outbound::any_matches(&policy.hosts, &host, port) {
            return deny(
                &entry,
                format!(
                    "host `{host}:{port}` is not allowed for this call (the token's outbound_hosts, or the account's outbound policy for a private token)"
                ),
                Error::HttpRequestDenied,
            );
        }
        if let Some(gate) = &policy.gate
            && let Err(why) = (gate.0)(&host, port)
        {
            return deny(&entry, why, Error::HttpRequestDenied);
        }
        let inject: Vec<(hyper::header::HeaderName, hyper::header::HeaderValue)> = policy
            .inject
            .iter()
            .filter(|s| orb_core::outbound::any_matches(&s.hosts, &host, port))
            .filter_map(|s| {
                let name = hyper::header::HeaderName::from_bytes(s.header.as_bytes()).ok()?;
                let mut value = hyper::header::HeaderValue::from_str(&s.value).ok()?;
                value.set_sensitive(true);
                Some((name, value))
            })
            .collect();
        let config = self.config.clone();
        Box::new(async move {
            let result = send(
                request, options, &config, &entry, &host, port, https, inject,
            )
            .await;
            if let Err(e) = &result {
                entry.fail(describe(e));
            }
            result
        })
    }
}

fn describe(e: &Error) -> String {
    match e {
        Error::ConnectionTimeout => "connect timed out".into(),
        Error::ConnectionReadTimeout | Error::HttpResponseTimeout => "timed out".into(),
        other => other.to_string(),
    }
}

/// Why an address may not be reached, if it may not (before the node's
/// `allow_private` exceptions).
pub fn forbidden_reason(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => v4_reason(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = embedded_v4(v6) {
                return v4_reason(v4);
            }
            let s = v6.segments();
            if v6.is_loopback() {
                Some("loopback")
            } else if v6.is_unspecified() {
                Some("unspecified")
            } else if v6.is_multicast() {
                Some("multicast")
            } else if s[0] & 0xfe00 == 0xfc00 {
                Some("private (unique local)")
            } else if s[0] & 0xffc0 == 0xfe80 {
                Some("link-local")
            } else if s[0] & 0xffc0 == 0xfec0 {
                Some("site-local")
            } else {
                None
            }
        }
    }
}

/// The IPv4 address inside an IPv4-mapped (`::ffff:a.b.c.d`), IPv4-compatible
/// (`::a.b.c.d`) or NAT64 (`64:ff9b::a.b.c.d`) IPv6 address.
fn embedded_v4(v6: Ipv6Addr) -> Option<Ipv4Addr> {
    if let Some(v4) = v6.to_ipv4_mapped() {
        return Some(v4);
    }
    let s = v6.segments();
    let tail = || Ipv4Addr::from(((s[6] as u32) << 16) | s[7] as u32);
    if s[..6] == [0; 6] && !v6.is_loopback() && !v6.is_unspecified() {
        return Some(tail());
    }
    if s[0] == 0x64 && s[1] == 0xff9b && s[2..6] == [0; 4] {
        return Some(tail());
    }
    None
}

fn v4_reason(ip: Ipv4Addr) -> Option<&'static str> {
    let o = ip.octets();
    if ip.is_loopback() {
        Some("loopback")
    } else if ip.is_private() {
        Some("private")
    } else if ip.is_link_local() {
        Some("link-local")
    } else if o[0] == 0 {
        Some("unspecified")
    } else if ip.is_multicast() {
        Some("multicast")
    } else if ip.is_broadcast() {
        Some("broadcast")
    } else if o[0] == 100 && (o[1] & 0xc0) == 64 {
        Some("shared (100.64.0.0/10)")
    } else if o[0] >= 240 {
        Some("reserved")
    } else {
        None
    }
}

/// Whether the node lets a call reach `ip`.
pub fn address_allowed(ip: IpAddr, allow: &[ipnet::IpNet]) -> Result<(), &'static str> {
    let Some(reason) = forbidden_reason(ip) else {
        return Ok(());
    };
    let v4 = match ip {
        IpAddr::V6(v6) => embedded_v4(v6).map(IpAddr::V4),
        IpAddr::V4(_) => None,
    };
    if allow
        .iter()
        .any(|n| n.contains(&ip) || v4.is_some_and(|v| n.contains(&v)))
    {
        Ok(())
    } else {
        Err(reason)
    }
}

fn tls_config() -> Result<Arc<rustls::ClientConfig>, Error> {
    static CONFIG: OnceLock<Result<Arc<rustls::ClientConfig>, String>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            use rustls_platform_verifier::BuilderVerifierExt as _;
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .map_err(|e| e.to_string())?
                .with_platform_verifier()
                .map_err(|e| e.to_string())
                .map(|b| Arc::new(b.with_no_client_auth()))
        })
        .clone()
        .map_err(|e| Error::InternalError(Some(format!("TLS client setup failed: {e}"))))
}

trait Stream: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Sync + Unpin + 'static {}
impl<T> Stream for T where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Sync + Unpin + 'static
{
}

#[allow(clippy::too_many_arguments)]
async fn send(
    mut req: hyper::Request<WasiBody>,
    options: Option<RequestOptions>,
    config: &OutboundConfig,
    entry: &Entry,
    host: &str,
    port: u16,
    https: bool,
    inject: Vec<(hyper::header::HeaderName, hyper::header::HeaderValue)>,
) -> Result<
    (
        hyper::Response<WasiBody>,
        Box<dyn Future<Output = Result<(), Error>> + Send>,
    ),
    Error,
> {
    let lower = |ours: Duration, theirs: Option<Duration>| match theirs {
        Some(t) => ours.min(t),
        None => ours,
    };
    let connect_timeout = lower(
        config.connect_timeout,
        options.and_then(|o| o.connect_timeout),
    );
    let first_byte_timeout = lower(config.timeout, options.and_then(|o| o.first_byte_timeout));
    let between_bytes = lower(
        config.timeout,
        options.and_then(|o| o.between_bytes_timeout),
    );
    let deadline = tokio::time::Instant::from_std(entry.started + config.timeout);
    let connect_deadline = tokio::time::Instant::now() + connect_timeout;

    // 3. Resolve once; keep only addresses the node lets calls reach.
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let addrs: Vec<SocketAddr> = match bare.parse::<IpAddr>() {
        Ok(ip) => vec![SocketAddr::new(ip, port)],
        Err(_) => {
            match tokio::time::timeout_at(connect_deadline, tokio::net::lookup_host((bare, port)))
                .await
            {
                Err(_) => return Err(Error::DnsTimeout),
                Ok(Err(e)) => {
                    entry.fail(format!("cannot resolve `{bare}`: {e}"));
                    return Err(Error::DnsError {
                        rcode: Some(e.to_string()),
                        info_code: None,
                    });
                }
                Ok(Ok(a)) => a.collect(),
            }
        }
    };
    let mut refused = Vec::new();
    let allowed: Vec<SocketAddr> = addrs
        .iter()
        .filter(|a| match address_allowed(a.ip(), &config.allow_private) {
            Ok(()) => true,
            Err(reason) => {
                refused.push(format!("{} ({reason})", a.ip()));
                false
            }
        })
        .copied()
        .collect();
    if allowed.is_empty() {
        entry.fail(if refused.is_empty() {
            format!("`{bare}` resolved to no address")
        } else {
            format!(
                "refused: `{bare}` resolves only to addresses calls may not reach: {} (the node's outbound_allow_private can allow them)",
                refused.join(", ")
            )
        });
        return Err(Error::DestinationIpProhibited);
    }

    // 4. Connect to a checked address.
    let mut last_err = None;
    let mut tcp = None;
    for addr in &allowed {
        entry.update(|e| e.address = Some(addr.to_string()));
        match tokio::time::timeout_at(connect_deadline, tokio::net::TcpStream::connect(addr)).await
        {
            Err(_) => return Err(Error::ConnectionTimeout),
            Ok(Ok(s)) => {
                tcp = Some(s);
                break;
            }
            Ok(Err(e)) => last_err = Some(e),
        }
    }
    let Some(tcp) = tcp else {
        let e = last_err.map_or_else(|| "no address".to_string(), |e| e.to_string());
        entry.fail(format!("connect failed: {e}"));
        return Err(Error::ConnectionRefused);
    };
    let _ = tcp.set_nodelay(true);
    let stream: Box<dyn Stream> = if https {
        let name = match bare.parse::<IpAddr>() {
            Ok(ip) => rustls::pki_types::ServerName::IpAddress(ip.into()),
            Err(_) => rustls::pki_types::ServerName::try_from(bare.to_string())
                .map_err(|_| Error::HttpRequestUriInvalid)?,
        };
        let connector = tokio_rustls::TlsConnector::from(tls_config()?);
        match tokio::time::timeout_at(connect_deadline, connector.connect(name, tcp)).await {
            Err(_) => return Err(Error::ConnectionTimeout),
            Ok(Err(e)) => {
                entry.fail(format!("TLS failed: {e}"));
                return Err(Error::TlsCertificateError);
            }
            Ok(Ok(s)) => Box::new(s),
        }
    } else {
        Box::new(tcp)
    };
    let (mut sender, conn) = tokio::time::timeout_at(
        connect_deadline,
        hyper::client::conn::http1::Builder::new()
            .handshake(wasmtime_wasi_http::io::TokioIo::new(stream)),
    )
    .await
    .map_err(|_| Error::ConnectionTimeout)??;

    // 5. Secrets, after the guest handed the request over.
    for (name, value) in inject {
        req.headers_mut().remove(&name);
        req.headers_mut().insert(name, value);
    }
    // Origin form on the wire (the absolute form is for proxies).
    *req.uri_mut() = hyper::Uri::builder()
        .path_and_query(
            req.uri()
                .path_and_query()
                .map(|p| p.as_str())
                .unwrap_or("/"),
        )
        .build()
        .map_err(|_| Error::HttpRequestUriInvalid)?;
    let req = req.map(|body| {
        CountedRequest {
            inner: body,
            entry: entry.clone(),
        }
        .boxed_unsync()
    });

    // 6. The response head within the first-byte timeout, driving the
    // connection meanwhile.
    let first_byte_deadline = (tokio::time::Instant::now() + first_byte_timeout).min(deadline);
    let send = async {
        tokio::time::timeout_at(first_byte_deadline, sender.send_request(req))
            .await
            .map_err(|_| Error::ConnectionReadTimeout)?
            .map_err(Error::from)
    };
    let mut send = pin!(send);
    let mut conn = Some(conn);
    let res = poll_fn(|cx| match send.as_mut().poll(cx) {
        Poll::Ready(r) => Poll::Ready(r),
        Poll::Pending => {
            let Some(fut) = conn.as_mut() else {
                return Poll::Pending;
            };
            let res = ready!(Pin::new(fut).poll(cx));
            conn = None;
            match res {
                Ok(()) => send.as_mut().poll(cx),
                Err(err) => Poll::Ready(Err(Error::from(err))),
            }
        }
    })
    .await?;
    let status = res.status().as_u16();
    entry.update(|e| e.status = Some(status));
    let res = res.map(|incoming| {
        CappedResponse {
            incoming,
            cap: config.max_response_bytes,
            seen: 0,
            deadline: Box::pin(tokio::time::sleep_until(deadline)),
            between: between_bytes,
            idle: Box::pin(tokio::time::sleep(between_bytes)),
            entry: entry.clone(),
            done: false,
        }
        .boxed_unsync()
    });
    let io = async move {
        let Some(conn) = conn.take() else {
            return Ok(());
        };
        match tokio::time::timeout_at(deadline, conn).await {
            Ok(r) => r.map_err(Error::from),
            Err(_) => Err(Error::HttpResponseTimeout),
        }
    };
    Ok((res, Box::new(io)))
}

use http_body_util::BodyExt as _;

/// The request body on its way out, counted.
struct CountedRequest {
    inner: WasiBody,
    entry: Entry,
}

impl Body for CountedRequest {
    type Data = Bytes;
    type Error = Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Error>>> {
        let frame = ready!(Pin::new(&mut self.inner).poll_frame(cx));
        if let Some(Ok(f)) = &frame
            && let Some(d) = f.data_ref()
        {
            let n = d.len() as u64;
            self.entry.update(|e| e.bytes_out += n);
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// The response body on its way to the guest: counted, cut past the cap,
/// failed past the request's deadline or an idle gap.
struct CappedResponse {
    incoming: hyper::body::Incoming,
    cap: u64,
    seen: u64,
    deadline: Pin<Box<tokio::time::Sleep>>,
    between: Duration,
    idle: Pin<Box<tokio::time::Sleep>>,
    entry: Entry,
    done: bool,
}

impl CappedResponse {
    fn stop(&mut self, why: String, err: Error) -> Poll<Option<Result<Frame<Bytes>, Error>>> {
        self.done = true;
        self.entry.fail(why);
        Poll::Ready(Some(Err(err)))
    }
}

impl Body for CappedResponse {
    type Data = Bytes;
    type Error = Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Error>>> {
        if self.done {
            return Poll::Ready(None);
        }
        match Pin::new(&mut self.incoming).poll_frame(cx) {
            Poll::Ready(None) => {
                self.done = true;
                self.entry.update(|_| {});
                Poll::Ready(None)
            }
            Poll::Ready(Some(Err(e))) => {
                self.stop(format!("response body failed: {e}"), Error::from(e))
            }
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(d) = frame.data_ref() {
                    let n = d.len() as u64;
                    if self.seen + n > self.cap {
                        let cap = self.cap;
                        self.entry.update(|e| e.bytes_in = cap);
                        return self.stop(
                            format!("response body over the limit of {cap} bytes; cut"),
                            Error::HttpResponseBodySize(Some(cap)),
                        );
                    }
                    self.seen += n;
                    self.entry.update(|e| e.bytes_in += n);
                }
                let next = tokio::time::Instant::now() + self.between;
                self.idle.as_mut().reset(next);
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Pending => {
                if self.deadline.as_mut().poll(cx).is_ready()
                    || self.idle.as_mut().poll(cx).is_ready()
                {
                    return self.stop(
                        "timed out reading the response body".into(),
                        Error::ConnectionReadTimeout,
                    );
                }
                Poll::Pending
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.done || self.incoming.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.incoming.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn non_public_addresses_are_refused() {
        for a in [
            "127.0.0.1",
            "127.1.2.3",
            "10.0.0.1",
            "172.16.5.4",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "0.1.2.3",
            "224.0.0.1",
            "255.255.255.255",
            "100.64.0.1",
            "240.0.0.1",
            "::1",
            "::",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "fec0::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "::ffff:169.254.169.254",
            "::127.0.0.1",
            "64:ff9b::a9fe:a9fe",
        ] {
            assert!(
                address_allowed(ip(a), &[]).is_err(),
                "{a} should be refused"
            );
        }
        for a in [
            "93.184.215.14",
            "1.1.1.1",
            "2606:4700::1111",
            "::ffff:1.1.1.1",
            "100.128.0.1",
        ] {
            assert_eq!(address_allowed(ip(a), &[]), Ok(()), "{a} should be allowed");
        }
    }

    #[test]
    fn allow_private_exceptions() {
        let allow: Vec<ipnet::IpNet> = vec!["127.0.0.1/32".parse().unwrap()];
        assert_eq!(address_allowed(ip("127.0.0.1"), &allow), Ok(()));
        assert_eq!(address_allowed(ip("::ffff:127.0.0.1"), &allow), Ok(()));
        assert!(address_allowed(ip("127.0.0.2"), &allow).is_err());
        assert!(address_allowed(ip("::1"), &allow).is_err());
        assert!(address_allowed(ip("10.0.0.1"), &allow).is_err());
        let v6: Vec<ipnet::IpNet> = vec!["::1/128".parse().unwrap()];
        assert_eq!(address_allowed(ip("::1"), &v6), Ok(()));
    }

    #[test]
    fn secrets_are_redacted_in_debug() {
        let h = InjectedHeader {
            name: "api".into(),
            hosts: vec![],
            header: "authorization".into(),
            value: "Bearer s3cr3t".into(),
        };
        assert!(!format!("{h:?}").contains("s3cr3t"));
    }
}
