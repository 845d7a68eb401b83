// Shared by the benches: guest components built by scripts/build-guests,
// and tiny components made from WAT here (no toolchain needed).
#![allow(dead_code)]

#[path = "../tests/common/mod.rs"]
mod common;
pub use common::guest;

/// A component from a core module in WAT and the WIT world it implements.
pub fn wat_component(wat: &str, wit: &str) -> Vec<u8> {
    let mut module = wat::parse_str(wat).unwrap();
    let mut resolve = wit_parser::Resolve::default();
    let pkg = resolve.push_str("bench.wit", wit).unwrap();
    let world = resolve.select_world(&[pkg], Some("w")).unwrap();
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

/// `noop: func()` with no imports and no memory: the smallest callable
/// component. `salt` makes distinct bytes (a distinct hash) per value.
pub fn wat_noop(salt: u32) -> Vec<u8> {
    wat_component(
        &format!(r#"(module (global i32 (i32.const {salt})) (func (export "noop")))"#),
        "package orb:bench; world w { export noop: func(); }",
    )
}

/// `work(n: u32) -> u32`: a pure compute loop of `n` rounds (an LCG), the
/// worst case for fuel and epoch instrumentation (one back edge per round).
pub fn wat_work() -> Vec<u8> {
    wat_component(
        r#"(module
            (func (export "work") (param $n i32) (result i32)
              (local $x i32)
              (local.set $x (i32.const 1))
              (block $done
                (loop $top
                  (br_if $done (i32.eqz (local.get $n)))
                  (local.set $x (i32.add (i32.mul (local.get $x) (i32.const 1664525))
                                         (i32.const 1013904223)))
                  (local.set $n (i32.sub (local.get $n) (i32.const 1)))
                  (br $top)))
              (local.get $x)))"#,
        "package orb:bench; world w { export work: func(n: u32) -> u32; }",
    )
}

/// `memwork(n: u32) -> u32`: `n` rounds of a load, an add and a store over
/// a 64 KiB array in linear memory — the worst case for explicit bounds
/// checks (engines without guard pages).
pub fn wat_memwork() -> Vec<u8> {
    wat_component(
        r#"(module
            (memory 2)
            (func (export "memwork") (param $n i32) (result i32)
              (local $i i32) (local $acc i32)
              (block $done
                (loop $top
                  (br_if $done (i32.eqz (local.get $n)))
                  (local.set $i (i32.and (i32.mul (local.get $n) (i32.const 4)) (i32.const 65532)))
                  (local.set $acc (i32.add (local.get $acc) (i32.load (local.get $i))))
                  (i32.store (local.get $i) (i32.add (local.get $acc) (local.get $n)))
                  (local.set $n (i32.sub (local.get $n) (i32.const 1)))
                  (br $top)))
              (local.get $acc)))"#,
        "package orb:bench; world w { export memwork: func(n: u32) -> u32; }",
    )
}
