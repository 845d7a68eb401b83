//! A schedule's JSON body: `every` durations, `cron` patterns, time zones
//! and RFC 3339 bounds, and the ticks the scheduler computes from them.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    orb_node::fuzzing::schedule(data);
});
