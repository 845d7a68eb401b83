//! Usage statistics (`GET /v1/activations/stats`): calls, errors, p50/p99
//! duration and fuel of a function (or of everything the caller sees) over
//! a window, in buckets — computed from the activations the store keeps,
//! with the same walls as listing them (an account sees only its own, a
//! public token only its lineage's).

use crate::caller::Claims;
use crate::services::activations;
use crate::{ApiError, Node};
use orb_core::{Activation, ActivationStatus, ErrorCode, FunctionId};
use serde::Serialize;
use std::time::{Duration, SystemTime};

/// Activations read per page, and at most this many pages (the store
/// keeps `max_activations`, 10,000 by default).
const PAGE: usize = 1000;
const MAX_PAGES: usize = 20;

/// Windows from a minute to 30 days; buckets 1–240.
const MIN_WINDOW: Duration = Duration::from_secs(60);
const MAX_WINDOW: Duration = Duration::from_secs(30 * 86_400);
pub(crate) const MAX_BUCKETS: u32 = 240;

/// What a set of calls did.
#[derive(Debug, Clone, Default, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Figures {
    /// Calls that ended (succeeded or failed).
    pub calls: u64,
    /// Calls that failed.
    pub errors: u64,
    /// Median duration in microseconds (`null` without calls).
    pub p50_us: Option<u64>,
    /// 99th percentile duration in microseconds (nearest rank).
    pub p99_us: Option<u64>,
    /// Longest duration in microseconds.
    pub max_us: Option<u64>,
    /// Fuel the calls consumed together.
    pub fuel: u64,
}

/// One interval of the window.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Bucket {
    /// Where the interval starts, RFC 3339.
    pub start: String,
    #[serde(flatten)]
    pub figures: Figures,
}

/// The answer of `GET /v1/activations/stats`.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Stats {
    /// The function counted (absent: every function the caller sees).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub function: Option<FunctionId>,
    /// The window, RFC 3339: `from` inclusive, `to` (now) exclusive.
    pub from: String,
    pub to: String,
    pub window_s: u64,
    /// Each bucket's length in milliseconds.
    pub bucket_ms: u64,
    /// The whole window.
    pub total: Figures,
    /// Oldest first.
    pub buckets: Vec<Bucket>,
    /// Activations of the caller's read to compute this.
    pub scanned: u64,
    /// `false` when older activations of the window were not read (more
    /// than 20,000 newer ones): the figures then cover the newest part.
    pub complete: bool,
}

/// One finished call as the figures need it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Sample {
    pub start: SystemTime,
    pub duration_us: u64,
    pub fuel: u64,
    pub failed: bool,
}

impl Sample {
    /// A call that ran a function and ended; `None` for firings and
    /// sequences (they ran no function themselves), calls still queued or
    /// running, and unreadable times.
    fn of(a: &Activation) -> Option<Sample> {
        a.function.as_ref()?;
        let failed = match a.status {
            ActivationStatus::Succeeded => false,
            ActivationStatus::Failed => true,
            ActivationStatus::Queued | ActivationStatus::Running => return None,
        };
        let start = chrono::DateTime::parse_from_rfc3339(&a.start).ok()?;
        Some(Sample {
            start: SystemTime::from(start),
            duration_us: a.duration_us,
            fuel: a.fuel,
            failed,
        })
    }
}

/// `?window=`: `90s`, `15m`, `1h`, `7d`, from a minute to 30 days.
pub(crate) fn parse_window(text: &str) -> Result<Duration, ApiError> {
    let bad = || {
        ApiError::new(
            ErrorCode::InvalidRequest,
            format!("`window` `{text}` is not a duration from 1m to 30d like `15m`, `1h` or `7d`"),
        )
    };
    let split = text.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
    let (digits, unit) = text.split_at(split);
    let n: u64 = (!digits.is_empty() && digits.len() <= 7)
        .then(|| digits.parse().ok())
        .flatten()
        .ok_or_else(bad)?;
    let secs = match unit {
        "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        "d" => n * 86_400,
        _ => return Err(bad()),
    };
    let window = Duration::from_secs(secs);
    if !(MIN_WINDOW..=MAX_WINDOW).contains(&window) {
        return Err(bad());
    }
    Ok(window)
}

/// `?buckets=`: 1–240.
pub(crate) fn parse_buckets(text: &str) -> Result<u32, ApiError> {
    text.parse::<u32>()
        .ok()
        .filter(|b| (1..=MAX_BUCKETS).contains(b))
        .ok_or_else(|| {
            ApiError::new(
                ErrorCode::InvalidRequest,
                format!("`buckets` must be an integer from 1 to {MAX_BUCKETS}, got `{text}`"),
            )
        })
}

/// The nearest-rank percentile `p` (0–100] of sorted durations.
fn percentile(sorted: &[u64], p: u64) -> Option<u64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (sorted.len() as u64 * p).div_ceil(100).max(1);
    sorted.get(rank as usize - 1).copied()
}

fn figures(samples: &[&Sample]) -> Figures {
    let mut durations: Vec<u64> = samples.iter().map(|s| s.duration_us).collect();
    durations.sort_unstable();
    Figures {
        calls: samples.len() as u64,
        errors: samples.iter().filter(|s| s.failed).count() as u64,
        p50_us: percentile(&durations, 50),
        p99_us: percentile(&durations, 99),
        max_us: durations.last().copied(),
        fuel: samples.iter().map(|s| s.fuel).sum(),
    }
}

fn rfc3339(t: SystemTime) -> String {
    humantime::format_rfc3339_millis(t).to_string()
}

/// The figures of `samples` in the window that ends at `to`, in `buckets`
/// intervals (oldest first); samples outside the window are left out.
pub(crate) fn compute(
    samples: &[Sample],
    to: SystemTime,
    window: Duration,
    buckets: u32,
) -> (Figures, Vec<Bucket>, Duration) {
    let from = to.checked_sub(window).unwrap_or(SystemTime::UNIX_EPOCH);
    let n = buckets.max(1);
    let width_ms = (window.as_millis() as u64).div_ceil(u64::from(n)).max(1);
    let width = Duration::from_millis(width_ms);
    let inside: Vec<&Sample> = samples
        .iter()
        .filter(|s| s.start >= from && s.start < to)
        .collect();
    let mut per: Vec<Vec<&Sample>> = vec![Vec::new(); n as usize];
    for s in &inside {
        let offset = s.start.duration_since(from).unwrap_or_default().as_millis() as u64;
        let i = ((offset / width_ms) as usize).min(n as usize - 1);
        per[i].push(s);
    }
    let list = per
        .iter()
        .enumerate()
        .map(|(i, group)| Bucket {
            start: rfc3339(from + width * i as u32),
            figures: figures(group),
        })
        .collect();
    (figures(&inside), list, width)
}

/// `GET /v1/activations/stats`: the caller's activations (of `function`
/// when given) in the window ending now.
pub(crate) async fn stats(
    node: &Node,
    claims: &Claims,
    function: Option<FunctionId>,
    window: Duration,
    buckets: u32,
) -> Result<Stats, ApiError> {
    let to = SystemTime::now();
    let from = to.checked_sub(window).unwrap_or(SystemTime::UNIX_EPOCH);
    let mut samples = Vec::new();
    let mut before = None;
    let mut scanned = 0u64;
    let mut complete = false;
    for _ in 0..MAX_PAGES {
        let (seen, next) = activations::page(node, claims, function.as_ref(), before, PAGE).await?;
        scanned += seen.len() as u64;
        let mut older = false;
        for s in seen.iter().filter_map(Sample::of) {
            older |= s.start < from;
            samples.push(s);
        }
        before = next;
        if older || before.is_none() {
            complete = true;
            break;
        }
    }
    let (total, list, width) = compute(&samples, to, window, buckets);
    Ok(Stats {
        function,
        from: rfc3339(from),
        to: rfc3339(to),
        window_s: window.as_secs(),
        bucket_ms: width.as_millis() as u64,
        total,
        buckets: list,
        scanned,
        complete,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(to: SystemTime, ago_s: u64, duration_us: u64, failed: bool) -> Sample {
        Sample {
            start: to - Duration::from_secs(ago_s),
            duration_us,
            fuel: 10,
            failed,
        }
    }

    #[test]
    fn windows_and_buckets_parse_within_their_bounds() {
        assert_eq!(parse_window("15m").unwrap(), Duration::from_secs(900));
        assert_eq!(parse_window("1h").unwrap(), Duration::from_secs(3600));
        assert_eq!(parse_window("7d").unwrap(), Duration::from_secs(604_800));
        assert_eq!(parse_window("90s").unwrap(), Duration::from_secs(90));
        for bad in ["", "h", "1", "30s", "31d", "1w", "-1h", "1.5h", "99999999h"] {
            let e = parse_window(bad).unwrap_err();
            assert_eq!(e.0.code, ErrorCode::InvalidRequest.as_str(), "{bad}");
        }
        assert_eq!(parse_buckets("60").unwrap(), 60);
        for bad in ["0", "241", "x", "-1"] {
            assert!(parse_buckets(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let v: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&v, 50), Some(50));
        assert_eq!(percentile(&v, 99), Some(99));
        assert_eq!(percentile(&[7], 99), Some(7));
        assert_eq!(percentile(&[1, 2], 50), Some(1));
        assert_eq!(percentile(&[], 50), None);
    }

    #[test]
    fn calls_fall_into_their_buckets_and_the_window_bounds_them() {
        let to = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let samples = [
            at(to, 3500, 100, false), // first of 4 buckets (15 min each)
            at(to, 3500, 300, true),
            at(to, 1000, 200, false), // third
            at(to, 1, 50, false),     // last
            at(to, 3601, 999, true),  // before the window
        ];
        let (total, buckets, width) = compute(&samples, to, Duration::from_secs(3600), 4);
        assert_eq!(width, Duration::from_secs(900));
        assert_eq!(
            total,
            Figures {
                calls: 4,
                errors: 1,
                p50_us: Some(100),
                p99_us: Some(300),
                max_us: Some(300),
                fuel: 40,
            }
        );
        let calls: Vec<u64> = buckets.iter().map(|b| b.figures.calls).collect();
        assert_eq!(calls, [2, 0, 1, 1]);
        assert_eq!(buckets[0].figures.errors, 1);
        assert_eq!(buckets[0].figures.p50_us, Some(100));
        assert_eq!(buckets[1].figures, Figures::default());
        assert_eq!(buckets[0].start, rfc3339(to - Duration::from_secs(3600)));
        assert_eq!(buckets[3].start, rfc3339(to - Duration::from_secs(900)));
    }

    #[test]
    fn only_finished_calls_of_a_function_count() {
        let mut a = Activation {
            id: "x".into(),
            function: Some(FunctionId::of(b"f")),
            status: ActivationStatus::Succeeded,
            start: "2026-12-02T10:00:00.250Z".into(),
            duration_us: 5,
            fuel: 7,
            ..Default::default()
        };
        let s = Sample::of(&a).unwrap();
        assert_eq!(
            s.start,
            SystemTime::UNIX_EPOCH + Duration::from_millis(1_796_205_600_250)
        );
        assert!(!s.failed);
        a.status = ActivationStatus::Failed;
        assert!(Sample::of(&a).unwrap().failed);
        a.status = ActivationStatus::Running;
        assert_eq!(Sample::of(&a), None);
        a.status = ActivationStatus::Succeeded;
        a.function = None;
        assert_eq!(Sample::of(&a), None);
    }
}
