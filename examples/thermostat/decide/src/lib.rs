//! Orb example: the thermostat's decision function (seed 000 §7.1).
//!
//! Built twice by `scripts/build-guests`: `thermostat` (v1) and, with the
//! `hysteresis` feature, `thermostat-v2` — the "firmware update".

wit_bindgen::generate!({
    path: ["../../../crates/orb-runtime/keyvalue-draft2-wit", "wit"],
    world: "orb:thermostat/thermostat",
    generate_all,
});

use wasi::keyvalue::store::{self, Bucket};

/// Half-width of v2's band around the setpoint, in °C.
#[cfg(feature = "hysteresis")]
const BAND: f64 = 0.5;

fn bucket() -> Bucket {
    store::open("").unwrap_or_else(|e| panic!("open the namespace: {e:?}"))
}

/// A key's value as JSON text, if present.
fn text(b: &Bucket, key: &str) -> Option<String> {
    let v = b.get(key).unwrap_or_else(|e| panic!("get {key}: {e:?}"))?;
    Some(String::from_utf8(v).expect("values are UTF-8 JSON"))
}

/// The lowest reading under `readings/` (a JSON number, or an object with a
/// number `celsius`); non-numbers are skipped.
fn lowest_reading(b: &Bucket) -> Option<f64> {
    let mut lowest: Option<f64> = None;
    let mut cursor = None;
    loop {
        let page = b
            .list_keys(cursor.as_deref())
            .unwrap_or_else(|e| panic!("list-keys: {e:?}"));
        for k in page.keys.iter().filter(|k| k.starts_with("readings/")) {
            let Some(t) = text(b, k) else { continue };
            let t = t.trim();
            let n = t.parse::<f64>().ok().or_else(|| {
                // {"celsius": 18.5}
                let rest = t.split("\"celsius\"").nth(1)?;
                let rest = rest.trim_start().strip_prefix(':')?.trim_start();
                let end = rest
                    .find(|c: char| !(c.is_ascii_digit() || "+-.eE".contains(c)))
                    .unwrap_or(rest.len());
                rest[..end].parse().ok()
            });
            if let Some(n) = n.filter(|n| n.is_finite()) {
                lowest = Some(lowest.map_or(n, |l| l.min(n)));
            }
        }
        match page.cursor {
            Some(c) => cursor = Some(c),
            None => return lowest,
        }
    }
}

struct Thermostat;

impl Guest for Thermostat {
    fn decide(setpoint: f64) -> String {
        let b = bucket();
        let Some(lowest) = lowest_reading(&b) else {
            println!("no readings: off");
            return "off".into();
        };
        #[cfg(not(feature = "hysteresis"))]
        let on = lowest < setpoint;
        #[cfg(feature = "hysteresis")]
        let on = {
            let was_on = text(&b, "furnace").is_some_and(|t| t.trim() == "\"on\"");
            if was_on {
                lowest < setpoint + BAND
            } else {
                lowest < setpoint - BAND
            }
        };
        let answer = if on { "on" } else { "off" };
        println!("{} lowest {lowest} setpoint {setpoint}: {answer}", Self::version());
        answer.into()
    }

    fn version() -> String {
        if cfg!(feature = "hysteresis") { "v2" } else { "v1" }.into()
    }
}

export!(Thermostat);
