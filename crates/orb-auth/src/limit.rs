//! Rate limits for callers without a token: one bucket per (route, client
//! address), so one noisy client of a public route does not starve the
//! others, and one busy route does not starve other routes.

use crate::{AuthError, Rate};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Checks between two sweeps of idle buckets.
const SWEEP_EVERY: u64 = 4096;

pub struct AddressLimiter {
    limiter: DefaultKeyedRateLimiter<(String, IpAddr)>,
    checks: AtomicU64,
}

impl AddressLimiter {
    /// `rate.count` requests per `rate.per` for each (route, address).
    pub fn new(rate: Rate) -> Self {
        let count = NonZeroU32::new(rate.count.max(1)).expect("non-zero");
        let period = (rate.per / rate.count.max(1)).max(Duration::from_nanos(1));
        let quota = Quota::with_period(period)
            .expect("non-zero period")
            .allow_burst(count);
        Self {
            limiter: RateLimiter::keyed(quota),
            checks: AtomicU64::new(0),
        }
    }

    /// Takes one request of `route` from `addr`'s bucket.
    pub fn check(&self, route: &str, addr: IpAddr) -> Result<(), AuthError> {
        if self.checks.fetch_add(1, Ordering::Relaxed) % SWEEP_EVERY == SWEEP_EVERY - 1 {
            self.limiter.retain_recent();
        }
        self.limiter
            .check_key(&(route.to_string(), addr))
            .map_err(|not_until| {
                let wait = not_until.wait_time_from(DefaultClock::default().now());
                AuthError::RateLimited {
                    retry_after_secs: wait.as_secs() + u64::from(wait.subsec_nanos() > 0),
                }
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_bucket_per_route_and_address() {
        let l = AddressLimiter::new(Rate::parse("2/60s").unwrap());
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        assert!(l.check("shop", a).is_ok() && l.check("shop", a).is_ok());
        assert!(matches!(
            l.check("shop", a),
            Err(AuthError::RateLimited { retry_after_secs }) if retry_after_secs >= 1
        ));
        assert!(
            l.check("shop", b).is_ok(),
            "another address has its own bucket"
        );
        assert!(
            l.check("blog", a).is_ok(),
            "another route has its own bucket"
        );
    }
}
