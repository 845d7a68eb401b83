//! Orb test guest: triggers, sequences and kappas.

wit_bindgen::generate!({
    path: ["../../../crates/orb-runtime/keyvalue-draft2-wit", "wit"],
    world: "orb:events/events",
    generate_all,
});

use wasi::keyvalue::store::{self, Bucket};

fn bucket() -> Bucket {
    store::open("").unwrap_or_else(|e| panic!("open: {e:?}"))
}

fn number(b: &Bucket, key: &str) -> Option<f64> {
    let v = b.get(key).unwrap_or_else(|e| panic!("get {key}: {e:?}"))?;
    let text = String::from_utf8(v).expect("UTF-8 value");
    Some(text.trim().parse().unwrap_or_else(|_| panic!("{key} is not a number: {text}")))
}

fn set(b: &Bucket, key: &str, value: &str) {
    b.set(key, value.as_bytes())
        .unwrap_or_else(|e| panic!("set {key}: {e:?}"));
}

/// Every key under `prefix`, following the cursor.
fn keys(b: &Bucket, prefix: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cursor = None;
    loop {
        let page = b
            .list_keys(cursor.as_deref())
            .unwrap_or_else(|e| panic!("list-keys: {e:?}"));
        out.extend(page.keys.into_iter().filter(|k| k.starts_with(prefix)));
        match page.cursor {
            Some(c) => cursor = Some(c),
            None => return out,
        }
    }
}

struct Events;

impl Guest for Events {
    fn decide(setpoint: f64) -> String {
        let b = bucket();
        let lowest = keys(&b, "readings/")
            .iter()
            .filter_map(|k| number(&b, k))
            .fold(f64::INFINITY, f64::min);
        println!("lowest reading {lowest}, setpoint {setpoint}");
        if lowest < setpoint { "on" } else { "off" }.to_string()
    }

    fn double(n: i64) -> Num {
        Num { n: n * 2 }
    }

    fn inc(n: i64) -> Num {
        Num { n: n + 1 }
    }

    fn guard(n: i64) -> Num {
        if n > 100 {
            panic!("guard: {n} is over 100");
        }
        Num { n }
    }

    fn scalar(n: i64) -> i64 {
        n
    }

    fn observe(reading: f64) -> Option<Stats> {
        let b = bucket();
        let count = number(&b, "count").unwrap_or(0.0) as u32 + 1;
        let sum = number(&b, "sum").unwrap_or(0.0) + reading;
        set(&b, "count", &count.to_string());
        set(&b, "sum", &sum.to_string());
        (count % 3 == 0).then(|| Stats {
            count,
            mean: sum / f64::from(count),
        })
    }

    fn note_change(key: String, deleted: bool) -> String {
        let b = bucket();
        let seen = keys(&b, "seen/").len();
        let text = format!("{key} {}", if deleted { "deleted" } else { "set" });
        set(&b, &format!("seen/{seen:04}"), &format!("{text:?}"));
        text
    }
}

export!(Events);
