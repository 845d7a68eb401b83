//! HTTP functions in-process: the `http-hello` guest (built from source by
//! `scripts/build-guests`) served by `Runtime::serve_http`.

mod common;

use common::guest;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use orb_core::{FunctionId, Limits};
use orb_runtime::{HttpRequestOptions, LoadedFunction, Runtime, RuntimeConfig};
use std::sync::Arc;

fn setup() -> (Runtime, Arc<LoadedFunction>) {
    setup_with(RuntimeConfig::default())
}

/// `http-hello` loaded on a runtime built from `config`.
fn setup_with(config: RuntimeConfig) -> (Runtime, Arc<LoadedFunction>) {
    let rt = Runtime::new(config).unwrap();
    let bytes = guest("http-hello");
    let (f, _) = rt.load(&FunctionId::of(&bytes), &bytes).unwrap();
    (rt, f)
}

fn opts() -> HttpRequestOptions {
    HttpRequestOptions {
        limits: None,
        max_request_bytes: 10 << 20,
        max_response_bytes: 32 << 20,
        https: false,
        outbound: None,
        kv: None,
        globals: Vec::new(),
    }
}

fn request(method: &str, uri: &str, body: Vec<u8>) -> hyper::Request<Full<Bytes>> {
    hyper::Request::builder()
        .method(method)
        .uri(uri)
        .header("host", "orb.test")
        .header("x-echo", "echo me")
        .body(Full::new(Bytes::from(body)))
        .unwrap()
}

/// Serves one request that must reach the guest (no Orb error before it).
async fn serve(
    rt: &Runtime,
    f: &LoadedFunction,
    req: hyper::Request<Full<Bytes>>,
    opts: HttpRequestOptions,
) -> (
    hyper::Response<orb_runtime::HttpResponseBody>,
    orb_runtime::HttpFinish,
) {
    match rt.serve_http(f, req, opts).await {
        Ok(served) => served,
        Err(outcome) => panic!("refused before the guest ran: {:?}", outcome.error),
    }
}

#[tokio::test]
async fn detects_and_describes_the_http_export() {
    let (rt, f) = setup();
    assert!(f.is_http());
    let exports = f.exports();
    let handle = exports
        .iter()
        .find(|e| e.name.starts_with("wasi:http/incoming-handler@0.2."))
        .expect("handler listed");
    assert!(handle.name.ends_with("#handle"), "{}", handle.name);
    assert_eq!(handle.params[0].ty, "own<incoming-request>");
    // Not callable with JSON.
    let err = f
        .check_params(&handle.name, &serde_json::json!({}))
        .err()
        .expect("refused");
    assert_eq!(err.code, "invalid_request", "{err}");

    // A plain component is not an HTTP function.
    let hello = guest("hello");
    let (plain, _) = rt.load(&FunctionId::of(&hello), &hello).unwrap();
    assert!(!plain.is_http());
    let out = rt
        .serve_http(&plain, request("GET", "/", vec![]), opts())
        .await
        .err()
        .expect("refused");
    assert_eq!(out.error.unwrap().code, "not_an_http_function");
}

#[tokio::test]
async fn echoes_method_path_query_and_header() {
    let (rt, f) = setup();
    let (resp, finish) = serve(
        &rt,
        &f,
        request("GET", "/items/7?x=1&y=two", vec![]),
        opts(),
    )
    .await;
    assert_eq!(resp.status(), 200);
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["method"], "GET");
    assert_eq!(v["path"], "/items/7?x=1&y=two");
    assert_eq!(v["x-echo"], "echo me");
    let out = finish.finish().await;
    assert!(out.error.is_none(), "{:?}", out.error);
    assert_eq!(out.status, Some(200));
    assert_eq!(out.bytes_out, body.len() as u64);
    assert!(out.fuel > 0);
    assert!(out.logs.contains("GET /items/7?x=1&y=two"), "{}", out.logs);
}

#[tokio::test]
async fn streams_a_body_back_byte_exact() {
    let (rt, f) = setup();
    let data: Vec<u8> = (0..3_000_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let (resp, finish) = serve(&rt, &f, request("POST", "/echo", data.clone()), opts()).await;
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    assert!(body == data, "echoed {} bytes", body.len());
    let out = finish.finish().await;
    assert!(out.error.is_none(), "{:?}", out.error);
    assert_eq!(out.bytes_in, data.len() as u64);
    assert_eq!(out.bytes_out, data.len() as u64);
}

#[tokio::test]
async fn a_trap_before_the_response_is_classified() {
    let (rt, f) = setup();
    let out = rt
        .serve_http(&f, request("GET", "/trap", vec![]), opts())
        .await
        .err()
        .expect("no response");
    let err = out.error.unwrap();
    assert_eq!(err.code, "function_trap", "{err}");
    assert!(out.logs.contains("about to trap"), "{}", out.logs);
    // The runtime keeps serving.
    let (resp, _) = serve(&rt, &f, request("GET", "/", vec![]), opts()).await;
    assert_eq!(resp.status(), 200);
}

#[tokio::test]
async fn caps_cut_bodies_both_ways() {
    let (rt, f) = setup();
    // Response over its cap: the stream is cut, the outcome says why.
    let mut o = opts();
    o.max_response_bytes = 200_000;
    let (resp, finish) = serve(&rt, &f, request("GET", "/big?n=1000000", vec![]), o).await;
    assert_eq!(resp.status(), 200);
    assert!(resp.into_body().collect().await.is_err());
    let out = finish.finish().await;
    assert_eq!(out.error.unwrap().code, "response_too_large");
    assert!(out.bytes_out <= 200_000);

    // Request over its cap: the guest's read fails, the outcome says why.
    let mut o = opts();
    o.max_request_bytes = 100_000;
    let (resp, finish) = serve(&rt, &f, request("POST", "/echo", vec![1u8; 500_000]), o).await;
    let _ = resp.into_body().collect().await;
    let out = finish.finish().await;
    assert_eq!(out.error.unwrap().code, "too_large");
}

#[tokio::test]
async fn the_wall_clock_limit_applies() {
    let (rt, f) = setup();
    let mut o = opts();
    o.limits = Some(Limits {
        timeout_ms: 300,
        ..Limits::default()
    });
    // 1 GB to a client that never reads: the guest waits on back-pressure
    // (no wasm runs) and is stopped at the limit all the same.
    let (resp, finish) = serve(&rt, &f, request("GET", "/big?n=1000000000", vec![]), o).await;
    let finished = tokio::spawn(finish.finish());
    tokio::time::sleep(std::time::Duration::from_millis(600)).await;
    drop(resp);
    let out = finished.await.unwrap();
    assert_eq!(out.error.unwrap().code, "function_timeout");
}

#[tokio::test]
async fn outbound_http_is_refused() {
    let (rt, f) = setup();
    let (resp, finish) = serve(&rt, &f, request("GET", "/outbound", vec![]), opts()).await;
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    let text = String::from_utf8_lossy(&body);
    assert!(text.starts_with("refused:"), "{text}");
    assert!(text.contains("HttpRequestDenied"), "{text}");
    assert!(finish.finish().await.error.is_none());
}

#[tokio::test]
async fn without_fuel_accounting_the_fuel_used_reads_zero() {
    let (rt, f) = setup_with(RuntimeConfig {
        metering: orb_runtime::Metering {
            epoch: true,
            fuel: false,
        },
        ..RuntimeConfig::default()
    });
    let (resp, finish) = serve(&rt, &f, request("GET", "/", vec![]), opts()).await;
    assert_eq!(resp.status(), 200);
    resp.into_body().collect().await.unwrap();
    let out = finish.finish().await;
    assert!(out.error.is_none(), "{:?}", out.error);
    assert_eq!(out.fuel, 0);
}

/// Renames the `wasi:http` interfaces a component imports and exports from
/// `@0.2.4` to `@0.2.{patch}`, re-encoding it (names may change length).
struct HttpAt(u8);

impl HttpAt {
    fn rename(&self, name: &str) -> String {
        match name.strip_suffix("@0.2.4") {
            Some(base) if base.starts_with("wasi:http/") => format!("{base}@0.2.{}", self.0),
            _ => name.to_string(),
        }
    }
}

impl wasm_encoder::reencode::Reencode for HttpAt {
    type Error = std::convert::Infallible;
}

impl wasm_encoder::reencode::ReencodeComponent for HttpAt {
    fn parse_component_import_section(
        &mut self,
        imports: &mut wasm_encoder::ComponentImportSection,
        section: wasmparser::ComponentImportSectionReader<'_>,
    ) -> Result<(), wasm_encoder::reencode::Error<Self::Error>> {
        for import in section {
            let import = import?;
            let ty = self.component_type_ref(import.ty)?;
            imports.import(self.rename(import.name.name), ty);
        }
        Ok(())
    }

    fn parse_component_export(
        &mut self,
        exports: &mut wasm_encoder::ComponentExportSection,
        export: wasmparser::ComponentExport<'_>,
    ) -> Result<(), wasm_encoder::reencode::Error<Self::Error>> {
        let index = self.component_external_index(export.kind, export.index);
        let ty = export.ty.map(|t| self.component_type_ref(t)).transpose()?;
        exports.export(self.rename(export.name.name), export.kind.into(), index, ty);
        Ok(())
    }
}

fn http_at(bytes: &[u8], patch: u8) -> Vec<u8> {
    use wasm_encoder::reencode::ReencodeComponent as _;
    let mut out = wasm_encoder::Component::new();
    HttpAt(patch)
        .parse_component(&mut out, wasmparser::Parser::new(0), bytes)
        .unwrap_or_else(|e| panic!("re-encoding at 0.2.{patch}: {e:?}"));
    out.finish()
}

/// Every `wasi:http@0.2.x` that wasmtime 48 links (its host is 0.2.12): the
/// same handler, with the `wasi:http` interfaces it imports and the handler
/// it exports renamed from 0.2.4 (what the `wasi` crate targets) to 0.2.N —
/// the `wasi:io`/`wasi:cli` imports keep their versions (std's own imports
/// are 0.2.0, so renaming those would collide) — is accepted at load,
/// recognised as an HTTP function and served.
#[tokio::test]
async fn the_handler_is_served_at_every_wasi_http_0_2_version() {
    let rt = Runtime::new(RuntimeConfig::default()).unwrap();
    let bytes = guest("http-hello");
    let needle = b"wasi:http/incoming-handler@0.2.4";
    assert!(
        bytes.windows(needle.len()).any(|w| w == needle),
        "http-hello targets wasi:http 0.2.4"
    );
    for patch in 0..=12u8 {
        let b = http_at(&bytes, patch);
        let (f, _) = rt
            .load(&FunctionId::of(&b), &b)
            .unwrap_or_else(|e| panic!("0.2.{patch} refused: {e}"));
        assert!(f.is_http(), "0.2.{patch}");
        let name = format!("wasi:http/incoming-handler@0.2.{patch}#handle");
        assert!(
            f.exports().iter().any(|e| e.name == name),
            "0.2.{patch}: {:?}",
            f.exports().iter().map(|e| &e.name).collect::<Vec<_>>()
        );
        let (resp, finish) = serve(&rt, &f, request("GET", "/v", vec![]), opts()).await;
        assert_eq!(resp.status(), 200, "0.2.{patch}");
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        assert!(
            String::from_utf8_lossy(&body).contains("\"path\":\"/v\""),
            "0.2.{patch}"
        );
        assert!(finish.finish().await.error.is_none(), "0.2.{patch}");
    }
}
