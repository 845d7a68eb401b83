//! Namespace names, keys and values: `name \0 key \0 bytes`, the bytes
//! taken as a stored value and as an import body.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut parts = data.splitn(3, |b| *b == 0);
    let name = String::from_utf8_lossy(parts.next().unwrap_or_default());
    let key = String::from_utf8_lossy(parts.next().unwrap_or_default());
    let value = parts.next().unwrap_or_default();
    orb_node::fuzzing::namespace(&name, &key, value);
});
