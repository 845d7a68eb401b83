//! What the fuzz targets share: one root key with tokens minted under it,
//! and one runtime with a component that exports every WIT value type.

use orb_auth::{Authority, Grant, Request};
use orb_runtime::{LoadedFunction, Runtime, RuntimeConfig};
use std::sync::{Arc, OnceLock};

/// A root key and three tokens under it: private, public (a grant with a
/// namespace, a rate and an expiry), and private attenuated offline.
pub struct Tokens {
    pub authority: Authority,
    pub private: String,
    pub public: String,
    pub attenuated: String,
}

pub fn tokens() -> &'static Tokens {
    static T: OnceLock<Tokens> = OnceLock::new();
    T.get_or_init(|| {
        let authority = Authority::generate();
        let private = authority.mint_private("acc_fuzz").unwrap().token;
        let claims = authority
            .verify(&private, &Request::op("invoke"))
            .unwrap();
        let mut grant = Grant::default();
        grant
            .namespaces
            .insert("app".into(), orb_auth::Access::parse("rw").unwrap());
        grant.functions = Some(vec!["sha256:00".into()]);
        grant.rate = Some(orb_auth::Rate::parse("5/60s").unwrap());
        let public = authority
            .mint_public(&claims, &grant, Some(std::time::Duration::from_secs(3600)))
            .unwrap()
            .token;
        let narrowing = serde_json::from_str(
            r#"{"operations": ["invoke"], "namespaces": ["app"], "expires_in": "1h"}"#,
        )
        .unwrap();
        let attenuated = orb_auth::attenuate(&private, &narrowing).unwrap();
        Tokens {
            authority,
            private,
            public,
            attenuated,
        }
    })
}

/// The requests a token is checked against (operations, functions and
/// namespaces the node names).
pub const REQUESTS: &[Request<'static>] = &[
    Request::op("invoke"),
    Request {
        operation: "invoke",
        function: Some("sha256:00"),
        namespace: Some("app"),
    },
    Request {
        operation: "namespace.write",
        function: None,
        namespace: Some("other"),
    },
    Request::op("functions.write"),
];

/// The WIT world of `examples/calc` (every WIT value type, nested).
pub const CALC_WIT: &str = include_str!("../../examples/calc/wit/world.wit");

/// A component implementing `CALC_WIT` with a dummy core module: its
/// exports have the real signatures, so parameters type-check as for the
/// built guest (nothing here runs it).
pub fn calc_component() -> Vec<u8> {
    let mut resolve = wit_parser::Resolve::default();
    let pkg = resolve.push_str("calc.wit", CALC_WIT).unwrap();
    let world = resolve.select_world(&[pkg], Some("calc")).unwrap();
    let mut module = wit_component::dummy_module(
        &resolve,
        world,
        wit_parser::ManglingAndAbi::Legacy(wit_parser::LiftLowerAbi::Sync),
    );
    wit_component::embed_component_metadata(
        &mut module,
        &resolve,
        world,
        wit_component::StringEncoding::UTF8,
        false,
    )
    .unwrap();
    wit_component::ComponentEncoder::default()
        .module(&module)
        .unwrap()
        .validate(true)
        .encode()
        .unwrap()
}

/// A runtime with no artifact cache (nothing written to disk).
pub fn runtime() -> &'static Runtime {
    static R: OnceLock<Runtime> = OnceLock::new();
    R.get_or_init(|| {
        Runtime::new(RuntimeConfig {
            cache_dir: None,
            max_instances: 4,
            ..RuntimeConfig::default()
        })
        .unwrap()
    })
}

/// The calc component, loaded (validated, compiled, linked) once.
pub fn calc() -> &'static Arc<LoadedFunction> {
    static F: OnceLock<Arc<LoadedFunction>> = OnceLock::new();
    F.get_or_init(|| {
        let bytes = calc_component();
        let id = orb_core::FunctionId::of(&bytes);
        runtime().load(&id, &bytes).unwrap().0
    })
}

/// The calc exports.
pub const CALC_EXPORTS: &[&str] = &["add", "divide", "stats", "classify", "area", "roundtrip"];
