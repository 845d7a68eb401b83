//! Entry points for the fuzz targets under `fuzz/` (feature `fuzzing`, off
//! in every build of the node): the parsers that face untrusted input,
//! reached without a node, a store or a network. Each answers whether the
//! input was accepted; a panic (or an abort) is the only failure a fuzzer
//! looks for.

use crate::services::{namespaces, schedules};
use std::collections::BTreeMap;

/// 2026-01-01T00:00:00Z in milliseconds: "now" for the schedule target, so a
/// run is repeatable.
const NOW_MS: u64 = 1_767_225_600_000;

/// A schedule's JSON body (`every`, `cron`, `timezone`, `start_at`,
/// `end_at`, …) as `POST /v1/schedules` parses it, then every tick
/// computation the scheduler makes from it.
pub fn schedule(body: &[u8]) -> bool {
    let Ok(spec) = serde_json::from_slice::<schedules::ScheduleRequest>(body) else {
        return false;
    };
    let Ok(t) = schedules::timing(&spec) else {
        return false;
    };
    let _ = schedules::end_ms(&spec);
    let _ = schedules::min_interval(&t);
    let Ok(first) = schedules::first_tick(&spec, &t, NOW_MS) else {
        return false;
    };
    if let Some(first) = first {
        let next = schedules::next_after(&t, first);
        let later = first.saturating_add(86_400_000);
        let _ = schedules::first_tick_after(&t, first, later);
        for policy in [crate::MissedTicks::One, crate::MissedTicks::Skip] {
            let _ = schedules::resume_after_downtime(policy, &t, next.unwrap_or(first), later);
        }
    }
    true
}

/// A query string as the routes' `Query` extractors parse it, and the
/// parameters the node reads from it (`limit`, `after`, `prefix`, `wait`).
pub fn query(q: &str) -> bool {
    use axum::extract::Query;
    let Ok(uri) = format!("/?{q}").parse::<axum::http::Uri>() else {
        return false;
    };
    let _ = Query::<Vec<(String, String)>>::try_from_uri(&uri);
    let Ok(Query(map)) = Query::<BTreeMap<String, String>>::try_from_uri(&uri) else {
        return false;
    };
    let _ = namespaces::list_limit(&map);
    if let Some(wait) = map.get("wait") {
        let _ = humantime::parse_duration(wait);
    }
    if let Some(f) = map.get("function") {
        let _ = crate::services::functions::parse_id(f);
    }
    true
}

/// A namespace name, a key, and bytes taken both as a value
/// (`PUT …/keys/{key}`: JSON, or raw bytes shown as base64) and as an
/// import body (`POST …/import`).
pub fn namespace(name: &str, key: &str, value: &[u8]) -> bool {
    let name_ok = crate::caller::check_namespace_name(name).is_ok();
    let key_ok = namespaces::check_key(key).is_ok();
    let _ = namespaces::View::of(value);
    if let Ok(v) = serde_json::from_slice::<serde_json::Value>(value) {
        let _ = serde_json::to_vec(&v);
        if let Ok(writes) = namespaces::import_writes(v) {
            for (k, _) in &writes {
                assert!(orb_core::valid_key(k), "import accepted the bad key {k:?}");
            }
        }
    }
    name_ok && key_ok
}
