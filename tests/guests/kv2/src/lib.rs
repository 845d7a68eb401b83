//! Orb test guest: wasi:keyvalue@0.2.0-draft2.

wit_bindgen::generate!({
    path: ["../../../crates/orb-runtime/keyvalue-draft2-wit", "wit"],
    world: "orb:kv2/kv2",
    generate_all,
});

use wasi::keyvalue::atomics::{self, Cas, CasError};
use wasi::keyvalue::store::{self, Bucket, Error};
use wasi::keyvalue::batch;

fn render(e: &Error) -> String {
    match e {
        Error::NoSuchStore => "no-such-store".to_string(),
        Error::AccessDenied => "access-denied".to_string(),
        Error::Other(msg) => format!("other: {msg}"),
    }
}

fn ok<T>(op: &str, r: Result<T, Error>) -> T {
    r.unwrap_or_else(|e| panic!("keyvalue {op}: {}", render(&e)))
}

fn text(bytes: Vec<u8>) -> String {
    String::from_utf8(bytes).unwrap_or_else(|e| panic!("value is not UTF-8: {e}"))
}

fn open(name: &str) -> Result<Bucket, String> {
    store::open(name).map_err(|e| render(&e))
}

struct Kv2;

impl Guest for Kv2 {
    fn cas_counter() -> i64 {
        let b = ok("open", store::open(""));
        let mut cas = ok("cas.new", Cas::new(&b, "counter"));
        loop {
            let current = match ok("cas.current", cas.current()) {
                None => 0,
                Some(v) => text(v).trim().parse::<i64>().expect("counter is an integer"),
            };
            let next = current + 1;
            match atomics::swap(cas, next.to_string().as_bytes()) {
                Ok(()) => return next,
                Err(CasError::CasFailed(fresh)) => cas = fresh,
                Err(CasError::StoreError(e)) => panic!("swap: {}", render(&e)),
            }
        }
    }

    fn incr(delta: i64) -> i64 {
        let b = ok("open", store::open(""));
        ok("increment", atomics::increment(&b, "atomic", delta))
    }

    fn cas_stale(key: String) -> String {
        let b = ok("open", store::open(""));
        let cas = ok("cas.new", Cas::new(&b, &key));
        ok("set", b.set(&key, b"\"changed\""));
        match atomics::swap(cas, b"\"swapped\"") {
            Ok(()) => "swapped".to_string(),
            Err(CasError::CasFailed(fresh)) => {
                let now = ok("cas.current", fresh.current()).map(text).unwrap_or_default();
                format!("cas-failed:{now}")
            }
            Err(CasError::StoreError(e)) => panic!("swap: {}", render(&e)),
        }
    }

    fn keys(bucket: String) -> Result<Vec<String>, String> {
        let b = open(&bucket)?;
        let mut all = Vec::new();
        let mut cursor = None;
        loop {
            let page = b.list_keys(cursor.as_deref()).map_err(|e| render(&e))?;
            all.extend(page.keys);
            match page.cursor {
                Some(c) => cursor = Some(c),
                None => break,
            }
        }
        Ok(all)
    }

    fn get_from(bucket: String, key: String) -> Result<Option<String>, String> {
        let b = open(&bucket)?;
        b.get(&key).map(|v| v.map(text)).map_err(|e| render(&e))
    }

    fn put_into(bucket: String, key: String, value: String) -> Result<(), String> {
        let b = open(&bucket)?;
        b.set(&key, value.as_bytes()).map_err(|e| render(&e))
    }

    fn get_n(prefix: String, distinct: u32, rounds: u32) -> u32 {
        let b = ok("open", store::open(""));
        let keys: Vec<String> = (0..distinct).map(|i| format!("{prefix}{i}")).collect();
        let mut found = 0;
        for _ in 0..rounds {
            for k in &keys {
                found += u32::from(ok("get", b.get(k)).is_some());
            }
        }
        found
    }

    fn del_many(keys: Vec<String>) {
        let b = ok("open", store::open(""));
        ok("delete-many", batch::delete_many(&b, &keys));
    }
}

export!(Kv2);
