//! Query strings of the node's routes (`limit`, `after`, `prefix`, `wait`,
//! `function`), through axum's `Query` extractor as the routes use it.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(q) = std::str::from_utf8(data) {
        orb_node::fuzzing::query(q);
    }
});
