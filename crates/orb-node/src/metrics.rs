//! Prometheus metrics. Names are part of the operator contract.

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use std::sync::OnceLock;

pub const CALLS: &str = "orb_calls_total";
pub const CALL_DURATION: &str = "orb_call_duration_seconds";
pub const CACHE_HITS: &str = "orb_compile_cache_hits_total";
pub const CACHE_MISSES: &str = "orb_compile_cache_misses_total";
pub const COMPILE_SECONDS: &str = "orb_compile_duration_seconds";
pub const IN_FLIGHT: &str = "orb_instances_in_flight";
pub const FUNCTIONS_STORED: &str = "orb_function_uploads_total";
pub const KV_CONFLICTS: &str = "orb_kv_conflicts_total";
pub const TRIGGER_FIRINGS: &str = "orb_trigger_firings_total";
/// Namespace changes waiting to fire their triggers.
pub const TRIGGER_BACKLOG: &str = "orb_trigger_backlog";
/// Client connections open now (plain or TLS).
pub const CONNECTIONS_OPEN: &str = "orb_connections_open";
/// Client connections admitted.
pub const CONNECTIONS_ACCEPTED: &str = "orb_connections_accepted_total";
/// Client connections closed at once, `reason` = `max_connections` |
/// `per_address`.
pub const CONNECTIONS_REFUSED: &str = "orb_connections_refused_total";
/// Client connections closed for keeping the node waiting, `phase` =
/// `header` | `idle` | `write`; `body`: a request body that paused too long
/// (that request fails).
pub const CONNECTIONS_TIMED_OUT: &str = "orb_connections_timed_out_total";

#[derive(Clone)]
pub struct Metrics {
    handle: PrometheusHandle,
}

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

impl Metrics {
    /// Installs the process-wide recorder once.
    pub fn install() -> Self {
        let handle = HANDLE
            .get_or_init(|| {
                let buckets = [
                    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                    0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
                ];
                let builder = PrometheusBuilder::new()
                    .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &buckets)
                    .expect("non-empty buckets");
                let recorder = builder.build_recorder();
                let handle = recorder.handle();
                // Another recorder may already be installed (embedding); then
                // this handle renders nothing but the node still works.
                let _ = metrics::set_global_recorder(recorder);
                metrics::counter!(CACHE_HITS, "source" => "memory").absolute(0);
                metrics::counter!(CACHE_HITS, "source" => "disk").absolute(0);
                metrics::counter!(CACHE_MISSES).absolute(0);
                metrics::gauge!(IN_FLIGHT).set(0.0);
                metrics::gauge!(TRIGGER_BACKLOG).set(0.0);
                handle
            })
            .clone();
        Self { handle }
    }

    pub fn render(&self) -> String {
        self.handle.render()
    }
}
