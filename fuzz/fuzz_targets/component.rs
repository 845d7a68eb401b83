//! Component uploads: arbitrary bytes (and, from the seed corpus that
//! `scripts/fuzz` writes from $ORB_GUESTS, mutated valid components)
//! validated, compiled and linked as `POST /v1/functions` does. A refusal
//! must be `invalid_component` or `unsupported_import`, never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;
use orb_fuzz::runtime;

fuzz_target!(|data: &[u8]| {
    let rt = runtime();
    let id = orb_core::FunctionId::of(data);
    match rt.load(&id, data) {
        Ok(_) => rt.forget(&id),
        Err(e) => assert!(
            e.code == "invalid_component" || e.code == "unsupported_import",
            "{e}"
        ),
    }
});
