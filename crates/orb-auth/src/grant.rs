use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

/// Access to a namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Access {
    #[serde(rename = "r")]
    Read,
    #[serde(rename = "w")]
    Write,
    #[serde(rename = "rw")]
    ReadWrite,
}

impl Access {
    pub fn can_read(self) -> bool {
        matches!(self, Access::Read | Access::ReadWrite)
    }
    pub fn can_write(self) -> bool {
        matches!(self, Access::Write | Access::ReadWrite)
    }
    pub fn parse(s: &str) -> Option<Access> {
        match s {
            "r" => Some(Access::Read),
            "w" => Some(Access::Write),
            "rw" => Some(Access::ReadWrite),
            _ => None,
        }
    }
}

/// `count` calls per `per`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rate {
    pub count: u32,
    #[serde(with = "humantime_serde_compat")]
    pub per: Duration,
}

/// How a public token may use schedules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduleLimits {
    pub max: u32,
    #[serde(with = "humantime_serde_compat")]
    pub min_interval: Duration,
}

/// What a public token may do. Private tokens may do everything in their
/// account and carry no grant.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Grant {
    /// Namespaces and access (`"r"`, `"w"`, `"rw"`).
    #[serde(default)]
    pub namespaces: BTreeMap<String, Access>,
    /// May upload components. Without it the token may only call by hash.
    #[serde(default)]
    pub upload: bool,
    /// Functions it may call; `None` means any function of the account.
    #[serde(default)]
    pub functions: Option<Vec<String>>,
    #[serde(default)]
    pub rate: Option<Rate>,
    #[serde(default)]
    pub schedules: Option<ScheduleLimits>,
    /// Hosts functions may reach over HTTP on behalf of this token.
    #[serde(default)]
    pub outbound_hosts: Vec<String>,
    /// Triggers it may fire (`POST /v1/triggers/{name}`); none by default.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub triggers: Vec<String>,
}

/// What `orb token attenuate` appends: each part becomes a Datalog check.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Narrowing {
    /// Only these operations (`invoke`, `functions.read`, `functions.write`, …).
    #[serde(default)]
    pub operations: Option<Vec<String>>,
    /// Only these functions.
    #[serde(default)]
    pub functions: Option<Vec<String>>,
    /// Only these namespaces (a call naming no namespace is then refused).
    #[serde(default)]
    pub namespaces: Option<Vec<String>>,
    /// Only these hosts for the functions' outbound HTTP requests (host
    /// patterns as in `outbound_hosts`; within what the grant or the
    /// account's policy already allows).
    #[serde(default)]
    pub hosts: Option<Vec<String>>,
    /// Expires after this long from now.
    #[serde(default, with = "humantime_serde_compat::option")]
    pub expires_in: Option<Duration>,
}

/// `"30s"`-style durations in JSON (also accepts milliseconds as a number).
pub(crate) mod humantime_serde_compat {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Text(String),
        Millis(u64),
    }

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&humantime::format_duration(*d).to_string())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        match Raw::deserialize(d)? {
            Raw::Text(t) => humantime::parse_duration(&t).map_err(serde::de::Error::custom),
            Raw::Millis(ms) => Ok(Duration::from_millis(ms)),
        }
    }

    pub mod option {
        use super::*;
        pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
            match d {
                Some(d) => super::serialize(d, s),
                None => s.serialize_none(),
            }
        }
        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
            Option::<Raw>::deserialize(d)?
                .map(|raw| match raw {
                    Raw::Text(t) => humantime::parse_duration(&t).map_err(serde::de::Error::custom),
                    Raw::Millis(ms) => Ok(Duration::from_millis(ms)),
                })
                .transpose()
        }
    }
}

impl Rate {
    /// Parses `5/60s`.
    pub fn parse(s: &str) -> Result<Rate, String> {
        let (count, per) = s
            .split_once('/')
            .ok_or_else(|| format!("rate `{s}` must look like 5/60s"))?;
        let count: u32 = count
            .trim()
            .parse()
            .map_err(|_| format!("rate `{s}`: `{count}` is not a count"))?;
        let per = humantime::parse_duration(per.trim()).map_err(|e| format!("rate `{s}`: {e}"))?;
        if count == 0 || per.is_zero() {
            return Err(format!(
                "rate `{s}` must allow at least one call per non-zero period"
            ));
        }
        Ok(Rate { count, per })
    }
}

impl ScheduleLimits {
    /// Parses `1@30s` (at most 1 schedule, at least 30 s apart).
    pub fn parse(s: &str) -> Result<ScheduleLimits, String> {
        let (max, min) = s
            .split_once('@')
            .ok_or_else(|| format!("schedules `{s}` must look like 1@30s"))?;
        Ok(ScheduleLimits {
            max: max
                .trim()
                .parse()
                .map_err(|_| format!("schedules `{s}`: `{max}` is not a count"))?,
            min_interval: humantime::parse_duration(min.trim())
                .map_err(|e| format!("schedules `{s}`: {e}"))?,
        })
    }
}
