//! Token verification: cached (signature verified once, revocation and expiry
//! checked per call) and uncached (parse + signature + authority queries).

use criterion::{Criterion, criterion_group, criterion_main};
use orb_auth::{Authority, Grant, Narrowing, Request};
use std::time::Duration;

fn verify(c: &mut Criterion) {
    let auth = Authority::generate();
    let private = auth.mint_private("acc_bench").unwrap();
    let req = Request {
        operation: "invoke",
        function: Some("sha256:00"),
        namespace: None,
    };
    let pc = auth.verify(&private.token, &req).unwrap();
    let mut grant = Grant::default();
    grant
        .namespaces
        .insert("app1".into(), orb_auth::Access::ReadWrite);
    let public = auth
        .mint_public(&pc, &grant, Some(Duration::from_secs(86400)))
        .unwrap()
        .token;
    let attenuated = orb_auth::attenuate(
        &public,
        &Narrowing {
            operations: Some(vec!["invoke".into()]),
            ..Default::default()
        },
    )
    .unwrap();

    let mut g = c.benchmark_group("verify");
    g.bench_function("public/cached", |b| {
        b.iter(|| auth.verify(&public, &req).unwrap())
    });
    g.bench_function("attenuated/cached", |b| {
        b.iter(|| auth.verify(&attenuated, &req).unwrap())
    });
    g.bench_function("public/uncached", |b| {
        b.iter(|| {
            auth.forget_cached();
            auth.verify(&public, &req).unwrap()
        })
    });
    g.bench_function("attenuated/uncached", |b| {
        b.iter(|| {
            auth.forget_cached();
            auth.verify(&attenuated, &req).unwrap()
        })
    });
    g.finish();
}

criterion_group!(benches, verify);
criterion_main!(benches);
