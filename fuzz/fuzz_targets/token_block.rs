//! Datalog a token holder appends to a valid token (offline, no key needed):
//! arbitrary block source, parsed, appended to each of our tokens, then
//! verified against the node's requests under Orb's run limits. Also the
//! narrowing JSON of `orb token attenuate` and a public token's grant.
#![no_main]
use libfuzzer_sys::fuzz_target;
use orb_fuzz::{REQUESTS, tokens};

fn verify_all(token: &str) {
    let t = tokens();
    for req in REQUESTS {
        if let Ok(claims) = t.authority.verify(token, req) {
            assert_eq!(claims.account, "acc_fuzz");
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let t = tokens();
    // As Datalog: a block appended to each token.
    if let Ok(block) = biscuit_auth::builder::BlockBuilder::new().code(text) {
        for base in [&t.private, &t.public, &t.attenuated] {
            let Ok(bytes) = base64::Engine::decode(
                &base64::engine::general_purpose::URL_SAFE,
                base.as_bytes(),
            ) else {
                continue;
            };
            let Ok(u) = biscuit_auth::UnverifiedBiscuit::from(&bytes) else {
                continue;
            };
            if let Ok(appended) = u.append(block.clone())
                && let Ok(out) = appended.to_base64()
            {
                verify_all(&out);
            }
        }
    }
    // As JSON: a narrowing (`orb token attenuate`) and a grant (`POST /v1/tokens`).
    if let Ok(n) = serde_json::from_str::<orb_auth::Narrowing>(text)
        && let Ok(out) = orb_auth::attenuate(&t.private, &n)
    {
        verify_all(&out);
    }
    if let Ok(g) = serde_json::from_str::<orb_auth::Grant>(text) {
        let claims = t
            .authority
            .verify(&t.private, &orb_auth::Request::op("invoke"))
            .unwrap();
        if let Ok(m) = t.authority.mint_public(&claims, &g, None) {
            verify_all(&m.token);
        }
    }
});
