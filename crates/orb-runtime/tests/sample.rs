//! Sample calls (the fuel a network measures at deploy): every export of
//! the `calc` guest (built from source by `scripts/build-guests`), whose
//! `roundtrip` takes a record of every WIT value type, gets plain
//! parameters that its signature accepts, and runs with them.

mod common;

use common::guest;

use orb_core::FunctionId;
use orb_runtime::{CallRequest, Runtime, RuntimeConfig};

#[tokio::test]
async fn every_calc_export_runs_with_sample_parameters() {
    let rt = Runtime::new(RuntimeConfig::default()).unwrap();
    let bytes = guest("calc");
    let (f, _) = rt.load(&FunctionId::of(&bytes), &bytes).unwrap();
    let exports = f.exports();
    assert!(exports.len() >= 6, "{exports:?}");
    for e in &exports {
        let params = f
            .sample_params(&e.name)
            .unwrap_or_else(|| panic!("no sample for {}", e.name));
        assert_eq!(
            params.as_object().unwrap().len(),
            e.params.len(),
            "{}: {params}",
            e.name
        );
        let checked = f
            .check_params(&e.name, &params)
            .unwrap_or_else(|err| panic!("{}: {params} refused: {err}", e.name));
        let out = rt.call(&f, checked, CallRequest::default()).await;
        assert!(out.fuel > 0, "{}: no fuel counted", e.name);
        // `add(0, 0)` and `roundtrip` of the plain record give them back.
        match e.name.as_str() {
            "add" => assert_eq!(out.result.unwrap(), 0),
            "roundtrip" => assert_eq!(out.result.unwrap(), params["v"]),
            _ => {}
        }
    }
}

#[tokio::test]
async fn an_http_handler_has_no_sample_parameters() {
    let rt = Runtime::new(RuntimeConfig::default()).unwrap();
    let bytes = guest("http-hello");
    let (f, _) = rt.load(&FunctionId::of(&bytes), &bytes).unwrap();
    for e in f.exports() {
        assert!(f.sample_params(&e.name).is_none(), "{}", e.name);
    }
}
