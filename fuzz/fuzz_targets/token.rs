//! A token as a request's `Authorization: Bearer` brings it: arbitrary text
//! (and arbitrary bytes as a token's base64), verified, inspected,
//! attenuated. Never a panic; never accepted unless signed by the root key.
#![no_main]
use base64::Engine as _;
use libfuzzer_sys::fuzz_target;
use orb_fuzz::{REQUESTS, tokens};

fn check(text: &str) {
    let t = tokens();
    for req in REQUESTS {
        if let Ok(claims) = t.authority.verify(text, req) {
            // Only tokens of this root key verify: every one the fuzzer can
            // reach is one of ours or an attenuation of one.
            assert_eq!(claims.account, "acc_fuzz");
        }
    }
    let _ = t.authority.claims_of(text);
    let _ = orb_auth::inspect(text);
    let narrowing = orb_auth::Narrowing {
        operations: Some(vec!["invoke".into()]),
        ..Default::default()
    };
    let _ = orb_auth::attenuate(text, &narrowing);
}

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        check(text);
    }
    check(&base64::engine::general_purpose::URL_SAFE.encode(data));
});
