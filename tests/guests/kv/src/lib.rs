//! Orb test guest: wasi:keyvalue (store, atomics, batch) on the bucket "".

wit_bindgen::generate!({
    path: ["../../../examples/wit/deps/keyvalue", "wit"],
    world: "orb:kv/kv",
    // The shared package is passed as a separate path, so ask for its bindings too.
    generate_all,
});

use wasi::keyvalue::store::{self, Bucket, Error};
use wasi::keyvalue::{atomics, batch};

fn render(e: &Error) -> String {
    match e {
        Error::NoSuchStore => "no-such-store".to_string(),
        Error::AccessDenied => "access-denied".to_string(),
        Error::Other(msg) => format!("other: {msg}"),
    }
}

/// Unwraps a keyvalue result; an error is a panic (the host reports a trap).
fn ok<T>(op: &str, r: Result<T, Error>) -> T {
    r.unwrap_or_else(|e| panic!("keyvalue {op}: {}", render(&e)))
}

fn bucket() -> Bucket {
    ok("open", store::open(""))
}

fn text(bytes: Vec<u8>) -> String {
    String::from_utf8(bytes).unwrap_or_else(|e| panic!("value is not UTF-8: {e}"))
}

struct Kv;

impl Guest for Kv {
    fn counter() -> u64 {
        let b = bucket();
        let current = match ok("get", b.get("counter")) {
            None => 0,
            Some(bytes) => {
                let t = text(bytes);
                t.trim()
                    .parse::<u64>()
                    .unwrap_or_else(|e| panic!("counter value {t:?} is not a u64: {e}"))
            }
        };
        let next = current + 1;
        ok("set", b.set("counter", next.to_string().as_bytes()));
        next
    }

    fn incr(delta: u64) -> u64 {
        let b = bucket();
        ok("increment", atomics::increment(&b, "atomic", delta))
    }

    fn get(key: String) -> Option<String> {
        ok("get", bucket().get(&key)).map(text)
    }

    fn put(key: String, value: String) {
        ok("set", bucket().set(&key, value.as_bytes()));
    }

    fn del(key: String) {
        ok("delete", bucket().delete(&key));
    }

    fn exists(key: String) -> bool {
        ok("exists", bucket().exists(&key))
    }

    fn keys() -> Vec<String> {
        let b = bucket();
        let mut all = Vec::new();
        let mut cursor = None;
        loop {
            let page = ok("list-keys", b.list_keys(cursor));
            all.extend(page.keys);
            match page.cursor {
                Some(c) => cursor = Some(c),
                None => break,
            }
        }
        all
    }

    fn get_many(keys: Vec<String>) -> Vec<Option<String>> {
        let b = bucket();
        let got = ok("get-many", batch::get_many(&b, &keys));
        if got.len() != keys.len() {
            panic!("get-many returned {} entries for {} keys", got.len(), keys.len());
        }
        got.into_iter().map(|e| e.map(|(_, v)| text(v))).collect()
    }

    fn put_many(pairs: Vec<(String, String)>) {
        let b = bucket();
        let kvs: Vec<(String, Vec<u8>)> =
            pairs.into_iter().map(|(k, v)| (k, v.into_bytes())).collect();
        ok("set-many", batch::set_many(&b, &kvs));
    }

    fn open(name: String) -> Result<String, String> {
        store::open(&name)
            .map(|_| "opened".to_string())
            .map_err(|e| render(&e))
    }
}

export!(Kv);
