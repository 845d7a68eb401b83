//! The scale loop: how many seeders each function wants now.
//!
//! A function starts with `min_seeders` seeders. The super node holding the
//! `repair` lease runs this loop on every pass, for every announced
//! function, from what its live seeders said on their last heartbeats
//! ([`crate::Load::functions`]): the calls each ran in its last window,
//! how long they took, and how many it answered busy. It keeps the
//! function's **want** (the seeder count it should have now) in the
//! seeding bucket (`<hex>.want`, written only by the lease holder):
//!
//! - **hot** — any seeder answered busy, any other node ran the function
//!   because no seeder could (a super node's fallback), or the seeders'
//!   *utilisation* (time spent in its calls ÷ their call slots × window)
//!   is at least [`Policy::up_at`]: want + 1, up to `max_seeders`, once the
//!   seeders already match the want (no second step before the first one
//!   has a node).
//! - **quiet** — no busy answer, no fallback, utilisation below
//!   [`Policy::down_at`], and a call rate that fell in proportion (at most
//!   `(want − 1) / want` of the rate when the want was last raised: the
//!   load that needed the seeders is gone, not merely spread thin over
//!   them) for [`Policy::down_after`]: want − 1, down to `min_seeders`.
//! - two changes of one function are at least [`Policy::cooldown`] apart.
//!
//! The repair duty then moves the seeders to the want: it asks more nodes
//! to seed (`orb.seed.<id>`) or asks the holders of the highest slots to
//! stop. Nodes claim slots only below the want ([`crate::inventory::claim`]),
//! so an announcement seeds exactly `min_seeders` nodes at first. The loop's
//! memory (since when a function has been quiet, its last change) lives in
//! the lease holder; a new holder starts afresh, which can delay a step
//! down by one `down_after`, never make one wrong.

use crate::deploy::Placement;
use crate::membership::Load;
use crate::{NetError, Network};
use async_nats::jetstream::kv;
use bytes::Bytes;
use orb_core::FunctionId;
use serde::{Deserialize, Serialize};
use std::time::{Duration, Instant};

/// The loop's thresholds (`[network.scale]` in a super node's `orb.toml`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Policy {
    /// Utilisation at or above which a function gets one more seeder.
    pub up_at: f64,
    /// Utilisation below which (with no busy answer) it counts as quiet.
    pub down_at: f64,
    /// How long a function must be quiet before it loses a seeder.
    pub down_after: Duration,
    /// The least time between two changes of one function's want.
    pub cooldown: Duration,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            up_at: 0.5,
            down_at: 0.1,
            down_after: Duration::from_secs(30),
            cooldown: Duration::from_secs(5),
        }
    }
}

impl Policy {
    /// Checks the thresholds: `0 <= down_at < up_at <= 1`.
    pub fn check(&self) -> Result<(), NetError> {
        let ok = |x: f64| x.is_finite() && (0.0..=1.0).contains(&x);
        if !(ok(self.up_at) && ok(self.down_at) && self.down_at < self.up_at) {
            return Err(NetError::Invalid(format!(
                "[network.scale]: need 0 <= down_at < up_at <= 1 (utilisation, a fraction of the seeders' call slots), not down_at = {} and up_at = {}",
                self.down_at, self.up_at
            )));
        }
        Ok(())
    }
}

/// What the live nodes said of one function on their last heartbeats.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Sample {
    /// Time its seeders spent in its calls, microseconds.
    pub call_us: u64,
    /// Its seeders' call slots × their windows, microseconds.
    pub capacity_us: u64,
    /// Calls per second, its seeders' and the overflow, over each node's
    /// window.
    pub rate: f64,
    /// Calls its seeders answered busy.
    pub busy: u64,
    /// Calls of it that nodes which do not seed it ran (a super node's
    /// fallback, when no seeder took them).
    pub overflow: u64,
}

impl Sample {
    /// Adds one node's last heartbeat; `seeds`: whether it holds one of
    /// the function's slots.
    pub fn add(&mut self, load: &Load, hex: &str, seeds: bool) {
        let f = load.functions.get(hex);
        if let Some(f) = f
            && load.window_ms > 0
        {
            self.rate += f.calls as f64 * 1000.0 / load.window_ms as f64;
        }
        if seeds {
            self.capacity_us += load.window_ms * 1000 * u64::from(load.call_slots);
            if let Some(f) = f {
                self.call_us += f.call_us;
                self.busy += f.busy;
            }
        } else if let Some(f) = f {
            self.overflow += f.calls;
        }
    }

    /// Time in calls ÷ call slots × window (0 with no capacity reported).
    pub fn utilisation(&self) -> f64 {
        if self.capacity_us == 0 {
            return 0.0;
        }
        self.call_us as f64 / self.capacity_us as f64
    }
}

/// The loop's memory of one function.
#[derive(Debug, Clone, Default)]
pub struct Memory {
    quiet_since: Option<Instant>,
    last_change: Option<Instant>,
    /// The call rate when the want was last raised (scaled down with each
    /// step down); `None`: not seen by this holder.
    rate_at_up: Option<f64>,
}

/// The function's want after this pass. `want` is its current want,
/// `live` the live seeders it has, `now` the pass's time.
pub fn decide(
    policy: &Policy,
    placement: &Placement,
    want: u32,
    live: u32,
    sample: &Sample,
    memory: &mut Memory,
    now: Instant,
) -> u32 {
    let (min, max) = (placement.min_seeders, placement.max_seeders.max(1));
    let want = bounded(placement, Some(want));
    let cooled = memory
        .last_change
        .is_none_or(|t| now.duration_since(t) >= policy.cooldown);
    let u = sample.utilisation();
    // The share of the load that raised the want which the want − 1
    // seeders would carry.
    let fell = |rate_at_up: f64| {
        want <= 1 || sample.rate <= rate_at_up * f64::from(want - 1) / f64::from(want)
    };
    if sample.busy > 0 || sample.overflow > 0 || u >= policy.up_at {
        memory.quiet_since = None;
        if want < max && live >= want && cooled {
            memory.last_change = Some(now);
            memory.rate_at_up = Some(sample.rate);
            return want + 1;
        }
        // Hot at the same want: the rate it takes is at least this.
        if let Some(r) = memory.rate_at_up.as_mut() {
            *r = r.max(sample.rate);
        }
    } else if u < policy.down_at && memory.rate_at_up.is_none_or(fell) {
        let since = *memory.quiet_since.get_or_insert(now);
        if want > min && cooled && now.duration_since(since) >= policy.down_after {
            memory.last_change = Some(now);
            // The next step down waits a whole `down_after` again.
            memory.quiet_since = Some(now);
            if let Some(r) = memory.rate_at_up.as_mut() {
                *r = *r * f64::from(want - 1) / f64::from(want);
            }
            return want - 1;
        }
    } else {
        memory.quiet_since = None;
    }
    want
}

fn want_key(id: &FunctionId) -> String {
    format!("{}.want", id.hex())
}

/// The function's want as stored (`None`: never changed, so `min_seeders`).
pub async fn read_want(net: &Network, id: &FunctionId) -> Result<Option<u32>, NetError> {
    match net
        .seeding
        .entry(want_key(id))
        .await
        .map_err(|e| NetError::js("read a function's want", e))?
    {
        Some(e) if e.operation == kv::Operation::Put => Ok(std::str::from_utf8(&e.value)
            .ok()
            .and_then(|s| s.parse().ok())),
        _ => Ok(None),
    }
}

/// A stored want (`None`: `min_seeders`) within the placement's bounds.
pub fn bounded(placement: &Placement, stored: Option<u32>) -> u32 {
    let max = placement.max_seeders.max(1);
    stored
        .unwrap_or(placement.min_seeders)
        .clamp(placement.min_seeders.min(max), max)
}

/// The function's want, `min_seeders` when none is stored, within the
/// placement's bounds.
pub async fn want(net: &Network, id: &FunctionId, placement: &Placement) -> Result<u32, NetError> {
    Ok(bounded(placement, read_want(net, id).await?))
}

/// Stores the function's want (only the `repair` lease holder does).
pub async fn write_want(net: &Network, id: &FunctionId, want: u32) -> Result<(), NetError> {
    net.seeding
        .put(want_key(id), Bytes::from(want.to_string()))
        .await
        .map(|_| ())
        .map_err(|e| NetError::js("write a function's want", e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::membership::FunctionLoad;

    fn placement(min: u32, max: u32) -> Placement {
        Placement {
            min_seeders: min,
            max_seeders: max,
            ..Placement::default()
        }
    }

    fn load(window_ms: u64, slots: u32, f: Option<(u64, u64, u64)>) -> Load {
        let mut l = Load {
            call_slots: slots,
            window_ms,
            ..Load::default()
        };
        if let Some((calls, call_us, busy)) = f {
            l.functions.insert(
                "ab".into(),
                FunctionLoad {
                    calls,
                    call_us,
                    busy,
                },
            );
        }
        l
    }

    #[test]
    fn a_sample_sums_seeders_and_counts_other_nodes_as_overflow() {
        let mut s = Sample::default();
        s.add(&load(1000, 4, Some((10, 1_000_000, 0))), "ab", true);
        s.add(&load(1000, 4, None), "ab", true);
        s.add(&load(1000, 8, Some((3, 30, 0))), "ab", false);
        s.add(&load(1000, 8, Some((5, 50, 0))), "cd", true);
        assert_eq!(s.capacity_us, 16_000_000);
        assert_eq!((s.call_us, s.busy, s.overflow), (1_000_000, 0, 3));
        assert!((s.utilisation() - 1.0 / 16.0).abs() < 1e-9);
        assert!((s.rate - 13.0).abs() < 1e-9, "{}", s.rate);
        assert_eq!(Sample::default().utilisation(), 0.0);
    }

    /// Each case: a sequence of passes (seconds since the start, live
    /// seeders, utilisation, busy answers, overflow calls, calls per
    /// second) and the want after each, from min 1, max 3, the default
    /// policy.
    #[test]
    fn the_want_follows_load_within_min_and_max() {
        type Pass = (u64, u32, f64, u64, u64, f64, u32);
        let cases: &[(&str, &[Pass])] = &[
            (
                "busy answers add a seeder once the last one is live",
                &[
                    (0, 1, 0.2, 1, 0, 90.0, 2),
                    (6, 1, 0.2, 1, 0, 90.0, 2), // the second seeder is not live yet
                    (7, 2, 0.2, 1, 0, 90.0, 3),
                    (20, 3, 0.9, 4, 0, 90.0, 3), // at max_seeders
                ],
            ),
            (
                "high utilisation adds a seeder, cooldown spaces the steps",
                &[
                    (0, 1, 0.6, 0, 0, 90.0, 2),
                    (1, 2, 0.6, 0, 0, 90.0, 2),
                    (5, 2, 0.6, 0, 0, 90.0, 3),
                ],
            ),
            (
                "fallback runs elsewhere count as hot",
                &[(0, 1, 0.0, 0, 2, 2.0, 2)],
            ),
            (
                "middling utilisation holds",
                &[(0, 1, 0.3, 0, 0, 9.0, 1), (100, 1, 0.3, 0, 0, 9.0, 1)],
            ),
            (
                "quiet for down_after removes one seeder at a time",
                &[
                    (0, 1, 0.9, 0, 0, 90.0, 2),
                    (5, 2, 0.9, 0, 0, 90.0, 3),
                    (10, 3, 0.0, 0, 0, 0.0, 3),
                    (39, 3, 0.0, 0, 0, 0.0, 3),
                    (40, 3, 0.0, 0, 0, 0.0, 2),
                    (60, 2, 0.05, 0, 0, 1.0, 2),
                    (70, 2, 0.0, 0, 0, 0.0, 1),
                    (200, 1, 0.0, 0, 0, 0.0, 1), // never below min_seeders
                ],
            ),
            (
                "a busy answer restarts the quiet period",
                &[
                    (0, 1, 0.9, 0, 0, 90.0, 2),
                    (10, 2, 0.0, 0, 0, 0.0, 2),
                    (30, 2, 0.0, 1, 0, 90.0, 3),
                    (45, 3, 0.0, 0, 0, 0.0, 3),
                    (74, 3, 0.0, 0, 0, 0.0, 3),
                    (75, 3, 0.0, 0, 0, 0.0, 2),
                ],
            ),
            (
                "a steady load spread thin over its seeders keeps them",
                &[
                    (0, 1, 0.2, 1, 0, 100.0, 2),
                    (5, 2, 0.0, 0, 0, 100.0, 2),
                    (100, 2, 0.0, 0, 0, 100.0, 2),
                    (101, 2, 0.0, 0, 0, 60.0, 2), // above half of 100
                    (102, 2, 0.0, 0, 0, 40.0, 2),
                    (131, 2, 0.0, 0, 0, 40.0, 2),
                    (132, 2, 0.0, 0, 0, 40.0, 1),
                ],
            ),
            (
                "a load that falls by a part gives back that part",
                &[
                    (0, 1, 0.2, 1, 0, 90.0, 2),
                    (5, 2, 0.2, 1, 0, 90.0, 3),
                    (10, 3, 0.0, 0, 0, 50.0, 3), // below 2/3 of 90
                    (40, 3, 0.0, 0, 0, 50.0, 2),
                    (41, 2, 0.0, 0, 0, 50.0, 2), // above 1/2 of 60
                    (200, 2, 0.0, 0, 0, 50.0, 2),
                ],
            ),
        ];
        let policy = Policy::default();
        let p = placement(1, 3);
        for (name, passes) in cases {
            let start = Instant::now();
            let (mut want, mut memory) = (1, Memory::default());
            for &(at, live, u, busy, overflow, rate, expect) in passes.iter() {
                let sample = Sample {
                    call_us: (u * 10_000.0) as u64,
                    capacity_us: 10_000,
                    rate,
                    busy,
                    overflow,
                };
                want = decide(
                    &policy,
                    &p,
                    want,
                    live,
                    &sample,
                    &mut memory,
                    start + Duration::from_secs(at),
                );
                assert_eq!(want, expect, "{name}: at {at} s");
            }
        }
    }

    #[test]
    fn a_stored_want_outside_the_placement_is_brought_back_into_it() {
        let mut m = Memory::default();
        let now = Instant::now();
        let quiet = Sample::default();
        assert_eq!(
            decide(
                &Policy::default(),
                &placement(2, 4),
                9,
                4,
                &quiet,
                &mut m,
                now
            ),
            4
        );
        assert_eq!(
            decide(
                &Policy::default(),
                &placement(2, 4),
                0,
                2,
                &quiet,
                &mut m,
                now
            ),
            2
        );
    }

    #[test]
    fn thresholds_are_checked() {
        assert!(Policy::default().check().is_ok());
        for (down, up) in [
            (0.5, 0.5),
            (0.6, 0.4),
            (-0.1, 0.5),
            (0.1, 1.5),
            (f64::NAN, 0.5),
        ] {
            let p = Policy {
                down_at: down,
                up_at: up,
                ..Policy::default()
            };
            let e = p.check().unwrap_err().to_string();
            assert!(e.contains("down_at < up_at"), "{e}");
        }
    }
}
