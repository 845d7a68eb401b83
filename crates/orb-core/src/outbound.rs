//! Outbound HTTP vocabulary: host patterns (what an allow-list or a secret
//! binding names) and the record of one outgoing request.
//!
//! A **host pattern** is `HOST` or `HOST:PORT`, where `HOST` is
//! - a DNS name (`api.example.com`): that name exactly, case-insensitive,
//!   a trailing dot ignored;
//! - `*.` and a DNS name (`*.example.org`): any name *below* it, at any
//!   depth (`a.example.org`, `a.b.example.org`), never `example.org` itself;
//! - an IPv4 literal (`127.0.0.1`) or a bracketed IPv6 literal (`[::1]`):
//!   that address written that way (a name never matches an IP pattern);
//! - `*`: any host (the SSRF rules still apply).
//!
//! Without a port, a pattern matches any port; with one, only that port
//! (the URL's port, or 80/443 from the scheme). No scheme, path, user info
//! or query: `https://api.example.com/` is refused with a message.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

/// The host part of a pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
enum HostSpec {
    Any,
    Exact(String),
    /// `*.suffix`: stored without the `*.`.
    Below(String),
    V4(Ipv4Addr),
    V6(Ipv6Addr),
}

/// A parsed host pattern (see the module docs for the syntax).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPattern {
    host: HostSpec,
    port: Option<u16>,
    text: String,
}

/// Why a pattern or a host was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{input}` is not a host pattern: {reason}")]
pub struct InvalidHostPattern {
    pub input: String,
    pub reason: String,
}

fn invalid(input: &str, reason: impl Into<String>) -> InvalidHostPattern {
    InvalidHostPattern {
        input: input.to_string(),
        reason: reason.into(),
    }
}

/// Whether `name` is a DNS name Orb accepts: 1–253 bytes of labels of
/// `[a-z0-9_-]` (1–63 each), separated by dots. Expects lowercase.
fn valid_dns_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
        })
}

/// Splits `host[:port]` / `[v6][:port]` into the host text and the port.
fn split_port<'a>(input: &str, s: &'a str) -> Result<(&'a str, Option<u16>), InvalidHostPattern> {
    let parse_port = |p: &str| {
        p.parse::<u16>()
            .ok()
            .filter(|n| *n != 0)
            .ok_or_else(|| invalid(input, format!("port `{p}` is not 1–65535")))
    };
    if let Some(rest) = s.strip_prefix('[') {
        let (inside, after) = rest
            .split_once(']')
            .ok_or_else(|| invalid(input, "an IPv6 literal needs its closing `]`"))?;
        let port = match after {
            "" => None,
            p => Some(parse_port(p.strip_prefix(':').ok_or_else(|| {
                invalid(input, "only `:PORT` may follow an IPv6 literal")
            })?)?),
        };
        return Ok((inside, port));
    }
    match s.rsplit_once(':') {
        Some((h, _)) if h.contains(':') => Err(invalid(
            input,
            "write IPv6 addresses in brackets, like `[::1]` or `[::1]:8080`",
        )),
        Some((h, p)) => Ok((h, Some(parse_port(p)?))),
        None => Ok((s, None)),
    }
}

impl HostPattern {
    /// Parses a pattern.
    pub fn parse(input: &str) -> Result<Self, InvalidHostPattern> {
        let s = input.trim().to_ascii_lowercase();
        if s.is_empty() {
            return Err(invalid(input, "it is empty"));
        }
        if s.len() > 253 {
            return Err(invalid(input, "it is longer than 253 characters"));
        }
        if s.contains("://") || s.contains('/') || s.contains('@') || s.contains('?') {
            return Err(invalid(
                input,
                "write only a host with an optional port, like `api.example.com` or `127.0.0.1:8080` (no scheme, path or user)",
            ));
        }
        let bracketed = s.starts_with('[');
        let (host, port) = split_port(input, &s)?;
        let host = if bracketed {
            let ip: Ipv6Addr = host
                .parse()
                .map_err(|_| invalid(input, format!("`{host}` is not an IPv6 address")))?;
            HostSpec::V6(ip)
        } else {
            if host.ends_with("*.") {
                return Err(invalid(
                    input,
                    "`*.` must be followed by a DNS name, like `*.example.org`",
                ));
            }
            let host = host.strip_suffix('.').unwrap_or(host);
            if host == "*" {
                HostSpec::Any
            } else if let Some(suffix) = host.strip_prefix("*.") {
                if !valid_dns_name(suffix) || suffix.parse::<Ipv4Addr>().is_ok() {
                    return Err(invalid(
                        input,
                        "`*.` must be followed by a DNS name, like `*.example.org`",
                    ));
                }
                HostSpec::Below(suffix.to_string())
            } else if let Ok(ip) = host.parse::<Ipv4Addr>() {
                HostSpec::V4(ip)
            } else if valid_dns_name(host) && !host.bytes().all(|b| b.is_ascii_digit() || b == b'.')
            {
                HostSpec::Exact(host.to_string())
            } else {
                return Err(invalid(
                    input,
                    "a host is a DNS name (letters, digits, `-`, `_`, dots), `*.` and a DNS name, `*`, an IPv4 address or a bracketed IPv6 address; `*` only as a whole leading label",
                ));
            }
        };
        Ok(Self {
            host,
            port,
            text: s,
        })
    }

    /// Whether a request to `host` on `port` matches. `host` is the URL's
    /// host as written (an IPv6 literal with or without brackets).
    pub fn matches(&self, host: &str, port: u16) -> bool {
        if self.port.is_some_and(|p| p != port) {
            return false;
        }
        let host = normalized(host);
        let host = host.as_str();
        let unbracketed = unbracketed(host);
        match &self.host {
            HostSpec::Any => true,
            HostSpec::Exact(name) => host == name,
            HostSpec::Below(suffix) => host
                .strip_suffix(suffix.as_str())
                .is_some_and(|head| head.len() > 1 && head.ends_with('.')),
            HostSpec::V4(ip) => host.parse::<Ipv4Addr>().is_ok_and(|h| h == *ip),
            HostSpec::V6(ip) => unbracketed.parse::<Ipv6Addr>().is_ok_and(|h| h == *ip),
        }
    }

    /// The pattern as given (lowercased, trimmed).
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The pattern in one canonical spelling (`*.example.org`, `10.0.0.1:8080`,
    /// `[::1]`): two patterns that match the same requests have the same
    /// canonical text. It is what [`host_candidates`] lists.
    pub fn canonical(&self) -> String {
        let host = match &self.host {
            HostSpec::Any => "*".to_string(),
            HostSpec::Exact(name) => name.clone(),
            HostSpec::Below(suffix) => format!("*.{suffix}"),
            HostSpec::V4(ip) => ip.to_string(),
            HostSpec::V6(ip) => format!("[{ip}]"),
        };
        match self.port {
            Some(p) => format!("{host}:{p}"),
            None => host,
        }
    }
}

impl fmt::Display for HostPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// Parses a list of patterns; the first bad one is the error.
pub fn parse_host_patterns<S: AsRef<str>>(
    list: &[S],
) -> Result<Vec<HostPattern>, InvalidHostPattern> {
    list.iter()
        .map(|s| HostPattern::parse(s.as_ref()))
        .collect()
}

/// A request's host as patterns see it: trimmed, lowercase, without a
/// trailing dot.
fn normalized(host: &str) -> String {
    let host = host.trim().to_ascii_lowercase();
    match host.strip_suffix('.') {
        Some(h) => h.to_string(),
        None => host,
    }
}

/// An IPv6 literal without its brackets (anything else unchanged).
fn unbracketed(host: &str) -> &str {
    host.strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host)
}

/// The canonical text of every pattern that matches a request to
/// `host`/`port`: `p.matches(host, port)` holds exactly when
/// `host_candidates(host, port)` contains `p.canonical()`. This lets a
/// check that holds a set of patterns (a token's attenuation block, in
/// Datalog) decide a request with a set lookup, without a matcher of its own.
pub fn host_candidates(host: &str, port: u16) -> Vec<String> {
    let host = normalized(host);
    let host = host.as_str();
    let unbracketed = unbracketed(host);
    let mut specs = vec!["*".to_string(), host.to_string()];
    for (i, b) in host.bytes().enumerate() {
        if b == b'.' && i >= 1 {
            specs.push(format!("*.{}", &host[i + 1..]));
        }
    }
    if let Ok(ip) = host.parse::<Ipv4Addr>() {
        specs.push(ip.to_string());
    }
    if let Ok(ip) = unbracketed.parse::<Ipv6Addr>() {
        specs.push(format!("[{ip}]"));
    }
    specs.sort();
    specs.dedup();
    let mut out = Vec::with_capacity(specs.len() * 2);
    for s in specs {
        out.push(format!("{s}:{port}"));
        out.push(s);
    }
    out
}

/// Whether any pattern matches `host`/`port`.
pub fn any_matches(patterns: &[HostPattern], host: &str, port: u16) -> bool {
    patterns.iter().any(|p| p.matches(host, port))
}

/// One outgoing HTTP request a call made (or tried), as listed in its
/// activation. Never holds an injected credential: only the method, the URL
/// the guest built, what happened, and sizes.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct OutboundRequest {
    pub method: String,
    pub url: String,
    /// The response status, when a response came.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// Why it was refused or failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The address connected to, once the request passed every check (a
    /// request with an address may have reached the server: a side effect).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
    /// Request body bytes sent.
    #[serde(default)]
    pub bytes_out: u64,
    /// Response body bytes received.
    #[serde(default)]
    pub bytes_in: u64,
    pub duration_us: u64,
}

impl OutboundRequest {
    /// Whether the request may have reached a server.
    pub fn sent(&self) -> bool {
        self.address.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> HostPattern {
        HostPattern::parse(s).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn exact_names_ignore_case_and_trailing_dot() {
        let pat = p("API.Example.com");
        assert!(pat.matches("api.example.com", 443));
        assert!(pat.matches("API.EXAMPLE.COM.", 80));
        assert!(!pat.matches("example.com", 443));
        assert!(!pat.matches("xapi.example.com", 443));
        assert!(!pat.matches("api.example.com.evil.net", 443));
        assert_eq!(pat.as_str(), "api.example.com");
        assert!(p("example.com.").matches("example.com", 1));
    }

    #[test]
    fn candidates_agree_with_matches() {
        let patterns = [
            "*",
            "*:443",
            "api.example.com",
            "API.example.com.:8443",
            "*.example.com",
            "*.b.example.com:80",
            "example.com",
            "10.0.0.1",
            "10.0.0.1:8080",
            "[::1]",
            "[0:0::1]:443",
            "[::ffff:10.0.0.1]",
            "*.com",
            "a_b.internal",
        ];
        let hosts = [
            "api.example.com",
            "API.EXAMPLE.COM.",
            "a.b.example.com",
            "example.com",
            "badexample.com",
            ".example.com",
            "a..example.com",
            "10.0.0.1",
            "010.0.0.1",
            "[::1]",
            "::1",
            "[0::1]",
            "[::ffff:10.0.0.1]",
            "a_b.internal",
            "",
            ".",
            "com",
        ];
        for pat in patterns {
            let pat = p(pat);
            assert_eq!(
                HostPattern::parse(&pat.canonical()).as_ref(),
                Ok(&HostPattern {
                    text: pat.canonical(),
                    ..pat.clone()
                }),
                "{pat}"
            );
            for host in hosts {
                for port in [80, 443, 8080, 8443] {
                    assert_eq!(
                        pat.matches(host, port),
                        host_candidates(host, port).contains(&pat.canonical()),
                        "pattern {pat} ({}) host {host:?} port {port}",
                        pat.canonical()
                    );
                }
            }
        }
    }

    #[test]
    fn wildcard_matches_below_only() {
        let pat = p("*.example.org");
        assert!(pat.matches("a.example.org", 443));
        assert!(pat.matches("a.b.example.org", 443));
        assert!(!pat.matches("example.org", 443));
        assert!(!pat.matches("badexample.org", 443));
        assert!(!pat.matches(".example.org", 443));
        assert!(!pat.matches("a.example.org.evil.net", 443));
        assert!(p("*").matches("anything.at.all", 1));
        assert!(p("*").matches("10.0.0.1", 1));
    }

    #[test]
    fn a_pattern_is_at_most_253_characters() {
        let long = format!("*.{}", ["abcdefghi"; 26].join("."));
        assert_eq!(long.len(), 261);
        let e = HostPattern::parse(&long).unwrap_err().to_string();
        assert!(e.contains("253"), "{e}");
        let name = ["abcdefghi"; 25].join(".");
        assert!(HostPattern::parse(&name).is_ok());
    }

    #[test]
    fn ports() {
        let pat = p("127.0.0.1:8080");
        assert!(pat.matches("127.0.0.1", 8080));
        assert!(!pat.matches("127.0.0.1", 80));
        let any = p("127.0.0.1");
        assert!(any.matches("127.0.0.1", 80) && any.matches("127.0.0.1", 9));
        assert!(p("*.example.org:443").matches("a.example.org", 443));
        assert!(!p("*.example.org:443").matches("a.example.org", 80));
        assert!(p("api.example.com:80").matches("api.example.com", 80));
    }

    #[test]
    fn ip_literals() {
        assert!(p("[::1]").matches("[::1]", 80));
        assert!(p("[::1]").matches("::1", 80));
        assert!(p("[0:0::1]:8080").matches("[::1]", 8080));
        assert!(!p("[::1]:8080").matches("[::1]", 80));
        assert!(!p("127.0.0.1").matches("localhost", 80));
        assert!(!p("localhost").matches("127.0.0.1", 80));
        assert!(!p("10.0.0.1").matches("10.0.0.10", 80));
    }

    #[test]
    fn bad_patterns_are_refused() {
        for bad in [
            "",
            "  ",
            "https://api.example.com",
            "api.example.com/path",
            "user@api.example.com",
            "api..example.com",
            "*example.com",
            "a.*.example.com",
            "*.",
            "*.*.example.com",
            "api.example.com:0",
            "api.example.com:65536",
            "api.example.com:http",
            "::1",
            "[::1",
            "[nope]",
            "[::1]x",
            "exa mple.com",
            "1.2.3",
            "*.1.2.3.4",
        ] {
            assert!(
                HostPattern::parse(bad).is_err(),
                "{bad:?} should be refused"
            );
        }
        let e = HostPattern::parse("https://x.org").unwrap_err();
        assert!(e.to_string().contains("no scheme"), "{e}");
    }

    #[test]
    fn lists() {
        let list = parse_host_patterns(&["a.org", "*.b.org:8443"]).unwrap();
        assert!(any_matches(&list, "a.org", 1));
        assert!(any_matches(&list, "x.b.org", 8443));
        assert!(!any_matches(&list, "x.b.org", 443));
        assert!(parse_host_patterns(&["a.org", "bad/"]).is_err());
    }
}
