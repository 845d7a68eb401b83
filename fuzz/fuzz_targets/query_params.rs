//! A call's parameters from a URL query (`GET /v1/functions/{hash}/{export}?…`):
//! arbitrary query text, decoded as the route does, typed by each export's
//! signature and type-checked.
#![no_main]
use libfuzzer_sys::fuzz_target;
use orb_fuzz::{CALC_EXPORTS, calc};

fuzz_target!(|data: &[u8]| {
    let Ok(pairs) = serde_urlencoded::from_bytes::<Vec<(String, String)>>(data) else {
        return;
    };
    let f = calc();
    for export in CALC_EXPORTS {
        let Ok((params, _rest)) = f.params_from_text(export, pairs.clone()) else {
            continue;
        };
        if let Err(e) = f.check_params(export, &serde_json::Value::Object(params)) {
            assert_eq!(e.code, "invalid_params", "{e}");
        }
    }
});
