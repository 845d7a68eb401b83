//! JSON → component values for every WIT type: arbitrary JSON given as the
//! parameters of each export of a component whose `roundtrip` takes a
//! record of every WIT value type. A mismatch must be an `invalid_params`
//! error, never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;
use orb_fuzz::{CALC_EXPORTS, calc};

fuzz_target!(|data: &[u8]| {
    let Ok(json) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    let f = calc();
    for export in CALC_EXPORTS {
        if let Err(e) = f.check_params(export, &json) {
            assert_eq!(e.code, "invalid_params", "{e}");
        }
        // The same value under each parameter name.
        for name in f.param_names(export).unwrap_or_default() {
            let params = serde_json::json!({ name: json.clone() });
            if let Err(e) = f.check_params(export, &params) {
                assert_eq!(e.code, "invalid_params", "{e}");
            }
        }
    }
});
